//! End-to-end tests of the gateway: real brokers (the embedded rumqttd, a real Mosquitto), real
//! MQTT clients (rumqttc, Debian's `mosquitto_pub` and `mosquitto_sub`), the HTTP API over TCP,
//! the store on disk, and the `firegrid` binary killed with SIGKILL mid-stream.
//!
//! No fixed ports and no sleeps to synchronise: every wait polls for a condition with a
//! deadline. Where a test checks that something did *not* happen, it first makes the gateway
//! answer a later message (its pipeline is in order), so the absence is checked after the
//! gateway has provably handled what could have caused it. Measurements are printed; see them
//! with `cargo test -p firegrid-gateway --test end_to_end -- --nocapture`.

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use firegrid_gateway::config::{Config, DEFAULT_CONFIG, WebhookConfig};
use firegrid_gateway::model::Category;
use firegrid_gateway::protocols::DeviceId;
use firegrid_gateway::store::{EpisodeFilter, Store};
use firegrid_testkit::{Broker, GatewayConfig, Mosquitto};

use support::{
    Binary, DEADLINE, Gateway, MosquittoSub, Mqtt, ack_seqs, metric, mosquitto_pub, now_ms,
    refusals, summary, topic_device, until, until_async,
};

/// The leakage alarm of docs/protocol.md (412 mA against 300 mA on channel 0), with `seq`.
fn leakage_alarm(seq: u32) -> String {
    format!(
        r#"{{"seq":{seq},"ts":1764403260000,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}}"#
    )
}

/// An over-temperature alarm on `ch` (87.3 °C against 85.0 °C), without a device clock.
fn temperature_alarm(seq: u32, ch: u8) -> String {
    format!(
        r#"{{"seq":{seq},"up_ms":86461000,"kind":"alarm_raised","ch":{ch},"temp_dc":873,"threshold_dc":850}}"#
    )
}

fn event_topic(device: &str) -> String {
    format!("firegrid/v1/dev/{device}/event")
}

/// The alerts about `episode`.
fn alerts_of(alerts: &[Value], episode: &Value) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["episode"] == *episode)
        .cloned()
        .collect()
}

/// Publishes one alarm per channel 0..16 of `device` (seqs from `first_seq`), each after the
/// previous one's alert arrived, and returns each publish → alert-received time.
async fn alarm_latencies(
    device: &str,
    first_seq: u32,
    publisher: &Mqtt,
    observer: &Mqtt,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    for ch in 0..16u8 {
        let seq = first_seq + u32::from(ch);
        let payload = format!(
            r#"{{"seq":{seq},"up_ms":1000,"kind":"alarm_raised","ch":{ch},"residual_ma":500,"threshold_ma":300}}"#
        );
        let sent = Instant::now();
        publisher.publish(&event_topic(device), payload).await;
        let arrived = until("the alert of a new alarm", DEADLINE, || {
            observer
                .received("firegrid/v1/alert/")
                .into_iter()
                .find(|m| {
                    let a = m.json();
                    a["device"] == device && a["channel"] == ch && a["what"] == "opened"
                })
        })
        .await;
        samples.push(arrived.at.duration_since(sent));
    }
    samples
}

// ---- 1. the embedded broker, the gateway in this process ---------------------------------------

/// The flow a person follows by hand: set a device up through the API, publish the protocol
/// doc's leakage alarm with `mosquitto_pub`, and see the end-to-end ack and the alert with
/// `mosquitto_sub`, and the open episode in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_alarm_flow_with_mosquitto_clients() {
    let started = Instant::now();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();

    let mut sub = MosquittoSub::start(
        broker,
        &[
            "firegrid/v1/alert/grid-7",
            "firegrid/v1/dev/hz-0042/ack",
            "firegrid/v1/dev/hz-0042/config",
        ],
    )
    .await;
    // The device's configuration is retained for it.
    let (config, _) = sub.next_on("firegrid/v1/dev/hz-0042/config").await;
    let config: Value = serde_json::from_str(&config).expect("config JSON");
    assert_eq!(config["channels"][0]["residual_ma"], 300, "{config}");
    assert_eq!(config["channels"][1]["temp_dc"], 850, "{config}");

    let before_ms = now_ms();
    let sent = Instant::now();
    mosquitto_pub(
        broker,
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    let (ack, acked_at) = sub.next_on("firegrid/v1/dev/hz-0042/ack").await;
    let (alert, alerted_at) = sub.next_on("firegrid/v1/alert/grid-7").await;

    let ack: Value = serde_json::from_str(&ack).expect("ack JSON");
    assert_eq!(ack_seqs(&ack), [1043], "{ack}");
    let ack_ts = ack["ts"]
        .as_u64()
        .expect("the ack carries the gateway's time");
    assert!((before_ms..=now_ms()).contains(&ack_ts), "{ack}");

    let alert: Value = serde_json::from_str(&alert).expect("alert JSON");
    for (field, want) in [
        ("what", json!("opened")),
        ("category", json!("alarm")),
        ("device", json!("hz-0042")),
        ("channel", json!(0)),
        ("area", json!("grid-7")),
        ("level", json!(0)),
        ("source", json!("device")),
        ("quantity", json!("residual_current")),
        ("value", json!(412)),
        ("threshold", json!(300)),
    ] {
        assert_eq!(alert[field], want, "{field} in {alert}");
    }
    assert!(
        alert["alert_id"].as_u64().is_some_and(|id| id > 0),
        "{alert}"
    );

    let open = api.episodes("open=true").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let e = &open[0];
    assert_eq!(e["id"], alert["episode"], "{e}");
    assert_eq!(
        (&e["device"], &e["channel"], &e["category"], &e["grid"]),
        (
            &json!("hz-0042"),
            &json!(0),
            &json!("alarm"),
            &json!("grid-7")
        ),
        "{e}"
    );
    assert_eq!(e["open"], true, "{e}");
    assert_eq!(e["ticket"], "raised", "{e}");
    assert_eq!(e["peak"]["value"], 412, "{e}");
    assert_eq!(gw.journaled("hz-0042", Some(1043)), 1);

    // Latency with a rumqttc device and observer (no process start in the measurement).
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let publisher = Mqtt::connect(broker, "e2e-device").await;
    api.install_device("hz-0043", site).await;
    let mut latencies = alarm_latencies("hz-0043", 1, &publisher, &observer).await;

    let metrics = api.metrics().await;
    let latency_sum = metric(&metrics, "firegrid_alarm_latency_seconds_sum").expect("latency sum");
    let latency_count =
        metric(&metrics, "firegrid_alarm_latency_seconds_count").expect("latency count");
    assert_eq!(latency_count, 17.0, "one opened alert per episode");
    assert_eq!(
        metric(
            &metrics,
            "firegrid_episodes_opened_total{category=\"alarm\"}"
        ),
        Some(17.0)
    );
    let stopped_in = gw.stop().await;
    eprintln!(
        "embedded flow: mosquitto_pub → ack {:.1} ms, → alert {:.1} ms (including the \
         mosquitto_pub process); rumqttc publish → alert: {}; gateway's own \
         firegrid_alarm_latency_seconds mean {:.3} ms; graceful stop {:.1} ms; test {:.2} s",
        acked_at.duration_since(sent).as_secs_f64() * 1e3,
        alerted_at.duration_since(sent).as_secs_f64() * 1e3,
        summary(&mut latencies),
        latency_sum / latency_count * 1e3,
        stopped_in.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64()
    );
}

/// 1000 identical alarm events (different seqs) in a burst: every one acked and journaled,
/// exactly one episode and exactly one `opened` alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_1000_identical_alarms_opens_one_episode_and_one_alert() {
    const N: u32 = 1000;
    let started = Instant::now();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-0042/ack").await;
    let device = Mqtt::connect(broker, "hz-0042").await;

    let sent = Instant::now();
    for seq in 1..=N {
        device
            .publish(&event_topic("hz-0042"), leakage_alarm(seq))
            .await;
    }
    let queued_in = sent.elapsed();
    let acked = until("every seq acked", Duration::from_secs(8), || {
        let acked: BTreeSet<u32> = observer.acked("hz-0042").into_iter().collect();
        (acked.len() == N as usize).then_some(acked)
    })
    .await;
    let all_acked_in = sent.elapsed();
    assert_eq!(acked, (1..=N).collect(), "exactly seqs 1..=N acked");

    // Every alert of the burst was handed to the notifier before the last ack went out; one
    // more message through the pipeline and its ack bound the wait for a stray second alert.
    until("the opened alert", DEADLINE, || {
        (!observer.alerts().is_empty()).then_some(())
    })
    .await;
    device
        .publish(&event_topic("hz-0042"), leakage_alarm(N + 1))
        .await;
    until("the ack of one more event", DEADLINE, || {
        observer.acked("hz-0042").contains(&(N + 1)).then_some(())
    })
    .await;
    let alerts = observer.alerts();
    assert_eq!(alerts.len(), 1, "exactly one alert: {alerts:?}");
    assert_eq!(alerts[0]["what"], "opened");
    let episodes = api.episodes("device=hz-0042").await;
    assert_eq!(episodes.len(), 1, "exactly one episode: {episodes:?}");
    assert_eq!(episodes[0]["id"], alerts[0]["episode"]);
    assert_eq!(episodes[0]["open"], true);
    assert_eq!(gw.journaled("hz-0042", None), u64::from(N + 1));
    assert_eq!(
        observer.acked("hz-0042").len(),
        N as usize + 1,
        "each seq acked once"
    );
    let metrics = api.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "firegrid_episodes_opened_total{category=\"alarm\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "firegrid_ingest_messages_total{kind=\"event\"}"),
        Some(f64::from(N + 1))
    );
    let commits = metric(&metrics, "firegrid_journal_commit_seconds_count").unwrap_or(0.0);
    gw.stop().await;
    eprintln!(
        "burst: {N} events queued in {:.1} ms, all acked after {:.1} ms ({:.0} events/s), \
         {commits} journal commits; test {:.2} s",
        queued_in.as_secs_f64() * 1e3,
        all_acked_in.as_secs_f64() * 1e3,
        f64::from(N) / all_acked_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// A resent event (same seq): acked every time, journaled once, alerted once. Sent again after
/// its ack (a lost ack: the device's resend timeout) and twice back to back (one batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resent_event_is_acked_again_but_journaled_and_alerted_once() {
    let started = Instant::now();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-0042/ack").await;
    let count = |seq: u32| {
        observer
            .acked("hz-0042")
            .iter()
            .filter(|s| **s == seq)
            .count()
    };

    // After its ack, with mosquitto_pub.
    mosquitto_pub(
        broker,
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    until("the first ack", DEADLINE, || {
        (count(1043) == 1).then_some(())
    })
    .await;
    mosquitto_pub(
        broker,
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    until("the second ack", DEADLINE, || {
        (count(1043) == 2).then_some(())
    })
    .await;

    // Back to back, likely in one batch.
    let device = Mqtt::connect(broker, "hz-0042").await;
    device
        .publish(&event_topic("hz-0042"), temperature_alarm(1044, 1))
        .await;
    device
        .publish(&event_topic("hz-0042"), temperature_alarm(1044, 1))
        .await;
    until("two acks of 1044", DEADLINE, || {
        (count(1044) == 2).then_some(())
    })
    .await;
    // A later event's ack: the pipeline has handled everything before it.
    device
        .publish(&event_topic("hz-0042"), leakage_alarm(1045))
        .await;
    until("the ack of 1045", DEADLINE, || {
        (count(1045) == 1).then_some(())
    })
    .await;

    assert_eq!(gw.journaled("hz-0042", Some(1043)), 1);
    assert_eq!(gw.journaled("hz-0042", Some(1044)), 1);
    assert_eq!(gw.journaled("hz-0042", None), 3);
    assert_eq!((count(1043), count(1044)), (2, 2));
    let alerts = until("two alerts", DEADLINE, || {
        let a = observer.alerts();
        (a.len() >= 2).then_some(a)
    })
    .await;
    assert_eq!(alerts.len(), 2, "one alert per channel: {alerts:?}");
    let channels: BTreeSet<_> = alerts.iter().map(|a| a["channel"].to_string()).collect();
    assert_eq!(channels, BTreeSet::from(["0".to_string(), "1".to_string()]));
    assert_eq!(api.episodes("device=hz-0042").await.len(), 2);
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, "firegrid_refusals_total{reason=\"duplicate\"}"),
        Some(2.0),
        "{metrics}"
    );
    gw.stop().await;
    eprintln!("resend: test {:.2} s", started.elapsed().as_secs_f64());
}

/// Refusals are counted by reason in `/metrics`: malformed JSON, an unknown device (which is
/// listed as pending), a binary payload of an unknown format version. None is acknowledged and
/// none raises anything. (A decommissioned device: see the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_are_counted_by_reason_and_raise_nothing() {
    let started = Instant::now();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/+/ack").await;

    // The protocol doc's leakage alarm in binary, with format version 2 instead of 1.
    let mut binary_v2: Vec<u8> = vec![
        0xfb, 0x01, 0x93, 0x08, 0xe0, 0x8c, 0x9d, 0x29, 0x01, 0xe0, 0xd4, 0x84, 0xf5, 0xac, 0x33,
        0x00, 0x00, 0x00, 0xb8, 0x06, 0xd8, 0x04,
    ];
    binary_v2[1] = 0x02;
    let refused: [(&str, Vec<u8>); 3] = [
        (
            "hz-0042",
            br#"{"seq":1,"up_ms":5,"kind":"alarm_raised","ch":0,"#.to_vec(),
        ),
        ("hz-ghost", leakage_alarm(7).into_bytes()),
        ("hz-0042", binary_v2),
    ];
    for (device, payload) in &refused {
        mosquitto_pub(broker, &event_topic(device), payload).await;
    }
    // The ack of a good event after them: the pipeline has handled the refused ones.
    mosquitto_pub(
        broker,
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    until("the ack of the good event", DEADLINE, || {
        (!observer.acked("hz-0042").is_empty()).then_some(())
    })
    .await;

    let metrics = api.metrics().await;
    let counts = refusals(&metrics);
    for reason in ["decode_json", "unknown_device"] {
        assert_eq!(
            metric(
                &metrics,
                &format!("firegrid_refusals_total{{reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{reason}: {counts:?}"
        );
    }
    let total: f64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, 3.0,
        "three refusals, the binary one among them: {counts:?}"
    );

    let acks = observer.received("firegrid/v1/dev/");
    let acked_devices: BTreeSet<&str> = acks.iter().map(|m| topic_device(&m.topic)).collect();
    assert_eq!(
        acked_devices,
        BTreeSet::from(["hz-0042"]),
        "only the good event is acked"
    );
    assert_eq!(observer.acked("hz-0042"), [1043]);
    let alerts = until("the good event's alert", DEADLINE, || {
        let a = observer.alerts();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(api.episodes("").await.len(), 1);
    assert_eq!(gw.journaled("hz-0042", None), 1);
    assert_eq!(gw.journaled("hz-ghost", None), 0);

    // The unknown device is listed as pending (written in the background: poll).
    let pending = until_async("hz-ghost in /api/v1/pending", DEADLINE, || async {
        let list = api.get("/api/v1/pending").await;
        list.as_array()
            .expect("a list")
            .iter()
            .find(|p| p["id"] == "hz-ghost")
            .cloned()
    })
    .await;
    assert_eq!(
        pending["last_topic"], "firegrid/v1/dev/hz-ghost/event",
        "{pending}"
    );
    let listed = api.get("/api/v1/pending").await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "only hz-ghost: {listed}"
    );
    gw.stop().await;
    eprintln!(
        "refusals: {counts:?}; test {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// A decommissioned device's messages are refused as `decommissioned`, not acknowledged, raise
/// nothing, and the device is not listed as pending (it is registered, just retired).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decommissioned_device_is_refused_as_decommissioned() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    api.install_device("hz-old", site).await;
    let d = api
        .post(
            "/api/v1/devices/hz-old/state",
            json!({"to": "decommissioned", "note": "removed from Block 3"}),
        )
        .await;
    assert_eq!(d["state"], "decommissioned");
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/+/ack").await;

    mosquitto_pub(broker, &event_topic("hz-old"), leakage_alarm(8).as_bytes()).await;
    // Then an unknown device: once it is listed as pending, anything the refusal of hz-old
    // wrote to the pending list (the same background writer, in order) is there too.
    mosquitto_pub(
        broker,
        &event_topic("hz-ghost"),
        leakage_alarm(9).as_bytes(),
    )
    .await;
    // And a good event: once it is acked, the pipeline has handled the two before it.
    mosquitto_pub(
        broker,
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    until("the ack of the good event", DEADLINE, || {
        (!observer.acked("hz-0042").is_empty()).then_some(())
    })
    .await;
    let pending = until_async("hz-ghost in /api/v1/pending", DEADLINE, || async {
        let list = api.get("/api/v1/pending").await;
        let ids: BTreeSet<String> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| p["id"].as_str().expect("an id").to_string())
            .collect();
        ids.contains("hz-ghost").then_some(ids)
    })
    .await;
    assert!(
        observer.acked("hz-old").is_empty(),
        "a decommissioned device is not acked"
    );
    assert_eq!(gw.journaled("hz-old", None), 0);
    assert!(
        api.episodes("device=hz-old").await.is_empty(),
        "a decommissioned device raises nothing"
    );
    let counts = refusals(&api.metrics().await);
    gw.stop().await;
    assert_eq!(
        pending,
        BTreeSet::from(["hz-ghost".to_string()]),
        "a decommissioned device is not listed as pending (it is registered)"
    );
    assert_eq!(
        counts,
        [
            ("decommissioned".to_string(), 1.0),
            ("unknown_device".to_string(), 1.0)
        ],
        "hz-old refused as decommissioned, hz-ghost as unknown"
    );
}

/// docs/protocol.md, Versioning: "a receiver refuses versions it does not know with a clear
/// reason". The refusal counter of a binary payload with an unknown format version should say
/// so, not lump it with empty payloads, unknown encodings, trailing bytes and over-deep JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_binary_version_is_refused_with_a_clear_reason() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/dev/hz-0042/ack").await;
    mosquitto_pub(broker, &event_topic("hz-0042"), &[0xfb, 0x02, 0x01, 0x00]).await;
    mosquitto_pub(broker, &event_topic("hz-0042"), b"").await;
    mosquitto_pub(broker, &event_topic("hz-0042"), leakage_alarm(1).as_bytes()).await;
    until("the ack of the good event", DEADLINE, || {
        (!observer.acked("hz-0042").is_empty()).then_some(())
    })
    .await;
    let counts = refusals(&api.metrics().await);
    gw.stop().await;
    let version = counts
        .iter()
        .find(|(reason, _)| reason.contains("version"))
        .map(|(_, n)| *n);
    assert_eq!(
        version,
        Some(1.0),
        "a refusal reason naming the binary version, apart from the empty payload: {counts:?}"
    );
}

/// Many alarms at once (10 devices, 16 channels each, published back to back): every one
/// acked, one episode and one `opened` alert each. Prints how long the last alert took: the
/// notifier marks each alert delivered in its own durable journal write before it takes the
/// next one, so alerts of a storm queue behind one another's fsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_storm_alerts_every_episode_once() {
    const DEVICES: u32 = 10;
    const CHANNELS: u8 = 16;
    let started = Instant::now();
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    let devices: Vec<String> = (1..=DEVICES).map(|i| format!("hz-{i:04}")).collect();
    for d in &devices {
        api.install_device(d, site).await;
    }
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/+/ack").await;
    let publisher = Mqtt::connect(broker, "e2e-devices").await;
    let total = devices.len() * usize::from(CHANNELS);

    let sent = Instant::now();
    for ch in 0..CHANNELS {
        for d in &devices {
            let seq = u32::from(ch) + 1;
            publisher
                .publish(&event_topic(d), format!(r#"{{"seq":{seq},"up_ms":1,"kind":"alarm_raised","ch":{ch},"residual_ma":480,"threshold_ma":300}}"#))
                .await;
        }
    }
    let last_ack = until("every alarm acked", DEADLINE, || {
        let acks = observer.received("firegrid/v1/dev/");
        let n: usize = acks.iter().map(|m| ack_seqs(&m.json()).len()).sum();
        (n >= total).then(|| acks.iter().map(|m| m.at).max().expect("acks"))
    })
    .await;
    let alerts = until("every opened alert", DEADLINE, || {
        let a = observer.received("firegrid/v1/alert/");
        (a.len() >= total).then_some(a)
    })
    .await;
    // One more event through the pipeline and the notifier bounds the wait for extra alerts.
    publisher
        .publish(&event_topic("hz-0001"), leakage_alarm(100))
        .await;
    until("the last ack", DEADLINE, || {
        observer.acked("hz-0001").contains(&100).then_some(())
    })
    .await;
    let alerts_now = observer.alerts();
    assert_eq!(alerts_now.len(), total, "exactly one alert per episode");
    let keys: BTreeSet<(String, String)> = alerts_now
        .iter()
        .map(|a| (a["device"].to_string(), a["channel"].to_string()))
        .collect();
    assert_eq!(keys.len(), total, "one alert per (device, channel)");
    assert_eq!(api.episodes("open=true&limit=1000").await.len(), total);
    let mut latencies: Vec<Duration> = alerts.iter().map(|m| m.at.duration_since(sent)).collect();
    let first_alert = latencies.iter().min().copied().unwrap_or_default();
    let last_alert = latencies.iter().max().copied().unwrap_or_default();
    let metrics = api.metrics().await;
    let commits = metric(&metrics, "firegrid_journal_commit_seconds_count").unwrap_or(0.0);
    let commit_s = metric(&metrics, "firegrid_journal_commit_seconds_sum").unwrap_or(0.0);
    gw.stop().await;
    eprintln!(
        "alarm storm: {total} alarms published at once: last ack after {:.1} ms; alerts from \
         publish: first {:.1} ms, last {:.1} ms ({:.0} alerts/s), {}; {commits} pipeline \
         journal commits, mean {:.2} ms; test {:.2} s",
        last_ack.duration_since(sent).as_secs_f64() * 1e3,
        first_alert.as_secs_f64() * 1e3,
        last_alert.as_secs_f64() * 1e3,
        total as f64 / last_alert.as_secs_f64(),
        summary(&mut latencies),
        commit_s / commits.max(1.0) * 1e3,
        started.elapsed().as_secs_f64()
    );
}

/// A webhook that never answers must not hold up the MQTT alerts of other episodes: grid
/// workers get alarms "within milliseconds" whatever an SMS gateway does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_webhook_does_not_delay_mqtt_alerts() {
    // A webhook receiver that accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener");
    let hole_addr = hole.local_addr().expect("its address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let hole_task = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hole.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        }
    });
    let url = format!("http://{hole_addr}/firegrid");
    let gw = Gateway::start(move |c| {
        c.webhooks = vec![WebhookConfig {
            url,
            secret_env: String::new(),
            // The receiver is on loopback.
            allow_private: true,
        }];
    })
    .await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let device = Mqtt::connect(broker, "hz-0042").await;

    device
        .publish(&event_topic("hz-0042"), leakage_alarm(1))
        .await;
    until("the first alert", DEADLINE, || {
        (!observer.alerts().is_empty()).then_some(())
    })
    .await;
    until("the webhook POST of the first alert", DEADLINE, || {
        (accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;

    // While that POST hangs, another episode opens.
    let sent = Instant::now();
    device
        .publish(&event_topic("hz-0042"), temperature_alarm(2, 1))
        .await;
    // Ordering, not a stopwatch: the new episode's MQTT alert comes while the first webhook
    // POST still hangs — before the webhook's own timeout could have freed a one-at-a-time
    // notifier, and before any retry reached the receiver.
    let timeout = firegrid_gateway::notify::webhook::TIMEOUT;
    let second = until(
        "the next episode's MQTT alert while the webhook POST hangs",
        DEADLINE.max(timeout * 2),
        || {
            observer
                .received("firegrid/v1/alert/")
                .into_iter()
                .find(|m| m.json()["channel"] == 1)
        },
    )
    .await;
    let latency = second.at.duration_since(sent);
    let posts = accepted.load(Ordering::SeqCst);
    hole_task.abort();
    gw.stop().await;
    eprintln!("hanging webhook: the next episode's MQTT alert after {latency:?}");
    assert!(
        latency < timeout && posts == 1,
        "the MQTT alert of a new episode came after {latency:?}, {posts} webhook connections: \
         it waited behind the webhook's {timeout:?} timeout (pipeline::notifier delivering one \
         alert at a time on every channel)"
    );
}

/// An acknowledged ticket stops escalation; an unacknowledged one goes up the area hierarchy
/// at `[engine] escalation_s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acknowledged_ticket_stops_escalation() {
    let started = Instant::now();
    let gw = Gateway::start(|c| c.engine.escalation_s = vec![1, 2]).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let device = Mqtt::connect(broker, "hz-0042").await;

    device
        .publish(&event_topic("hz-0042"), leakage_alarm(1))
        .await;
    device
        .publish(&event_topic("hz-0042"), temperature_alarm(2, 1))
        .await;
    let opened = until("two opened alerts", DEADLINE, || {
        let a = observer.alerts();
        (a.len() >= 2).then_some(a)
    })
    .await;
    let opened_at = Instant::now();
    let episode_of = |ch: u8| {
        opened
            .iter()
            .find(|a| a["channel"] == ch)
            .map(|a| a["episode"].clone())
            .expect("an alert per channel")
    };
    let (watched, acknowledged) = (episode_of(0), episode_of(1));

    // The grid worker of grid-7 acknowledges with their own token: the step names them.
    let li = api.with_token(
        &api.add_user("grid-worker-li", "grid_worker", Some("grid-7"))
            .await,
    );
    let e = li
        .post(
            &format!("/api/v1/episodes/{acknowledged}/ticket"),
            json!({"to": "acknowledged", "note": "on my way"}),
        )
        .await;
    assert_eq!(e["ticket"], "acknowledged", "{e}");

    let escalated = until("escalation to level 2", DEADLINE, || {
        let a = alerts_of(&observer.alerts(), &watched);
        a.iter()
            .any(|a| a["what"] == "escalated" && a["level"] == 2)
            .then_some(a)
    })
    .await;
    let level2_after = opened_at.elapsed();
    let levels: Vec<_> = escalated
        .iter()
        .filter(|a| a["what"] == "escalated")
        .map(|a| (a["level"].clone(), a["area"].clone()))
        .collect();
    assert_eq!(
        levels,
        [(json!(1), json!("gongshu")), (json!(2), json!("gongshu"))],
        "level 1 goes to the street above grid-7; level 2 has nowhere higher to go"
    );
    // Both episodes are on one device, so the tick that escalated the watched one to level 2
    // looked at the acknowledged one too.
    let quiet = alerts_of(&observer.alerts(), &acknowledged);
    assert_eq!(quiet.len(), 1, "only the opened alert: {quiet:?}");
    let acked_view = api.get(&format!("/api/v1/episodes/{acknowledged}")).await;
    assert_eq!(acked_view["escalation"], 0, "{acked_view}");
    assert_eq!(acked_view["ticket"], "acknowledged", "{acked_view}");
    let step = acked_view["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["state"] == "acknowledged")
        .cloned()
        .expect("an acknowledged step");
    assert_eq!(step["who"], "grid-worker-li", "{step}");
    let watched_view = api.get(&format!("/api/v1/episodes/{watched}")).await;
    assert_eq!(watched_view["escalation"], 2, "{watched_view}");
    gw.stop().await;
    eprintln!(
        "escalation: level 2 alert {:.0} ms after the opened alerts (configured 2000 ms); test \
         {:.2} s",
        level2_after.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64()
    );
}

/// An alarm raised and cleared by the device sends an `opened` and an `ended` alert, also when
/// both events reach the gateway in one pipeline batch (one journal transaction). A burst of
/// journaled events ahead of them keeps the pipeline busy so that they queue up together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_raised_and_cleared_in_one_batch_still_sends_its_ended_alert() {
    const FILLER: u32 = 300;
    const PAIRS: u8 = 8;
    let gw = Gateway::start(|_| {}).await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-0042/ack").await;
    let device = Mqtt::connect(broker, "hz-0042").await;
    let topic = event_topic("hz-0042");
    for seq in 1..=FILLER {
        device
            .publish(
                &topic,
                format!(r#"{{"seq":{seq},"up_ms":{seq},"kind":"self_test","result":"passed"}}"#),
            )
            .await;
    }
    let mut seq = FILLER;
    for ch in 0..PAIRS {
        seq += 1;
        device
            .publish(&topic, format!(r#"{{"seq":{seq},"up_ms":{seq},"kind":"alarm_raised","ch":{ch},"residual_ma":412,"threshold_ma":300}}"#))
            .await;
        seq += 1;
        device
            .publish(&topic, format!(r#"{{"seq":{seq},"up_ms":{seq},"kind":"alarm_cleared","ch":{ch},"residual_ma":120,"threshold_ma":300}}"#))
            .await;
    }
    let last = seq;
    until("every event acked", DEADLINE, || {
        observer.acked("hz-0042").contains(&last).then_some(())
    })
    .await;
    let episodes = api.episodes("device=hz-0042").await;
    assert_eq!(episodes.len(), usize::from(PAIRS), "{episodes:?}");
    assert!(
        episodes.iter().all(|e| e["open"] == false),
        "all ended: {episodes:?}"
    );
    let same_batch = episodes
        .iter()
        .filter(|e| e["started_ms"] == e["ended_ms"])
        .count();
    // The name's claim: some pairs did reach the gateway in one batch (one journal
    // transaction: the same start and end time). The filler ahead keeps the pipeline busy.
    assert!(
        same_batch >= 1,
        "no raise+clear pair was journaled in one batch, so this run tested nothing of its \
         name: {episodes:?}"
    );
    // Every alert is handed over before the acks of its batch, on the urgent link.
    let ended_for_all = || {
        let alerts = observer.alerts();
        let missing: Vec<Value> = episodes
            .iter()
            .filter(|e| {
                !alerts_of(&alerts, &e["id"])
                    .iter()
                    .any(|a| a["what"] == "ended")
            })
            .map(|e| e["id"].clone())
            .collect();
        missing
    };
    until(
        "an `ended` alert for every episode (Pipeline::alert_for reads an Ended episode from \
         the store, where the same batch has not written it yet)",
        DEADLINE,
        || ended_for_all().is_empty().then_some(()),
    )
    .await;
    let missing = ended_for_all();
    let opened = observer
        .alerts()
        .iter()
        .filter(|a| a["what"] == "opened")
        .count();
    gw.stop().await;
    eprintln!(
        "raise+clear: {same_batch} of {PAIRS} pairs journaled in one batch; {opened} opened \
         alerts; episodes without an ended alert: {missing:?}"
    );
    assert_eq!(opened, usize::from(PAIRS), "an opened alert per episode");
    assert!(
        missing.is_empty(),
        "episodes that ended without an `ended` alert: {missing:?} ({same_batch} of {PAIRS} \
         opened and ended in one batch; Pipeline::alert_for reads an Ended episode from the \
         store, where the same batch has not written it yet)"
    );
}

// ---- 2. an external Mosquitto ------------------------------------------------------------------

/// `broker.mode = external` against a real Mosquitto: the same alarm flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn external_mosquitto_alarm_flow() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let gw = Gateway::start_external(mosquitto.addr(), "firegrid-e2e-external").await;
    let api = gw.api;
    let site = api.create_district().await;
    api.install_device("hz-0042", site).await;
    let observer = Mqtt::connect(mosquitto.addr(), "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/+/ack").await;

    let sent = Instant::now();
    mosquitto_pub(
        mosquitto.addr(),
        &event_topic("hz-0042"),
        leakage_alarm(1043).as_bytes(),
    )
    .await;
    let ack = until("the ack", DEADLINE, || {
        observer.received("firegrid/v1/dev/hz-0042/ack").pop()
    })
    .await;
    assert_eq!(ack_seqs(&ack.json()), [1043]);
    let alert = until("the alert", DEADLINE, || {
        observer.received("firegrid/v1/alert/grid-7").pop()
    })
    .await;
    let a = alert.json();
    assert_eq!(
        (&a["what"], &a["device"], &a["channel"]),
        (&json!("opened"), &json!("hz-0042"), &json!(0))
    );
    assert_eq!((&a["value"], &a["threshold"]), (&json!(412), &json!(300)));
    let open = api.episodes("open=true").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], a["episode"]);
    assert_eq!(gw.journaled("hz-0042", Some(1043)), 1);

    api.install_device("hz-0043", site).await;
    let publisher = Mqtt::connect(mosquitto.addr(), "e2e-device").await;
    let mut latencies = alarm_latencies("hz-0043", 1, &publisher, &observer).await;
    gw.stop().await;
    eprintln!(
        "external Mosquitto: mosquitto_pub → ack {:.1} ms, → alert {:.1} ms; rumqttc publish → \
         alert: {}; test {:.2} s",
        ack.at.duration_since(sent).as_secs_f64() * 1e3,
        alert.at.duration_since(sent).as_secs_f64() * 1e3,
        summary(&mut latencies),
        started.elapsed().as_secs_f64()
    );
}

// ---- 3. kill -9 mid-stream ---------------------------------------------------------------------

/// The store of a killed gateway, as it was on disk at the kill: the journaled event seqs and
/// whether each notification was marked delivered. Read from a copy, so the restarted gateway
/// finds the files exactly as the crash left them.
#[derive(Debug)]
struct CrashSnapshot {
    events: BTreeSet<u32>,
    /// Notification id → (episode, kind, marked delivered).
    delivered: BTreeMap<i64, (i64, String, bool)>,
}

fn crash_snapshot(data: &std::path::Path, into: &std::path::Path) -> CrashSnapshot {
    std::fs::create_dir_all(into).expect("a snapshot folder");
    for name in ["firegrid.db", "firegrid.db-wal"] {
        let from = data.join(name);
        if from.exists() {
            std::fs::copy(&from, into.join(name)).expect("the store file copies");
        }
    }
    let conn = rusqlite::Connection::open(into.join("firegrid.db")).expect("the copy opens");
    let mut events = BTreeSet::new();
    let mut stmt = conn.prepare("SELECT seq FROM events").expect("events");
    for seq in stmt
        .query_map([], |r| r.get::<_, u32>(0))
        .expect("events are read")
    {
        assert!(events.insert(seq.expect("a seq")), "a seq journaled twice");
    }
    let mut delivered = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT id, episode_id, kind, delivered_ms IS NOT NULL FROM notifications")
        .expect("notifications");
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ),
            ))
        })
        .expect("notifications are read")
    {
        let (id, d) = row.expect("a notification");
        delivered.insert(id, d);
    }
    CrashSnapshot { events, delivered }
}

/// What the devices send: seq `s` of 1..=N goes to device `(s - 1) % 5`, whose `r`-th event
/// (`r = (s - 1) / 5`) raises a leakage alarm on channel `(r / 2) % 16` when `r` is even and
/// clears it when `r` is odd: with N = 300, 30 episodes per device (channels 0-13 twice, 14
/// and 15 once), 150 in all, opened and ended all through the stream.
fn stream_event(seq: u32) -> (String, String) {
    let device = format!("hz-{:04}", (seq - 1) % 5 + 1);
    let r = (seq - 1) / 5;
    let ch = (r / 2) % 16;
    let payload = if r.is_multiple_of(2) {
        format!(
            r#"{{"seq":{seq},"up_ms":{seq},"kind":"alarm_raised","ch":{ch},"residual_ma":{},"threshold_ma":300}}"#,
            300 + seq % 200
        )
    } else {
        format!(
            r#"{{"seq":{seq},"up_ms":{seq},"kind":"alarm_cleared","ch":{ch},"residual_ma":100,"threshold_ma":300}}"#
        )
    };
    (device, payload)
}

/// How many episodes the stream of 1..=n opens for (device, channel).
fn expected_episodes(n: u32) -> BTreeMap<(String, u8), usize> {
    let mut out = BTreeMap::new();
    for seq in 1..=n {
        let r = (seq - 1) / 5;
        if r.is_multiple_of(2) {
            let ch = u8::try_from((r / 2) % 16).expect("a channel");
            *out.entry((format!("hz-{:04}", (seq - 1) % 5 + 1), ch))
                .or_default() += 1;
        }
    }
    out
}

/// When to kill the gateway, and how.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Right after the devices queued a full window of new events: they are on their way to
    /// the broker and the gateway.
    Immediately,
    /// As soon as the gateway acked one event of a full window of new events: the rest are
    /// being received, journaled or acked.
    AfterAnAck,
}

/// What one kill left.
#[derive(Debug)]
struct Crash {
    how: Kill,
    acked: usize,
    unacked_in_flight: usize,
    snapshot: CrashSnapshot,
    acked_before_restart: BTreeSet<u32>,
    killed_at: Instant,
}

/// The real binary against a real Mosquitto, killed twice with SIGKILL mid-stream and
/// restarted on the same data directory while the devices resend what was not acknowledged:
/// nothing acknowledged is lost, nothing is journaled twice, no episode opens twice, no alert
/// is sent twice except one that a crash left unmarked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_loses_nothing_acknowledged_and_doubles_nothing() {
    const N: u32 = 300;
    const WINDOW: usize = 25;
    const KILLS: [(usize, Kill); 2] = [(80, Kill::Immediately), (180, Kill::AfterAnAck)];
    const RESEND_AFTER: Duration = Duration::from_secs(1);
    let started = Instant::now();
    support::init_logs();
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let mut config = GatewayConfig::new(&data, Broker::External(mosquitto.addr()));
    config.set("broker.client_id", "firegrid-e2e-kill");
    let mut gw = Binary::launch(config, dir.path()).await;
    let site = gw.api.create_district().await;
    let devices: Vec<String> = (1..=5).map(|i| format!("hz-{i:04}")).collect();
    for d in &devices {
        gw.api.install_device(d, site).await;
    }
    let observer = Mqtt::connect(mosquitto.addr(), "e2e-observer").await;
    observer.subscribe("firegrid/v1/dev/+/ack").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let publisher = Mqtt::connect(mosquitto.addr(), "e2e-devices").await;

    // Every seq acked so far; an ack must go to the device the seq belongs to.
    let acked = || {
        let mut set = BTreeSet::new();
        for m in observer.received("firegrid/v1/dev/") {
            for seq in ack_seqs(&m.json()) {
                assert_eq!(topic_device(&m.topic), stream_event(seq).0, "ack of {seq}");
                set.insert(seq);
            }
        }
        set
    };
    // The devices' outboxes: seq → when last sent.
    let mut outstanding: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut next = 1u32;
    let mut resent = 0u32;
    let send = |seq: u32| {
        let (device, payload) = stream_event(seq);
        let topic = event_topic(&device);
        let publisher = &publisher;
        async move { publisher.publish(&topic, payload).await }
    };

    let mut crashes: Vec<Crash> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let done = acked();
        outstanding.retain(|seq, _| !done.contains(seq));
        if done.len() == N as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every seq acked in time: {} of {N}, outstanding {:?}\n{}",
            done.len(),
            outstanding.keys().collect::<Vec<_>>(),
            gw.log_text()
        );
        if let Some(&(after, how)) = KILLS.get(crashes.len())
            && done.len() >= after
        {
            while outstanding.len() < WINDOW && next <= N {
                send(next).await;
                outstanding.insert(next, Instant::now());
                next += 1;
            }
            if let Kill::AfterAnAck = how {
                let before = done.len();
                while acked().len() == before {
                    assert!(Instant::now() < deadline, "no ack of the window");
                    tokio::task::yield_now().await;
                }
            }
            gw.kill9();
            let killed_at = Instant::now();
            let at_kill = acked();
            let unacked_in_flight = outstanding.keys().filter(|s| !at_kill.contains(s)).count();
            let snapshot =
                crash_snapshot(&data, &dir.path().join(format!("crash-{}", crashes.len())));
            let acked_before_restart = acked();
            gw.restart().await;
            crashes.push(Crash {
                how,
                acked: at_kill.len(),
                unacked_in_flight,
                snapshot,
                acked_before_restart: acked_before_restart.clone(),
                killed_at,
            });
            // The devices resend everything not acknowledged, as after a reconnect.
            outstanding.retain(|seq, _| !acked_before_restart.contains(seq));
            for (&seq, sent) in &mut outstanding {
                send(seq).await;
                *sent = Instant::now();
                resent += 1;
            }
            continue;
        }
        // The outbox's resend timeout.
        for (&seq, sent) in &mut outstanding {
            if sent.elapsed() >= RESEND_AFTER {
                send(seq).await;
                *sent = Instant::now();
                resent += 1;
            }
        }
        while outstanding.len() < WINDOW && next <= N {
            send(next).await;
            outstanding.insert(next, Instant::now());
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await; // pacing the loop, not a sync
    }
    let streamed_in = started.elapsed();
    assert_eq!(crashes.len(), KILLS.len(), "killed as planned");

    // Everything acknowledged before a restart was on disk at the kill before it.
    for c in &crashes {
        let lost: Vec<_> = c
            .acked_before_restart
            .difference(&c.snapshot.events)
            .collect();
        assert!(
            lost.is_empty(),
            "{:?}: acked but not journaled at the kill: {lost:?}",
            c.how
        );
    }

    // Every episode gets its opened alert (a restarted notifier sends what a crash left).
    let api = gw.api;
    let expected = expected_episodes(N);
    let episodes = api.get("/api/v1/episodes?limit=1000").await;
    let episodes = episodes.as_array().expect("episodes").clone();
    assert_eq!(
        episodes.len(),
        expected.values().sum::<usize>(),
        "one episode per raise"
    );
    let missing_opened = || {
        let alerts = observer.alerts();
        episodes
            .iter()
            .filter(|e| {
                !alerts_of(&alerts, &e["id"])
                    .iter()
                    .any(|a| a["what"] == "opened")
            })
            .map(|e| e["id"].as_i64().expect("an episode id"))
            .collect::<Vec<_>>()
    };
    // Waits for the opened alerts; on a timeout, reports what the store says of each missing one.
    let deadline = Instant::now() + DEADLINE;
    let missing = until_async("every episode's opened alert", DEADLINE + DEADLINE, || {
        let missing = missing_opened();
        let done = missing.is_empty() || Instant::now() >= deadline;
        std::future::ready(done.then_some(missing))
    })
    .await;
    if !missing.is_empty() {
        gw.interrupt().await;
        let (store, _) = Store::open(data.join("firegrid.db")).expect("the store opens");
        let mut report = String::new();
        for e in &missing {
            let id = u64::try_from(*e).expect("an id");
            let n = store.notifications_of(id).expect("notifications");
            report.push_str(&format!("\n  episode {e}: notifications now {n:?}"));
            for (i, c) in crashes.iter().enumerate() {
                let at_crash: Vec<_> = c
                    .snapshot
                    .delivered
                    .iter()
                    .filter(|(_, (ep, _, _))| ep == e)
                    .collect();
                report.push_str(&format!(
                    "\n    at kill {i} ({:?}, {:.1} ms): {at_crash:?}",
                    c.how,
                    c.killed_at.duration_since(started).as_secs_f64() * 1e3
                ));
            }
        }
        panic!("episodes whose opened alert never arrived:{report}");
    }
    let duplicates_refused = metric(
        &api.metrics().await,
        "firegrid_refusals_total{reason=\"duplicate\"}",
    )
    .unwrap_or(0.0);
    let stop_took = gw.interrupt().await;

    // The journal, read with the store's own API after a clean stop.
    let (store, health) = Store::open(data.join("firegrid.db")).expect("the store opens");
    assert!(
        health.recovery.is_none(),
        "the store needed no recovery: {health:?}"
    );
    let mut journaled = Vec::new();
    for d in &devices {
        let id = DeviceId::new(d).expect("a device id");
        for e in store.device_events(&id, None, 10_000).expect("events") {
            journaled.push(e.event.seq);
        }
    }
    journaled.sort_unstable();
    assert_eq!(
        journaled,
        (1..=N).collect::<Vec<_>>(),
        "every seq journaled exactly once"
    );
    let final_acked = acked();
    assert!(
        final_acked
            .iter()
            .all(|s| journaled.binary_search(s).is_ok())
    );

    // Episodes: as many per (device, channel) as the stream raised, never two open at once.
    let all = store
        .episodes(&EpisodeFilter {
            limit: 10_000,
            ..EpisodeFilter::default()
        })
        .expect("episodes");
    let mut per_key: BTreeMap<(String, u8), Vec<_>> = BTreeMap::new();
    for e in &all {
        assert_eq!(e.key.category, Category::Alarm, "{e:?}");
        let ch = e.key.channel.expect("an alarm has a channel");
        per_key
            .entry((e.key.device.to_string(), ch))
            .or_default()
            .push(e.clone());
    }
    let counts: BTreeMap<_, _> = per_key.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    assert_eq!(counts, expected, "episodes per (device, channel)");
    for (key, list) in &mut per_key {
        list.sort_by_key(|e| (e.started_ms, e.id));
        assert!(
            list.iter().all(|e| e.ended_ms.is_some()),
            "{key:?} all ended: {list:?}"
        );
        for pair in list.windows(2) {
            assert!(
                pair[0]
                    .ended_ms
                    .is_some_and(|end| end <= pair[1].started_ms),
                "{key:?}: two episodes open at once: {pair:?}"
            );
        }
    }

    // Notifications: one `opened` and one `ended` per episode (every episode ended), all marked
    // delivered.
    let mut journaled_alerts = BTreeSet::new();
    for e in &all {
        let n = store.notifications_of(e.id).expect("notifications");
        let kinds: Vec<String> = n
            .iter()
            .map(|n| json!(n.fields.kind).as_str().expect("a kind").to_string())
            .collect();
        let of = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
        assert_eq!(of("opened"), 1, "episode {}: {n:?}", e.id);
        assert_eq!(
            of("ended"),
            1,
            "episode {} ended (at {:?}) with one `ended` alert: {n:?}",
            e.id,
            e.ended_ms
        );
        for n in &n {
            assert!(n.delivered_ms.is_some(), "delivered in the end: {n:?}");
            journaled_alerts.insert(n.id);
        }
    }
    // Every alert marked delivered was received.
    let alerts = until("every delivered alert received", DEADLINE, || {
        let alerts = observer.received("firegrid/v1/alert/");
        let ids: BTreeSet<i64> = alerts
            .iter()
            .map(|m| {
                let id = m.json()["alert_id"].as_u64().expect("an alert_id");
                i64::try_from(id).expect("an id")
            })
            .collect();
        journaled_alerts.is_subset(&ids).then_some(alerts)
    })
    .await;

    // Alerts: one alert_id per (episode, what, level); an alert_id received twice only if a
    // crash left it unmarked — not yet journaled (an alarm's alert goes out while its commit
    // runs, decision 20) or journaled and not marked delivered — and the later copy came from
    // the gateway restarted after it.
    let mut ids_per_alert: HashMap<(String, String, String), BTreeSet<u64>> = HashMap::new();
    let mut copies: BTreeMap<i64, Vec<Instant>> = BTreeMap::new();
    for m in &alerts {
        let a = m.json();
        let id = a["alert_id"].as_u64().expect("an alert_id");
        ids_per_alert
            .entry((
                a["episode"].to_string(),
                a["what"].to_string(),
                a["level"].to_string(),
            ))
            .or_default()
            .insert(id);
        copies
            .entry(i64::try_from(id).expect("an id"))
            .or_default()
            .push(m.at);
    }
    assert!(
        ids_per_alert.values().all(|ids| ids.len() == 1),
        "one alert sent under two alert_ids: {ids_per_alert:?}"
    );
    let redelivered: Vec<i64> = copies
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(id, _)| *id)
        .collect();
    for id in &redelivered {
        for again in copies[id].iter().skip(1) {
            let excused = crashes.iter().any(|c| {
                !c.snapshot.delivered.get(id).is_some_and(|(_, _, d)| *d) && *again >= c.killed_at
            });
            if !excused {
                let when: Vec<String> = copies[id]
                    .iter()
                    .map(|t| format!("{:.1} ms", t.duration_since(started).as_secs_f64() * 1e3))
                    .collect();
                let states: Vec<String> = crashes
                    .iter()
                    .map(|c| {
                        format!(
                            "{:?} killed at {:.1} ms, alert marked delivered: {:?}",
                            c.how,
                            c.killed_at.duration_since(started).as_secs_f64() * 1e3,
                            c.snapshot.delivered.get(id)
                        )
                    })
                    .collect();
                panic!(
                    "alert {id} sent again although no crash before the copy left it \
                     unmarked: copies at {when:?}; crashes: {states:?}; the alert: {}",
                    alerts
                        .iter()
                        .find(|m| m.json()["alert_id"] == *id)
                        .map(|m| m.json().to_string())
                        .unwrap_or_default()
                );
            }
        }
    }
    // Marked delivered → arrived, from the store's delivered_ms and the arrival wall clock.
    let mut delivered_ms = BTreeMap::new();
    for e in &all {
        for n in store.notifications_of(e.id).expect("notifications") {
            delivered_ms.insert(n.id, n.delivered_ms.expect("delivered"));
        }
    }
    let mut lag: Vec<i64> = alerts
        .iter()
        .filter_map(|m| {
            let id = i64::try_from(m.json()["alert_id"].as_u64()?).ok()?;
            let d = i64::try_from(*delivered_ms.get(&id)?).ok()?;
            Some(i64::try_from(m.at_ms).ok()? - d)
        })
        .collect();
    lag.sort_unstable();
    eprintln!(
        "kill -9: alert arrival minus delivered_ms: min {} ms, median {} ms, max {} ms",
        lag.first().copied().unwrap_or_default(),
        lag.get(lag.len() / 2).copied().unwrap_or_default(),
        lag.last().copied().unwrap_or_default()
    );
    for c in &crashes {
        eprintln!(
            "kill -9 ({:?}): {} of {N} acked at the kill, {} sent and not acked; {} events \
             journaled at the kill ({} acked before the restart); {} notifications journaled, \
             {} not marked delivered",
            c.how,
            c.acked,
            c.unacked_in_flight,
            c.snapshot.events.len(),
            c.acked_before_restart.len(),
            c.snapshot.delivered.len(),
            c.snapshot.delivered.values().filter(|(_, _, d)| !d).count(),
        );
    }
    eprintln!(
        "kill -9: {resent} resends, {duplicates_refused} refused as duplicates by the last run; \
         {} alerts received for {} notifications, redelivered alert_ids {redelivered:?}; \
         {} episodes, each opened and ended with its alerts; stream done in {:.2} s; graceful \
         stop {:.0} ms; test {:.2} s",
        alerts.len(),
        journaled_alerts.len(),
        all.len(),
        streamed_in.as_secs_f64(),
        stop_took.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64()
    );
    drop(mosquitto);
}

/// An alert counts as delivered only once the broker has it. One raised while the broker is
/// down (an escalation, which needs no incoming message) must still reach the grid workers
/// after the broker comes back, even when the gateway is restarted meanwhile (here: a clean
/// stop with Ctrl-C).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_raised_during_a_broker_outage_survives_a_gateway_restart() {
    let started = Instant::now();
    support::init_logs();
    let mut mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let mut config = GatewayConfig::new(&data, Broker::External(mosquitto.addr()));
    config
        .set("broker.client_id", "firegrid-e2e-outage")
        .set("engine.escalation_s", vec![1, 600]);
    let mut gw = Binary::launch(config, dir.path()).await;
    let site = gw.api.create_district().await;
    gw.api.install_device("hz-0042", site).await;
    let observer = Mqtt::connect(mosquitto.addr(), "e2e-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let device = Mqtt::connect(mosquitto.addr(), "hz-0042").await;
    device
        .publish(&event_topic("hz-0042"), leakage_alarm(1))
        .await;
    until("the opened alert", DEADLINE, || {
        (!observer.alerts().is_empty()).then_some(())
    })
    .await;
    drop((observer, device));

    // The broker goes away; the escalation after 1 s comes while it is away.
    mosquitto.kill();
    let api = gw.api;
    until_async(
        "/healthz to notice the broker is gone",
        DEADLINE,
        || async { (api.request("GET", "/healthz", None).await.status == 503).then_some(()) },
    )
    .await;
    let store = data.join("firegrid.db");
    let escalation = until_async("the notifier's attempt at the escalation", DEADLINE, || {
        let store = store.clone();
        async move {
            let conn = rusqlite::Connection::open_with_flags(
                &store,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .ok()?;
            conn.query_row(
                "SELECT id, attempts, delivered_ms FROM notifications \
                 WHERE kind = 'escalated' AND attempts > 0",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                },
            )
            .ok()
        }
    })
    .await;
    let stop_took = gw.interrupt().await;
    assert_eq!(
        escalation.2, None,
        "the escalation (notification {}) was marked delivered at {:?} while the broker was down: \
         pipeline::notifier journals Delivered once BrokerHandle::publish has queued the alert \
         on the urgent link, so it is never sent again and the stop loses it",
        escalation.0, escalation.2
    );

    // The broker comes back (empty: no persistence), then the gateway.
    mosquitto.restart().await.expect("mosquitto restarts");
    let observer = Mqtt::connect(mosquitto.addr(), "e2e-observer-2").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    gw.restart().await;
    // A failed attempt is retried 1 s later and the outbox is swept every second: it comes.
    let what = format!(
        "the level-1 escalation raised during the outage, after the restart (its notification \
         (id, attempts, delivered_ms) = {escalation:?}; if it was marked delivered while the \
         broker was down, no restart sends it again)"
    );
    let arrived = until(&what, DEADLINE, || {
        observer
            .alerts()
            .into_iter()
            .find(|a| a["what"] == "escalated" && a["level"] == 1)
    })
    .await;
    gw.interrupt().await;
    eprintln!(
        "broker outage: escalation notification (id, attempts, delivered_ms) = {escalation:?} \
         while the broker was down; graceful stop without a broker {:.0} ms; escalated alert \
         after the restart: {}; test {:.2} s",
        stop_took.as_secs_f64() * 1e3,
        arrived,
        started.elapsed().as_secs_f64()
    );
}

// ---- 4. the configuration commands -------------------------------------------------------------

/// `firegrid check-config` names file, line and column of an unknown key and exits 2;
/// `firegrid run` refuses the same file the same way; `print-default-config` checks clean and
/// is the default configuration.
#[test]
fn check_config_points_at_an_unknown_key_and_the_default_config_checks() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"x\"\n\n[broker]\nmode = \"external\"\n  listen_adr = \"127.0.0.1:1\"\n",
    )
    .expect("written");
    let firegrid = || std::process::Command::new(Binary::path());

    let out = firegrid()
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("firegrid runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!("{}:5:3: unknown field `listen_adr`", bad.display());
    assert!(stderr.starts_with(&want), "want {want:?}, got {stderr:?}");

    let out = firegrid()
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .expect("firegrid runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&want));

    let out = firegrid()
        .arg("print-default-config")
        .output()
        .expect("firegrid runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(text, DEFAULT_CONFIG);
    let good = dir.path().join("default.toml");
    std::fs::write(&good, &text).expect("written");
    let out = firegrid()
        .arg("check-config")
        .arg(&good)
        .output()
        .expect("firegrid runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok\n", good.display())
    );
    assert_eq!(
        Config::load(&good).expect("it loads"),
        Config::default(),
        "the printed defaults are the defaults"
    );
}
