//! Readings history: one device's channels, or every channel on a circuit, as JSON points or
//! CSV.
//!
//! `from` and `to` are ms since the Unix epoch (default: the last 24 h); `step` is a duration,
//! `0` or `raw` for every reading, a number of ms, or a number with `s`, `m`, `h` or `d`
//! (default: raw up to 6 h, else the smallest of 1 min, 5 min, 15 min, 1 h, 6 h, 1 d, 7 d that
//! gives at most 1000 points). Steps of an hour or more read the hourly rollups, which are
//! kept long after raw readings are pruned. A gateway that keeps only rollups (`[store]
//! local_readings = "rollups"`) answers every step from them, by the hour, and says so: the
//! answer's `source` is `hourly_rollups`, its `step_ms` the hour, and a `note` tells why.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::{ChannelNo, MAX_CHANNELS};

use super::access::Caller;
use super::episodes::time_range;
use super::error::{ApiError, Json, PathId, Query, Subject, shorten};
use super::{ApiState, blocking, now_ms};
use crate::model::UnixMs;
use crate::store::{
    Agg, CircuitFields, Device, DeviceFields, HOUR_MS, MAX_POINTS, Noun, Point, StoreError,
};

type ApiResult<T = Response> = Result<T, ApiError>;

/// The default range: the last day.
const DEFAULT_RANGE_MS: u64 = 24 * HOUR_MS;
/// Up to this range, the default step is raw readings.
const RAW_RANGE_MS: u64 = 6 * HOUR_MS;
/// The default step gives at most this many points.
const DEFAULT_POINTS: u64 = 1000;
/// The most points of all series of one answer together.
const MAX_TOTAL_POINTS: usize = 100_000;

/// Answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Format {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceHistoryQuery {
    ch: Option<ChannelNo>,
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    step: Option<String>,
    #[param(inline)]
    format: Option<Format>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct CircuitHistoryQuery {
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    step: Option<String>,
    #[param(inline)]
    format: Option<Format>,
}

/// One channel's points.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct Series {
    #[schema(value_type = crate::api::ProtocolId)]
    device: DeviceId,
    ch: ChannelNo,
    points: Vec<Point>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct History {
    from_ms: UnixMs,
    to_ms: UnixMs,
    /// The step answered with (0: raw readings).
    step_ms: u64,
    /// What the points come from: `raw` readings or `hourly_rollups`.
    source: &'static str,
    /// Why the step differs from the one asked for, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    series: Vec<Series>,
}

impl History {
    /// The answer for `range`, as the store answers its step.
    fn new(
        store: &crate::store::Store,
        (from_ms, to_ms, step_ms): (UnixMs, UnixMs, u64),
        series: Vec<Series>,
    ) -> Self {
        let answered = store.history_step(step_ms);
        Self {
            from_ms,
            to_ms,
            step_ms: answered,
            source: if answered >= HOUR_MS {
                "hourly_rollups"
            } else {
                "raw"
            },
            note: (answered != step_ms).then(|| {
                "this gateway keeps only hourly rollups of readings ([store] local_readings = \
                 \"rollups\"; the raw readings are in the time-series database): points are \
                 by the hour"
                    .to_string()
            }),
            series,
        }
    }
}

/// Parses a step: `raw`, `0`, ms, or a number with `s`, `m`, `h`, `d`.
pub(super) fn parse_step(s: &str) -> ApiResult<u64> {
    let bad = || {
        ApiError::bad_request(format!(
            "step {:?} is not a duration: use raw, a number of ms, or a number with s, m, h or \
             d (e.g. 5m, 1h)",
            shorten(s)
        ))
    };
    let s = s.trim();
    if s == "raw" {
        return Ok(0);
    }
    let (digits, unit_ms) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1000),
        Some((i, 'm')) => (&s[..i], 60_000),
        Some((i, 'h')) => (&s[..i], HOUR_MS),
        Some((i, 'd')) => (&s[..i], 24 * HOUR_MS),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// The default step of a range.
fn default_step(range_ms: u64) -> u64 {
    if range_ms <= RAW_RANGE_MS {
        return 0;
    }
    const STEPS: [u64; 7] = [
        60_000,
        300_000,
        900_000,
        HOUR_MS,
        6 * HOUR_MS,
        24 * HOUR_MS,
        7 * 24 * HOUR_MS,
    ];
    STEPS
        .into_iter()
        .find(|s| range_ms / s <= DEFAULT_POINTS)
        .unwrap_or(STEPS[STEPS.len() - 1])
}

/// The range and step asked for.
fn resolve(
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    step: Option<&str>,
) -> ApiResult<(UnixMs, UnixMs, u64)> {
    time_range(from, to)?;
    let to = to.unwrap_or_else(now_ms);
    let from = match from {
        Some(f) => f,
        None => to.saturating_sub(DEFAULT_RANGE_MS),
    };
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) must be before to ({to}): both are ms since the Unix epoch"
        )));
    }
    let step = match step {
        Some(s) => parse_step(s)?,
        None => default_step(to - from),
    };
    if step > 0 && (to - from) / step > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "{} points asked for, at most {MAX_POINTS} per channel: use a larger step",
            (to - from) / step
        )));
    }
    Ok((from, to, step))
}

/// Whether the answer is CSV: `format=csv`, or no `format` and an `Accept` naming `text/csv`.
fn wants_csv(format: Option<Format>, headers: &HeaderMap) -> bool {
    match format {
        Some(f) => f == Format::Csv,
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/csv")),
    }
}

/// The channels of a device to show: those of its configuration (channel 0 if it has none).
fn channels_of(device: &Device) -> Vec<ChannelNo> {
    let mut chs: Vec<ChannelNo> = device
        .fields
        .config
        .channels
        .iter()
        .map(|c| c.channel)
        .collect();
    chs.sort_unstable();
    chs.dedup();
    if chs.is_empty() {
        chs.push(0);
    }
    chs
}

/// Reads the series of `wanted` (device, channels) pairs, bounded in total.
fn read_series(
    store: &crate::store::Store,
    wanted: &[(DeviceId, Vec<ChannelNo>)],
    (from, to, step): (UnixMs, UnixMs, u64),
) -> Result<Vec<Series>, StoreError> {
    let mut series = Vec::new();
    let mut total = 0;
    for (device, chs) in wanted {
        for &ch in chs {
            let points = store.history(device, ch, from, to, step)?;
            total += points.len();
            if total > MAX_TOTAL_POINTS {
                return Err(StoreError::InvalidQuery(format!(
                    "more than {MAX_TOTAL_POINTS} points in all: use a larger step or a \
                     shorter range"
                )));
            }
            series.push(Series {
                device: device.clone(),
                ch,
                points,
            });
        }
    }
    Ok(series)
}

/// The CSV header.
pub(super) const CSV_HEADER: &str = "device,ch,t_ms,count,\
residual_ma_min,residual_ma_max,residual_ma_avg,\
temp_dc_min,temp_dc_max,temp_dc_avg,\
voltage_dv_min,voltage_dv_max,voltage_dv_avg,\
current_ma_min,current_ma_max,current_ma_avg";

/// RFC 4180 CSV (CRLF line ends), one row per point; an absent quantity is three empty cells.
/// Device ids are `[A-Za-z0-9_-]`, so no cell needs quoting.
fn to_csv(series: &[Series]) -> String {
    let mut out = String::with_capacity(64 + series.len() * 64);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for s in series {
        for p in &s.points {
            let _ = write!(out, "{},{},{},{}", s.device, s.ch, p.t_ms, p.count);
            for agg in [p.residual_ma, p.temp_dc, p.voltage_dv, p.current_ma] {
                match agg {
                    Some(Agg { min, max, avg }) => {
                        let _ = write!(out, ",{min},{max},{}", round2(avg));
                    }
                    None => out.push_str(",,,"),
                }
            }
            out.push_str("\r\n");
        }
    }
    out
}

/// A mean with at most two decimals, without trailing zeros.
fn round2(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn answer(history: History, csv: bool, filename: &str) -> Response {
    if !csv {
        return Json(history).into_response();
    }
    let body = to_csv(&history.series);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}.csv\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn device_history(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    headers: HeaderMap,
    Query(q): Query<DeviceHistoryQuery>,
) -> ApiResult {
    let id = id.device()?;
    if let Some(ch) = q.ch
        && usize::from(ch) >= MAX_CHANNELS
    {
        return Err(ApiError::bad_request(format!(
            "ch {ch} does not exist: channels are 0-{}",
            MAX_CHANNELS - 1
        )));
    }
    let range = resolve(q.from, q.to, q.step.as_deref())?;
    let csv = wants_csv(q.format, &headers);
    let series = blocking(&state, Subject::new("device", &id), {
        let id = id.clone();
        move |s| {
            let device = s
                .get_scoped::<DeviceFields>(&id, caller.scope())?
                .ok_or_else(|| StoreError::Unknown {
                    what: Noun::Device,
                    id: id.to_string(),
                })?;
            let chs = q.ch.map_or_else(|| channels_of(&device), |ch| vec![ch]);
            read_series(s, &[(id, chs)], range)
        }
    })
    .await?;
    Ok(answer(
        History::new(&state.store, range, series),
        csv,
        &format!("{id}-history"),
    ))
}

pub(super) async fn circuit_history(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    headers: HeaderMap,
    Query(q): Query<CircuitHistoryQuery>,
) -> ApiResult {
    let id = id.number("circuit")?;
    let range = resolve(q.from, q.to, q.step.as_deref())?;
    let csv = wants_csv(q.format, &headers);
    let series = blocking(&state, Subject::new("circuit", id), move |s| {
        let circuit =
            s.get_scoped::<CircuitFields>(&id, caller.scope())?
                .ok_or(StoreError::Unknown {
                    what: Noun::Circuit,
                    id: id.to_string(),
                })?;
        // The channels on this circuit: their own binding, else their device's.
        let mut wanted: Vec<(DeviceId, Vec<ChannelNo>)> = Vec::new();
        for c in s.site_channels(circuit.fields.site_id)? {
            if c.circuit_id != Some(id) {
                continue;
            }
            match wanted.last_mut() {
                Some((d, chs)) if *d == c.device => chs.push(c.channel),
                _ => wanted.push((c.device, vec![c.channel])),
            }
        }
        read_series(s, &wanted, range)
    })
    .await?;
    Ok(answer(
        History::new(&state.store, range, series),
        csv,
        &format!("circuit-{id}-history"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_with_units() {
        assert_eq!(parse_step("raw").unwrap(), 0);
        assert_eq!(parse_step("0").unwrap(), 0);
        assert_eq!(parse_step("1500").unwrap(), 1500);
        assert_eq!(parse_step("30s").unwrap(), 30_000);
        assert_eq!(parse_step("5m").unwrap(), 300_000);
        assert_eq!(parse_step("1h").unwrap(), HOUR_MS);
        assert_eq!(parse_step("2d").unwrap(), 48 * HOUR_MS);
        for bad in ["", "m", "5x", "-1", "1.5h", "99999999999999999999d"] {
            let e = parse_step(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
            assert!(e.message().contains("is not a duration"), "{bad}");
        }
    }

    #[test]
    fn default_steps_bound_the_points() {
        assert_eq!(default_step(HOUR_MS), 0);
        assert_eq!(default_step(RAW_RANGE_MS), 0);
        assert_eq!(default_step(DEFAULT_RANGE_MS), 300_000);
        assert_eq!(default_step(30 * DEFAULT_RANGE_MS), HOUR_MS);
        assert_eq!(
            default_step(100_000 * DEFAULT_RANGE_MS),
            7 * DEFAULT_RANGE_MS
        );
    }

    #[test]
    fn means_are_short() {
        assert_eq!(round2(12.0), "12");
        assert_eq!(round2(12.5), "12.5");
        assert_eq!(round2(1.0 / 3.0), "0.33");
        assert_eq!(round2(-0.001), "0");
    }
}
