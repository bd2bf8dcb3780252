//! The API driven in process: a store in a temporary folder, [`router`] called with
//! `tower::ServiceExt::oneshot` (and [`serve`] on a port-0 listener), no sleeps.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tower::ServiceExt;

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::{Action, Level, Reading};
use firegrid_protocols::thresholds::Limits;
use firegrid_protocols::{DeviceId, GridId};

use super::{ApiState, Health, router, serve};
use crate::access::Role;
use crate::control::Control;
use crate::engine::Output;
use crate::metrics::{IngestKind, Metrics};
use crate::model::{Category, EpisodeKey, Source};
use crate::notify::alert::{Alert, AlertKind};
use crate::store::{Actor, JournalOp, Sample, Store};

/// How long a test waits for something that should come at once.
const DEADLINE: Duration = Duration::from_secs(10);

struct Harness {
    app: Router,
    state: ApiState,
    control: mpsc::Receiver<Control>,
    /// A city-wide admin's token (user `admin-li`): what `call` sends.
    token: String,
    _dir: tempfile::TempDir,
}

fn harness_with(limits: Limits, live_capacity: usize) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, at_open) = Store::open(dir.path().join("firegrid.db")).expect("store");
    let health = Arc::new(Health::new(at_open));
    health.set_broker_connected(true);
    let (control_tx, control) = mpsc::channel(64);
    let (live, _) = broadcast::channel(live_capacity);
    let (_, token) = store
        .add_user("admin-li", Role::Admin, None, Actor::new("test", 1))
        .expect("admin");
    let mut state = ApiState::new(
        store,
        health,
        Arc::new(Metrics::new()),
        control_tx,
        live,
        limits,
    );
    state.metrics_open = true;
    Harness {
        app: router(state.clone()),
        state,
        control,
        token: token.token.expose().to_string(),
        _dir: dir,
    }
}

fn harness() -> Harness {
    harness_with(Limits::GB, 16)
}

/// A response: status, headers and body text.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.text))
            .to_string()
    }
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Answer {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> Answer {
        self.call_as(&self.token, method, uri, body).await
    }

    /// The admin's `Authorization` header value.
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A user's token, made in the store (`area`: their scope).
    fn user(&self, name: &str, role: Role, area: Option<&str>) -> String {
        let area = area.map(|a| GridId::new(a).expect("area"));
        let (_, t) = self
            .state
            .store
            .add_user(name, role, area.as_ref(), Actor::new("test", 1))
            .expect("user");
        t.token.expose().to_string()
    }

    /// A request with `token` (empty: none).
    async fn call_as(&self, token: &str, method: &str, uri: &str, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if !token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).expect("request")).await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, None).await
    }

    /// A call that must succeed with `status`; its JSON.
    async fn ok(&self, method: &str, uri: &str, body: Option<Value>, status: u16) -> Value {
        let a = self.call(method, uri, body).await;
        assert_eq!(a.status, status, "{method} {uri}: {}", a.text);
        if a.text.is_empty() {
            Value::Null
        } else {
            a.json()
        }
    }

    /// The next control message, which must already be queued.
    fn control(&mut self) -> Control {
        self.control.try_recv().expect("a control message")
    }

    fn no_control(&mut self) {
        assert!(
            self.control.try_recv().is_err(),
            "no control message expected"
        );
    }

    /// Areas d1 (district) > g1 (grid), a site in g1 (its id is returned).
    async fn tree(&self) -> i64 {
        self.ok(
            "POST",
            "/api/v1/areas",
            Some(json!({"id": "d1", "level": "district", "name": "Gongshu"})),
            201,
        )
        .await;
        self.ok(
            "POST",
            "/api/v1/areas",
            Some(json!({"id": "g1", "parent_id": "d1", "level": "grid", "name": "Grid 1"})),
            201,
        )
        .await;
        let site = self
            .ok(
                "POST",
                "/api/v1/sites",
                Some(json!({"name": "Building 7", "address": "7 Moganshan Rd", "area_id": "g1"})),
                201,
            )
            .await;
        site["id"].as_i64().expect("site id")
    }

    /// Registers device `id`, commissioned at `site` in grid g1, with a residual channel 0 and
    /// a temperature channel 1.
    async fn device(&mut self, id: &str, site: i64) -> Value {
        let d = self
            .ok(
                "POST",
                "/api/v1/devices",
                Some(json!({
                    "id": id,
                    "kind": "electrical_fire_monitor",
                    "state": "commissioned",
                    "site_id": site,
                    "grid_id": "g1",
                    "config": {"channels": [{"ch": 0, "residual_ma": 300}, {"ch": 1, "temp_dc": 850}]}
                })),
                201,
            )
            .await;
        assert_eq!(
            self.control(),
            Control::DeviceChanged(DeviceId::new(id).expect("id"))
        );
        d
    }

    /// Journals an open alarm episode of `device` (id 1).
    fn episode(&self, device: &str) -> u64 {
        let output = Output::Opened {
            id: 1,
            key: EpisodeKey {
                device: DeviceId::new(device).expect("id"),
                channel: Some(0),
                category: Category::Alarm,
            },
            grid: GridId::new("g1").expect("grid"),
            source: Source::Device,
            level: Some(Level {
                quantity: Quantity::ResidualCurrent,
                value: 412,
                threshold: 300,
            }),
            detail: None,
        };
        self.state
            .store
            .journal_batch(&[JournalOp::Engine {
                output,
                at_ms: 1_764_403_260_000,
            }])
            .expect("journal");
        1
    }
}

#[tokio::test]
async fn registry_crud_round_trips() {
    let mut h = harness();
    let site = h.tree().await;

    // Areas.
    let a = h.ok("GET", "/api/v1/areas/g1", None, 200).await;
    assert_eq!(a["parent_id"], "d1");
    assert_eq!(a["level"], "grid");
    let grids = h.ok("GET", "/api/v1/areas?level=grid", None, 200).await;
    assert_eq!(grids.as_array().map(Vec::len), Some(1));
    let a = h
        .ok(
            "PUT",
            "/api/v1/areas/g1",
            Some(json!({"parent_id": "d1", "level": "grid", "name": "Grid one"})),
            200,
        )
        .await;
    assert_eq!(a["name"], "Grid one");
    let path = h.ok("GET", "/api/v1/areas/g1/path", None, 200).await;
    assert_eq!(path[1]["id"], "d1");
    let dup = h
        .call(
            "POST",
            "/api/v1/areas",
            Some(json!({"id": "g1", "level": "grid", "name": "again"})),
        )
        .await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    assert!(dup.error().contains("exists already"), "{}", dup.text);

    // Workers.
    let w = h
        .ok(
            "POST",
            "/api/v1/workers",
            Some(json!({"name": "Li Na", "area_id": "g1", "phone": "13800000000"})),
            201,
        )
        .await;
    let wid = w["id"].as_i64().expect("worker id");
    let w = h
        .ok(
            "PUT",
            &format!("/api/v1/workers/{wid}"),
            Some(json!({"name": "Li Na", "area_id": "g1", "webhook_url": "https://example.invalid/hook"})),
            200,
        )
        .await;
    assert_eq!(w["phone"], Value::Null);
    assert_eq!(w["webhook_url"], "https://example.invalid/hook");
    let ws = h.ok("GET", "/api/v1/workers?area=g1", None, 200).await;
    assert_eq!(ws.as_array().map(Vec::len), Some(1));

    // Sites, rooms, circuits.
    let s = h
        .ok("GET", &format!("/api/v1/sites/{site}"), None, 200)
        .await;
    assert_eq!(s["address"], "7 Moganshan Rd");
    let sites = h.ok("GET", "/api/v1/sites?area=d1", None, 200).await;
    assert_eq!(
        sites.as_array().map(Vec::len),
        Some(1),
        "the area and below"
    );
    let room = h
        .ok(
            "POST",
            "/api/v1/rooms",
            Some(json!({"site_id": site, "name": "3-302"})),
            201,
        )
        .await;
    let room_id = room["id"].as_i64().expect("room id");
    let supply = h
        .ok(
            "POST",
            "/api/v1/circuits",
            Some(json!({"site_id": site, "name": "supply"})),
            201,
        )
        .await;
    let supply_id = supply["id"].as_i64().expect("circuit id");
    let c = h
        .ok(
            "POST",
            "/api/v1/circuits",
            Some(json!({"site_id": site, "parent_id": supply_id, "name": "3F sockets"})),
            201,
        )
        .await;
    let circuit_id = c["id"].as_i64().expect("circuit id");
    let cs = h
        .ok("GET", &format!("/api/v1/circuits?site={site}"), None, 200)
        .await;
    assert_eq!(cs.as_array().map(Vec::len), Some(2));

    // Devices.
    let created = h
        .call(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz-0042", "kind": "electrical_fire_monitor"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers[header::LOCATION], "/api/v1/devices/hz-0042");
    let d = created.json();
    assert_eq!(d["state"], "registered");
    assert_eq!(d["config"]["version"], 1);
    assert_eq!(d["encoding"], "json");
    assert!(d.get("credential_hash").is_none());
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-0042")));

    let d = h
        .ok(
            "PUT",
            "/api/v1/devices/hz-0042",
            Some(json!({
                "kind": "electrical_fire_monitor", "site_id": site, "room_id": room_id,
                "circuit_id": circuit_id, "grid_id": "g1"
            })),
            200,
        )
        .await;
    assert_eq!(d["room_id"], room_id);
    assert_eq!(d["circuit_id"], circuit_id);
    assert_eq!(d["state"], "registered", "PUT keeps the state");
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-0042")));
    let d = h.ok("GET", "/api/v1/devices/hz-0042", None, 200).await;
    assert_eq!(d["grid_id"], "g1");
    let list = h
        .ok(
            "GET",
            &format!("/api/v1/devices?state=registered&site={site}&area=d1&limit=10"),
            None,
            200,
        )
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let none = h
        .ok("GET", "/api/v1/devices?state=in_service", None, 200)
        .await;
    assert_eq!(none, json!([]));

    // In use: 409 with what uses it.
    let in_use = h
        .call("DELETE", &format!("/api/v1/rooms/{room_id}"), None)
        .await;
    assert_eq!(in_use.status, 409, "{}", in_use.text);
    assert!(
        in_use.error().contains("still used by devices"),
        "{}",
        in_use.text
    );

    // Deletes.
    h.ok("DELETE", "/api/v1/devices/hz-0042", None, 204).await;
    assert_eq!(h.control(), Control::DeviceRemoved(did("hz-0042")));
    assert_eq!(h.get("/api/v1/devices/hz-0042").await.status, 404);
    h.ok("DELETE", &format!("/api/v1/rooms/{room_id}"), None, 204)
        .await;
    h.ok(
        "DELETE",
        &format!("/api/v1/circuits/{circuit_id}"),
        None,
        204,
    )
    .await;
    h.ok("DELETE", &format!("/api/v1/workers/{wid}"), None, 204)
        .await;
    let gone = h
        .call("DELETE", &format!("/api/v1/workers/{wid}"), None)
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.error(), format!("no worker {wid}"));

    // Every change is audited with who made it.
    let log = h
        .ok("GET", "/api/v1/audit?subject=device/hz-0042", None, 200)
        .await;
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["who"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("device.delete", "admin-li"),
            ("device.update", "admin-li"),
            ("device.create", "admin-li")
        ]
    );
    h.no_control();
}

fn did(s: &str) -> DeviceId {
    DeviceId::new(s).expect("device id")
}

#[tokio::test]
async fn thresholds_are_checked_against_the_limits() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;

    let bad = |ch: Value| json!({"channels": [ch]});
    for (body, expected) in [
        (
            bad(json!({"ch": 0, "residual_ma": 5})),
            "invalid device configuration: channel 0: residual-current set-point 5 mA is \
             outside 20-1000 mA (GB 14287.2)",
        ),
        (
            bad(json!({"ch": 2, "temp_dc": 1500})),
            "invalid device configuration: channel 2: temperature set-point 1500 is outside \
             550-1400 (deci-°C; GB 14287.3: 55-140 °C)",
        ),
        (
            bad(json!({"ch": 0, "residual_ma": 300, "delay_s": 31})),
            "invalid device configuration: channel 0: alarm delay 31 s is over 30 s (GB 14287: \
             alarm within 30 s)",
        ),
        (
            bad(json!({"ch": 0, "residual_ma": 300, "temp_dc": 850})),
            "invalid device configuration: channel 0: give exactly one of residual_ma (mA) or \
             temp_dc (deci-°C)",
        ),
        (
            bad(json!({"ch": 16, "residual_ma": 300})),
            "invalid device configuration: channel 16 does not exist: channels are 0-15",
        ),
        (
            json!({"report_interval_s": 1, "channels": []}),
            "invalid device configuration: report_interval_s 1 s is outside 5-86400 s",
        ),
        (
            json!({"channels": [{"ch": 0, "residual_ma": 300}, {"ch": 0, "residual_ma": 400}]}),
            "invalid device configuration: channel 0 is listed twice",
        ),
        (
            bad(json!({"ch": 0, "residual_ma": 99_999_999_999_i64})),
            "invalid device configuration: channel 0: residual-current set-point 2147483647 mA \
             is outside 20-1000 mA (GB 14287.2)",
        ),
    ] {
        let a = h
            .call("PUT", "/api/v1/devices/hz-1/config", Some(body.clone()))
            .await;
        assert_eq!(a.status, 422, "{body}: {}", a.text);
        assert_eq!(a.error(), expected, "{body}");
    }
    // Nothing was changed, nobody was told.
    let d = h.ok("GET", "/api/v1/devices/hz-1", None, 200).await;
    assert_eq!(d["config"]["version"], 1);
    h.no_control();

    // A good change gets the next version and reaches the pipeline.
    let d = h
        .ok(
            "PUT",
            "/api/v1/devices/hz-1/config",
            Some(json!({"version": 1, "channels": [{"ch": 0, "residual_ma": 500, "delay_s": 5}]})),
            200,
        )
        .await;
    assert_eq!(
        d["config"],
        json!({"version": 2, "report_interval_s": 60, "heartbeat_interval_s": 60, "buzzer": true,
               "relay_trip": false, "channels": [{"ch": 0, "enabled": true, "residual_ma": 500, "delay_s": 5}]})
    );
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-1")));

    // The same again changes nothing; a change based on an old version is refused.
    let same = json!({"channels": [{"ch": 0, "residual_ma": 500, "delay_s": 5}]});
    let d = h
        .ok("PUT", "/api/v1/devices/hz-1/config", Some(same), 200)
        .await;
    assert_eq!(d["config"]["version"], 2);
    h.no_control();
    let stale = h
        .call(
            "PUT",
            "/api/v1/devices/hz-1/config",
            Some(json!({"version": 1, "channels": []})),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert!(
        stale.error().contains("it is version 2 now"),
        "{}",
        stale.text
    );

    // An unknown device is 404 (checked after the body).
    let a = h
        .call(
            "PUT",
            "/api/v1/devices/nope/config",
            Some(json!({"channels": []})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
}

#[tokio::test]
async fn configured_limits_narrower_than_gb_are_enforced() {
    let limits = Limits {
        residual_max_ma: 500,
        ..Limits::GB
    };
    let mut h = harness_with(limits, 16);
    let site = h.tree().await;
    h.device("hz-1", site).await;
    let a = h
        .call(
            "PUT",
            "/api/v1/devices/hz-1/config",
            Some(json!({"channels": [{"ch": 0, "residual_ma": 800}]})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("outside 20-500 mA"), "{}", a.text);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_json_error() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;

    // Unknown fields.
    let a = h
        .call(
            "POST",
            "/api/v1/areas",
            Some(json!({"id": "g2", "level": "grid", "name": "G", "colour": "red"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("unknown field `colour`"), "{}", a.text);
    let a = h
        .call(
            "PUT",
            "/api/v1/devices/hz-1/config",
            Some(json!({"channels": [{"ch": 0, "residual": 300}]})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("unknown field `residual`"), "{}", a.text);

    // Malformed JSON, wrong type, no JSON content type.
    let req = Request::post("/api/v1/areas")
        .header(header::AUTHORIZATION, h.bearer())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"id\": "))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(!a.error().is_empty());
    let a = h
        .call(
            "POST",
            "/api/v1/rooms",
            Some(json!({"site_id": "seven", "name": "1"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let req = Request::post("/api/v1/areas")
        .header(header::AUTHORIZATION, h.bearer())
        .body(Body::from(r#"{"id":"x","level":"grid","name":"x"}"#))
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, 415, "{}", a.text);
    assert!(a.error().contains("application/json"), "{}", a.text);

    // Ids: the protocol's rule, in the path and in bodies.
    let a = h.get("/api/v1/devices/a+b").await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.error(),
        "device id in the path \"a+b\": id contains '+' at byte 1: ids are 1-32 characters of \
         [A-Za-z0-9_-]"
    );
    let a = h.get(&format!("/api/v1/devices/{}", "x".repeat(33))).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = h.get("/api/v1/workers/seven").await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.error().contains("is not a number"), "{}", a.text);
    let a = h
        .call(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz/1", "kind": "smoke_alarm"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(
        a.error().starts_with("id \"hz/1\": id contains '/'"),
        "{}",
        a.text
    );
    let a = h
        .call(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz-2", "kind": "toaster"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(
        a.error().contains("unknown variant `toaster`"),
        "{}",
        a.text
    );

    // Query parameters.
    for uri in [
        "/api/v1/devices?stat=registered",
        "/api/v1/devices?state=asleep",
        "/api/v1/devices?limit=0",
        "/api/v1/devices?limit=10001",
        "/api/v1/episodes?open=maybe",
        "/api/v1/episodes?open=false",
        "/api/v1/episodes?from=10&to=5",
        "/api/v1/episodes?device=a%2Fb",
        "/api/v1/devices/hz-1/history?ch=16",
        "/api/v1/devices/hz-1/history?step=fast",
        "/api/v1/devices/hz-1/history?from=0&to=100000000&step=1",
        "/api/v1/audit?from=-1",
    ] {
        let a = h.get(uri).await;
        assert_eq!(a.status, 400, "{uri}: {}", a.text);
        assert!(!a.error().is_empty(), "{uri}");
    }

    // References that do not exist are 422, the path's own resource 404.
    let a = h
        .call(
            "POST",
            "/api/v1/workers",
            Some(json!({"name": "Wang", "area_id": "nowhere"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(
        a.error().starts_with("unknown area \"nowhere\""),
        "{}",
        a.text
    );
    let a = h
        .call(
            "PUT",
            "/api/v1/areas/g1",
            Some(json!({"parent_id": "nowhere", "level": "grid", "name": "G"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let a = h
        .call(
            "PUT",
            "/api/v1/areas/zz",
            Some(json!({"level": "grid", "name": "G"})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    let a = h
        .call(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz-3", "kind": "smoke_alarm", "grid_id": "d1"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.error(), "area \"d1\" is not a grid cell");

    // No such route, no such method.
    let a = h.get("/api/v1/nothing").await;
    assert_eq!(a.status, 404);
    assert!(a.error().contains("no such route"));
    let a = h.call("PATCH", "/api/v1/areas", None).await;
    assert_eq!(a.status, 405, "{}", a.text);
    assert!(a.error().contains("method"));
    h.no_control();
}

#[tokio::test]
async fn device_states_move_by_the_rules() {
    let mut h = harness();
    let site = h.tree().await;
    h.ok(
        "POST",
        "/api/v1/devices",
        Some(json!({"id": "hz-1", "kind": "smoke_alarm"})),
        201,
    )
    .await;
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-1")));

    let a = h
        .call(
            "POST",
            "/api/v1/devices/hz-1/state",
            Some(json!({"to": "in_service"})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(
        a.error()
            .starts_with("device hz-1: cannot go from registered to in_service"),
        "{}",
        a.text
    );
    let a = h
        .call(
            "POST",
            "/api/v1/devices/hz-1/state",
            Some(json!({"to": "commissioned"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(
        a.error(),
        "device \"hz-1\" cannot be commissioned without a site"
    );
    h.no_control();

    h.ok(
        "PUT",
        "/api/v1/devices/hz-1",
        Some(json!({"kind": "smoke_alarm", "site_id": site, "grid_id": "g1"})),
        200,
    )
    .await;
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-1")));
    for to in ["commissioned", "in_service"] {
        let d = h
            .ok(
                "POST",
                "/api/v1/devices/hz-1/state",
                Some(json!({"to": to, "note": "tested with smoke spray"})),
                200,
            )
            .await;
        assert_eq!(d["state"], to);
        assert_eq!(h.control(), Control::DeviceChanged(did("hz-1")));
    }
    // The same state again is a no-op.
    h.ok(
        "POST",
        "/api/v1/devices/hz-1/state",
        Some(json!({"to": "in_service"})),
        200,
    )
    .await;
    h.no_control();
    h.ok(
        "POST",
        "/api/v1/devices/hz-1/state",
        Some(json!({"to": "decommissioned"})),
        200,
    )
    .await;
    assert_eq!(h.control(), Control::DeviceRemoved(did("hz-1")));
    let log = h
        .ok("GET", "/api/v1/audit?action=device.state", None, 200)
        .await;
    assert_eq!(
        log[0]["detail"],
        json!({"from": "in_service", "to": "decommissioned", "note": null})
    );
    assert_eq!(log[1]["detail"]["note"], "tested with smoke spray");

    // A decommissioned device takes no commands.
    let a = h
        .call(
            "POST",
            "/api/v1/devices/hz-1/commands",
            Some(json!({"cmd": "self_test"})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    h.no_control();
}

#[tokio::test]
async fn commands_go_to_the_pipeline() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;

    let a = h
        .call(
            "POST",
            "/api/v1/devices/hz-1/commands",
            Some(json!({"cmd": "reset_alarm", "ch": 0})),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({"device": "hz-1", "cmd": "reset_alarm", "ch": 0, "status": "queued"})
    );
    assert_eq!(
        h.control(),
        Control::Command(did("hz-1"), Action::ResetAlarm { channel: Some(0) })
    );
    h.ok(
        "POST",
        "/api/v1/devices/hz-1/commands",
        Some(json!({"cmd": "self_test"})),
        202,
    )
    .await;
    assert_eq!(h.control(), Control::Command(did("hz-1"), Action::SelfTest));

    for (body, status) in [
        (json!({"cmd": "reboot", "ch": 1}), 422),
        (json!({"cmd": "reset_alarm", "ch": 16}), 422),
        (json!({"cmd": "explode"}), 422),
        (json!({"cmd": "silence", "force": true}), 422),
    ] {
        let a = h
            .call("POST", "/api/v1/devices/hz-1/commands", Some(body.clone()))
            .await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
    }
    let a = h
        .call(
            "POST",
            "/api/v1/devices/nope/commands",
            Some(json!({"cmd": "reboot"})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    h.no_control();
    let log = h
        .ok("GET", "/api/v1/audit?action=device.command", None, 200)
        .await;
    assert_eq!(log[1]["detail"], json!({"cmd": "reset_alarm", "ch": 0}));
}

#[tokio::test]
async fn a_stopped_pipeline_is_503_after_the_change_is_stored() {
    let mut h = harness();
    h.tree().await;
    h.control.close();
    let a = h
        .call(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz-1", "kind": "smoke_alarm"})),
        )
        .await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.error().contains("the change is stored"), "{}", a.text);
    h.ok("GET", "/api/v1/devices/hz-1", None, 200).await;
}

#[tokio::test]
async fn tickets_move_forward_and_acknowledgement_reaches_the_pipeline() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;
    let id = h.episode("hz-1");

    let e = h
        .ok("GET", &format!("/api/v1/episodes/{id}"), None, 200)
        .await;
    assert_eq!(e["device"], "hz-1");
    assert_eq!(e["category"], "alarm");
    assert_eq!(e["open"], true);
    assert_eq!(
        e["peak"],
        json!({"quantity": "residual_current", "value": 412, "threshold": 300})
    );
    assert_eq!(e["steps"][0]["state"], "raised");

    // Who moves a ticket is the caller: a `who` in the body is refused.
    let a = h
        .call(
            "POST",
            &format!("/api/v1/episodes/{id}/ticket"),
            Some(json!({"to": "acknowledged", "who": "someone-else"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let wang = h.user("grid-worker-wang", Role::GridWorker, Some("g1"));
    let a = h
        .call_as(
            &wang,
            "POST",
            &format!("/api/v1/episodes/{id}/ticket"),
            Some(json!({"to": "acknowledged", "note": "on my way"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let e = a.json();
    assert_eq!(e["ticket"], "acknowledged");
    assert_eq!(h.control(), Control::Acknowledged(id));

    let a = h
        .call(
            "POST",
            &format!("/api/v1/episodes/{id}/ticket"),
            Some(json!({"to": "raised"})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(
        a.error().starts_with(
            "episode 1: the ticket cannot go from acknowledged to raised: a ticket moves \
             forward only (raised → acknowledged → dispatched → rectified → verified → closed)"
        ),
        "{}",
        a.text
    );
    h.no_control();

    h.ok(
        "POST",
        &format!("/api/v1/episodes/{id}/ticket"),
        Some(json!({"to": "closed"})),
        200,
    )
    .await;
    assert_eq!(h.control(), Control::Acknowledged(id));
    let e = h
        .ok("GET", &format!("/api/v1/episodes/{id}"), None, 200)
        .await;
    let steps: Vec<(&str, &str)> = e["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap_or(""),
                s["who"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("raised", "gateway"),
            ("acknowledged", "grid-worker-wang"),
            ("closed", "admin-li")
        ]
    );
    assert_eq!(e["steps"][1]["note"], "on my way");

    let list = h
        .ok(
            "GET",
            "/api/v1/episodes?open=true&state=closed&category=alarm&area=d1&device=hz-1",
            None,
            200,
        )
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let list = h
        .ok("GET", "/api/v1/episodes?state=raised", None, 200)
        .await;
    assert_eq!(list, json!([]));

    for (uri, status) in [
        ("/api/v1/episodes/2", 404),
        ("/api/v1/episodes/x", 400),
        ("/api/v1/episodes/-1", 400),
    ] {
        assert_eq!(h.get(uri).await.status, status, "{uri}");
    }
    let a = h
        .call(
            "POST",
            "/api/v1/episodes/9/ticket",
            Some(json!({"to": "acknowledged"})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    let a = h
        .call(
            "POST",
            &format!("/api/v1/episodes/{id}/ticket"),
            Some(json!({"to": "fixed"})),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    h.no_control();
}

fn alert(id: u64, what: AlertKind, area: &str) -> Arc<Alert> {
    Arc::new(Alert {
        alert_id: id,
        episode: 12,
        what,
        category: Category::Alarm,
        device: "hz-0042".into(),
        channel: Some(0),
        area: GridId::new(area).expect("area"),
        level: 0,
        source: Source::Device,
        started_ms: 1_764_403_260_000,
        quantity: Some(Quantity::ResidualCurrent),
        value: Some(412),
        threshold: Some(300),
        detail: None,
        sent_ms: 1_764_403_260_004,
        reason: None,
        test: false,
    })
}

/// Reads the SSE body until `want` appears in what was received; all of it.
async fn read_until(body: &mut Body, want: &str) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(DEADLINE, async {
        while !seen.contains(want) {
            let Some(frame) = body.frame().await else {
                return false;
            };
            if let Ok(data) = frame.expect("frame").into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
            }
        }
        true
    })
    .await;
    assert_eq!(found, Ok(true), "{want:?} not received; got {seen:?}");
    seen
}

/// Journals `alert` as the pipeline does (its episode, if new, and its notification with id
/// `alert_id`), then wakes the live streams.
fn publish(h: &Harness, alert: Arc<Alert>) {
    let store = &h.state.store;
    let mut ops = Vec::new();
    if store.episode(alert.episode).expect("readable").is_none() {
        ops.push(JournalOp::Engine {
            output: Output::Opened {
                id: alert.episode,
                key: EpisodeKey {
                    device: DeviceId::new(&alert.device).expect("device id"),
                    channel: alert.channel,
                    category: alert.category,
                },
                grid: alert.area.clone(),
                source: alert.source,
                level: None,
                detail: None,
            },
            at_ms: alert.started_ms,
        });
    }
    ops.push(JournalOp::Notify(crate::store::NewNotification {
        id: Some(i64::try_from(alert.alert_id).expect("small")),
        episode_id: alert.episode,
        kind: match alert.what {
            AlertKind::Opened => crate::store::NotificationKind::Opened,
            AlertKind::Escalated => crate::store::NotificationKind::Escalated,
            AlertKind::Ended => crate::store::NotificationKind::Ended,
        },
        level: alert.level,
        channel: crate::store::NotifyChannel::Mqtt,
        target: alert.topic(),
        payload: serde_json::to_value(&*alert).expect("json"),
        next_attempt_ms: alert.sent_ms,
    }));
    store.journal_batch(&ops).expect("journaled");
    // No subscriber is fine: the streams also look by themselves.
    let _ = h.state.live.send(alert);
}

async fn live_request(h: &Harness, uri: &str, last_event_id: Option<&str>) -> Body {
    let mut req = Request::get(uri).header(header::AUTHORIZATION, h.bearer());
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = h
        .app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    res.into_body()
}

#[tokio::test]
async fn live_streams_journaled_alerts_of_the_area_subtree_as_events() {
    let h = harness();
    h.tree().await;
    let mut body = live_request(&h, "/api/v1/live?area=d1", None).await;

    // Another area's alert is filtered out; one of the subtree arrives whole, its id the
    // stream's cursor (outbox position 2, no ticket move).
    publish(&h, alert(6, AlertKind::Opened, "g-other"));
    let a = alert(7, AlertKind::Opened, "g1");
    publish(&h, a.clone());
    let seen = read_until(&mut body, "\n\n").await;
    let json = serde_json::to_string(&*a).expect("json");
    assert_eq!(seen, format!("event: opened\nid: 2-0\ndata: {json}\n\n"));

    // Sent to the district itself (an escalation): in the subtree too.
    let mut e = (*alert(8, AlertKind::Escalated, "d1")).clone();
    e.level = 1;
    publish(&h, Arc::new(e));
    let seen = read_until(&mut body, "id: 3-0\n").await;
    assert!(seen.starts_with("event: escalated\n"), "{seen}");
}

#[tokio::test]
async fn a_slow_live_client_misses_nothing_and_resumes_from_last_event_id() {
    // A broadcast of two: it only wakes the stream, the journal holds the events.
    let h = harness_with(Limits::GB, 2);
    let mut body = live_request(&h, "/api/v1/live", None).await;
    for id in 1..=5 {
        publish(&h, alert(id, AlertKind::Escalated, "g1"));
    }
    let seen = read_until(&mut body, "id: 5-0\n").await;
    for id in 1..=5 {
        assert!(
            seen.contains(&format!("id: {id}-0\n")),
            "{id} missing: {seen}"
        );
    }
    assert!(!seen.contains("lagged"), "{seen}");

    // A ticket move is an event too.
    let moved = h
        .call(
            "POST",
            "/api/v1/episodes/12/ticket",
            Some(json!({"to": "acknowledged", "note": "on my way"})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    // (An event arrives whole, in one frame.)
    let seen = read_until(&mut body, "event: ticket\n").await;
    assert!(seen.contains("\"state\":\"acknowledged\""), "{seen}");
    assert!(seen.contains("\"note\":\"on my way\""), "{seen}");
    let step_id = seen
        .lines()
        .filter_map(|l| l.strip_prefix("id: 5-"))
        .next_back()
        .expect("the move's id")
        .to_owned();

    // Reconnected after event 2: 3, 4, 5 and the move, in order, nothing else.
    let mut again = live_request(&h, "/api/v1/live", Some("2-0")).await;
    let replay = read_until(&mut again, &format!("id: 5-{step_id}\n")).await;
    let ids: Vec<&str> = replay
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(
        ids,
        ["3-0", "4-0", "5-0", &format!("5-{step_id}")],
        "{replay}"
    );
    // The same with ?after= (EventSource cannot set headers on its first request).
    let mut after = live_request(&h, "/api/v1/live?after=4-0", None).await;
    let replay = read_until(&mut after, &format!("id: 5-{step_id}\n")).await;
    assert!(
        !replay.contains("id: 4-0\n") && replay.contains("id: 5-0\n"),
        "{replay}"
    );

    // A bad cursor is refused, saying what it must be.
    let bad = h
        .app
        .clone()
        .oneshot(
            Request::get("/api/v1/live?after=yesterday")
                .header(header::AUTHORIZATION, h.bearer())
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn history_as_json_and_csv() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;
    let c = h
        .ok(
            "POST",
            "/api/v1/circuits",
            Some(json!({"site_id": site, "name": "sockets"})),
            201,
        )
        .await;
    let circuit = c["id"].as_i64().expect("id");
    h.ok(
        "PUT",
        "/api/v1/devices/hz-1",
        Some(json!({"kind": "electrical_fire_monitor", "site_id": site, "circuit_id": circuit, "grid_id": "g1"})),
        200,
    )
    .await;
    assert_eq!(h.control(), Control::DeviceChanged(did("hz-1")));

    let t0: u64 = 1_764_403_200_000;
    let samples: Vec<Sample> = (0..3)
        .map(|i| Sample {
            device: did("hz-1"),
            seq: i,
            ts_ms: t0 + u64::from(i) * 60_000,
            readings: vec![
                Reading {
                    channel: 0,
                    residual_ma: Some(100 + i * 10),
                    ..Reading::default()
                },
                Reading {
                    channel: 1,
                    temp_dc: Some(300),
                    ..Reading::default()
                },
            ],
        })
        .collect();
    h.state.store.insert_readings(&samples).expect("readings");
    let range = format!("from={t0}&to={}", t0 + 3_600_000);

    // JSON, raw: every reading of channel 0.
    let j = h
        .ok(
            "GET",
            &format!("/api/v1/devices/hz-1/history?ch=0&{range}&step=raw"),
            None,
            200,
        )
        .await;
    assert_eq!(j["step_ms"], 0);
    assert_eq!(j["source"], "raw");
    assert_eq!(j["note"], Value::Null);
    assert_eq!(j["series"][0]["ch"], 0);
    let points = j["series"][0]["points"].as_array().expect("points");
    assert_eq!(points.len(), 3);
    assert_eq!(points[2]["t_ms"], t0 + 120_000);
    assert_eq!(points[2]["residual_ma"]["max"], 120);
    assert_eq!(points[2]["temp_dc"], Value::Null);

    // CSV, grouped by 5 minutes, every configured channel.
    let a = h
        .get(&format!(
            "/api/v1/devices/hz-1/history?{range}&step=5m&format=csv"
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        a.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"hz-1-history.csv\""
    );
    assert_eq!(
        a.text,
        format!(
            "device,ch,t_ms,count,residual_ma_min,residual_ma_max,residual_ma_avg,temp_dc_min,\
             temp_dc_max,temp_dc_avg,voltage_dv_min,voltage_dv_max,voltage_dv_avg,current_ma_min,\
             current_ma_max,current_ma_avg\r\n\
             hz-1,0,{t0},3,100,120,110,,,,,,,,,\r\n\
             hz-1,1,{t0},3,,,,300,300,300,,,,,,\r\n"
        )
    );

    // Accept: text/csv does the same; format=json wins over it.
    let req = Request::get(format!("/api/v1/devices/hz-1/history?ch=1&{range}"))
        .header(header::AUTHORIZATION, h.bearer())
        .header(header::ACCEPT, "text/csv")
        .body(Body::empty())
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text.lines().count(), 4, "{}", a.text);
    assert!(a.text.lines().all(|l| l.split(',').count() == 16));
    let req = Request::get(format!("/api/v1/devices/hz-1/history?{range}&format=json"))
        .header(header::AUTHORIZATION, h.bearer())
        .header(header::ACCEPT, "text/csv")
        .body(Body::empty())
        .expect("request");
    let a = h.send(req).await;
    assert_eq!(a.json()["series"].as_array().map(Vec::len), Some(2));

    // Per circuit: the devices on it, every channel.
    let j = h
        .ok(
            "GET",
            &format!("/api/v1/circuits/{circuit}/history?{range}&step=1h"),
            None,
            200,
        )
        .await;
    assert_eq!(j["source"], "hourly_rollups");
    let series = j["series"].as_array().expect("series");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["device"], "hz-1");
    assert_eq!(series[0]["points"][0]["count"], 3);
    assert_eq!(series[0]["points"][0]["residual_ma"]["avg"], 110.0);

    assert_eq!(h.get("/api/v1/devices/nope/history").await.status, 404);
    assert_eq!(h.get("/api/v1/circuits/999/history").await.status, 404);
}

/// docs/utility.md's tree through the API: a feeder with two measured branches, the leak in
/// one of them.
#[tokio::test]
async fn leak_trace_names_the_leaking_branch_with_its_evidence() {
    let mut h = harness();
    let site = h.tree().await;
    let circuit = |name: &str, parent: Option<i64>| {
        let body = json!({"site_id": site, "name": name, "parent_id": parent});
        let h = &h;
        async move {
            h.ok("POST", "/api/v1/circuits", Some(body), 201).await["id"]
                .as_i64()
                .expect("id")
        }
    };
    let feeder = circuit("feeder", None).await;
    let kitchen = circuit("kitchen", Some(feeder)).await;
    let rooms = circuit("rooms", Some(feeder)).await;
    let lights = circuit("lights", Some(feeder)).await;
    let t0: u64 = 1_764_403_200_000;
    for (device, on, ma) in [
        ("hz-f", feeder, 160),
        ("hz-k", kitchen, 12),
        ("hz-r", rooms, 135),
    ] {
        h.device(device, site).await;
        h.ok(
            "PUT",
            &format!("/api/v1/devices/{device}"),
            Some(json!({"kind": "electrical_fire_monitor", "site_id": site, "circuit_id": on, "grid_id": "g1"})),
            200,
        )
        .await;
        let _ = h.control();
        let samples: Vec<Sample> = (0..4)
            .map(|i| Sample {
                device: did(device),
                seq: i,
                ts_ms: t0 + u64::from(i) * 60_000,
                readings: vec![Reading {
                    channel: 0,
                    // Around the mean: ma - 3, ma - 1, ma + 1, ma + 3.
                    residual_ma: Some(ma + 2 * i - 3),
                    ..Reading::default()
                }],
            })
            .collect();
        h.state.store.insert_readings(&samples).expect("readings");
    }
    let range = format!("from={t0}&to={}", t0 + 600_000);
    let j = h
        .ok(
            "GET",
            &format!("/api/v1/circuits/{feeder}/leak-trace?{range}"),
            None,
            200,
        )
        .await;
    let t = &j["trace"];
    assert_eq!(t["suspect"]["circuit_id"], rooms, "{j}");
    assert_eq!(t["suspect"]["name"], "rooms");
    assert_eq!(t["suspect"]["place"], "branch");
    assert_eq!(t["suspect"]["unexplained_ma"], 135.0);
    assert_eq!(t["evidence"][1]["circuit_id"], feeder);
    assert_eq!(t["evidence"][1]["branches_ma"], 147.0);
    assert_eq!(t["evidence"][1]["unmeasured_branches"], json!([lights]));
    // An hour-long window (the default's length) that starts after the hour the readings are
    // in began: the readings inside it count, though no hourly rollup starts inside it.
    let hour = format!("from={}&to={}", t0 + 30_000, t0 + 30_000 + 3_600_000);
    let j = h
        .ok(
            "GET",
            &format!("/api/v1/circuits/{feeder}/leak-trace?{hour}"),
            None,
            200,
        )
        .await;
    // The three readings after `from`: ma - 1, ma + 1, ma + 3 (mean ma + 1).
    assert_eq!(j["trace"]["suspect"]["circuit_id"], rooms, "{j}");
    assert_eq!(j["trace"]["suspect"]["unexplained_ma"], 136.0, "{j}");
    // A floor above every unexplained leakage names nothing, and says so.
    let j = h
        .ok(
            "GET",
            &format!("/api/v1/circuits/{feeder}/leak-trace?{range}&min_ma=200"),
            None,
            200,
        )
        .await;
    assert_eq!(j["trace"]["suspect"], Value::Null, "{j}");
    // Nothing measures the lights: 409 with what to do; an unknown circuit: 404.
    let a = h
        .get(&format!("/api/v1/circuits/{lights}/leak-trace?{range}"))
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(
        a.text.contains("bind a residual-current monitor"),
        "{}",
        a.text
    );
    assert_eq!(h.get("/api/v1/circuits/999/leak-trace").await.status, 404);
    let a = h
        .get(&format!("/api/v1/circuits/{feeder}/leak-trace?min_ma=-1"))
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
}

/// Circuits ranked by how fast their leakage rises and by alarms, as JSON and CSV; a grid
/// worker of another area is refused.
#[tokio::test]
async fn circuits_are_ranked_by_trend_and_alarms() {
    let mut h = harness();
    let site = h.tree().await;
    let now = crate::clock::now_ms();
    const H: u64 = 3_600_000;
    let mut ids = Vec::new();
    // hz-1: +5 mA an hour (120 mA a day); hz-2: flat, with an alarm episode now.
    for (device, per_hour) in [("hz-1", 5u32), ("hz-2", 0)] {
        h.device(device, site).await;
        let c = h
            .ok(
                "POST",
                "/api/v1/circuits",
                Some(json!({"site_id": site, "name": format!("circuit of {device}")})),
                201,
            )
            .await["id"]
            .as_i64()
            .expect("id");
        ids.push(c);
        h.ok(
            "PUT",
            &format!("/api/v1/devices/{device}"),
            Some(json!({"kind": "electrical_fire_monitor", "site_id": site, "circuit_id": c, "grid_id": "g1"})),
            200,
        )
        .await;
        let _ = h.control();
        let samples: Vec<Sample> = (0..10u32)
            .map(|i| Sample {
                device: did(device),
                seq: i,
                ts_ms: now - u64::from(10 - i) * H,
                readings: vec![Reading {
                    channel: 0,
                    residual_ma: Some(20 + per_hour * i),
                    ..Reading::default()
                }],
            })
            .collect();
        h.state.store.insert_readings(&samples).expect("readings");
    }
    h.state
        .store
        .journal_batch(&[JournalOp::Engine {
            output: Output::Opened {
                id: 7,
                key: EpisodeKey {
                    device: did("hz-2"),
                    channel: Some(0),
                    category: Category::Alarm,
                },
                grid: GridId::new("g1").expect("grid"),
                source: Source::Device,
                level: None,
                detail: None,
            },
            at_ms: now - H,
        }])
        .expect("journal");

    let j = h
        .ok("GET", "/api/v1/circuit-ranking?days=2", None, 200)
        .await;
    let rows = j["circuits"].as_array().expect("circuits");
    assert_eq!(rows.len(), 2, "{j}");
    assert_eq!(rows[0]["circuit_id"], ids[0], "the rising one first: {j}");
    let trend = rows[0]["trend_ma_per_day"].as_f64().expect("a trend");
    assert!((trend - 120.0).abs() < 0.5, "{trend}");
    assert_eq!(rows[0]["latest_ma"], 65.0);
    assert_eq!(rows[1]["alarms"], 1);
    let j = h
        .ok(
            "GET",
            "/api/v1/circuit-ranking?days=2&by=alarms&area=g1",
            None,
            200,
        )
        .await;
    assert_eq!(j["circuits"][0]["circuit_id"], ids[1], "{j}");
    let a = h
        .get("/api/v1/circuit-ranking?days=2&format=csv&limit=1")
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let lines: Vec<&str> = a.text.lines().collect();
    assert_eq!(
        lines[0],
        "circuit_id,name,site_id,trend_ma_per_day,latest_ma,alarms"
    );
    assert!(
        lines[1].starts_with(&format!("{},\"circuit of hz-1\",{site},120.0", ids[0])),
        "{}",
        a.text
    );
    assert_eq!(lines.len(), 2);
    for bad in ["days=0", "days=366", "format=xml", "by=size"] {
        let a = h.get(&format!("/api/v1/circuit-ranking?{bad}")).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
    }
}

#[tokio::test]
async fn pending_devices_are_listed_and_forgotten() {
    let h = harness();
    h.state
        .store
        .record_pending(&did("stray-1"), "firegrid/v1/dev/stray-1/status", 1000)
        .expect("pending");
    let list = h.ok("GET", "/api/v1/pending", None, 200).await;
    assert_eq!(list[0]["id"], "stray-1");
    assert_eq!(list[0]["messages"], 1);
    h.ok("DELETE", "/api/v1/pending/stray-1", None, 204).await;
    assert_eq!(
        h.call("DELETE", "/api/v1/pending/stray-1", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let h = harness();
    h.state.metrics.ingested(IngestKind::Event);
    h.state.metrics.refused("unknown_device");
    let a = h.get("/metrics").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for line in [
        "# TYPE firegrid_ingest_messages_total counter\n",
        "firegrid_ingest_messages_total{kind=\"event\"} 1\n",
        "firegrid_refusals_total{reason=\"unknown_device\"} 1\n",
        "firegrid_journal_commit_seconds_bucket{le=\"+Inf\"} 0\n",
        "firegrid_alerts_total{channel=\"sse\",result=\"ok\"} 0\n",
        "firegrid_queue_depth{queue=\"notify\"} 0\n",
    ] {
        assert!(a.text.contains(line), "{line:?} missing from:\n{}", a.text);
    }
}

#[tokio::test]
async fn healthz_says_what_is_wrong() {
    let h = harness();
    let a = h.get("/healthz").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let j = a.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["store"]["ok"], true);
    assert_eq!(j["broker"]["connected"], true);
    assert_eq!(j["problems"], json!([]));
    assert!(j["uptime_s"].is_u64());

    // What the gateway sets today: the broker link's state (app.rs, from the client's state).
    h.state.health.set_broker_connected(false);
    let a = h.get("/healthz").await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.json()["problems"], json!(["broker: not connected"]));

    // A store writer thread that stopped (app.rs watches both).
    h.state.health.set_broker_connected(true);
    let fate = crate::store::WriterFate::default();
    h.state.health.watch_writer("readings", fate.clone());
    assert_eq!(h.get("/healthz").await.status, 200);
    fate.set("panicked: a bug".into()).unwrap();
    let a = h.get("/healthz").await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(
        a.json()["problems"],
        json!(["store: readings writer stopped: panicked: a bug"])
    );
}

/// A full disk (SQLite's own SQLITE_FULL: the journal connection may not grow) answers 507
/// saying nothing was written; nothing is half-written; with room again the same request
/// succeeds.
#[tokio::test]
async fn a_full_disk_answers_507_and_the_same_request_succeeds_once_there_is_room() {
    let h = harness();
    let before = h.get("/api/v1/areas").await.json();
    crate::store::faults::journal_disk_full(&h.state.store, true);
    // Enough areas to need new pages, one request each: the first one that needs a page fails.
    let mut refused = None;
    for i in 0..2000 {
        let body = json!({
            "id": format!("d{i}"),
            "level": "district",
            "name": format!("district {i} {}", "x".repeat(180)),
        });
        let a = h.call("POST", "/api/v1/areas", Some(body.clone())).await;
        if a.status != 201 {
            refused = Some((a, body));
            break;
        }
    }
    let (a, body) = refused.expect("a write refused before 2000 areas of ~190 bytes");
    assert_eq!(a.status, 507, "{}", a.text);
    assert!(
        a.text.contains("disk is full") && a.text.contains("nothing was written"),
        "{}",
        a.text
    );
    let areas = |v: &Value| v.as_array().map_or(0, Vec::len);
    let during = h.get("/api/v1/areas").await.json();
    assert!(
        !during
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == body["id"])),
        "the refused area is not there"
    );
    crate::store::faults::journal_disk_full(&h.state.store, false);
    let a = h.call("POST", "/api/v1/areas", Some(body.clone())).await;
    assert_eq!(a.status, 201, "with room again: {}", a.text);
    let after = h.get("/api/v1/areas").await.json();
    assert_eq!(areas(&after), areas(&during) + 1);
    assert!(areas(&after) > areas(&before));
}

#[tokio::test]
async fn healthz_reports_the_disk() {
    use crate::disk::{DiskLevel, DiskReport};
    let h = harness();
    let report = |level| DiskReport {
        level,
        free_bytes: 40 << 20,
        total_bytes: 100 << 30,
        path: "/var/lib/firegrid".into(),
        error: None,
    };
    h.state.health.set_disk(report(DiskLevel::Low));
    let a = h.get("/healthz").await;
    assert_eq!(a.status, 200, "low is a warning: {}", a.text);
    assert_eq!(
        a.json()["warnings"],
        json!(["disk: low, 40 MiB free of 102400 MiB on /var/lib/firegrid"])
    );
    h.state.health.set_disk(report(DiskLevel::Full));
    let a = h.get("/healthz").await;
    assert_eq!(a.status, 503, "full is a problem: {}", a.text);
    assert_eq!(
        a.json()["problems"],
        json!(["disk: full, 40 MiB free of 102400 MiB on /var/lib/firegrid"])
    );
    assert_eq!(a.json()["disk"]["level"], "full");
}

/// `serve` on a port-0 listener: a plain HTTP/1.1 request, then a graceful shutdown that is
/// not held up by a live client that never hangs up.
#[tokio::test]
async fn serve_answers_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = harness();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, h.state.clone(), async move {
        let _ = stop_rx.await;
    }));

    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, conn.read_to_string(&mut answer))
        .await
        .expect("in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");

    // A live client that stays connected.
    let mut live = tokio::net::TcpStream::connect(addr).await.expect("connect");
    live.write_all(
        format!(
            "GET /api/v1/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            h.token
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(DEADLINE, live.read(&mut head))
        .await
        .expect("in time")
        .expect("read");
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK"));

    stop_tx.send(()).expect("server running");
    let result = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server stopped in time")
        .expect("join");
    result.expect("served");
}

#[tokio::test]
async fn a_device_import_is_all_or_nothing_with_each_refusal_named() {
    let mut h = harness();
    let site = h.tree().await;
    let item = |id: &str| {
        json!({
            "id": id, "kind": "electrical_fire_monitor", "state": "in_service",
            "site_id": site, "grid_id": "g1",
            "config": {"channels": [{"ch": 0, "residual_ma": 300}]}
        })
    };
    let a = h
        .ok(
            "POST",
            "/api/v1/device-imports",
            Some(json!([item("imp-1"), item("imp-2"), item("imp-3")])),
            201,
        )
        .await;
    assert_eq!(a["created"], 3);
    assert_eq!(a["ids"], json!(["imp-1", "imp-2", "imp-3"]));
    // Each device's MQTT password, shown this once; the store keeps only its hash.
    for (i, c) in a["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .enumerate()
    {
        assert_eq!(c["id"], a["ids"][i]);
        let password = c["mqtt_password"].as_str().expect("a password");
        assert_eq!(password.len(), 43);
        let device = h
            .state
            .store
            .get::<crate::store::DeviceFields>(&did(&format!("imp-{}", i + 1)))
            .expect("read")
            .expect("there");
        let hash = device.fields.credential_hash.expect("a hash is stored");
        assert!(!hash.contains(password));
        assert!(
            crate::secret::SecretHash::parse(&hash)
                .expect("$6$")
                .verify(password)
        );
    }
    for id in ["imp-1", "imp-2", "imp-3"] {
        assert_eq!(h.control(), Control::DeviceChanged(did(id)));
        let d = h
            .ok("GET", &format!("/api/v1/devices/{id}"), None, 200)
            .await;
        assert_eq!(d["state"], "in_service", "{d}");
    }

    // Bad items are all named, and nothing is registered.
    let mut bad_config = item("imp-5");
    bad_config["config"]["channels"][0]["residual_ma"] = json!(5);
    let a = h
        .call(
            "POST",
            "/api/v1/device-imports",
            Some(json!([item("imp-4"), item("a/b"), bad_config])),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let e = a.error();
    assert!(
        e.starts_with("2 of 3 devices refused, none registered: [1] \"a/b\": "),
        "{e}"
    );
    assert!(
        e.contains("[2] \"imp-5\": invalid device configuration"),
        "{e}"
    );
    // A conflict found by the store (an existing id) rolls back the items before it.
    let a = h
        .call(
            "POST",
            "/api/v1/device-imports",
            Some(json!([item("imp-4"), item("imp-2")])),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(
        a.error().starts_with("none registered: [1] \"imp-2\": "),
        "{}",
        a.text
    );
    let a = h.call("GET", "/api/v1/devices/imp-4", None).await;
    assert_eq!(a.status, 404, "{}", a.text);
    h.no_control();

    // Bounded: empty and oversized lists are refused.
    let a = h
        .call("POST", "/api/v1/device-imports", Some(json!([])))
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let many: Vec<Value> = (0..=super::devices::MAX_IMPORT)
        .map(|i| json!({"id": format!("m-{i}"), "kind": "smoke_alarm"}))
        .collect();
    let a = h
        .call("POST", "/api/v1/device-imports", Some(json!(many)))
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("an import takes 1-5000"), "{}", a.text);
}

mod access;
mod commissioning;
mod evidence;
mod people_fields;
mod reports;
/// A device's MQTT credential: issued once at registration, rotated (the old one stops
/// verifying), revoked, revoked again by decommissioning, and never shown by a read.
#[tokio::test]
async fn device_credentials_are_issued_rotated_and_revoked() {
    let mut h = harness();
    let hash_of = |h: &Harness| {
        h.state
            .store
            .get::<crate::store::DeviceFields>(&did("hz-c"))
            .expect("read")
            .expect("there")
            .fields
            .credential_hash
    };
    let created = h
        .ok(
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "hz-c", "kind": "smoke_alarm"})),
            201,
        )
        .await;
    let first = created["mqtt_password"]
        .as_str()
        .expect("issued")
        .to_owned();
    let stored = crate::secret::SecretHash::parse(&hash_of(&h).expect("a hash")).expect("$6$");
    assert!(stored.verify(&first));
    let read = h.ok("GET", "/api/v1/devices/hz-c", None, 200).await;
    assert!(read.get("mqtt_password").is_none() && !read.to_string().contains(&first));

    let rotated = h
        .ok("POST", "/api/v1/devices/hz-c/credentials", None, 201)
        .await;
    let second = rotated["mqtt_password"]
        .as_str()
        .expect("issued")
        .to_owned();
    assert_ne!(first, second);
    let stored = crate::secret::SecretHash::parse(&hash_of(&h).expect("a hash")).expect("$6$");
    assert!(
        stored.verify(&second) && !stored.verify(&first),
        "the old one stops"
    );
    assert_eq!(
        h.state
            .store
            .device_credentials()
            .expect("read")
            .iter()
            .filter(|(id, _)| id.as_str() == "hz-c")
            .count(),
        1
    );

    h.ok("DELETE", "/api/v1/devices/hz-c/credentials", None, 204)
        .await;
    assert_eq!(hash_of(&h), None);
    assert!(h.state.store.device_credentials().expect("read").is_empty());

    // Issued again, then decommissioned: revoked with it, and no new one for a
    // decommissioned device.
    h.ok("POST", "/api/v1/devices/hz-c/credentials", None, 201)
        .await;
    h.ok(
        "POST",
        "/api/v1/devices/hz-c/state",
        Some(json!({"to": "decommissioned"})),
        200,
    )
    .await;
    assert_eq!(hash_of(&h), None);
    let a = h
        .call("POST", "/api/v1/devices/hz-c/credentials", None)
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.error().contains("decommissioned"), "{}", a.text);
    let a = h
        .call("POST", "/api/v1/devices/nobody/credentials", None)
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    while h.control.try_recv().is_ok() {}
}

#[tokio::test]
async fn hazards_group_a_sites_unresolved_episodes() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;
    for (id, episode) in [(21, 12), (22, 13)] {
        let mut a = (*alert(id, AlertKind::Opened, "g1")).clone();
        a.device = "hz-1".into();
        a.episode = episode;
        a.channel = Some(u8::try_from(episode - 12).expect("small"));
        publish(&h, Arc::new(a));
    }
    let hazards = h.ok("GET", "/api/v1/hazards", None, 200).await;
    let list = hazards.as_array().expect("a list");
    assert_eq!(list.len(), 1, "one site, one hazard: {hazards}");
    assert_eq!(list[0]["site_id"], site);
    assert_eq!(list[0]["address"], "7 Moganshan Rd");
    assert_eq!(list[0]["ticket"], "raised");
    let ids: Vec<&Value> = list[0]["episodes"]
        .as_array()
        .expect("episodes")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, [&json!(12), &json!(13)]);
    // One closed: the hazard remains with the other; both closed: none.
    for (episode, left) in [(12, 1), (13, 0)] {
        h.ok(
            "POST",
            &format!("/api/v1/episodes/{episode}/ticket"),
            Some(json!({"to": "closed"})),
            200,
        )
        .await;
        let hazards = h.ok("GET", "/api/v1/hazards?area=d1", None, 200).await;
        let n = hazards.as_array().map_or(0, |l| {
            l.first()
                .map_or(0, |h| h["episodes"].as_array().map_or(0, Vec::len))
        });
        assert_eq!(n, left, "{hazards}");
    }
    let outside = h.call("GET", "/api/v1/hazards?area=nowhere", None).await;
    assert_eq!(
        outside.status, 200,
        "an unknown area has no hazards: {}",
        outside.text
    );
}

#[tokio::test]
async fn a_ticket_is_assigned_to_a_worker_who_answers_for_its_cell() {
    let h = harness();
    h.tree().await;
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g2", "parent_id": "d1", "level": "grid", "name": "Grid 2"})),
        201,
    )
    .await;
    let mut ids = std::collections::HashMap::new();
    for area in ["g1", "d1", "g2"] {
        let body = json!({"name": format!("w-{area}"), "area_id": area});
        let w = h.ok("POST", "/api/v1/workers", Some(body), 201).await;
        ids.insert(area, w["id"].as_i64().expect("id"));
    }
    publish(&h, alert(7, AlertKind::Opened, "g1"));
    for area in ["g1", "d1"] {
        let a = h
            .ok(
                "PUT",
                "/api/v1/episodes/12/assignee",
                Some(json!({"worker_id": ids[area]})),
                200,
            )
            .await;
        assert_eq!(a["assignee"]["id"], ids[area], "{a}");
    }
    let e = h.ok("GET", "/api/v1/episodes/12", None, 200).await;
    assert_eq!(e["assignee"], json!({"id": ids["d1"], "name": "w-d1"}));
    let other = h
        .call(
            "PUT",
            "/api/v1/episodes/12/assignee",
            Some(json!({"worker_id": ids["g2"]})),
        )
        .await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert!(other.error().contains("answers for g2"), "{}", other.text);
    let audit = h
        .ok("GET", "/api/v1/audit?action=ticket.assigned", None, 200)
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
}

/// `[store] local_readings = "rollups"`: a raw or 5-minute history is answered from the hourly
/// rollups, and the answer says so.
#[tokio::test]
async fn history_without_raw_readings_answers_by_the_hour_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (rollups_only, at_open) = Store::open_with(
        dir.path().join("firegrid.db"),
        crate::store::StoreOptions {
            raw_readings: false,
            ..crate::store::StoreOptions::default()
        },
    )
    .expect("store");
    let (_, token) = rollups_only
        .add_user("admin-li", Role::Admin, None, Actor::new("test", 1))
        .expect("admin");
    let (control_tx, control) = mpsc::channel(64);
    let mut state = ApiState::new(
        rollups_only.clone(),
        Arc::new(Health::new(at_open)),
        Arc::new(Metrics::new()),
        control_tx,
        broadcast::channel(4).0,
        Limits::GB,
    );
    state.metrics_open = true;
    let mut other = Harness {
        app: router(state.clone()),
        state,
        control,
        token: token.token.expose().to_string(),
        _dir: dir,
    };
    let site = other.tree().await;
    other.device("hz-1", site).await;
    let t0: u64 = 1_764_403_200_000;
    let samples: Vec<Sample> = (0..3)
        .map(|i| Sample {
            device: did("hz-1"),
            seq: i,
            ts_ms: t0 + u64::from(i) * 60_000,
            readings: vec![Reading {
                channel: 0,
                residual_ma: Some(100 + i * 10),
                ..Reading::default()
            }],
        })
        .collect();
    rollups_only.insert_readings(&samples).expect("readings");
    for step in ["raw", "5m"] {
        let j = other
            .ok(
                "GET",
                &format!(
                    "/api/v1/devices/hz-1/history?ch=0&from={t0}&to={}&step={step}",
                    t0 + 3_600_000
                ),
                None,
                200,
            )
            .await;
        assert_eq!(j["step_ms"], 3_600_000, "{step}");
        assert_eq!(j["source"], "hourly_rollups");
        assert!(
            j["note"]
                .as_str()
                .expect("a note")
                .contains("local_readings"),
            "{j}"
        );
        let points = j["series"][0]["points"].as_array().expect("points");
        assert_eq!(points.len(), 1);
        assert_eq!(points[0]["count"], 3);
        assert_eq!(points[0]["residual_ma"]["max"], 120);
    }
}
