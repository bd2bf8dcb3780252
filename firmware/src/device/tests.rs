extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::{CommandOutcome, Level};
use proptest::prelude::*;

use super::*;
use crate::monitor::Sound;
use crate::seq::MemStore;

const S: u64 = 1_000;
const TS: u64 = 1_764_403_200_000;

type Dev<const E: usize = 32, const T: usize = 16> = Device<MemStore, E, T>;

fn id() -> DeviceId {
    DeviceId::new("hz-0042").unwrap()
}

/// A typical monitor past its power-up step.
fn monitor_device() -> Dev {
    let mut d = Dev::new(id(), Layout::typical_monitor(), MemStore::new(), 0);
    let a = d.step(0, Input::Tick);
    assert!(a.measure_battery && a.publish_status, "{a:?}");
    d.step(0, Input::Battery(3_000));
    d
}

fn smoke_device<const E: usize, const T: usize>() -> Dev<E, T> {
    let mut d = Dev::<E, T>::new(id(), Layout::smoke_alarm(), MemStore::new(), 0);
    d.step(0, Input::Tick);
    d.step(0, Input::Battery(3_000));
    d
}

/// Everything the outbox would send at `now`, decoded, marked sent.
fn drain<const E: usize, const T: usize>(d: &mut Dev<E, T>, now: u64) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(t) = d.outbox().poll_transmit(now) {
        let (seq, topic) = (t.seq, t.topic());
        let msg = codec::decode(topic, t.payload).expect("the outbox holds valid messages");
        assert_eq!(msg.seq(), Some(seq));
        out.push(msg);
        d.outbox_mut().mark_sent(seq, now);
        assert!(out.len() <= E + T);
    }
    out
}

fn events(msgs: &[Message]) -> Vec<Event> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn ack_json(seqs: &[Seq], ts: u64) -> String {
    let list: Vec<String> = seqs.iter().map(|s| format!("{s}")).collect();
    format!(r#"{{"seqs":[{}],"ts":{ts}}}"#, list.join(","))
}

fn residual_alarm(d: &mut Dev, from: u64) -> Actions {
    d.step(
        from,
        Input::Sample {
            channel: 0,
            value: Ok(412),
        },
    );
    d.step(from + 10 * S, Input::Tick)
}

#[test]
fn an_alarm_becomes_an_encoded_event_with_seq_and_time() {
    let mut d = monitor_device();
    let a = residual_alarm(&mut d, 5 * S);
    assert_eq!(a.indicators.sound, Sound::Alarm, "local alarm at once");
    assert!(a.indicators.alarm_led);
    d.link_up();
    let sent = drain(&mut d, 15 * S);
    let evs = events(&sent);
    assert_eq!(evs.len(), 1, "{sent:?}");
    let e = &evs[0];
    assert_eq!(
        e.kind,
        EventKind::AlarmRaised {
            channel: 0,
            level: Level {
                quantity: Quantity::ResidualCurrent,
                value: 412,
                threshold: 300
            }
        }
    );
    assert_eq!(e.time.uptime_ms, 15 * S);
    assert_eq!(e.time.unix_ms, None, "no wall clock before the first sync");
    // Telemetry went with it (a report came due), each with its own seq.
    let seqs: Vec<Seq> = sent.iter().filter_map(Message::seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] != w[1]));
    assert_eq!(d.stats().events, 1);
}

#[test]
fn binary_devices_speak_binary() {
    let mut d = monitor_device().with_encoding(Encoding::Binary);
    residual_alarm(&mut d, 0);
    d.link_up();
    let t = d.outbox().poll_transmit(10 * S).unwrap();
    assert_eq!(t.payload.first(), Some(&codec::BINARY_MARKER));
    assert_eq!(d.will_payload().as_slice(), &[0xFB, 0x01, 0x01]);
}

#[test]
fn the_ack_removes_the_event_and_sets_the_wall_clock() {
    let mut d = monitor_device();
    residual_alarm(&mut d, 0);
    d.link_up();
    let e = events(&drain(&mut d, 10 * S)).remove(0);
    assert_eq!(d.outbox().event_count(), 1);
    // Not acknowledged: due again after the resend timeout, same seq.
    let again = d.outbox().poll_transmit(20 * S).unwrap();
    assert_eq!((again.seq, again.resend), (e.seq, true));
    let a = d
        .on_message(
            11 * S,
            DeviceTopic::Ack,
            ack_json(&[e.seq, 999], TS).as_bytes(),
        )
        .unwrap();
    assert_eq!(a.indicators.sound, Sound::Alarm);
    assert_eq!(d.outbox().event_count(), 0);
    assert_eq!(d.outbox().poll_transmit(60 * S).map(|t| t.seq), None);
    assert_eq!(d.stats().acks, 1);
    assert_eq!(
        d.wall_sync(),
        Some(WallSync {
            gateway_ms: TS,
            at_uptime_ms: 11 * S
        })
    );
    assert_eq!(d.wall_ms(12_500), Some(TS + 1_500));
    // Events after the sync carry the wall clock.
    let a = d.on_message(
        13 * S,
        DeviceTopic::Cmd,
        br#"{"id":1,"ts":1764403200500,"cmd":"reset_alarm","ch":0}"#,
    );
    assert!(a.is_ok());
    let e = events(&drain(&mut d, 13 * S)).remove(0);
    assert_eq!(e.time.unix_ms, Some(1_764_403_200_500));
}

#[test]
fn wall_clock_follows_the_latest_sync() {
    let mut d = smoke_device::<8, 4>();
    assert_eq!(d.wall_ms(1), None);
    d.on_message(1_000, DeviceTopic::Ack, ack_json(&[], TS).as_bytes())
        .unwrap();
    assert_eq!(d.wall_ms(3_000), Some(TS + 2_000));
    d.on_message(
        5_000,
        DeviceTopic::Cmd,
        br#"{"id":7,"ts":1764403210000,"cmd":"silence"}"#,
    )
    .unwrap();
    assert_eq!(d.wall_ms(5_000), Some(TS + 10_000));
    assert_eq!(
        d.wall_ms(4_000),
        Some(TS + 10_000),
        "never before the sync point"
    );
}

#[test]
fn a_redelivered_command_is_ignored_and_is_no_time_source() {
    let mut d = smoke_device::<8, 4>();
    d.link_up();
    let cmd = br#"{"id":17,"ts":1764403300500,"cmd":"silence"}"#;
    d.on_message(1_000, DeviceTopic::Cmd, cmd).unwrap();
    let first = events(&drain(&mut d, 1_000));
    assert_eq!(
        first.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        [EventKind::CommandResult {
            id: 17,
            outcome: CommandOutcome::NotApplicable
        }]
    );
    d.on_message(
        1_100,
        DeviceTopic::Ack,
        ack_json(&[first[0].seq], 1).as_bytes(),
    )
    .unwrap();
    // QoS 1 redelivery, much later: nothing carried out, the clock not set back.
    d.on_message(600_000, DeviceTopic::Cmd, cmd).unwrap();
    assert!(drain(&mut d, 600_000).is_empty());
    assert_eq!(d.stats().duplicate_commands, 1);
    assert_eq!(d.stats().commands, 1);
    assert_eq!(
        d.wall_ms(600_000),
        Some(1 + 598_900),
        "the ack's time stays"
    );
    // A new id runs.
    d.on_message(
        601_000,
        DeviceTopic::Cmd,
        br#"{"id":18,"ts":1764403900000,"cmd":"silence"}"#,
    )
    .unwrap();
    assert_eq!(events(&drain(&mut d, 601_000)).len(), 1);
}

#[test]
fn the_command_memory_is_bounded_and_forgets_the_oldest() {
    let mut d = smoke_device::<32, 4>();
    d.link_up();
    let cmd = |id: usize| format!(r#"{{"id":{id},"ts":{TS},"cmd":"silence"}}"#);
    for id in 0..=RECENT_COMMANDS {
        d.on_message(1, DeviceTopic::Cmd, cmd(id).as_bytes())
            .unwrap();
    }
    drain(&mut d, 1);
    // Id 0 was pushed out by the 17th; id 1 is still remembered.
    d.on_message(2, DeviceTopic::Cmd, cmd(1).as_bytes())
        .unwrap();
    assert!(drain(&mut d, 2).is_empty());
    d.on_message(3, DeviceTopic::Cmd, cmd(0).as_bytes())
        .unwrap();
    assert_eq!(drain(&mut d, 3).len(), 1);
}

#[test]
fn a_reboot_command_is_answered_then_asks_for_the_reboot() {
    let mut d = smoke_device::<8, 4>();
    d.link_up();
    let a = d
        .on_message(1, DeviceTopic::Cmd, br#"{"id":3,"ts":1,"cmd":"reboot"}"#)
        .unwrap();
    assert!(a.reboot);
    let e = events(&drain(&mut d, 1));
    assert!(matches!(
        e[0].kind,
        EventKind::CommandResult {
            id: 3,
            outcome: CommandOutcome::Done
        }
    ));
}

#[test]
fn a_config_is_applied_once_and_a_refused_one_answered_once() {
    let mut d = monitor_device();
    d.link_up();
    drain(&mut d, 0);
    let good = br#"{"version":3,"report_interval_s":30,"channels":[{"ch":0,"residual_ma":500,"delay_s":0}]}"#;
    d.on_message(S, DeviceTopic::Config, good).unwrap();
    let e = events(&drain(&mut d, S));
    assert_eq!(e[0].kind, EventKind::ConfigApplied { version: 3 });
    assert_eq!(d.monitor().config().report_interval_s, 30);
    // Retained: it comes again at every connect.
    d.on_message(2 * S, DeviceTopic::Config, good).unwrap();
    assert!(events(&drain(&mut d, 2 * S)).is_empty());
    let bad = br#"{"version":4,"channels":[{"ch":0,"residual_ma":5}]}"#;
    d.on_message(3 * S, DeviceTopic::Config, bad).unwrap();
    let e = events(&drain(&mut d, 3 * S));
    assert!(
        matches!(&e[0].kind, EventKind::ConfigRefused { version: 4, reason } if reason.contains("channel 0")),
        "{e:?}"
    );
    d.on_message(4 * S, DeviceTopic::Config, bad).unwrap();
    assert!(events(&drain(&mut d, 4 * S)).is_empty());
    assert_eq!(d.stats().duplicate_configs, 2);
    assert_eq!(d.stats().configs, 2);
    assert_eq!(d.monitor().config().version, 3, "the previous one stays");
}

#[test]
fn a_config_refusal_too_long_for_the_slot_is_shortened_not_lost() {
    // 120-byte slots: a refusal's reason does not fit in JSON and is cut.
    let mut d =
        Device::<MemStore, 4, 2, 120>::new(id(), Layout::typical_monitor(), MemStore::new(), 0);
    d.link_up();
    let bad = br#"{"version":9,"channels":[{"ch":0,"residual_ma":5}]}"#;
    d.on_message(S, DeviceTopic::Config, bad).unwrap();
    let t = d.outbox().poll_transmit(S).unwrap();
    assert!(t.payload.len() <= 120);
    let Ok(Message::Event(e)) = codec::decode(DeviceTopic::Event, t.payload) else {
        panic!()
    };
    assert!(
        matches!(&e.kind, EventKind::ConfigRefused { version: 9, reason } if reason.len() < 60),
        "{e:?}"
    );
    assert_eq!(d.stats().encode_failures, 0);
}

#[test]
fn a_critical_event_refused_by_a_full_outbox_is_retried_and_never_lost() {
    // Two event slots; the link is down, so nothing is acknowledged.
    let mut d = smoke_device::<2, 2>();
    let mut kinds = Vec::new();
    for (i, open) in [true, false, true, false, true].into_iter().enumerate() {
        let t = (i as u64 + 1) * S;
        let a = d.step(t, Input::Tamper(open));
        kinds.push(if open {
            EventKind::Tamper
        } else {
            EventKind::TamperCleared
        });
        assert_eq!(a.indicators.sound, Sound::Off);
    }
    assert_eq!(d.outbox().event_count(), 2);
    assert_eq!(d.pending_events(), 3);
    assert!(d.stats().outbox_full >= 1);
    assert_eq!(d.stats().events_lost_critical, 0);
    // Smoke while everything is full: the alarm still sounds at once.
    let a = d.step(6 * S, Input::Smoke(true));
    assert_eq!(a.indicators.sound, Sound::Fire);
    kinds.push(EventKind::Smoke);
    assert_eq!(d.pending_events(), 4);

    // The link comes up; acks free slots and the pending events follow, in order, with the
    // seq and time they got when they happened.
    d.link_up();
    let mut got: Vec<Event> = Vec::new();
    for round in 0..10 {
        let now = 10 * S + round * S;
        let sent = events(&drain(&mut d, now));
        let seqs: Vec<Seq> = sent.iter().map(|e| e.seq).collect();
        got.extend(sent);
        d.on_message(now, DeviceTopic::Ack, ack_json(&seqs, TS).as_bytes())
            .unwrap();
    }
    assert!(d.outbox().is_empty() && d.pending_events() == 0);
    assert_eq!(
        got.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
        kinds
    );
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "{got:?}");
    assert_eq!(
        got.iter().map(|e| e.time.uptime_ms).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6].map(|s| s * S)
    );
    assert_eq!(d.stats().events_lost_critical, 0);
    assert_eq!(d.stats().events_lost_informative, 0);
}

#[test]
fn when_everything_is_full_informative_events_go_first_and_losses_are_counted() {
    let mut d = smoke_device::<1, 1>();
    d.step(S, Input::Tamper(true)); // fills the one slot
    for i in 0..PENDING_EVENTS as u32 {
        // Informative answers fill the pending list.
        let cmd = format!(r#"{{"id":{i},"ts":1,"cmd":"silence"}}"#);
        d.on_message(2 * S, DeviceTopic::Cmd, cmd.as_bytes())
            .unwrap();
    }
    assert_eq!(d.pending_events(), PENDING_EVENTS);
    // A critical edge evicts an informative one; nothing critical is lost.
    d.step(3 * S, Input::Smoke(true));
    assert_eq!(d.stats().events_lost_informative, 1);
    assert_eq!(d.stats().events_lost_critical, 0);
    // Only when the list holds nothing but critical events is a critical one lost.
    for i in 0..(2 * PENDING_EVENTS) {
        d.step(4 * S + i as u64, Input::Tamper(i % 2 == 1));
    }
    assert!(d.stats().events_lost_critical > 0);
    assert_eq!(
        d.stats().events_lost_informative,
        PENDING_EVENTS as u32,
        "every informative one went before a critical one"
    );
}

#[test]
fn a_failing_sequence_store_delays_events_without_losing_them() {
    let mut d = smoke_device::<8, 4>();
    d.seq_allocator_mut().store_mut().set_fail_load(true);
    d.step(S, Input::Smoke(true));
    assert_eq!(d.pending_events(), 1);
    assert_eq!(d.local_deadline(), S + PENDING_RETRY_MS);
    d.step(S + PENDING_RETRY_MS, Input::Tick);
    assert_eq!(d.pending_events(), 1, "still failing");
    d.seq_allocator_mut().store_mut().set_fail_load(false);
    d.step(3 * S, Input::Tick);
    assert_eq!(d.pending_events(), 0);
    d.link_up();
    let e = events(&drain(&mut d, 3 * S));
    assert_eq!(
        (e[0].kind.clone(), e[0].time.uptime_ms),
        (EventKind::Smoke, S)
    );
    assert!(d.stats().seq_failures >= 2);
}

#[test]
fn the_status_carries_config_intervals_and_dropped_telemetry() {
    // One telemetry slot: reports while offline drop the older ones.
    let mut d = Dev::<4, 1>::new(id(), Layout::typical_monitor(), MemStore::new(), 0)
        .with_firmware("1.2.3-rc.1");
    d.step(0, Input::Battery(2_900));
    for i in 1..=4 {
        let t = i * 60 * S;
        d.step(
            t,
            Input::Sample {
                channel: 1,
                value: Ok(300),
            },
        );
        d.step(t, Input::Tick);
    }
    assert_eq!(d.outbox().telemetry_count(), 1);
    let status = |d: &mut Dev<4, 1>, now| {
        let p = d.online_status(now).unwrap();
        match codec::decode(DeviceTopic::Status, &p).unwrap() {
            Message::Status(Status::Online(h)) => h,
            other => panic!("{other:?}"),
        }
    };
    let h = status(&mut d, 240 * S);
    assert_eq!(h.dropped_telemetry, 3);
    assert_eq!(h.firmware.as_str(), "1.2.3-rc.1");
    assert_eq!((h.report_interval_s, h.heartbeat_interval_s), (60, 60));
    assert_eq!(h.config_version, 0);
    assert_eq!(h.battery_mv, Some(2_900));
    assert_eq!(h.time.uptime_ms, 240 * S);
    // Not confirmed published: the next status reports the drops again.
    let h2 = status(&mut d, 241 * S);
    assert_eq!(h2.dropped_telemetry, 3);
    assert!(h2.seq > h.seq);
    d.status_published();
    assert_eq!(status(&mut d, 242 * S).dropped_telemetry, 0);
    assert_eq!(d.stats().statuses, 3);
}

#[test]
fn the_will_is_the_offline_status() {
    let d = smoke_device::<2, 2>();
    assert_eq!(d.will_payload().as_slice(), br#"{"state":"offline"}"#);
    assert_eq!(
        codec::decode(DeviceTopic::Status, &d.will_payload()),
        Ok(Message::Status(Status::Offline))
    );
}

#[test]
fn refusals_are_counted_by_reason() {
    let mut d = smoke_device::<4, 4>();
    assert_eq!(
        d.on_message(1, DeviceTopic::Event, b"{}"),
        Err(Refusal::UplinkTopic(DeviceTopic::Event))
    );
    let r = d
        .on_message(1, DeviceTopic::Ack, b"\x00garbage")
        .unwrap_err();
    assert_eq!(r.reason(), "unknown_encoding");
    assert!(matches!(r, Refusal::Undecodable(_)));
    assert!(d.on_message(1, DeviceTopic::Cmd, br#"{"id":1}"#).is_err());
    assert_eq!(
        d.on_publish(
            1,
            "firegrid/v1/dev/hz-0043/cmd",
            br#"{"id":1,"ts":1,"cmd":"reboot"}"#
        ),
        Err(Refusal::ForeignTopic)
    );
    assert_eq!(
        d.on_publish(1, "not/a/firegrid/topic", b"{}"),
        Err(Refusal::ForeignTopic)
    );
    let a = d
        .on_publish(
            1,
            "firegrid/v1/dev/hz-0042/cmd",
            br#"{"id":1,"ts":1,"cmd":"self_test"}"#,
        )
        .unwrap();
    assert!(a.check_sensors);
    assert_eq!(
        d.stats().refused,
        Refusals {
            undecodable: 2,
            uplink_topic: 1,
            foreign_topic: 2
        }
    );
    assert!(Refusal::ForeignTopic.to_string().contains("not a topic"));
}

#[test]
fn deadlines_include_the_outbox_only_in_next_deadline() {
    let mut d = smoke_device::<4, 4>();
    d.step(S, Input::Smoke(true));
    let local = d.local_deadline();
    d.link_up();
    assert_eq!(d.next_deadline(), 0, "an event is due");
    assert_eq!(d.local_deadline(), local);
    drain(&mut d, S);
    assert_eq!(d.next_deadline(), local.min(S + 10 * S));
}

proptest! {
    /// No downlink payload on any topic panics; a refused one changes nothing (outbox, pending
    /// events, stats other than the refusal count); a taken one adds at most its answer.
    #[test]
    fn any_downlink_is_taken_or_refused(payload in proptest::collection::vec(any::<u8>(), 0..300), k in 0usize..6) {
        let mut d = smoke_device::<4, 4>();
        d.step(S, Input::Smoke(true));
        let state = |d: &Device<_, 4, 4>| (
            d.outbox().event_count(),
            d.outbox().telemetry_count(),
            d.pending_events(),
            d.stats().events,
        );
        let before = state(&d);
        match d.on_message(2 * S, DeviceTopic::ALL[k], &payload) {
            Err(_) => prop_assert_eq!(state(&d), before, "refused on {:?}: nothing changes", DeviceTopic::ALL[k]),
            Ok(_) => prop_assert!(d.outbox().event_count() <= before.0 + 1),
        }
        let before = state(&d);
        match d.on_publish(2 * S, "firegrid/v1/dev/hz-0042/ack", &payload) {
            Err(_) => prop_assert_eq!(state(&d), before, "a refused ack changes nothing"),
            Ok(_) => prop_assert!(d.outbox().event_count() <= before.0),
        }
    }

    /// Whatever inputs and acks come, every event the monitor produced is delivered exactly
    /// in its seq order and none is lost while the pending list has room.
    #[test]
    fn events_survive_a_small_outbox(edges in proptest::collection::vec(any::<bool>(), 1..40)) {
        let mut d = smoke_device::<3, 1>();
        d.link_up();
        let mut delivered: Vec<Event> = Vec::new();
        for (i, open) in edges.iter().enumerate() {
            let now = (i as u64 + 1) * S;
            d.step(now, Input::Tamper(*open));
            let sent = events(&drain(&mut d, now));
            if i % 3 == 0 {
                let seqs: Vec<Seq> = sent.iter().map(|e| e.seq).collect();
                d.on_message(now, DeviceTopic::Ack, ack_json(&seqs, TS).as_bytes()).unwrap();
            }
            delivered.extend(sent);
        }
        let produced = d.stats().events;
        for round in 0..20u64 {
            let now = 1_000 * S + round * 20 * S;
            let sent = events(&drain(&mut d, now));
            let seqs: Vec<Seq> = sent.iter().map(|e| e.seq).collect();
            d.on_message(now, DeviceTopic::Ack, ack_json(&seqs, TS).as_bytes()).unwrap();
            delivered.extend(sent);
        }
        let lost = d.stats().events_lost_critical;
        let mut unique: Vec<Seq> = delivered.iter().map(|e| e.seq).collect();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len() as u32 + lost, produced);
        prop_assert!(d.outbox().is_empty());
    }
}
