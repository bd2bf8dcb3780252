//! The JSON encoding: flat, readable objects, one shape per topic (see `docs/protocol.md`).
//!
//! The shapes here are the protocol's JSON schema; the typed messages are converted to and from
//! them. Field names carry their unit (`residual_ma`, `temp_dc`, `up_ms`). Absent optional
//! fields are omitted when encoding and may be omitted when decoding; unknown fields are
//! ignored, so that later minor versions can add fields. Strings are at most 96 bytes after
//! unescaping ([`SCRATCH_LEN`] bounds the unescape buffer).

use heapless::{String, Vec};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{DecodeError, EncodeError, Invalid, check_json_depth};
use crate::channel::{ChannelNo, FaultCause, MAX_CHANNELS, Quantity};
use crate::message::{
    Ack, Action, ChannelConfig, Command, CommandOutcome, Config, DeviceTime, Event, EventKind,
    Heartbeat, Level, MAX_ACK_SEQS, MAX_FIRMWARE_LEN, MAX_REASON_LEN, Message, Reading,
    SelfTestResult, Seq, Status, Telemetry,
};
use crate::thresholds::REPORT_INTERVAL_DEFAULT_S;
use crate::thresholds::{ALARM_DELAY_DEFAULT_S, HEARTBEAT_INTERVAL_DEFAULT_S, Threshold};
use crate::topic::DeviceTopic;

/// Size of the buffer strings with escapes are unescaped into, bytes.
pub const SCRATCH_LEN: usize = 128;

/// Decodes a JSON payload received on a topic of kind `kind`.
///
/// # Errors
/// [`DecodeError`] for malformed JSON, a wrong shape, trailing bytes or a broken rule.
pub fn decode(kind: DeviceTopic, payload: &[u8]) -> Result<Message, DecodeError> {
    check_json_depth(payload)?;
    Ok(match kind {
        DeviceTopic::Telemetry => Message::Telemetry(parse::<TelemetryJson>(payload)?.try_into()?),
        DeviceTopic::Event => Message::Event(parse::<EventJson>(payload)?.try_into()?),
        DeviceTopic::Status => Message::Status(parse::<StatusJson>(payload)?.try_into()?),
        DeviceTopic::Config => Message::Config(parse::<ConfigJson>(payload)?.try_into()?),
        DeviceTopic::Cmd => Message::Command(parse::<CommandJson>(payload)?.try_into()?),
        DeviceTopic::Ack => Message::Ack(parse::<AckJson>(payload)?.into()),
    })
}

/// The device id an uplink JSON payload claims in its optional `dev` field, if any (`Ok(None)`
/// when there is none). A receiver refuses a message whose claim differs from its topic: it
/// catches a device or a multiplexing gateway publishing under the wrong id. Binary payloads
/// carry no claim.
///
/// # Errors
/// [`DecodeError`] if the payload is not a JSON object or `dev` is not a valid id.
pub fn claimed_device(payload: &[u8]) -> Result<Option<crate::id::DeviceId>, DecodeError> {
    #[derive(Deserialize)]
    struct Claim {
        #[serde(default)]
        dev: Option<crate::id::DeviceId>,
    }
    check_json_depth(payload)?;
    Ok(parse::<Claim>(payload)?.dev)
}

fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let mut scratch = [0u8; SCRATCH_LEN];
    // serde-json-core refuses anything but whitespace after the value.
    serde_json_core::from_slice_escaped::<T>(payload, &mut scratch)
        .map(|(value, _used)| value)
        .map_err(DecodeError::Json)
}

/// Encodes `msg` as JSON into `buf`; returns the length used.
///
/// # Errors
/// [`EncodeError::BufferFull`] if `buf` is too small.
pub fn encode(msg: &Message, buf: &mut [u8]) -> Result<usize, EncodeError> {
    match msg {
        Message::Telemetry(m) => put(&TelemetryJson::from(m), buf),
        Message::Event(m) => put(&EventJson::from(m), buf),
        Message::Status(m) => put(&StatusJson::from(m), buf),
        Message::Config(m) => put(&ConfigJson::from(m), buf),
        Message::Command(m) => put(&CommandJson::from(m), buf),
        Message::Ack(m) => put(&AckJson::from(m), buf),
    }
}

fn put<T: Serialize>(value: &T, buf: &mut [u8]) -> Result<usize, EncodeError> {
    serde_json_core::to_slice(value, buf).map_err(|_| EncodeError::BufferFull)
}

fn missing(kind: &'static str, field: &'static str) -> Invalid {
    Invalid::MissingField { kind, field }
}

// ---------------------------------------------------------------------------------------------
// telemetry

#[derive(Serialize, Deserialize)]
struct TelemetryJson {
    seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    up_ms: u64,
    readings: Vec<ReadingJson, MAX_CHANNELS>,
}

#[derive(Serialize, Deserialize)]
struct ReadingJson {
    ch: ChannelNo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residual_ma: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    voltage_dv: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_ma: Option<u32>,
}

impl From<&Telemetry> for TelemetryJson {
    fn from(t: &Telemetry) -> Self {
        Self {
            seq: t.seq,
            ts: t.time.unix_ms,
            up_ms: t.time.uptime_ms,
            readings: t
                .readings
                .iter()
                .map(|r| ReadingJson {
                    ch: r.channel,
                    residual_ma: r.residual_ma,
                    temp_dc: r.temp_dc,
                    voltage_dv: r.voltage_dv,
                    current_ma: r.current_ma,
                })
                .collect(),
        }
    }
}

impl TryFrom<TelemetryJson> for Telemetry {
    type Error = Invalid;
    fn try_from(t: TelemetryJson) -> Result<Self, Invalid> {
        Ok(Self {
            seq: t.seq,
            time: DeviceTime {
                uptime_ms: t.up_ms,
                unix_ms: t.ts,
            },
            readings: t
                .readings
                .iter()
                .map(|r| Reading {
                    channel: r.ch,
                    residual_ma: r.residual_ma,
                    temp_dc: r.temp_dc,
                    voltage_dv: r.voltage_dv,
                    current_ma: r.current_ma,
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// event

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventTag {
    AlarmRaised,
    AlarmCleared,
    Fault,
    FaultCleared,
    Smoke,
    SmokeCleared,
    BatteryLow,
    BatteryOk,
    SelfTest,
    Silenced,
    Tamper,
    TamperCleared,
    CommandResult,
    ConfigApplied,
    ConfigRefused,
}

impl EventTag {
    const fn name(self) -> &'static str {
        match self {
            Self::AlarmRaised => "alarm_raised",
            Self::AlarmCleared => "alarm_cleared",
            Self::Fault => "fault",
            Self::FaultCleared => "fault_cleared",
            Self::Smoke => "smoke",
            Self::SmokeCleared => "smoke_cleared",
            Self::BatteryLow => "battery_low",
            Self::BatteryOk => "battery_ok",
            Self::SelfTest => "self_test",
            Self::Silenced => "silenced",
            Self::Tamper => "tamper",
            Self::TamperCleared => "tamper_cleared",
            Self::CommandResult => "command_result",
            Self::ConfigApplied => "config_applied",
            Self::ConfigRefused => "config_refused",
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct EventJson {
    seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    up_ms: u64,
    kind: Option<EventTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<ChannelNo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residual_ma: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold_ma: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold_dc: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<FaultCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    battery_mv: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<SelfTestResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<CommandOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String<MAX_REASON_LEN>>,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        let mut j = Self {
            seq: e.seq,
            ts: e.time.unix_ms,
            up_ms: e.time.uptime_ms,
            ..Self::default()
        };
        let mut level = |channel: ChannelNo, level: &Level| {
            j.ch = Some(channel);
            match level.quantity {
                Quantity::ResidualCurrent => {
                    j.residual_ma = Some(level.value);
                    j.threshold_ma = Some(level.threshold);
                }
                Quantity::Temperature => {
                    j.temp_dc = Some(level.value);
                    j.threshold_dc = Some(level.threshold);
                }
            }
        };
        let tag = match &e.kind {
            EventKind::AlarmRaised { channel, level: l } => {
                level(*channel, l);
                EventTag::AlarmRaised
            }
            EventKind::AlarmCleared { channel, level: l } => {
                level(*channel, l);
                EventTag::AlarmCleared
            }
            EventKind::Fault { channel, cause } => {
                (j.ch, j.cause) = (Some(*channel), Some(*cause));
                EventTag::Fault
            }
            EventKind::FaultCleared { channel, cause } => {
                (j.ch, j.cause) = (Some(*channel), Some(*cause));
                EventTag::FaultCleared
            }
            EventKind::Smoke => EventTag::Smoke,
            EventKind::SmokeCleared => EventTag::SmokeCleared,
            EventKind::BatteryLow { battery_mv } => {
                j.battery_mv = Some(*battery_mv);
                EventTag::BatteryLow
            }
            EventKind::BatteryOk { battery_mv } => {
                j.battery_mv = Some(*battery_mv);
                EventTag::BatteryOk
            }
            EventKind::SelfTest { result } => {
                j.result = Some(*result);
                EventTag::SelfTest
            }
            EventKind::Silenced { duration_s } => {
                j.duration_s = Some(*duration_s);
                EventTag::Silenced
            }
            EventKind::Tamper => EventTag::Tamper,
            EventKind::TamperCleared => EventTag::TamperCleared,
            EventKind::CommandResult { id, outcome } => {
                (j.id, j.outcome) = (Some(*id), Some(*outcome));
                EventTag::CommandResult
            }
            EventKind::ConfigApplied { version } => {
                j.version = Some(*version);
                EventTag::ConfigApplied
            }
            EventKind::ConfigRefused { version, reason } => {
                (j.version, j.reason) = (Some(*version), Some(reason.clone()));
                EventTag::ConfigRefused
            }
        };
        j.kind = Some(tag);
        j
    }
}

impl EventJson {
    fn level(&self, kind: &'static str) -> Result<(ChannelNo, Level), Invalid> {
        let channel = self.ch.ok_or(missing(kind, "ch"))?;
        let level = match (self.residual_ma, self.temp_dc) {
            (Some(value), None) => Level {
                quantity: Quantity::ResidualCurrent,
                value,
                threshold: self.threshold_ma.ok_or(missing(kind, "threshold_ma"))?,
            },
            (None, Some(value)) => Level {
                quantity: Quantity::Temperature,
                value,
                threshold: self.threshold_dc.ok_or(missing(kind, "threshold_dc"))?,
            },
            _ => return Err(Invalid::QuantityAmbiguous),
        };
        Ok((channel, level))
    }

    fn fault(&self, kind: &'static str) -> Result<(ChannelNo, FaultCause), Invalid> {
        Ok((
            self.ch.ok_or(missing(kind, "ch"))?,
            self.cause.ok_or(missing(kind, "cause"))?,
        ))
    }
}

impl TryFrom<EventJson> for Event {
    type Error = Invalid;
    fn try_from(j: EventJson) -> Result<Self, Invalid> {
        let tag = j.kind.ok_or(missing("event", "kind"))?;
        let name = tag.name();
        let need = |v: Option<u32>, field| v.ok_or(missing(name, field));
        let kind = match tag {
            EventTag::AlarmRaised => {
                let (channel, level) = j.level(name)?;
                EventKind::AlarmRaised { channel, level }
            }
            EventTag::AlarmCleared => {
                let (channel, level) = j.level(name)?;
                EventKind::AlarmCleared { channel, level }
            }
            EventTag::Fault => {
                let (channel, cause) = j.fault(name)?;
                EventKind::Fault { channel, cause }
            }
            EventTag::FaultCleared => {
                let (channel, cause) = j.fault(name)?;
                EventKind::FaultCleared { channel, cause }
            }
            EventTag::Smoke => EventKind::Smoke,
            EventTag::SmokeCleared => EventKind::SmokeCleared,
            EventTag::BatteryLow => EventKind::BatteryLow {
                battery_mv: j.battery_mv.ok_or(missing(name, "battery_mv"))?,
            },
            EventTag::BatteryOk => EventKind::BatteryOk {
                battery_mv: j.battery_mv.ok_or(missing(name, "battery_mv"))?,
            },
            EventTag::SelfTest => EventKind::SelfTest {
                result: j.result.ok_or(missing(name, "result"))?,
            },
            EventTag::Silenced => EventKind::Silenced {
                duration_s: need(j.duration_s, "duration_s")?,
            },
            EventTag::Tamper => EventKind::Tamper,
            EventTag::TamperCleared => EventKind::TamperCleared,
            EventTag::CommandResult => EventKind::CommandResult {
                id: need(j.id, "id")?,
                outcome: j.outcome.ok_or(missing(name, "outcome"))?,
            },
            EventTag::ConfigApplied => EventKind::ConfigApplied {
                version: need(j.version, "version")?,
            },
            EventTag::ConfigRefused => EventKind::ConfigRefused {
                version: need(j.version, "version")?,
                reason: j.reason.clone().unwrap_or_default(),
            },
        };
        Ok(Self {
            seq: j.seq,
            time: DeviceTime {
                uptime_ms: j.up_ms,
                unix_ms: j.ts,
            },
            kind,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// status

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StateTag {
    Online,
    Offline,
}

#[derive(Default, Serialize, Deserialize)]
struct StatusJson {
    state: Option<StateTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    up_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firmware: Option<String<MAX_FIRMWARE_LEN>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal_dbm: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    battery_mv: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report_interval_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    heartbeat_interval_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped_telemetry: Option<u32>,
}

impl From<&Status> for StatusJson {
    fn from(s: &Status) -> Self {
        match s {
            Status::Offline => Self {
                state: Some(StateTag::Offline),
                ..Self::default()
            },
            Status::Online(h) => Self {
                state: Some(StateTag::Online),
                seq: Some(h.seq),
                ts: h.time.unix_ms,
                up_ms: Some(h.time.uptime_ms),
                firmware: Some(h.firmware.clone()),
                signal_dbm: h.signal_dbm,
                battery_mv: h.battery_mv,
                report_interval_s: Some(h.report_interval_s),
                heartbeat_interval_s: Some(h.heartbeat_interval_s),
                config_version: Some(h.config_version),
                dropped_telemetry: Some(h.dropped_telemetry),
            },
        }
    }
}

impl TryFrom<StatusJson> for Status {
    type Error = Invalid;
    fn try_from(j: StatusJson) -> Result<Self, Invalid> {
        match j.state.ok_or(missing("status", "state"))? {
            StateTag::Offline => Ok(Self::Offline),
            StateTag::Online => Ok(Self::Online(Heartbeat {
                seq: j.seq.ok_or(missing("online", "seq"))?,
                time: DeviceTime {
                    uptime_ms: j.up_ms.ok_or(missing("online", "up_ms"))?,
                    unix_ms: j.ts,
                },
                firmware: j.firmware.ok_or(missing("online", "firmware"))?,
                signal_dbm: j.signal_dbm,
                battery_mv: j.battery_mv,
                report_interval_s: j
                    .report_interval_s
                    .ok_or(missing("online", "report_interval_s"))?,
                heartbeat_interval_s: j
                    .heartbeat_interval_s
                    .ok_or(missing("online", "heartbeat_interval_s"))?,
                config_version: j.config_version.unwrap_or(0),
                dropped_telemetry: j.dropped_telemetry.unwrap_or(0),
            })),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config

#[derive(Serialize, Deserialize)]
struct ConfigJson {
    version: u32,
    #[serde(default)]
    report_interval_s: Option<u32>,
    #[serde(default)]
    heartbeat_interval_s: Option<u32>,
    #[serde(default)]
    buzzer: Option<bool>,
    #[serde(default)]
    relay_trip: Option<bool>,
    channels: Vec<ChannelConfigJson, MAX_CHANNELS>,
}

#[derive(Serialize, Deserialize)]
struct ChannelConfigJson {
    ch: ChannelNo,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residual_ma: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i32>,
    #[serde(default)]
    delay_s: Option<u16>,
}

impl From<&Config> for ConfigJson {
    fn from(c: &Config) -> Self {
        Self {
            version: c.version,
            report_interval_s: Some(c.report_interval_s),
            heartbeat_interval_s: Some(c.heartbeat_interval_s),
            buzzer: Some(c.buzzer),
            relay_trip: Some(c.relay_trip),
            channels: c
                .channels
                .iter()
                .map(|c| {
                    let (residual_ma, temp_dc) = match c.threshold {
                        Threshold::ResidualMa(v) => (Some(i32::from(v)), None),
                        Threshold::TempDc(v) => (None, Some(i32::from(v))),
                    };
                    ChannelConfigJson {
                        ch: c.channel,
                        enabled: Some(c.enabled),
                        residual_ma,
                        temp_dc,
                        delay_s: Some(c.delay_s),
                    }
                })
                .collect(),
        }
    }
}

impl TryFrom<ConfigJson> for Config {
    type Error = Invalid;
    fn try_from(j: ConfigJson) -> Result<Self, Invalid> {
        let mut channels = Vec::new();
        for c in &j.channels {
            let threshold = match (c.residual_ma, c.temp_dc) {
                (Some(v), None) => {
                    Threshold::ResidualMa(u16::try_from(v).map_err(|_| Invalid::OutOfRange {
                        field: "residual_ma",
                    })?)
                }
                (None, Some(v)) => Threshold::TempDc(
                    i16::try_from(v).map_err(|_| Invalid::OutOfRange { field: "temp_dc" })?,
                ),
                _ => return Err(Invalid::QuantityAmbiguous),
            };
            // Cannot overflow: `channels` has the capacity of `j.channels`.
            let _ = channels.push(ChannelConfig {
                channel: c.ch,
                enabled: c.enabled.unwrap_or(true),
                threshold,
                delay_s: c.delay_s.unwrap_or(ALARM_DELAY_DEFAULT_S),
            });
        }
        Ok(Self {
            version: j.version,
            report_interval_s: j.report_interval_s.unwrap_or(REPORT_INTERVAL_DEFAULT_S),
            heartbeat_interval_s: j
                .heartbeat_interval_s
                .unwrap_or(HEARTBEAT_INTERVAL_DEFAULT_S),
            buzzer: j.buzzer.unwrap_or(true),
            relay_trip: j.relay_trip.unwrap_or(false),
            channels,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// command

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CommandTag {
    SelfTest,
    Silence,
    ResetAlarm,
    Reboot,
}

#[derive(Serialize, Deserialize)]
struct CommandJson {
    id: u32,
    ts: u64,
    cmd: CommandTag,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<ChannelNo>,
}

impl From<&Command> for CommandJson {
    fn from(c: &Command) -> Self {
        let (cmd, ch) = match c.action {
            Action::SelfTest => (CommandTag::SelfTest, None),
            Action::Silence => (CommandTag::Silence, None),
            Action::ResetAlarm { channel } => (CommandTag::ResetAlarm, channel),
            Action::Reboot => (CommandTag::Reboot, None),
        };
        Self {
            id: c.id,
            ts: c.time_ms,
            cmd,
            ch,
        }
    }
}

impl TryFrom<CommandJson> for Command {
    type Error = Invalid;
    fn try_from(j: CommandJson) -> Result<Self, Invalid> {
        let action = match j.cmd {
            CommandTag::SelfTest => Action::SelfTest,
            CommandTag::Silence => Action::Silence,
            CommandTag::ResetAlarm => Action::ResetAlarm { channel: j.ch },
            CommandTag::Reboot => Action::Reboot,
        };
        Ok(Self {
            id: j.id,
            time_ms: j.ts,
            action,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ack

#[derive(Serialize, Deserialize)]
struct AckJson {
    seqs: Vec<Seq, MAX_ACK_SEQS>,
    ts: u64,
}

impl From<&Ack> for AckJson {
    fn from(a: &Ack) -> Self {
        Self {
            seqs: a.seqs.clone(),
            ts: a.time_ms,
        }
    }
}

impl From<AckJson> for Ack {
    fn from(j: AckJson) -> Self {
        Self {
            seqs: j.seqs,
            time_ms: j.ts,
        }
    }
}
