//! Deadlines, assignee, the data check and evidence on the pages, and the rectify form with a
//! note and a photo (`POST /episodes/{id}/evidence`, `multipart/form-data`, works without
//! JavaScript; the CSRF token rides in the action's query, as the multipart body is not read
//! by the access check). Photos are served to the pages by `GET /evidence/{id}/photo` (the
//! API's handler behind the session: the same area check).

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::i18n::Lang;
use super::i18n::evidence::{Ev, t};
use super::layout::{self, time};
use super::place::Hazard;
use super::session::WebSession;
use crate::api::access::Caller;
use crate::api::error::PathId;
use crate::api::evidence::{check_episode, keep, read_form, refuse};
use crate::api::{ApiState, now_ms};
use crate::model::TicketState;
use crate::workflow::Verification;

/// Acknowledge-by and rectify-by, overdue ones marked (`.overdue`).
pub(crate) fn deadlines(lang: Lang, h: &Hazard) -> Markup {
    let d = &h.deadlines;
    html! {
        @if d.acknowledge_by.is_some() || d.rectify_by.is_some() {
            p.deadlines {
                @if let Some(by) = d.acknowledge_by {
                    span.deadline.ack.overdue[d.acknowledge_overdue] {
                        (t(lang, Ev::AcknowledgeBy)) " " (time(by))
                        @if d.acknowledge_overdue { " · " strong { (t(lang, Ev::Overdue)) } }
                    }
                }
                @if let Some(by) = d.rectify_by {
                    " "
                    span.deadline.rectify.overdue[d.rectify_overdue] {
                        (t(lang, Ev::RectifyBy)) " " (time(by))
                        @if d.rectify_overdue { " · " strong { (t(lang, Ev::Overdue)) } }
                    }
                }
            }
        }
    }
}

/// The assignee's name (or "unassigned").
pub(crate) fn assignee(lang: Lang, h: &Hazard) -> Markup {
    html! {
        span.assignee {
            @match &h.assignee {
                Some(a) => { (a.name.clone().unwrap_or_else(|| format!("#{}", a.id))) }
                None => { span.muted { (t(lang, Ev::Unassigned)) } }
            }
        }
    }
}

/// What the data says about verifying it, once rectified or ended.
pub(crate) fn check(lang: Lang, h: &Hazard) -> Markup {
    let Some(v) = &h.check else {
        return html! {};
    };
    let (class, msg) = match v {
        Verification::Verified => ("ok", Ev::CheckVerified),
        Verification::NotEnded => ("wait", Ev::CheckNotEnded),
        Verification::TooRecent { .. } => ("wait", Ev::CheckTooRecent),
        Verification::NoReadings => ("wait", Ev::CheckNoReadings),
        Verification::AboveMargin { .. } => ("bad", Ev::CheckAbove),
    };
    html! {
        p.check.(class) data-verdict=(serde_json::to_value(v).ok()
            .and_then(|j| j["verdict"].as_str().map(str::to_owned)).unwrap_or_default()) {
            strong { (t(lang, Ev::DataCheck)) ": " } (t(lang, msg))
            @if let Verification::AboveMargin { max, limit } = v { " (" (max) " ≥ " (limit) ")" }
        }
    }
}

/// The notes and photos, oldest first.
pub(crate) fn list(lang: Lang, h: &Hazard) -> Markup {
    html! {
        @if !h.evidence.is_empty() {
            section.evidence {
                h3 { (t(lang, Ev::Evidence)) }
                ul {
                    @for e in &h.evidence {
                        li.item id=(format!("evidence-{}", e.id)) {
                            small.muted { (e.who) " · " (time(e.at_ms)) }
                            @if let Some(n) = &e.note { p.note { (n) } }
                            @if let Some(p) = &e.photo {
                                a href=(format!("/evidence/{}/photo", e.id)) {
                                    img.photo src=(format!("/evidence/{}/photo", e.id))
                                        alt=(t(lang, Ev::Photo)) loading="lazy" data-bytes=(p.bytes);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The rectify form: a note (required) and a photo from the camera.
pub(crate) fn rectify_form(lang: Lang, csrf: &str, id: u64) -> Markup {
    use super::i18n::Msg;
    let action = format!("/episodes/{id}/evidence?csrf={csrf}");
    html! {
        form.rectify method="post" enctype="multipart/form-data" action=(action)
            hx-post=(action) hx-encoding="multipart/form-data" hx-target="closest article" hx-swap="outerHTML" {
            input type="hidden" name="to" value="rectified";
            label { (lang.t(Msg::Note))
                textarea name="note" rows="2" maxlength="1000" required placeholder=(lang.t(Msg::NotePlaceholder)) {} }
            label.photo { (t(lang, Ev::Photo)) " " small.muted { (t(lang, Ev::PhotoHelp)) }
                input type="file" name="photo" accept="image/jpeg,image/png" capture="environment"; }
            button.btn.rectified type="submit" { (lang.t(Msg::Rectify)) }
        }
    }
}

/// `POST /episodes/{id}/evidence`: keeps the note and photo, then (with `to`) moves the
/// ticket with the note. Without htmx, back to `/field`; with it, the card again.
pub(super) async fn post(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    headers: HeaderMap,
    id: PathId,
    request: Request,
) -> Response {
    let lang = session.lang;
    let fail = |e: crate::api::error::ApiError| layout::error_page(lang, e.status(), e.message());
    let id = match id.episode() {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    if let Err(e) = check_episode(&state, &caller, id).await {
        return fail(e);
    }
    let form = match read_form(&state, request).await {
        Ok(f) => f,
        Err(r) => return fail(refuse(&state, r)),
    };
    let to = form.to;
    let note = form.note.clone();
    if let Err(e) = keep(&state, &caller, id, form).await {
        return fail(e);
    }
    let episode = match to {
        Some(to) => {
            match crate::api::episodes::ticket_move(&state, caller.clone(), id, to, note, None)
                .await
            {
                Ok(e) => Some(e),
                // Already rectified (say, twice from two phones): the evidence is kept anyway.
                Err(e)
                    if e.status() == axum::http::StatusCode::CONFLICT
                        && to == TicketState::Rectified =>
                {
                    None
                }
                Err(e) => return fail(e),
            }
        }
        None => None,
    };
    if headers.get("hx-request").is_none() {
        return Redirect::to(&format!("/field#card-{id}")).into_response();
    }
    let workflow = state.workflow.clone();
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let e = match episode {
            Some(e) => e,
            None => store
                .episode(id)?
                .ok_or(crate::store::StoreError::UnknownEpisode(id))?,
        };
        super::place::locate(&store, e, &mut std::collections::HashMap::new(), &workflow)
    })
    .await;
    match found {
        Ok(Ok(h)) => super::field::card(lang, &session.csrf, &h, now_ms()).into_response(),
        Ok(Err(e)) => fail(crate::api::error::ApiError::from_store(
            e,
            &crate::api::error::Subject::NONE,
        )),
        Err(e) => fail(crate::api::error::ApiError::internal(
            "a store task failed",
            &e,
        )),
    }
}
