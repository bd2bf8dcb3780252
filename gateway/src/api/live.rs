//! `GET /api/v1/live`: alerts as server-sent events.
//!
//! Each [`Alert`] published on the broadcast becomes one event: its name is the alert's `what`
//! (`opened`, `escalated`, `ended`), its id the `alert_id`, its data the alert's JSON (the
//! same object as on MQTT and webhooks). A client too slow to keep up never holds up the
//! sender: the broadcast drops the oldest alerts for it, and the client gets a `lagged` event
//! `{"missed": n}` (then reload the open episodes from `/api/v1/episodes?open=true`).
//! Comments keep idle connections open through proxies. `?area=` and `?device=` keep only
//! alerts sent to that area or about that device. A caller scoped to an area gets only the
//! alerts sent to an area in its subtree (as it was when the stream opened) or about a device
//! whose grid cell is in it (an escalation above their area of their own device).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use firegrid_protocols::{DeviceId, GridId};

use super::access::{Caller, out_of_scope};
use super::error::{ApiError, Query, query_area, query_device};
use super::{ApiState, LIVE_KEEP_ALIVE};
use crate::notify::alert::{Alert, AlertKind};
use crate::store::Store;

/// What a scoped caller may see: the areas of its subtree, and the devices found in them.
#[derive(Debug)]
pub(super) struct LiveScope {
    store: Store,
    areas: HashSet<GridId>,
    devices: HashMap<String, bool>,
}

impl LiveScope {
    /// Whether the caller may see `alert`: sent to one of its areas, or about one of its
    /// devices (looked up once per device).
    pub(super) async fn allows(&mut self, alert: &Alert) -> bool {
        if self.areas.contains(&alert.area) {
            return true;
        }
        if let Some(known) = self.devices.get(&alert.device) {
            return *known;
        }
        let store = self.store.clone();
        let device = alert.device.clone();
        let grid = tokio::task::spawn_blocking(move || {
            let id = DeviceId::new(&device).ok()?;
            store.device(&id).ok()??.fields.grid_id
        })
        .await
        .ok()
        .flatten();
        let mine = grid.is_some_and(|g| self.areas.contains(&g));
        self.devices.insert(alert.device.clone(), mine);
        mine
    }
}

/// What `caller` may see of the live stream: `None` for a city-wide caller; their subtree as it
/// is now otherwise (the API's stream and the web board's).
///
/// # Errors
/// 500 when the area tree cannot be read.
pub(super) async fn live_scope(
    state: &ApiState,
    caller: &Caller,
) -> Result<Option<LiveScope>, ApiError> {
    let Some(scope) = caller.scope() else {
        return Ok(None);
    };
    let store = state.store.clone();
    let area = scope.clone();
    let areas = tokio::task::spawn_blocking(move || store.subtree(&area))
        .await
        .map_err(|e| ApiError::internal("a store task failed", &e))?
        .map_err(|e| ApiError::internal("reading the area tree", &e))?;
    Ok(Some(LiveScope {
        store: state.store.clone(),
        areas: areas.into_iter().collect(),
        devices: HashMap::new(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LiveQuery {
    area: Option<String>,
    device: Option<String>,
}

/// Which alerts a client wants.
#[derive(Debug, Clone)]
struct LiveFilter {
    area: Option<GridId>,
    device: Option<DeviceId>,
}

impl LiveFilter {
    fn wants(&self, alert: &Alert) -> bool {
        self.area.as_ref().is_none_or(|a| *a == alert.area)
            && self
                .device
                .as_ref()
                .is_none_or(|d| d.as_str() == alert.device)
    }
}

/// The SSE event name of an alert.
pub(crate) const fn event_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Opened => "opened",
        AlertKind::Escalated => "escalated",
        AlertKind::Ended => "ended",
    }
}

fn alert_event(alert: &Alert) -> Event {
    let event = Event::default()
        .event(event_name(alert.what))
        .id(alert.alert_id.to_string());
    match serde_json::to_string(alert) {
        Ok(json) => event.data(json),
        // An alert is plain data: this does not happen; say so rather than drop it silently.
        Err(e) => {
            tracing::error!(error = %e, alert = alert.alert_id, "cannot encode an alert");
            event.data("{}")
        }
    }
}

pub(super) async fn live(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = LiveFilter {
        area: q
            .area
            .as_deref()
            .map(|a| query_area("area", a))
            .transpose()?,
        device: q
            .device
            .as_deref()
            .map(|d| query_device("device", d))
            .transpose()?,
    };
    let scope = live_scope(&state, &caller).await?;
    if let (Some(scope), Some(a), Some(area)) = (&scope, &filter.area, caller.scope())
        && !scope.areas.contains(a)
    {
        return Err(out_of_scope(&format!("area {a}"), Some(a), area));
    }
    let rx = state.live.subscribe();
    let closing = state.closing.clone();
    let stream = futures_util::stream::unfold(
        (rx, closing, filter, scope),
        |(mut rx, closing, filter, mut scope)| async move {
            loop {
                let next = tokio::select! {
                    biased;
                    () = closing.cancelled() => return None,
                    next = rx.recv() => next,
                };
                let event = match next {
                    Ok(alert) if filter.wants(&alert) => {
                        if let Some(scope) = &mut scope
                            && !scope.allows(&alert).await
                        {
                            continue;
                        }
                        alert_event(&alert)
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{missed}}}")),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, closing, filter, scope)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(LIVE_KEEP_ALIVE)))
}
