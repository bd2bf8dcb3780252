//! Logging in and out, the session cookie, the CSRF token, and [`authorize`]: the access check
//! of every page (the API's roles, the same [`Caller`]).
//!
//! - Login: with an API token (decision 12). A refused login is counted
//!   (`firegrid_api_refusals_total{reason="login"}`) and an address past
//!   [`limiter::MAX_FAILURES`] refusals in [`limiter::WINDOW_MS`] gets `429`
//!   (`reason="login_rate"`). The login form has its own double-submit token (`fg_login`).
//! - Session: a random 256-bit secret in the `fg_session` cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` under TLS, [`SESSION_MS`]); the store keeps its SHA-256
//!   (`store/sessions.rs`) and the token it was opened with.
//! - CSRF: every `POST` must carry the session's CSRF token (the form field `csrf` or the header
//!   `X-CSRF-Token`), an HMAC of the session secret: refused with `403` otherwise
//!   (`reason="csrf"`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::{Lang, Msg};
use super::layout;
use crate::access::Role;
use crate::api::access::{Caller, Rule};
use crate::api::{ApiState, ClientAddr, now_ms};
use crate::model::UnixMs;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "fg_session";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "fg_login";
/// How long a session lasts: a shift, ms.
pub(crate) const SESSION_MS: UnixMs = 12 * 3600 * 1000;
/// The largest form a page takes, bytes.
const MAX_FORM: usize = 64 * 1024;

/// The session of a page request: put there by [`authorize`].
#[derive(Debug, Clone)]
pub(crate) struct WebSession {
    /// The CSRF token every form of this session carries.
    pub(crate) csrf: String,
    /// The page's language.
    pub(crate) lang: Lang,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Response> {
        // `authorize` puts it there on every page; a page without it is a bug.
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// A cookie's value.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 256 random bits, URL-safe base64.
fn random_secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of a session secret.
pub(crate) fn session_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session secret.
pub(crate) fn csrf_of(secret: &str) -> String {
    // HMAC takes a key of any length: this does not fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(b"firegrid web csrf");
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Equal without telling where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A `Set-Cookie` value.
fn set_cookie(state: &ApiState, name: &str, value: &str, path: &str, max_age_s: u64) -> String {
    let secure = if state.https { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}")
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The client's address (unknown when served without connection info: one shared bucket).
fn client_ip(request_ip: Option<SocketAddr>) -> IpAddr {
    request_ip.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| a.ip())
}

/// Where a page without a session goes: the login form (a `GET`), else `401`.
fn to_login(method: &Method, path: &str, lang: Lang) -> Response {
    if *method == Method::GET && !path.ends_with("/live") {
        let next: String = path
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c))
            .collect();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    layout::error_page(lang, StatusCode::UNAUTHORIZED, lang.t(Msg::Login))
}

/// The CSRF token a `POST` carries: the header, else the form field `csrf`.
fn posted_csrf(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(v) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "csrf")
        .map(|(_, v)| v.to_string())
}

/// The access check of every page: the session (else the login form), the role of the API
/// route the page stands for (403), and on a `POST` the CSRF token (403). Puts the [`Caller`]
/// and the [`WebSession`] in the request.
pub(crate) async fn authorize(
    State((state, rule)): State<(ApiState, Rule)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let lang = Lang::of(&parts.headers);
    let path = parts.uri.path().to_string();
    let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
        state.metrics.api_refused("no_token");
        return to_login(&parts.method, &path, lang);
    };
    let store = state.store.clone();
    let hash = session_hash(&secret);
    let found = tokio::task::spawn_blocking(move || store.session(&hash, now_ms())).await;
    let principal = match found {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => {
            state.metrics.api_refused("bad_token");
            let response = to_login(&parts.method, &path, lang);
            return with_cookie(response, &set_cookie(&state, SESSION_COOKIE, "", "/", 0));
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "web session lookup failed");
            return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "store");
        }
        Err(e) => {
            tracing::error!(error = %e, "web session task failed");
            return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "task");
        }
    };
    if !rule.roles.allows(principal.role) {
        state.metrics.api_refused("role");
        let why = format!(
            "{} {}: {} ({})",
            lang.t(Msg::Forbidden),
            rule.path,
            rule.roles,
            principal.role
        );
        return layout::error_page(lang, StatusCode::FORBIDDEN, &why);
    }
    let csrf = csrf_of(&secret);
    let multipart = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else if multipart {
        // A photo upload (web/evidence.rs) is not read here: its token is in the header or
        // the action's query (`?csrf=`), and the route reads the body within its own limit.
        let query = parts.uri.query().unwrap_or("").as_bytes();
        if !posted_csrf(&parts.headers, query).is_some_and(|t| same(&t, &csrf)) {
            state.metrics.api_refused("csrf");
            return layout::error_page(
                lang,
                StatusCode::FORBIDDEN,
                "CSRF: the form's token is missing or not this session's; reload the page",
            );
        }
        body
    } else {
        let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
            return layout::error_page(lang, StatusCode::PAYLOAD_TOO_LARGE, "form too large");
        };
        if !posted_csrf(&parts.headers, &bytes).is_some_and(|t| same(&t, &csrf)) {
            state.metrics.api_refused("csrf");
            return layout::error_page(
                lang,
                StatusCode::FORBIDDEN,
                "CSRF: the form's token is missing or not this session's; reload the page",
            );
        }
        Body::from(bytes)
    };
    parts.extensions.insert(Caller(principal));
    parts.extensions.insert(WebSession { csrf, lang });
    next.run(Request::from_parts(parts, body)).await
}

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// A local path to go to after logging in (anything else: `/`).
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn login_page(
    state: &ApiState,
    lang: Lang,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let Some(nonce) = random_secret() else {
        return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "random");
    };
    let body = html! {
        main.login {
            h1 { (lang.t(Msg::Product)) }
            form method="post" action="/login" {
                input type="hidden" name="login" value=(nonce);
                input type="hidden" name="next" value=(next);
                label for="token" { (lang.t(Msg::TokenLabel)) }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                p.help { (lang.t(Msg::TokenHelp)) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                button type="submit" { (lang.t(Msg::Login)) }
            }
            (layout::lang_switch(lang))
        }
    };
    let page = layout::bare(lang, lang.t(Msg::Login), &body);
    with_cookie(
        (status, page).into_response(),
        &set_cookie(state, LOGIN_COOKIE, &nonce, "/login", 3600),
    )
}

/// `GET /login`.
pub(super) async fn login_form(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    login_page(
        &state,
        lang,
        &local(q.next.as_deref()),
        StatusCode::OK,
        None,
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    token: String,
    login: String,
    next: Option<String>,
}

/// `POST /login`: checks the form's token, the rate limit, then the API token; opens a session.
pub(super) async fn login(State(state): State<ApiState>, request: Request) -> Response {
    let ip = client_ip(
        request
            .extensions()
            .get::<ConnectInfo<ClientAddr>>()
            .map(|c| c.0.0),
    );
    let headers = request.headers().clone();
    let lang = Lang::of(&headers);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return layout::error_page(lang, StatusCode::BAD_REQUEST, "login form");
    };
    let next = local(form.next.as_deref());
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(c, &form.login)) {
        state.metrics.api_refused("csrf");
        return layout::error_page(
            lang,
            StatusCode::FORBIDDEN,
            "CSRF: the login form's token does not match; reload the login page",
        );
    }
    let now = now_ms();
    if state.web_logins.check(ip, now).is_err() {
        state.metrics.api_refused("login_rate");
        let text = lang.t(Msg::LoginLimited);
        return login_page(
            &state,
            lang,
            &next,
            StatusCode::TOO_MANY_REQUESTS,
            Some(text),
        );
    }
    let token = form.token.trim().to_string();
    let store = state.store.clone();
    let principal = if token.is_empty() || token.len() > 256 {
        Ok(Ok(None))
    } else {
        tokio::task::spawn_blocking(move || store.authenticate(&token)).await
    };
    let principal = match principal {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => {
            state.web_logins.refused(ip, now);
            state.metrics.api_refused("login");
            let text = lang.t(Msg::LoginRefused);
            return login_page(&state, lang, &next, StatusCode::UNAUTHORIZED, Some(text));
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "login: token check failed");
            return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "store");
        }
        Err(e) => {
            tracing::error!(error = %e, "login: task failed");
            return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "task");
        }
    };
    state.web_logins.succeeded(ip);
    let Some(secret) = random_secret() else {
        return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "random");
    };
    let store = state.store.clone();
    let hash = session_hash(&secret);
    let token_id = principal.token_id.clone();
    let opened = tokio::task::spawn_blocking(move || {
        store.open_session(&hash, &token_id, now, now + SESSION_MS)
    })
    .await;
    if !matches!(opened, Ok(Ok(()))) {
        tracing::error!(?opened, "login: cannot store the session");
        return layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "session");
    }
    tracing::info!(user = %principal.user, "web login");
    let response = Redirect::to(&next).into_response();
    let response = with_cookie(
        response,
        &set_cookie(&state, SESSION_COOKIE, &secret, "/", SESSION_MS / 1000),
    );
    with_cookie(response, &set_cookie(&state, LOGIN_COOKIE, "", "/login", 0))
}

use axum::extract::FromRequest as _;

/// `POST /logout`: ends the session.
pub(super) async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        let store = state.store.clone();
        let hash = session_hash(secret);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.close_session(&hash)).await {
            tracing::error!(error = %e, "logout: cannot end the session");
        }
    }
    with_cookie(
        Redirect::to("/login").into_response(),
        &set_cookie(&state, SESSION_COOKIE, "", "/", 0),
    )
}

/// `GET /`: the user's home page.
pub(super) async fn home(caller: Caller) -> Response {
    Redirect::to(match caller.role() {
        Role::GridWorker => "/field",
        Role::Installer => "/install",
        _ => "/board",
    })
    .into_response()
}

/// `GET /lang/{lang}`: sets the language cookie, back to where the user was.
pub(super) async fn set_lang(
    State(state): State<ApiState>,
    Path(lang): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let value = if lang == "en" { "en" } else { "zh-CN" };
    with_cookie(
        Redirect::to(&local(q.next.as_deref())).into_response(),
        &set_cookie(&state, "fg_lang", value, "/", 365 * 24 * 3600),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_of("one");
        assert_eq!(a.len(), 32);
        assert_ne!(a, csrf_of("two"));
        assert!(same(&a, &csrf_of("one")));
        assert!(!same(&a, &a[..31]));
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local(Some("/board")), "/board");
        assert_eq!(local(Some("//evil.example")), "/");
        assert_eq!(local(Some("https://evil.example")), "/");
        assert_eq!(local(None), "/");
    }

    #[test]
    fn the_posted_token_is_found_in_the_header_or_the_form() {
        let mut h = HeaderMap::new();
        assert_eq!(
            posted_csrf(&h, b"to=acknowledged&csrf=ab12"),
            Some("ab12".into())
        );
        assert_eq!(posted_csrf(&h, b"to=acknowledged"), None);
        h.insert("x-csrf-token", HeaderValue::from_static("cd34"));
        assert_eq!(posted_csrf(&h, b""), Some("cd34".into()));
    }
}
