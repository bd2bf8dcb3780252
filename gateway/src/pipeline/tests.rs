//! The shell around the planner, in a whole gateway (`app::run` in this process, the
//! embedded broker, a real store file) with a device on MQTT: what a failed journal commit
//! leaves behind.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::Config;
use crate::model::{DeviceKind, DeviceState};
use crate::store::faults;
use crate::store::{
    Actor, AreaFields, AreaLevel, DeviceFields, EpisodeFilter, SiteFields, Store, WireEncoding,
};
use firegrid_protocols::message::{ChannelConfig, Config as DeviceConfig};
use firegrid_protocols::thresholds::Threshold;
use firegrid_protocols::{DeviceId, GridId};

/// The longest one step waits.
const DEADLINE: Duration = Duration::from_secs(10);

const T0: u64 = 1_764_403_200_000;

fn gid(s: &str) -> GridId {
    GridId::new(s).expect("a valid grid id")
}

/// A district d1 → street s1 → grid cell g1, a site in it and the in-service monitor `d-1`.
fn registry(store: &Store) {
    let actor = || Actor::new("tester", T0);
    for (id, parent, level) in [
        ("d1", None, AreaLevel::District),
        ("s1", Some("d1"), AreaLevel::Street),
        ("g1", Some("s1"), AreaLevel::Grid),
    ] {
        store
            .create::<AreaFields>(
                gid(id),
                &AreaFields {
                    parent_id: parent.map(gid),
                    level,
                    name: format!("area {id}"),
                },
                actor(),
            )
            .expect("an area");
    }
    let site = store
        .create::<SiteFields>(
            (),
            &SiteFields {
                name: "Building 7".into(),
                address: "12 Wenyi Rd".into(),
                owner_name: None,
                owner_phone: None,
                area_id: gid("g1"),
            },
            actor(),
        )
        .expect("a site");
    let channels = [
        ChannelConfig {
            channel: 0,
            enabled: true,
            threshold: Threshold::ResidualMa(300),
            delay_s: 10,
        },
        ChannelConfig {
            channel: 1,
            enabled: true,
            threshold: Threshold::TempDc(850),
            delay_s: 0,
        },
    ];
    store
        .create::<DeviceFields>(
            DeviceId::new("d-1").expect("a valid device id"),
            &DeviceFields {
                kind: DeviceKind::ElectricalFireMonitor,
                state: DeviceState::InService,
                site_id: Some(site.id),
                room_id: None,
                circuit_id: None,
                grid_id: Some(gid("g1")),
                config: DeviceConfig {
                    version: 1,
                    report_interval_s: 60,
                    heartbeat_interval_s: 60,
                    buzzer: true,
                    relay_trip: false,
                    channels: channels.into_iter().collect(),
                },
                encoding: WireEncoding::Json,
                credential_hash: None,
            },
            actor(),
        )
        .expect("a device");
}

/// What the device's MQTT client received: (topic, JSON).
async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, what: &str) -> (String, Value) {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
        .unwrap_or_else(|| panic!("the device's client stopped before {what}"))
}

/// Receives until `done` says so; returns everything received.
async fn receive_until(
    rx: &mut mpsc::UnboundedReceiver<(String, Value)>,
    what: &str,
    seen: &mut Vec<(String, Value)>,
    done: impl Fn(&[(String, Value)]) -> bool,
) {
    while !done(seen) {
        seen.push(next(rx, what).await);
    }
}

fn acks_of(seen: &[(String, Value)], seq: u64) -> usize {
    seen.iter()
        .filter(|(t, m)| {
            t.ends_with("/ack")
                && m["seqs"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s.as_u64() == Some(seq)))
        })
        .count()
}

fn alerts_on(seen: &[(String, Value)], channel: u64) -> Vec<&Value> {
    seen.iter()
        .filter(|(t, m)| {
            t.starts_with("firegrid/v1/alert/") && m["channel"].as_u64() == Some(channel)
        })
        .map(|(_, m)| m)
        .collect()
}

/// The journal's commits on a store held (a slow disk) while this lives; released however the
/// test ends, since a held writer would outlive it.
struct HeldCommits(std::path::PathBuf);

impl HeldCommits {
    fn new(path: &std::path::Path) -> Self {
        faults::hold_journal_commits(path, true);
        Self(path.to_path_buf())
    }
}

impl Drop for HeldCommits {
    fn drop(&mut self) {
        faults::hold_journal_commits(&self.0, false);
    }
}

/// A whole gateway (`app::run` in this process, an outside Mosquitto, a store with the
/// registry of [`registry`]) and device `d-1` on MQTT, subscribed to its acks and to every
/// alert; what it receives comes out of `rx`.
struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    _mosquitto: firegrid_testkit::Mosquitto,
    cancel: CancellationToken,
    gateway: tokio::task::JoinHandle<Result<(), app::AppError>>,
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    device: tokio::task::JoinHandle<()>,
    /// The HTTP API (its `/metrics` is open on loopback).
    api: std::net::SocketAddr,
}

impl Rig {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        let path = data.join("firegrid.db");
        {
            let (store, _) = Store::open(&path).expect("a fresh store");
            registry(&store);
        }
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config {
            data_dir: data,
            ..Config::default()
        };
        config.api.listen = any;
        // An open Mosquitto: this test is about the journal, not about logins.
        let mosquitto = firegrid_testkit::Mosquitto::start()
            .await
            .expect("mosquitto starts");
        config.broker.mode = crate::broker::settings::BrokerMode::External;
        config.broker.external.host = "127.0.0.1".into();
        config.broker.external.port = mosquitto.port();
        let cancel = CancellationToken::new();
        let (ready, running) = oneshot::channel();
        let gateway = tokio::spawn(app::run(config, cancel.clone(), Some(ready)));
        let running = tokio::time::timeout(DEADLINE, running)
            .await
            .expect("the gateway starts in time")
            .expect("the gateway says where it runs");
        assert_eq!(running.store, path);
        let api = running.api;
        let mqtt = mosquitto.addr();

        // The device: subscribed to its acks and to the alerts of its grid cell.
        let (client, mut events) = AsyncClient::new(
            MqttOptions::new("d-1", mqtt.ip().to_string(), mqtt.port()),
            64,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = oneshot::channel();
        let device = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            let mut subacks = 0;
            while let Ok(event) = events.poll().await {
                match event {
                    Event::Incoming(Packet::SubAck(_)) => {
                        subacks += 1;
                        if subacks == 2
                            && let Some(s) = subscribed_tx.take()
                        {
                            let _ = s.send(());
                        }
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        let json = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        if tx.send((p.topic.clone(), json)).is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        });
        client
            .subscribe("firegrid/v1/dev/d-1/ack", QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        client
            .subscribe("firegrid/v1/alert/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        tokio::time::timeout(DEADLINE, subscribed)
            .await
            .expect("subscribed in time")
            .expect("subscribed");

        Self {
            _dir: dir,
            path,
            _mosquitto: mosquitto,
            cancel,
            gateway,
            client,
            rx,
            device,
            api,
        }
    }

    /// The count of one refusal reason in the gateway's `/metrics` (0 before the first).
    async fn refusals(&self, reason: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.api))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a body");
        let series = format!("firegrid_refusals_total{{reason=\"{reason}\"}}");
        firegrid_testkit::metrics::metric(&text, &series).unwrap_or(0.0)
    }

    async fn publish_event(&self, body: &str) {
        self.client
            .publish("firegrid/v1/dev/d-1/event", QoS::AtLeastOnce, false, body)
            .await
            .expect("publish queued");
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(DEADLINE, self.gateway)
            .await
            .expect("the gateway stops in time")
            .expect("the gateway task did not panic")
            .expect("the gateway stopped cleanly");
        self.device.abort();
    }
}

/// Disk full at the commit of an alarm (twice: the broker's redelivery finds it full too),
/// then space again: the redelivered event opens exactly one episode, under one alert id,
/// acknowledged once — nothing of the failed commits lives on in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_commit_that_fails_then_succeeds_gives_one_episode_one_alert_id_and_one_ack() {
    let mut rig = Rig::start().await;
    // The disk is full for the next two journal commits.
    faults::fail_journal_commits(&rig.path, 2);
    rig.client
        .publish(
            "firegrid/v1/dev/d-1/event",
            QoS::AtLeastOnce,
            false,
            r#"{"seq":1043,"ts":1764403260000,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        )
        .await
        .expect("publish queued");
    let mut seen = Vec::new();
    receive_until(
        &mut rig.rx,
        "the ack of 1043 after the disk had room again",
        &mut seen,
        |s| acks_of(s, 1043) >= 1 && !alerts_on(s, 0).is_empty(),
    )
    .await;
    assert_eq!(
        faults::failed_journal_commits(&rig.path),
        2,
        "both commits failed"
    );

    // A later alarm on another channel, once acked and alerted, shows that everything before
    // it has been handled.
    rig.client
        .publish(
            "firegrid/v1/dev/d-1/event",
            QoS::AtLeastOnce,
            false,
            r#"{"seq":1044,"up_ms":86461000,"kind":"alarm_raised","ch":1,"temp_dc":873,"threshold_dc":850}"#,
        )
        .await
        .expect("publish queued");
    receive_until(&mut rig.rx, "the ack and alert of 1044", &mut seen, |s| {
        acks_of(s, 1044) >= 1 && !alerts_on(s, 1).is_empty()
    })
    .await;

    assert_eq!(acks_of(&seen, 1043), 1, "one ack: {seen:?}");
    // The alarm went out before each commit, the failed ones included (a full disk does not
    // keep it from the grid worker): the same alert each time, one alert id, one episode.
    let alerts = alerts_on(&seen, 0);
    assert!(
        alerts.len() >= 3,
        "before each of the 3 commits: {alerts:?}"
    );
    for a in &alerts {
        assert_eq!(
            (&a["what"], &a["alert_id"], &a["episode"]),
            (
                &alerts[0]["what"],
                &alerts[0]["alert_id"],
                &alerts[0]["episode"]
            ),
            "one alert id, one episode: {alerts:?}"
        );
    }
    assert_eq!(alerts[0]["what"], "opened");
    let alert_id = alerts[0]["alert_id"].as_i64().expect("an alert id");

    let (store, _) = Store::open(&rig.path).expect("the store opens beside the gateway");
    let episodes = store
        .episodes(&EpisodeFilter {
            device: Some(DeviceId::new("d-1").expect("a valid device id")),
            ..EpisodeFilter::default()
        })
        .expect("episodes");
    let on_channel_0: Vec<_> = episodes
        .iter()
        .filter(|e| e.key.channel == Some(0))
        .collect();
    assert_eq!(on_channel_0.len(), 1, "one episode: {episodes:?}");
    assert_eq!(alerts[0]["episode"].as_u64(), Some(on_channel_0[0].id));
    let notifications = store
        .notifications_of(on_channel_0[0].id)
        .expect("notifications");
    let ids: Vec<i64> = notifications.iter().map(|n| n.id).collect();
    assert_eq!(ids, [alert_id], "one notification, the alert's id");
    assert_eq!(
        store
            .device_events(&DeviceId::new("d-1").expect("a valid device id"), None, 100)
            .map(|e| e.len())
            .ok(),
        Some(2),
        "1043 and 1044 journaled once each"
    );

    rig.stop().await;
}

/// A slow disk: the journal's commit of one alarm does not return. Another alarm of the
/// device, after it, still reaches the grid worker at once — planned and published while the
/// first commit is in flight — and neither is acknowledged before the disk has written them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_goes_out_while_the_commit_before_it_is_still_in_flight() {
    let mut rig = Rig::start().await;
    let release = HeldCommits::new(&rig.path);
    let mut seen = Vec::new();
    for (seq, body) in [
        (
            1043,
            r#"{"seq":1043,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        ),
        (
            1044,
            r#"{"seq":1044,"up_ms":86461000,"kind":"alarm_raised","ch":1,"temp_dc":873,"threshold_dc":850}"#,
        ),
        // Behind a commit in flight and a plan queued after it: the pipeline does not wait
        // for either.
        (
            1045,
            r#"{"seq":1045,"up_ms":86462000,"kind":"alarm_raised","ch":2,"temp_dc":874,"threshold_dc":850}"#,
        ),
    ] {
        rig.client
            .publish("firegrid/v1/dev/d-1/event", QoS::AtLeastOnce, false, body)
            .await
            .expect("publish queued");
        let ch = seq - 1043;
        receive_until(
            &mut rig.rx,
            "the alarm's alert, its commit held",
            &mut seen,
            |s| !alerts_on(s, ch).is_empty(),
        )
        .await;
    }
    assert_eq!(
        (
            acks_of(&seen, 1043),
            acks_of(&seen, 1044),
            acks_of(&seen, 1045)
        ),
        (0, 0, 0),
        "nothing acked before the commit: {seen:?}"
    );
    drop(release);
    receive_until(&mut rig.rx, "every ack once written", &mut seen, |s| {
        (1043..=1045).all(|seq| acks_of(s, seq) >= 1)
    })
    .await;
    rig.stop().await;
}

/// The device resends two alarms whose journal commits are still under way (one in flight, one
/// queued behind it): each resend is a duplicate (counted as one), raises nothing, and once the
/// disk has written them each alarm is one episode with one alert, acknowledged (again for the
/// resend).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_of_an_event_whose_commit_is_under_way_is_a_duplicate() {
    let mut rig = Rig::start().await;
    let release = HeldCommits::new(&rig.path);
    let alarms = [
        r#"{"seq":2001,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
        r#"{"seq":2002,"up_ms":86461000,"kind":"alarm_raised","ch":1,"temp_dc":873,"threshold_dc":850}"#,
    ];
    let mut seen = Vec::new();
    for (ch, body) in (0..).zip(alarms) {
        rig.publish_event(body).await;
        receive_until(&mut rig.rx, "the alarm's early alert", &mut seen, |s| {
            !alerts_on(s, ch).is_empty()
        })
        .await;
    }
    assert_eq!(rig.refusals("duplicate").await, 0.0);
    // The first commit is held (in flight), the second plan queued behind it: resend both.
    for body in alarms {
        rig.publish_event(body).await;
    }
    firegrid_testkit::until_async("both resends refused as duplicates", DEADLINE, || async {
        (rig.refusals("duplicate").await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(
        rig.refusals("duplicate").await,
        2.0,
        "one refusal per resend"
    );
    drop(release);
    receive_until(&mut rig.rx, "two acks of each alarm", &mut seen, |s| {
        acks_of(s, 2001) >= 2 && acks_of(s, 2002) >= 2
    })
    .await;
    for ch in [0, 1] {
        let alerts = alerts_on(&seen, ch);
        assert_eq!(alerts.len(), 1, "one alert on channel {ch}: {alerts:?}");
    }
    let (store, _) = Store::open(&rig.path).expect("the store opens beside the gateway");
    let episodes = store.episodes(&EpisodeFilter::default()).expect("episodes");
    assert_eq!(episodes.len(), 2, "one episode per alarm: {episodes:?}");
    rig.stop().await;
}
