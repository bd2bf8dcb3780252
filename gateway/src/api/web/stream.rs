//! `GET /board/live`: the board's (and the field page's) rows as server-sent events, from the
//! same alert broadcast and scope filter as `/api/v1/live`.
//!
//! Each alert the session may see becomes one event named after the alert (`opened`,
//! `escalated`, `ended`) whose data is the episode's row as the page renders it (`?view=card`:
//! the field page's card), or an event `gone` with the element's id when the episode needs
//! no one any more. `lagged`: this client fell behind (the page reloads) — also the first
//! event of a stream the browser reopened after losing it (it sends `Last-Event-ID`): alerts of
//! the gap were not kept for it, and the reloaded page shows the store's current state.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use firegrid_protocols::GridId;

use super::board::{may_move_tickets, page_area, read, row};
use super::i18n::Lang;
use super::place::{self, Hazard};
use super::session::WebSession;
use crate::api::access::Caller;
use crate::api::live::{event_name, live_scope};
use crate::api::{ApiState, LIVE_KEEP_ALIVE, now_ms};
use crate::notify::alert::Alert;
use crate::store::Store;

#[derive(Debug, Deserialize)]
pub(super) struct LiveQuery {
    area: Option<String>,
    view: Option<String>,
}

/// What one stream renders.
#[derive(Debug, Clone)]
struct View {
    lang: Lang,
    csrf: String,
    card: bool,
    actions: bool,
    /// The subtree of `?area=`, when given.
    areas: Option<HashSet<GridId>>,
    /// The deadlines' settings (cards and rows show them).
    workflow: crate::workflow::WorkflowConfig,
}

/// The event of one alert, or `None` when the page does not show it.
fn render(store: &Store, view: &View, alert: &Alert) -> Option<Event> {
    // A commissioning test's alert is its installer's (the install page follows it).
    if alert.test {
        return None;
    }
    let episode = store.episode(alert.episode).ok()??;
    if let Some(areas) = &view.areas
        && !areas.contains(&episode.grid)
    {
        return None;
    }
    let id = episode.id;
    if !place::needs_someone(&episode) {
        let element = if view.card { "card" } else { "ep" };
        return Some(
            Event::default()
                .event("gone")
                .data(format!("{element}-{id}")),
        );
    }
    let hazard: Hazard = place::locate(store, episode, &mut HashMap::new(), &view.workflow).ok()?;
    let now = now_ms();
    let html = if view.card {
        super::field::card(view.lang, &view.csrf, &hazard, now)
    } else {
        row(view.lang, &view.csrf, &hazard, now, view.actions)
    };
    Some(
        Event::default()
            .event(event_name(alert.what))
            .id(alert.alert_id.to_string())
            .data(html.into_string()),
    )
}

/// `GET /board/live`.
pub(super) async fn live(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Response {
    // A reconnection: what happened in the gap is on the page once it reloads.
    let resumed = headers.contains_key("last-event-id");
    let lang = session.lang;
    let c = caller.clone();
    let areas = read(&state, lang, move |s| {
        let Some(area) = page_area(s, &c, q.area.as_deref())?.filter(|_| q.area.is_some()) else {
            return Ok(None);
        };
        let subtree = s.subtree(&area).map_err(|e| {
            crate::api::error::ApiError::from_store(e, &crate::api::error::Subject::NONE)
        })?;
        Ok(Some(subtree.into_iter().collect::<HashSet<_>>()))
    })
    .await;
    let areas = match areas {
        Ok(a) => a,
        Err(r) => return r,
    };
    let scope = match live_scope(&state, &caller).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let view = View {
        lang,
        csrf: session.csrf,
        card: q.view.as_deref() == Some("card"),
        actions: may_move_tickets(&caller),
        areas,
        workflow: state.workflow.clone(),
    };
    let rx = state.live.subscribe();
    let closing = state.closing.clone();
    let store = state.store.clone();
    let gap = futures_util::stream::iter(
        resumed.then(|| Ok::<_, Infallible>(Event::default().event("lagged").data("reconnected"))),
    );
    let stream = futures_util::stream::unfold(
        (rx, closing, scope, view, store),
        |(mut rx, closing, mut scope, view, store)| async move {
            loop {
                let next = tokio::select! {
                    biased;
                    () = closing.cancelled() => return None,
                    next = rx.recv() => next,
                };
                let event = match next {
                    Ok(alert) => {
                        if let Some(scope) = &mut scope
                            && !scope.allows(&alert).await
                        {
                            continue;
                        }
                        let (s, v) = (store.clone(), view.clone());
                        match tokio::task::spawn_blocking(move || render(&s, &v, &alert)).await {
                            Ok(Some(event)) => event,
                            _ => continue,
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((
                    Ok::<_, Infallible>(event),
                    (rx, closing, scope, view, store),
                ));
            }
        },
    );
    Sse::new(futures_util::StreamExt::chain(gap, stream))
        .keep_alive(KeepAlive::new().interval(LIVE_KEEP_ALIVE))
        .into_response()
}
