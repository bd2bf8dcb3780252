//! Ingest: from a topic and payload to a typed message of a known device, or a counted refusal.
//!
//! [`classify`] is pure: it parses the topic, decodes the payload in whichever encoding it is,
//! and checks it is uplink. Whether the device is registered is the caller's question
//! ([`Refusal::UnknownDevice`], [`Refusal::Decommissioned`]), and duplicates are found by the
//! journal ([`Refusal::Duplicate`]). [`Refusals`] counts every refusal by reason for
//! `/metrics` and logs each reason once (with an example), not once per message, so a
//! misbehaving fleet cannot flood the log.

use std::collections::HashMap;
use std::fmt;

use firegrid_protocols::DeviceId;
use firegrid_protocols::codec::{self, DecodeError};
use firegrid_protocols::message::Message;
use firegrid_protocols::topic::{Topic, TopicError};

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The topic is not a firegrid topic (or a malformed one).
    Topic(TopicError),
    /// A gateway → device topic (config, cmd, ack) seen on the uplink.
    NotUplink,
    /// The payload does not decode.
    Decode(DecodeError),
    /// The device is not registered (it goes to the pending list).
    UnknownDevice,
    /// The device is registered but not commissioned yet (not pending: it is known).
    NotCommissioned,
    /// The device was decommissioned.
    Decommissioned,
    /// The same (device, sequence number) was taken before.
    Duplicate,
    /// The payload's `dev` names another device than its topic.
    DeviceMismatch,
}

impl Refusal {
    /// A short, stable name for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Topic(_) => "bad_topic",
            Self::NotUplink => "not_uplink",
            Self::Decode(e) => match e.reason() {
                "json" => "decode_json",
                "binary" => "decode_binary",
                // empty, too_large, unknown_encoding, binary_version, too_deep, ...: as named
                // by the codec.
                other => other,
            },
            Self::UnknownDevice => "unknown_device",
            Self::NotCommissioned => "not_commissioned",
            Self::Decommissioned => "decommissioned",
            Self::Duplicate => "duplicate",
            Self::DeviceMismatch => "device_mismatch",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Topic(e) => write!(f, "{e}"),
            Self::NotUplink => f.write_str("devices do not publish on config, cmd or ack topics"),
            Self::Decode(e) => write!(f, "{e}"),
            Self::UnknownDevice => f.write_str("device is not registered (listed as pending)"),
            Self::NotCommissioned => f.write_str(
                "device is registered but not commissioned: its messages count once it is \
                 (POST /api/v1/devices/{id}/state {\"to\":\"commissioned\"})",
            ),
            Self::Decommissioned => f.write_str("device is decommissioned"),
            Self::Duplicate => f.write_str("sequence number already taken"),
            Self::DeviceMismatch => {
                f.write_str("the payload's \"dev\" names another device than the topic")
            }
        }
    }
}

/// Parses the topic and decodes the payload of an uplink message.
///
/// # Errors
/// [`Refusal`] says why (the device id is returned with it when the topic had one).
pub fn classify(
    topic: &str,
    payload: &[u8],
) -> Result<(DeviceId, Message), (Option<DeviceId>, Refusal)> {
    let (device, kind) = match Topic::parse(topic) {
        Ok(Topic::Device(device, kind)) => (device, kind),
        Ok(Topic::Alert(_)) => return Err((None, Refusal::NotUplink)),
        Err(e) => return Err((None, Refusal::Topic(e))),
    };
    if !kind.is_uplink() {
        return Err((Some(device), Refusal::NotUplink));
    }
    let msg =
        codec::decode(kind, payload).map_err(|e| (Some(device.clone()), Refusal::Decode(e)))?;
    if codec::detect(payload) == Ok(codec::Encoding::Json) {
        match codec::json::claimed_device(payload) {
            Ok(Some(claimed)) if claimed != device => {
                return Err((Some(device), Refusal::DeviceMismatch));
            }
            Err(e) => return Err((Some(device), Refusal::Decode(e))),
            _ => {}
        }
    }
    Ok((device, msg))
}

/// Refusal counters by reason; each reason is logged once with an example.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: HashMap<&'static str, u64>,
}

impl Refusals {
    /// Counts a refusal; logs it if it is the first of its reason.
    pub fn count(&mut self, topic: &str, refusal: &Refusal) {
        let n = self.counts.entry(refusal.reason()).or_insert(0);
        *n += 1;
        if *n == 1 {
            // Topics are bounded by the broker's limits; cut anyway so one log line stays short.
            let topic: String = topic.chars().take(120).collect();
            tracing::warn!(
                reason = refusal.reason(),
                %topic,
                "refused a message: {refusal} (further refusals for this reason are only counted, see /metrics)"
            );
        }
    }

    /// Every reason and its count, sorted by reason.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.counts.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    /// The count of one reason.
    pub fn get(&self, reason: &str) -> u64 {
        self.counts.get(reason).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplink_messages_decode_with_their_device() {
        let (dev, msg) = classify(
            "firegrid/v1/dev/hz-1/event",
            br#"{"seq":1,"up_ms":0,"kind":"smoke"}"#,
        )
        .unwrap();
        assert_eq!(dev.as_str(), "hz-1");
        assert!(matches!(msg, Message::Event(_)));
    }

    #[test]
    fn refusals_have_reasons() {
        let reason = |t: &str, p: &[u8]| classify(t, p).unwrap_err().1.reason();
        assert_eq!(reason("firegrid/v1/dev/a+b/event", b"{}"), "bad_topic");
        assert_eq!(reason("other/topic", b"{}"), "bad_topic");
        assert_eq!(reason("firegrid/v1/dev/a/cmd", b"{}"), "not_uplink");
        assert_eq!(reason("firegrid/v1/alert/g", b"{}"), "not_uplink");
        assert_eq!(
            reason("firegrid/v1/dev/a/event", b"{not json"),
            "decode_json"
        );
        assert_eq!(
            reason("firegrid/v1/dev/a/event", &[0xFB, 1, 0xFF]),
            "decode_binary"
        );
        assert_eq!(
            reason(
                "firegrid/v1/dev/a/event",
                br#"{"seq":1,"up_ms":0,"kind":"fault"}"#
            ),
            "invalid"
        );
        assert_eq!(
            reason(
                "firegrid/v1/dev/a/event",
                br#"{"dev":"b","seq":1,"up_ms":0,"kind":"smoke"}"#
            ),
            "device_mismatch"
        );
        assert!(
            classify(
                "firegrid/v1/dev/a/event",
                br#"{"dev":"a","seq":1,"up_ms":0,"kind":"smoke"}"#
            )
            .is_ok()
        );
        let (dev, _) = classify("firegrid/v1/dev/a/telemetry", b"").unwrap_err();
        assert_eq!(
            dev.unwrap().as_str(),
            "a",
            "the device is known even when the payload is bad"
        );
    }

    #[test]
    fn counts_by_reason() {
        let mut r = Refusals::default();
        for _ in 0..1000 {
            r.count("firegrid/v1/dev/x/event", &Refusal::UnknownDevice);
        }
        r.count("t", &Refusal::Duplicate);
        assert_eq!(r.snapshot(), [("duplicate", 1), ("unknown_device", 1000)]);
        assert_eq!(r.get("unknown_device"), 1000);
        assert_eq!(r.get("nothing"), 0);
    }
}
