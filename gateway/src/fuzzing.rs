//! The bodies of the gateway's fuzz targets (`gateway/fuzz`, run by `scripts/fuzz`), kept here
//! so that the inputs a fuzzer found are replayed by an ordinary test
//! (`tests/fuzz_regressions.rs`) and exercised by property tests, without nightly.
//!
//! Each body checks its invariants with `assert!`: a panic here is a finding.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use firegrid_protocols::message::Message;
use firegrid_protocols::topic::{DeviceTopic, Topic};
use firegrid_protocols::{DeviceId, codec};

use crate::config::{Config, ConfigError};
use crate::ingest::{self, Refusals};

/// The device a well-formed fuzzed topic names.
pub const FUZZ_DEVICE: &str = "hz-0042";

/// Ingest classification of any topic and payload: [`ingest::classify`] never panics, a refusal
/// has a reason and a text and is counted, and what is taken is an uplink message of the
/// topic's device that re-encodes and decodes to itself.
///
/// Input: the first byte `k`. If `k < 0x80`, the topic is the well-formed device topic
/// `firegrid/v1/dev/hz-0042/<kind k % 6>` and the rest is the payload (this reaches the
/// decoders); otherwise the rest up to the first zero byte is the topic (as lossy UTF-8) and
/// what follows it the payload.
pub fn ingest(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let (topic, payload) = if k < 0x80 {
        let kind = DeviceTopic::ALL[usize::from(k) % DeviceTopic::ALL.len()];
        let device = DeviceId::new(FUZZ_DEVICE).expect("a valid device id");
        (Topic::Device(device, kind).to_string(), rest)
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let payload = rest.get(split + 1..).unwrap_or_default();
        (
            String::from_utf8_lossy(&rest[..split]).into_owned(),
            payload,
        )
    };
    match ingest::classify(&topic, payload) {
        Ok((device, msg)) => {
            let Ok(Topic::Device(d, kind)) = Topic::parse(&topic) else {
                panic!("taken from a topic that does not parse: {topic:?}");
            };
            assert_eq!(d, device, "the device is the topic's");
            assert!(kind.is_uplink(), "taken from a downlink topic {topic:?}");
            for enc in [codec::Encoding::Json, codec::Encoding::Binary] {
                let mut buf = [0u8; codec::MAX_PAYLOAD];
                let n = codec::encode(&msg, enc, &mut buf).expect("a taken message re-encodes");
                let again: Message =
                    codec::decode(kind, &buf[..n]).expect("a re-encoded message decodes");
                assert_eq!(again, msg, "{enc:?} round trip");
            }
        }
        Err((_, refusal)) => {
            let reason = refusal.reason();
            assert!(!reason.is_empty() && !refusal.to_string().is_empty());
            let mut refusals = Refusals::default();
            refusals.count(&topic, &refusal);
            assert_eq!(
                refusals.get(reason),
                1,
                "the refusal is counted as {reason}"
            );
        }
    }
}

/// The configuration parser on any text: [`Config::parse`] gives a configuration or a
/// [`ConfigError`] naming the file (with a line and column inside the text for a parse error),
/// never a panic; a configuration it accepts converts to engine settings and limits.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Config::parse(text, path) {
        Ok(config) => {
            let _ = config.engine_config();
            let _ = config.limits();
            for w in &config.webhooks {
                let _ = w.address_policy();
            }
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            if let ConfigError::Parse { line, column, .. } = e {
                let lines = text.split('\n').count().max(1);
                assert!(line >= 1 && line <= lines, "line {line} of {lines}");
                assert!(column >= 1, "column {column}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::DEFAULT_CONFIG;

    /// Payloads near the valid ones: a valid event or telemetry JSON with one byte changed,
    /// inserted or removed.
    fn near_valid_payload() -> impl Strategy<Value = Vec<u8>> {
        let valid = prop_oneof![
            Just(&br#"{"seq":1043,"up_ms":5,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300,"dev":"hz-0042"}"#[..]),
            Just(&br#"{"seq":1042,"ts":1764403200000,"up_ms":86400000,"readings":[{"ch":0,"residual_ma":12}]}"#[..]),
            Just(&br#"{"seq":7,"up_ms":1,"online":true,"interval_s":60}"#[..]),
        ];
        (valid, any::<usize>(), any::<u8>(), 0..3u8).prop_map(|(v, at, byte, how)| {
            let mut p = v.to_vec();
            let i = at % p.len();
            match how {
                0 => p[i] = byte,
                1 => p.insert(i, byte),
                _ => {
                    p.remove(i);
                }
            }
            p
        })
    }

    /// Configuration texts near the default: a line removed, duplicated, uncommented, or a
    /// character changed.
    fn near_default_config() -> impl Strategy<Value = String> {
        let lines: Vec<&'static str> = DEFAULT_CONFIG.lines().collect();
        let n = lines.len();
        (0..n, 0..4u8, any::<char>(), any::<usize>()).prop_map(move |(i, how, c, at)| {
            let mut l: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
            match how {
                0 => {
                    l.remove(i);
                }
                1 => l.insert(i, l[i].clone()),
                2 => l[i] = l[i].trim_start_matches("# ").to_owned(),
                _ => {
                    let s = &mut l[i];
                    let at = s
                        .char_indices()
                        .nth(at % (s.chars().count() + 1))
                        .map_or(s.len(), |(b, _)| b);
                    s.insert(at, c);
                }
            }
            l.join("\n")
        })
    }

    proptest! {
        #[test]
        fn ingest_never_panics(k: u8, payload in near_valid_payload()) {
            let mut data = vec![k % 3]; // telemetry, event, status topics
            data.extend_from_slice(&payload);
            ingest(&data);
        }

        #[test]
        fn ingest_of_any_bytes_never_panics(data: Vec<u8>) {
            ingest(&data);
        }

        #[test]
        fn ingest_of_any_topic_never_panics(topic in "(firegrid/v1/(dev|alert)/)?[a-z0-9é/+#-]{0,40}", payload: Vec<u8>) {
            let mut data = vec![0xff];
            data.extend_from_slice(topic.as_bytes());
            data.push(0);
            data.extend_from_slice(&payload);
            ingest(&data);
        }

        #[test]
        fn config_near_the_default_never_panics(text in near_default_config()) {
            config(text.as_bytes());
        }

        #[test]
        fn config_of_any_text_never_panics(text in "(\\PC|\n|\r|\\[|\\]|=|\"|#|\\.){0,200}") {
            config(text.as_bytes());
        }
    }
}
