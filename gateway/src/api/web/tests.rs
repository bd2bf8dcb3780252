//! Tests of the web UI over the router (tests/tests/ui.rs drives a real browser).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{broadcast, mpsc};
use tower::ServiceExt;

use firegrid_protocols::thresholds::Limits;

use super::limiter::MAX_FAILURES;
use crate::access::Role;
use crate::api::{ApiState, Health, router};
use crate::metrics::Metrics;
use crate::store::{Actor, Store};

struct Web {
    app: Router,
    state: ApiState,
    _dir: tempfile::TempDir,
    /// Kept open: ticket moves tell the pipeline.
    _control: mpsc::Receiver<crate::control::Control>,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

fn web() -> Web {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, at_open) = Store::open(dir.path().join("firegrid.db")).expect("store");
    let (control, control_rx) = mpsc::channel(64);
    let (live, _) = broadcast::channel(16);
    let state = ApiState::new(
        store,
        Arc::new(Health::new(at_open)),
        Arc::new(Metrics::new()),
        control,
        live,
        Limits::GB,
    );
    Web {
        app: router(state.clone()),
        state,
        _dir: dir,
        _control: control_rx,
    }
}

impl Web {
    fn user(&self, name: &str, role: Role) -> (String, String) {
        let (_, t) = self
            .state
            .store
            .add_user(name, role, None, Actor::new("test", 1))
            .expect("user");
        (t.id, t.token.expose().to_string())
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Answer {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str, cookie: &str) -> Answer {
        let req = Request::get(uri).header(header::COOKIE, cookie);
        self.send(req.body(Body::empty()).expect("request")).await
    }

    async fn post(&self, uri: &str, cookie: &str, form: &str) -> Answer {
        let req = Request::post(uri)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req.body(Body::from(form.to_string())).expect("request"))
            .await
    }

    /// Logs in through the form; the session cookie (`fg_session=…`), or the refusal.
    async fn login(&self, token: &str) -> Result<String, Answer> {
        let form = self.get("/login", "").await;
        assert_eq!(form.status, StatusCode::OK);
        let nonce = form
            .cookie("fg_login")
            .and_then(|c| {
                c.split(';')
                    .next()
                    .map(|c| c["fg_login=".len()..].to_string())
            })
            .expect("the login form's cookie");
        assert!(
            form.text.contains(&nonce),
            "the form carries the same nonce"
        );
        let answer = self
            .post(
                "/login",
                &format!("fg_login={nonce}"),
                &format!("login={nonce}&token={token}&next=/board"),
            )
            .await;
        match answer.cookie("fg_session") {
            Some(c) if answer.status == StatusCode::SEE_OTHER => {
                Ok(c.split(';').next().expect("a value").to_string())
            }
            _ => Err(answer),
        }
    }

    fn refusals(&self, reason: &str) -> f64 {
        let text = self.state.metrics.render();
        let series = format!("firegrid_api_refusals_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// The CSRF token in a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with its CSRF token")
        + 19;
    page[at..at + 32].to_string()
}

#[test]
fn every_page_takes_the_roles_of_an_api_route() {
    for p in super::pages() {
        assert!(
            p.rule.roles.iter().next().is_some(),
            "{} {} allows no one: its API route is not in the route table",
            p.rule.method,
            p.rule.path
        );
    }
    assert_eq!(
        super::api_roles(Method::POST, "/episodes/{id}/ticket")
            .iter()
            .count(),
        0,
        "a path outside the API's table allows no one"
    );
}

#[tokio::test]
async fn a_token_logs_in_and_the_session_cookie_is_strict_and_http_only() {
    let w = web();
    let (_, token) = w.user("op-wang", Role::Operator);
    let session = w
        .login(&token)
        .await
        .map_err(|a| a.text)
        .expect("logged in");
    let form = w.login(&token).await.expect("again");
    assert_ne!(session, form, "each login its own session");
    let answer = w.get("/board", &session).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(answer.text.contains("op-wang"));
    assert!(answer.text.contains("lang=\"zh-CN\""), "Chinese by default");
    // Set-Cookie flags.
    let form = w.get("/login", "").await;
    let nonce = form.cookie("fg_login").expect("cookie");
    assert!(
        nonce.contains("HttpOnly") && nonce.contains("SameSite=Strict"),
        "{nonce}"
    );
    assert!(!nonce.contains("Secure"), "no Secure without TLS");
}

#[tokio::test]
async fn without_a_session_pages_go_to_the_login_form() {
    let w = web();
    let answer = w.get("/board", "").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/login?next=/board");
    let answer = w.get("/board", "fg_session=made-up").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let answer = w.post("/episodes/1/ticket", "", "to=acknowledged").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refused_logins_are_counted_and_limited() {
    let w = web();
    let (_, token) = w.user("op-li", Role::Operator);
    for _ in 0..MAX_FAILURES {
        let a = w.login("nope.nope").await.expect_err("refused");
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(w.refusals("login"), f64::from(MAX_FAILURES));
    let a = w
        .login(&token)
        .await
        .expect_err("limited, even with the right token");
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(w.refusals("login_rate"), 1.0);
}

#[tokio::test]
async fn a_login_form_without_its_own_token_is_refused() {
    let w = web();
    let (_, token) = w.user("op-zhao", Role::Operator);
    let a = w
        .post("/login", "", &format!("login=x&token={token}"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.cookie("fg_session").is_none());
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token_and_logout_ends_the_session() {
    let w = web();
    let (_, token) = w.user("op-sun", Role::Operator);
    let session = w.login(&token).await.expect("logged in");
    let other = w.login(&token).await.expect("another session");
    let page = w.get("/board", &session).await;
    let mine = csrf(&page.text);
    let theirs = csrf(&w.get("/board", &other).await.text);
    assert_ne!(mine, theirs);
    for form in [String::new(), "csrf=".to_string(), format!("csrf={theirs}")] {
        let a = w.post("/logout", &session, &form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{form}");
    }
    assert_eq!(w.refusals("csrf"), 3.0);
    let a = w.post("/logout", &session, &format!("csrf={mine}")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.get("/board", &session).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(w.get("/board", &other).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let w = web();
    let (id, token) = w.user("op-qian", Role::Operator);
    let session = w.login(&token).await.expect("logged in");
    assert_eq!(w.get("/board", &session).await.status, StatusCode::OK);
    w.state
        .store
        .revoke_token(&id, Actor::new("test", 2))
        .expect("revoked");
    assert_eq!(
        w.get("/board", &session).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_role_without_the_api_route_gets_403() {
    let w = web();
    let area = firegrid_protocols::GridId::new("d1").expect("an id");
    let fields = crate::store::AreaFields {
        parent_id: None,
        level: crate::store::AreaLevel::District,
        name: "D1".into(),
    };
    w.state
        .store
        .create::<crate::store::AreaFields>(area.clone(), &fields, Actor::new("test", 1))
        .expect("area");
    let (_, t) = w
        .state
        .store
        .add_user(
            "viewer-zhou",
            Role::Viewer,
            Some(&area),
            Actor::new("test", 1),
        )
        .expect("user");
    let token = t.token.expose().to_string();
    let session = w.login(&token).await.expect("logged in");
    assert_eq!(
        w.get("/install", &session).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.get("/board", &session).await.status, StatusCode::OK);
    let page = w.get("/devices", &session).await;
    let a = w
        .post(
            "/episodes/1/ticket",
            &session,
            &format!("csrf={}&to=acknowledged", csrf(&page.text)),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "viewers move no ticket");
}

#[tokio::test]
async fn english_by_cookie_or_accept_language() {
    let w = web();
    let (_, token) = w.user("op-wu", Role::Operator);
    let session = w.login(&token).await.expect("logged in");
    let page = w.get("/board", &format!("{session}; fg_lang=en")).await;
    assert!(page.text.contains("Open hazards"), "{}", page.text);
    let a = w.get("/lang/en?next=/board", "").await;
    assert!(
        a.cookie("fg_lang")
            .is_some_and(|c| c.starts_with("fg_lang=en;"))
    );
    assert_eq!(a.headers[header::LOCATION], "/board");
}

#[tokio::test]
async fn assets_are_embedded_and_name_no_outside_url() {
    let w = web();
    for (name, _, bytes) in super::assets::FILES {
        let a = w.get(&format!("/assets/{name}"), "").await;
        assert_eq!(a.status, StatusCode::OK, "{name}");
        assert_eq!(a.text.len(), bytes.len());
    }
    assert_eq!(
        w.get("/assets/nope.js", "").await.status,
        StatusCode::NOT_FOUND
    );
    let login = w.get("/login", "").await;
    assert!(!login.text.contains("http://") && !login.text.contains("https://"));
    let csp = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ASCII");
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
}

#[tokio::test]
async fn a_reopened_live_stream_first_tells_the_page_to_reload() {
    let w = web();
    let (_, token) = w.user("op-qian", Role::Operator);
    let session = w.login(&token).await.expect("logged in");
    let req = Request::get("/board/live")
        .header(header::COOKIE, &session)
        .header("last-event-id", "42")
        .body(Body::empty())
        .expect("request");
    let res = w.app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("a first event at once")
        .expect("a frame")
        .expect("no error");
    let text = String::from_utf8_lossy(frame.data_ref().expect("data")).into_owned();
    assert!(text.contains("event: lagged"), "{text}");
}

/// The rectify form of the field page without JavaScript: a multipart post with a note, a
/// photo and `to=rectified`, its CSRF token in the action's query; back to `/field`, which
/// then lists the note and shows the photo (served through the session); without the token
/// it is refused and counted.
#[tokio::test]
async fn rectify_with_a_note_and_a_photo_without_javascript() {
    use crate::engine::Output;
    use crate::model::{Category, EpisodeKey, Source};
    use crate::store::JournalOp;
    use firegrid_protocols::{DeviceId, GridId};
    let w = web();
    let (_, token) = w.user("admin-web", Role::Admin);
    let session = w.login(&token).await.expect("logged in");
    let output = Output::Opened {
        id: 1,
        key: EpisodeKey {
            device: DeviceId::new("hz-1").expect("id"),
            channel: None,
            category: Category::Smoke,
        },
        grid: GridId::new("g1").expect("grid"),
        source: Source::Device,
        level: None,
        detail: None,
    };
    w.state
        .store
        .journal_batch(&[JournalOp::Engine {
            output,
            at_ms: crate::clock::now_ms(),
        }])
        .expect("journal");
    let page = w.get("/field", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = csrf(&page.text);
    assert!(
        page.text
            .contains(&format!("/episodes/1/evidence?csrf={token}")),
        "the form carries the token in its action"
    );
    assert!(page.text.contains("capture=\"environment\""), "the camera");
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    let boundary = "XyZ";
    let mut body = Vec::new();
    for (name, value) in [("to", "rectified"), ("note", "换了烟感")] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let post = |uri: String| {
        Request::post(uri)
            .header(header::COOKIE, &session)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body.clone()))
            .expect("request")
    };
    let refused = w.send(post("/episodes/1/evidence".into())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(w.refusals("csrf"), 1.0);
    let done = w
        .send(post(format!("/episodes/1/evidence?csrf={token}")))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.headers[header::LOCATION], "/field#card-1");
    let e = w.state.store.episode(1).expect("read").expect("episode");
    assert_eq!(e.ticket, crate::model::TicketState::Rectified);
    let page = w.get("/field", &session).await;
    assert!(page.text.contains("换了烟感"), "the note is listed");
    assert!(page.text.contains("src=\"/evidence/1/photo\""), "the photo");
    let photo = w.get("/evidence/1/photo", &session).await;
    assert_eq!(photo.status, StatusCode::OK);
    assert_eq!(photo.headers[header::CONTENT_TYPE], "image/png");
}
mod utility;

/// A device being commissioned alarms for its installer: the board does not list its
/// episode; once the device is in service it does.
#[tokio::test]
async fn the_board_leaves_a_commissioning_test_to_the_installer() {
    use crate::engine::Output;
    use crate::model::{Category, DeviceKind, DeviceState, EpisodeKey, Source};
    use crate::store::{DeviceFields, JournalOp, WireEncoding};
    use firegrid_protocols::{DeviceId, GridId};
    let w = web();
    let (_, token) = w.user("admin-board", Role::Admin);
    let session = w.login(&token).await.expect("logged in");
    let actor = Actor::new("test", 1);
    let g1 = GridId::new("g1").expect("grid");
    let area = crate::store::AreaFields {
        parent_id: None,
        level: crate::store::AreaLevel::Grid,
        name: "G1".into(),
    };
    w.state
        .store
        .create::<crate::store::AreaFields>(g1.clone(), &area, actor)
        .expect("area");
    let site = crate::store::SiteFields {
        name: "Site".into(),
        address: "1 Test Rd".into(),
        owner_name: None,
        owner_phone: None,
        area_id: g1.clone(),
    };
    let site = w
        .state
        .store
        .create::<crate::store::SiteFields>((), &site, actor)
        .expect("site")
        .id;
    let id = DeviceId::new("hz-c").expect("id");
    let mut fields = DeviceFields {
        kind: DeviceKind::SmokeAlarm,
        state: DeviceState::Commissioned,
        site_id: Some(site),
        room_id: None,
        circuit_id: None,
        grid_id: Some(g1.clone()),
        config: firegrid_protocols::message::Config {
            version: 1,
            report_interval_s: 60,
            heartbeat_interval_s: 60,
            buzzer: true,
            relay_trip: false,
            channels: Default::default(),
        },
        encoding: WireEncoding::Json,
        credential_hash: None,
    };
    w.state
        .store
        .create::<DeviceFields>(id.clone(), &fields, actor)
        .expect("device");
    let output = Output::Opened {
        id: 7,
        key: EpisodeKey {
            device: id.clone(),
            channel: None,
            category: Category::Smoke,
        },
        grid: g1,
        source: Source::Device,
        level: None,
        detail: None,
    };
    w.state
        .store
        .journal_batch(&[JournalOp::Engine {
            output,
            at_ms: crate::clock::now_ms(),
        }])
        .expect("journal");
    let board = w.get("/board", &session).await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(
        !board.text.contains("id=\"ep-7\""),
        "a test is not a hazard"
    );
    fields.state = DeviceState::InService;
    w.state
        .store
        .update::<DeviceFields>(&id, &fields, actor)
        .expect("in service");
    let board = w.get("/board", &session).await;
    assert!(board.text.contains("id=\"ep-7\""), "{}", board.text);
}
