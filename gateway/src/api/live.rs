//! `GET /api/v1/live`: alerts and ticket moves as server-sent events, resumable without loss.
//!
//! The stream is read from the journal, not from memory: every alert of the outbox in its
//! queue order, and every ticket move (`acknowledged`, `dispatched`, ... — `raised` is the
//! `opened` alert), merged in time order (each source keeping its own order). The live alerts'
//! broadcast and the API's ticket moves only wake it; it also looks every second. So nothing a
//! client was sent is ever skipped, however slow the client: what it has not read waits in the
//! journal, not in a queue that could drop it.
//!
//! - An alert is an event named after its `what` (`opened`, `escalated`, `ended`) whose data is
//!   the alert's JSON (the same object as on MQTT and webhooks).
//! - A ticket move is an event named `ticket` whose data is
//!   `{"episode":12,"state":"acknowledged","who":"li","at_ms":…,"note":"…","grid":"g1","device":"hz-1"}`.
//! - Every event's `id` is the stream's cursor `{alerts}-{moves}` (the outbox queue position and
//!   the ticket-step id it has reached). A client that reconnects with `Last-Event-ID` (browsers
//!   do it by themselves), or `?after=` with that value, gets every event after it, then the
//!   live ones; without either it starts from now. Replay reaches back as far as the outbox
//!   keeps alerts (delivered ones are pruned after their retention).
//! - `?area=` keeps the events of that area's **subtree**: alerts sent to an area of it or about
//!   a device whose grid cell is in it, ticket moves of episodes of its grid cells. `?device=`
//!   keeps one device's. A caller scoped to an area gets only its subtree (`?area=` must lie in
//!   it).
//!
//! Comments keep idle connections open through proxies.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;

use firegrid_protocols::{DeviceId, GridId};

use super::access::{Caller, out_of_scope};
use super::error::{ApiError, Query, query_area, query_device};
use super::{ApiState, LIVE_KEEP_ALIVE};
use crate::metrics::{AlertChannel, AlertResult};
use crate::notify::alert::{Alert, AlertKind};
use crate::store::{NotifyChannel, Store, TicketMove};

/// How often an idle stream looks at the journal when nothing woke it.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Events read from the journal per look at most (of each source).
const READ_BATCH: u32 = 256;

/// Where a stream is: the outbox queue position and the ticket step it has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    alerts: i64,
    moves: i64,
}

impl Cursor {
    /// `{alerts}-{moves}`, both non-negative decimal.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (a, m) = s.trim().split_once('-')?;
        let digits =
            |x: &str| !x.is_empty() && x.len() <= 19 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(a) || !digits(m) {
            return None;
        }
        Some(Self {
            alerts: a.parse().ok()?,
            moves: m.parse().ok()?,
        })
    }

    fn id(self) -> String {
        format!("{}-{}", self.alerts, self.moves)
    }
}

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
        let grid = grid_of(&self.store, &alert.device).await;
        let mine = grid.is_some_and(|g| self.areas.contains(&g));
        self.devices.insert(alert.device.clone(), mine);
        mine
    }
}

/// The areas of `area`'s subtree, read off the runtime.
async fn subtree_of(store: &Store, area: GridId) -> Result<HashSet<GridId>, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.subtree(&area))
        .await
        .map_err(|e| ApiError::internal("a store task failed", &e))?
        .map_err(|e| ApiError::internal("reading the area tree", &e))
        .map(|v| v.into_iter().collect())
}

/// The grid cell `device` is placed in, if it is a registered device with one (read off the
/// runtime; `None` also when the store cannot say).
async fn grid_of(store: &Store, device: &str) -> Option<GridId> {
    let store = store.clone();
    let device = device.to_owned();
    tokio::task::spawn_blocking(move || {
        let id = DeviceId::new(&device).ok()?;
        store.device(&id).ok()??.fields.grid_id
    })
    .await
    .ok()
    .flatten()
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
    Ok(Some(LiveScope {
        store: state.store.clone(),
        areas: subtree_of(&state.store, scope.clone()).await?,
        devices: HashMap::new(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct LiveQuery {
    area: Option<String>,
    device: Option<String>,
    after: Option<String>,
}

/// Which events a client may and wants to see.
#[derive(Debug)]
struct Sight {
    store: Store,
    /// The subtree shown (`?area=`, else the caller's scope); `None`: everything.
    areas: Option<HashSet<GridId>>,
    device: Option<DeviceId>,
    /// Each device's grid cell, looked up once.
    grids: HashMap<String, Option<GridId>>,
}

impl Sight {
    fn device_ok(&self, device: &str) -> bool {
        self.device.as_ref().is_none_or(|d| d.as_str() == device)
    }

    /// An alert sent to an area of the subtree, or about one of its devices.
    async fn sees_alert(&mut self, alert: &Alert) -> bool {
        if !self.device_ok(&alert.device) {
            return false;
        }
        let Some(areas) = &self.areas else {
            return true;
        };
        if areas.contains(&alert.area) {
            return true;
        }
        if !self.grids.contains_key(&alert.device) {
            let grid = grid_of(&self.store, &alert.device).await;
            self.grids.insert(alert.device.clone(), grid);
        }
        self.grids
            .get(&alert.device)
            .and_then(Option::as_ref)
            .is_some_and(|g| areas.contains(g))
    }

    /// A ticket move of an episode of the subtree's grid cells.
    fn sees_move(&self, m: &TicketMove) -> bool {
        self.device_ok(&m.device)
            && self
                .areas
                .as_ref()
                .is_none_or(|areas| GridId::new(&m.grid).is_ok_and(|g| areas.contains(&g)))
    }
}

/// One thing read from the journal.
enum Item {
    /// An alert (`None`: its payload does not parse; skipped, the cursor moves past it).
    Alert(i64, Option<Box<Alert>>),
    Move(TicketMove),
}

/// Reads what came after `cursor`, merged by time, each source in its own order.
async fn read_after(store: &Store, cursor: Cursor) -> Result<Vec<Item>, String> {
    let store = store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let alerts = store.notifications_after(cursor.alerts, NotifyChannel::Mqtt, READ_BATCH)?;
        let moves = store.ticket_moves_after(cursor.moves, READ_BATCH)?;
        Ok::<_, crate::store::StoreError>((alerts, moves))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let (alerts, moves) = read;
    let mut alerts = alerts
        .into_iter()
        .map(|(seq, n)| {
            let alert = serde_json::from_value::<Alert>(n.fields.payload).map(|mut a| {
                a.alert_id = u64::try_from(n.id).unwrap_or(0);
                a
            });
            (seq, alert)
        })
        .peekable();
    let mut moves = moves.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        let take_alert = match (alerts.peek(), moves.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, a)), Some(m)) => a.as_ref().map_or(0, |a| a.sent_ms) <= m.at_ms,
        };
        if take_alert {
            if let Some((seq, alert)) = alerts.next() {
                out.push(Item::Alert(seq, alert.ok().map(Box::new)));
            }
        } else if let Some(m) = moves.next() {
            out.push(Item::Move(m));
        }
    }
    Ok(out)
}

/// The SSE event name of an alert.
pub(crate) const fn event_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Opened => "opened",
        AlertKind::Escalated => "escalated",
        AlertKind::Ended => "ended",
    }
}

fn json_event(name: &str, id: Cursor, data: &impl serde::Serialize) -> Event {
    let event = Event::default().event(name).id(id.id());
    match serde_json::to_string(data) {
        Ok(json) => event.data(json),
        // Plain data: this does not happen; say so rather than drop it silently.
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a live event");
            event.data("{}")
        }
    }
}

pub(super) async fn live(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let area = q
        .area
        .as_deref()
        .map(|a| query_area("area", a))
        .transpose()?;
    let device = q
        .device
        .as_deref()
        .map(|d| query_device("device", d))
        .transpose()?;
    let resume = match (headers.get("last-event-id"), &q.after) {
        (_, Some(after)) => Some(after.clone()),
        (Some(h), None) => Some(h.to_str().unwrap_or("?").to_owned()),
        (None, None) => None,
    };
    let resume = resume
        .map(|r| {
            Cursor::parse(&r).ok_or_else(|| {
                ApiError::unprocessable(
                    "Last-Event-ID (or after) must be an event id of this stream: {alerts}-{moves}",
                )
            })
        })
        .transpose()?;
    let subtree = |a: GridId| subtree_of(&state.store, a);
    let areas = match (caller.scope(), &area) {
        (None, None) => None,
        (None, Some(a)) => Some(subtree(a.clone()).await?),
        (Some(scope), a) => {
            let mine = subtree(scope.clone()).await?;
            match a {
                Some(a) if !mine.contains(a) => {
                    return Err(out_of_scope(&format!("area {a}"), Some(a), scope));
                }
                Some(a) => Some(subtree(a.clone()).await?),
                None => Some(mine),
            }
        }
    };
    // Subscribed before the start is read: nothing falls between the two.
    let wake = state.live.subscribe();
    let moved = state.ticket_moves.subscribe();
    let start = match resume {
        Some(c) => c,
        None => {
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, crate::store::StoreError>(Cursor {
                    alerts: store.max_notification_seq()?,
                    moves: store.max_ticket_step()?,
                })
            })
            .await
            .map_err(|e| ApiError::internal("a store task failed", &e))?
            .map_err(|e| ApiError::internal("reading the journal", &e))?
        }
    };
    let sight = Sight {
        store: state.store.clone(),
        areas,
        device,
        grids: HashMap::new(),
    };
    let follower = Follower {
        store: state.store.clone(),
        metrics: state.metrics.clone(),
        closing: state.closing.clone(),
        wake,
        moved,
        cursor: start,
        ready: VecDeque::new(),
        sight,
    };
    let stream = futures_util::stream::unfold(follower, |mut f| async move {
        let event = f.next().await?;
        Some((Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(LIVE_KEEP_ALIVE)))
}

/// One client's stream.
struct Follower {
    store: Store,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    closing: tokio_util::sync::CancellationToken,
    wake: tokio::sync::broadcast::Receiver<std::sync::Arc<Alert>>,
    moved: tokio::sync::broadcast::Receiver<crate::model::EpisodeId>,
    cursor: Cursor,
    ready: VecDeque<Event>,
    sight: Sight,
}

impl Follower {
    /// The next event to send; `None` when the server closes.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            match read_after(&self.store, self.cursor).await {
                Ok(items) if !items.is_empty() => {
                    for item in items {
                        match item {
                            Item::Alert(seq, alert) => {
                                self.cursor.alerts = seq;
                                let Some(alert) = alert else { continue };
                                if self.sight.sees_alert(&alert).await {
                                    self.metrics.alert(AlertChannel::Sse, AlertResult::Ok);
                                    self.ready.push_back(json_event(
                                        event_name(alert.what),
                                        self.cursor,
                                        &*alert,
                                    ));
                                }
                            }
                            Item::Move(m) => {
                                self.cursor.moves = m.step_id;
                                if self.sight.sees_move(&m) {
                                    self.ready.push_back(json_event("ticket", self.cursor, &m));
                                }
                            }
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("live stream: journal not read, tried again: {e}"),
            }
            // Nothing new: wait for a wake-up, or look again in a while.
            tokio::select! {
                biased;
                () = self.closing.cancelled() => return None,
                r = self.wake.recv() => closed_pause(r.err()).await,
                r = self.moved.recv() => closed_pause(r.err()).await,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }
}

/// A closed wake-up channel would answer at once forever: wait as if it had not answered.
async fn closed_pause(e: Option<tokio::sync::broadcast::error::RecvError>) {
    if matches!(e, Some(tokio::sync::broadcast::error::RecvError::Closed)) {
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor::parse("12-3").unwrap();
        assert_eq!((c.alerts, c.moves), (12, 3));
        assert_eq!(c.id(), "12-3");
        for bad in [
            "",
            "12",
            "-3",
            "12-",
            "a-1",
            "1-2-3",
            "99999999999999999999-1",
            "+1-2",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
