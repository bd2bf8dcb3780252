extern crate std;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::vec::Vec;

use firegrid_protocols::channel::{FaultCause, Quantity};
use firegrid_protocols::codec;
use firegrid_protocols::message::{
    CommandOutcome, DeviceTime, Event, Level, Reading, SelfTestResult, Telemetry,
};
use proptest::prelude::*;

use super::*;
use crate::seq::{MemStore, SeqAllocator};

const S: u64 = 1_000;

fn p<const N: usize>(bytes: &[u8]) -> Payload<N> {
    Payload::from_slice(bytes).unwrap()
}

/// Drains everything due at `now`, marking each as sent; returns (seq, kind, resend).
fn drain<const E: usize, const T: usize, const N: usize>(
    o: &mut Outbox<E, T, N>,
    now: u64,
) -> Vec<(Seq, Kind, bool)> {
    let mut out = Vec::new();
    while let Some(t) = o.poll_transmit(now) {
        let (seq, kind, resend) = (t.seq, t.kind, t.resend);
        assert_eq!(o.mark_sent(seq, now), Some(kind));
        out.push((seq, kind, resend));
        assert!(out.len() <= E + T, "an event came back before its timeout");
    }
    out
}

fn seqs(v: &[(Seq, Kind, bool)]) -> Vec<Seq> {
    v.iter().map(|x| x.0).collect()
}

const CRIT: Kind = Kind::Event(EventClass::Critical);
const INFO: Kind = Kind::Event(EventClass::Informative);

// --- link state and order ---------------------------------------------------------------------

#[test]
fn nothing_is_due_while_the_link_is_down() {
    let mut o = Outbox::<4, 4, 16>::new();
    assert!(!o.is_link_up());
    o.push_event(1, EventClass::Critical, p(b"alarm")).unwrap();
    o.push_telemetry(2, p(b"tele")).unwrap();
    assert_eq!(o.poll_transmit(0), None);
    assert_eq!(o.next_deadline(), None);
    o.on_reconnect();
    assert_eq!(o.next_deadline(), Some(0));
    assert_eq!(o.poll_transmit(0).map(|t| t.seq), Some(1));
    o.on_disconnect();
    assert_eq!(o.poll_transmit(0), None);
    assert_eq!(o.next_deadline(), None);
    assert_eq!(o.len(), 2);
}

#[test]
fn events_before_telemetry_critical_before_informative_oldest_first() {
    let mut o = Outbox::<8, 8, 16>::new();
    o.on_reconnect();
    o.push_telemetry(1, p(b"t1")).unwrap();
    o.push_event(2, EventClass::Informative, p(b"i2")).unwrap();
    o.push_telemetry(3, p(b"t3")).unwrap();
    o.push_event(5, EventClass::Critical, p(b"c5")).unwrap();
    // Pushed late with an older seq (a retry after `Full`): takes its place by seq.
    o.push_event(4, EventClass::Critical, p(b"c4")).unwrap();
    o.push_event(6, EventClass::Informative, p(b"i6")).unwrap();
    let t = o.poll_transmit(0).unwrap();
    assert_eq!(
        (t.seq, t.kind, t.payload, t.resend),
        (4, CRIT, &b"c4"[..], false)
    );
    assert_eq!(t.topic(), DeviceTopic::Event);
    let sent = drain(&mut o, 0);
    assert_eq!(seqs(&sent), [4, 5, 2, 6, 1, 3]);
    assert_eq!(
        sent.iter().map(|x| x.1).collect::<Vec<_>>(),
        [CRIT, CRIT, INFO, INFO, Kind::Telemetry, Kind::Telemetry]
    );
    assert_eq!(Kind::Telemetry.topic(), DeviceTopic::Telemetry);
    // Telemetry gone, events kept for their ack.
    assert_eq!((o.event_count(), o.telemetry_count()), (4, 0));
}

#[test]
fn a_failed_publish_leaves_the_message_due() {
    let mut o = Outbox::<4, 4, 16>::new();
    o.on_reconnect();
    o.push_telemetry(1, p(b"t")).unwrap();
    o.push_event(2, EventClass::Critical, p(b"c")).unwrap();
    // The caller polls, the publish fails, it does not call mark_sent.
    assert_eq!(o.poll_transmit(5).map(|t| t.seq), Some(2));
    assert_eq!(o.poll_transmit(5).map(|t| t.seq), Some(2));
    assert_eq!(o.mark_sent(2, 5), Some(CRIT));
    assert_eq!(o.poll_transmit(5).map(|t| t.seq), Some(1));
    assert_eq!(o.poll_transmit(5).map(|t| t.seq), Some(1));
}

#[test]
fn telemetry_flows_while_an_event_waits_for_its_ack() {
    let mut o = Outbox::<4, 4, 16>::new();
    o.on_reconnect();
    o.push_event(1, EventClass::Critical, p(b"c")).unwrap();
    assert_eq!(seqs(&drain(&mut o, 0)), [1]);
    o.push_telemetry(2, p(b"t")).unwrap();
    assert_eq!(
        o.poll_transmit(S).map(|t| (t.seq, t.kind)),
        Some((2, Kind::Telemetry))
    );
}

// --- resending ---------------------------------------------------------------------------------

#[test]
fn unacked_event_is_resent_after_the_timeout_not_before() {
    let mut o = Outbox::<4, 4, 16>::new();
    assert_eq!(o.resend_timeout_ms(), 10 * S);
    o.on_reconnect();
    o.push_event(7, EventClass::Critical, p(b"alarm")).unwrap();
    assert_eq!(drain(&mut o, S), [(7, CRIT, false)]);
    assert_eq!(o.next_deadline(), Some(11 * S));
    assert_eq!(o.poll_transmit(11 * S - 1), None);
    let t = o.poll_transmit(11 * S).unwrap();
    assert_eq!((t.seq, t.payload, t.resend), (7, &b"alarm"[..], true));
    assert_eq!(drain(&mut o, 11 * S), [(7, CRIT, true)]);
    assert_eq!(o.next_deadline(), Some(21 * S));
    assert_eq!(o.stats().event_resends, 1);
}

#[test]
fn reconnect_makes_every_unacked_event_due_at_once() {
    let mut o = Outbox::<4, 4, 16>::new().with_resend_timeout_ms(30 * S);
    o.on_reconnect();
    o.push_event(1, EventClass::Informative, p(b"i")).unwrap();
    o.push_event(2, EventClass::Critical, p(b"c")).unwrap();
    assert_eq!(seqs(&drain(&mut o, 0)), [2, 1]);
    o.on_disconnect();
    assert_eq!(
        o.poll_transmit(40 * S),
        None,
        "not while down, even past the timeout"
    );
    o.on_reconnect();
    // Reconnect at 5 s: before the 30 s timeout, yet both are due now.
    o.on_disconnect();
    o.on_reconnect();
    assert_eq!(o.next_deadline(), Some(0));
    assert_eq!(drain(&mut o, 5 * S), [(2, CRIT, true), (1, INFO, true)]);
    assert_eq!(o.next_deadline(), Some(35 * S));
}

#[test]
fn resend_timeout_is_a_setting() {
    let mut o = Outbox::<4, 4, 16>::new();
    o.set_resend_timeout_ms(2 * S);
    o.on_reconnect();
    o.push_event(1, EventClass::Critical, p(b"c")).unwrap();
    drain(&mut o, 0);
    assert_eq!(o.next_deadline(), Some(2 * S));
    // Near the end of time: saturates, no overflow.
    o.mark_sent(1, u64::MAX - 1);
    assert_eq!(o.next_deadline(), Some(u64::MAX));
}

// --- acknowledgement --------------------------------------------------------------------------

#[test]
fn ack_removes_events_and_ignores_the_rest() {
    let mut o = Outbox::<4, 4, 16>::new();
    o.on_reconnect();
    o.push_event(1, EventClass::Critical, p(b"c1")).unwrap();
    o.push_event(2, EventClass::Informative, p(b"i2")).unwrap();
    o.push_telemetry(3, p(b"t3")).unwrap();
    assert_eq!(o.ack(&[]), 0);
    assert_eq!(
        o.ack(&[1, 1, 99, 3]),
        1,
        "duplicate, unknown and telemetry seqs ignored"
    );
    assert!(!o.contains(1));
    assert!(o.contains(3), "an ack of telemetry does not remove it");
    assert_eq!(o.ack(&[1]), 0, "a repeated ack is ignored");
    // Acked before it was ever sent: gone, never transmitted.
    assert_eq!(o.ack(&[2]), 1);
    assert_eq!(seqs(&drain(&mut o, 0)), [3]);
    assert!(o.is_empty());
    assert_eq!(o.next_deadline(), None);
    assert_eq!(o.stats().events_acked, 2);
    // mark_sent of an acked or unknown seq changes nothing.
    assert_eq!(o.mark_sent(1, 0), None);
    assert_eq!(o.mark_sent(12345, 0), None);
}

#[test]
fn acked_event_is_not_resent() {
    let mut o = Outbox::<4, 4, 16>::new();
    o.on_reconnect();
    o.push_event(1, EventClass::Critical, p(b"c1")).unwrap();
    drain(&mut o, 0);
    assert_eq!(o.ack(&[1]), 1);
    o.on_reconnect();
    assert_eq!(o.poll_transmit(60 * S), None);
}

// --- bounds -------------------------------------------------------------------------------------

#[test]
fn full_telemetry_drops_the_oldest_and_counts() {
    let mut o = Outbox::<2, 3, 8>::new();
    for seq in 1..=3 {
        assert_eq!(o.push_telemetry(seq, p(&[seq as u8])), Ok(None));
    }
    assert_eq!(o.push_telemetry(4, p(b"4")), Ok(Some(1)));
    assert_eq!(o.push_telemetry(5, p(b"5")), Ok(Some(2)));
    assert_eq!(o.take_dropped_telemetry(), 2);
    assert_eq!(o.take_dropped_telemetry(), 0, "taking resets");
    assert_eq!(o.push_telemetry(6, p(b"6")), Ok(Some(3)));
    assert_eq!(o.take_dropped_telemetry(), 1);
    assert_eq!(o.stats().dropped_telemetry, 3, "the total keeps counting");
    o.on_reconnect();
    assert_eq!(seqs(&drain(&mut o, 0)), [4, 5, 6]);
}

#[test]
fn telemetry_never_evicts_events() {
    let mut o = Outbox::<2, 2, 8>::new();
    o.push_event(1, EventClass::Informative, p(b"i")).unwrap();
    o.push_event(2, EventClass::Critical, p(b"c")).unwrap();
    for seq in 3..100 {
        o.push_telemetry(seq, p(b"t")).unwrap();
    }
    assert_eq!(o.event_count(), 2);
    assert!(o.contains(1) && o.contains(2));
}

#[test]
fn a_new_event_evicts_the_oldest_informative_never_a_critical() {
    let mut o = Outbox::<4, 2, 8>::new();
    o.push_event(1, EventClass::Critical, p(b"c1")).unwrap();
    o.push_event(2, EventClass::Informative, p(b"i2")).unwrap();
    o.push_event(3, EventClass::Informative, p(b"i3")).unwrap();
    o.push_event(4, EventClass::Critical, p(b"c4")).unwrap();
    // Critical into a full area: the oldest informative goes.
    assert_eq!(o.push_event(5, EventClass::Critical, p(b"c5")), Ok(Some(2)));
    // Informative into a full area: also the oldest informative.
    assert_eq!(
        o.push_event(6, EventClass::Informative, p(b"i6")),
        Ok(Some(3))
    );
    assert_eq!(o.push_event(7, EventClass::Critical, p(b"c7")), Ok(Some(6)));
    assert_eq!(o.stats().evicted_informative, 3);
    assert_eq!(o.event_count_of(EventClass::Critical), 4);
    assert_eq!(o.event_count_of(EventClass::Informative), 0);
    for seq in [1, 4, 5, 7] {
        assert!(o.contains(seq));
    }
}

#[test]
fn full_only_when_every_slot_is_critical_and_the_payload_comes_back() {
    let mut o = Outbox::<3, 2, 8>::new();
    o.push_event(1, EventClass::Critical, p(b"c1")).unwrap();
    o.push_event(2, EventClass::Critical, p(b"c2")).unwrap();
    o.push_event(3, EventClass::Informative, p(b"i3")).unwrap();
    assert_eq!(o.push_event(4, EventClass::Critical, p(b"c4")), Ok(Some(3)));
    // Now all critical: both classes are refused, nothing evicted.
    let err = o.push_event(5, EventClass::Critical, p(b"c5")).unwrap_err();
    assert_eq!(err, PushError::Full(p(b"c5")));
    let err = o
        .push_event(6, EventClass::Informative, p(b"i6"))
        .unwrap_err();
    assert!(matches!(err, PushError::Full(_)));
    assert_eq!(err.into_payload(), p::<8>(b"i6"));
    // Telemetry is unaffected by a full event area.
    assert_eq!(o.push_telemetry(7, p(b"t7")), Ok(None));
    // After an ack, the caller retries with the payload it got back: same seq.
    assert_eq!(o.ack(&[2]), 1);
    let retry = PushError::<8>::Full(p(b"c5")).into_payload();
    assert_eq!(o.push_event(5, EventClass::Critical, retry), Ok(None));
    assert_eq!(o.stats().events_pushed, 5);
}

#[test]
fn a_duplicate_seq_is_refused() {
    let mut o = Outbox::<3, 2, 8>::new();
    o.push_event(1, EventClass::Critical, p(b"c1")).unwrap();
    o.push_telemetry(2, p(b"t2")).unwrap();
    assert_eq!(
        o.push_event(1, EventClass::Critical, p(b"x")),
        Err(PushError::DuplicateSeq(p(b"x")))
    );
    assert_eq!(
        o.push_event(2, EventClass::Critical, p(b"x")),
        Err(PushError::DuplicateSeq(p(b"x")))
    );
    assert_eq!(
        o.push_telemetry(1, p(b"y")),
        Err(PushError::DuplicateSeq(p(b"y")))
    );
    assert_eq!(o.len(), 2);
}

#[test]
fn zero_capacities_do_not_panic() {
    let mut o = Outbox::<0, 0, 4>::new();
    assert_eq!(
        o.push_event(1, EventClass::Critical, p(b"c")),
        Err(PushError::Full(p(b"c")))
    );
    assert_eq!(
        o.push_event(2, EventClass::Informative, p(b"i")),
        Err(PushError::Full(p(b"i")))
    );
    assert_eq!(o.push_telemetry(3, p(b"t")), Ok(Some(3)));
    assert_eq!(o.take_dropped_telemetry(), 1);
    o.on_reconnect();
    assert_eq!(o.poll_transmit(0), None);
    assert!(o.is_empty());
}

#[test]
fn error_display() {
    use std::string::ToString;
    assert!(
        PushError::<4>::Full(p(b"x"))
            .to_string()
            .contains("critical")
    );
    assert!(
        PushError::<4>::DuplicateSeq(p(b"x"))
            .to_string()
            .contains("sequence")
    );
}

// --- payloads and classes ---------------------------------------------------------------------

fn event(seq: Seq, up_ms: u64, kind: EventKind) -> Message {
    Message::Event(Event {
        seq,
        time: DeviceTime {
            uptime_ms: up_ms,
            unix_ms: None,
        },
        kind,
    })
}

fn telemetry(seq: Seq, up_ms: u64) -> Message {
    let mut readings = heapless::Vec::new();
    readings
        .push(Reading {
            channel: 0,
            residual_ma: Some(112),
            ..Reading::default()
        })
        .unwrap();
    for ch in 1..5 {
        readings
            .push(Reading {
                channel: ch,
                temp_dc: Some(300 + i16::from(ch)),
                ..Reading::default()
            })
            .unwrap();
    }
    Message::Telemetry(Telemetry {
        seq,
        time: DeviceTime {
            uptime_ms: up_ms,
            unix_ms: Some(1_764_403_200_000 + up_ms),
        },
        readings,
    })
}

#[test]
fn encode_payload_round_trips_and_reports_a_small_buffer() {
    let msg = telemetry(1042, 86_400_000);
    for encoding in [Encoding::Json, Encoding::Binary] {
        let payload = encode_payload::<PAYLOAD_CAPACITY>(&msg, encoding).unwrap();
        assert_eq!(
            codec::decode(DeviceTopic::Telemetry, &payload).unwrap(),
            msg
        );
    }
    let json = encode_payload::<PAYLOAD_CAPACITY>(&msg, Encoding::Json).unwrap();
    let binary = encode_payload::<PAYLOAD_CAPACITY>(&msg, Encoding::Binary).unwrap();
    assert!(
        json.len() <= 200 && binary.len() <= 60,
        "{} {}",
        json.len(),
        binary.len()
    );
    assert_eq!(
        encode_payload::<32>(&msg, Encoding::Json),
        Err(EncodeError::BufferFull)
    );
    assert_eq!(
        encode_payload::<0>(&msg, Encoding::Binary),
        Err(EncodeError::BufferFull)
    );
}

#[test]
fn event_classes() {
    let level = Level {
        quantity: Quantity::ResidualCurrent,
        value: 412,
        threshold: 300,
    };
    let critical = [
        EventKind::AlarmRaised { channel: 0, level },
        EventKind::AlarmCleared { channel: 0, level },
        EventKind::Fault {
            channel: 1,
            cause: FaultCause::LeadOpen,
        },
        EventKind::FaultCleared {
            channel: 1,
            cause: FaultCause::LeadOpen,
        },
        EventKind::Smoke,
        EventKind::SmokeCleared,
        EventKind::BatteryLow { battery_mv: 2500 },
        EventKind::BatteryOk { battery_mv: 3000 },
        EventKind::Tamper,
        EventKind::TamperCleared,
    ];
    let informative = [
        EventKind::SelfTest {
            result: SelfTestResult::Passed,
        },
        EventKind::Silenced { duration_s: 25_200 },
        EventKind::CommandResult {
            id: 17,
            outcome: CommandOutcome::Done,
        },
        EventKind::ConfigApplied { version: 3 },
        EventKind::ConfigRefused {
            version: 4,
            reason: heapless::String::new(),
        },
    ];
    assert!(
        critical
            .iter()
            .all(|k| EventClass::of(k) == EventClass::Critical)
    );
    assert!(
        informative
            .iter()
            .all(|k| EventClass::of(k) == EventClass::Informative)
    );
    assert!(EventClass::Critical < EventClass::Informative);
}

#[test]
fn slot_sizes() {
    use core::mem::size_of;
    // Per slot: the payload plus at most 24 bytes (length word, seq, resend time, class,
    // flags, alignment), on 32- and 64-bit targets alike.
    let event = size_of::<Outbox<1, 0, 256>>() - size_of::<Outbox<0, 0, 256>>();
    let tele = size_of::<Outbox<0, 1, 256>>() - size_of::<Outbox<0, 0, 256>>();
    assert!(event <= 256 + 24, "{event}");
    assert!(tele <= 256 + 16, "{tele}");
    let suggested = size_of::<Outbox<32, 64, 256>>();
    assert!(
        suggested <= 32 * (256 + 24) + 64 * (256 + 16) + 96,
        "{suggested}"
    );
}

// --- the outage scenario ------------------------------------------------------------------------

/// A monitor reporting telemetry every 10 s loses its network for 10 minutes; alarms, a fault
/// and smoke happen meanwhile, and answers to commands. Every event must reach the gateway
/// first after the reconnect, with its original seq and bytes; exactly the telemetry that did
/// not fit is dropped, and counted.
#[test]
fn ten_minute_outage_with_a_burst_of_telemetry() {
    const TELEMETRY_CAP: usize = 16;
    let mut o = Outbox::<32, TELEMETRY_CAP, PAYLOAD_CAPACITY>::new();
    let mut flash = MemStore::new();
    let mut seqs_alloc = SeqAllocator::<_, 256>::new(&mut flash);
    let mut pushed: BTreeMap<Seq, (Kind, Payload)> = BTreeMap::new();
    let level = |value| Level {
        quantity: Quantity::Temperature,
        value,
        threshold: 850,
    };

    let mut push = |o: &mut Outbox<32, TELEMETRY_CAP>, now: u64, what: Option<EventKind>| {
        let seq = seqs_alloc.next().unwrap();
        let (msg, kind) = match what {
            Some(k) => {
                let class = EventClass::of(&k);
                (event(seq, now, k), Kind::Event(class))
            }
            None => (telemetry(seq, now), Kind::Telemetry),
        };
        let payload: Payload = encode_payload(&msg, Encoding::Json).unwrap();
        let r = match kind {
            Kind::Event(class) => o.push_event(seq, class, payload.clone()),
            Kind::Telemetry => o.push_telemetry(seq, payload.clone()),
        };
        assert!(r.is_ok());
        pushed.insert(seq, (kind, payload));
        seq
    };

    // Link up; a minute of normal operation: everything goes out at once, events are acked.
    o.on_reconnect();
    let mut now = 0;
    while now < 60 * S {
        push(&mut o, now, None);
        if now == 30 * S {
            push(
                &mut o,
                now,
                Some(EventKind::BatteryLow { battery_mv: 2500 }),
            );
        }
        let sent = drain(&mut o, now);
        let acks: Vec<Seq> = sent
            .iter()
            .filter(|s| s.1 != Kind::Telemetry)
            .map(|s| s.0)
            .collect();
        o.ack(&acks);
        now += 10 * S;
    }
    assert!(o.is_empty());

    // The outage: 10 minutes, telemetry every 10 s, and a burst of events.
    o.on_disconnect();
    let outage_start = now;
    let mut telemetry_in_outage = 0;
    let mut events_in_outage = Vec::new();
    while now < outage_start + 600 * S {
        push(&mut o, now, None);
        telemetry_in_outage += 1;
        let t = now - outage_start;
        let kinds: &[EventKind] = match t / S {
            60 => &[EventKind::AlarmRaised {
                channel: 2,
                level: level(873),
            }],
            120 => &[EventKind::Fault {
                channel: 3,
                cause: FaultCause::LeadOpen,
            }],
            200 => &[
                EventKind::CommandResult {
                    id: 17,
                    outcome: CommandOutcome::Done,
                },
                EventKind::SelfTest {
                    result: SelfTestResult::Passed,
                },
            ],
            300 => &[EventKind::Smoke],
            420 => &[EventKind::SmokeCleared],
            500 => &[EventKind::FaultCleared {
                channel: 3,
                cause: FaultCause::LeadOpen,
            }],
            _ => &[],
        };
        for k in kinds {
            events_in_outage.push(push(&mut o, now, Some(k.clone())));
        }
        assert_eq!(o.poll_transmit(now), None, "nothing goes out while down");
        now += 10 * S;
    }
    assert_eq!(telemetry_in_outage, 60);
    assert_eq!(o.event_count(), 7);
    assert_eq!(o.telemetry_count(), TELEMETRY_CAP);

    // Reconnect: every event first (critical, then informative, oldest first), then the newest
    // telemetry that fit, oldest first.
    o.on_reconnect();
    let reconnect_at = now;
    let sent = drain(&mut o, reconnect_at);
    assert_eq!(sent.len(), 7 + TELEMETRY_CAP);
    let (events, tele) = sent.split_at(7);
    let mut expected_events: Vec<Seq> = events_in_outage.clone();
    expected_events.sort_by_key(|s| (pushed[s].0 == INFO, *s));
    assert_eq!(seqs(events), expected_events);
    assert!(events.iter().all(|e| e.1 != Kind::Telemetry));
    assert!(tele.iter().all(|t| t.1 == Kind::Telemetry));
    let tele_seqs = seqs(tele);
    assert!(tele_seqs.windows(2).all(|w| w[0] < w[1]));
    let last_telemetry: Vec<Seq> = pushed
        .iter()
        .filter(|(_, v)| v.0 == Kind::Telemetry)
        .map(|(s, _)| *s)
        .rev()
        .take(TELEMETRY_CAP)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert_eq!(tele_seqs, last_telemetry, "the newest telemetry survives");
    // Loss counted exactly: produced during the outage minus what fit.
    assert_eq!(o.take_dropped_telemetry(), 60 - TELEMETRY_CAP as u32);

    // Original seq and bytes: re-check each event by decoding what is held.
    o.on_disconnect();
    o.on_reconnect();
    let mut checked = 0;
    while let Some(t) = o.poll_transmit(reconnect_at) {
        assert_eq!(t.payload, &pushed[&t.seq].1[..]);
        let Message::Event(e) = codec::decode(DeviceTopic::Event, t.payload).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(e.seq, t.seq);
        assert!(t.resend);
        o.mark_sent(t.seq, reconnect_at);
        checked += 1;
    }
    assert_eq!(checked, 7);

    // The gateway acknowledges the critical ones; the rest waits for the timeout.
    let critical: Vec<Seq> = expected_events[..5].to_vec();
    assert_eq!(o.ack(&critical), 5);
    assert_eq!(o.next_deadline(), Some(reconnect_at + 10 * S));
    assert_eq!(o.poll_transmit(reconnect_at + 10 * S - 1), None);
    let resent = drain(&mut o, reconnect_at + 10 * S);
    assert_eq!(seqs(&resent), expected_events[5..]);
    assert!(resent.iter().all(|r| r.2), "flagged as resends");
    assert_eq!(o.ack(&expected_events), 2);
    assert!(o.is_empty());
    let st = o.stats();
    assert_eq!(st.dropped_telemetry, 44);
    assert_eq!(st.events_pushed, st.events_acked);
    assert_eq!(
        st.telemetry_pushed,
        st.telemetry_sent + st.dropped_telemetry
    );
    assert_eq!(st.evicted_informative, 0);
}

// --- property test against a model ------------------------------------------------------------

const PE: usize = 5;
const PT: usize = 4;
const TIMEOUT: u64 = 10_000;

#[derive(Debug, Clone)]
enum Op {
    Event(bool),
    Telemetry,
    Duplicate(usize),
    /// Ack some seqs pushed so far (by index), and an unknown one.
    Ack(Vec<usize>, bool),
    /// Poll and, if the publish works, mark sent.
    Transmit(bool),
    Reconnect,
    Disconnect,
    Advance(u64),
    TakeDropped,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Event),
        3 => Just(Op::Telemetry),
        1 => any::<usize>().prop_map(Op::Duplicate),
        2 => (proptest::collection::vec(any::<usize>(), 0..4), any::<bool>())
            .prop_map(|(v, u)| Op::Ack(v, u)),
        6 => prop_oneof![4 => Just(true), 1 => Just(false)].prop_map(Op::Transmit),
        1 => Just(Op::Reconnect),
        1 => Just(Op::Disconnect),
        3 => (0..25_000u64).prop_map(Op::Advance),
        1 => Just(Op::TakeDropped),
    ]
}

#[derive(Debug, Clone, Copy)]
struct ModelEvent {
    class: EventClass,
    due: u64,
}

#[derive(Debug, Default)]
struct Model {
    events: BTreeMap<Seq, ModelEvent>,
    telemetry: VecDeque<Seq>,
    link_up: bool,
    now: u64,
    next_seq: Seq,
    all: Vec<Seq>,
    acked: BTreeSet<Seq>,
    critical_pushed: BTreeSet<Seq>,
    dropped: u32,
}

fn payload_for(seq: Seq) -> Payload<8> {
    let mut p = Payload::<8>::new();
    p.extend_from_slice(&seq.to_le_bytes()).unwrap();
    p.extend_from_slice(&[0xA5; 4][..(seq % 5) as usize])
        .unwrap();
    p
}

impl Model {
    fn expected_transmit(&self) -> Option<(Seq, Kind)> {
        if !self.link_up {
            return None;
        }
        self.events
            .iter()
            .filter(|(_, e)| e.due <= self.now)
            .map(|(s, e)| (e.class, *s))
            .min()
            .map(|(c, s)| (s, Kind::Event(c)))
            .or_else(|| self.telemetry.front().map(|s| (*s, Kind::Telemetry)))
    }

    fn expected_deadline(&self) -> Option<u64> {
        if !self.link_up {
            return None;
        }
        let e = self.events.values().map(|e| e.due).min();
        let t = (!self.telemetry.is_empty()).then_some(0);
        [e, t].into_iter().flatten().min()
    }
}

fn check(o: &Outbox<PE, PT, 8>, m: &Model) {
    // Contents.
    assert_eq!(o.event_count(), m.events.len());
    assert_eq!(o.telemetry_count(), m.telemetry.len());
    assert_eq!(o.len(), m.events.len() + m.telemetry.len());
    assert_eq!(o.is_empty(), m.events.is_empty() && m.telemetry.is_empty());
    for class in [EventClass::Critical, EventClass::Informative] {
        let n = m.events.values().filter(|e| e.class == class).count();
        assert_eq!(o.event_count_of(class), n);
    }
    for s in m.events.keys().chain(m.telemetry.iter()) {
        assert!(o.contains(*s));
    }
    // A critical event stays until acknowledged.
    for s in &m.critical_pushed {
        assert_eq!(o.contains(*s), !m.acked.contains(s), "critical {s}");
    }
    // Counts add up.
    let st = o.stats();
    assert_eq!(
        st.events_pushed as usize,
        o.event_count() + st.events_acked as usize + st.evicted_informative as usize
    );
    assert_eq!(
        st.telemetry_pushed as usize,
        o.telemetry_count() + st.telemetry_sent as usize + st.dropped_telemetry as usize
    );
    // What is due, and when.
    assert_eq!(o.next_deadline(), m.expected_deadline());
    let got = o.poll_transmit(m.now);
    assert_eq!(got.map(|t| (t.seq, t.kind)), m.expected_transmit());
    if let Some(t) = got {
        assert_eq!(t.payload, &payload_for(t.seq)[..]);
    }
}

fn run(ops: Vec<Op>) {
    let mut o = Outbox::<PE, PT, 8>::new().with_resend_timeout_ms(TIMEOUT);
    let mut m = Model::default();
    let mut transmitted_critical = BTreeSet::new();
    for op in ops {
        match op {
            Op::Event(critical) => {
                m.next_seq += 1 + m.next_seq % 2; // with gaps
                let seq = m.next_seq;
                let class = if critical {
                    EventClass::Critical
                } else {
                    EventClass::Informative
                };
                let r = o.push_event(seq, class, payload_for(seq));
                if m.events.len() < PE {
                    assert_eq!(r, Ok(None));
                } else if let Some((&old, _)) = m
                    .events
                    .iter()
                    .find(|(_, e)| e.class == EventClass::Informative)
                {
                    assert_eq!(r, Ok(Some(old)));
                    m.events.remove(&old);
                } else {
                    assert_eq!(r, Err(PushError::Full(payload_for(seq))));
                    assert!(m.events.values().all(|e| e.class == EventClass::Critical));
                    continue;
                }
                m.events.insert(seq, ModelEvent { class, due: 0 });
                m.all.push(seq);
                if critical {
                    m.critical_pushed.insert(seq);
                }
            }
            Op::Telemetry => {
                m.next_seq += 1;
                let seq = m.next_seq;
                let r = o.push_telemetry(seq, payload_for(seq));
                if m.telemetry.len() < PT {
                    assert_eq!(r, Ok(None));
                } else {
                    let old = m.telemetry.pop_front().unwrap();
                    assert_eq!(r, Ok(Some(old)));
                    m.dropped += 1;
                }
                m.telemetry.push_back(seq);
                m.all.push(seq);
            }
            Op::Duplicate(i) => {
                let held: Vec<Seq> = m.events.keys().chain(m.telemetry.iter()).copied().collect();
                if let Some(&seq) = held.get(i % held.len().max(1)) {
                    let r = o.push_event(seq, EventClass::Critical, payload_for(0));
                    assert_eq!(r, Err(PushError::DuplicateSeq(payload_for(0))));
                    let r = o.push_telemetry(seq, payload_for(0));
                    assert_eq!(r, Err(PushError::DuplicateSeq(payload_for(0))));
                }
            }
            Op::Ack(picks, unknown) => {
                let mut seqs: Vec<Seq> = picks
                    .iter()
                    .filter_map(|i| m.all.get(i % m.all.len().max(1)))
                    .copied()
                    .collect();
                if unknown {
                    seqs.push(m.next_seq + 1000);
                }
                let mut expected = 0;
                for s in &seqs {
                    if m.events.remove(s).is_some() {
                        m.acked.insert(*s);
                        expected += 1;
                    }
                }
                assert_eq!(o.ack(&seqs), expected);
            }
            Op::Transmit(ok) => {
                let got = o.poll_transmit(m.now).map(|t| (t.seq, t.kind));
                assert_eq!(got, m.expected_transmit());
                if let Some((seq, kind)) = got {
                    assert!(!m.acked.contains(&seq), "acknowledged seq {seq} sent again");
                    if kind == CRIT {
                        transmitted_critical.insert(seq);
                    }
                    if ok {
                        assert_eq!(o.mark_sent(seq, m.now), Some(kind));
                        match kind {
                            Kind::Event(_) => {
                                m.events.get_mut(&seq).unwrap().due = m.now + TIMEOUT;
                            }
                            Kind::Telemetry => {
                                m.telemetry.retain(|s| *s != seq);
                            }
                        }
                    }
                }
            }
            Op::Reconnect => {
                o.on_reconnect();
                m.link_up = true;
                for e in m.events.values_mut() {
                    e.due = 0;
                }
            }
            Op::Disconnect => {
                o.on_disconnect();
                m.link_up = false;
            }
            Op::Advance(dt) => m.now += dt,
            Op::TakeDropped => {
                assert_eq!(o.take_dropped_telemetry(), m.dropped);
                m.dropped = 0;
            }
        }
        check(&o, &m);
    }
    // Finally the link comes up for good: every unacknowledged critical event is transmitted,
    // before anything else, and again after each timeout until acknowledged.
    o.on_reconnect();
    let unacked: Vec<Seq> = m
        .events
        .iter()
        .filter(|(_, e)| e.class == EventClass::Critical)
        .map(|(s, _)| *s)
        .collect();
    let first: Vec<Seq> = (0..unacked.len())
        .map(|_| {
            let (seq, kind) = o.poll_transmit(m.now).map(|t| (t.seq, t.kind)).unwrap();
            assert_eq!(kind, CRIT);
            o.mark_sent(seq, m.now);
            seq
        })
        .collect();
    assert_eq!(first, unacked);
    drain(&mut o, m.now);
    let again: Vec<Seq> = drain(&mut o, m.now + TIMEOUT)
        .into_iter()
        .filter(|t| t.1 == CRIT)
        .map(|t| t.0)
        .collect();
    assert_eq!(again, unacked);
    for s in &m.acked {
        assert!(!o.contains(*s));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn outbox_behaves_like_its_model(ops in proptest::collection::vec(op(), 0..120)) {
        run(ops);
    }
}
