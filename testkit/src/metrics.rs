//! The gateway's `/metrics` (Prometheus text format), read back.

/// The value of one series, `name{labels}` exactly as printed (e.g.
/// `firegrid_refusals_total{reason="duplicate"}`), or `None` if it is not there.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Every `firegrid_refusals_total` series: reason → count, in the order printed.
pub fn refusals(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("firegrid_refusals_total{reason=\"")?;
            let (reason, value) = rest.split_once("\"} ")?;
            Some((reason.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP firegrid_refusals_total Refused messages.\n\
        # TYPE firegrid_refusals_total counter\n\
        firegrid_refusals_total{reason=\"duplicate\"} 3\n\
        firegrid_refusals_total{reason=\"unknown_device\"} 0\n\
        firegrid_devices 12\n\
        firegrid_devices_online 11\n";

    #[test]
    fn a_series_is_found_by_its_exact_name_and_labels() {
        assert_eq!(metric(TEXT, "firegrid_devices"), Some(12.0));
        assert_eq!(metric(TEXT, "firegrid_devices_online"), Some(11.0));
        assert_eq!(
            metric(TEXT, "firegrid_refusals_total{reason=\"duplicate\"}"),
            Some(3.0)
        );
        assert_eq!(
            metric(TEXT, "firegrid_device"),
            None,
            "a prefix is not a series"
        );
    }

    #[test]
    fn refusals_are_listed_by_reason() {
        assert_eq!(
            refusals(TEXT),
            vec![("duplicate".into(), 3.0), ("unknown_device".into(), 0.0)]
        );
    }
}
