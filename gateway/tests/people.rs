//! Alerts to people, end to end: the real `firegrid` binary on a real Mosquitto, workers of two
//! grid cells and of the street above them with their own MQTT topics, IM group robots
//! (DingTalk, WeCom), a signed JSON webhook and an SMS gateway — all local HTTP receivers —
//! and the live stream followed by a street and resumed with `Last-Event-ID`. Also the
//! `[[webhooks]]` notifier's retries, backoff, delivered-marking and signature, through the
//! running binary.
//!
//! No sleeps to synchronise: every step waits for a message, a request or an event. Timing
//! windows come from the configuration under test (`escalation_s`, the webhook backoff), with
//! the margins stated where they are checked.

#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use firegrid_gateway::notify::webhook::signature::{DEFAULT_TOLERANCE_MS, verify_request};
use firegrid_testkit::port::free_port;
use firegrid_testkit::{Broker, GatewayConfig, Mosquitto};

use support::{Api, Binary, DEADLINE, Mqtt, metric, now_ms, until, until_async};

/// The signing secret of `[people]` (from the environment, as in production).
const SECRET: &str = "people-s3cret";
/// `[engine] escalation_s` in the test: level 1 (the street) 2 s after the start.
const ESCALATE_S: u64 = 2;
/// How late an escalation may reach a person: the engine's tick is due at the deadline; the
/// dispatcher is woken by the alert and sweeps every 500 ms. Stated margin for a busy machine.
const ESCALATION_MARGIN: Duration = Duration::from_millis(2_500);

/// One request a local receiver got.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HeaderMap,
    body: String,
    at_ms: u64,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{}: not JSON ({e})", self.path))
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{}: no {name} header", self.path))
    }
}

/// Local HTTP receivers on one port: IM robots (`/dingtalk…`, `/wecom…`) answer as the real
/// ones do (`{"errcode":0,"errmsg":"ok"}`); `/flaky…` fails its first `fail_first` requests
/// with 503; anything else answers 200.
#[derive(Clone)]
struct Receivers {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Receivers {
    async fn start(fail_first: usize) -> Self {
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = log.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(
                move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                    let log = state.clone();
                    async move {
                        let path = uri.path().to_string();
                        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                        let earlier = log.iter().filter(|r| r.path == path).count();
                        log.push(Request {
                            path: path.clone(),
                            headers,
                            body,
                            at_ms: now_ms(),
                        });
                        if path.starts_with("/flaky") && earlier < fail_first {
                            (StatusCode::SERVICE_UNAVAILABLE, "busy".to_string())
                        } else if path.starts_with("/dingtalk") || path.starts_with("/wecom") {
                            (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#.to_string())
                        } else {
                            (StatusCode::OK, "ok".to_string())
                        }
                    }
                },
            ),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self, path: &str) -> Vec<Request> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, path: &str, what: &str, want: impl Fn(&Request) -> bool) -> Request {
        until(&format!("{what} at {path}"), DEADLINE, || {
            self.got(path).into_iter().find(|r| want(r))
        })
        .await
    }
}

/// A server-sent-event stream of the API read over a plain TCP connection.
struct Live {
    stream: tokio::net::TcpStream,
    buf: String,
    events: Vec<(String, String, Value)>,
}

impl Live {
    async fn open(api: Api, query: &str, last_event_id: Option<&str>) -> Self {
        let mut stream = tokio::net::TcpStream::connect(api.0)
            .await
            .expect("the API");
        let mut head = format!(
            "GET /api/v1/live{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n",
            api.token()
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("sent");
        // A stream without a cursor starts where the journal is when the server reads it, and
        // the server answers only after that read: wait for the answer, so that what the test
        // does next comes after the stream's start.
        let mut buf = Vec::new();
        let read_head = async {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 1024];
                let n = stream.read(&mut chunk).await.expect("the stream reads");
                assert!(n > 0, "the live stream closed before it answered");
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(DEADLINE, read_head)
            .await
            .expect("the live stream answers");
        let text = String::from_utf8_lossy(&buf).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Self {
            stream,
            buf: body.to_owned(),
            events: Vec::new(),
        }
    }

    /// Reads until an event satisfies `want`; every (name, id, data) read so far.
    async fn until(
        &mut self,
        what: &str,
        want: impl Fn(&str, &Value) -> bool,
    ) -> Vec<(String, String, Value)> {
        let read = async {
            loop {
                // What is buffered first (events may have come with the answer's head).
                // Events end with a blank line; chunked framing lines are not `event:` lines.
                while let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let (mut name, mut id, mut data) = (None, None, None);
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            name = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = serde_json::from_str(v).ok();
                        }
                    }
                    if let (Some(n), Some(i), Some(d)) = (name, id, data) {
                        self.events.push((n, i, d));
                    }
                }
                if self.events.iter().any(|(n, _, d)| want(n, d)) {
                    return;
                }
                let mut chunk = [0u8; 8192];
                let n = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .expect("the stream reads");
                assert!(n > 0, "the live stream closed");
                self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .unwrap_or_else(|_| {
                panic!("live: no {what} within {DEADLINE:?}; got {:?}", self.events)
            });
        self.events.clone()
    }
}

/// The real binary on a Mosquitto of its own (open to anyone: devices and observers connect
/// without credentials), with `extra` TOML appended and `env` set; the broker's address.
async fn start(
    dir: &tempfile::TempDir,
    extra: &str,
    env: &[(&str, &str)],
) -> (Binary, Mosquitto, SocketAddr) {
    support::init_logs();
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let broker = mosquitto.addr();
    let mut config = GatewayConfig::new(&dir.path().join("data"), Broker::External(broker));
    config.set("broker.client_id", "firegrid-e2e-people");
    config.merge(extra);
    let gw = Binary::launch_with_env(config, dir.path(), env).await;
    (gw, mosquitto, broker)
}

async fn worker(api: Api, body: Value) -> i64 {
    api.post("/api/v1/workers", body).await["id"]
        .as_i64()
        .expect("a worker id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_reaches_its_cells_workers_then_the_streets_and_a_resumed_stream_misses_nothing() {
    let robots = Receivers::start(0).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (gw, _mosquitto, broker) = start(
        &dir,
        &format!(
            "[engine]\nescalation_s = [{ESCALATE_S}, 600]\n\n[people]\n\
             public_url = \"https://firegrid.example/\"\nsms_url = \"{sms}\"\n\
             secret_env = \"FG_PEOPLE_SECRET\"\nallow_private = true\n",
            sms = robots.url("/sms"),
        ),
        &[("FG_PEOPLE_SECRET", SECRET)],
    )
    .await;
    let api = gw.api;

    // The street gongshu with cells grid-7 (A) and grid-8 (B); a site in A with its owner, a
    // room and a circuit; the device bound to all of them.
    let site = api.create_district().await;
    api.post(
        "/api/v1/areas",
        json!({"id": "grid-8", "level": "grid", "name": "Grid 8", "parent_id": "gongshu"}),
    )
    .await;
    api.put(
        &format!("/api/v1/sites/{site}"),
        json!({"name": "Block 3", "address": "3 Wulin Rd", "owner_name": "Wang", "owner_phone": "13900001111", "area_id": "grid-7"}),
    )
    .await;
    let room = api
        .post("/api/v1/rooms", json!({"site_id": site, "name": "3-302"}))
        .await["id"]
        .clone();
    let circuit = api
        .post(
            "/api/v1/circuits",
            json!({"site_id": site, "name": "3F lighting"}),
        )
        .await["id"]
        .clone();
    api.post(
        "/api/v1/devices",
        json!({"id": "hz-0042", "kind": "electrical_fire_monitor"}),
    )
    .await;
    api.put(
        "/api/v1/devices/hz-0042",
        json!({"kind": "electrical_fire_monitor", "site_id": site, "room_id": room, "circuit_id": circuit, "grid_id": "grid-7"}),
    )
    .await;
    api.put(
        "/api/v1/devices/hz-0042/config",
        json!({"channels": [{"ch": 0, "residual_ma": 300, "delay_s": 10}]}),
    )
    .await;
    for to in ["commissioned", "in_service"] {
        api.post("/api/v1/devices/hz-0042/state", json!({"to": to}))
            .await;
    }

    // Workers: two in A (MQTT + DingTalk robot + SMS; signed JSON webhook), one in B (MQTT +
    // DingTalk robot), one of the street (MQTT + WeCom robot).
    let li = worker(
        api,
        json!({"name": "Li", "area_id": "grid-7", "phone": "13800000001",
        "mqtt_topic": "firegrid/v1/people/grid-7/li", "webhook_url": robots.url("/dingtalk-a"),
        "webhook_format": "dingtalk"}),
    )
    .await;
    let zhao = worker(
        api,
        json!({"name": "Zhao", "area_id": "grid-7",
        "webhook_url": robots.url("/json-a")}),
    )
    .await;
    worker(
        api,
        json!({"name": "Wu", "area_id": "grid-8", "phone": "13800000008",
        "mqtt_topic": "firegrid/v1/people/grid-8/wu", "webhook_url": robots.url("/dingtalk-b"),
        "webhook_format": "dingtalk"}),
    )
    .await;
    // Sun's webhook is down (nothing listens on its port): retried, counted, stopped once the
    // ticket is acknowledged.
    let down = format!("http://127.0.0.1:{}/sun", free_port());
    worker(
        api,
        json!({"name": "Sun", "area_id": "grid-7", "webhook_url": down}),
    )
    .await;
    let chen = worker(
        api,
        json!({"name": "Chen", "area_id": "gongshu", "phone": "13800000009",
        "mqtt_topic": "firegrid/v1/people/gongshu/chen", "webhook_url": robots.url("/wecom-street"),
        "webhook_format": "wecom"}),
    )
    .await;

    let phones = Mqtt::connect(broker, "e2e-phones").await;
    phones.subscribe("firegrid/v1/people/#").await;
    // The street follows everything below it on the area tree topics.
    phones.subscribe("firegrid/v1/area/gongshu/#").await;
    let mut live = Live::open(api, "?area=gongshu", None).await;
    // The stream is open once it answered; an empty read would block, so wait for the head.
    let device = Mqtt::connect(broker, "hz-0042").await;
    device
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            r#"{"seq":1,"up_ms":1000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        )
        .await;

    // Cell A's worker Li, on their own topic: where to go, what was measured, what to do.
    let li_msg = until("Li's MQTT message", DEADLINE, || {
        phones
            .received("firegrid/v1/people/grid-7/li")
            .first()
            .map(support::Received::json)
    })
    .await;
    assert_eq!(li_msg["worker"]["id"], li, "{li_msg}");
    assert_eq!(li_msg["alert"]["what"], "opened");
    let episode = li_msg["alert"]["episode"].clone();
    let started_ms = li_msg["alert"]["started_ms"].as_u64().expect("started_ms");
    assert_eq!(li_msg["place"]["address"], "3 Wulin Rd");
    assert_eq!(li_msg["place"]["room"], "3-302");
    assert_eq!(li_msg["place"]["circuit"], "3F lighting");
    assert_eq!(li_msg["place"]["owner_phone"], "13900001111");
    assert_eq!(li_msg["place"]["device_kind"], "electrical_fire_monitor");
    assert_eq!(
        li_msg["link"],
        format!("https://firegrid.example/episodes/{episode}")
    );
    assert!(
        li_msg["action"]["zh-CN"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(
        li_msg["action"]["en"]
            .as_str()
            .is_some_and(|a| a.contains("switch the circuit off"))
    );

    // Li's DingTalk group robot: a text message that @-mentions Li and says where to go.
    let ding = robots
        .wait_for("/dingtalk-a", "the opened alert", |_| true)
        .await;
    let d = ding.json();
    assert_eq!(d["msgtype"], "text");
    assert_eq!(d["at"]["atMobiles"], json!(["13800000001"]));
    let content = d["text"]["content"].as_str().expect("text content");
    for needle in [
        "3 Wulin Rd",
        "3-302",
        "3F lighting",
        "13900001111",
        "412 mA",
        "300 mA",
        "hz-0042",
    ] {
        assert!(
            content.contains(needle),
            "{needle} missing from the robot's text:\n{content}"
        );
    }
    // The SMS to Li's phone and Zhao's JSON webhook: timestamped and signed.
    for (path, who) in [("/sms", li), ("/json-a", zhao)] {
        let r = robots.wait_for(path, "a signed request", |_| true).await;
        verify_request(
            SECRET.as_bytes(),
            r.header("x-firegrid-timestamp"),
            r.body.as_bytes(),
            r.header("x-firegrid-signature"),
            now_ms(),
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = r.json();
        let person = if path == "/sms" {
            &body["alert"]
        } else {
            &body
        };
        assert_eq!(person["worker"]["id"], who, "{body}");
        assert_eq!(person["alert"]["episode"], episode, "{body}");
        if path == "/sms" {
            assert_eq!(body["phone"], "13800000001");
            assert_eq!(body["text"], content, "the SMS says what the robot says");
        }
    }

    // Unacknowledged: the street's worker Chen gets the escalation at the configured time.
    let chen_msg = until(
        "Chen's escalation",
        Duration::from_secs(ESCALATE_S) + DEADLINE,
        || {
            phones
                .received("firegrid/v1/people/gongshu/chen")
                .first()
                .cloned()
        },
    )
    .await;
    let esc = chen_msg.json();
    assert_eq!(esc["worker"]["id"], chen, "{esc}");
    assert_eq!(
        (
            esc["alert"]["what"].as_str(),
            esc["alert"]["level"].as_u64()
        ),
        (Some("escalated"), Some(1))
    );
    assert_eq!(esc["alert"]["area"], "gongshu");
    let after = Duration::from_millis(chen_msg.at_ms.saturating_sub(started_ms));
    let due = Duration::from_secs(ESCALATE_S);
    assert!(
        after >= due && after <= due + ESCALATION_MARGIN,
        "the street heard {after:?} after the start; configured {due:?} (+{ESCALATION_MARGIN:?} margin)"
    );
    let li_mqtt_ms = phones.received("firegrid/v1/people/grid-7/li")[0].at_ms;
    eprintln!(
        "person alerts: Li's MQTT {} ms and DingTalk robot {} ms after the episode started; the \
         street's escalation {} ms after it (configured {} ms)",
        li_mqtt_ms.saturating_sub(started_ms),
        ding.at_ms.saturating_sub(started_ms),
        after.as_millis(),
        due.as_millis()
    );
    let wecom = robots
        .wait_for("/wecom-street", "the escalation", |_| true)
        .await
        .json();
    assert_eq!(wecom["msgtype"], "text");
    assert_eq!(
        wecom["text"]["mentioned_mobile_list"],
        json!(["13800000009"])
    );
    assert!(
        wecom["text"]["content"]
            .as_str()
            .is_some_and(|t| t.contains("3 Wulin Rd") && t.contains("level 1"))
    );

    // Not cell B's worker. The dispatcher handles alerts in queue order, and the escalation
    // (queued after the opened alert) has been delivered: the opened alert's fan-out is over.
    assert!(
        phones.received("firegrid/v1/people/grid-8/").is_empty(),
        "cell B's worker got an alert"
    );
    assert!(
        robots.got("/dingtalk-b").is_empty(),
        "cell B's robot got an alert"
    );
    // Cell A's workers did not get the street's escalation.
    assert_eq!(phones.received("firegrid/v1/people/grid-7/").len(), 1);
    // The street followed both on the area tree topics: the cell's and its own.
    let tree: Vec<String> = phones
        .received("firegrid/v1/area/")
        .iter()
        .map(|m| m.topic.clone())
        .collect();
    assert_eq!(
        tree,
        [
            "firegrid/v1/area/gongshu/grid-7",
            "firegrid/v1/area/gongshu"
        ],
        "{tree:?}"
    );

    // Li acknowledges; the move is on the street's live stream after both alerts.
    let li_api = api.with_token(&api.add_user("li", "grid_worker", Some("grid-7")).await);
    li_api
        .post(
            &format!("/api/v1/episodes/{episode}/ticket"),
            json!({"to": "acknowledged", "note": "on my way"}),
        )
        .await;
    let seen = live
        .until("the acknowledgement", |n, d| {
            n == "ticket" && d["state"] == "acknowledged"
        })
        .await;
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["opened", "escalated", "ticket"], "{seen:?}");
    assert_eq!(seen[2].2["who"], "li");

    // Reconnected after the first event: exactly the two after it, in order.
    let mut resumed = Live::open(api, "?area=gongshu", Some(&seen[0].1)).await;
    let again = resumed
        .until("the replayed acknowledgement", |n, _| n == "ticket")
        .await;
    let ids =
        |v: &[(String, String, Value)]| v.iter().map(|(_, i, _)| i.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&seen[1..]), "{again:?}");

    // Every delivery counted. Sun's failed ones were retried with backoff until Li's
    // acknowledgement stopped them (the next retry due after it is not made: counted, audited).
    let count = |m: &str, channel: &str, result: &str| {
        metric(
            m,
            &format!(
                "firegrid_person_deliveries_total{{channel=\"{channel}\",result=\"{result}\"}}"
            ),
        )
        .unwrap_or(-1.0)
    };
    // Retries are 1 s, 2 s, 4 s apart: the one due after the acknowledgement within 8 s.
    let m = until_async(
        "Sun's retries to stop",
        Duration::from_secs(8) + DEADLINE,
        || async {
            let m = api.metrics().await;
            (count(&m, "webhook", "stopped") >= 1.0).then_some(m)
        },
    )
    .await;
    // MQTT: Li, Chen, and the two tree topics; webhooks: Li's, Zhao's, Chen's; SMS: Li's, Chen's.
    assert_eq!(
        (
            count(&m, "mqtt", "ok"),
            count(&m, "webhook", "ok"),
            count(&m, "sms", "ok")
        ),
        (4.0, 3.0, 2.0),
        "{m}"
    );
    assert!(
        count(&m, "webhook", "retry") >= 2.0,
        "Sun's failures counted: {m}"
    );
    assert_eq!(
        count(&m, "mqtt", "retry") + count(&m, "sms", "retry"),
        0.0,
        "{m}"
    );
    let audit = api.get("/api/v1/audit?action=delivery.stopped").await;
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(
        audit[0]["detail"]["reason"],
        "ticket acknowledged: retries stop"
    );
    drop(gw);
}

/// The `[[webhooks]]` notifier in the running gateway: a receiver that answers 503 twice gets
/// the alert three times, each attempt with its own timestamp and a valid signature, the same
/// `alert_id`, spaced by the backoff (1 s, then 2 s); after the 200 it is marked delivered and
/// counted, and not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_retries_back_off_are_signed_and_stop_once_delivered() {
    /// The notifier sweeps its outbox every second: a retry is made within that of being due.
    const SWEEP_MARGIN: Duration = Duration::from_millis(1_500);
    let hook = Receivers::start(2).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (gw, _mosquitto, broker) = start(
        &dir,
        &format!(
            "[[webhooks]]\nurl = \"{}\"\nsecret_env = \"FG_HOOK_SECRET\"\nallow_private = true\n",
            hook.url("/flaky-sms")
        ),
        &[("FG_HOOK_SECRET", "hook-s3cret")],
    )
    .await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let device = Mqtt::connect(broker, "hz-0042").await;
    device
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            r#"{"seq":1,"up_ms":1000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        )
        .await;
    let delivered = until_async(
        "the third attempt's 200 to be counted",
        DEADLINE * 2,
        || async {
            let m = api.metrics().await;
            (metric(
                &m,
                "firegrid_alerts_total{channel=\"webhook\",result=\"ok\"}",
            ) == Some(1.0))
            .then_some(m)
        },
    )
    .await;
    assert_eq!(
        metric(
            &delivered,
            "firegrid_alerts_total{channel=\"webhook\",result=\"retry\"}"
        ),
        Some(2.0)
    );
    let attempts = hook.got("/flaky-sms");
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let mut ids = Vec::new();
    for a in &attempts {
        verify_request(
            b"hook-s3cret",
            a.header("x-firegrid-timestamp"),
            a.body.as_bytes(),
            a.header("x-firegrid-signature"),
            a.at_ms,
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap_or_else(|e| panic!("attempt at {}: {e}", a.at_ms));
        ids.push(a.json()["alert_id"].clone());
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one alert_id across retries: {ids:?}"
    );
    let stamps: Vec<u64> = attempts
        .iter()
        .map(|a| a.header("x-firegrid-timestamp").parse().expect("a number"))
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "each attempt its own timestamp: {stamps:?}"
    );
    let gaps: Vec<Duration> = attempts
        .windows(2)
        .map(|w| Duration::from_millis(w[1].at_ms - w[0].at_ms))
        .collect();
    for (gap, backoff) in gaps.iter().zip([1_000u64, 2_000]) {
        let backoff = Duration::from_millis(backoff);
        assert!(
            *gap >= backoff && *gap <= backoff + SWEEP_MARGIN,
            "retry after {gap:?}; backoff {backoff:?} (+{SWEEP_MARGIN:?}): {gaps:?}"
        );
    }
    // Marked delivered in the outbox (read from the store file beside the running gateway).
    let conn = rusqlite::Connection::open_with_flags(
        firegrid_gateway::access::cli::store_path(&dir.path().join("data")),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens read-only");
    let marked = until("the delivery mark to be journaled", DEADLINE, || {
        let row: (i64, Option<i64>) = conn
            .query_row(
                "SELECT attempts, delivered_ms FROM notifications WHERE channel = 'webhook'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("one webhook notification");
        row.1.is_some().then_some(row)
    })
    .await;
    assert_eq!(marked.0, 3, "every attempt recorded, the third delivered");
    // Not sent again: the outbox has nothing due for it. A later alert (the alarm's end) goes
    // out and is delivered; by then a stray resend of the first would have been made.
    device
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            r#"{"seq":2,"up_ms":2000,"kind":"alarm_cleared","ch":0,"residual_ma":120,"threshold_ma":300}"#,
        )
        .await;
    hook.wait_for("/flaky-sms", "the ended alert", |r| {
        r.json()["what"] == "ended"
    })
    .await;
    let opened: Vec<_> = hook
        .got("/flaky-sms")
        .into_iter()
        .filter(|r| r.json()["what"] == "opened")
        .collect();
    assert_eq!(opened.len(), 3, "the delivered alert was sent again");
    drop(gw);
}

/// The hazard workflow on the real binary: an acknowledged ticket not rectified by its
/// deadline (`[tickets] rectify_s`, 2 s here) escalates again, to the street's worker and to
/// the ticket's assignee (the cell's worker who took it); and it
/// cannot be `verified` while the circuit's readings are above the set-point less the margin,
/// only once they have stayed below it for `verify_hold_s` (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unrectified_ticket_escalates_again_and_only_the_data_verifies_it() {
    const RECTIFY_S: u64 = 2;
    const HOLD_S: u64 = 1;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (gw, _mosquitto, broker) = start(
        &dir,
        &format!(
            "[engine]\nescalation_s = [600, 1200]\n\n[tickets]\nrectify_s = {{ alarm = {RECTIFY_S} }}\n\
             verify_margin_pct = 20\nverify_hold_s = {HOLD_S}\n"
        ),
        &[],
    )
    .await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let li_id = worker(
        api,
        json!({"name": "Li", "area_id": "grid-7", "mqtt_topic": "firegrid/v1/people/grid-7/li"}),
    )
    .await;
    let chen = worker(api, json!({"name": "Chen", "area_id": "gongshu", "mqtt_topic": "firegrid/v1/people/gongshu/chen"})).await;
    let phones = Mqtt::connect(broker, "e2e-phones").await;
    phones.subscribe("firegrid/v1/people/#").await;
    let device = Mqtt::connect(broker, "hz-0042").await;
    device
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            r#"{"seq":1,"up_ms":1000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        )
        .await;
    let opened = until("Li's alert", DEADLINE, || {
        phones
            .received("firegrid/v1/people/grid-7/li")
            .first()
            .map(support::Received::json)
    })
    .await;
    let episode = opened["alert"]["episode"].clone();
    let ticket = format!("/api/v1/episodes/{episode}/ticket");
    let li = api.with_token(&api.add_user("li", "grid_worker", Some("grid-7")).await);
    li.post(&ticket, json!({"to": "acknowledged"})).await;
    li.put(
        &format!("/api/v1/episodes/{episode}/assignee"),
        json!({"worker_id": li_id}),
    )
    .await;
    let acknowledged_ms = api.get(&format!("/api/v1/episodes/{episode}")).await["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["state"] == "acknowledged")
        .and_then(|s| s["at_ms"].as_u64())
        .expect("the acknowledgement's time");

    // Not rectified: the street's worker gets it at the deadline, saying why.
    let overdue = until(
        "the overdue escalation",
        Duration::from_secs(RECTIFY_S) + DEADLINE,
        || {
            phones
                .received("firegrid/v1/people/gongshu/chen")
                .first()
                .cloned()
        },
    )
    .await;
    let body = overdue.json();
    assert_eq!(body["worker"]["id"], chen);
    assert_eq!(body["alert"]["what"], "escalated");
    assert_eq!(body["alert"]["level"], 1);
    assert_eq!(body["alert"]["reason"], "rectify_overdue");
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("not rectified in time")),
        "{body}"
    );
    let after = Duration::from_millis(overdue.at_ms.saturating_sub(acknowledged_ms));
    let due = Duration::from_secs(RECTIFY_S);
    // The watcher looks every second; the dispatcher is woken by the alert.
    let margin = Duration::from_millis(2_500);
    assert!(
        after >= due && after <= due + margin,
        "escalated {after:?} after the acknowledgement; deadline {due:?} (+{margin:?})"
    );
    // The assignee (Li, of the grid cell) hears of it too, though it went to the street.
    let to_assignee = until("the overdue escalation to the assignee", DEADLINE, || {
        phones
            .received("firegrid/v1/people/grid-7/li")
            .iter()
            .map(support::Received::json)
            .find(|m| m["alert"]["what"] == "escalated")
    })
    .await;
    assert_eq!(to_assignee["worker"]["id"], li_id);
    assert_eq!(to_assignee["alert"]["reason"], "rectify_overdue");
    assert_eq!(to_assignee["alert"]["area"], "gongshu", "{to_assignee}");
    let view = api.get(&format!("/api/v1/episodes/{episode}")).await;
    assert_eq!(
        (view["ticket"].as_str(), view["escalation"].as_u64()),
        (Some("acknowledged"), Some(1)),
        "{view}"
    );

    // Verification. Still alarming: refused.
    let refused = li
        .request("POST", &ticket, Some(json!({"to": "verified"})))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("has not ended"), "{}", refused.body);
    device
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            r#"{"seq":2,"up_ms":2000,"kind":"alarm_cleared","ch":0,"residual_ma":120,"threshold_ma":300}"#,
        )
        .await;
    // Ended, but the circuit still leaks 280 mA: above 300 mA less 20 % (240 mA). Refused
    // for that reason once the hold since the end has passed.
    let mut seq = 10;
    // Just before the last reading above the margin was sent: the gateway times a reading
    // when it takes it, so no later than that.
    let last_above_ms = std::cell::Cell::new(0);
    let above = until_async("a refusal for the readings", DEADLINE, || {
        seq += 1;
        let s = seq;
        let (device, ticket, last_above_ms) = (&device, &ticket, &last_above_ms);
        async move {
            last_above_ms.set(now_ms());
            device
                .publish(
                    "firegrid/v1/dev/hz-0042/telemetry",
                    format!(
                        r#"{{"seq":{s},"up_ms":{s}000,"readings":[{{"ch":0,"residual_ma":280}}]}}"#
                    ),
                )
                .await;
            let r = li
                .request("POST", ticket, Some(json!({"to": "verified"})))
                .await;
            assert_ne!(r.status, 200, "verified while leaking 280 mA: {}", r.body);
            r.body.contains("is not below 240").then_some(r)
        }
    })
    .await;
    assert_eq!(above.status, 409, "{}", above.body);
    let last_above_ms = last_above_ms.get();
    // A grid worker cannot override the data.
    let forced = li
        .request(
            "POST",
            &ticket,
            Some(json!({"to": "verified", "override_reason": "looks fine"})),
        )
        .await;
    assert_eq!(forced.status, 403, "{}", forced.body);
    // Fixed: the readings drop to 100 mA. Verified once they stayed below for the hold.
    let verified = until_async("verification by the data", DEADLINE, || {
        seq += 1;
        let s = seq;
        let (device, ticket) = (&device, &ticket);
        async move {
            device
                .publish(
                    "firegrid/v1/dev/hz-0042/telemetry",
                    format!(
                        r#"{{"seq":{s},"up_ms":{s}000,"readings":[{{"ch":0,"residual_ma":100}}]}}"#
                    ),
                )
                .await;
            let r = li
                .request("POST", ticket, Some(json!({"to": "verified"})))
                .await;
            (r.status == 200).then_some(now_ms())
        }
    })
    .await;
    assert!(
        verified >= last_above_ms + HOLD_S * 1000,
        "verified {} ms after the last reading above the margin; the hold is {HOLD_S} s",
        verified - last_above_ms
    );
    let view = api.get(&format!("/api/v1/episodes/{episode}")).await;
    assert_eq!(view["ticket"], "verified", "{view}");
    drop(gw);
}
