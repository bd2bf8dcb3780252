//! `GET /api/v1/circuits/{id}/leak-trace`: where under a circuit the leak most likely sits
//! ([`crate::circuits::trace`]), from the mean residual current each circuit's monitors
//! measured over a window.
//!
//! Query: `from`, `to` (ms since the epoch; default the last hour), `min_ma` (the floor below
//! which no leak is named; default 30 mA, the lower end of GB 14287.2's residual set-points).
//! A circuit's measurement is the largest mean over the residual-current channels bound to it
//! — a channel's own binding, else its device's (`store/channels.rs`) — two monitors on one
//! circuit measure the same current.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::DeviceId;

use super::access::{Caller, check_area};
use super::episodes::time_range;
use super::error::{ApiError, Json, PathId, Query, Subject, query_area};
use super::{ApiState, blocking, now_ms};
use crate::circuits::{Circuit, RankBy, Ranked, Trace, TraceError, rank, slope_per_day, trace};
use crate::model::{Category, UnixMs};
use crate::store::{
    CircuitFields, CircuitFilter, EpisodeFilter, HOUR_MS, Measures, Noun, StoreError,
};

/// The default floor, mA.
const DEFAULT_MIN_MA: f64 = 30.0;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct LeakTraceQuery {
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    min_ma: Option<f64>,
}

pub(super) async fn leak_trace(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Query(q): Query<LeakTraceQuery>,
) -> Result<Response, ApiError> {
    let id = id.number("circuit")?;
    time_range(q.from, q.to)?;
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.unwrap_or(to.saturating_sub(HOUR_MS));
    let min_ma = q.min_ma.unwrap_or(DEFAULT_MIN_MA);
    if !min_ma.is_finite() || min_ma < 0.0 {
        return Err(ApiError::bad_request(format!(
            "min_ma {min_ma} must be a number of mA, 0 or more"
        )));
    }
    let tree = blocking(&state, Subject::new("circuit", id), move |s| {
        trace_tree(s, &caller, id, from, to)
    })
    .await?;
    match trace(&tree, id, min_ma) {
        Ok(trace) => Ok(Json(LeakTraceView {
            from_ms: from,
            to_ms: to,
            trace,
        })
        .into_response()),
        Err(e @ TraceError::Unmeasured(_)) => Err(ApiError::conflict(e.to_string())),
        Err(e @ TraceError::Unknown(_)) => Err(ApiError::not_found(e.to_string())),
    }
}

/// `GET /api/v1/circuits/{id}/leak-trace`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct LeakTraceView {
    /// The readings' window, ms since the Unix epoch: from (inclusive)…
    from_ms: UnixMs,
    /// …to (exclusive).
    to_ms: UnixMs,
    /// Where the leak most likely sits, with the evidence.
    trace: Trace,
}

/// `GET /api/v1/circuit-ranking`'s answer (as JSON).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RankingView {
    /// The window, ms since the Unix epoch: from (inclusive)…
    from_ms: UnixMs,
    /// …to (exclusive).
    to_ms: UnixMs,
    /// What they are ranked by.
    by: RankBy,
    /// The circuits, first the most suspect.
    circuits: Vec<Ranked>,
}

/// The circuits of `id`'s site with the mean residual current of each over `[from, to)` (the
/// largest of the residual channels bound to it), for [`trace`]; `id` must be within the
/// caller's scope.
///
/// # Errors
/// [`StoreError::Unknown`], [`StoreError::OutOfScope`], a database error.
pub(crate) fn trace_tree(
    s: &crate::store::Store,
    caller: &Caller,
    id: i64,
    from: UnixMs,
    to: UnixMs,
) -> Result<Vec<Circuit>, StoreError> {
    let circuit =
        s.get_scoped::<CircuitFields>(&id, caller.scope())?
            .ok_or(StoreError::Unknown {
                what: Noun::Circuit,
                id: id.to_string(),
            })?;
    let site = circuit.fields.site_id;
    let circuits = s.list::<CircuitFields>(
        &CircuitFilter {
            site_id: Some(site),
        },
        None,
    )?;
    let channels = s.site_channels(site)?;
    let mut tree = Vec::with_capacity(circuits.len());
    for c in circuits {
        let mut measured: Option<f64> = None;
        for ch in channels
            .iter()
            .filter(|ch| ch.circuit_id == Some(c.id) && ch.measures == Measures::ResidualCurrent)
        {
            // Under a day, raw readings by the minute (their counts weigh the mean exactly);
            // hourly rollups would only cover the hours that start inside the window.
            let whole = to.saturating_sub(from).max(1);
            let step = if whole < 24 * HOUR_MS { 60_000 } else { whole };
            let points = s.history(&ch.device, ch.channel, from, to, step)?;
            let mean = points
                .iter()
                .filter_map(|p| p.residual_ma.map(|a| (a.avg, p.count)))
                .fold((0.0, 0u64), |(sum, n), (avg, count)| {
                    (sum + avg * count as f64, n + count)
                });
            if mean.1 > 0 {
                let m = mean.0 / mean.1 as f64;
                measured = Some(measured.map_or(m, |x: f64| x.max(m)));
            }
        }
        tree.push(Circuit {
            id: c.id,
            parent: c.fields.parent_id,
            name: c.fields.name,
            residual_ma: measured,
        });
    }
    Ok(tree)
}

/// The most circuits one ranking looks at (their devices' hourly readings are read).
const MAX_RANKED_DEVICES: u32 = 5000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RankingQuery {
    area: Option<String>,
    days: Option<u32>,
    #[param(inline)]
    by: Option<RankBy>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `GET /api/v1/circuit-ranking`: the circuits of an area (default: the caller's), ranked by
/// their residual current's trend over `days` (default 30, at most 365; mA per day, least
/// squares over hourly means) or by their alarm count in that time; JSON, or CSV with
/// `format=csv`.
pub(super) async fn ranking(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<RankingQuery>,
) -> Result<Response, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "days {days}: between 1 and 365"
        )));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: json or csv"
            )));
        }
    };
    let by = q.by.unwrap_or(RankBy::Trend);
    let area = q
        .area
        .as_deref()
        .map(|a| query_area("area", a))
        .transpose()?;
    let to = now_ms();
    let from = to.saturating_sub(u64::from(days) * 24 * HOUR_MS);
    let store = state.store.clone();
    let mut rows = tokio::task::spawn_blocking(move || {
        let s = &store;
        if let Some(a) = &area {
            check_area(s, &caller, &format!("area {a}"), Some(a))?;
        }
        rank_rows(s, &caller, area, from, to).map_err(|e| ApiError::from_store(e, &Subject::NONE))
    })
    .await
    .map_err(|e| ApiError::internal("a store task failed", &e))??;
    rank(&mut rows, by);
    rows.truncate(q.limit.unwrap_or(100).min(10_000));
    if !csv {
        return Ok(Json(RankingView {
            from_ms: from,
            to_ms: to,
            by,
            circuits: rows,
        })
        .into_response());
    }
    let mut body = String::from("circuit_id,name,site_id,trend_ma_per_day,latest_ma,alarms\r\n");
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    for r in &rows {
        let name = r.name.replace('"', "\"\"");
        body.push_str(&format!(
            "{},\"{name}\",{},{},{},{}\r\n",
            r.circuit_id,
            r.site_id,
            num(r.trend_ma_per_day),
            num(r.latest_ma),
            r.alarms
        ));
    }
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"circuit-ranking.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// The circuits of `area` (default: the caller's scope) that have devices, with their trend,
/// latest level and alarms over `[from, to)`.
pub(crate) fn rank_rows(
    s: &crate::store::Store,
    caller: &Caller,
    area: Option<crate::store::AreaId>,
    from: UnixMs,
    to: UnixMs,
) -> Result<Vec<Ranked>, StoreError> {
    let area = area.or_else(|| caller.scope().cloned());
    let channels = s.area_channels(area.as_ref(), caller.scope(), MAX_RANKED_DEVICES)?;
    let mut by_circuit: BTreeMap<i64, Ranked> = BTreeMap::new();
    // Alarm episodes per device, read once: each counts for the circuit of its channel.
    let mut alarms_of: BTreeMap<DeviceId, Vec<Option<u8>>> = BTreeMap::new();
    for ch in &channels {
        let Some(circuit_id) = ch.circuit_id else {
            continue;
        };
        let row = match by_circuit.entry(circuit_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let Some(c) = s.get::<CircuitFields>(&circuit_id)? else {
                    continue;
                };
                e.insert(Ranked {
                    circuit_id,
                    name: c.fields.name,
                    site_id: c.fields.site_id,
                    trend_ma_per_day: None,
                    latest_ma: None,
                    alarms: 0,
                })
            }
        };
        if !alarms_of.contains_key(&ch.device) {
            let found = s.episodes(&EpisodeFilter {
                device: Some(ch.device.clone()),
                category: Some(Category::Alarm),
                from_ms: Some(from),
                to_ms: Some(to),
                limit: 10_000,
                ..EpisodeFilter::default()
            })?;
            alarms_of.insert(
                ch.device.clone(),
                found.iter().map(|e| e.key.channel).collect(),
            );
        }
        // Alarm episodes are per channel: each counts for its channel's circuit.
        let own = alarms_of
            .get(&ch.device)
            .map_or(0, |a| a.iter().filter(|c| **c == Some(ch.channel)).count());
        row.alarms += own as u64;
        if ch.measures != Measures::ResidualCurrent {
            continue;
        }
        let points: Vec<(u64, f64)> = s
            .history(&ch.device, ch.channel, from, to, HOUR_MS)?
            .iter()
            .filter_map(|p| p.residual_ma.map(|a| (p.t_ms, a.avg)))
            .collect();
        if let Some(slope) = slope_per_day(&points) {
            row.trend_ma_per_day = Some(row.trend_ma_per_day.map_or(slope, |t| t.max(slope)));
        }
        if let Some(&(_, last)) = points.last() {
            row.latest_ma = Some(row.latest_ma.map_or(last, |l| l.max(last)));
        }
    }
    Ok(by_circuit.into_values().collect())
}
