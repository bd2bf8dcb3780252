//! The nouns of the gateway: areas and grid cells, sites, circuits, devices, episodes and their
//! tickets. Plain data shared by the engine, the store, the notifier and the API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use firegrid_protocols::message::{ChannelConfig, Level};
use firegrid_protocols::{DeviceId, GridId};

/// An episode's id, the primary key of the journal. Two ranges:
/// - below [`DERIVED_EPISODE_IDS`], assigned by the engine in increasing order: episodes the
///   gateway opens itself (a device gone offline, a set-point held too long);
/// - from [`DERIVED_EPISODE_IDS`] up to 2^53, derived from the device and sequence number of
///   the event that opened it (`pipeline::plan`): a device's own alarm opens the same
///   episode again after a crash before its commit, so its alert, published before that
///   commit, names the episode the journal will hold (decision record 20).
pub type EpisodeId = u64;

/// The first derived episode id (2^40): the engine's own ids stay below it.
pub const DERIVED_EPISODE_IDS: EpisodeId = 1 << 40;

/// Milliseconds since the Unix epoch (the gateway's clock).
pub type UnixMs = u64;

/// What kind of occurrence an episode is. One episode per (device, channel, category) at a time.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A channel's value at or above its set-point (leakage or over-temperature).
    Alarm,
    /// A channel that cannot measure (lead open or short).
    Fault,
    /// The device stopped reporting (last will, or no message for too long).
    Offline,
    /// The device's battery is low.
    BatteryLow,
    /// A smoke alarm sounds.
    Smoke,
    /// The enclosure was opened or the device removed.
    Tamper,
}

impl Category {
    /// Every category.
    pub const ALL: [Self; 6] = [
        Self::Alarm,
        Self::Fault,
        Self::Offline,
        Self::BatteryLow,
        Self::Smoke,
        Self::Tamper,
    ];

    /// The name used in the API, the journal and alerts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "alarm",
            Self::Fault => "fault",
            Self::Offline => "offline",
            Self::BatteryLow => "battery_low",
            Self::Smoke => "smoke",
            Self::Tamper => "tamper",
        }
    }

    /// Whether a person must still acknowledge the ticket after the condition ended by itself
    /// (a fire or leakage alarm that stopped is still a hazard someone must look at), so that
    /// escalation goes on until acknowledged.
    pub const fn needs_ack_after_end(self) -> bool {
        matches!(self, Self::Alarm | Self::Smoke)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                UnknownName::new(
                    "category",
                    s,
                    "alarm, fault, offline, battery_low, smoke, tamper",
                )
            })
    }
}

/// A name that is not one of the allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}: expected one of {allowed}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    allowed: &'static str,
}

impl UnknownName {
    fn new(what: &'static str, given: &str, allowed: &'static str) -> Self {
        Self {
            what,
            given: given.chars().take(64).collect(),
            allowed,
        }
    }
}

/// Which episode: one device, one channel (or the whole device), one category.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpisodeKey {
    /// The device.
    pub device: DeviceId,
    /// The channel, for alarm and fault episodes.
    pub channel: Option<u8>,
    /// The category.
    pub category: Category,
}

/// Who detected the condition first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The device reported it (an event or its last will).
    Device,
    /// The gateway detected it (set-point evaluation of telemetry, heartbeat timeout).
    Gateway,
}

/// The steps of a ticket, in order (each recorded with who and when).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// The episode started and was sent to the grid cell.
    Raised,
    /// A person has seen it.
    Acknowledged,
    /// A grid worker is on the way.
    Dispatched,
    /// The hazard was fixed on site.
    Rectified,
    /// Someone checked the fix.
    Verified,
    /// Done.
    Closed,
}

impl TicketState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Raised,
        Self::Acknowledged,
        Self::Dispatched,
        Self::Rectified,
        Self::Verified,
        Self::Closed,
    ];

    /// The name used in the API and the journal.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Acknowledged => "acknowledged",
            Self::Dispatched => "dispatched",
            Self::Rectified => "rectified",
            Self::Verified => "verified",
            Self::Closed => "closed",
        }
    }

    /// Whether a ticket may go from `self` to `to`: forward only, one or more steps (a worker
    /// who acknowledges and fixes on the spot may skip `dispatched`), except that nothing moves
    /// after `closed`, and `closed` may be reached from any state (a false alarm).
    pub fn may_become(self, to: Self) -> bool {
        self != Self::Closed && to > self
    }

    /// Whether a person has acted (escalation stops).
    pub fn is_acknowledged(self) -> bool {
        self >= Self::Acknowledged
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                UnknownName::new(
                    "ticket state",
                    s,
                    "raised, acknowledged, dispatched, rectified, verified, closed",
                )
            })
    }
}

/// A device's place in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Known by id, not yet installed.
    Registered,
    /// Installed and bound to a room, circuit and grid cell; being tested.
    Commissioned,
    /// Watched: its alarms go to grid workers.
    InService,
    /// Removed: its messages are refused.
    Decommissioned,
}

/// What kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// An electrical-fire monitor speaking the firegrid MQTT protocol.
    ElectricalFireMonitor,
    /// An independent smoke alarm speaking the firegrid MQTT protocol.
    SmokeAlarm,
    /// A legacy monitor polled over Modbus.
    LegacyModbus,
}

/// What the engine needs to know of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// The device.
    pub id: DeviceId,
    /// The grid cell whose workers get its alerts.
    pub grid: GridId,
    /// Per-channel set-points and delays in force (the gateway evaluates telemetry too).
    pub channels: Vec<ChannelConfig>,
    /// Heartbeat interval, s: the device is offline after a multiple of it without news.
    pub heartbeat_interval_s: u32,
}

/// An episode as the journal and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// Its id.
    pub id: EpisodeId,
    /// Device, channel, category.
    pub key: EpisodeKey,
    /// The grid cell it was raised to.
    pub grid: GridId,
    /// Who detected it first.
    pub source: Source,
    /// When it started.
    pub started_ms: UnixMs,
    /// When the condition ended (`None`: ongoing).
    pub ended_ms: Option<UnixMs>,
    /// The worst value seen, with its set-point (alarm episodes).
    pub peak: Option<Level>,
    /// The fault's cause (fault episodes), e.g. `lead_open`.
    pub detail: Option<String>,
    /// The ticket's state.
    pub ticket: TicketState,
    /// How far up the area hierarchy it has been escalated (0: the grid cell).
    pub escalation: u8,
}
