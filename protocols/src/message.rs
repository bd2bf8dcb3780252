//! The typed messages of firegrid v1, one per device topic.
//!
//! | Topic | Direction | Type |
//! | --- | --- | --- |
//! | `telemetry` | device → gateway | [`Telemetry`] |
//! | `event` | device → gateway | [`Event`] (its [`EventKind`]) |
//! | `status` | device → gateway, retained | [`Status`] |
//! | `config` | gateway → device, retained | [`Config`] |
//! | `cmd` | gateway → device | [`Command`] |
//! | `ack` | gateway → device | [`Ack`] |
//!
//! Every device → gateway message but the last will carries a sequence number ([`Seq`]) and the
//! device's time ([`DeviceTime`]); the gateway orders, deduplicates (by device and sequence
//! number) and measures delay with them. The serde derives of these types *are* the binary
//! schema (postcard, see [`crate::codec`]); the JSON shape is defined by [`crate::codec::json`].

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelNo, FaultCause, MAX_CHANNELS, Quantity};
use crate::thresholds::{Limits, Threshold, ThresholdError};

/// A device's message sequence number: one counter per device over all its uplink messages,
/// strictly increasing, surviving reboot (a device may skip ahead after a reboot, e.g. when it
/// reserves numbers in blocks to spare its flash; gaps are counted, never an error).
pub type Seq = u32;

/// The longest firmware version string, bytes.
pub const MAX_FIRMWARE_LEN: usize = 24;
/// The longest free-text reason in a refusal, bytes.
pub const MAX_REASON_LEN: usize = 96;
/// The most sequence numbers one [`Ack`] carries.
pub const MAX_ACK_SEQS: usize = 32;

/// When, by the device's clocks, a message was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceTime {
    /// Milliseconds since the device booted (monotonic, always known).
    pub uptime_ms: u64,
    /// Wall-clock time, ms since the Unix epoch, once the device has taken the time from the
    /// gateway ([`Ack::time_ms`], [`Command::time_ms`]); `None` until then.
    pub unix_ms: Option<u64>,
}

/// One channel's readings in a telemetry message. Each quantity is optional: a residual-current
/// channel reports `residual_ma`, a temperature channel `temp_dc`, a metering channel may add
/// voltage and load current. A channel in fault reports nothing (its fault is an [`Event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Reading {
    /// The channel, `0..MAX_CHANNELS`.
    pub channel: ChannelNo,
    /// True-RMS residual (leakage) current, mA.
    pub residual_ma: Option<u32>,
    /// Temperature, deci-°C (0.1 °C).
    pub temp_dc: Option<i16>,
    /// Line voltage RMS, deci-volts (0.1 V).
    pub voltage_dv: Option<u16>,
    /// Load current RMS, mA.
    pub current_ma: Option<u32>,
}

impl Reading {
    /// The value of `quantity` on this channel, in its unit, if reported.
    pub fn value_of(&self, quantity: Quantity) -> Option<i32> {
        match quantity {
            Quantity::ResidualCurrent => self
                .residual_ma
                .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            Quantity::Temperature => self.temp_dc.map(i32::from),
        }
    }
}

/// Periodic readings (`telemetry` topic, QoS 0 or 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Telemetry {
    /// Sequence number.
    pub seq: Seq,
    /// When the readings were taken.
    pub time: DeviceTime,
    /// One entry per channel, each channel at most once.
    pub readings: Vec<Reading, MAX_CHANNELS>,
}

/// A value against its set-point, in the quantity's unit (mA or deci-°C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Level {
    /// What is measured.
    pub quantity: Quantity,
    /// The measured value.
    pub value: i32,
    /// The set-point in force.
    pub threshold: i32,
}

/// Outcome of a self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelfTestResult {
    /// Sensors, sounder and lights checked good.
    Passed,
    /// A part failed.
    Failed,
}

/// What a device did with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    /// Carried out (for a self-test: started; its result follows as [`EventKind::SelfTest`]).
    Done,
    /// Not applicable to this device (e.g. silence when nothing sounds).
    NotApplicable,
    /// Refused (e.g. silence of a smoke alarm, which GB 20517 forbids).
    Refused,
}

/// What happened (`event` topic, QoS 1, acknowledged end to end by [`Ack`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A channel's value stayed at or above its set-point for the alarm delay. The alarm is
    /// latched on the device until reset (GB 14287.5-2025 §5.3.4).
    AlarmRaised {
        /// The channel.
        channel: ChannelNo,
        /// Value and set-point.
        level: Level,
    },
    /// A latched alarm was reset and the value is below the hysteresis.
    AlarmCleared {
        /// The channel.
        channel: ChannelNo,
        /// Value and set-point at clearing.
        level: Level,
    },
    /// A channel cannot measure (lead open/short): a fault, not an alarm.
    Fault {
        /// The channel.
        channel: ChannelNo,
        /// Why.
        cause: FaultCause,
    },
    /// The channel measures again.
    FaultCleared {
        /// The channel.
        channel: ChannelNo,
        /// The fault that ended.
        cause: FaultCause,
    },
    /// The smoke alarm sounds (its alarm/interconnect line is active).
    Smoke,
    /// The smoke alarm stopped sounding.
    SmokeCleared,
    /// The battery is low (GB 20517-2025 §5.11.1 battery fault).
    BatteryLow {
        /// Battery voltage, mV.
        battery_mv: u16,
    },
    /// The battery is good again.
    BatteryOk {
        /// Battery voltage, mV.
        battery_mv: u16,
    },
    /// A self-test finished.
    SelfTest {
        /// Its outcome.
        result: SelfTestResult,
    },
    /// The battery-fault sound was silenced for `duration_s` (GB 20517-2025 §5.11.2: (7 ± 1) h;
    /// smoke is never silenced).
    Silenced {
        /// How long, s.
        duration_s: u32,
    },
    /// The enclosure was opened or the device removed from its base.
    Tamper,
    /// The enclosure is closed again.
    TamperCleared,
    /// What the device did with a [`Command`].
    CommandResult {
        /// [`Command::id`].
        id: u32,
        /// Outcome.
        outcome: CommandOutcome,
    },
    /// A [`Config`] was applied.
    ConfigApplied {
        /// [`Config::version`].
        version: u32,
    },
    /// A [`Config`] was refused; the device keeps the one it had.
    ConfigRefused {
        /// [`Config::version`].
        version: u32,
        /// Why, in words (e.g. the [`ConfigError`] text).
        reason: heapless::String<MAX_REASON_LEN>,
    },
}

impl EventKind {
    /// The channel the event is about, if any.
    pub fn channel(&self) -> Option<ChannelNo> {
        match self {
            Self::AlarmRaised { channel, .. }
            | Self::AlarmCleared { channel, .. }
            | Self::Fault { channel, .. }
            | Self::FaultCleared { channel, .. } => Some(*channel),
            _ => None,
        }
    }
}

/// An event with its sequence number and time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number: the gateway acknowledges it in [`Ack`], the device resends the event
    /// with the same number until then.
    pub seq: Seq,
    /// When it happened on the device.
    pub time: DeviceTime,
    /// What happened.
    pub kind: EventKind,
}

/// A heartbeat (`status` topic, retained).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Sequence number.
    pub seq: Seq,
    /// When it was made.
    pub time: DeviceTime,
    /// Firmware version, e.g. `"0.1.0"`.
    pub firmware: heapless::String<MAX_FIRMWARE_LEN>,
    /// Radio signal, dBm, where the link has one.
    pub signal_dbm: Option<i16>,
    /// Battery voltage, mV, for battery-powered devices.
    pub battery_mv: Option<u16>,
    /// Telemetry interval in force, s.
    pub report_interval_s: u32,
    /// Heartbeat interval in force, s: the gateway declares the device offline after a
    /// multiple of it without news.
    pub heartbeat_interval_s: u32,
    /// [`Config::version`] in force (0: factory defaults).
    pub config_version: u32,
    /// Telemetry messages dropped from the full outbox since the previous heartbeat.
    pub dropped_telemetry: u32,
}

/// What a device says about itself on the `status` topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// The device is connected; published retained at every connect and then every heartbeat
    /// interval, so that it replaces the last will.
    Online(Heartbeat),
    /// The device is gone: its last will (retained), or a clean goodbye. Carries no sequence
    /// number because a will is written before the fact.
    Offline,
}

/// One channel's settings in a [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// The channel.
    pub channel: ChannelNo,
    /// Whether the channel is monitored at all (an unused temperature input is disabled).
    pub enabled: bool,
    /// The alarm set-point (its variant names the channel's quantity).
    pub threshold: Threshold,
    /// How long the value must stay at or above the set-point before the alarm, s.
    pub delay_s: u16,
}

/// Settings for a device (`config` topic, retained; the device answers with
/// [`EventKind::ConfigApplied`] or [`EventKind::ConfigRefused`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// Increases with every change; a device ignores a version it already has.
    pub version: u32,
    /// Telemetry interval, s.
    pub report_interval_s: u32,
    /// Heartbeat interval, s.
    pub heartbeat_interval_s: u32,
    /// Whether the local sounder is used for electrical alarms (smoke always sounds).
    pub buzzer: bool,
    /// Whether an alarm may trip the supply relay. Off by default: GB 50116 / GB 14287.5 §5.3.2
    /// say a monitor alarms and does not cut the supply unless linkage is chosen.
    pub relay_trip: bool,
    /// Per-channel settings; each channel at most once.
    pub channels: Vec<ChannelConfig, MAX_CHANNELS>,
}

/// Why a [`Config`] cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A set-point outside its range.
    Threshold {
        /// The channel.
        channel: ChannelNo,
        /// The range error.
        error: ThresholdError,
    },
    /// An alarm delay longer than allowed.
    Delay {
        /// The channel.
        channel: ChannelNo,
        /// The refused delay, s.
        delay_s: u16,
        /// The longest allowed, s.
        max_s: u16,
    },
    /// An interval outside its range.
    Interval {
        /// `"report_interval_s"` or `"heartbeat_interval_s"`.
        field: &'static str,
        /// The refused value, s.
        value_s: u32,
        /// Shortest allowed, s.
        min_s: u32,
        /// Longest allowed, s.
        max_s: u32,
    },
    /// A channel number at or above [`MAX_CHANNELS`].
    ChannelOutOfRange {
        /// The channel.
        channel: ChannelNo,
    },
    /// The same channel twice.
    DuplicateChannel {
        /// The channel.
        channel: ChannelNo,
    },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Threshold { channel, error } => write!(f, "channel {channel}: {error}"),
            Self::Delay {
                channel,
                delay_s,
                max_s,
            } => write!(
                f,
                "channel {channel}: alarm delay {delay_s} s is over {max_s} s (GB 14287: alarm within 30 s)"
            ),
            Self::Interval {
                field,
                value_s,
                min_s,
                max_s,
            } => write!(f, "{field} {value_s} s is outside {min_s}-{max_s} s"),
            Self::ChannelOutOfRange { channel } => write!(
                f,
                "channel {channel} does not exist: channels are 0-{}",
                MAX_CHANNELS - 1
            ),
            Self::DuplicateChannel { channel } => write!(f, "channel {channel} is listed twice"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every setting against `limits` and the interval bounds.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self, limits: &Limits) -> Result<(), ConfigError> {
        use crate::thresholds::{HEARTBEAT_INTERVAL_MAX_S, INTERVAL_MIN_S};
        for (field, value_s) in [
            ("report_interval_s", self.report_interval_s),
            ("heartbeat_interval_s", self.heartbeat_interval_s),
        ] {
            if !(INTERVAL_MIN_S..=HEARTBEAT_INTERVAL_MAX_S).contains(&value_s) {
                return Err(ConfigError::Interval {
                    field,
                    value_s,
                    min_s: INTERVAL_MIN_S,
                    max_s: HEARTBEAT_INTERVAL_MAX_S,
                });
            }
        }
        let mut seen = 0u32;
        for c in &self.channels {
            let bit = 1u32
                .checked_shl(u32::from(c.channel))
                .filter(|_| usize::from(c.channel) < MAX_CHANNELS)
                .ok_or(ConfigError::ChannelOutOfRange { channel: c.channel })?;
            if seen & bit != 0 {
                return Err(ConfigError::DuplicateChannel { channel: c.channel });
            }
            seen |= bit;
            c.threshold
                .validate(limits)
                .map_err(|error| ConfigError::Threshold {
                    channel: c.channel,
                    error,
                })?;
            if c.delay_s > limits.alarm_delay_max_s {
                return Err(ConfigError::Delay {
                    channel: c.channel,
                    delay_s: c.delay_s,
                    max_s: limits.alarm_delay_max_s,
                });
            }
        }
        Ok(())
    }
}

/// What a [`Command`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Run the self-test sequence (sounder, lights, sensors); the result comes as an event.
    SelfTest,
    /// Silence the battery-fault sound for (7 ± 1) h. Never silences smoke (GB 20517-2025 §5.11.2).
    Silence,
    /// Reset latched alarms: one channel, or all when `None` (GB 14287.5-2025 §5.3.4).
    ResetAlarm {
        /// The channel, or every channel.
        channel: Option<ChannelNo>,
    },
    /// Restart the device.
    Reboot,
}

/// A command to a device (`cmd` topic, QoS 1). The device answers with
/// [`EventKind::CommandResult`] carrying the same `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    /// Chosen by the gateway, unique per device; the device ignores an id it already carried out.
    pub id: u32,
    /// The gateway's wall-clock time at sending, ms since the Unix epoch.
    pub time_ms: u64,
    /// What to do.
    pub action: Action,
}

/// The end-to-end acknowledgement (`ack` topic, QoS 1): the gateway has journaled these events;
/// the device may drop them from its outbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ack {
    /// Sequence numbers of journaled events.
    pub seqs: Vec<Seq, MAX_ACK_SEQS>,
    /// The gateway's wall-clock time, ms since the Unix epoch: the device's time source.
    pub time_ms: u64,
}

/// Any firegrid message, with the topic kind it travels on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
// No heap to box into: the size is that of the largest message, bounded by MAX_CHANNELS.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    /// On `telemetry`.
    Telemetry(Telemetry),
    /// On `event`.
    Event(Event),
    /// On `status`.
    Status(Status),
    /// On `config`.
    Config(Config),
    /// On `cmd`.
    Command(Command),
    /// On `ack`.
    Ack(Ack),
}

impl Message {
    /// The topic kind this message travels on.
    pub fn topic_kind(&self) -> crate::topic::DeviceTopic {
        use crate::topic::DeviceTopic as T;
        match self {
            Self::Telemetry(_) => T::Telemetry,
            Self::Event(_) => T::Event,
            Self::Status(_) => T::Status,
            Self::Config(_) => T::Config,
            Self::Command(_) => T::Cmd,
            Self::Ack(_) => T::Ack,
        }
    }

    /// The sequence number of an uplink message (the last will has none).
    pub fn seq(&self) -> Option<Seq> {
        match self {
            Self::Telemetry(t) => Some(t.seq),
            Self::Event(e) => Some(e.seq),
            Self::Status(Status::Online(h)) => Some(h.seq),
            _ => None,
        }
    }
}
