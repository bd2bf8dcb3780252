//! Where the gateway's names meet prometheus-client's conventions, and the helpers of the
//! collectors that expose counts kept elsewhere (the TSDB writer's, the managed broker's, the
//! uplink's, ...).
//!
//! Names are written here as they are exposed (`firegrid_` aside): a counter's `_total`
//! included, so that a grep for a documented name finds the code. prometheus-client appends
//! `_total` to a counter's name itself, and the registry (not a collector) appends a `.` to
//! the help text; [`base`] and [`help`] undo both before the library redoes them.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Metric, Registry};

/// The name to give the library for the exposed `name`: without a counter's `_total`.
pub(crate) fn base(name: &str, kind: MetricType) -> &str {
    match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// The help text to register for the exposed `help` (the registry appends the final `.`).
fn help(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

/// Registers `metric` under its exposed `name` and `help` text (see the [module docs](self)).
pub(crate) fn register(registry: &mut Registry, name: &str, text: &str, metric: impl Metric) {
    let kind = metric.metric_type();
    registry.register(base(name, kind), help(text), metric);
}

/// One unlabelled counter, read from elsewhere at the scrape.
///
/// # Errors
/// The writer's (none for a `String`).
pub(crate) fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    let kind = MetricType::Counter;
    ConstCounter::new(value).encode(encoder.encode_descriptor(
        base(name, kind),
        help,
        None,
        kind,
    )?)
}

/// One unlabelled gauge, read from elsewhere at the scrape.
///
/// # Errors
/// The writer's (none for a `String`).
pub(crate) fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> fmt::Result {
    let kind = MetricType::Gauge;
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, kind)?)
}

/// A labelled counter: one series per `(labels, value)`, in the order given. Nothing at all
/// (not even `# HELP`) when `series` is empty.
///
/// # Errors
/// The writer's (none for a `String`).
pub(crate) fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let kind = MetricType::Counter;
    let mut metric = encoder.encode_descriptor(base(name, kind), help, None, kind)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A count kept as a `u64` atomic, as a gauge's `i64` (saturating: no count reaches it).
pub(crate) fn as_gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The exposition of one collector alone, as `/metrics` shows it (for tests).
#[cfg(test)]
pub(crate) fn exposition(collector: impl prometheus_client::collector::Collector) -> String {
    let mut registry = Registry::with_prefix(super::PREFIX.trim_end_matches('_'));
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("a String takes every write");
    out
}
