//! The grid worker's phone page (`GET /field`): the open hazards of their cell as cards, each
//! with the address, room, the owner's phone (tap to call), what to do first, and the ticket
//! moves (acknowledge, dispatch, rectified with a note and a photo), its deadlines
//! (acknowledge by, rectify by; overdue marked), assignee, the data check and its notes and
//! photos (`web/evidence.rs`). Live through `/board/live?view=card`.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::board::{page_area, read, ticket_buttons};
use super::evidence;
use super::i18n::evidence::{Ev, t};
use super::i18n::{Lang, Msg};
use super::layout::{self, age, time};
use super::place::{self, Hazard};
use super::session::WebSession;
use crate::api::access::Caller;
use crate::api::error::{ApiError, Subject};
use crate::api::{ApiState, now_ms};
use crate::model::{TicketState, UnixMs};

/// One hazard as a card (its id `card-{id}`: live updates replace it).
pub(crate) fn card(lang: Lang, csrf: &str, h: &Hazard, now: UnixMs) -> Markup {
    let e = &h.episode;
    let cat = e.key.category;
    html! {
        article.card id=(format!("card-{}", e.id)) data-category=(cat.as_str()) data-ticket=(e.ticket.as_str()) {
            header {
                span.cat.(cat.as_str()) { (lang.category(cat)) }
                span.ticket.(e.ticket.as_str()) { (lang.ticket(e.ticket)) }
                (age(e.started_ms, now))
            }
            @if let Some(s) = &h.site {
                h2 { (s.fields.name) }
                p.address { (s.fields.address) @if let Some(r) = &h.room { " · " (r) } }
                @if let Some(phone) = &s.fields.owner_phone {
                    p.owner { (lang.t(Msg::Owner)) ": " @if let Some(n) = &s.fields.owner_name { (n) " " }
                        a.call href=(format!("tel:{}", phone.replace(' ', ""))) { "📞 " (phone) } }
                }
            } @else {
                h2 { (e.key.device) }
            }
            p.meta { (e.grid) " · " code { (e.key.device) } @if let Some(c) = e.key.channel { " #" (c) }
                @if let Some(l) = &e.peak { " · " strong { (place::level(l)) } }
                " · " (time(e.started_ms)) }
            p.first { strong { (lang.t(Msg::FirstAction)) ": " } (lang.first_action(cat)) }
            (evidence::deadlines(lang, h))
            p.who { strong { (t(lang, Ev::Assignee)) ": " } (evidence::assignee(lang, h)) }
            (evidence::check(lang, h))
            div.moves {
                (ticket_buttons(lang, csrf, e.id, e.ticket, "card"))
                @if e.ticket < TicketState::Rectified {
                    (evidence::rectify_form(lang, csrf, e.id))
                }
            }
            (evidence::list(lang, h))
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct FieldQuery {
    area: Option<String>,
}

/// `GET /field`.
pub(super) async fn field(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<FieldQuery>,
) -> Response {
    let lang = session.lang;
    let c = caller.clone();
    let workflow = state.workflow.clone();
    let found = read(&state, lang, move |s| {
        let area = page_area(s, &c, q.area.as_deref())?;
        place::open_hazards(s, area.as_ref(), &workflow)
            .map_err(|e| ApiError::from_store(e, &Subject::NONE))
    })
    .await;
    let hazards = match found {
        Ok(h) => h,
        Err(r) => return r,
    };
    let now = now_ms();
    let body = html! {
        main.field {
            div.bar {
                h1 { (lang.t(Msg::OpenHazards)) " " span #count.count { (hazards.len()) } }
                span #live.live data-src="/board/live?view=card" data-offline=(lang.t(Msg::Offline)) { (lang.t(Msg::Live)) }
            }
            div #hazards.cards {
                @for h in &hazards { (card(lang, &session.csrf, h, now)) }
            }
            p #empty.empty hidden[!hazards.is_empty()] { (lang.t(Msg::NoHazards)) }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/field",
        lang.t(Msg::Field),
        &body,
    )
    .into_response()
}
