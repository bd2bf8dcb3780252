//! The monitoring centre's board (`GET /board`): the open hazards of the user's area, most
//! severe and newest first, live (rows come from `/board/live`); ticket moves from the board
//! (`POST /episodes/{id}/ticket`, the API's [`ticket_move`]); the device roster (`GET
//! /devices`); the area tree for navigation.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use firegrid_protocols::GridId;

use super::i18n::commission::C;
use super::i18n::evidence as ev;
use super::i18n::{Lang, Msg};
use super::layout::{self, age, time};
use super::place::{self, Hazard};
use super::session::WebSession;
use crate::api::access::{Caller, check_area};
use crate::api::episodes::ticket_move;
use crate::api::error::{ApiError, PathId, query_area};
use crate::api::{ApiState, now_ms};
use crate::model::{DeviceKind, DeviceState, TicketState, UnixMs};
use crate::store::{
    Area, AreaFields, AreaFilter, DeviceFilter, SiteFields, SiteFilter, StoreError,
};

/// Whether the caller's role may move tickets (the API route's roles).
pub(crate) fn may_move_tickets(caller: &Caller) -> bool {
    super::api_roles(Method::POST, "/api/v1/episodes/{id}/ticket").allows(caller.role())
}

/// A store task's answer, or the error page.
pub(crate) async fn read<T: Send + 'static>(
    state: &ApiState,
    lang: Lang,
    f: impl FnOnce(&crate::store::Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(layout::error_page(lang, e.status(), e.message())),
        Err(e) => {
            tracing::error!(error = %e, "a web page's store task failed");
            Err(layout::error_page(
                lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                "task",
            ))
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::from_store(e, &crate::api::error::Subject::NONE)
}

/// The area a page is about: `?area=` (within the caller's scope: else 403), else their scope.
pub(crate) fn page_area(
    store: &crate::store::Store,
    caller: &Caller,
    area: Option<&str>,
) -> Result<Option<GridId>, ApiError> {
    match area.filter(|a| !a.is_empty()) {
        Some(a) => {
            let a = query_area("area", a)?;
            check_area(store, caller, &format!("area {a}"), Some(&a))?;
            Ok(Some(a))
        }
        None => Ok(caller.scope().cloned()),
    }
}

/// The areas the caller may see, as a tree (children under parents, by name).
fn area_tree(areas: &[Area], scope: Option<&GridId>, current: Option<&GridId>) -> Markup {
    let mut children: HashMap<Option<&GridId>, Vec<&Area>> = HashMap::new();
    let ids: Vec<&GridId> = areas.iter().map(|a| &a.id).collect();
    for a in areas {
        // A root of what the caller sees: no parent, or a parent outside their subtree.
        let parent = a.fields.parent_id.as_ref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(a);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.fields.name.cmp(&b.fields.name));
    }
    fn branch(
        children: &HashMap<Option<&GridId>, Vec<&Area>>,
        parent: Option<&GridId>,
        current: Option<&GridId>,
    ) -> Markup {
        html! {
            @if let Some(list) = children.get(&parent) {
                ul {
                    @for a in list {
                        li {
                            a href=(format!("/board?area={}", a.id)) .active[current == Some(&a.id)] {
                                (a.fields.name) small { " " (a.fields.level.as_str()) }
                            }
                            (branch(children, Some(&a.id), current))
                        }
                    }
                }
            }
        }
    }
    let _ = scope;
    branch(&children, None, current)
}

/// One hazard as a board row (its id `ep-{id}`: live updates replace it).
pub(crate) fn row(lang: Lang, csrf: &str, h: &Hazard, now: UnixMs, actions: bool) -> Markup {
    let e = &h.episode;
    let cat = e.key.category.as_str();
    html! {
        tr id=(format!("ep-{}", e.id)) .hazard data-category=(cat) data-ticket=(e.ticket.as_str())
            data-started=(e.started_ms) .open[e.ended_ms.is_none()] {
            td { span.cat.(cat) { (lang.category(e.key.category)) }
                @if e.ended_ms.is_some() { br; small.muted { (lang.t(Msg::Ended)) } } }
            td.place {
                @if let Some(s) = &h.site { strong { (s.fields.name) } br; small { (s.fields.address) } }
                @else { strong { (e.key.device) } }
                br; small.muted { (e.grid) @if let Some(r) = &h.room { " · " (r) } " · " (e.key.device)
                    @if let Some(c) = e.key.channel { " #" (c) } }
            }
            td.value { @if let Some(l) = &e.peak { (place::level(l)) } @else if let Some(d) = &e.detail { (d) } @else { "—" } }
            td { (age(e.started_ms, now)) br; small.muted { (time(e.started_ms)) } }
            td.esc { @if e.escalation > 0 { span.badge.esc { "↑" (e.escalation) } } @else { "—" } }
            td { span.ticket.(e.ticket.as_str()) { (lang.ticket(e.ticket)) } }
            td.deadline { (super::evidence::deadlines(lang, h)) }
            td.assignee { (super::evidence::assignee(lang, h)) }
            td.actions { @if actions { (ticket_buttons(lang, csrf, e.id, e.ticket, "row")) } }
        }
    }
}

/// The ticket moves that make sense from `ticket`, as small forms (plain forms without
/// JavaScript; with htmx the row or card is replaced by the answer).
pub(crate) fn ticket_buttons(
    lang: Lang,
    csrf: &str,
    id: u64,
    ticket: TicketState,
    view: &str,
) -> Markup {
    let target = if view == "card" {
        "closest article"
    } else {
        "closest tr"
    };
    let moves = [
        (TicketState::Acknowledged, Msg::Acknowledge),
        (TicketState::Dispatched, Msg::Dispatch),
    ];
    html! {
        @for (to, label) in moves {
            @if ticket < to {
                form.inline method="post" action=(format!("/episodes/{id}/ticket"))
                    hx-post=(format!("/episodes/{id}/ticket")) hx-target=(target) hx-swap="outerHTML" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="to" value=(to.as_str());
                    input type="hidden" name="view" value=(view);
                    button.btn.(to.as_str()) type="submit" { (lang.t(label)) }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct BoardQuery {
    area: Option<String>,
}

/// `GET /board`.
pub(super) async fn board(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<BoardQuery>,
) -> Response {
    let lang = session.lang;
    let c = caller.clone();
    let workflow = state.workflow.clone();
    let found = read(&state, lang, move |s| {
        let area = page_area(s, &c, q.area.as_deref())?;
        let hazards = place::open_hazards(s, area.as_ref(), &workflow).map_err(store_error)?;
        let areas = s
            .list::<AreaFields>(&AreaFilter::default(), c.scope())
            .map_err(store_error)?;
        Ok((area, hazards, areas))
    })
    .await;
    let (area, hazards, areas) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = now_ms();
    let actions = may_move_tickets(&caller);
    let live = match &area {
        Some(a) => format!("/board/live?area={a}"),
        None => "/board/live".to_string(),
    };
    let body = html! {
        div.board {
            aside.tree {
                h2 { (lang.t(Msg::Areas)) }
                a href="/board" .active[area.as_ref() == caller.scope()] { (lang.t(Msg::AllAreas)) }
                (area_tree(&areas, caller.scope(), area.as_ref()))
            }
            main {
                div.bar {
                    h1 { (lang.t(Msg::OpenHazards)) " " span #count.count { (hazards.len()) } }
                    span #live.live data-src=(live) data-offline=(lang.t(Msg::Offline)) { (lang.t(Msg::Live)) }
                    button #sound.btn.quiet type="button" data-on=(lang.t(Msg::SoundOff)) { (lang.t(Msg::SoundOn)) }
                }
                table.hazards {
                    thead { tr {
                        th { (lang.t(Msg::Category)) } th { (lang.t(Msg::Place)) } th { (lang.t(Msg::Value)) }
                        th { (lang.t(Msg::Age)) } th { (lang.t(Msg::Escalation)) } th { (lang.t(Msg::Ticket)) }
                        th { (ev::t(lang, ev::Ev::Deadline)) } th { (ev::t(lang, ev::Ev::Assignee)) }
                        th { (lang.t(Msg::Actions)) }
                    } }
                    tbody #hazards {
                        @for h in &hazards { (row(lang, &session.csrf, h, now, actions)) }
                    }
                }
                p #empty.empty hidden[!hazards.is_empty()] { (lang.t(Msg::NoHazards)) }
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/board",
        lang.t(Msg::Board),
        &body,
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct TicketForm {
    to: TicketState,
    note: Option<String>,
    view: Option<String>,
}

/// `POST /episodes/{id}/ticket`: the API's ticket move; answers htmx with the new row or card,
/// a plain form with a redirect back.
pub(super) async fn ticket(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    headers: HeaderMap,
    id: PathId,
    Form(form): Form<TicketForm>,
) -> Response {
    let lang = session.lang;
    let id = match id.episode() {
        Ok(id) => id,
        Err(e) => return layout::error_page(lang, e.status(), e.message()),
    };
    let note = form.note.filter(|n| !n.trim().is_empty());
    let episode = match ticket_move(&state, caller.clone(), id, form.to, note, None).await {
        Ok(e) => e,
        Err(e) => return layout::error_page(lang, e.status(), e.message()),
    };
    let view = form.view.as_deref().unwrap_or("row");
    if headers.get("hx-request").is_none() {
        return Redirect::to(if view == "card" { "/field" } else { "/board" }).into_response();
    }
    let workflow = state.workflow.clone();
    let hazard = read(&state, lang, move |s| {
        place::locate(s, episode, &mut HashMap::new(), &workflow).map_err(store_error)
    })
    .await;
    match hazard {
        Ok(h) if view == "card" => {
            super::field::card(lang, &session.csrf, &h, now_ms()).into_response()
        }
        Ok(h) => row(lang, &session.csrf, &h, now_ms(), may_move_tickets(&caller)).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DeviceQuery {
    state: Option<String>,
    kind: Option<String>,
    area: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(s: Option<&str>) -> Option<T> {
    s.filter(|s| !s.is_empty())
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s.to_string())).ok())
}

/// `GET /devices`: the roster, filtered.
pub(super) async fn devices(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let lang = session.lang;
    let dev_state: Option<DeviceState> = parse(q.state.as_deref());
    let kind: Option<DeviceKind> = parse(q.kind.as_deref());
    let c = caller.clone();
    let area_q = q.area.clone();
    let workflow = state.workflow.clone();
    let found = read(&state, lang, move |s| {
        let area = page_area(s, &c, area_q.as_deref())?;
        let filter = DeviceFilter {
            state: dev_state,
            kind,
            site_id: None,
            area_id: area,
            limit: 1000,
            offset: 0,
        };
        let devices = s.devices(&filter).map_err(store_error)?;
        let hazards = place::open_hazards(s, c.scope(), &workflow).map_err(store_error)?;
        let sites: HashMap<i64, String> = s
            .list::<SiteFields>(&SiteFilter::default(), c.scope())
            .map_err(store_error)?
            .into_iter()
            .map(|r| (r.id, r.fields.name))
            .collect();
        // The roster's columns (commissioning): latest status and last self-test.
        let ids: Vec<_> = devices.iter().map(|d| d.id.clone()).collect();
        let roster = s.roster_statuses(&ids).map_err(store_error)?;
        Ok((devices, hazards, sites, roster))
    })
    .await;
    let (devices, hazards, sites, roster) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut open: HashMap<String, Vec<&Hazard>> = HashMap::new();
    for h in &hazards {
        open.entry(h.episode.key.device.to_string())
            .or_default()
            .push(h);
    }
    let states = [
        DeviceState::Registered,
        DeviceState::Commissioned,
        DeviceState::InService,
        DeviceState::Decommissioned,
    ];
    let kinds = [
        DeviceKind::ElectricalFireMonitor,
        DeviceKind::SmokeAlarm,
        DeviceKind::LegacyModbus,
    ];
    let body = html! {
        main.wide {
            h1 { (lang.t(Msg::Devices)) " " span.count { (devices.len()) } }
            form.filters method="get" action="/devices" {
                label { (lang.t(Msg::State)) " "
                    select name="state" { option value="" { (lang.t(Msg::Any)) }
                        @for st in states { option value=(json_name(&st)) selected[dev_state == Some(st)] { (lang.device_state(st)) } } } }
                label { (lang.t(Msg::Kind)) " "
                    select name="kind" { option value="" { (lang.t(Msg::Any)) }
                        @for k in kinds { option value=(json_name(&k)) selected[kind == Some(k)] { (lang.device_kind(k)) } } } }
                label { (lang.t(Msg::Areas)) " " input name="area" value=(q.area.as_deref().unwrap_or("")) size="12"; }
                button.btn type="submit" { (lang.t(Msg::Filter)) }
            }
            table.devices {
                thead { tr { th { (lang.t(Msg::DeviceId)) } th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::State)) }
                    th { (lang.t(Msg::Cell)) } th { (lang.t(Msg::Site)) } th { (lang.t(Msg::OpenHazards)) } th { (lang.t(Msg::Version)) }
                    th { (lang.c(C::Online)) } th { (lang.c(C::Battery)) } th { (lang.c(C::Signal)) } th { (lang.c(C::Firmware)) }
                    th { (lang.c(C::ConfigInForce)) } th { (lang.c(C::LastSelfTest)) } } }
                tbody {
                    @for d in &devices {
                        tr {
                            td { a href=(format!("/install?device={}", d.id)) { code { (d.id) } } }
                            td { (lang.device_kind(d.fields.kind)) }
                            td { span.dstate.(json_name(&d.fields.state)) { (lang.device_state(d.fields.state)) } }
                            td { @if let Some(g) = &d.fields.grid_id { (g) } }
                            td { @if let Some(s) = d.fields.site_id { (sites.get(&s).map_or("", String::as_str)) } }
                            td { @for h in open.get(d.id.as_str()).into_iter().flatten() {
                                span.cat.(h.episode.key.category.as_str()) { (lang.category(h.episode.key.category)) } " " } }
                            td { "v" (d.fields.config.version) " · " a href=(format!("/devices/{}/trend", d.id)) { (lang.t(Msg::Trend)) } }
                            (roster_cells(lang, d, roster.get(d.id.as_str())))
                        }
                    }
                }
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/devices",
        lang.t(Msg::Devices),
        &body,
    )
    .into_response()
}

/// The API's name of an enum value (`in_service`).
/// The roster's cells of a device: online, last seen, battery, signal, firmware, configuration
/// in force / wanted, last self-test.
fn roster_cells(
    lang: Lang,
    d: &crate::store::Device,
    r: Option<&crate::store::RosterStatus>,
) -> Markup {
    let s = r.and_then(|r| r.status.as_ref());
    let wanted = i64::from(d.fields.config.version);
    let in_force = s.and_then(|s| s.config_version);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "–".to_owned());
    html! {
        td.online { @match s.and_then(|s| crate::commissioning::online(s.online, s.seen_ms, d.fields.config.heartbeat_interval_s, now_ms())) {
            Some(true) => span.on { (lang.c(C::Online)) },
            Some(false) => span.off { (lang.c(C::Offline)) },
            None => span.muted { (lang.c(C::Unknown)) },
        } @if let Some(s) = s { br; small { (time(s.seen_ms)) } } }
        td.battery { (dash(s.and_then(|s| s.battery_mv).map(|v| format!("{v} mV")))) }
        td.signal { (dash(s.and_then(|s| s.signal_dbm).map(|v| format!("{v} dBm")))) }
        td.firmware { (dash(s.and_then(|s| s.firmware.clone()))) }
        td.config.stale[in_force.is_some_and(|v| v != wanted)] { (dash(in_force.map(|v| v.to_string()))) " / " (wanted) }
        td.selftest { @if let Some((at, result)) = r.and_then(|r| r.last_self_test.as_ref()) { strong { (result) } " " small { (time(*at)) } } @else { "–" } }
    }
}

pub(crate) fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
