//! What a grid worker receives: the alert message, its topic, and the webhook signature's MAC.
//!
//! One JSON object per alert, the same on every channel (MQTT `firegrid/v1/alert/{area}`,
//! server-sent events, webhooks), so an SMS/IM gateway or a worker's app parses one shape:
//!
//! ```json
//! {"alert_id":7,"episode":12,"what":"opened","category":"alarm","device":"hz-0042","channel":0,
//!  "area":"gongshu-07","level":0,"source":"device","started_ms":1764403260000,
//!  "quantity":"residual_current","value":412,"threshold":300,"sent_ms":1764403260004}
//! ```
//!
//! `what` is `opened`, `escalated` (sent to the area `level` steps above the grid cell) or
//! `ended`. `alert_id` identifies this alert across retries: a receiver that sees the same id
//! twice has the same alert twice (delivery is at least once). It is derived from what the alert
//! is about ([`alert_id`]): an episode's `opened` alert from the device and sequence number of
//! the event that opened it, later alerts from the episode, the kind and the level — so that a
//! gateway that crashed before journaling an alert sends it again, after the device's resend,
//! under the same id, never a second one.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use firegrid_protocols::GridId;
use firegrid_protocols::channel::Quantity;

use crate::model::{Category, EpisodeId, Source, UnixMs};

/// Derives an alert's id from `parts` (what the alert is about, see the [module docs](self)):
/// FNV-1a (64 bits) over the parts, each closed by a `0xff` byte (which UTF-8 text never
/// holds), kept to 53 bits so that it is exact as a JSON number in every parser (JavaScript's
/// included), never 0. Stable across builds and platforms: do not change it, receivers keep
/// the ids they have seen.
pub fn alert_id(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    // Folded rather than cut, so that every bit of the hash counts.
    let id = (h ^ (h >> 53)) & ((1 << 53) - 1);
    id.max(1)
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An episode started.
    Opened,
    /// Nobody acknowledged in time; sent one level further up.
    Escalated,
    /// The condition ended.
    Ended,
}

/// One alert, as sent on every channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The notification's id (stable across retries).
    pub alert_id: u64,
    /// The episode.
    pub episode: EpisodeId,
    /// Why it is sent.
    pub what: AlertKind,
    /// The episode's category.
    pub category: Category,
    /// The device.
    pub device: String,
    /// The channel, for alarms and faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<u8>,
    /// The area it is sent to (the grid cell at level 0).
    pub area: GridId,
    /// Escalation level (0: the grid cell).
    pub level: u8,
    /// Who detected it.
    pub source: Source,
    /// When the episode started.
    pub started_ms: UnixMs,
    /// What was measured, for alarms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// The (peak) value, for alarms: mA or deci-°C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i32>,
    /// The set-point, for alarms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// The fault's cause, for faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the gateway sent it (first attempt).
    pub sent_ms: UnixMs,
    /// Why an escalation was sent, when not because nobody acknowledged in time (absent): an
    /// acknowledged ticket not rectified by its deadline ([`crate::workflow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EscalationReason>,
    /// A commissioning test's alert: the device is `commissioned`, the alert is for its
    /// installer only and never escalates ([`crate::commissioning`]); absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Why an escalation was sent (absent from the alert: nobody acknowledged in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// Acknowledged, but not rectified by the category's deadline.
    RectifyOverdue,
}

impl Alert {
    /// The MQTT topic it is published on.
    pub fn topic(&self) -> String {
        firegrid_protocols::Topic::Alert(self.area.clone()).to_string()
    }
}

/// The header carrying the webhook signature.
pub const SIGNATURE_HEADER: &str = "X-Firegrid-Signature";

/// `sha256=` and the hex HMAC-SHA256 of `data` under the secret. A webhook signs its timestamp
/// and body with it ([`crate::notify::webhook::signature`]), so that a receiver can check that
/// the alert came from this gateway, unaltered, and recently.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature made by [`sign`] in constant time.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn alert_ids_are_stable_distinct_and_exact_in_json() {
        let a = super::alert_id(&[b"opened", b"hz-0042", &1043u32.to_be_bytes(), b"mqtt"]);
        // The derivation is a contract with receivers: a change shows here.
        assert_eq!(a, 5_645_329_022_911_007);
        assert_eq!(
            a,
            super::alert_id(&[b"opened", b"hz-0042", &1043u32.to_be_bytes(), b"mqtt"])
        );
        assert_ne!(
            a,
            super::alert_id(&[b"opened", b"hz-0042", &1044u32.to_be_bytes(), b"mqtt"])
        );
        // Parts are delimited: moving bytes between them changes the id.
        assert_ne!(
            super::alert_id(&[b"ab", b"c"]),
            super::alert_id(&[b"a", b"bc"])
        );
        assert!(a > 0 && a < 1 << 53);
    }

    use super::*;

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let s = sign(b"k", b"body");
        assert!(verify(b"k", b"body", &s));
        assert!(!verify(b"k", b"bodY", &s));
        assert!(!verify(b"K", b"body", &s));
        assert!(!verify(b"k", b"body", "sha256=zz"));
        assert!(!verify(b"k", b"body", &s[7..]));
    }

    #[test]
    fn alert_json_shape() {
        let a = Alert {
            alert_id: 7,
            episode: 12,
            what: AlertKind::Opened,
            category: Category::Alarm,
            device: "hz-0042".into(),
            channel: Some(0),
            area: GridId::new("gongshu-07").unwrap(),
            level: 0,
            source: Source::Device,
            started_ms: 1_764_403_260_000,
            quantity: Some(Quantity::ResidualCurrent),
            value: Some(412),
            threshold: Some(300),
            detail: None,
            sent_ms: 1_764_403_260_004,
            reason: None,
            test: false,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"alert_id":7,"episode":12,"what":"opened","category":"alarm","device":"hz-0042","channel":0,"area":"gongshu-07","level":0,"source":"device","started_ms":1764403260000,"quantity":"residual_current","value":412,"threshold":300,"sent_ms":1764403260004}"#
        );
        assert_eq!(a.topic(), "firegrid/v1/alert/gongshu-07");
        let back: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
