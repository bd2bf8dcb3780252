use firegrid_protocols::GridId;
use firegrid_protocols::channel::{FaultCause, Quantity};
use firegrid_protocols::message::ChannelConfig;

use super::*;

const S: u64 = 1_000;
const T0: u64 = 1_764_403_200_000;

fn dev(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

fn spec(id: &str) -> DeviceSpec {
    DeviceSpec {
        id: dev(id),
        grid: GridId::new("grid-7").unwrap(),
        channels: vec![
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
        ],
        heartbeat_interval_s: 60,
    }
}

fn engine() -> Engine {
    let mut e = Engine::new(EngineConfig::default(), 1);
    e.handle(Input::Upsert(spec("d1")), T0);
    e
}

fn residual(ma: u32) -> Reading {
    Reading {
        channel: 0,
        residual_ma: Some(ma),
        ..Reading::default()
    }
}

fn telemetry(id: &str, r: Reading) -> Input {
    Input::Telemetry {
        device: dev(id),
        readings: vec![r],
    }
}

fn alarm_event(value: i32) -> Input {
    Input::Event {
        device: dev("d1"),
        kind: EventKind::AlarmRaised {
            channel: 0,
            level: Level {
                quantity: Quantity::ResidualCurrent,
                value,
                threshold: 300,
            },
        },
        open_as: None,
    }
}

fn opened(out: &[Output]) -> Vec<(EpisodeId, Category, Source)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Opened {
                id, key, source, ..
            } => Some((*id, key.category, *source)),
            _ => None,
        })
        .collect()
}

fn ended(out: &[Output]) -> Vec<EpisodeId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Ended { id } => Some(*id),
            _ => None,
        })
        .collect()
}

/// Runs ticks at every deadline up to `until`, collecting outputs.
fn run_until(e: &mut Engine, until: u64) -> Vec<Output> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let Some(t) = e.next_deadline().filter(|t| *t <= until) else {
            return out;
        };
        out.extend(e.handle(Input::Tick, t));
    }
    panic!("deadlines do not advance: {:?}", e.next_deadline())
}

#[test]
fn a_burst_of_identical_alarm_events_is_one_episode() {
    let mut e = engine();
    let mut all = Vec::new();
    for i in 0..1000 {
        all.extend(e.handle(alarm_event(400), T0 + i));
    }
    assert_eq!(opened(&all), [(1, Category::Alarm, Source::Device)]);
    assert_eq!(all.len(), 1, "no peaks for equal values: {all:?}");
}

#[test]
fn gateway_detects_an_alarm_from_telemetry_after_the_delay() {
    let mut e = engine();
    assert!(e.handle(telemetry("d1", residual(350)), T0 + S).is_empty());
    assert_eq!(e.next_deadline(), Some(T0 + 11 * S));
    assert!(run_until(&mut e, T0 + 11 * S - 1).is_empty());
    let out = run_until(&mut e, T0 + 11 * S);
    assert_eq!(opened(&out), [(1, Category::Alarm, Source::Gateway)]);
    // A device event for the same channel merges into it; a higher value is a new peak.
    let out = e.handle(alarm_event(420), T0 + 12 * S);
    assert_eq!(
        out,
        [Output::Peak {
            id: 1,
            level: Level {
                quantity: Quantity::ResidualCurrent,
                value: 420,
                threshold: 300
            }
        }]
    );
}

#[test]
fn zero_delay_opens_on_the_first_sample() {
    let mut e = engine();
    let out = e.handle(
        telemetry(
            "d1",
            Reading {
                channel: 1,
                temp_dc: Some(900),
                ..Reading::default()
            },
        ),
        T0,
    );
    assert_eq!(opened(&out), [(1, Category::Alarm, Source::Gateway)]);
}

#[test]
fn gateway_detected_alarm_ends_after_the_hysteresis_hold() {
    let mut e = engine();
    e.handle(telemetry("d1", residual(350)), T0);
    run_until(&mut e, T0 + 10 * S);
    // In the hysteresis band (270..300): nothing ends.
    e.handle(telemetry("d1", residual(280)), T0 + 20 * S);
    assert!(ended(&run_until(&mut e, T0 + 100 * S)).is_empty());
    // Below 270 for the hold time: ends once.
    e.handle(telemetry("d1", residual(200)), T0 + 100 * S);
    assert!(ended(&run_until(&mut e, T0 + 129 * S)).is_empty());
    assert_eq!(ended(&run_until(&mut e, T0 + 130 * S)), [1]);
    assert!(ended(&e.handle(telemetry("d1", residual(100)), T0 + 200 * S)).is_empty());
}

#[test]
fn a_device_latched_alarm_ends_only_with_its_clear() {
    let mut e = engine();
    e.handle(alarm_event(400), T0);
    e.handle(telemetry("d1", residual(10)), T0 + S);
    assert!(ended(&run_until(&mut e, T0 + 100 * S)).is_empty());
    let clear = Input::Event {
        device: dev("d1"),
        kind: EventKind::AlarmCleared {
            channel: 0,
            level: Level {
                quantity: Quantity::ResidualCurrent,
                value: 10,
                threshold: 300,
            },
        },
        open_as: None,
    };
    assert_eq!(ended(&e.handle(clear.clone(), T0 + 101 * S)), [1]);
    assert!(
        e.handle(clear, T0 + 102 * S).is_empty(),
        "a repeated clear does nothing"
    );
    // A new alarm is a new episode.
    assert_eq!(
        opened(&e.handle(alarm_event(500), T0 + 200 * S)),
        [(2, Category::Alarm, Source::Device)]
    );
}

#[test]
fn faults_smoke_battery_tamper_are_separate_episodes() {
    let mut e = engine();
    let ev = |kind| Input::Event {
        device: dev("d1"),
        kind,
        open_as: None,
    };
    let mut out = e.handle(
        ev(EventKind::Fault {
            channel: 1,
            cause: FaultCause::LeadOpen,
        }),
        T0,
    );
    out.extend(e.handle(ev(EventKind::Smoke), T0));
    out.extend(e.handle(ev(EventKind::BatteryLow { battery_mv: 2500 }), T0));
    out.extend(e.handle(ev(EventKind::Tamper), T0));
    out.extend(e.handle(alarm_event(400), T0));
    let cats: Vec<_> = opened(&out).into_iter().map(|(_, c, _)| c).collect();
    assert_eq!(
        cats,
        [
            Category::Fault,
            Category::Smoke,
            Category::BatteryLow,
            Category::Tamper,
            Category::Alarm
        ]
    );
    assert!(
        matches!(&out[0], Output::Opened { detail: Some("lead_open"), key, .. } if key.channel == Some(1))
    );
    let mut out = e.handle(
        ev(EventKind::FaultCleared {
            channel: 1,
            cause: FaultCause::LeadOpen,
        }),
        T0 + S,
    );
    out.extend(e.handle(ev(EventKind::SmokeCleared), T0 + S));
    out.extend(e.handle(ev(EventKind::BatteryOk { battery_mv: 3000 }), T0 + S));
    out.extend(e.handle(ev(EventKind::TamperCleared), T0 + S));
    assert_eq!(ended(&out), [1, 2, 3, 4]);
}

#[test]
fn offline_after_silence_and_cleared_exactly_once() {
    let mut e = engine();
    // 3 × 60 s without any message.
    assert!(run_until(&mut e, T0 + 180 * S - 1).is_empty());
    let out = run_until(&mut e, T0 + 180 * S);
    assert_eq!(opened(&out), [(1, Category::Offline, Source::Gateway)]);
    assert!(
        opened(&run_until(&mut e, T0 + 1000 * S)).is_empty(),
        "raised once"
    );
    let out = e.handle(Input::Online(dev("d1")), T0 + 1001 * S);
    assert_eq!(ended(&out), [1]);
    assert!(ended(&e.handle(Input::Online(dev("d1")), T0 + 1002 * S)).is_empty());
}

#[test]
fn a_last_will_opens_offline_after_the_grace_unless_the_device_returns() {
    let mut e = engine();
    e.handle(Input::Offline(dev("d1")), T0 + S);
    e.handle(Input::Online(dev("d1")), T0 + 5 * S);
    assert!(
        opened(&run_until(&mut e, T0 + 60 * S)).is_empty(),
        "a flap pages nobody"
    );
    e.handle(Input::Offline(dev("d1")), T0 + 70 * S);
    let out = run_until(&mut e, T0 + 80 * S);
    assert_eq!(opened(&out), [(1, Category::Offline, Source::Device)]);
}

/// Runs the engine from `from` to `until` (ms): a heartbeat of `d1` every `heartbeat_s` (so
/// only escalation happens) and a tick at every deadline, in time order; every output with
/// the time it came out, in seconds after [`T0`].
fn timeline(e: &mut Engine, from: u64, until: u64, heartbeat_s: u64) -> Vec<(u64, Output)> {
    let mut out = Vec::new();
    let mut beat = from;
    loop {
        let deadline = e.next_deadline().filter(|t| *t <= until);
        let (t, input) = match deadline {
            Some(d) if d < beat || beat > until => (d, Input::Tick),
            _ if beat <= until => {
                let t = beat;
                beat += heartbeat_s * S;
                (t, Input::Online(dev("d1")))
            }
            _ => return out,
        };
        out.extend(e.handle(input, t).into_iter().map(|o| ((t - T0) / S, o)));
        assert!(out.len() < 100_000, "the timeline does not end");
    }
}

/// The escalations of a timeline: (s after T0, episode, level).
fn escalations(out: &[(u64, Output)]) -> Vec<(u64, EpisodeId, u8)> {
    out.iter()
        .filter_map(|(t, o)| match o {
            Output::Escalated { id, level } => Some((*t, *id, *level)),
            _ => None,
        })
        .collect()
}

#[test]
fn escalation_until_acknowledged() {
    let mut e = engine();
    e.handle(
        Input::Event {
            device: dev("d1"),
            kind: EventKind::Smoke,
            open_as: None,
        },
        T0,
    );
    let out = timeline(&mut e, T0, T0 + 700 * S, 60);
    // EngineConfig::default().escalation_ms: 2 min, 10 min, 30 min after the start.
    assert_eq!(
        escalations(&out),
        [(120, 1, 1), (600, 1, 2)],
        "level 1 at 2 min, level 2 at 10 min, each on time"
    );
    e.handle(Input::Acknowledged(1), T0 + 701 * S);
    let after = timeline(&mut e, T0 + 701 * S, T0 + 3000 * S, 60);
    assert_eq!(
        escalations(&after),
        [],
        "none after the acknowledgement (30 min passed)"
    );
}

/// `[tickets] acknowledge_s`: a category with its own acknowledge deadline escalates at A, 2A,
/// 3A (as many levels as the global steps), others keep the global steps.
#[test]
fn a_category_with_an_acknowledge_deadline_escalates_on_its_own_steps() {
    let mut config = EngineConfig::default();
    config.acknowledge_ms.insert(Category::Smoke, 60 * S);
    assert_eq!(config.escalation_after(Category::Smoke, 0), Some(60 * S));
    assert_eq!(config.escalation_after(Category::Smoke, 2), Some(180 * S));
    assert_eq!(config.escalation_after(Category::Smoke, 3), None, "the top");
    assert_eq!(config.escalation_after(Category::Alarm, 0), Some(120 * S));
    let mut e = Engine::new(config, 1);
    e.handle(Input::Upsert(spec("d1")), T0);
    e.handle(
        Input::Event {
            device: dev("d1"),
            kind: EventKind::Smoke,
            open_as: None,
        },
        T0,
    );
    let out = timeline(&mut e, T0, T0 + 200 * S, 30);
    assert_eq!(
        escalations(&out),
        [(60, 1, 1), (120, 1, 2), (180, 1, 3)],
        "every minute, up to the district"
    );
}

#[test]
fn a_smoke_alarm_that_stopped_still_escalates_a_fault_does_not() {
    let mut e = engine();
    let ev = |kind| Input::Event {
        device: dev("d1"),
        kind,
        open_as: None,
    };
    e.handle(ev(EventKind::Smoke), T0);
    e.handle(
        ev(EventKind::Fault {
            channel: 0,
            cause: FaultCause::LeadShort,
        }),
        T0,
    );
    e.handle(ev(EventKind::SmokeCleared), T0 + S);
    e.handle(
        ev(EventKind::FaultCleared {
            channel: 0,
            cause: FaultCause::LeadShort,
        }),
        T0 + S,
    );
    let out = timeline(&mut e, T0 + S, T0 + 200 * S, 30);
    assert_eq!(
        out,
        [(120, Output::Escalated { id: 1, level: 1 })],
        "the smoke episode (id 1) at 2 min, nothing of the fault"
    );
}

/// An unacknowledged episode restored after a restart is ticked forward from where it was:
/// the next level comes at its time counted from the episode's start, the levels it had
/// reached are not sent again.
#[test]
fn a_restored_unacknowledged_episode_escalates_on_time_and_not_twice() {
    let mut e = Engine::new(EngineConfig::default(), 1);
    e.handle(Input::Upsert(spec("d1")), T0);
    // Smoke since 5 min before the restart, level 1 sent before it (at 2 min).
    e.restore(
        OpenEpisode {
            id: 7,
            key: EpisodeKey {
                device: dev("d1"),
                channel: None,
                category: Category::Smoke,
            },
            started_ms: T0 - 300 * S,
            ended: false,
            acknowledged: false,
            escalation: 1,
            peak: None,
            source: Source::Device,
        },
        T0,
    );
    let out = timeline(&mut e, T0, T0 + 2000 * S, 60);
    assert_eq!(
        escalations(&out),
        [(300, 7, 2), (1500, 7, 3)],
        "level 2 at 10 min after the start (5 min after the restart), level 3 at 30 min; \
         level 1 not again"
    );
    assert!(
        out.iter().all(|(_, o)| !matches!(o, Output::Opened { .. })),
        "not opened again: {out:?}"
    );
}

/// A restored episode whose next level fell due while the gateway was down gets it at once,
/// and only that level.
#[test]
fn a_restored_episode_overdue_for_its_next_level_gets_it_at_the_restart() {
    let mut e = Engine::new(EngineConfig::default(), 1);
    e.handle(Input::Upsert(spec("d1")), T0);
    e.restore(
        OpenEpisode {
            id: 9,
            key: EpisodeKey {
                device: dev("d1"),
                channel: None,
                category: Category::Smoke,
            },
            started_ms: T0 - 700 * S,
            ended: false,
            acknowledged: false,
            escalation: 1,
            peak: None,
            source: Source::Device,
        },
        T0,
    );
    let out = timeline(&mut e, T0, T0 + 600 * S, 60);
    assert_eq!(
        escalations(&out),
        [(0, 9, 2)],
        "level 2 at the restart, not level 1"
    );
}

#[test]
fn unknown_devices_change_nothing() {
    let mut e = engine();
    assert!(e.handle(alarm_event(400), T0).len() == 1);
    assert!(
        e.handle(telemetry("stranger", residual(999)), T0)
            .is_empty()
    );
    assert!(e.handle(Input::Offline(dev("stranger")), T0).is_empty());
    assert!(e.handle(Input::Acknowledged(99), T0).is_empty());
}

#[test]
fn removing_a_device_ends_its_episodes() {
    let mut e = engine();
    e.handle(alarm_event(400), T0);
    assert_eq!(ended(&e.handle(Input::Remove(dev("d1")), T0 + S)), [1]);
    assert_eq!(e.device_count(), 0);
    assert!(run_until(&mut e, T0 + 10_000 * S).is_empty());
}

#[test]
fn restored_episodes_keep_their_ids_and_are_not_reopened() {
    let mut e = Engine::new(EngineConfig::default(), 1);
    e.handle(Input::Upsert(spec("d1")), T0);
    e.restore(
        OpenEpisode {
            id: 41,
            key: EpisodeKey {
                device: dev("d1"),
                channel: Some(0),
                category: Category::Alarm,
            },
            started_ms: T0 - 60 * S,
            ended: false,
            acknowledged: true,
            escalation: 0,
            peak: None,
            source: Source::Device,
        },
        T0,
    );
    assert!(
        e.handle(alarm_event(400), T0 + S)
            .iter()
            .all(|o| !matches!(o, Output::Opened { .. }))
    );
    let out = e.handle(
        Input::Event {
            device: dev("d1"),
            kind: EventKind::Smoke,
            open_as: None,
        },
        T0 + S,
    );
    assert_eq!(
        opened(&out),
        [(42, Category::Smoke, Source::Device)],
        "ids continue after restored ones"
    );
}

#[test]
fn many_devices_tick_in_deadline_order() {
    let mut e = Engine::new(EngineConfig::default(), 1);
    for i in 0..1000 {
        let mut s = spec(&format!("d{i}"));
        s.heartbeat_interval_s = 60 + (i % 10);
        e.handle(Input::Upsert(s), T0);
    }
    // Each tick at the engine's next deadline; what opens is stamped with the tick's time.
    let mut when = Vec::new();
    while let Some(t) = e.next_deadline().filter(|t| *t <= T0 + 3 * 70 * S) {
        for o in e.handle(Input::Tick, t) {
            if let Output::Opened { key, .. } = o {
                when.push((t, key.device, key.category));
            }
        }
        assert!(when.len() <= 1000, "a device went offline twice: {when:?}");
    }
    assert_eq!(when.len(), 1000, "every silent device goes offline once");
    for (t, device, category) in &when {
        assert_eq!(*category, Category::Offline);
        let i: u64 = device.as_str()[1..].parse().expect("d<i>");
        let due = T0 + u64::from(EngineConfig::default().offline_factor) * (60 + i % 10) * S;
        assert_eq!(*t, due, "{device} offline at its own deadline");
    }
    assert!(e.timers.len() <= 4 * 1000 + 64);
}

// The engine's memory per device is measured on the heap by gateway/tests/engine_memory.rs.

#[test]
fn a_failed_self_test_opens_a_device_fault_until_one_passes() {
    let mut e = engine();
    let test = |result| Input::Event {
        device: dev("d1"),
        kind: EventKind::SelfTest { result },
        open_as: None,
    };
    assert!(
        e.handle(test(SelfTestResult::Passed), T0).is_empty(),
        "a pass opens nothing"
    );
    let out = e.handle(test(SelfTestResult::Failed), T0 + S);
    let [
        Output::Opened {
            id, key, detail, ..
        },
    ] = &out[..]
    else {
        panic!("{out:?}");
    };
    assert_eq!((key.channel, key.category), (None, Category::Fault));
    assert_eq!(*detail, Some("self_test_failed"));
    assert!(
        e.handle(test(SelfTestResult::Failed), T0 + 2 * S)
            .is_empty(),
        "one episode"
    );
    assert_eq!(
        ended(&e.handle(test(SelfTestResult::Passed), T0 + 3 * S)),
        [*id]
    );
}
