use std::string::ToString;
use std::vec;
use std::vec::Vec as StdVec;

use heapless::{String, Vec};
use proptest::collection::vec as pvec;
use proptest::option::of;
use proptest::prelude::*;

use super::*;
use crate::channel::{FaultCause, MAX_CHANNELS, Quantity};
use crate::message::*;
use crate::thresholds::Threshold;

// --- strategies ------------------------------------------------------------------------------

fn time() -> impl Strategy<Value = DeviceTime> {
    (any::<u64>(), of(any::<u64>()))
        .prop_map(|(uptime_ms, unix_ms)| DeviceTime { uptime_ms, unix_ms })
}

fn hstring<const N: usize>() -> impl Strategy<Value = String<N>> {
    // Any text, quotes, escapes and non-ASCII included, cut to capacity at a char boundary.
    "\\PC{0,40}".prop_map(|s: std::string::String| {
        let mut out = String::new();
        for c in s.chars() {
            if out.push(c).is_err() {
                break;
            }
        }
        out
    })
}

/// Distinct channel numbers, in any order.
fn channels() -> impl Strategy<Value = StdVec<u8>> {
    proptest::sample::subsequence(
        (0..MAX_CHANNELS as u8).collect::<StdVec<_>>(),
        0..=MAX_CHANNELS,
    )
    .prop_shuffle()
}

fn reading(channel: u8) -> impl Strategy<Value = Reading> {
    (
        of(any::<u32>()),
        of(any::<i16>()),
        of(any::<u16>()),
        of(any::<u32>()),
    )
        .prop_filter("a reading has a value", |v| {
            v.0.is_some() || v.1.is_some() || v.2.is_some() || v.3.is_some()
        })
        .prop_map(
            move |(residual_ma, temp_dc, voltage_dv, current_ma)| Reading {
                channel,
                residual_ma,
                temp_dc,
                voltage_dv,
                current_ma,
            },
        )
}

fn telemetry() -> impl Strategy<Value = Telemetry> {
    (any::<u32>(), time(), channels())
        .prop_flat_map(|(seq, time, chs)| {
            let readings: StdVec<_> = chs.into_iter().map(reading).collect();
            (Just(seq), Just(time), readings)
        })
        .prop_map(|(seq, time, readings)| Telemetry {
            seq,
            time,
            readings: readings.into_iter().collect(),
        })
}

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![Just(Quantity::ResidualCurrent), Just(Quantity::Temperature)]
}

fn cause() -> impl Strategy<Value = FaultCause> {
    prop_oneof![
        Just(FaultCause::LeadOpen),
        Just(FaultCause::LeadShort),
        Just(FaultCause::SensorError)
    ]
}

fn level() -> impl Strategy<Value = Level> {
    (quantity(), any::<i32>(), any::<i32>()).prop_map(|(quantity, value, threshold)| Level {
        quantity,
        value,
        threshold,
    })
}

fn channel() -> impl Strategy<Value = u8> {
    0..MAX_CHANNELS as u8
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (channel(), level()).prop_map(|(channel, level)| EventKind::AlarmRaised { channel, level }),
        (channel(), level())
            .prop_map(|(channel, level)| EventKind::AlarmCleared { channel, level }),
        (channel(), cause()).prop_map(|(channel, cause)| EventKind::Fault { channel, cause }),
        (channel(), cause())
            .prop_map(|(channel, cause)| EventKind::FaultCleared { channel, cause }),
        Just(EventKind::Smoke),
        Just(EventKind::SmokeCleared),
        any::<u16>().prop_map(|battery_mv| EventKind::BatteryLow { battery_mv }),
        any::<u16>().prop_map(|battery_mv| EventKind::BatteryOk { battery_mv }),
        prop_oneof![Just(SelfTestResult::Passed), Just(SelfTestResult::Failed)]
            .prop_map(|result| EventKind::SelfTest { result }),
        any::<u32>().prop_map(|duration_s| EventKind::Silenced { duration_s }),
        Just(EventKind::Tamper),
        Just(EventKind::TamperCleared),
        (
            any::<u32>(),
            prop_oneof![
                Just(CommandOutcome::Done),
                Just(CommandOutcome::NotApplicable),
                Just(CommandOutcome::Refused)
            ]
        )
            .prop_map(|(id, outcome)| EventKind::CommandResult { id, outcome }),
        any::<u32>().prop_map(|version| EventKind::ConfigApplied { version }),
        (any::<u32>(), hstring())
            .prop_map(|(version, reason)| EventKind::ConfigRefused { version, reason }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (any::<u32>(), time(), event_kind()).prop_map(|(seq, time, kind)| Event { seq, time, kind })
}

fn status() -> impl Strategy<Value = Status> {
    let heartbeat = (
        (any::<u32>(), time(), hstring()),
        (of(any::<i16>()), of(any::<u16>())),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |(
                (seq, time, firmware),
                (signal_dbm, battery_mv),
                (report_interval_s, heartbeat_interval_s, config_version, dropped_telemetry),
            )| Heartbeat {
                seq,
                time,
                firmware,
                signal_dbm,
                battery_mv,
                report_interval_s,
                heartbeat_interval_s,
                config_version,
                dropped_telemetry,
            },
        );
    prop_oneof![Just(Status::Offline), heartbeat.prop_map(Status::Online)]
}

fn config() -> impl Strategy<Value = Config> {
    let threshold = prop_oneof![
        any::<u16>().prop_map(Threshold::ResidualMa),
        any::<i16>().prop_map(Threshold::TempDc)
    ];
    let chans = channels().prop_flat_map(move |chs| {
        chs.into_iter()
            .map(|channel| {
                (any::<bool>(), threshold.clone(), any::<u16>()).prop_map(
                    move |(enabled, threshold, delay_s)| ChannelConfig {
                        channel,
                        enabled,
                        threshold,
                        delay_s,
                    },
                )
            })
            .collect::<StdVec<_>>()
    });
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        chans,
    )
        .prop_map(
            |(version, report_interval_s, heartbeat_interval_s, buzzer, relay_trip, chans)| {
                Config {
                    version,
                    report_interval_s,
                    heartbeat_interval_s,
                    buzzer,
                    relay_trip,
                    channels: chans.into_iter().collect(),
                }
            },
        )
}

fn command() -> impl Strategy<Value = Command> {
    let action = prop_oneof![
        Just(Action::SelfTest),
        Just(Action::Silence),
        of(channel()).prop_map(|channel| Action::ResetAlarm { channel }),
        Just(Action::Reboot),
    ];
    (any::<u32>(), any::<u64>(), action).prop_map(|(id, time_ms, action)| Command {
        id,
        time_ms,
        action,
    })
}

fn ack() -> impl Strategy<Value = Ack> {
    (pvec(any::<u32>(), 0..=MAX_ACK_SEQS), any::<u64>()).prop_map(|(seqs, time_ms)| Ack {
        seqs: seqs.into_iter().collect(),
        time_ms,
    })
}

pub(crate) fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        telemetry().prop_map(Message::Telemetry),
        event().prop_map(Message::Event),
        status().prop_map(Message::Status),
        config().prop_map(Message::Config),
        command().prop_map(Message::Command),
        ack().prop_map(Message::Ack),
    ]
}

fn round_trip(msg: &Message, encoding: Encoding) -> Result<Message, DecodeError> {
    let mut buf = [0u8; MAX_PAYLOAD];
    let n = encode(msg, encoding, &mut buf).expect("MAX_PAYLOAD holds every message");
    assert_eq!(detect(&buf[..n]), Ok(encoding));
    decode(msg.topic_kind(), &buf[..n])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_round_trips_in_json(msg in message()) {
        prop_assert_eq!(round_trip(&msg, Encoding::Json), Ok(msg));
    }

    #[test]
    fn every_message_round_trips_in_binary(msg in message()) {
        prop_assert_eq!(round_trip(&msg, Encoding::Binary), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in pvec(any::<u8>(), 0..600), k in 0usize..6) {
        let _ = decode(DeviceTopic::ALL[k], &bytes);
    }

    #[test]
    fn binary_header_then_arbitrary_bytes_never_panic(bytes in pvec(any::<u8>(), 0..600), k in 0usize..6) {
        let mut payload = std::vec![BINARY_MARKER, BINARY_VERSION];
        payload.extend_from_slice(&bytes);
        let _ = decode(DeviceTopic::ALL[k], &payload);
    }

    #[test]
    fn mutated_json_never_panics(msg in message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = encode(&msg, Encoding::Json, &mut buf).unwrap();
        buf[at.index(n)] = byte;
        let _ = decode(msg.topic_kind(), &buf[..n]);
    }

    #[test]
    fn truncated_messages_are_refused_not_misread(msg in message(), cut in any::<prop::sample::Index>(), binary in any::<bool>()) {
        let enc = if binary { Encoding::Binary } else { Encoding::Json };
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = encode(&msg, enc, &mut buf).unwrap();
        let cut = cut.index(n);
        // A strict prefix must not decode to the same message.
        prop_assert_ne!(decode(msg.topic_kind(), &buf[..cut]), Ok(msg));
    }
}

// --- literal examples ------------------------------------------------------------------------

fn dec(kind: DeviceTopic, s: &str) -> Result<Message, DecodeError> {
    decode(kind, s.as_bytes())
}

#[test]
fn json_telemetry_example() {
    let m = dec(
        DeviceTopic::Telemetry,
        r#"{"seq":1042,"ts":1764403200000,"up_ms":86400000,"readings":[
            {"ch":0,"residual_ma":112},{"ch":1,"temp_dc":312,"future_field":[1,{"x":"y"}]}]}"#,
    )
    .unwrap();
    let Message::Telemetry(t) = m else {
        panic!("{m:?}")
    };
    assert_eq!(t.seq, 1042);
    assert_eq!(t.time.unix_ms, Some(1_764_403_200_000));
    assert_eq!(t.readings[0].residual_ma, Some(112));
    assert_eq!(t.readings[1].value_of(Quantity::Temperature), Some(312));
}

#[test]
fn json_event_examples() {
    let Message::Event(e) = dec(
        DeviceTopic::Event,
        r#"{"seq":1043,"up_ms":5,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
    )
    .unwrap() else {
        panic!()
    };
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
    let Message::Event(e) = dec(
        DeviceTopic::Event,
        r#"{"seq":9,"up_ms":5,"kind":"config_refused","version":4,"reason":"channel 1: \"temp\" \u00b0C"}"#,
    )
    .unwrap() else {
        panic!()
    };
    let EventKind::ConfigRefused { reason, .. } = e.kind else {
        panic!()
    };
    assert_eq!(reason.as_str(), "channel 1: \"temp\" °C");
}

#[test]
fn json_refusals_say_why() {
    use DeviceTopic::*;
    let cases: &[(DeviceTopic, &str, &str)] = &[
        (
            Event,
            r#"{"seq":1,"up_ms":0,"kind":"alarm_raised","residual_ma":1,"threshold_ma":2}"#,
            "invalid message: event kind \"alarm_raised\" needs field \"ch\"",
        ),
        (
            Event,
            r#"{"seq":1,"up_ms":0,"kind":"alarm_raised","ch":0,"residual_ma":1,"temp_dc":2}"#,
            "invalid message: a level needs exactly one of \"residual_ma\" (with \"threshold_ma\") or \"temp_dc\" (with \"threshold_dc\")",
        ),
        (
            Event,
            r#"{"seq":1,"up_ms":0,"kind":"fault","ch":20,"cause":"lead_open"}"#,
            "invalid message: channel 20 does not exist: channels are 0-15",
        ),
        (
            Telemetry,
            r#"{"seq":1,"up_ms":0,"readings":[{"ch":1,"temp_dc":1},{"ch":1,"temp_dc":2}]}"#,
            "invalid message: channel 1 appears twice in one message",
        ),
        (
            Telemetry,
            r#"{"seq":1,"up_ms":0,"readings":[{"ch":3}]}"#,
            "invalid message: reading of channel 3 has no value: give residual_ma, temp_dc, voltage_dv or current_ma",
        ),
        (
            Telemetry,
            r#"{"seq":1,"up_ms":0,"readings":[]} {"#,
            "bad JSON: JSON has non-whitespace trailing characters after the value.",
        ),
        (
            Telemetry,
            "[1,2]",
            "payload starts with byte 0x5b: expected a JSON object ('{') or the binary marker 0xfb",
        ),
        (Telemetry, "   ", "empty payload"),
        (
            Status,
            r#"{"state":"online","seq":1,"up_ms":0}"#,
            "invalid message: event kind \"online\" needs field \"firmware\"",
        ),
        (
            Telemetry,
            "\u{fb}",
            "payload starts with byte 0xc3: expected a JSON object ('{') or the binary marker 0xfb",
        ),
    ];
    for (kind, payload, why) in cases {
        assert_eq!(
            dec(*kind, payload).unwrap_err().to_string(),
            *why,
            "{payload}"
        );
    }
    assert_eq!(
        decode(Telemetry, &[BINARY_MARKER, 9, 0])
            .unwrap_err()
            .reason(),
        "binary_version"
    );
    assert_eq!(
        decode(Telemetry, &[BINARY_MARKER]).unwrap_err().reason(),
        "binary_version"
    );
    let big = [b' '; MAX_PAYLOAD + 1];
    assert_eq!(
        decode(Telemetry, &big),
        Err(DecodeError::TooLarge {
            len: MAX_PAYLOAD + 1
        })
    );
}

#[test]
fn hostile_nesting_is_refused_before_parsing() {
    let mut deep = std::string::String::from(r#"{"seq":1,"up_ms":0,"readings":[],"x":"#);
    deep.push_str(&"[".repeat(3000));
    assert_eq!(
        dec(DeviceTopic::Telemetry, &deep),
        Err(DecodeError::TooDeep)
    );
    // Brackets inside strings do not count.
    let ok = r#"{"seq":1,"up_ms":0,"readings":[],"x":"[[[[[[[[[[[[[[[[\"[[[["}"#;
    assert!(dec(DeviceTopic::Telemetry, ok).is_ok());
}

#[test]
fn binary_refuses_trailing_bytes() {
    let msg = Message::Ack(Ack {
        seqs: Vec::from_slice(&[1, 2]).unwrap(),
        time_ms: 3,
    });
    let mut buf = [0u8; 64];
    let n = encode(&msg, Encoding::Binary, &mut buf).unwrap();
    assert_eq!(decode(DeviceTopic::Ack, &buf[..n]), Ok(msg));
    assert_eq!(
        decode(DeviceTopic::Ack, &buf[..n + 1]),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
}

#[test]
fn encoding_into_a_small_buffer_fails_cleanly() {
    let msg = Message::Status(Status::Offline);
    for enc in [Encoding::Json, Encoding::Binary] {
        let mut buf = [0u8; 1];
        assert_eq!(encode(&msg, enc, &mut buf), Err(EncodeError::BufferFull));
    }
}

/// The largest message fits [`MAX_PAYLOAD`] in JSON, so every encoder's output is decodable.
#[test]
fn largest_message_fits_the_payload_limit() {
    let r = Reading {
        channel: 0,
        residual_ma: Some(u32::MAX),
        temp_dc: Some(i16::MIN),
        voltage_dv: Some(u16::MAX),
        current_ma: Some(u32::MAX),
    };
    let t = Telemetry {
        seq: u32::MAX,
        time: DeviceTime {
            uptime_ms: u64::MAX,
            unix_ms: Some(u64::MAX),
        },
        readings: (0..MAX_CHANNELS as u8)
            .map(|channel| Reading { channel, ..r })
            .collect(),
    };
    let mut buf = [0u8; MAX_PAYLOAD];
    let n = encode(&Message::Telemetry(t), Encoding::Json, &mut buf).unwrap();
    assert!(n < MAX_PAYLOAD / 2, "{n}");
}

/// The typical monitor's telemetry (1 residual + 4 temperature channels) in both encodings;
/// the sizes are quoted in docs/protocol.md.
#[test]
fn typical_telemetry_sizes() {
    let t = Message::Telemetry(Telemetry {
        seq: 1042,
        time: DeviceTime {
            uptime_ms: 86_400_000,
            unix_ms: Some(1_764_403_200_000),
        },
        readings: [
            Reading {
                channel: 0,
                residual_ma: Some(112),
                ..Reading::default()
            },
            Reading {
                channel: 1,
                temp_dc: Some(312),
                ..Reading::default()
            },
            Reading {
                channel: 2,
                temp_dc: Some(298),
                ..Reading::default()
            },
            Reading {
                channel: 3,
                temp_dc: Some(305),
                ..Reading::default()
            },
            Reading {
                channel: 4,
                temp_dc: Some(301),
                ..Reading::default()
            },
        ]
        .into_iter()
        .collect(),
    });
    let mut buf = [0u8; 512];
    let json = encode(&t, Encoding::Json, &mut buf).unwrap();
    let binary = encode(&t, Encoding::Binary, &mut buf).unwrap();
    assert_eq!((json, binary), (180, 50));
}

#[test]
fn a_json_payload_may_claim_its_device() {
    use super::json::claimed_device;
    let claim = |s: &str| {
        claimed_device(s.as_bytes()).map(|d| d.map(|d| std::string::String::from(d.as_str())))
    };
    assert_eq!(
        claim(r#"{"dev":"hz-0042","seq":1,"up_ms":0,"kind":"smoke"}"#),
        Ok(Some("hz-0042".into()))
    );
    assert_eq!(claim(r#"{"seq":1,"up_ms":0,"kind":"smoke"}"#), Ok(None));
    assert!(
        claim(r#"{"dev":"a/b"}"#).is_err(),
        "a claim must be a valid id"
    );
    // The claim does not disturb decoding (unknown fields are ignored).
    assert!(
        decode(
            DeviceTopic::Event,
            br#"{"dev":"x","seq":1,"up_ms":0,"kind":"smoke"}"#
        )
        .is_ok()
    );
}
