//! The schema: points as InfluxDB line protocol (docs/tsdb.md explains the choice).
//!
//! ```text
//! firegrid,device=hz-0042,channel=0,circuit=12,site=3,grid=grid-7 residual_ma=112i 1764403200000000000
//! ```
//!
//! One measurement, [`MEASUREMENT`]; tags `device`, `channel`, `circuit`, `site`, `grid` (each
//! only when known), all fixed per (device, channel), so the series count is devices ×
//! channels; integer fields with their unit in the name. Timestamps in ns (`precision=ns`).
//! Built with InfluxData's `influxdb-line-protocol` builder, which escapes tag values.

use influxdb_line_protocol::LineProtocolBuilder;
use influxdb_line_protocol::builder::AfterMeasurement;

use super::point::Point;

/// The measurement every point is written to (VictoriaMetrics names the series
/// `firegrid_residual_ma`, … : measurement, `_`, field).
pub const MEASUREMENT: &str = "firegrid";

/// The line protocol of `points` (those without any value are left out), appended to `out`.
pub fn encode(points: &[Point], out: &mut Vec<u8>) {
    let mut b = LineProtocolBuilder::new_with(std::mem::take(out));
    let mut digits = itoa_buf();
    for p in points {
        let fields = fields_of(p);
        // A point without a value is never spooled (Point::from_sample); stay total anyway.
        let Some((&(k, v), rest)) = fields.split_first() else {
            continue;
        };
        let mut line = tags(b.measurement(MEASUREMENT), p, &mut digits).field(k, v);
        for &(k, v) in rest {
            line = line.field(k, v);
        }
        b = line.timestamp(p.ts_ns).close_line();
    }
    *out = b.build();
}

/// The point's tags: device and channel always; circuit, site and grid when known.
fn tags(
    b: LineProtocolBuilder<Vec<u8>, AfterMeasurement>,
    p: &Point,
    digits: &mut Digits,
) -> LineProtocolBuilder<Vec<u8>, AfterMeasurement> {
    let mut b = b.tag("device", &p.device);
    b = b.tag("channel", digits.fmt(i64::from(p.channel)));
    if let Some(c) = p.tags.circuit {
        b = b.tag("circuit", digits.fmt(c));
    }
    if let Some(s) = p.tags.site {
        b = b.tag("site", digits.fmt(s));
    }
    if let Some(g) = &p.tags.grid {
        b = b.tag("grid", g);
    }
    b
}

/// The point's fields that have a value, as integers with their unit in the name.
fn fields_of(p: &Point) -> Vec<(&'static str, i64)> {
    [
        ("residual_ma", p.residual_ma.map(i64::from)),
        ("temp_dc", p.temp_dc.map(i64::from)),
        ("voltage_dv", p.voltage_dv.map(i64::from)),
        ("current_ma", p.current_ma.map(i64::from)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

/// A small reusable buffer for formatting integers as tag values.
struct Digits(String);

fn itoa_buf() -> Digits {
    Digits(String::with_capacity(20))
}

impl Digits {
    fn fmt(&mut self, n: i64) -> &str {
        use std::fmt::Write as _;
        self.0.clear();
        let _ = write!(self.0, "{n}");
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::point::Tags;

    fn point() -> Point {
        Point {
            device: "hz-0042".into(),
            channel: 0,
            ts_ns: 1_764_403_200_000_000_000,
            residual_ma: Some(112),
            temp_dc: None,
            voltage_dv: Some(2203),
            current_ma: None,
            tags: Tags {
                site: Some(3),
                circuit: Some(12),
                grid: Some("grid 7,a".into()),
            },
        }
    }

    #[test]
    fn the_documented_line() {
        let mut out = Vec::new();
        let mut bare = point();
        bare.tags = Tags::default();
        bare.channel = 4;
        bare.voltage_dv = None;
        encode(&[point(), bare], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "firegrid,device=hz-0042,channel=0,circuit=12,site=3,grid=grid\\ 7\\,a \
             residual_ma=112i,voltage_dv=2203i 1764403200000000000\n\
             firegrid,device=hz-0042,channel=4 residual_ma=112i 1764403200000000000\n"
        );
    }

    #[test]
    fn a_point_without_values_is_left_out() {
        let mut p = point();
        p.residual_ma = None;
        p.voltage_dv = None;
        assert!(!p.has_value());
        let mut out = b"x\n".to_vec();
        encode(&[p, point()], &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("x\nfiregrid,"), "{text}");
    }
}
