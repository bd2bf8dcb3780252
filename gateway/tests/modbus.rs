//! Legacy monitors over Modbus, end to end: the gateway polls simulated monitors (this
//! project's simulator, over Modbus TCP and over RTU on a `socat` PTY pair) and an outside
//! server (PyPI's pymodbus), and their alarms and silences reach grid workers as alerts, like
//! an MQTT device's.
//!
//! No fixed ports and no sleeps to synchronise: servers bind port 0 (pymodbus gets a free
//! port and is polled for readiness while it is checked to be alive), and every wait polls a
//! condition with a deadline.

// Only part of the shared support is used here.
#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use firegrid_gateway::broker::Incoming;
use firegrid_gateway::ingest::classify;
use firegrid_gateway::modbus::bus::{self, Bus, Link};
use firegrid_gateway::modbus::poller::{DeviceSchedule, PollerConfig};
use firegrid_gateway::modbus::stats::{ModbusStats, RequestResult};
use firegrid_gateway::modbus::{DeviceEntry, ModbusConfig, Profile, RtuBus, TcpBus, probe};
use firegrid_gateway::protocols::message::{EventKind, Level, Message, Status};
use firegrid_simulator::modbus::{Fault, ModbusSim, SimMonitor, Slaves};
use firegrid_testkit::pymodbus::PyModbus;
use firegrid_testkit::socat::PtyPair;

use support::{DEADLINE, Gateway, Mqtt, summary, until, until_async};

/// The poller's request timeout in these tests: a healthy monitor on loopback or a PTY answers
/// within milliseconds, so 1 s is a margin of two orders of magnitude for a busy machine (a
/// healthy monitor timing out would make it go offline, which the tests check never happens).
const TIMEOUT: Duration = Duration::from_secs(1);

/// How late a misbehaving monitor answers: past [`TIMEOUT`] by half a second, which no
/// scheduling delay of the poller turns into an in-time answer.
const LATE: Duration = Duration::from_millis(1500);

const ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

// ---- a bus polled by itself ----------------------------------------------------------------------

/// One bus's poller running in this process, its messages collected.
struct Polled {
    rx: mpsc::Receiver<Incoming>,
    got: Vec<(String, Message)>,
    stats: Arc<ModbusStats>,
    name: String,
    cancel: CancellationToken,
}

impl Polled {
    fn start(link: Link, devices: &[(&str, u8)], timeout: Duration) -> Self {
        let devices = devices
            .iter()
            .map(|(id, slave)| DeviceSchedule {
                id: id.parse().expect("a device id"),
                slave: *slave,
                profile: Arc::new(Profile::builtin()),
                interval_ms: 100,
                used_seq: 0,
                restored: Vec::new(),
            })
            .collect();
        let name = link.name();
        let (tx, rx) = mpsc::channel(4096);
        // No set-point changes in these tests: the sender is dropped, the branch idles.
        let (_, config_rx) = mpsc::channel(1);
        let stats = Arc::new(ModbusStats::default());
        let cancel = CancellationToken::new();
        let b = Bus {
            link,
            devices,
            poller: PollerConfig::default(),
            timeout,
        };
        tokio::spawn(bus::run(b, tx, config_rx, stats.clone(), cancel.clone()));
        Self {
            rx,
            got: Vec::new(),
            stats,
            name,
            cancel,
        }
    }

    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            let (device, msg) =
                classify(&m.topic, &m.payload).expect("the poller's messages decode");
            self.got.push((device.to_string(), msg));
        }
    }

    fn count(&self, r: RequestResult) -> u64 {
        self.stats.bus(&self.name).count(r)
    }

    /// Residual-current readings of `device` so far.
    fn residuals(&self, device: &str) -> Vec<u32> {
        self.got
            .iter()
            .filter(|(d, _)| d == device)
            .filter_map(|(_, m)| match m {
                Message::Telemetry(t) => t.readings.iter().find_map(|r| r.residual_ma),
                _ => None,
            })
            .collect()
    }

    /// Waits until `done` holds: for at most ten poll cycles with a late monitor in them.
    async fn wait(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        until(what, DEADLINE + 10 * (TIMEOUT + LATE), || {
            self.drain();
            done(self).then_some(())
        })
        .await;
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

// ---- the tests -------------------------------------------------------------------------------

/// A late reply and a garbage frame from one monitor behind a converter: the poller times out,
/// reconnects, keeps polling the other monitor on the same bus, never attributes a value to
/// the wrong device, and polls the misbehaving one again once it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_and_garbage_neither_wedge_the_bus_nor_mix_up_devices() {
    let slaves = Slaves::new([(1, SimMonitor::new(41.0)), (2, SimMonitor::new(99.0))]);
    let sim = ModbusSim::tcp(ANY, slaves, 1.0).await.expect("a port");
    let mut p = Polled::start(
        Link::Tcp(sim.addr().expect("TCP").to_string()),
        &[("mb-a", 1), ("mb-b", 2)],
        TIMEOUT,
    );
    p.wait("both monitors' readings", |p| {
        !p.residuals("mb-a").is_empty() && !p.residuals("mb-b").is_empty()
    })
    .await;

    sim.slaves().set_fault(1, Fault::Late(LATE));
    let b_before = p.residuals("mb-b").len();
    p.wait(
        "timeouts on the late monitor, readings from the other",
        |p| p.count(RequestResult::Timeout) >= 3 && p.residuals("mb-b").len() >= b_before + 3,
    )
    .await;

    sim.slaves().set_fault(1, Fault::Garbage);
    let b_before = p.residuals("mb-b").len();
    p.wait("garbage counted, readings from the other", |p| {
        p.count(RequestResult::Garbage) >= 3 && p.residuals("mb-b").len() >= b_before + 3
    })
    .await;

    sim.slaves().set_fault(1, Fault::None);
    let a_before = p.residuals("mb-a").len();
    p.wait("the misbehaving monitor polled again", |p| {
        p.residuals("mb-a").len() >= a_before + 3
    })
    .await;

    let (a, b) = (p.residuals("mb-a"), p.residuals("mb-b"));
    assert!(
        a.iter().all(|v| *v == 41),
        "mb-a read only its own 41 mA: {a:?}"
    );
    assert!(
        b.iter().all(|v| *v == 99),
        "mb-b read only its own 99 mA: {b:?}"
    );
    // The faults made mb-a offline once and back once; mb-b never.
    let statuses = |d: &str| -> Vec<bool> {
        p.got
            .iter()
            .filter(|(id, _)| id == d)
            .filter_map(|(_, m)| match m {
                Message::Status(Status::Offline) => Some(false),
                Message::Status(Status::Online(_)) => Some(true),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        statuses("mb-b"),
        [true],
        "mb-b: one heartbeat at the start, never offline"
    );
    let a_status = statuses("mb-a");
    assert!(
        a_status.windows(2).all(|w| w[0] != w[1])
            && a_status.first() == Some(&true)
            && a_status.last() == Some(&true),
        "mb-a alternates online/offline and ends online: {a_status:?}"
    );
    eprintln!(
        "late/garbage: ok {} timeouts {} garbage {} (mb-a status {a_status:?})",
        p.count(RequestResult::Ok),
        p.count(RequestResult::Timeout),
        p.count(RequestResult::Garbage)
    );
}

/// The same on an RS-485 line (a `socat` PTY pair), where frames carry no transaction id: a
/// late reply is let arrive and discarded when the port is opened again, so it is never read
/// as the answer to the next request, to either monitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_on_an_rtu_line_is_discarded() {
    let pty = PtyPair::start().await;
    let slaves = Slaves::new([(1, SimMonitor::new(41.0)), (2, SimMonitor::new(99.0))]);
    let sim = ModbusSim::rtu(pty.b(), 9600, slaves, 1.0).expect("the PTY opens");
    let mut p = Polled::start(
        Link::Rtu {
            path: pty.a().to_owned(),
            baud: 9600,
        },
        &[("mb-a", 1), ("mb-b", 2)],
        TIMEOUT,
    );
    p.wait("both monitors' readings", |p| {
        !p.residuals("mb-a").is_empty() && !p.residuals("mb-b").is_empty()
    })
    .await;
    sim.slaves().set_fault(1, Fault::Late(LATE));
    let b_before = p.residuals("mb-b").len();
    p.wait(
        "timeouts on the late monitor, readings from the other",
        |p| p.count(RequestResult::Timeout) >= 2 && p.residuals("mb-b").len() >= b_before + 3,
    )
    .await;
    sim.slaves().set_fault(1, Fault::None);
    let a_before = p.residuals("mb-a").len();
    p.wait("the late monitor polled again", |p| {
        p.residuals("mb-a").len() >= a_before + 3
    })
    .await;
    let (a, b) = (p.residuals("mb-a"), p.residuals("mb-b"));
    assert!(
        a.iter().all(|v| *v == 41),
        "mb-a read only its own 41 mA: {a:?}"
    );
    assert!(
        b.iter().all(|v| *v == 99),
        "mb-b read only its own 99 mA: {b:?}"
    );
    let events: Vec<&Message> = p
        .got
        .iter()
        .map(|(_, m)| m)
        .filter(|m| matches!(m, Message::Event(_)))
        .collect();
    assert!(
        events.is_empty(),
        "no state change was read from a stale frame: {events:?}"
    );
}

/// Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0xFFFF_u16, |mut crc, b| {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
        crc
    })
}

/// The RTU inter-frame silence, observed on the wire: a slave of this test on the other end of
/// a PTY pair answers every read at once and timestamps the bytes; between the end of each of
/// its replies and the first byte of the gateway's next request lie at least 3.5 character
/// times (4.011 ms at 9600 baud). A PTY has no baud timing, so what is seen is the master's own
/// silence, a lower bound that no machine load can shorten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rtu_master_leaves_the_inter_frame_silence_on_the_wire() {
    const GAPS: usize = 30;
    let pty = PtyPair::start().await;
    let slave_end = pty.b().to_owned();
    let slave = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut port = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_end)
            .expect("the PTY's slave end opens");
        let (mut pending, mut buf) = (Vec::new(), [0u8; 256]);
        let (mut first_byte_at, mut replied_at) = (Instant::now(), None::<Instant>);
        let mut gaps = Vec::new();
        while gaps.len() < GAPS {
            let n = port.read(&mut buf).expect("the PTY reads");
            let now = Instant::now();
            if pending.is_empty() {
                first_byte_at = now;
            }
            pending.extend_from_slice(&buf[..n]);
            // Reads (function 3 or 4) are 8 bytes: slave, function, address, count, CRC.
            while pending.len() >= 8 {
                let frame: Vec<u8> = pending.drain(..8).collect();
                assert_eq!(
                    crc16(&frame[..6]).to_le_bytes(),
                    [frame[6], frame[7]],
                    "a whole request with its CRC: {frame:02x?}"
                );
                assert!(matches!(frame[1], 3 | 4), "a read: {frame:02x?}");
                if let Some(t) = replied_at {
                    gaps.push(first_byte_at.duration_since(t));
                }
                let count = usize::from(u16::from_be_bytes([frame[4], frame[5]]));
                let mut reply = vec![frame[0], frame[1], u8::try_from(2 * count).expect("≤ 125")];
                reply.resize(3 + 2 * count, 0);
                reply.extend_from_slice(&crc16(&reply).to_le_bytes());
                port.write_all(&reply).expect("the PTY writes");
                port.flush().expect("the PTY flushes");
                replied_at = Some(Instant::now());
                first_byte_at = Instant::now();
            }
        }
        gaps
    });
    let p = Polled::start(
        Link::Rtu {
            path: pty.a().to_owned(),
            baud: 9600,
        },
        &[("mb-a", 1), ("mb-b", 2)],
        TIMEOUT,
    );
    let mut gaps = within_deadline(slave).await;
    p.cancel.cancel();
    let silence = firegrid_gateway::modbus::rtu::inter_frame_gap(9600);
    gaps.sort_unstable();
    eprintln!(
        "RTU silences seen by the slave: {}",
        summary(&mut gaps.clone())
    );
    assert!(
        gaps[0] >= silence,
        "a request began {:?} after the previous reply ended, less than 3.5 characters \
         ({silence:?} at 9600 baud): {gaps:?}",
        gaps[0]
    );
    // Back-to-back frames were among them (reads of one poll), not only the 100 ms polling
    // interval: the check saw the silence itself.
    assert!(
        gaps[0] < Duration::from_millis(100),
        "no two frames closer than the polling interval: {gaps:?}"
    );
}

/// Awaits the slave thread (its observations) for at most four deadlines.
async fn within_deadline<T>(task: tokio::task::JoinHandle<T>) -> T {
    firegrid_testkit::within("the slave's observations", DEADLINE * 4, task)
        .await
        .expect("the slave thread did not panic")
}

/// An outside Modbus server (PyPI's pymodbus) holding the built-in profile: the poller reads
/// it, takes its alarm state code as an alarm, and `firegrid modbus probe` prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_pymodbus_server_is_polled_and_probed() {
    let Some(python) = firegrid_testkit::pymodbus::python() else {
        return;
    };
    let py = PyModbus::start(&python, 7, 4120, 1).await;
    let mut p = Polled::start(
        Link::Tcp(py.addr().to_string()),
        &[("py-1", 7)],
        Duration::from_millis(500),
    );
    p.wait("pymodbus's readings and alarm", |p| {
        !p.residuals("py-1").is_empty()
            && p.got.iter().any(|(_, m)| matches!(m, Message::Event(e) if matches!(e.kind, EventKind::AlarmRaised { .. })))
    })
    .await;
    assert_eq!(p.residuals("py-1")[0], 412);
    let raised: Vec<EventKind> = p
        .got
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Event(e) => Some(e.kind.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        raised,
        [EventKind::AlarmRaised {
            channel: 0,
            level: Level {
                quantity: firegrid_gateway::protocols::channel::Quantity::ResidualCurrent,
                value: 412,
                threshold: 300
            }
        }]
    );
    let temps: Vec<i16> = p
        .got
        .iter()
        .find_map(|(_, m)| match m {
            Message::Telemetry(t) => Some(t.readings.iter().filter_map(|r| r.temp_dc).collect()),
            _ => None,
        })
        .expect("telemetry");
    assert_eq!(temps, [250, 260, 270, 280]);
    drop(p);
    let table = probe::probe(
        &Link::Tcp(py.addr().to_string()),
        7,
        Arc::new(Profile::builtin()),
        Duration::from_secs(1),
    )
    .await
    .expect("the probe reads pymodbus");
    assert!(
        table.contains("412 mA") && table.contains("1 = Alarm") && table.contains("85.0 °C"),
        "{table}"
    );
}

/// The whole gateway: monitors behind a TCP converter, a lone TCP monitor, and an RTU monitor
/// on a PTY pair. Set-points changed through the API are written to a monitor; a leakage rise
/// on a TCP and on the RTU monitor each reaches the grid worker's alert topic; a silent
/// monitor becomes offline once and recovers once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_alerts_on_legacy_monitors_tcp_and_rtu() {
    let started = Instant::now();
    let converter = ModbusSim::tcp(
        ANY,
        Slaves::new([(1, SimMonitor::new(41.0)), (2, SimMonitor::new(99.0))]),
        1.0,
    )
    .await
    .expect("a port");
    let lone = ModbusSim::tcp(ANY, Slaves::new([(1, SimMonitor::new(20.0))]), 1.0)
        .await
        .expect("a port");
    let pty = PtyPair::start().await;
    let rtu = ModbusSim::rtu(
        pty.b(),
        9600,
        Slaves::new([(5, SimMonitor::new(30.0))]),
        1.0,
    )
    .expect("the PTY opens");
    let entry = |id: &str, slave: u8| DeviceEntry {
        id: id.into(),
        slave,
        profile: "typical-rcm-4t".into(),
        interval_ms: 100,
    };
    let modbus = ModbusConfig {
        timeout_ms: 200,
        tcp: vec![
            TcpBus {
                address: converter.addr().expect("TCP").to_string(),
                devices: vec![entry("mb-a", 1), entry("mb-b", 2)],
            },
            TcpBus {
                address: lone.addr().expect("TCP").to_string(),
                devices: vec![entry("mb-c", 1)],
            },
        ],
        rtu: vec![RtuBus {
            path: pty.a().to_owned(),
            baud: 9600,
            devices: vec![entry("mb-r", 5)],
        }],
        ..ModbusConfig::default()
    };
    let gw = Gateway::start(move |c| {
        c.modbus = modbus;
        c.engine.offline_grace_s = 0;
    })
    .await;
    let api = &gw.api;
    let observer = Mqtt::connect(gw.mqtt_v311(), "modbus-observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let site = api.create_district().await;
    for id in ["mb-a", "mb-b", "mb-c", "mb-r"] {
        api.install_device(id, site).await;
        // No alarm delay, and a set-point the monitor must learn from the gateway.
        api.put(
            &format!("/api/v1/devices/{id}/config"),
            json!({"channels": [{"ch": 0, "residual_ma": 250, "delay_s": 0}, {"ch": 1, "temp_dc": 850, "delay_s": 0}]}),
        )
        .await;
    }
    // The set-points reach the monitors' registers (through the poller, not MQTT).
    for (sim, slave) in [(&converter, 1), (&converter, 2), (&lone, 1), (&rtu, 5)] {
        until("the set-point written to the monitor", DEADLINE, || {
            sim.slaves()
                .with(slave, |s| {
                    s.monitor.setpoints[0] == 250 && s.monitor.alarm_delay_s == 0
                })
                .filter(|ok| *ok)
        })
        .await;
    }

    // A leakage rise on a TCP monitor and on the RTU monitor.
    converter
        .slaves()
        .with(1, |s| s.monitor.set_leakage_ma(412.0));
    rtu.slaves().with(5, |s| s.monitor.set_leakage_ma(380.0));
    let opened = |device: &'static str, category: &'static str| {
        let observer = &observer;
        move || {
            observer.alerts().into_iter().find(|a| {
                a["device"] == device && a["category"] == category && a["what"] == "opened"
            })
        }
    };
    let a = until("mb-a's leakage alert", DEADLINE, opened("mb-a", "alarm")).await;
    for (field, want) in [
        ("channel", json!(0)),
        ("area", json!("grid-7")),
        ("source", json!("device")),
        ("quantity", json!("residual_current")),
        ("value", json!(412)),
        ("threshold", json!(250)),
    ] {
        assert_eq!(a[field], want, "{field} in {a}");
    }
    let r = until(
        "mb-r's (RTU) leakage alert",
        DEADLINE,
        opened("mb-r", "alarm"),
    )
    .await;
    assert_eq!(
        (&r["value"], &r["threshold"]),
        (&json!(380), &json!(250)),
        "{r}"
    );

    // A silent monitor: offline once, back once.
    lone.slaves().set_fault(1, Fault::NoReply);
    until("mb-c's offline alert", DEADLINE, opened("mb-c", "offline")).await;
    lone.slaves().set_fault(1, Fault::None);
    until("mb-c's offline episode ending", DEADLINE, || {
        observer
            .alerts()
            .into_iter()
            .find(|a| a["device"] == "mb-c" && a["category"] == "offline" && a["what"] == "ended")
    })
    .await;
    // Some polls later, still exactly one episode, one opened and one ended alert.
    let polls = lone.slaves().with(1, |s| s.requests).unwrap_or(0);
    until("more polls of mb-c", DEADLINE, || {
        (lone.slaves().with(1, |s| s.requests).unwrap_or(0) >= polls + 20).then_some(())
    })
    .await;
    let episodes: Vec<Value> = until_async("mb-c's episodes", DEADLINE, || async {
        Some(api.episodes("device=mb-c&category=offline").await)
    })
    .await;
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0]["open"], false, "{episodes:?}");
    let offline_alerts: Vec<Value> = observer
        .alerts()
        .into_iter()
        .filter(|a| a["device"] == "mb-c" && a["category"] == "offline" && a["level"] == 0)
        .collect();
    let whats: Vec<&Value> = offline_alerts.iter().map(|a| &a["what"]).collect();
    assert_eq!(
        whats,
        [&json!("opened"), &json!("ended")],
        "{offline_alerts:?}"
    );
    // No alarm for the monitors that stayed below their set-point, and none offline but mb-c.
    let others: Vec<Value> = observer
        .alerts()
        .into_iter()
        .filter(|a| a["device"] == "mb-b" || (a["category"] == "offline" && a["device"] != "mb-c"))
        .collect();
    assert!(others.is_empty(), "{others:?}");

    let metrics = api.metrics().await;
    assert!(
        metrics.contains("firegrid_modbus_requests_total{bus=\"rtu:"),
        "per-bus counters at /metrics"
    );
    drop(gw);
    eprintln!(
        "legacy monitors through the gateway: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// A gateway restart: the leakage alarm that cleared while the gateway was down ends at the
/// first poll of the new gateway, and the monitor's messages are numbered above the old ones
/// (nothing refused as a duplicate). The monitor is in alarm before it is registered: its
/// alarm is told again when it is commissioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_ends_an_alarm_that_cleared_meanwhile_and_reuses_no_sequence_number() {
    let sim = ModbusSim::tcp(ANY, Slaves::new([(1, SimMonitor::new(412.0))]), 1.0)
        .await
        .expect("a port");
    let data = tempfile::tempdir().expect("a temp dir");
    let modbus = ModbusConfig {
        timeout_ms: 200,
        tcp: vec![TcpBus {
            address: sim.addr().expect("TCP").to_string(),
            devices: vec![DeviceEntry {
                id: "mb-x".into(),
                slave: 1,
                profile: "typical-rcm-4t".into(),
                interval_ms: 100,
            }],
        }],
        ..ModbusConfig::default()
    };
    let configure = |modbus: ModbusConfig, dir: PathBuf| {
        move |c: &mut firegrid_gateway::config::Config| {
            c.modbus = modbus;
            c.data_dir = dir;
        }
    };
    let gw = Gateway::start(configure(modbus.clone(), data.path().to_owned())).await;
    let observer = Mqtt::connect(gw.mqtt_v311(), "restart-observer-1").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let site = gw.api.create_district().await;
    gw.api.install_device("mb-x", site).await;
    let opened = until("mb-x's alarm", DEADLINE, || {
        observer
            .alerts()
            .into_iter()
            .find(|a| a["device"] == "mb-x" && a["category"] == "alarm" && a["what"] == "opened")
    })
    .await;
    // Some readings stored, then the gateway stops; meanwhile the leakage falls.
    let polls = sim.slaves().with(1, |s| s.requests).unwrap_or(0);
    until("more polls", DEADLINE, || {
        (sim.slaves().with(1, |s| s.requests).unwrap_or(0) >= polls + 12).then_some(())
    })
    .await;
    drop(observer);
    gw.stop().await;
    sim.slaves().with(1, |s| s.monitor.set_leakage_ma(20.0));

    let gw = Gateway::start(configure(modbus, data.path().to_owned())).await;
    let observer = Mqtt::connect(gw.mqtt_v311(), "restart-observer-2").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    let ended = until_async("the episode ended by the first poll", DEADLINE, || async {
        let e = gw.api.episodes("device=mb-x&category=alarm").await;
        (e.len() == 1 && e[0]["open"] == false).then_some(e)
    })
    .await;
    assert_eq!(ended[0]["id"], opened["episode"], "{ended:?}");
    let polls = sim.slaves().with(1, |s| s.requests).unwrap_or(0);
    until("more polls", DEADLINE, || {
        (sim.slaves().with(1, |s| s.requests).unwrap_or(0) >= polls + 12).then_some(())
    })
    .await;
    let metrics = gw.api.metrics().await;
    let refused: Vec<(String, f64)> = support::refusals(&metrics)
        .into_iter()
        .filter(|(_, n)| *n > 0.0)
        .collect();
    assert!(
        refused.is_empty(),
        "nothing refused after the restart: {refused:?}"
    );
    gw.stop().await;
}
