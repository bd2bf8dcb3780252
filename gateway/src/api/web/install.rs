//! The installer's page (`GET /install`): the devices that published without being registered,
//! a device found by id with its binding (site, room, circuit, grid cell) and its set-points
//! with the GB ranges beside them. Changes go through the API's own functions
//! ([`update_record`], [`config_change`]): the server checks the ranges and the scope.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::thresholds::Limits;

use super::board::{json_name, read};
use super::i18n::{Lang, Msg};
use super::layout::{self, time};
use super::session::WebSession;
use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::device_config::ConfigBody;
use crate::api::devices::config_change;
use crate::api::error::{ApiError, PathId, Subject, device_id};
use crate::api::resource::update_record;
use crate::store::{
    AreaFields, AreaFilter, AreaLevel, Device, DeviceFields, RoomFields, RoomFilter, SiteFields,
    SiteFilter,
};

/// Channel rows the set-point form offers.
const FORM_CHANNELS: u8 = 4;

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::from_store(e, &Subject::NONE)
}

#[derive(Debug, Deserialize)]
pub(super) struct InstallQuery {
    device: Option<String>,
    saved: Option<String>,
}

/// What the page shows of one device.
struct Found {
    device: Device,
    commission: super::commission::Commission,
    sites: Vec<(i64, String)>,
    rooms: Vec<(i64, String)>,
    cells: Vec<String>,
}

/// `GET /install`.
pub(super) async fn install(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<InstallQuery>,
) -> Response {
    let lang = session.lang;
    let c = caller.clone();
    let wanted = q.device.clone().filter(|d| !d.trim().is_empty());
    let found = read(&state, lang, move |s| {
        let pending = s.list_pending().map_err(store_error)?;
        let Some(id) = wanted else {
            return Ok((pending, None));
        };
        let id = device_id("device", id.trim())?;
        let Some(device) = s
            .get_scoped::<DeviceFields>(&id, c.scope())
            .map_err(store_error)?
        else {
            return Ok((pending, None));
        };
        let sites = s
            .list::<SiteFields>(&SiteFilter::default(), c.scope())
            .map_err(store_error)?
            .into_iter()
            .map(|r| (r.id, r.fields.name))
            .collect();
        let rooms = match device.fields.site_id {
            Some(site) => s
                .list::<RoomFields>(
                    &RoomFilter {
                        site_id: Some(site),
                    },
                    c.scope(),
                )
                .map_err(store_error)?
                .into_iter()
                .map(|r| (r.id, r.fields.name))
                .collect(),
            None => Vec::new(),
        };
        let commission = super::commission::load(s, &device)?;
        let cells = s
            .list::<AreaFields>(
                &AreaFilter {
                    parent_id: None,
                    level: Some(AreaLevel::Grid),
                },
                c.scope(),
            )
            .map_err(store_error)?
            .into_iter()
            .map(|a| a.id.to_string())
            .collect();
        Ok((
            pending,
            Some(Found {
                device,
                commission,
                sites,
                rooms,
                cells,
            }),
        ))
    })
    .await;
    let (pending, found) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let may_register =
        super::api_roles(axum::http::Method::GET, "/api/v1/pending").allows(caller.role());
    let body = html! {
        main.install {
            h1 { (lang.t(Msg::Install)) }
            form.find method="get" action="/install" {
                label for="device" { (lang.t(Msg::DeviceId)) }
                input #device name="device" value=(q.device.as_deref().unwrap_or("")) placeholder="hz-0001" required;
                button.btn type="submit" { (lang.t(Msg::Find)) }
            }
            @if q.saved.is_some() { p.ok role="status" { (lang.t(Msg::Saved)) } }
            @match (&q.device, &found) {
                (Some(_), None) => p.error { (lang.t(Msg::NoDevice)) },
                (_, Some(f)) => (device_forms(lang, &session.csrf, f, &state.limits)),
                _ => {}
            }
            @if may_register {
                section.pending {
                    h2 { (lang.t(Msg::Pending)) " " span.count { (pending.len()) } }
                    table { thead { tr { th { (lang.t(Msg::DeviceId)) } th { (lang.t(Msg::FirstSeen)) } th { (lang.t(Msg::LastSeen)) } th { (lang.t(Msg::Messages)) } } }
                        tbody { @for p in &pending { tr {
                            td { a href=(format!("/install?device={}", p.id)) { code { (p.id) } } }
                            td { (time(p.first_seen_ms)) } td { (time(p.last_seen_ms)) } td { (p.messages) } } } } }
                }
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/install",
        lang.t(Msg::Install),
        &body,
    )
    .into_response()
}

/// A set-point in the form's unit (mA; °C with one decimal).
fn shown(quantity: Quantity, value: i32) -> String {
    match quantity {
        Quantity::ResidualCurrent => value.to_string(),
        Quantity::Temperature => format!("{:.1}", f64::from(value) / 10.0),
    }
}

fn device_forms(lang: Lang, csrf: &str, f: &Found, limits: &Limits) -> Markup {
    let d = &f.device;
    let (rmin, rmax) = limits.range(Quantity::ResidualCurrent);
    let (tmin, tmax) = limits.range(Quantity::Temperature);
    let channels: HashMap<u8, _> = d
        .fields
        .config
        .channels
        .iter()
        .map(|c| (c.channel, c))
        .collect();
    html! {
        section.device {
            h2 { code { (d.id) } " · " (lang.device_kind(d.fields.kind)) " · " span.dstate.(json_name(&d.fields.state)) { (lang.device_state(d.fields.state)) } }
            form.binding method="post" action=(format!("/install/{}/binding", d.id)) {
                h3 { (lang.t(Msg::Binding)) }
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t(Msg::Site)) select name="site_id" { option value="" { "—" }
                    @for (id, name) in &f.sites { option value=(id) selected[d.fields.site_id == Some(*id)] { (name) " #" (id) } } } }
                label { (lang.t(Msg::Room))
                    @if f.rooms.is_empty() { input name="room_id" inputmode="numeric" value=(d.fields.room_id.map(|r| r.to_string()).unwrap_or_default()); }
                    @else { select name="room_id" { option value="" { "—" }
                        @for (id, name) in &f.rooms { option value=(id) selected[d.fields.room_id == Some(*id)] { (name) } } } } }
                label { (lang.t(Msg::Circuit)) input name="circuit_id" inputmode="numeric" value=(d.fields.circuit_id.map(|r| r.to_string()).unwrap_or_default()); }
                label { (lang.t(Msg::Cell)) select name="grid_id" { option value="" { "—" }
                    @for g in &f.cells { option value=(g) selected[d.fields.grid_id.as_ref().is_some_and(|x| x.as_str() == g)] { (g) } } } }
                button.btn type="submit" { (lang.t(Msg::Save)) }
            }
            form.config method="post" action=(format!("/install/{}/config", d.id)) {
                h3 { (lang.t(Msg::Thresholds)) " " small.muted { (lang.t(Msg::Version)) " " (d.fields.config.version) } }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="version" value=(d.fields.config.version);
                table { thead { tr { th { (lang.t(Msg::Channel)) } th { (lang.t(Msg::Enabled)) } th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::SetPoint)) } th { (lang.t(Msg::Delay)) } } }
                tbody { @for ch in 0..FORM_CHANNELS {
                    @let c = channels.get(&ch);
                    @let q = c.map_or(Quantity::ResidualCurrent, |c| c.threshold.quantity());
                    tr {
                        td { (ch) }
                        td { input type="checkbox" name=(format!("ch{ch}_enabled")) checked[c.is_some_and(|c| c.enabled)]; }
                        td { select name=(format!("ch{ch}_quantity")) {
                            option value="residual" selected[q == Quantity::ResidualCurrent] { "mA" }
                            option value="temp" selected[q == Quantity::Temperature] { "°C" } } }
                        td { input name=(format!("ch{ch}_value")) inputmode="decimal" size="6"
                                value=(c.map(|c| shown(q, c.threshold.value())).unwrap_or_default()); }
                        td { input name=(format!("ch{ch}_delay")) inputmode="numeric" size="4"
                                value=(c.map(|c| c.delay_s.to_string()).unwrap_or_default()); }
                    }
                } }
                }
                p.help { (lang.t(Msg::AllowedRange)) ": " (rmin) "–" (rmax) " mA; " (shown(Quantity::Temperature, tmin)) "–" (shown(Quantity::Temperature, tmax)) " °C; "
                    (lang.t(Msg::Delay)) " ≤ " (limits.alarm_delay_max_s) }
                button.btn type="submit" { (lang.t(Msg::Save)) }
            }
            (super::commission::section(lang, csrf, d, &f.commission))
        }
    }
}

/// A form's optional number.
fn number(form: &HashMap<String, String>, key: &str) -> Result<Option<i64>, ApiError> {
    match form.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::unprocessable(format!("{key}: not a whole number: {v}"))),
    }
}

fn back(id: &str) -> Response {
    Redirect::to(&format!("/install?device={id}&saved=1")).into_response()
}

/// `POST /install/{id}/binding`: the API's device update (`PUT /api/v1/devices/{id}`).
pub(super) async fn binding(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = session.lang;
    let result = async {
        let id = id.device()?;
        let current = {
            let (c, i) = (caller.clone(), id.clone());
            crate::api::blocking(&state, Subject::new("device", &id), move |s| {
                s.get_scoped::<DeviceFields>(&i, c.scope())
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?
        };
        let grid = form
            .get("grid_id")
            .map(|g| g.trim())
            .filter(|g| !g.is_empty());
        let body: Value = json!({
            "kind": current.fields.kind,
            "site_id": number(&form, "site_id")?,
            "room_id": number(&form, "room_id")?,
            "circuit_id": number(&form, "circuit_id")?,
            "grid_id": grid,
            "encoding": current.fields.encoding,
        });
        let body = serde_json::from_value(body)
            .map_err(|e| ApiError::unprocessable(format!("binding: {e}")))?;
        update_record::<DeviceFields>(&state, caller, &id, body).await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => back(id.as_str()),
        Err(e) => layout::error_page(lang, e.status(), e.message()),
    }
}

/// The set-point form as the API's configuration body (other settings kept as they are).
fn config_body(form: &HashMap<String, String>, current: &Device) -> Result<ConfigBody, ApiError> {
    let mut channels = Vec::new();
    for ch in 0..FORM_CHANNELS {
        let Some(value) = form
            .get(&format!("ch{ch}_value"))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let value: f64 = value
            .parse()
            .map_err(|_| ApiError::unprocessable(format!("channel {ch}: not a number: {value}")))?;
        let mut c = json!({
            "ch": ch,
            "enabled": form.contains_key(&format!("ch{ch}_enabled")),
        });
        if form.get(&format!("ch{ch}_quantity")).map(String::as_str) == Some("temp") {
            c["temp_dc"] = json!((value * 10.0).round() as i64);
        } else {
            c["residual_ma"] = json!(value.round() as i64);
        }
        if let Some(d) = number(form, &format!("ch{ch}_delay"))? {
            c["delay_s"] = json!(d);
        }
        channels.push(c);
    }
    let config = &current.fields.config;
    let body = json!({
        "version": number(form, "version")?,
        "report_interval_s": config.report_interval_s,
        "heartbeat_interval_s": config.heartbeat_interval_s,
        "buzzer": config.buzzer,
        "relay_trip": config.relay_trip,
        "channels": channels,
    });
    serde_json::from_value(body).map_err(|e| ApiError::unprocessable(format!("set-points: {e}")))
}

/// `POST /install/{id}/config`: the API's configuration change (`PUT
/// /api/v1/devices/{id}/config`): the GB ranges are enforced there.
pub(super) async fn config(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = session.lang;
    let result = async {
        let id = id.device()?;
        let current = {
            let (c, i) = (caller.clone(), id.clone());
            crate::api::blocking(&state, Subject::new("device", &id), move |s| {
                s.get_scoped::<DeviceFields>(&i, c.scope())
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?
        };
        let body = config_body(&form, &current)?;
        config_change(&state, caller, id.clone(), body).await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => back(id.as_str()),
        Err(e) => layout::error_page(lang, e.status(), e.message()),
    }
}
