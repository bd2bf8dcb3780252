//! `GET /api/v1/circuits/{id}/leak-trace`: where under a circuit the leak most likely sits
//! ([`crate::circuits::trace`]), from the mean residual current each circuit's monitors
//! measured over a window.
//!
//! Query: `from`, `to` (ms since the epoch; default the last hour), `min_ma` (the floor below
//! which no leak is named; default 30 mA, the lower end of GB 14287.2's residual set-points).
//! A circuit's measurement is the largest mean over the residual-current channels of the
//! devices bound to it (two monitors on one circuit measure the same current).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use firegrid_protocols::thresholds::Threshold;

use super::access::Caller;
use super::episodes::time_range;
use super::error::{ApiError, Json, PathId, Query, Subject};
use super::{ApiState, blocking, now_ms};
use crate::circuits::{Circuit, TraceError, trace};
use crate::model::UnixMs;
use crate::store::{CircuitFields, CircuitFilter, DeviceFilter, HOUR_MS, Noun, StoreError};

/// The default floor, mA.
const DEFAULT_MIN_MA: f64 = 30.0;

#[derive(Debug, Deserialize)]
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
        let devices = s.devices(&DeviceFilter {
            site_id: Some(site),
            limit: 10_000,
            ..DeviceFilter::default()
        })?;
        let mut tree = Vec::with_capacity(circuits.len());
        for c in circuits {
            let mut measured: Option<f64> = None;
            for d in devices.iter().filter(|d| d.fields.circuit_id == Some(c.id)) {
                for ch in d
                    .fields
                    .config
                    .channels
                    .iter()
                    .filter(|ch| matches!(ch.threshold, Threshold::ResidualMa(_)))
                {
                    let whole = to.saturating_sub(from).max(1);
                    let points = s.history(&d.id, ch.channel, from, to, whole)?;
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
            }
            tree.push(Circuit {
                id: c.id,
                parent: c.fields.parent_id,
                name: c.fields.name,
                residual_ma: measured,
            });
        }
        Ok(tree)
    })
    .await?;
    match trace(&tree, id, min_ma) {
        Ok(t) => Ok(Json(serde_json::json!({
            "from_ms": from,
            "to_ms": to,
            "trace": t,
        }))
        .into_response()),
        Err(e @ TraceError::Unmeasured(_)) => Err(ApiError::conflict(e.to_string())),
        Err(e @ TraceError::Unknown(_)) => Err(ApiError::not_found(e.to_string())),
    }
}
