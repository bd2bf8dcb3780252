//! The poller's pure core: for one bus (a TCP connection or a serial line, requests one at a
//! time), which device is due, which request to send next, and what a reply, a timeout or an
//! exception means — readings, alarm edges, heartbeats, offline — as firegrid messages.
//!
//! No sockets, clocks or channels: time (`now`, ms since the Unix epoch) is passed in, and
//! [`Poller::next_deadline`] says when something is due. The I/O shell ([`super::bus`]) sends
//! the [`Request`] that [`Poller::next_request`] returns, under a timeout, and reports the
//! [`Outcome`] to [`Poller::handle`].
//!
//! Rules:
//! - A device's poll is one *cycle*: the profile's read blocks in order. Only a complete cycle
//!   is decoded, so values of one cycle are never mixed with another's or another device's.
//! - A reply is taken only for the request outstanding (by request id); anything else, a
//!   timeout, or a transport error (garbage, transaction-id mismatch) aborts the cycle and asks
//!   the shell to reconnect, so a late reply can never be read as the answer to a later request.
//! - An exception code is data: the device is alive (its liveness counts), the cycle ends
//!   without readings, and the code is reported.
//! - State codes are the device's own alarm state: a *change* of a channel's state becomes an
//!   event (`alarm_raised`, `alarm_cleared`, `fault`, `fault_cleared`). The states start from
//!   what the gateway believes ([`DeviceSchedule::restored`]: its open episodes), so a restart
//!   neither repeats an alarm nor forgets one that ended meanwhile.
//! - After [`PollerConfig::offline_after`] failed cycles in a row the device's status becomes
//!   offline (once); its next answer sends an online heartbeat (once), which ends the episode.
//! - Sequence numbers never repeat across restarts: they start above both
//!   [`DeviceSchedule::used_seq`] (the store's highest) and [`seq_floor`] (the wall clock).

use std::collections::VecDeque;
use std::sync::Arc;

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::{ChannelNo, ChannelState, MAX_CHANNELS, Quantity};
use firegrid_protocols::message::{
    Config, DeviceTime, Event, EventKind, Heartbeat, Level, Message, Seq, Status, Telemetry,
};
use firegrid_protocols::regmap::{ReadBlock, RegisterKind};

use super::decode::{decode, edges, readings};
use super::profile::Profile;
use super::setpoint::{Write, writes_for};
use crate::model::UnixMs;

/// 2025-01-01T00:00:00Z, s: sequence numbers count from here.
const SEQ_EPOCH_S: u64 = 1_735_689_600;
/// Sequence numbers per second of wall clock a device may use on average without a restart
/// repeating one (a poll every 125 ms); 2³² / 8 s lasts 17 years from [`SEQ_EPOCH_S`].
const SEQ_PER_S: u64 = 8;

/// The lowest sequence number a polled device may use at `now`: strictly above any used
/// before a restart, as long as a device averaged at most 8 messages a second.
pub fn seq_floor(now: UnixMs) -> Seq {
    let s = (now / 1000).saturating_sub(SEQ_EPOCH_S);
    Seq::try_from(s.saturating_mul(SEQ_PER_S)).unwrap_or(Seq::MAX)
}

/// One device on a bus.
#[derive(Debug, Clone)]
pub struct DeviceSchedule {
    /// The device's id in the registry.
    pub id: DeviceId,
    /// Its Modbus unit (slave) id, 1–247 (0–255 on TCP).
    pub slave: u8,
    /// Its register profile.
    pub profile: Arc<Profile>,
    /// Poll period, ms.
    pub interval_ms: u64,
    /// The highest sequence number the device's messages used before (from the store after a
    /// restart; 0 for none): its messages are numbered above it.
    pub used_seq: Seq,
    /// Channels the gateway believes in alarm or fault (its open episodes, after a restart);
    /// every other channel is taken as normal until the first poll. So an alarm that cleared
    /// while the gateway was down ends at the first poll, and one still on is not raised twice.
    /// A restored fault's cause is not known: any fault at the first poll continues it.
    pub restored: Vec<(ChannelNo, ChannelState)>,
}

/// Settings of a bus's poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerConfig {
    /// Failed cycles in a row before the device is reported offline.
    pub offline_after: u32,
    /// How often an answering device sends an online heartbeat, ms.
    pub heartbeat_ms: u64,
    /// Unmapped addresses bridged in one read (0: never, the safe default).
    pub max_gap: u16,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            offline_after: 3,
            heartbeat_ms: 60_000,
            max_gap: 0,
        }
    }
}

/// Identifies one request, so a reply is matched to it and to nothing else.
pub type RequestId = u64;

/// What to do on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read a block (function 01–04 by its kind).
    Read(ReadBlock),
    /// Write registers (06/16) or a coil (05).
    Write(Write),
}

/// A request for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id, to report with its outcome.
    pub id: RequestId,
    /// Index of the device on the bus.
    pub device: usize,
    /// The unit id to address.
    pub slave: u8,
    /// What to do.
    pub op: Op,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Registers read (one `u16` per register, or one 0/1 per bit).
    Words(Vec<u16>),
    /// The write was confirmed.
    Written,
    /// The device answered with an exception code.
    Exception(u8),
    /// No reply within the timeout.
    Timeout,
    /// The connection failed, or the reply was garbage or for another transaction.
    Transport,
}

/// An input to the poller.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A request ended.
    Done {
        /// Which request.
        id: RequestId,
        /// How.
        outcome: Outcome,
    },
    /// New settings for a device (a set-point change through the API).
    Configure {
        /// The device.
        device: DeviceId,
        /// Its new configuration, already validated.
        config: Config,
    },
}

/// What the poller decided.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a few per poll, moved once: boxing would only add allocations
pub enum Output {
    /// A message to ingest as if the device had published it.
    Uplink {
        /// From whom.
        device: DeviceId,
        /// What.
        message: Message,
    },
    /// Drop the connection and open it again before the next request.
    Reconnect,
    /// A device answered an exception (recorded, counted).
    Exception {
        /// The device.
        device: DeviceId,
        /// The code.
        code: u8,
    },
    /// A state code the profile does not list (the channel keeps its last known state).
    UnknownStateCode {
        /// The device.
        device: DeviceId,
        /// The channel.
        channel: u8,
        /// The raw code.
        code: u16,
    },
}

#[derive(Debug)]
struct Dev {
    spec: DeviceSchedule,
    blocks: Vec<ReadBlock>,
    next_due: UnixMs,
    failures: u32,
    /// Whether an online heartbeat was sent since start or since it went offline.
    online: bool,
    offline_sent: bool,
    last_heartbeat: UnixMs,
    states: [Option<ChannelState>; MAX_CHANNELS],
    /// Faults restored with an unknown cause, not yet confirmed by a poll.
    restored_fault: [bool; MAX_CHANNELS],
    /// Each channel's value and set-point at the last poll (for a re-sent alarm).
    levels: [Option<Level>; MAX_CHANNELS],
    seq: Seq,
    /// Config version and its writes still to do.
    writes: Option<(u32, VecDeque<Write>)>,
}

#[derive(Debug)]
struct Cycle {
    device: usize,
    next_block: usize,
    words: Vec<Vec<u16>>,
    started: UnixMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Read,
    Write,
}

/// The poller of one bus.
#[derive(Debug)]
pub struct Poller {
    config: PollerConfig,
    devices: Vec<Dev>,
    cycle: Option<Cycle>,
    outstanding: Option<(RequestId, usize, Pending)>,
    next_id: RequestId,
}

impl Poller {
    /// A poller for `devices`, all due at `now`.
    pub fn new(devices: Vec<DeviceSchedule>, config: PollerConfig, now: UnixMs) -> Self {
        let devices = devices
            .into_iter()
            .map(|spec| {
                let map = spec.profile.map();
                let blocks = [
                    RegisterKind::Holding,
                    RegisterKind::Input,
                    RegisterKind::Coil,
                    RegisterKind::DiscreteInput,
                ]
                .into_iter()
                .flat_map(|k| map.read_blocks(k, config.max_gap))
                .collect();
                let seq = seq_floor(now).max(spec.used_seq);
                let mut states = [Some(ChannelState::Normal); MAX_CHANNELS];
                let mut restored_fault = [false; MAX_CHANNELS];
                for (ch, state) in &spec.restored {
                    if let Some(slot) = states.get_mut(usize::from(*ch)) {
                        *slot = Some(*state);
                    }
                    if let Some(flag) = restored_fault.get_mut(usize::from(*ch)) {
                        *flag = matches!(state, ChannelState::Fault(_));
                    }
                }
                Dev {
                    spec,
                    blocks,
                    next_due: now,
                    failures: 0,
                    online: false,
                    offline_sent: false,
                    last_heartbeat: 0,
                    states,
                    restored_fault,
                    levels: [None; MAX_CHANNELS],
                    seq,
                    writes: None,
                }
            })
            .collect();
        Self {
            config,
            devices,
            cycle: None,
            outstanding: None,
            next_id: 1,
        }
    }

    /// The devices, in bus order.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceSchedule> {
        self.devices.iter().map(|d| &d.spec)
    }

    /// Whether a request is out (the shell is waiting for its outcome).
    pub fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
    }

    /// When [`next_request`](Self::next_request) will have something, if nothing is
    /// outstanding: `now` or earlier means at once.
    pub fn next_deadline(&self) -> Option<UnixMs> {
        if self.outstanding.is_some() {
            return None;
        }
        if self.cycle.is_some() || self.devices.iter().any(|d| d.writes.is_some()) {
            return Some(0);
        }
        self.devices.iter().map(|d| d.next_due).min()
    }

    /// The next request to send at `now`, if any is due and none is outstanding. Writes go
    /// before polls; a cycle runs to its end before another device's starts.
    pub fn next_request(&mut self, now: UnixMs) -> Option<Request> {
        if self.outstanding.is_some() {
            return None;
        }
        // Between cycles, a queued write first.
        if self.cycle.is_none()
            && let Some((i, w)) = self.devices.iter().enumerate().find_map(|(i, d)| {
                d.writes
                    .as_ref()
                    .and_then(|(_, q)| q.front().cloned())
                    .map(|w| (i, w))
            })
        {
            return Some(self.issue(i, Op::Write(w), Pending::Write));
        }
        if self.cycle.is_none() {
            let (i, _) = self
                .devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.next_due <= now && !d.blocks.is_empty())
                .min_by_key(|(_, d)| d.next_due)?;
            self.cycle = Some(Cycle {
                device: i,
                next_block: 0,
                words: Vec::new(),
                started: now,
            });
        }
        let c = self.cycle.as_ref()?;
        let (device, block) = (
            c.device,
            *self.devices.get(c.device)?.blocks.get(c.next_block)?,
        );
        Some(self.issue(device, Op::Read(block), Pending::Read))
    }

    fn issue(&mut self, device: usize, op: Op, kind: Pending) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        self.outstanding = Some((id, device, kind));
        Request {
            id,
            device,
            slave: self.devices.get(device).map_or(0, |d| d.spec.slave),
            op,
        }
    }

    /// Handles one input at `now`.
    pub fn handle(&mut self, input: Input, now: UnixMs) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Configure { device, config } => self.configure(&device, &config, now, &mut out),
            Input::Done { id, outcome } => match self.outstanding {
                Some((want, device, kind)) if want == id => {
                    self.outstanding = None;
                    match kind {
                        Pending::Read => self.read_done(device, outcome, now, &mut out),
                        Pending::Write => self.write_done(device, outcome, now, &mut out),
                    }
                }
                // Not the request outstanding: whatever the link delivered is not to be
                // trusted for anything.
                _ => out.push(Output::Reconnect),
            },
        }
        out
    }

    fn configure(
        &mut self,
        device: &DeviceId,
        config: &Config,
        now: UnixMs,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.devices.iter().position(|d| d.spec.id == *device) else {
            return;
        };
        // The device was (re)commissioned or changed: it may have been refused while
        // unregistered, so what it shows now is told again (the engine keeps one episode).
        self.resync(i, now, out);
        let map_writes = {
            let d = &self.devices[i];
            writes_for(config, &d.spec.profile.map())
        };
        match map_writes {
            Ok(w) if w.is_empty() => self.event(
                i,
                EventKind::ConfigApplied {
                    version: config.version,
                },
                now,
                out,
            ),
            Ok(w) => self.devices[i].writes = Some((config.version, w.into())),
            Err(reason) => self.refuse(i, config.version, &reason, now, out),
        }
    }

    /// Re-sends the events of the channels now in alarm or fault.
    fn resync(&mut self, i: usize, now: UnixMs, out: &mut Vec<Output>) {
        let Some(d) = self.devices.get(i) else {
            return;
        };
        let kinds: Vec<EventKind> = d
            .states
            .iter()
            .zip(&d.levels)
            .enumerate()
            .filter_map(|(ch, (state, level))| {
                let channel = u8::try_from(ch).ok()?;
                match ((*state)?, level) {
                    (ChannelState::Alarm, Some(level)) => Some(EventKind::AlarmRaised {
                        channel,
                        level: *level,
                    }),
                    (ChannelState::Fault(cause), _)
                        if !d.restored_fault.get(ch).copied().unwrap_or(false) =>
                    {
                        Some(EventKind::Fault { channel, cause })
                    }
                    _ => None,
                }
            })
            .collect();
        for k in kinds {
            self.event(i, k, now, out);
        }
    }

    fn refuse(&mut self, i: usize, version: u32, reason: &str, now: UnixMs, out: &mut Vec<Output>) {
        let mut r = heapless::String::new();
        for ch in reason.chars() {
            if r.push(ch).is_err() {
                break;
            }
        }
        self.event(i, EventKind::ConfigRefused { version, reason: r }, now, out);
    }

    fn write_done(&mut self, i: usize, outcome: Outcome, now: UnixMs, out: &mut Vec<Output>) {
        match outcome {
            Outcome::Written | Outcome::Words(_) => {
                self.alive(i, now, out);
                let Some(dev) = self.devices.get_mut(i) else {
                    return;
                };
                let finished = match &mut dev.writes {
                    Some((version, q)) => {
                        q.pop_front();
                        q.is_empty().then_some(*version)
                    }
                    None => None,
                };
                if let Some(version) = finished {
                    dev.writes = None;
                    self.event(i, EventKind::ConfigApplied { version }, now, out);
                }
            }
            Outcome::Exception(code) => {
                self.alive(i, now, out);
                let Some(dev) = self.devices.get_mut(i) else {
                    return;
                };
                let (address, version) = match dev.writes.take() {
                    Some((v, q)) => (q.front().map_or(0, |w| w.address), v),
                    None => return,
                };
                out.push(Output::Exception {
                    device: dev.spec.id.clone(),
                    code,
                });
                self.refuse(
                    i,
                    version,
                    &format!(
                        "the device refused the write of {address:#06x} with exception {code}"
                    ),
                    now,
                    out,
                );
            }
            // Retried after the reconnect; a device gone for good is reported offline by the
            // polls, and its config stays queued until it answers.
            Outcome::Timeout | Outcome::Transport => out.push(Output::Reconnect),
        }
    }

    fn read_done(&mut self, i: usize, outcome: Outcome, now: UnixMs, out: &mut Vec<Output>) {
        let Some(mut cycle) = self.cycle.take() else {
            return;
        };
        match outcome {
            Outcome::Words(words) => {
                let expected = self
                    .devices
                    .get(i)
                    .and_then(|d| d.blocks.get(cycle.next_block))
                    .map_or(0, |b| usize::from(b.count));
                if words.len() != expected {
                    // A reply of the wrong size is not this request's answer.
                    out.push(Output::Reconnect);
                    self.failed(i, cycle.started, now, out);
                    return;
                }
                cycle.words.push(words);
                cycle.next_block += 1;
                if cycle.next_block < self.devices.get(i).map_or(0, |d| d.blocks.len()) {
                    self.cycle = Some(cycle);
                } else {
                    self.complete(i, &cycle.words, now, out);
                    self.reschedule(i, cycle.started, now);
                }
            }
            Outcome::Written => {
                out.push(Output::Reconnect);
                self.failed(i, cycle.started, now, out);
            }
            Outcome::Exception(code) => {
                self.alive(i, now, out);
                if let Some(d) = self.devices.get(i) {
                    out.push(Output::Exception {
                        device: d.spec.id.clone(),
                        code,
                    });
                }
                self.reschedule(i, cycle.started, now);
            }
            Outcome::Timeout | Outcome::Transport => {
                out.push(Output::Reconnect);
                self.failed(i, cycle.started, now, out);
            }
        }
    }

    fn reschedule(&mut self, i: usize, started: UnixMs, now: UnixMs) {
        if let Some(d) = self.devices.get_mut(i) {
            // Next period from the cycle's start; a bus that fell behind does not burst.
            d.next_due = started.saturating_add(d.spec.interval_ms).max(now);
        }
    }

    fn failed(&mut self, i: usize, started: UnixMs, now: UnixMs, out: &mut Vec<Output>) {
        self.reschedule(i, started, now);
        let offline_after = self.config.offline_after.max(1);
        let Some(d) = self.devices.get_mut(i) else {
            return;
        };
        d.failures = d.failures.saturating_add(1);
        if d.failures >= offline_after && !d.offline_sent {
            d.offline_sent = true;
            d.online = false;
            out.push(Output::Uplink {
                device: d.spec.id.clone(),
                message: Message::Status(Status::Offline),
            });
        }
    }

    /// The device answered: reset its failures, send a heartbeat if it is due.
    fn alive(&mut self, i: usize, now: UnixMs, out: &mut Vec<Output>) {
        let heartbeat_ms = self.config.heartbeat_ms;
        let Some(d) = self.devices.get_mut(i) else {
            return;
        };
        d.failures = 0;
        d.offline_sent = false;
        if d.online && now < d.last_heartbeat.saturating_add(heartbeat_ms) {
            return;
        }
        d.online = true;
        d.last_heartbeat = now;
        let seq = next_seq(d, now);
        let mut firmware = heapless::String::new();
        let _ = firmware.push_str("modbus");
        out.push(Output::Uplink {
            device: d.spec.id.clone(),
            message: Message::Status(Status::Online(Heartbeat {
                seq,
                time: time(now),
                firmware,
                signal_dbm: None,
                battery_mv: None,
                report_interval_s: u32::try_from(d.spec.interval_ms.div_ceil(1000))
                    .unwrap_or(u32::MAX),
                heartbeat_interval_s: u32::try_from(heartbeat_ms.div_ceil(1000))
                    .unwrap_or(u32::MAX),
                config_version: 0,
                dropped_telemetry: 0,
            })),
        });
    }

    fn event(&mut self, i: usize, kind: EventKind, now: UnixMs, out: &mut Vec<Output>) {
        let Some(d) = self.devices.get_mut(i) else {
            return;
        };
        let seq = next_seq(d, now);
        out.push(Output::Uplink {
            device: d.spec.id.clone(),
            message: Message::Event(Event {
                seq,
                time: time(now),
                kind,
            }),
        });
    }

    /// A whole cycle read: decode, detect state changes, report.
    fn complete(&mut self, i: usize, words: &[Vec<u16>], now: UnixMs, out: &mut Vec<Output>) {
        self.alive(i, now, out);
        let Some(d) = self.devices.get(i) else {
            return;
        };
        let map = d.spec.profile.map();
        let decoded = decode(&d.spec.profile, &d.blocks, words);
        let mut states = d.states;
        let mut levels = d.levels;
        let restored_fault = d.restored_fault;
        let mut kinds = Vec::new();
        for (ch, slot) in states.iter_mut().enumerate() {
            let (Some(code), Ok(ch8)) =
                (decoded.codes.get(ch).copied().flatten(), u8::try_from(ch))
            else {
                continue;
            };
            let Ok(state) = map.channel_state(ch8, code) else {
                out.push(Output::UnknownStateCode {
                    device: d.spec.id.clone(),
                    channel: ch8,
                    code,
                });
                continue;
            };
            let level = Level {
                quantity: map
                    .channel_quantity(ch8)
                    .unwrap_or(Quantity::ResidualCurrent),
                value: decoded.values.get(ch).copied().flatten().unwrap_or(0),
                threshold: decoded.setpoints.get(ch).copied().flatten().unwrap_or(0),
            };
            if let Some(l) = levels.get_mut(ch) {
                *l = Some(level);
            }
            let unconfirmed = restored_fault.get(ch).copied().unwrap_or(false);
            if !(unconfirmed && matches!(state, ChannelState::Fault(_))) {
                kinds.extend(edges(ch8, *slot, state, level));
            }
            *slot = Some(state);
        }
        let readings = readings(&map, &decoded, &states);
        if let Some(d) = self.devices.get_mut(i) {
            d.states = states;
            d.levels = levels;
            d.restored_fault = [false; MAX_CHANNELS];
        }
        for k in kinds {
            self.event(i, k, now, out);
        }
        if !readings.is_empty()
            && let Some(d) = self.devices.get_mut(i)
        {
            let seq = next_seq(d, now);
            out.push(Output::Uplink {
                device: d.spec.id.clone(),
                message: Message::Telemetry(Telemetry {
                    seq,
                    time: time(now),
                    readings,
                }),
            });
        }
    }
}

fn next_seq(d: &mut Dev, now: UnixMs) -> Seq {
    d.seq = d.seq.saturating_add(1).max(seq_floor(now));
    d.seq
}

fn time(now: UnixMs) -> DeviceTime {
    DeviceTime {
        uptime_ms: 0,
        unix_ms: Some(now),
    }
}

#[cfg(test)]
mod tests;
