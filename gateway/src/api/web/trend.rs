//! A device's trend page (`GET /devices/{id}/trend`): its channels' residual current and
//! temperature plotted with uPlot, from `GET /devices/{id}/history` — the API's own history
//! handler mounted behind the session (same query, same JSON, same CSV export).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::assets;
use super::board::read;
use super::i18n::Msg;
use super::layout;
use super::session::WebSession;
use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::error::{ApiError, PathId, Subject};
use crate::store::DeviceFields;

/// The ranges offered: label, span (ms), step.
const RANGES: [(&str, u64, &str); 3] = [
    ("1 h", 3_600_000, "raw"),
    ("24 h", 86_400_000, "5m"),
    ("30 d", 30 * 86_400_000, "1h"),
];

#[derive(Debug, Deserialize)]
pub(super) struct TrendQuery {
    range: Option<usize>,
    /// One channel only (the utility pages link a channel's plot).
    ch: Option<u8>,
}

/// `GET /devices/{id}/trend`.
pub(super) async fn trend(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Query(q): Query<TrendQuery>,
) -> Response {
    let lang = session.lang;
    let id = match id.device() {
        Ok(id) => id,
        Err(e) => return layout::error_page(lang, e.status(), e.message()),
    };
    let c = caller.clone();
    let wanted = id.clone();
    let found = read(&state, lang, move |s| {
        s.get_scoped::<DeviceFields>(&wanted, c.scope())
            .map_err(|e| ApiError::from_store(e, &Subject::new("device", &wanted)))?
            .ok_or_else(|| ApiError::not_found(format!("no device {wanted}")))
    })
    .await;
    let device = match found {
        Ok(d) => d,
        Err(r) => return r,
    };
    let pick = q.range.filter(|r| *r < RANGES.len()).unwrap_or(0);
    let (_, span_ms, step) = RANGES[pick];
    let to = crate::api::now_ms();
    let from = to.saturating_sub(span_ms);
    let only = q.ch.map_or_else(String::new, |ch| format!("&ch={ch}"));
    let src = format!("/devices/{id}/history?from={from}&to={to}&step={step}{only}");
    let body = html! {
        link rel="stylesheet" href=(assets::url("uPlot.min.css"));
        script src=(assets::url("uPlot.iife.min.js")) defer {}
        main.wide {
            div.bar {
                h1 { code { (device.id) } " · " (lang.device_kind(device.fields.kind)) }
                nav.ranges {
                    @for (i, (label, _, _)) in RANGES.iter().enumerate() {
                        a.btn .on[i == pick] href=(format!("/devices/{id}/trend?range={i}{only}")) { (label) }
                    }
                    a.btn href=(format!("{src}&format=csv")) download { "CSV" }
                }
            }
            div #plots data-src=(src) data-residual=(lang.t(Msg::Residual)) data-temp=(lang.t(Msg::Temperature))
                data-empty=(lang.t(Msg::NoReadings)) {}
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/devices",
        lang.t(Msg::Trend),
        &body,
    )
    .into_response()
}
