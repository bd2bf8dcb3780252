//! A simulated district on the real binaries: `firegrid` (the gateway) and `firegrid-sim`
//! (devices running the real firmware), on the managed broker (every device logs in with its own credential) and on an external Mosquitto.
//! Every test registers its district through the API (as the simulator does for a user), plays
//! incidents, and checks what a grid worker's phone (an MQTT subscriber on the alert topic) and
//! the API show.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use firegrid_e2e::{
    BrokerSetup, Gateway, Mosquitto, Sim, WAIT, Worker, metric, tail, until, user_add,
};
use firegrid_simulator::provision::Api;
use reqwest::Method;
use serde_json::Value;

/// Devices that report and beat often, decide after 1 s.
const FAST_DEVICES: &str = r#"
[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 5
alarm_delay_s = 1
"#;

/// Distinct alert ids per (episode, what): a crash may resend an alert, never under a new id.
fn alert_ids(alerts: &[Value]) -> BTreeMap<(u64, String), BTreeSet<u64>> {
    let mut m: BTreeMap<(u64, String), BTreeSet<u64>> = BTreeMap::new();
    for a in alerts {
        if let (Some(e), Some(w), Some(id)) = (
            a["episode"].as_u64(),
            a["what"].as_str(),
            a["alert_id"].as_u64(),
        ) {
            m.entry((e, w.to_owned())).or_default().insert(id);
        }
    }
    m
}

fn assert_no_alert_twice(alerts: &[Value]) {
    for ((episode, what), ids) in alert_ids(alerts) {
        assert_eq!(
            ids.len(),
            1,
            "episode {episode} has {what} alerts under several ids: {ids:?}"
        );
    }
}

async fn leakage_and_smoke_reach_the_grid_worker(broker: BrokerSetup, dir: &std::path::Path) {
    let gateway = Gateway::start(dir, broker, "").await;
    let worker = Worker::subscribe(gateway.tools, "worker-a-1", gateway.tool_login.as_ref()).await;
    let scenario = format!(
        r#"name = "e2e alarm flow"
{FAST_DEVICES}
[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 3

[[incident]]
what = "leakage_creep"
at_s = 2
room = "a-1-1-1"
ma_per_min = 1e6
max_ma = 450

[[incident]]
what = "smoke"
at_s = 2
room = "a-1-1-2"
for_s = 600
"#
    );
    let mut sim = Sim::start(dir, &scenario, &gateway, &["--backoff-base-ms", "200"]);
    sim.until_connected(6, WAIT).await;

    let alarm = worker
        .until_alert("the leakage alarm's alert", "opened", "alarm", "a-1-1-1-m")
        .await;
    assert_eq!(alarm["area"], "a-1", "{alarm}");
    assert_eq!(alarm["channel"], 0, "{alarm}");
    assert_eq!(alarm["quantity"], "residual_current", "{alarm}");
    assert!(alarm["value"].as_i64().unwrap_or(0) >= 300, "{alarm}");
    let smoke = worker
        .until_alert("the smoke alert", "opened", "smoke", "a-1-1-2-s")
        .await;
    assert_eq!(smoke["area"], "a-1", "{smoke}");

    // The monitoring centre sees both as open episodes; nothing else happened.
    let open = gateway.episodes("open=true").await;
    let open: BTreeSet<(String, String)> = open
        .iter()
        .map(|e| {
            (
                e["device"].as_str().unwrap_or_default().to_owned(),
                e["category"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        open,
        BTreeSet::from([
            ("a-1-1-1-m".to_owned(), "alarm".to_owned()),
            ("a-1-1-2-s".to_owned(), "smoke".to_owned()),
        ]),
        "{}",
        tail(&sim.process.log(), 10)
    );
    assert_no_alert_twice(&worker.alerts());

    // People: the grid worker of cell a-1 (made with `firegrid user add` while the gateway
    // runs) sees both; one of another cell sees none; no token, no answer.
    let base = format!("http://{}", gateway.api_addr);
    let as_user = |area: &str, name: &str| {
        let token = user_add(gateway.config(), name, "grid_worker", Some(area));
        Api::new(&base, &token).expect("an HTTP client")
    };
    let open_of = |api: Api| async move {
        match api.call(Method::GET, "episodes?open=true", None).await {
            Ok(Some(Value::Array(a))) => a.len(),
            other => panic!("episodes: {other:?}"),
        }
    };
    assert_eq!(open_of(as_user("a-1", "wang")).await, 2);
    assert_eq!(open_of(as_user("b-9", "zhao")).await, 0);
    let refused = Api::new(&base, "not-a-token")
        .expect("an HTTP client")
        .call(Method::GET, "episodes", None)
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("401"), "{refused}");

    // Every event the devices sent was acknowledged end to end.
    sim.until_all_acked().await;
    // Readings of the district are stored (telemetry, not only events).
    let stored = metric(
        &gateway.metrics().await,
        "firegrid_ingest_messages_total{kind=\"telemetry\"}",
    );
    assert!(
        stored.unwrap_or(0.0) > 0.0,
        "telemetry ingested: {stored:?}"
    );
    assert!(
        sim.process.interrupt().await,
        "firegrid-sim stops cleanly on Ctrl-C"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leakage_alarm_and_smoke_reach_the_grid_worker_on_the_managed_broker() {
    let dir = tempfile::tempdir().expect("a temp dir");
    leakage_and_smoke_reach_the_grid_worker(BrokerSetup::Managed, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leakage_alarm_and_smoke_reach_the_grid_worker_through_mosquitto() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    leakage_and_smoke_reach_the_grid_worker(BrokerSetup::External(mosquitto.addr()), dir.path())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_outage_gives_offline_episodes_then_every_buffered_alarm_once() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gateway = Gateway::start(
        dir.path(),
        BrokerSetup::Managed,
        "[engine]\noffline_grace_s = 1\n",
    )
    .await;
    let worker =
        Worker::subscribe(gateway.tools, "worker-outage", gateway.tool_login.as_ref()).await;
    // Street b loses its network from +4 s to +16 s; during the outage one of its circuits
    // goes into alarm and one of its rooms fills with smoke. Street a is not touched.
    let scenario = format!(
        r#"name = "e2e outage"
{FAST_DEVICES}
[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 2
smoke_alarms = false

[[street]]
id = "b"
name = "B Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 2

[[incident]]
what = "network_outage"
at_s = 4
street = "b"
for_s = 12

[[incident]]
what = "leakage_creep"
at_s = 8
room = "b-1-1-1"
ma_per_min = 1e6
max_ma = 450

[[incident]]
what = "smoke"
at_s = 9
room = "b-1-1-2"
for_s = 600
"#
    );
    // Keep-alive 2 s: the broker notices the silent devices within 3 s.
    let mut sim = Sim::start(
        dir.path(),
        &scenario,
        &gateway,
        &["--keep-alive-s", "2", "--backoff-base-ms", "200"],
    );
    sim.until_connected(6, WAIT).await;
    let b_devices = ["b-1-1-1-m", "b-1-1-1-s", "b-1-1-2-m", "b-1-1-2-s"];

    // Every device of street b goes offline, and comes back.
    for d in b_devices {
        worker
            .until_alert(&format!("{d} offline"), "opened", "offline", d)
            .await;
    }
    for d in b_devices {
        worker
            .until_alert(&format!("{d} back online"), "ended", "offline", d)
            .await;
    }
    // The alarm and the smoke raised during the outage arrive once the link returns.
    worker
        .until_alert("the buffered leakage alarm", "opened", "alarm", "b-1-1-1-m")
        .await;
    worker
        .until_alert("the buffered smoke alarm", "opened", "smoke", "b-1-1-2-s")
        .await;
    sim.until_all_acked().await;

    let alerts = worker.alerts();
    // Once each: one episode per (device, category), one opened alert per episode.
    let mut opened: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a["what"] == "opened") {
        *opened
            .entry((
                a["device"].as_str().unwrap_or_default().to_owned(),
                a["category"].as_str().unwrap_or_default().to_owned(),
            ))
            .or_default() += 1;
    }
    for d in b_devices {
        assert_eq!(
            opened.get(&(d.to_owned(), "offline".to_owned())),
            Some(&1),
            "{opened:?}"
        );
    }
    assert_eq!(
        opened.get(&("b-1-1-1-m".into(), "alarm".into())),
        Some(&1),
        "{opened:?}"
    );
    assert_eq!(
        opened.get(&("b-1-1-2-s".into(), "smoke".into())),
        Some(&1),
        "{opened:?}"
    );
    // Street a never went offline.
    assert!(
        !opened.keys().any(|(d, _)| d.starts_with("a-")),
        "street a was not touched: {opened:?}"
    );
    assert_no_alert_twice(&alerts);
    // The gateway journaled the buffered alarm once: one alarm episode for the device.
    let episodes = gateway.episodes("device=b-1-1-1-m").await;
    let alarms = episodes.iter().filter(|e| e["category"] == "alarm").count();
    assert_eq!(alarms, 1, "{episodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_raised_while_the_broker_is_down_arrive_after_its_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let gateway = Gateway::start(dir.path(), BrokerSetup::External(mosquitto.addr()), "").await;
    let scenario = format!(
        r#"name = "e2e broker restart"
{FAST_DEVICES}
[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 2

[[incident]]
what = "leakage_creep"
at_s = 10
room = "a-1-1-1"
ma_per_min = 1e6
max_ma = 450

[[incident]]
what = "smoke"
at_s = 10
room = "a-1-1-2"
for_s = 600
"#
    );
    let mut sim = Sim::start(
        dir.path(),
        &scenario,
        &gateway,
        &["--backoff-base-ms", "200"],
    );
    sim.until_connected(4, WAIT).await;
    mosquitto.kill();
    assert!(
        !sim.process.log().contains("+10 s:"),
        "the incidents at +10 s began before the broker was down: this machine connected 4 \
         devices too late for the test"
    );
    // The incidents begin at +10 s on the simulator's clock, while the broker is down; the
    // devices decide within alarm_delay_s = 1 s plus one 500 ms sample: bring the broker back
    // three of the simulator's status lines (1 s apart, on the same clock) after the incidents
    // (a margin of 1.5 s), the devices offline all along.
    let status_lines = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(", connected "))
            .map(str::to_owned)
            .collect()
    };
    let at_incidents = until("the simulator's +10 s incident lines", WAIT, || {
        let log = sim.process.log();
        (log.contains("smoke in room a-1-1-2") && log.contains("room a-1-1-1 starts rising"))
            .then(|| status_lines(&log).len())
    })
    .await;
    let during = until("three status lines after the incidents", WAIT, || {
        let lines = status_lines(&sim.process.log());
        (lines.len() >= at_incidents + 3).then(|| lines[at_incidents..].to_vec())
    })
    .await;
    assert!(
        during.iter().all(|l| l.contains(", connected 0,")),
        "the devices were offline while their alarms were raised: {during:?}"
    );
    mosquitto.restart().await.expect("mosquitto restarts");
    let worker = Worker::subscribe(mosquitto.addr(), "worker-restart", None).await;
    // No session survived (no persistence): the worker subscribed after the restart, so the
    // alerts it sees were published after it.
    worker
        .until_alert(
            "the leakage alarm after the restart",
            "opened",
            "alarm",
            "a-1-1-1-m",
        )
        .await;
    worker
        .until_alert(
            "the smoke alarm after the restart",
            "opened",
            "smoke",
            "a-1-1-2-s",
        )
        .await;
    sim.until_all_acked().await;
    assert_no_alert_twice(&worker.alerts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_among_the_alarms_loses_no_alarm_and_gives_each_alert_one_id() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let mut gateway = Gateway::start(dir.path(), BrokerSetup::External(mosquitto.addr()), "").await;
    let worker = Worker::subscribe(mosquitto.addr(), "worker-crash", None).await;
    // Alarms every second from +8 s to +17 s in ten rooms; the gateway is killed in the middle.
    let mut scenario = format!(
        r#"name = "e2e kill -9"
{FAST_DEVICES}
[[street]]
id = "a"
name = "A Street"
cells = 2
sites_per_cell = 1
rooms_per_site = 5
"#
    );
    let rooms: Vec<String> = (1..=2)
        .flat_map(|c| (1..=5).map(move |r| format!("a-{c}-1-{r}")))
        .collect();
    for (i, room) in rooms.iter().enumerate() {
        let what = if i % 2 == 0 {
            "what = \"leakage_creep\"\nma_per_min = 1e6\nmax_ma = 450".to_owned()
        } else {
            "what = \"smoke\"\nfor_s = 600".to_owned()
        };
        scenario.push_str(&format!(
            "\n[[incident]]\n{what}\nat_s = {}\nroom = \"{room}\"\n",
            8 + i
        ));
    }
    let mut sim = Sim::start(
        dir.path(),
        &scenario,
        &gateway,
        &["--backoff-base-ms", "200"],
    );
    sim.until_connected(20, WAIT).await;
    // The simulator says each incident as it begins (on its clock): kill at the fifth (+12 s),
    // restart after the last (+17 s).
    let said = |room: &str| {
        let log = sim.process.log();
        log.lines()
            .any(|l| l.starts_with("firegrid-sim: +") && l.contains(&format!("room {room} ")))
            .then_some(())
    };
    until("the fifth incident (+12 s)", WAIT, || said(&rooms[4])).await;
    let killed_ms = firegrid_testkit::mqtt::now_ms();
    gateway.process.kill9();
    until("the last incident (+17 s)", WAIT, || said(&rooms[9])).await;
    gateway.restart().await;

    // Every alarm of every room: one episode, one opened alert (possibly resent with the same
    // id after the crash, never under two ids).
    let expected: Vec<(String, &str)> = rooms
        .iter()
        .enumerate()
        .map(|(i, room)| {
            if i % 2 == 0 {
                (format!("{room}-m"), "alarm")
            } else {
                (format!("{room}-s"), "smoke")
            }
        })
        .collect();
    for (device, category) in &expected {
        worker
            .until_alert(
                &format!("{category} of {device}"),
                "opened",
                category,
                device,
            )
            .await;
    }
    sim.until_all_acked().await;
    let alerts = worker.alerts();
    assert_no_alert_twice(&alerts);
    // An alert the crash left unmarked is sent again by the restarted gateway, under its id:
    // at most two copies (one kill).
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for a in &alerts {
        *copies
            .entry(a["alert_id"].as_u64().expect("an alert_id"))
            .or_default() += 1;
    }
    assert!(
        copies.values().all(|n| *n <= 2),
        "an alert received more than twice: {copies:?}"
    );
    let episodes = gateway.episodes("").await;
    for (device, category) in &expected {
        let n = episodes
            .iter()
            .filter(|e| e["device"] == device.as_str() && e["category"] == *category)
            .count();
        assert_eq!(n, 1, "{device} {category}: {n} episodes");
    }
    // The kill fell among the alarms: some were raised before it, some while it was down.
    let started: Vec<u64> = episodes
        .iter()
        .filter_map(|e| e["started_ms"].as_u64())
        .collect();
    assert!(
        started.iter().any(|t| *t < killed_ms) && started.iter().any(|t| *t > killed_ms),
        "the kill at {killed_ms} was not among the alarms: {started:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_devices_booting_at_once_after_a_power_cut_all_come_back() {
    // The devices' largest reconnect backoff window, and how long without any device coming
    // back means one is lost.
    const BACKOFF_CAP: Duration = Duration::from_secs(10);
    const STALL: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("a temp dir");
    // The judge of "all come back" is the broker (its log of connections) and the gateway, not
    // the simulator's counters.
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let gateway = Gateway::start(dir.path(), BrokerSetup::External(mosquitto.addr()), "").await;
    // 1000 rooms, a monitor and a smoke alarm each; the power goes at +40 s and returns at
    // +45 s to all 2000 at the same instant.
    let scenario = r#"name = "e2e power returns"
[devices]
sample_interval_ms = 10000
report_interval_s = 60
heartbeat_interval_s = 60

[[street]]
id = "p"
name = "P Street"
cells = 4
sites_per_cell = 5
rooms_per_site = 50

[[incident]]
what = "power_cut"
at_s = 40
street = "p"
for_s = 5
"#;
    let cap_ms = BACKOFF_CAP.as_millis().to_string();
    let sim = Sim::start(
        dir.path(),
        scenario,
        &gateway,
        &[
            "--boot-spread-ms",
            "0",
            "--threads",
            "2",
            "--backoff-cap-ms",
            &cap_ms,
        ],
    );
    // The devices (client ids `p-…`) the broker accepted in its log from `from` (bytes) on.
    let connected_since = |from: usize| -> BTreeSet<String> {
        let log = mosquitto.log();
        log.get(from..)
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split(" New client connected from ").nth(1))
            .filter_map(|rest| rest.split(" as ").nth(1))
            .filter_map(|rest| rest.split([' ', '.']).next())
            .filter(|id| id.starts_with("p-"))
            .map(str::to_owned)
            .collect()
    };
    // Where the broker's log stood when the simulator said the cut (looked at every 10 ms;
    // the power stays off 5 s, so no reconnection comes before it). On a busy machine the cut
    // can come before all 2000 have connected: then those that had are cut, and all 2000 boot
    // at the return, which is still the claim.
    let mut cut_at = None;
    let mut note_cut = || {
        if cut_at.is_none() && sim.process.log().contains("loses power") {
            cut_at = Some(mosquitto.log().len());
        }
        cut_at
    };
    let all_before_cut = until(
        "2000 devices connected or the power cut, as the broker's log and the simulator say",
        Duration::from_secs(240),
        || {
            let cut = note_cut();
            if connected_since(0).len() >= 2000 {
                Some(cut.is_none())
            } else {
                cut.map(|_| false)
            }
        },
    )
    .await;
    let up = Instant::now();
    let cut_at = until("the simulator's power-cut line", WAIT, &mut note_cut).await;
    eprintln!(
        "power cut: {}",
        if all_before_cut {
            "after all 2000 had connected"
        } else {
            "before all 2000 had connected (a busy machine)"
        }
    );
    // All come back: each device retries within its backoff window (at most BACKOFF_CAP), so
    // the count grows until it is 2000. Fails only when no device comes back for three such
    // windows — however slowly a busy machine lets them connect.
    let mut back = 0;
    while back < 2000 {
        back = until(
            &format!(
                "a device more than {back} of 2000 connected again after the cut, as the broker's \
                 log says (none for {STALL:?}; the devices retry at least every {BACKOFF_CAP:?})"
            ),
            STALL,
            || {
                let n = connected_since(cut_at).len();
                (n > back).then_some(n)
            },
        )
        .await;
    }
    let took = up.elapsed();
    // The gateway knows all 2000 and acknowledged every boot's events (acks are the gateway's
    // answers), having ingested at least as many events as the devices sent.
    let known = metric(&gateway.metrics().await, "firegrid_devices_known");
    assert_eq!(known, Some(2000.0), "devices known to the gateway");
    let status = until("every event acknowledged", WAIT, || {
        sim.status()
            .filter(|s| s.acks >= s.events && s.events >= 2000)
    })
    .await;
    let ingested = metric(
        &gateway.metrics().await,
        "firegrid_ingest_messages_total{kind=\"event\"}",
    )
    .unwrap_or(0.0);
    assert!(
        ingested >= status.events as f64,
        "the gateway ingested {ingested} events, the devices sent {}",
        status.events
    );
    eprintln!("{back} devices connected again {took:?} after the first all-connected");
}

/// Telemetry messages queued for the gateway ahead of the smoke in
/// [`smoke_does_not_wait_behind_a_telemetry_flood`]: many times what the gateway takes in while
/// an alarm crosses it, on any machine.
const BACKLOG: u64 = 30_000;

/// Publishes `count` telemetry messages (QoS 1) round robin as `devices`, then `last` (topic,
/// payload) on the same connection, and returns once the broker has acknowledged every one:
/// it then holds them all, `last` behind the telemetry.
async fn flood(
    broker: std::net::SocketAddr,
    devices: &[String],
    count: u64,
    last: (String, String),
) {
    use rumqttc::{Event, Packet, QoS};
    let mut options = rumqttc::MqttOptions::new("flood", broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1000);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
    let devices = devices.to_vec();
    let publisher = tokio::spawn(async move {
        for n in 0..count {
            let d = &devices[(n % devices.len() as u64) as usize];
            let seq = 1_000_000 + n / devices.len() as u64;
            let payload = format!(
                r#"{{"seq":{seq},"up_ms":{seq},"readings":[{{"ch":0,"residual_ma":{}}},{{"ch":1,"temp_dc":312}}]}}"#,
                20 + seq % 7
            );
            let topic = format!("firegrid/v1/dev/{d}/telemetry");
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .expect("the flood client takes a publish");
        }
        client
            .publish(last.0, QoS::AtLeastOnce, false, last.1)
            .await
            .expect("the flood client takes a publish");
        client
    });
    let mut acked = 0;
    while acked < count + 1 {
        let event = eventloop.poll().await;
        if let Event::Incoming(Packet::PubAck(_)) = event.expect("the flood connection stays up") {
            acked += 1;
        }
    }
    publisher
        .await
        .expect("the flood publisher")
        .disconnect()
        .await
        .ok();
}

/// An alarm overtakes telemetry queued ahead of it: with the gateway frozen (SIGSTOP), the
/// broker takes [`BACKLOG`] telemetry messages for it and then a smoke event; thawed, the
/// gateway must raise the smoke's alert before it has taken in that backlog. The backlog is
/// there by construction (the broker acknowledged it before the smoke, and the gateway takes
/// all of it in afterwards), so the verdict does not depend on how fast this machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_does_not_wait_behind_a_telemetry_flood() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Unbounded queues: Mosquitto would otherwise drop what a frozen subscriber has not taken.
    let mosquitto = Mosquitto::start_with("max_queued_messages 0\n")
        .await
        .expect("mosquitto starts");
    let gateway = Gateway::start(dir.path(), BrokerSetup::External(mosquitto.addr()), "").await;
    let worker = Worker::subscribe(mosquitto.addr(), "worker-flood", None).await;
    let scenario = format!(
        r#"name = "e2e flood"
{FAST_DEVICES}
[[street]]
id = "f"
name = "F Street"
cells = 1
sites_per_cell = 2
rooms_per_site = 10
"#
    );
    let mut sim = Sim::start(
        dir.path(),
        &scenario,
        &gateway,
        &["--backoff-base-ms", "200"],
    );
    sim.until_connected(40, WAIT).await;
    let monitors: Vec<String> = (1..=2)
        .flat_map(|s| (1..=10).map(move |r| format!("f-1-{s}-{r}-m")))
        .collect();
    let ingested = || async {
        metric(
            &gateway.metrics().await,
            "firegrid_ingest_messages_total{kind=\"telemetry\"}",
        )
        .unwrap_or(0.0)
    };
    let before = ingested().await;
    gateway.process.signal("STOP");
    let smoke = (
        "firegrid/v1/dev/f-1-2-7-s/event".to_owned(),
        r#"{"seq":1000000,"up_ms":1000000,"kind":"smoke"}"#.to_owned(),
    );
    flood(mosquitto.addr(), &monitors, BACKLOG, smoke).await;
    gateway.process.signal("CONT");
    let alert = worker
        .until_alert(
            "the smoke alert behind the backlog",
            "opened",
            "smoke",
            "f-1-2-7-s",
        )
        .await;
    // The simulator's own telemetry counts here too: it only makes the check stricter.
    let at_alert = ingested().await - before;
    firegrid_testkit::until_async(
        "the gateway to take in the whole backlog",
        Duration::from_secs(300),
        || async { (ingested().await - before >= BACKLOG as f64).then_some(()) },
    )
    .await;
    eprintln!(
        "{at_alert} telemetry messages taken in when the smoke alert arrived, of {BACKLOG} queued ahead of it"
    );
    assert!(
        at_alert < BACKLOG as f64,
        "the smoke alert waited behind the telemetry queued before it: {at_alert} of {BACKLOG} \
         taken in when it arrived (the ingest link's queue and the pipeline should put events first)"
    );
    let smoke = alert;
    assert_eq!(smoke["area"], "f-1");
    assert_no_alert_twice(&worker.alerts());
}
