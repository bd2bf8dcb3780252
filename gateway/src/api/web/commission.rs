//! The installer page's commissioning part (docs/ui.md): put the device in `commissioned` (or
//! in service), run the self-test or the test button, watch the result arrive with its
//! latencies (the row reloads itself until answered), issue the signed record, print it or
//! download its file. Every action is the API's own function ([`request_test`], [`issue`],
//! the state route), with its checks and scope.

use std::collections::HashMap;

use axum::extract::{Form, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::json;

use super::board::read;
use super::i18n::Lang;
use super::i18n::commission::C;
use super::layout::{self, time};
use super::session::WebSession;
use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::commissioning::{issue, record_file, request_test, scoped_device};
use crate::api::error::{ApiError, Json, PathId, device_id};
use crate::commissioning::TestKind;
use crate::commissioning::record::{Record, Signed, latencies};
use crate::model::{DeviceKind, DeviceState, UnixMs};
use crate::store::{Device, DeviceTest, Store};

/// What the page shows of a device's commissioning.
pub(super) struct Commission {
    tests: Vec<DeviceTest>,
    records: Vec<(i64, UnixMs, String)>,
    installer: Option<String>,
}

/// Reads a device's tests since it was commissioned, its records and installer (blocking).
pub(super) fn load(s: &Store, device: &Device) -> Result<Commission, ApiError> {
    let err = |e| ApiError::from_store(e, &crate::api::error::Subject::NONE);
    let installer = s.installer_of(device.id.as_str()).map_err(err)?;
    let since = installer.as_ref().map_or(0, |(_, t)| *t);
    Ok(Commission {
        tests: s.tests_of(device.id.as_str(), since).map_err(err)?,
        records: s.records_of(device.id.as_str()).map_err(err)?,
        installer: installer.map(|(u, _)| u),
    })
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v} ms"))
}

/// One test's row; while open it carries where to reload it from.
fn test_row(lang: Lang, t: &DeviceTest) -> Markup {
    let (d2g, g2i, total) = latencies(t.requested_ms, t.device_ms, t.received_ms, t.delivered_ms);
    let open = t.finished_ms.is_none();
    html! {
        tr.test id=(format!("test-{}", t.id)) data-test=(t.id) data-src=[open.then(|| format!("/install/tests/{}", t.id))]
            data-result=(t.result.as_deref().unwrap_or("")) {
            td { (t.id) }
            td { (match t.kind.as_str() { "button" => lang.c(C::PressButton), "self_test" => lang.c(C::RunSelfTest), k => k }) }
            td { (time(t.requested_ms)) }
            td.result { @match &t.result { Some(r) => strong.(r) { (r) }, None => span.muted { (lang.c(C::Waiting)) } } }
            td.latency { (ms(d2g)) } td.latency { (ms(g2i)) } td.latency.total { (ms(total)) }
        }
    }
}

/// The commissioning section of the installer page.
pub(super) fn section(lang: Lang, csrf: &str, d: &Device, c: &Commission) -> Markup {
    let id = &d.id;
    let commissioned = d.fields.state == DeviceState::Commissioned;
    html! {
        section.commission #commission {
            h3 { (lang.c(C::Commissioning)) }
            @if let Some(u) = &c.installer { p { (lang.c(C::Installer)) ": " strong { (u) } } }
            p.help { (lang.c(C::NotCommissioned)) }
            form.inline method="post" action=(format!("/install/{id}/state")) {
                input type="hidden" name="csrf" value=(csrf);
                @if commissioned {
                    input type="hidden" name="to" value="in_service";
                    button.btn #to-service type="submit" { (lang.c(C::PutInService)) }
                } @else if matches!(d.fields.state, DeviceState::Registered | DeviceState::InService) {
                    input type="hidden" name="to" value="commissioned";
                    button.btn #to-commissioned type="submit" { (lang.c(C::StartCommissioning)) }
                }
            }
            @if commissioned {
                form.inline method="post" action=(format!("/install/{id}/test")) {
                    input type="hidden" name="csrf" value=(csrf);
                    @if d.fields.kind == DeviceKind::SmokeAlarm {
                        button.btn #press-button type="submit" name="kind" value="button" { (lang.c(C::PressButton)) }
                    }
                    button.btn #run-self-test type="submit" name="kind" value="self_test" { (lang.c(C::RunSelfTest)) }
                }
                @if c.tests.iter().any(|t| t.kind == "button" && t.finished_ms.is_none()) {
                    p.ok role="status" { (lang.c(C::PressNow)) }
                }
            }
            @if !c.tests.is_empty() {
                h4 { (lang.c(C::Tests)) }
                table.tests { thead { tr { th { "#" } th { (lang.c(C::Kind)) } th { (lang.c(C::Requested)) } th { (lang.c(C::Result)) }
                    th { (lang.c(C::DeviceToGateway)) } th { (lang.c(C::GatewayToInstaller)) } th { (lang.c(C::Total)) } } }
                    tbody #tests { @for t in &c.tests { (test_row(lang, t)) } } }
            }
            @if matches!(d.fields.state, DeviceState::Commissioned | DeviceState::InService) {
                form.inline method="post" action=(format!("/install/{id}/record")) {
                    input type="hidden" name="csrf" value=(csrf);
                    button.btn #issue-record type="submit" { (lang.c(C::IssueRecord)) }
                }
            }
            @if !c.records.is_empty() {
                h4 { (lang.c(C::Records)) }
                ul.records { @for (rid, at, who) in &c.records {
                    li { a href=(format!("/records/{rid}")) { "#" (rid) } " · " (time(*at)) " · " (who) " · "
                        a.download href=(format!("/records/{rid}/file")) download { (lang.c(C::Download)) } } } }
            }
        }
    }
}

fn back(id: &str) -> Response {
    Redirect::to(&format!("/install?device={id}#commission")).into_response()
}

/// `POST /install/{id}/state`: the API's state change (`to` = `commissioned`, `in_service`).
pub(super) async fn state(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = session.lang;
    let result = async {
        let id = id.device()?;
        let to = form.get("to").map_or("", String::as_str);
        let body = serde_json::from_value(json!({ "to": to }))
            .map_err(|e| ApiError::unprocessable(format!("to: {e}")))?;
        crate::api::devices::set_device_state(
            State(state.clone()),
            caller,
            PathId(id.to_string()),
            Json(body),
        )
        .await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => back(id.as_str()),
        Err(e) => layout::error_page(lang, e.status(), e.message()),
    }
}

/// `POST /install/{id}/test`: `kind` = `self_test` or `button`.
pub(super) async fn test(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = session.lang;
    let result = async {
        let id = id.device()?;
        let kind = match form.get("kind").map(String::as_str) {
            Some("button") => TestKind::Button,
            Some("self_test") => TestKind::SelfTest,
            other => {
                return Err(ApiError::unprocessable(format!(
                    "kind {other:?}: self_test or button"
                )));
            }
        };
        request_test(&state, caller, id.clone(), kind).await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => back(id.as_str()),
        Err(e) => layout::error_page(lang, e.status(), e.message()),
    }
}

/// `GET /install/tests/{id}`: one test's row (the page reloads an open test's row with it).
pub(super) async fn test_fragment(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
) -> Response {
    let lang = session.lang;
    let tid = match id.number("test") {
        Ok(t) => t,
        Err(e) => return layout::error_page(lang, e.status(), e.message()),
    };
    let found = read(&state, lang, move |s| {
        let t = s
            .device_test(tid)
            .map_err(|e| ApiError::from_store(e, &crate::api::error::Subject::NONE))?
            .ok_or_else(|| ApiError::not_found(format!("no test {tid}")))?;
        scoped_device(s, &caller, &device_id("device", &t.device)?)?;
        Ok(t)
    })
    .await;
    match found {
        Ok(t) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            test_row(lang, &t).into_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// `POST /install/{id}/record`: issues the record, then shows it.
pub(super) async fn record(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
) -> Response {
    let lang = session.lang;
    let result = async {
        let id = id.device()?;
        issue(&state, caller, id).await
    }
    .await;
    match result {
        Ok((rid, _)) => Redirect::to(&format!("/records/{rid}")).into_response(),
        Err(e) => layout::error_page(lang, e.status(), e.message()),
    }
}

async fn signed(
    state: &ApiState,
    caller: Caller,
    lang: Lang,
    id: &PathId,
) -> Result<(i64, String, Vec<u8>), Response> {
    let rid = id
        .number("commissioning record")
        .map_err(|e| layout::error_page(lang, e.status(), e.message()))?;
    let (device, file) = read(state, lang, move |s| record_file(s, &caller, rid)).await?;
    Ok((rid, device, file))
}

/// `GET /records/{id}/file`: the record file as issued.
pub(super) async fn record_download(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
) -> Response {
    match signed(&state, caller, session.lang, &id).await {
        Ok((rid, device, file)) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"commissioning-{device}-{rid}.json\""),
                ),
            ],
            file,
        )
            .into_response(),
        Err(r) => r,
    }
}

/// `GET /records/{id}`: the record as a printable page.
pub(super) async fn record_page(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
) -> Response {
    let lang = session.lang;
    let (rid, _, file) = match signed(&state, caller.clone(), lang, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(s) = serde_json::from_slice::<Signed>(&file) else {
        return layout::error_page(
            lang,
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the stored record does not parse",
        );
    };
    let r: &Record = &s.record;
    let b = &r.binding;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".to_owned());
    let num = |v: Option<i64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
    let body = html! {
        main.record {
            h1 { (lang.c(C::Record)) " #" (r.id) }
            table.kv {
                tr { th { (lang.c(C::Device)) } td { code #record-device { (r.device.id) } " · " (r.device.kind) } }
                tr { th { (lang.c(C::Firmware)) } td { (opt(&r.device.firmware)) } }
                tr { th { (lang.c(C::Signal)) } td { (num(r.device.signal_dbm)) " dBm" } }
                tr { th { (lang.c(C::Battery)) } td { (num(r.device.battery_mv)) " mV" } }
                tr { th { (lang.c(C::ConfigInForce)) } td { (num(r.device.config_in_force)) " / " (r.device.config_wanted) } }
                tr { th { (lang.c(C::Binding)) } td { (opt(&b.address)) " " (opt(&b.site)) " · " (opt(&b.room)) " · " (opt(&b.circuit)) " · " (opt(&b.grid_id)) } }
                tr { th { (lang.c(C::Installer)) } td { (r.installer) } }
                tr { th { (lang.c(C::Issued)) } td { (time(r.issued_ms)) } }
            }
            h2 { (lang.c(C::Tests)) }
            table.tests { thead { tr { th { "#" } th { (lang.c(C::Kind)) } th { (lang.c(C::Requested)) } th { (lang.c(C::Result)) }
                th { (lang.c(C::DeviceToGateway)) } th { (lang.c(C::GatewayToInstaller)) } th { (lang.c(C::Total)) } } }
                tbody { @for t in &r.tests { tr {
                    td { (t.id) } td { (t.kind) } td { (time(t.requested_ms)) } td { strong { (t.result) } }
                    td { (ms(t.device_to_gateway_ms)) } td { (ms(t.gateway_to_installer_ms)) } td { (ms(t.total_ms)) } } } } }
            h2 { (lang.c(C::Signature)) }
            p { code.key { (s.signature.public_key) } }
            p.sig { code { (s.signature.value) } }
            p.help { (lang.c(C::VerifyHow)) }
            p.noprint {
                a.btn #download-record href=(format!("/records/{rid}/file")) download { (lang.c(C::Download)) } " "
                button.btn #print type="button" data-print="1" { (lang.c(C::Print)) }
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/install",
        lang.c(C::Record),
        &body,
    )
    .into_response()
}
