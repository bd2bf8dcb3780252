//! The GB/T 26875.3 uplink end to end on the real binaries: `firegrid` reporting to
//! `firegrid-sim centre`, devices of `firegrid-sim run` raising a leakage alarm and a smoke
//! alarm. What the centre logged (every frame decoded, with the time it arrived and its answer)
//! is what a fire brigade's centre would have seen.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use firegrid_e2e::{BrokerSetup, Centre, Gateway, Sim, WAIT, metric, tail, until};
use serde_json::Value;

/// The district: a leakage alarm in room a-1-1-1 and smoke in a-1-1-2 two seconds in.
const SCENARIO: &str = r#"name = "uplink"
[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 5
alarm_delay_s = 1

[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 2

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
"#;

const LEAKAGE: &str = "a-1-1-1-m";
const SMOKE: &str = "a-1-1-2-s";

fn uplink(centre: SocketAddr, extra: &str) -> String {
    format!(
        "[uplink.gb26875]\nenabled = true\naddress = \"{centre}\"\ncentre_address = 88888\n\
         own_address = 889\nheartbeat_s = 3600\n{extra}\n"
    )
}

/// Type-2 frames reporting a fire of `device` (its id opens the description).
fn fire_frames(frames: &[Value], device: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| {
            let o = &f["frame"]["adu"]["objects"][0];
            f["frame"]["adu"]["type"] == 2
                && o["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(device))
                && o["status_bits"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|x| x == "fire"))
        })
        .cloned()
        .collect()
}

fn confirmed(frames: &[Value]) -> Option<Value> {
    frames.iter().find(|f| f["answer"] == "confirm").cloned()
}

/// The episode's start (when the gateway received the device's event), ms.
async fn started_ms(gateway: &Gateway, device: &str, category: &str) -> u64 {
    gateway
        .episodes("open=true")
        .await
        .iter()
        .find(|e| e["device"] == device && e["category"] == category)
        .and_then(|e| e["started_ms"].as_u64())
        .unwrap_or_else(|| panic!("an open {category} episode of {device}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leakage_and_smoke_reach_the_centre_as_confirmed_type_2_frames_within_10_s() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    // The centre also checks who is on duty and syncs the clock every second, its clock 5 s
    // ahead.
    let centre = Centre::start(
        dir,
        &[
            "--duty-check-every-s",
            "1",
            "--clock-sync-every-s",
            "1",
            "--clock-ahead-s",
            "5",
        ],
    )
    .await;
    let gateway = Gateway::start(
        dir,
        BrokerSetup::Managed,
        &uplink(centre.addr, "analog_interval_s = 2"),
    )
    .await;
    let mut sim = Sim::start(dir, SCENARIO, &gateway, &["--backoff-base-ms", "200"]);
    sim.until_connected(4, WAIT).await;

    let (leak, smoke) = until("both alarms confirmed by the centre", WAIT, || {
        let frames = centre.frames();
        Some((
            confirmed(&fire_frames(&frames, LEAKAGE))?,
            confirmed(&fire_frames(&frames, SMOKE))?,
        ))
    })
    .await;
    let o = &leak["frame"]["adu"]["objects"][0];
    assert_eq!(
        o["component_type"], 17,
        "a residual-current detector: {leak}"
    );
    assert_eq!(o["system_type"], 1, "{leak}");
    assert_eq!(leak["frame"]["command_name"], "send");
    assert_eq!(leak["frame"]["source"], 889);
    assert_eq!(leak["frame"]["destination"], 88888);
    assert_eq!(
        smoke["frame"]["adu"]["objects"][0]["component_type"], 40,
        "{smoke}"
    );
    // From the gateway receiving the device's event to the centre receiving the frame.
    let mut worst = 0;
    for (frame, device, category) in [(&leak, LEAKAGE, "alarm"), (&smoke, SMOKE, "smoke")] {
        let started = started_ms(&gateway, device, category).await;
        let at = frame["recv_ms"].as_u64().expect("recv_ms");
        let latency = at.saturating_sub(started);
        eprintln!("{device} {category}: event → centre {latency} ms");
        assert!(
            latency < 10_000,
            "{device}: {latency} ms (GB 26875.1: within 10 s)"
        );
        worst = worst.max(latency);
    }
    eprintln!("worst event → centre latency: {worst} ms");
    // Every frame was new: nothing had to be sent twice.
    assert!(centre.frames().iter().all(|f| f["duplicate"] == false));
    // Readings follow as type-3 analog values: leakage in mA (user-defined type 128).
    let component = o["component_address"].as_u64().expect("an address");
    let analog = until("the leakage reading as an analog value", WAIT, || {
        centre.frames().into_iter().find_map(|f| {
            let objects = f["frame"]["adu"]["objects"].as_array()?.clone();
            (f["frame"]["adu"]["type"] == 3)
                .then(|| {
                    objects.into_iter().find(|o| {
                        o["component_address"] == component
                            && o["analog_type"] == 128
                            && o["value"].as_i64().unwrap_or(0) >= 300
                    })
                })
                .flatten()
        })
    })
    .await;
    eprintln!("leakage as an analog value: {analog}");
    // The duty check and the clock sync were confirmed; the offset is recorded (the gateway's
    // clock is not moved).
    let deadline = std::time::Instant::now() + WAIT;
    let m = loop {
        let m = gateway.metrics().await;
        if metric(&m, "firegrid_uplink_duty_checks_total").unwrap_or(0.0) >= 1.0
            && metric(&m, "firegrid_uplink_clock_offset_ms").is_some_and(|o| o != 0.0)
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no duty check or clock sync: {m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        metric(&m, "firegrid_uplink_duty_checks_total").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    let offset = metric(&m, "firegrid_uplink_clock_offset_ms").unwrap_or(0.0);
    assert!(
        (3_900.0..=6_100.0).contains(&offset),
        "clock offset {offset} ms, the centre is 5 s ahead"
    );
    assert!(metric(&m, "firegrid_uplink_frames_total{what=\"confirmed\"}").unwrap_or(0.0) >= 2.0);
    assert_eq!(
        metric(&m, "firegrid_uplink_link_fault"),
        Some(0.0),
        "{}",
        tail(&gateway.process.log(), 20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_frames_are_sent_three_times_then_the_link_fault_is_reported() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    // The centre says nothing to the first three data frames.
    let centre = Centre::start(dir, &["--no-confirm", "3"]).await;
    let gateway = Gateway::start(
        dir,
        BrokerSetup::Managed,
        &uplink(
            centre.addr,
            "confirm_timeout_ms = 1000\ntries = 3\nanalog_interval_s = 0",
        ),
    )
    .await;
    let mut sim = Sim::start(dir, SCENARIO, &gateway, &["--backoff-base-ms", "200"]);
    sim.until_connected(4, WAIT).await;

    let frames = until("a fire frame confirmed after the silence", WAIT, || {
        let f = centre.frames();
        let data: Vec<Value> = f
            .iter()
            .filter(|x| x["frame"]["command_name"] == "send")
            .cloned()
            .collect();
        (data.len() >= 4 && data[3]["answer"] == "confirm").then_some(data)
    })
    .await;
    // The first alarm frame: three sends on the first connection, the same bytes each time,
    // one timeout apart; then, on a new connection, the same frame again, confirmed.
    let first = &frames[0];
    for (i, f) in frames[..4].iter().enumerate() {
        assert_eq!(f["hex"], first["hex"], "send {} is the same frame", i + 1);
        assert_eq!(f["duplicate"], i > 0, "{f}");
    }
    assert_eq!(frames[0]["frame"]["adu"]["type"], 2);
    let conns: Vec<u64> = frames[..4]
        .iter()
        .map(|f| f["conn"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(conns[..3], [conns[0]; 3]);
    assert!(
        conns[3] > conns[0],
        "reconnected after the third send: {conns:?}"
    );
    let at: Vec<u64> = frames[..4]
        .iter()
        .map(|f| f["recv_ms"].as_u64().unwrap_or(0))
        .collect();
    for gap in [at[1] - at[0], at[2] - at[1]] {
        assert!(
            (900..3_000).contains(&gap),
            "retransmitted after {gap} ms (timeout 1000 ms)"
        );
    }
    eprintln!(
        "retransmissions after {} and {} ms",
        at[1] - at[0],
        at[2] - at[1]
    );
    // The link fault is reported to the centre once it works again (type 21, bit 5), then the
    // state now; and on the gateway (log, /metrics).
    let statuses = until("the link fault reported to the centre", WAIT, || {
        let s: Vec<Value> = centre
            .frames()
            .into_iter()
            .filter(|f| f["frame"]["adu"]["type"] == 21)
            .map(|f| f["frame"]["adu"]["objects"][0]["status_bits"].clone())
            .collect();
        (s.len() >= 2).then_some(s)
    })
    .await;
    assert!(
        statuses[0]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x == "link_fault")),
        "{statuses:?}"
    );
    assert!(
        statuses[1]
            .as_array()
            .is_some_and(|b| b.iter().all(|x| x != "link_fault")),
        "{statuses:?}"
    );
    assert!(gateway.process.log().contains("LINK TO THE CENTRE FAULTY"));
    let m = gateway.metrics().await;
    assert!(
        metric(&m, "firegrid_uplink_link_faults_total").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    assert!(
        metric(&m, "firegrid_uplink_frames_total{what=\"retransmitted\"}").unwrap_or(0.0) >= 2.0
    );
    // Both alarms arrive in the end, each as one event.
    until("both alarms confirmed", WAIT, || {
        let f = centre.frames();
        Some((
            confirmed(&fire_frames(&f, LEAKAGE))?,
            confirmed(&fire_frames(&f, SMOKE))?,
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_unconfirmed_at_a_kill_9_are_sent_after_the_restart_and_none_twice_as_new() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    // A centre that never confirms: the alarms stay in the uplink's journal.
    let mut centre = Centre::start(dir, &["--no-confirm", "1000000"]).await;
    let mut gateway = Gateway::start(
        dir,
        BrokerSetup::Managed,
        &uplink(
            centre.addr,
            "confirm_timeout_ms = 1000\nanalog_interval_s = 0",
        ),
    )
    .await;
    let mut sim = Sim::start(dir, SCENARIO, &gateway, &["--backoff-base-ms", "200"]);
    sim.until_connected(4, WAIT).await;
    until(
        "both alarms journaled for the centre, unconfirmed",
        WAIT,
        || {
            let text = std::fs::read_to_string(dir.join("firegrid-1.log")).unwrap_or_default();
            let f = centre.frames();
            // One frame outstanding at a time: the first alarm goes again and again, the second
            // waits in the journal.
            (text.matches("frame journaled for the centre").count() >= 2
                && fire_frames(&f, LEAKAGE).len() + fire_frames(&f, SMOKE).len() >= 2)
                .then_some(())
        },
    )
    .await;

    gateway.process.kill9();
    centre.restart(&[]).await;
    gateway.restart().await;

    let after = until("both alarms confirmed after the restart", WAIT, || {
        let f: Vec<Value> = centre
            .frames()
            .into_iter()
            .filter(|f| f["start"] == 2)
            .collect();
        Some((
            confirmed(&fire_frames(&f, LEAKAGE))?,
            confirmed(&fire_frames(&f, SMOKE))?,
        ))
    })
    .await;
    eprintln!(
        "after the restart: {} and {}",
        after.0["hex"], after.1["hex"]
    );
    // Every fire frame the centre ever got, before and after: one serial number and one ADU per
    // alarm, so the centre has two events, not more.
    let all = centre.frames();
    let mut events: BTreeMap<&str, BTreeSet<(u64, String)>> = BTreeMap::new();
    for device in [LEAKAGE, SMOKE] {
        for f in fire_frames(&all, device) {
            let serial = f["frame"]["serial"].as_u64().unwrap_or(u64::MAX);
            let adu = serde_json::to_string(&f["frame"]["adu"]).unwrap_or_default();
            events.entry(device).or_default().insert((serial, adu));
        }
    }
    for (device, e) in &events {
        assert_eq!(
            e.len(),
            1,
            "{device} reached the centre as {} different events: {e:?}",
            e.len()
        );
    }
    assert_eq!(events.len(), 2);
    let before = [LEAKAGE, SMOKE]
        .iter()
        .find_map(|d| fire_frames(&all, d).into_iter().find(|f| f["start"] == 1))
        .expect("an alarm frame reached the first centre");
    assert!(
        before["hex"] == after.0["hex"] || before["hex"] == after.1["hex"],
        "sent again byte for byte: {before}"
    );
    // Confirmed once each after the restart, nothing resent after that.
    let second: Vec<Value> = all.into_iter().filter(|f| f["start"] == 2).collect();
    assert_eq!(
        fire_frames(&second, LEAKAGE).len(),
        1,
        "{}",
        tail(&gateway.process.log(), 30)
    );
    assert_eq!(fire_frames(&second, SMOKE).len(), 1);
    // The gauge is sampled: wait for it to say that nothing is left unconfirmed.
    let started = std::time::Instant::now();
    loop {
        let m = gateway.metrics().await;
        match metric(&m, "firegrid_uplink_unconfirmed_frames") {
            Some(0.0) => break,
            n => assert!(
                started.elapsed() < WAIT,
                "frames still unconfirmed after {WAIT:?}: {n:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
