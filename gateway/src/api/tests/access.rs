//! Access: every route of the route table refuses a request without a token (before its body
//! is read), each role gets exactly the routes of its column, a scoped user reaches nothing
//! outside their area (registry, episodes, tickets, history, live stream, audit), and tokens
//! are made, listed, rotated and revoked.

use super::*;
use crate::api::routes::{matrix, routes};

/// A path of the table with its placeholders filled.
fn concrete(path: &str) -> String {
    path.replace("{id}", "x1").replace("{name}", "nobody")
}

/// Sends and returns the status only (the live stream's body never ends).
async fn status(h: &Harness, token: &str, method: &str, uri: &str) -> StatusCode {
    let mut req = Request::builder().method(method).uri(uri);
    if !token.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    // A body that is not even JSON: the access check must answer before it is read.
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    h.app
        .clone()
        .oneshot(req)
        .await
        .expect("infallible")
        .status()
}

#[tokio::test]
async fn every_route_refuses_a_request_without_a_valid_token() {
    let h = harness();
    let table = routes();
    assert!(
        table.len() >= 45,
        "the table has every route: {}",
        table.len()
    );
    for r in &table {
        let (method, uri) = (r.rule.method.as_str(), concrete(r.rule.path));
        let a = h.call_as("", method, &uri, None).await;
        assert_eq!(a.status, 401, "{method} {uri} without a token: {}", a.text);
        assert!(
            a.error().contains("Authorization: Bearer TOKEN"),
            "{}",
            a.text
        );
        assert_eq!(
            a.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"firegrid\""
        );
        for bad in ["nonsense", "abc.def", &format!("{}x", h.token)] {
            assert_eq!(
                status(&h, bad, method, &uri).await,
                401,
                "{method} {uri} with token {bad:?}"
            );
        }
        // Without a token, an unreadable body is still a 401, not a 400.
        assert_eq!(status(&h, "", method, &uri).await, 401, "{method} {uri}");
    }
    // /healthz stays open; /metrics is open here (the harness's setting).
    assert_ne!(h.call_as("", "GET", "/healthz", None).await.status, 401);
    assert_eq!(h.call_as("", "GET", "/metrics", None).await.status, 200);
    let text = h.get("/metrics").await.text;
    assert!(
        text.contains("firegrid_api_refusals_total{reason=\"no_token\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_need_a_token_when_configured_so() {
    let mut h = harness();
    h.state.metrics_open = false;
    h.app = router(h.state.clone());
    assert_eq!(h.call_as("", "GET", "/metrics", None).await.status, 401);
    let viewer = h.user("v", Role::Viewer, Some("d1"));
    assert_eq!(
        h.call_as(&viewer, "GET", "/metrics", None).await.status,
        200
    );
}

#[tokio::test]
async fn each_role_gets_exactly_its_column_of_the_matrix() {
    let h = harness();
    h.tree().await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        // Admin and operator city-wide, the others scoped to the whole district d1.
        let area = (!role.may_be_city_wide()).then_some("d1");
        tokens.push((role, h.user(&format!("u-{role}"), role, area)));
    }
    for r in routes() {
        let (method, uri) = (r.rule.method.as_str(), concrete(r.rule.path));
        for (role, token) in &tokens {
            let got = status(&h, token, method, &uri).await;
            if r.rule.roles.allows(*role) {
                assert!(
                    got != 401 && got != 403,
                    "{method} {uri} as {role}: {got}, but the table allows it"
                );
            } else {
                let a = h.call_as(token, method, &uri, None).await;
                assert_eq!(a.status, 403, "{method} {uri} as {role}: {}", a.text);
                assert!(
                    a.error()
                        .contains(&format!("needs the role {}", r.rule.roles)),
                    "{}",
                    a.text
                );
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_cannot_change_anything_and_an_installer_cannot_acknowledge() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;
    let id = h.episode("hz-1");
    let viewer = h.user("viewer-zhao", Role::Viewer, Some("d1"));
    let changes: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.rule.method != axum::http::Method::GET)
        .collect();
    assert!(changes.len() >= 25, "{}", changes.len());
    for r in changes {
        let uri = concrete(r.rule.path);
        let got = status(&h, &viewer, r.rule.method.as_str(), &uri).await;
        assert_eq!(got, 403, "{} {uri} as a viewer", r.rule.method);
    }
    let a = h
        .call_as(&viewer, "DELETE", "/api/v1/devices/hz-1", None)
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    h.ok("GET", "/api/v1/devices/hz-1", None, 200).await;

    let installer = h.user("installer-li", Role::Installer, Some("g1"));
    let a = h
        .call_as(
            &installer,
            "POST",
            &format!("/api/v1/episodes/{id}/ticket"),
            Some(json!({"to": "acknowledged"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(
        a.error(),
        "POST /api/v1/episodes/{id}/ticket needs the role admin, operator or grid_worker; \
         installer-li is an installer: ask an admin"
    );
    let e = h
        .ok("GET", &format!("/api/v1/episodes/{id}"), None, 200)
        .await;
    assert_eq!(e["ticket"], "raised");
    h.no_control();
}

/// d1 > g1, g2; a site and a device in each (hz-a in g1, hz-b in g2); an episode of hz-b.
async fn two_cells(h: &mut Harness) -> (i64, i64) {
    let site_a = h.tree().await;
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g2", "parent_id": "d1", "level": "grid", "name": "Grid 2"})),
        201,
    )
    .await;
    let site_b = h
        .ok(
            "POST",
            "/api/v1/sites",
            Some(json!({"name": "Building 9", "address": "9 Moganshan Rd", "area_id": "g2"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("site id");
    h.device("hz-a", site_a).await;
    h.ok(
        "POST",
        "/api/v1/devices",
        Some(
            json!({"id": "hz-b", "kind": "smoke_alarm", "state": "commissioned",
                    "site_id": site_b, "grid_id": "g2"}),
        ),
        201,
    )
    .await;
    h.control();
    let output = Output::Opened {
        id: 1,
        key: EpisodeKey {
            device: DeviceId::new("hz-b").expect("id"),
            channel: None,
            category: Category::Smoke,
        },
        grid: GridId::new("g2").expect("grid"),
        source: Source::Device,
        level: None,
        detail: None,
    };
    h.state
        .store
        .journal_batch(&[JournalOp::Engine {
            output,
            at_ms: 1_764_403_260_000,
        }])
        .expect("journal");
    (site_a, site_b)
}

#[tokio::test]
async fn a_grid_worker_of_one_cell_cannot_reach_another() {
    let mut h = harness();
    let (site_a, site_b) = two_cells(&mut h).await;
    let wang = h.user("wang", Role::GridWorker, Some("g1"));
    let get = |uri: &'static str| {
        let (h, wang) = (&h, &wang);
        async move { h.call_as(wang, "GET", uri, None).await }
    };

    // Lists hold only cell A's.
    let devices = get("/api/v1/devices").await.json();
    assert_eq!(devices.as_array().map(Vec::len), Some(1), "{devices}");
    assert_eq!(devices[0]["id"], "hz-a");
    let sites = get("/api/v1/sites").await.json();
    assert_eq!(sites.as_array().map(Vec::len), Some(1), "{sites}");
    assert_eq!(sites[0]["id"], site_a);
    let episodes = get("/api/v1/episodes").await.json();
    assert_eq!(episodes, json!([]), "cell B's episode is not listed");

    // Cell B's things, by id: 403 naming the area.
    for (method, uri, body) in [
        ("GET", "/api/v1/devices/hz-b".to_string(), None),
        ("GET", "/api/v1/devices/hz-b/history".to_string(), None),
        ("GET", format!("/api/v1/sites/{site_b}"), None),
        ("GET", "/api/v1/episodes/1".to_string(), None),
        ("GET", "/api/v1/episodes?area=g2".to_string(), None),
        ("GET", "/api/v1/live?area=g2".to_string(), None),
        ("GET", "/api/v1/areas/g2/path".to_string(), None),
        ("GET", "/api/v1/areas/g2".to_string(), None),
        (
            "POST",
            "/api/v1/devices/hz-b/commands".to_string(),
            Some(json!({"cmd": "silence"})),
        ),
        (
            "POST",
            "/api/v1/episodes/1/ticket".to_string(),
            Some(json!({"to": "acknowledged"})),
        ),
    ] {
        let a = h.call_as(&wang, method, &uri, body).await;
        assert_eq!(a.status, 403, "{method} {uri}: {}", a.text);
        assert!(
            a.error().contains("outside your area g1"),
            "{method} {uri}: {}",
            a.text
        );
    }
    h.no_control();
    let e = h.ok("GET", "/api/v1/episodes/1", None, 200).await;
    assert_eq!(e["ticket"], "raised", "the ticket did not move");

    // Their own cell works.
    let a = h
        .call_as(
            &wang,
            "POST",
            "/api/v1/devices/hz-a/commands",
            Some(json!({"cmd": "self_test"})),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);

    // The live stream: cell B's alert is not sent, cell A's is.
    let res = h
        .app
        .clone()
        .oneshot(
            Request::get("/api/v1/live")
                .header(header::AUTHORIZATION, format!("Bearer {wang}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    publish(&h, alert(6, AlertKind::Opened, "g2"));
    publish(&h, alert(7, AlertKind::Opened, "g1"));
    let seen = read_until(&mut body, "\n\n").await;
    assert!(seen.starts_with("event: opened\nid: 2-"), "{seen}");
    assert!(seen.contains("\"alert_id\":7,"), "{seen}");
}

#[tokio::test]
async fn a_scoped_installer_changes_only_their_area_and_the_audit_names_them() {
    let mut h = harness();
    let (site_a, site_b) = two_cells(&mut h).await;
    let li = h.user("installer-li", Role::Installer, Some("g1"));
    let a = h
        .call_as(
            &li,
            "POST",
            "/api/v1/rooms",
            Some(json!({"site_id": site_b, "name": "1-101"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(
        a.error(),
        "the new room lies in area g2, outside your area g1: ask an admin for a user scoped to it"
    );
    // Moving a site of theirs out of their area is refused too.
    let a = h
        .call_as(
            &li,
            "PUT",
            &format!("/api/v1/sites/{site_a}"),
            Some(json!({"name": "B7", "address": "7 Moganshan Rd", "area_id": "g2"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = h
        .call_as(
            &li,
            "POST",
            "/api/v1/rooms",
            Some(json!({"site_id": site_a, "name": "1-101"})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);

    // The audit's who is the token's user; a scoped operator sees only their area's entries.
    let log = h
        .ok("GET", "/api/v1/audit?action=room.create", None, 200)
        .await;
    assert_eq!(log[0]["who"], "installer-li", "{log}");
    let op = h.user("op-g2", Role::Operator, Some("g2"));
    let a = h.call_as(&op, "GET", "/api/v1/audit", None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let subjects: Vec<String> = a
        .json()
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["subject"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        subjects.contains(&"device/hz-b".to_string()),
        "{subjects:?}"
    );
    assert!(
        !subjects.contains(&"device/hz-a".to_string()),
        "{subjects:?}"
    );
    assert!(
        !subjects.iter().any(|s| s.starts_with("room/")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn tokens_are_made_listed_rotated_and_revoked_by_a_city_wide_admin() {
    let h = harness();
    let made = h
        .ok(
            "POST",
            "/api/v1/users",
            Some(json!({"name": "chen", "role": "operator"})),
            201,
        )
        .await;
    let old = made["token"].as_str().expect("token").to_string();
    assert_eq!(made["role"], "operator");
    let me = h.call_as(&old, "GET", "/api/v1/me", None).await.json();
    assert_eq!(me["user"], "chen");
    assert_eq!(me["area_id"], Value::Null);

    // A grid worker needs an area.
    let a = h
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"name": "zhou", "role": "grid_worker"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("needs an area_id"), "{}", a.text);

    // Rotate: a new token, then the old one revoked.
    let new = h.ok("POST", "/api/v1/users/chen/tokens", None, 201).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let listed = h.ok("GET", "/api/v1/tokens?user=chen", None, 200).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert!(
        !listed
            .to_string()
            .contains(old.split('.').nth(1).expect("secret"))
    );
    let old_id = old.split('.').next().expect("id");
    let revoked = h
        .ok("DELETE", &format!("/api/v1/tokens/{old_id}"), None, 200)
        .await;
    assert!(revoked["revoked_ms"].is_u64(), "{revoked}");
    assert_eq!(h.call_as(&old, "GET", "/api/v1/me", None).await.status, 401);
    assert_eq!(h.call_as(&new, "GET", "/api/v1/me", None).await.status, 200);
    assert_eq!(
        h.call("DELETE", "/api/v1/tokens/nosuch", None).await.status,
        404
    );

    // A scoped admin does not manage people.
    let scoped = h.user("admin-g1", Role::Admin, Some("g1"));
    let a = h.call_as(&scoped, "GET", "/api/v1/users", None).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.error().contains("city-wide admin"), "{}", a.text);

    let log = h
        .ok("GET", "/api/v1/audit?subject=user/chen", None, 200)
        .await;
    let actions: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "token.revoke",
            "token.create",
            "token.create",
            "user.create"
        ]
    );
    assert_eq!(log[0]["who"], "admin-li");
}

#[test]
fn the_docs_matrix_is_the_route_table() {
    let docs = include_str!("../../../../docs/security.md");
    let table = matrix();
    assert!(
        docs.contains(&table),
        "docs/security.md's route × role matrix differs from the route table; paste this:\n{table}"
    );
}

/// A device's MQTT credential is rotated or revoked only by a role that commissions devices,
/// and only within their area: an installer of cell A gets 403 for cell B's device (whose
/// credential stays as it was), a viewer gets 403 for any.
#[tokio::test]
async fn device_credentials_change_only_within_the_callers_area() {
    let mut h = harness();
    two_cells(&mut h).await;
    let stored = |h: &Harness, id: &str| {
        h.state
            .store
            .get::<crate::store::DeviceFields>(&did(id))
            .expect("read")
            .expect("there")
            .fields
            .credential_hash
    };
    let before = stored(&h, "hz-b");
    let li = h.user("installer-li", Role::Installer, Some("g1"));
    let viewer = h.user("viewer-zhao", Role::Viewer, Some("g1"));
    for method in ["POST", "DELETE"] {
        let a = h
            .call_as(&li, method, "/api/v1/devices/hz-b/credentials", None)
            .await;
        assert_eq!(a.status, 403, "{method}: {}", a.text);
        assert!(a.error().contains("g2"), "{method}: {}", a.text);
        let a = h
            .call_as(&viewer, method, "/api/v1/devices/hz-a/credentials", None)
            .await;
        assert_eq!(a.status, 403, "{method}: {}", a.text);
    }
    assert_eq!(stored(&h, "hz-b"), before, "cell B's credential untouched");
    let a = h
        .call_as(&li, "POST", "/api/v1/devices/hz-a/credentials", None)
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(a.json()["mqtt_password"].as_str().is_some());
}

/// A grid worker traces and ranks only their own cell's circuits: another cell's circuit or
/// area is 403, and a ranking of their area holds none of another cell's circuits.
#[tokio::test]
async fn circuits_of_another_cell_are_neither_traced_nor_ranked() {
    let mut h = harness();
    let (site_a, site_b) = two_cells(&mut h).await;
    let circuit = |site: i64, name: &'static str| {
        let h = &h;
        async move {
            h.ok(
                "POST",
                "/api/v1/circuits",
                Some(json!({"site_id": site, "name": name})),
                201,
            )
            .await["id"]
                .as_i64()
                .expect("circuit id")
        }
    };
    let ca = circuit(site_a, "A's").await;
    let cb = circuit(site_b, "B's").await;
    for (device, site, c, grid, kind) in [
        ("hz-a", site_a, ca, "g1", "electrical_fire_monitor"),
        ("hz-b", site_b, cb, "g2", "smoke_alarm"),
    ] {
        h.ok(
            "PUT",
            &format!("/api/v1/devices/{device}"),
            Some(json!({"kind": kind, "site_id": site, "circuit_id": c, "grid_id": grid})),
            200,
        )
        .await;
        h.control();
    }
    let wang = h.user("wang", Role::GridWorker, Some("g1"));
    for uri in [
        format!("/api/v1/circuits/{cb}/leak-trace"),
        "/api/v1/circuit-ranking?area=g2".to_string(),
    ] {
        let a = h.call_as(&wang, "GET", &uri, None).await;
        assert_eq!(a.status, 403, "{uri}: {}", a.text);
    }
    let a = h
        .call_as(&wang, "GET", "/api/v1/circuit-ranking", None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ids: Vec<i64> = a.json()["circuits"]
        .as_array()
        .expect("circuits")
        .iter()
        .filter_map(|c| c["circuit_id"].as_i64())
        .collect();
    assert_eq!(ids, [ca], "only cell A's circuit");
}
