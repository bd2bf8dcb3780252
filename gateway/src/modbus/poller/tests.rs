use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::modbus::decode::decode;
use crate::modbus::profile::Profile;
use firegrid_protocols::message::Reading;

const T0: UnixMs = 1_764_403_200_000; // 2025-11-29

fn id(s: &str) -> DeviceId {
    s.parse().unwrap()
}

/// A device's holding registers; unmapped addresses read 0.
#[derive(Clone, Default)]
struct Regs(HashMap<u16, u16>);

impl Regs {
    /// 41.2 mA leakage, 25.0 °C everywhere, all normal, set-points 300 mA / 85 °C.
    fn normal() -> Self {
        let mut r = Self::default();
        r.set(0x00, 412);
        for a in 1..=4 {
            r.set(a, 750);
            r.set(0x20 + a, 1350);
        }
        r.set(0x20, 300);
        r
    }
    fn set(&mut self, a: u16, v: u16) {
        self.0.insert(a, v);
    }
    fn answer(&self, op: &Op) -> Outcome {
        match op {
            Op::Read(b) => Outcome::Words(
                (b.start..b.start + b.count)
                    .map(|a| self.0.get(&a).copied().unwrap_or(0))
                    .collect(),
            ),
            Op::Write(_) => Outcome::Written,
        }
    }
}

fn schedule(name: &str, slave: u8) -> DeviceSchedule {
    DeviceSchedule {
        id: id(name),
        slave,
        profile: Arc::new(Profile::builtin()),
        interval_ms: 1000,
        used_seq: 0,
        restored: Vec::new(),
    }
}

fn poller(n: usize) -> Poller {
    let devices = (0..n)
        .map(|i| schedule(&format!("mb-{i}"), u8::try_from(i + 1).unwrap()))
        .collect();
    Poller::new(devices, PollerConfig::default(), T0)
}

/// Runs requests at `now` until the bus is idle, answering each device from `regs[device]`
/// (or with `fail` for devices in `failing`).
fn run(p: &mut Poller, now: UnixMs, regs: &[Regs], failing: &[(usize, Outcome)]) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(r) = p.next_request(now) {
        let outcome = failing
            .iter()
            .find(|(d, _)| *d == r.device)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| regs[r.device].answer(&r.op));
        out.extend(p.handle(Input::Done { id: r.id, outcome }, now));
    }
    out
}

fn uplinks(out: &[Output]) -> Vec<(String, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Uplink { device, message } => Some((device.to_string(), message.clone())),
            _ => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<EventKind> {
    uplinks(out)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Event(e) => Some(e.kind),
            _ => None,
        })
        .collect()
}

fn telemetry(out: &[Output], device: &str) -> Vec<Reading> {
    uplinks(out)
        .into_iter()
        .filter(|(d, _)| d == device)
        .filter_map(|(_, m)| match m {
            Message::Telemetry(t) => Some(t.readings.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_cycle_reads_the_four_blocks_and_reports_a_heartbeat_then_readings() {
    let mut p = poller(1);
    let mut requests = Vec::new();
    let mut out = Vec::new();
    while let Some(r) = p.next_request(T0) {
        requests.push(r.op.clone());
        out.extend(p.handle(
            Input::Done {
                id: r.id,
                outcome: Regs::normal().answer(&r.op),
            },
            T0,
        ));
    }
    let starts: Vec<(u16, u16)> = requests
        .iter()
        .map(|op| match op {
            Op::Read(b) => (b.start, b.count),
            Op::Write(_) => panic!("no write asked for"),
        })
        .collect();
    assert_eq!(starts, [(0x00, 5), (0x10, 5), (0x20, 5), (0x30, 6)]);
    let up = uplinks(&out);
    assert!(
        matches!(up[0].1, Message::Status(Status::Online(_))),
        "{up:?}"
    );
    let r = telemetry(&out, "mb-0");
    assert_eq!(r[0].residual_ma, Some(41), "0.1 mA raw 412 is 41 mA");
    assert_eq!(r[1].temp_dc, Some(250));
    assert_eq!(r.len(), 5);
    assert!(events(&out).is_empty());
    // Nothing more until the next period.
    assert_eq!(p.next_request(T0 + 999), None);
    assert_eq!(p.next_deadline(), Some(T0 + 1000));
    assert!(p.next_request(T0 + 1000).is_some());
}

#[test]
fn state_code_changes_become_alarm_and_fault_events_once() {
    let mut p = poller(1);
    let mut regs = Regs::normal();
    run(&mut p, T0, &[regs.clone()], &[]);
    regs.set(0x00, 4120);
    regs.set(0x10, 1);
    let out = run(&mut p, T0 + 1000, &[regs.clone()], &[]);
    let level = Level {
        quantity: Quantity::ResidualCurrent,
        value: 412,
        threshold: 300,
    };
    assert_eq!(events(&out), [EventKind::AlarmRaised { channel: 0, level }]);
    // Still in alarm: no second event.
    assert!(events(&run(&mut p, T0 + 2000, &[regs.clone()], &[])).is_empty());
    regs.set(0x10, 0);
    regs.set(0x00, 100);
    regs.set(0x12, 5); // probe open on channel 2
    let out = run(&mut p, T0 + 3000, &[regs.clone()], &[]);
    let cleared = Level { value: 10, ..level };
    use firegrid_protocols::channel::FaultCause::LeadOpen;
    assert_eq!(
        events(&out),
        [
            EventKind::AlarmCleared {
                channel: 0,
                level: cleared
            },
            EventKind::Fault {
                channel: 2,
                cause: LeadOpen
            }
        ]
    );
    // A channel in fault reports no reading.
    assert!(telemetry(&out, "mb-0").iter().all(|r| r.channel != 2));
    regs.set(0x12, 0);
    let out = run(&mut p, T0 + 4000, &[regs], &[]);
    assert_eq!(
        events(&out),
        [EventKind::FaultCleared {
            channel: 2,
            cause: LeadOpen
        }]
    );
}

#[test]
fn an_unknown_state_code_is_reported_and_never_read_as_normal() {
    let mut p = poller(1);
    let mut regs = Regs::normal();
    regs.set(0x10, 1);
    run(&mut p, T0, &[regs.clone()], &[]);
    regs.set(0x10, 4); // a temperature code on the residual channel
    let out = run(&mut p, T0 + 1000, &[regs], &[]);
    assert!(
        events(&out).is_empty(),
        "the alarm is not cleared by garbage"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::UnknownStateCode {
            channel: 0,
            code: 4,
            ..
        }
    )));
}

#[test]
fn a_silent_device_goes_offline_once_and_comes_back_once() {
    let mut p = poller(1);
    let regs = [Regs::normal()];
    run(&mut p, T0, &regs, &[]);
    let mut offline = 0;
    let mut reconnects = 0;
    for k in 1..=10u64 {
        let out = run(&mut p, T0 + k * 1000, &regs, &[(0, Outcome::Timeout)]);
        offline += uplinks(&out)
            .iter()
            .filter(|(_, m)| *m == Message::Status(Status::Offline))
            .count();
        reconnects += out.iter().filter(|o| **o == Output::Reconnect).count();
        if k == 2 {
            assert_eq!(offline, 0, "not offline before 3 failures");
        }
    }
    assert_eq!(offline, 1);
    assert_eq!(reconnects, 10, "every timeout forces a reconnect");
    let mut online = 0;
    for k in 11..=13u64 {
        let out = run(&mut p, T0 + k * 1000, &regs, &[]);
        online += uplinks(&out)
            .iter()
            .filter(|(_, m)| matches!(m, Message::Status(Status::Online(_))))
            .count();
    }
    assert_eq!(
        online, 1,
        "one heartbeat on recovery, the next only after heartbeat_ms"
    );
}

#[test]
fn a_late_reply_is_never_taken_as_the_answer_to_a_later_request() {
    // Two devices; device 0's first block times out and its reply comes late, while the
    // request to device 1 is outstanding.
    let mut p = poller(2);
    let mut regs = vec![Regs::normal(), Regs::normal()];
    regs[1].set(0x00, 9990);
    let first = p.next_request(T0).unwrap();
    assert_eq!(first.device, 0);
    let out = p.handle(
        Input::Done {
            id: first.id,
            outcome: Outcome::Timeout,
        },
        T0,
    );
    assert_eq!(out, [Output::Reconnect]);
    let second = p.next_request(T0).unwrap();
    assert_eq!(second.device, 1);
    // The late reply of device 0, reported with its own (stale) id, is refused.
    let out = p.handle(
        Input::Done {
            id: first.id,
            outcome: regs[0].answer(&first.op),
        },
        T0,
    );
    assert_eq!(out, [Output::Reconnect]);
    // Device 1's own reply is still taken, and its values are its own.
    let out = p.handle(
        Input::Done {
            id: second.id,
            outcome: regs[1].answer(&second.op),
        },
        T0,
    );
    assert!(out.is_empty());
    let out = run(&mut p, T0, &regs, &[]);
    assert_eq!(telemetry(&out, "mb-1")[0].residual_ma, Some(999));
    assert!(telemetry(&out, "mb-0").is_empty());
}

#[test]
fn a_reply_of_the_wrong_size_aborts_the_cycle() {
    let mut p = poller(1);
    let r = p.next_request(T0).unwrap();
    let out = p.handle(
        Input::Done {
            id: r.id,
            outcome: Outcome::Words(vec![1, 2]),
        },
        T0,
    );
    assert_eq!(out, [Output::Reconnect]);
    assert_eq!(
        p.next_request(T0),
        None,
        "the next try waits for the period"
    );
}

#[test]
fn an_exception_is_data_and_keeps_the_device_alive() {
    let mut p = poller(1);
    let regs = [Regs::normal()];
    run(&mut p, T0, &regs, &[]);
    for k in 1..=5 {
        let out = run(&mut p, T0 + k * 1000, &regs, &[(0, Outcome::Exception(2))]);
        assert_eq!(
            out,
            [Output::Exception {
                device: id("mb-0"),
                code: 2
            }]
        );
    }
}

#[test]
fn sequence_numbers_increase_and_survive_a_restart() {
    let mut p = poller(1);
    let mut regs = Regs::normal();
    let mut seqs = Vec::new();
    for k in 0..20u64 {
        regs.set(0x10, u16::from(k % 2 == 1));
        for (_, m) in uplinks(&run(&mut p, T0 + k * 1000, &[regs.clone()], &[])) {
            match m {
                Message::Event(e) => seqs.push(e.seq),
                Message::Telemetry(t) => seqs.push(t.seq),
                Message::Status(Status::Online(h)) => seqs.push(h.seq),
                _ => {}
            }
        }
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // A restart right after: the new poller starts above everything used.
    let mut q = poller(1);
    let out = run(&mut q, T0 + 20_000, &[regs], &[]);
    let first = match &uplinks(&out)[0].1 {
        Message::Status(Status::Online(h)) => h.seq,
        m => panic!("{m:?}"),
    };
    assert!(first > *seqs.last().unwrap());

    // A device polled faster than the clock floor advances: after a restart the numbers go
    // on above what the store holds.
    let ahead = seq_floor(T0 + 20_000) + 1_000_000;
    let mut s = schedule("mb-0", 1);
    s.used_seq = ahead;
    let mut r = Poller::new(vec![s], PollerConfig::default(), T0 + 20_000);
    let out = run(&mut r, T0 + 20_000, &[Regs::normal()], &[]);
    let first = match &uplinks(&out)[0].1 {
        Message::Status(Status::Online(h)) => h.seq,
        m => panic!("{m:?}"),
    };
    assert_eq!(first, ahead + 1);
}

#[test]
fn a_config_is_written_before_the_next_poll_and_acknowledged() {
    let mut p = poller(1);
    let regs = [Regs::normal()];
    run(&mut p, T0, &regs, &[]);
    let mut config = firegrid_protocols::message::Config {
        version: 3,
        report_interval_s: 60,
        heartbeat_interval_s: 300,
        buzzer: true,
        relay_trip: false,
        channels: heapless::Vec::new(),
    };
    config
        .channels
        .push(firegrid_protocols::message::ChannelConfig {
            channel: 0,
            enabled: true,
            threshold: firegrid_protocols::thresholds::Threshold::ResidualMa(200),
            delay_s: 5,
        })
        .unwrap();
    assert!(
        p.handle(
            Input::Configure {
                device: id("mb-0"),
                config
            },
            T0 + 10
        )
        .is_empty()
    );
    let w = p.next_request(T0 + 10).unwrap();
    assert_eq!(
        w.op,
        Op::Write(Write {
            kind: RegisterKind::Holding,
            address: 0x20,
            words: vec![200]
        })
    );
    let out = p.handle(
        Input::Done {
            id: w.id,
            outcome: Outcome::Written,
        },
        T0 + 10,
    );
    assert!(out.is_empty());
    let out = run(&mut p, T0 + 10, &regs, &[]);
    assert_eq!(events(&out), [EventKind::ConfigApplied { version: 3 }]);
}

proptest! {
    /// Whatever the wire delivers, in whatever order, the poller neither panics nor sends
    /// more than one offline status per run of failures.
    #[test]
    fn any_outcomes_never_panic(steps in proptest::collection::vec((0u8..6, any::<u16>(), 0usize..8), 0..200)) {
        let mut p = poller(2);
        let mut now = T0;
        for (what, word, len) in steps {
            now += 137;
            let Some(r) = p.next_request(now) else { continue };
            let outcome = match what {
                0 => Outcome::Words(vec![word; len]),
                1 => Outcome::Exception(u8::try_from(word % 256).unwrap()),
                2 => Outcome::Timeout,
                3 => Outcome::Transport,
                4 => Outcome::Written,
                _ => match &r.op { Op::Read(b) => Outcome::Words(vec![word; usize::from(b.count)]), Op::Write(_) => Outcome::Written },
            };
            let id = if what == 5 && word % 7 == 0 { r.id + 1 } else { r.id };
            let _ = p.handle(Input::Done { id, outcome }, now);
        }
    }

    /// Decoding any words through the built-in profile never panics.
    #[test]
    fn decode_never_panics(words in proptest::collection::vec(proptest::collection::vec(any::<u16>(), 0..8), 0..6)) {
        let p = poller(1);
        let d = &p.devices[0];
        let _ = decode(&d.spec.profile, &d.blocks, &words);
    }
}

#[test]
fn after_a_restart_open_episodes_are_continued_or_ended_by_the_first_poll() {
    use firegrid_protocols::channel::FaultCause::{LeadOpen, SensorError};
    let mut s = schedule("mb-0", 1);
    s.restored = vec![
        (0, ChannelState::Alarm),
        (1, ChannelState::Alarm),
        (2, ChannelState::Fault(SensorError)),
    ];
    let mut p = Poller::new(vec![s], PollerConfig::default(), T0);
    let mut regs = Regs::normal();
    regs.set(0x11, 4); // channel 1 still over temperature
    regs.set(0x12, 5); // channel 2 still in fault, now known: probe open
    let out = run(&mut p, T0, &[regs.clone()], &[]);
    // Channel 0's alarm cleared while the gateway was down: it ends now; the others go on.
    let kinds = events(&out);
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert!(
        matches!(kinds[0], EventKind::AlarmCleared { channel: 0, .. }),
        "{kinds:?}"
    );
    regs.set(0x12, 0);
    let out = run(&mut p, T0 + 1000, &[regs], &[]);
    assert_eq!(
        events(&out),
        [EventKind::FaultCleared {
            channel: 2,
            cause: LeadOpen
        }]
    );
}

#[test]
fn a_configuration_re_sends_the_alarm_a_device_shows() {
    // In alarm since before it was registered: its alarm_raised was refused then.
    let mut p = poller(1);
    let mut regs = Regs::normal();
    regs.set(0x00, 4120);
    regs.set(0x10, 1);
    let first = events(&run(&mut p, T0, &[regs.clone()], &[]));
    assert_eq!(first.len(), 1);
    let config = firegrid_protocols::message::Config {
        version: 2,
        report_interval_s: 60,
        heartbeat_interval_s: 300,
        buzzer: true,
        relay_trip: false,
        channels: heapless::Vec::new(),
    };
    let out = p.handle(
        Input::Configure {
            device: id("mb-0"),
            config,
        },
        T0 + 10,
    );
    assert_eq!(events(&out)[0], first[0], "the same alarm, told again");
}
