//! The web UI: server-rendered pages (maud) served by the gateway itself, for the monitoring
//! centre (the board), grid workers (a phone page) and installers (decision 12, docs/ui.md).
//!
//! Pages use the API's access layer, not a copy: each page is a line of [`pages`] whose roles
//! are those of the API route it stands for (looked up in the API's route table), checked by
//! [`session::authorize`] — the same [`Caller`](super::access::Caller) as a bearer token gives,
//! from a session cookie instead — and the handlers call the same functions as the API's
//! (scope checks included). Every `POST` carries the session's CSRF token.
//!
//! | Page | What | Roles (of the API route) |
//! | --- | --- | --- |
//! | `GET /` | to the user's home page (board, field or install) | logged in |
//! | `GET, POST /login`, `POST /logout` | log in with an API token; log out | — |
//! | `GET /board` | open hazards of the user's area (`?area=` below it), live | `GET /api/v1/episodes` |
//! | `GET /board/live` | the board's rows as server-sent events | `GET /api/v1/live` |
//! | `POST /episodes/{id}/ticket` | move a ticket (`to`, `note`) | `POST /api/v1/episodes/{id}/ticket` |
//! | `GET /field` | the grid worker's phone page | `GET /api/v1/episodes` |
//! | `GET /devices` | the device roster (`?state=&kind=&area=`) | `GET /api/v1/devices` |
//! | `GET /devices/{id}/trend` | a device's residual current and temperature, plotted | `GET /api/v1/devices/{id}/history` |
//! | `GET /devices/{id}/history` | the API's history handler itself, behind the session (the plots' data, CSV) | `GET /api/v1/devices/{id}/history` |
//! | `GET /install` | pending devices, one device's binding and thresholds (`?device=`) | `GET /api/v1/pending` |
//! | `POST /install/{id}/binding` | bind a device to site, room, circuit, cell | `PUT /api/v1/devices/{id}` |
//! | `POST /install/{id}/config` | set a device's thresholds | `PUT /api/v1/devices/{id}/config` |
//! | `POST /episodes/{id}/evidence` | rectify with a note and a photo (`multipart/form-data`: `note`, `photo`, `to`; CSRF token in `?csrf=`) | `POST /api/v1/episodes/{id}/evidence` |
//! | `GET /evidence/{id}/photo` | a photo of a ticket's evidence (the API's handler) | `GET /api/v1/evidence/{id}/photo` |
//! | `GET /utility` | circuit trees of an area or site (`?area=&site=`), ranking (`?by=trend\|alarms`) | `GET /api/v1/circuit-ranking` |
//! | `GET /circuit-ranking` | the API's ranking handler behind the session (CSV export) | `GET /api/v1/circuit-ranking` |
//! | `GET /circuits/{id}` | a circuit's channels plotted (raw, hourly), its leak trace with evidence | `GET /api/v1/circuits/{id}/history` |
//! | `GET /circuits/{id}/history` | the API's circuit history handler behind the session (plots' data, CSV) | `GET /api/v1/circuits/{id}/history` |
//! | `GET /reports` | the four rectification reports (`?area=&key=1`), tables and bars | `GET /api/v1/reports/{name}` |
//! | `GET /reports/{name}` | the API's report handler behind the session (CSV export) | `GET /api/v1/reports/{name}` |
//! | `POST /install/{id}/state` | commissioned / in service | `POST /api/v1/devices/{id}/state` |
//! | `POST /install/{id}/test` | run the self-test or the test button (`kind`) | `POST /api/v1/devices/{id}/tests` |
//! | `GET /install/tests/{id}` | one test's row (reloaded until answered) | `GET /api/v1/device-tests/{id}` |
//! | `POST /install/{id}/record` | issue the signed commissioning record | `POST /api/v1/devices/{id}/commissioning-record` |
//! | `GET /records/{id}`, `GET /records/{id}/file` | the record, printable; its file | `GET /api/v1/commissioning-records/{id}` |
//! | `GET /assets/{file}` | embedded CSS, JS and vendored libraries | — |

mod assets;
mod board;
mod commission;
mod evidence;
mod field;
mod i18n;
mod install;
mod layout;
mod limiter;
mod place;
mod reports;
mod session;
mod stream;
mod trend;
mod utility;

#[cfg(test)]
mod tests;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use super::ApiState;
use super::access::{Roles, Rule};

pub(crate) use limiter::LoginLimiter;

/// One page: its rule (method, path, roles) and handler.
struct Page {
    rule: Rule,
    handler: MethodRouter<ApiState>,
}

/// The roles of the API route `method path` (the page stands for it). A path missing from the
/// API's table is a bug caught by the tests: it allows no one.
fn api_roles(method: Method, path: &str) -> Roles {
    super::routes::routes()
        .into_iter()
        .find(|r| r.rule.method == method && r.rule.path == path)
        .map_or(Roles::of(&[]), |r| r.rule.roles)
}

fn page(
    method: Method,
    path: &'static str,
    api: (Method, &str),
    handler: MethodRouter<ApiState>,
) -> Page {
    Page {
        rule: Rule {
            method,
            path,
            roles: api_roles(api.0, api.1),
        },
        handler,
    }
}

/// Every page behind a session, with the API route whose roles it takes.
#[rustfmt::skip]
fn pages() -> Vec<Page> {
    use Method as M;
    vec![
        page(M::GET, "/", (M::GET, "/api/v1/me"), get(session::home)),
        page(M::POST, "/logout", (M::GET, "/api/v1/me"), post(session::logout)),
        page(M::GET, "/board", (M::GET, "/api/v1/episodes"), get(board::board)),
        page(M::GET, "/board/live", (M::GET, "/api/v1/live"), get(stream::live)),
        page(M::POST, "/episodes/{id}/ticket", (M::POST, "/api/v1/episodes/{id}/ticket"), post(board::ticket)),
        page(M::GET, "/field", (M::GET, "/api/v1/episodes"), get(field::field)),
        page(M::GET, "/devices", (M::GET, "/api/v1/devices"), get(board::devices)),
        page(M::GET, "/devices/{id}/trend", (M::GET, "/api/v1/devices/{id}/history"), get(trend::trend)),
        page(M::GET, "/devices/{id}/history", (M::GET, "/api/v1/devices/{id}/history"), get(super::history::device_history)),
        page(M::GET, "/install", (M::GET, "/api/v1/pending"), get(install::install)),
        page(M::POST, "/install/{id}/binding", (M::PUT, "/api/v1/devices/{id}"), post(install::binding)),
        page(M::POST, "/install/{id}/config", (M::PUT, "/api/v1/devices/{id}/config"), post(install::config)),
        // Evidence on tickets: the rectify form with a note and a photo, photos (web/evidence.rs).
        page(M::POST, "/episodes/{id}/evidence", (M::POST, "/api/v1/episodes/{id}/evidence"), post(evidence::post).layer(axum::extract::DefaultBodyLimit::disable())),
        page(M::GET, "/evidence/{id}/photo", (M::GET, "/api/v1/evidence/{id}/photo"), get(super::evidence::photo)),
        // Utility and reports (issue 15 items 5 and 6): circuits, ranking, leak tracing, reports.
        page(M::GET, "/utility", (M::GET, "/api/v1/circuit-ranking"), get(utility::utility)),
        page(M::GET, "/circuit-ranking", (M::GET, "/api/v1/circuit-ranking"), get(super::circuits::ranking)),
        page(M::GET, "/circuits/{id}", (M::GET, "/api/v1/circuits/{id}/history"), get(utility::circuit)),
        page(M::GET, "/circuits/{id}/history", (M::GET, "/api/v1/circuits/{id}/history"), get(super::history::circuit_history)),
        page(M::GET, "/reports", (M::GET, "/api/v1/reports/{name}"), get(reports::reports)),
        page(M::GET, "/reports/{name}", (M::GET, "/api/v1/reports/{name}"), get(super::reports::report)),
        // Commissioning: state, tests with their live result, records (web/commission.rs).
        page(M::POST, "/install/{id}/state", (M::POST, "/api/v1/devices/{id}/state"), post(commission::state)),
        page(M::POST, "/install/{id}/test", (M::POST, "/api/v1/devices/{id}/tests"), post(commission::test)),
        page(M::GET, "/install/tests/{id}", (M::GET, "/api/v1/device-tests/{id}"), get(commission::test_fragment)),
        page(M::POST, "/install/{id}/record", (M::POST, "/api/v1/devices/{id}/commissioning-record"), post(commission::record)),
        page(M::GET, "/records/{id}", (M::GET, "/api/v1/commissioning-records/{id}"), get(commission::record_page)),
        page(M::GET, "/records/{id}/file", (M::GET, "/api/v1/commissioning-records/{id}"), get(commission::record_download)),
    ]
}

/// The web UI's routes, to merge into the API's router.
pub(super) fn router(state: &ApiState) -> Router<ApiState> {
    let mut router = Router::new()
        .route("/login", get(session::login_form).post(session::login))
        .route("/lang/{lang}", get(session::set_lang))
        .route("/assets/{file}", get(assets::asset));
    for p in pages() {
        let layer = axum::middleware::from_fn_with_state(
            (state.clone(), p.rule.clone()),
            session::authorize,
        );
        router = router.route(p.rule.path, p.handler.route_layer(layer));
    }
    router.layer(axum::middleware::map_response(security_headers))
}

/// What every page, fragment and asset carries: the browser loads nothing from outside the
/// gateway (`Content-Security-Policy`), the pages are not framed, not sniffed, not cached by
/// shared caches.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    response
}
