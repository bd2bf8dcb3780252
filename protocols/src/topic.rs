//! The MQTT topic scheme.
//!
//! ```text
//! firegrid/v1/dev/{device_id}/telemetry   device → gateway  periodic readings (QoS 0 or 1)
//! firegrid/v1/dev/{device_id}/event       device → gateway  alarm/fault/smoke/battery/self-test edges (QoS 1)
//! firegrid/v1/dev/{device_id}/status      device → gateway  heartbeat; last will "offline" (retained)
//! firegrid/v1/dev/{device_id}/config      gateway → device  thresholds and intervals (retained)
//! firegrid/v1/dev/{device_id}/cmd         gateway → device  self-test, silence, reset, reboot
//! firegrid/v1/dev/{device_id}/ack         gateway → device  event sequence numbers journaled
//! firegrid/v1/alert/{grid_id}             gateway → grid workers (QoS 1)
//! ```
//!
//! ```
//! use firegrid_protocols::topic::{DeviceTopic, Topic};
//! use firegrid_protocols::DeviceId;
//!
//! let t = Topic::parse("firegrid/v1/dev/hz-0042/event").unwrap();
//! assert_eq!(t, Topic::Device(DeviceId::new("hz-0042").unwrap(), DeviceTopic::Event));
//! assert_eq!(t.to_string(), "firegrid/v1/dev/hz-0042/event");
//! ```

use core::fmt;

use crate::id::{DeviceId, GridId, IdError};

/// The first levels of every firegrid topic; `v1` is the protocol's major version.
pub const PREFIX: &str = "firegrid/v1";

/// Subscription filter for everything devices send to the gateway.
pub const DEVICE_UPLINK_FILTERS: [&str; 3] = [
    "firegrid/v1/dev/+/telemetry",
    "firegrid/v1/dev/+/event",
    "firegrid/v1/dev/+/status",
];

/// Subscription filter for every grid cell's alerts.
pub const ALERT_FILTER: &str = "firegrid/v1/alert/#";

/// The longest topic this scheme produces, in bytes (`firegrid/v1/dev/` + id + `/telemetry`).
pub const MAX_TOPIC_LEN: usize = 16 + crate::id::MAX_ID_LEN + 10;

/// The last level of a device topic: what the message on it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceTopic {
    /// Periodic readings, device → gateway.
    Telemetry,
    /// Alarm/fault/smoke/battery/self-test edges and command results, device → gateway.
    Event,
    /// Heartbeat and last will, device → gateway, retained.
    Status,
    /// Thresholds and intervals, gateway → device, retained.
    Config,
    /// Commands, gateway → device.
    Cmd,
    /// End-to-end acknowledgement of journaled events, gateway → device.
    Ack,
}

impl DeviceTopic {
    /// Every device topic, in a fixed order.
    pub const ALL: [Self; 6] = [
        Self::Telemetry,
        Self::Event,
        Self::Status,
        Self::Config,
        Self::Cmd,
        Self::Ack,
    ];

    /// The topic level's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Event => "event",
            Self::Status => "status",
            Self::Config => "config",
            Self::Cmd => "cmd",
            Self::Ack => "ack",
        }
    }

    /// Whether devices publish on it (as opposed to subscribing to it).
    pub const fn is_uplink(self) -> bool {
        matches!(self, Self::Telemetry | Self::Event | Self::Status)
    }
}

/// A parsed firegrid topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `firegrid/v1/dev/{device_id}/{kind}`.
    Device(DeviceId, DeviceTopic),
    /// `firegrid/v1/alert/{grid_id}`.
    Alert(GridId),
}

/// Why a topic is not a firegrid topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// It does not start with `firegrid/v1/`.
    NotFiregrid,
    /// It is a firegrid topic of another major version (e.g. `firegrid/v2/...`).
    UnsupportedVersion,
    /// The level after `firegrid/v1/` is neither `dev` nor `alert`, or levels are missing or extra.
    BadShape,
    /// The last level of a device topic is not one of [`DeviceTopic::ALL`].
    UnknownKind,
    /// The id level breaks the id rule.
    BadId(IdError),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFiregrid => f.write_str("topic does not start with \"firegrid/v1/\""),
            Self::UnsupportedVersion => {
                f.write_str("topic is of another protocol version: this side speaks firegrid/v1")
            }
            Self::BadShape => f.write_str(
                "topic is neither firegrid/v1/dev/{device_id}/{kind} nor firegrid/v1/alert/{grid_id}",
            ),
            Self::UnknownKind => f.write_str(
                "unknown device topic kind: expected telemetry, event, status, config, cmd or ack",
            ),
            Self::BadId(e) => write!(f, "bad id in topic: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TopicError {}

impl From<IdError> for TopicError {
    fn from(e: IdError) -> Self {
        Self::BadId(e)
    }
}

impl Topic {
    /// Parses a topic name (not a filter: wildcards are refused as bad ids).
    ///
    /// # Errors
    /// [`TopicError`] says which part is wrong.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let mut levels = topic.split('/');
        if levels.next() != Some("firegrid") {
            return Err(TopicError::NotFiregrid);
        }
        match levels.next() {
            Some("v1") => {}
            Some(v) if v.starts_with('v') => return Err(TopicError::UnsupportedVersion),
            _ => return Err(TopicError::NotFiregrid),
        }
        let parsed = match (levels.next(), levels.next(), levels.next()) {
            (Some("dev"), Some(id), Some(kind)) => {
                let kind = DeviceTopic::ALL
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .ok_or(TopicError::UnknownKind)?;
                Self::Device(DeviceId::new(id)?, kind)
            }
            (Some("alert"), Some(id), None) => Self::Alert(GridId::new(id)?),
            _ => return Err(TopicError::BadShape),
        };
        if levels.next().is_some() {
            return Err(TopicError::BadShape);
        }
        Ok(parsed)
    }

    /// The topic `kind` of device `id`.
    pub fn device(id: &DeviceId, kind: DeviceTopic) -> Self {
        Self::Device(id.clone(), kind)
    }

    /// Formats the topic into a fixed-capacity string (no heap).
    pub fn to_heapless(&self) -> heapless::String<MAX_TOPIC_LEN> {
        let mut s = heapless::String::new();
        // Cannot fail: MAX_TOPIC_LEN bounds the longest topic the scheme produces.
        let _ = fmt::write(&mut s, format_args!("{self}"));
        s
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(id, kind) => write!(f, "{PREFIX}/dev/{id}/{}", kind.as_str()),
            Self::Alert(grid) => write!(f, "{PREFIX}/alert/{grid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::ToString;

    #[test]
    fn every_kind_round_trips() {
        let id = DeviceId::new("room-3_402").unwrap();
        for kind in DeviceTopic::ALL {
            let t = Topic::device(&id, kind);
            assert_eq!(Topic::parse(&t.to_string()), Ok(t.clone()));
            assert_eq!(t.to_heapless().as_str(), t.to_string());
        }
        let a = Topic::Alert(GridId::new("gongshu-07").unwrap());
        assert_eq!(a.to_string(), "firegrid/v1/alert/gongshu-07");
        assert_eq!(Topic::parse("firegrid/v1/alert/gongshu-07"), Ok(a));
    }

    #[test]
    fn longest_topic_fits() {
        let id = DeviceId::new(&"x".repeat(crate::id::MAX_ID_LEN)).unwrap();
        let t = Topic::device(&id, DeviceTopic::Telemetry);
        assert_eq!(t.to_heapless().len(), MAX_TOPIC_LEN);
    }

    #[test]
    fn refusals_say_why() {
        use TopicError::*;
        for (t, e) in [
            ("other/v1/dev/a/event", NotFiregrid),
            ("firegrid", NotFiregrid),
            ("firegrid/v2/dev/a/event", UnsupportedVersion),
            ("firegrid/v1/dev/a", BadShape),
            ("firegrid/v1/dev/a/event/x", BadShape),
            ("firegrid/v1/alert/g/x", BadShape),
            ("firegrid/v1/foo/a/event", BadShape),
            ("firegrid/v1/dev/a/smoke", UnknownKind),
            (
                "firegrid/v1/dev/+/event",
                BadId(IdError::BadChar { ch: '+', at: 0 }),
            ),
            ("firegrid/v1/dev//event", BadId(IdError::Empty)),
            (
                "firegrid/v1/alert/#",
                BadId(IdError::BadChar { ch: '#', at: 0 }),
            ),
        ] {
            assert_eq!(Topic::parse(t), Err(e), "{t}");
        }
    }

    #[test]
    fn uplink_filters_match_uplink_kinds() {
        let ups: std::vec::Vec<_> = DeviceTopic::ALL
            .into_iter()
            .filter(|k| k.is_uplink())
            .map(|k| std::format!("firegrid/v1/dev/+/{}", k.as_str()))
            .collect();
        assert_eq!(ups, DEVICE_UPLINK_FILTERS);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Topic::parse(&s);
        }

        #[test]
        fn valid_ids_round_trip(id in "[A-Za-z0-9_-]{1,32}", k in 0usize..6) {
            let t = Topic::device(&DeviceId::new(&id).unwrap(), DeviceTopic::ALL[k]);
            prop_assert_eq!(Topic::parse(&t.to_string()), Ok(t));
        }
    }
}
