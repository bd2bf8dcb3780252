//! The device: monitor, outbox, sequence numbers and codec glued together — pure, no I/O,
//! explicit time.
//!
//! [`Device`] is what runs identically on the board and in the simulator. The MQTT runner
//! ([`crate::mqtt::run`]) drives it, but it knows nothing of MQTT or sockets:
//!
//! - [`Device::step`] feeds one [`Input`] (a sample, a smoke edge, a tick…) to the
//!   [`Monitor`], gives each resulting event a sequence number and the time, encodes it in the
//!   device's [`Encoding`] and queues it in the [`Outbox`]; a report becomes telemetry in the
//!   outbox; a heartbeat, a battery measurement, a sensor check and a reboot become
//!   [`Actions`] for the shell, with the [`Indicators`] to show.
//! - [`Device::on_publish`] / [`Device::on_message`] take the gateway's downlink: an `ack`
//!   drops acknowledged events from the outbox, a `cmd` and a `config` go to the monitor.
//!   Anything that cannot be used is refused with a counted [`Refusal`], never a panic.
//! - [`Device::online_status`] builds the retained status, [`Device::will_payload`] the last
//!   will; [`Device::next_deadline`] says when to call [`Device::step`] with [`Input::Tick`].
//!
//! ```
//! use firegrid_firmware::device::Device;
//! use firegrid_firmware::monitor::{Input, Layout};
//! use firegrid_firmware::seq::MemStore;
//! use firegrid_firmware::protocols::{DeviceId, DeviceTopic, codec, message::{EventKind, Message}};
//!
//! let id = DeviceId::new("hz-0042").unwrap();
//! let mut dev = Device::<_, 32, 16>::new(id, Layout::smoke_alarm(), MemStore::new(), 0);
//! dev.step(0, Input::Tick);
//! dev.step(1_500, Input::Smoke(true)); // the alarm sounds at once; the event is queued
//! dev.link_up();
//! let t = dev.outbox().poll_transmit(1_500).unwrap();
//! let Ok(Message::Event(e)) = codec::decode(DeviceTopic::Event, t.payload) else { panic!() };
//! assert_eq!((e.kind, e.time.uptime_ms, e.time.unix_ms), (EventKind::Smoke, 1_500, None));
//! let seq = e.seq;
//! dev.outbox_mut().mark_sent(seq, 1_500);
//! // The gateway journaled it: the ack drops it and sets the wall clock.
//! let ack = format!(r#"{{"seqs":[{seq}],"ts":1764403260000}}"#);
//! dev.on_message(1_600, DeviceTopic::Ack, ack.as_bytes()).unwrap();
//! assert!(dev.outbox().is_empty());
//! assert_eq!(dev.wall_ms(2_600), Some(1_764_403_261_000));
//! ```
//!
//! # Rules
//!
//! - **Time.** Every uplink message carries `up_ms` = `now_ms` and, once known, `ts`: the wall
//!   clock is `gateway_ms + (now_ms − now_ms at sync)`, taken from the `ts` of every `ack` and
//!   of every new `cmd` (the latest wins; a redelivered command is not a time source, its `ts`
//!   is old). Until the first sync, `ts` is left out.
//! - **Commands** are QoS 1 and may be redelivered: the ids of the last [`RECENT_COMMANDS`]
//!   commands carried out are kept, and a command with one of them is ignored (counted).
//! - **Configs** are retained and come again at every connect: a version in force, or the
//!   version refused last, is ignored (counted) so that it is not answered twice.
//! - **Critical events are never dropped for lack of room.** If the outbox refuses an event
//!   (every event slot holds an unacknowledged critical event, `PushError::Full`), it waits in
//!   a pending list of [`PENDING_EVENTS`] entries and is pushed, with its original sequence
//!   number and time, as soon as an ack frees a slot (or at the next step). Only if that list
//!   is full too is an event lost: an informative one first, and a critical one only when the
//!   list holds nothing else; both are counted ([`Stats::events_lost_critical`]). The
//!   outbox's module documentation shows how unlikely that is.
//! - **Statuses** are not queued (a stale status is worth nothing); the shell publishes one
//!   at every connect and every heartbeat ([`Actions::publish_status`]). Each carries the
//!   telemetry dropped since the last status the shell confirmed with
//!   [`Device::status_published`], so a count is not lost with a status that never left.

use core::fmt;

use firegrid_protocols::codec::{self, DecodeError, EncodeError, Encoding};
use firegrid_protocols::id::DeviceId;
use firegrid_protocols::message::{
    DeviceTime, Event, EventKind, Heartbeat, MAX_FIRMWARE_LEN, Message, Seq, Status, Telemetry,
};
use firegrid_protocols::topic::{DeviceTopic, Topic};

use crate::monitor::{Indicators, Input, Layout, Monitor, Output, Outputs, Sound};
use crate::outbox::{EventClass, Outbox, PAYLOAD_CAPACITY, Payload, PushError, encode_payload};
use crate::seq::{SeqAllocator, SeqStore};

/// How many executed command ids a device remembers to ignore a redelivery.
pub const RECENT_COMMANDS: usize = 16;
/// How many events refused by a full outbox wait inside the device for a free slot.
pub const PENDING_EVENTS: usize = 8;
/// How long after a failed retry the pending events are tried again, ms (a free slot retries
/// them at once; this covers a sequence-number store that failed).
pub const PENDING_RETRY_MS: u64 = 1_000;
/// The longest last-will payload ([`Device::will_payload`]), bytes.
pub const MAX_WILL_LEN: usize = 32;

/// The wall-clock time, from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallSync {
    /// The gateway's time, ms since the Unix epoch.
    pub gateway_ms: u64,
    /// The device's `now_ms` when it was taken.
    pub at_uptime_ms: u64,
}

/// What the shell must do after [`Device::step`] or [`Device::on_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// Show this: sounder, lights, relay.
    pub indicators: Indicators,
    /// Publish [`Device::online_status`] now, retained, if connected (a heartbeat is due).
    pub publish_status: bool,
    /// Measure the battery and feed [`Input::Battery`].
    pub measure_battery: bool,
    /// Check the sensors and feed [`Input::SensorCheck`].
    pub check_sensors: bool,
    /// Restart the device, once the command's result has been published.
    pub reboot: bool,
}

impl Actions {
    /// Nothing to do but show `indicators`.
    pub const fn show(indicators: Indicators) -> Self {
        Self {
            indicators,
            publish_status: false,
            measure_battery: false,
            check_sensors: false,
            reboot: false,
        }
    }
}

/// Why a downlink message was not used. Counted in [`Stats::refused`]; never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The payload is not a valid message for its topic.
    Undecodable(DecodeError),
    /// A device → gateway topic (telemetry, event, status): a device does not take those.
    UplinkTopic(DeviceTopic),
    /// Not a topic of this device (another device's, or not a firegrid device topic).
    ForeignTopic,
}

impl Refusal {
    /// A short, stable name of the reason, for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Undecodable(e) => e.reason(),
            Self::UplinkTopic(_) => "uplink_topic",
            Self::ForeignTopic => "foreign_topic",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undecodable(e) => write!(f, "undecodable downlink: {e}"),
            Self::UplinkTopic(t) => write!(
                f,
                "a device does not take messages on its {} topic",
                t.as_str()
            ),
            Self::ForeignTopic => f.write_str("not a topic of this device"),
        }
    }
}

/// Downlink refusals, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// [`Refusal::Undecodable`].
    pub undecodable: u32,
    /// [`Refusal::UplinkTopic`].
    pub uplink_topic: u32,
    /// [`Refusal::ForeignTopic`].
    pub foreign_topic: u32,
}

/// Why no status could be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusError {
    /// No sequence number (the store failed or is exhausted).
    Seq,
    /// The status does not fit the payload capacity `N`.
    Encode(EncodeError),
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Seq => f.write_str("no sequence number for the status"),
            Self::Encode(e) => write!(f, "cannot encode the status: {e}"),
        }
    }
}

/// Counters since the device was made, for metrics; all saturate at `u32::MAX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events the monitor produced.
    pub events: u32,
    /// Telemetry messages queued in the outbox.
    pub telemetry: u32,
    /// Statuses built.
    pub statuses: u32,
    /// Times the outbox refused an event because its event area was full of critical events
    /// (the event then waits in the pending list).
    pub outbox_full: u32,
    /// Critical events lost because the outbox and the pending list were both full.
    pub events_lost_critical: u32,
    /// Informative events lost the same way (or evicted from the pending list by a critical
    /// one).
    pub events_lost_informative: u32,
    /// Messages not sent because no sequence number could be had (the store failed).
    pub seq_failures: u32,
    /// Messages that did not fit the payload capacity `N` and were not sent.
    pub encode_failures: u32,
    /// Acks taken.
    pub acks: u32,
    /// Commands carried out.
    pub commands: u32,
    /// Commands ignored because their id was carried out already (a QoS 1 redelivery).
    pub duplicate_commands: u32,
    /// Configs handed to the monitor (applied or refused).
    pub configs: u32,
    /// Configs ignored because their version is in force or was refused last.
    pub duplicate_configs: u32,
    /// Downlink messages refused, by reason.
    pub refused: Refusals,
}

/// An event the outbox had no room for (or no sequence number yet).
#[derive(Debug, Clone)]
struct Pending {
    seq: Option<Seq>,
    time: DeviceTime,
    kind: EventKind,
}

/// The device runtime's pure core: `EVENTS` event slots, `TELEMETRY` telemetry slots and `N`
/// payload bytes per slot in its outbox. See the [module documentation](self).
#[derive(Debug)]
pub struct Device<S, const EVENTS: usize, const TELEMETRY: usize, const N: usize = PAYLOAD_CAPACITY>
{
    id: DeviceId,
    encoding: Encoding,
    firmware: heapless::String<MAX_FIRMWARE_LEN>,
    monitor: Monitor,
    outbox: Outbox<EVENTS, TELEMETRY, N>,
    seq: SeqAllocator<S>,
    wall: Option<WallSync>,
    recent_commands: heapless::Deque<u32, RECENT_COMMANDS>,
    refused_config: Option<u32>,
    pending: heapless::Vec<Pending, PENDING_EVENTS>,
    pending_retry_at: Option<u64>,
    indicators: Indicators,
    battery_mv: Option<u16>,
    signal_dbm: Option<i16>,
    /// Dropped telemetry reported in statuses not yet confirmed published.
    dropped_unconfirmed: u32,
    stats: Stats,
}

impl<S: SeqStore, const EVENTS: usize, const TELEMETRY: usize, const N: usize>
    Device<S, EVENTS, TELEMETRY, N>
{
    /// A device that booted at `now_ms`: a [`Monitor`] on `layout` with its factory config, an
    /// empty outbox (link down, resend timeout 10 s), sequence numbers from `seq_store`, JSON,
    /// and this crate's version as its firmware version.
    pub fn new(id: DeviceId, layout: Layout, seq_store: S, now_ms: u64) -> Self {
        Self {
            id,
            encoding: Encoding::Json,
            firmware: truncated(env!("CARGO_PKG_VERSION")),
            monitor: Monitor::new(layout, now_ms),
            outbox: Outbox::new(),
            seq: SeqAllocator::new(seq_store),
            wall: None,
            recent_commands: heapless::Deque::new(),
            refused_config: None,
            pending: heapless::Vec::new(),
            pending_retry_at: None,
            indicators: Indicators {
                sound: Sound::Off,
                alarm_led: false,
                fault_led: false,
                relay_tripped: false,
            },
            battery_mv: None,
            signal_dbm: None,
            dropped_unconfirmed: 0,
            stats: Stats::default(),
        }
    }

    /// The same speaking `encoding` on its uplink (the gateway reads both on every topic).
    #[must_use]
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The same reporting `firmware` as its version (cut to 24 bytes at a character boundary).
    #[must_use]
    pub fn with_firmware(mut self, firmware: &str) -> Self {
        self.firmware = truncated(firmware);
        self
    }

    /// The same with another outbox (e.g. another resend timeout). Call before anything is
    /// queued: the old outbox is dropped.
    #[must_use]
    pub fn with_outbox(mut self, outbox: Outbox<EVENTS, TELEMETRY, N>) -> Self {
        self.outbox = outbox;
        self
    }

    /// The device id.
    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    /// The encoding of its uplink.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox<EVENTS, TELEMETRY, N> {
        &self.outbox
    }

    /// The outbox, for the MQTT shell: `poll_transmit`, `mark_sent`.
    pub fn outbox_mut(&mut self) -> &mut Outbox<EVENTS, TELEMETRY, N> {
        &mut self.outbox
    }

    /// The sequence-number allocator (and through it the store).
    pub fn seq_allocator(&self) -> &SeqAllocator<S> {
        &self.seq
    }

    /// The sequence-number allocator, mutably (e.g. to inject store faults in tests).
    pub fn seq_allocator_mut(&mut self) -> &mut SeqAllocator<S> {
        &mut self.seq
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The indicators of the latest step.
    pub fn indicators(&self) -> Indicators {
        self.indicators
    }

    /// Events waiting for room in the outbox.
    pub fn pending_events(&self) -> usize {
        self.pending.len()
    }

    /// The latest wall-clock sync, if any.
    pub fn wall_sync(&self) -> Option<WallSync> {
        self.wall
    }

    /// The wall-clock time at `now_ms`, ms since the Unix epoch, once synchronised.
    pub fn wall_ms(&self, now_ms: u64) -> Option<u64> {
        self.wall.map(|w| {
            w.gateway_ms
                .saturating_add(now_ms.saturating_sub(w.at_uptime_ms))
        })
    }

    /// Sets the radio signal reported in statuses.
    pub fn set_signal_dbm(&mut self, signal_dbm: Option<i16>) {
        self.signal_dbm = signal_dbm;
    }

    /// The link is up (after the subscriptions of a new connection): every unacknowledged
    /// event is due at once ([`Outbox::on_reconnect`]).
    pub fn link_up(&mut self) {
        self.outbox.on_reconnect();
    }

    /// The link is down ([`Outbox::on_disconnect`]): everything waits in the outbox.
    pub fn link_down(&mut self) {
        self.outbox.on_disconnect();
    }

    /// When to call [`step`](Self::step) with [`Input::Tick`] at the latest, for the monitor
    /// and the pending events (the outbox's resends are not included: see
    /// [`next_deadline`](Self::next_deadline)).
    pub fn local_deadline(&self) -> u64 {
        let t = self.monitor.next_deadline();
        self.pending_retry_at.map_or(t, |r| t.min(r))
    }

    /// When something is next due if nothing else happens: the monitor, a pending event, or
    /// an outbox resend (polled with `outbox().poll_transmit`).
    pub fn next_deadline(&self) -> u64 {
        let t = self.local_deadline();
        self.outbox.next_deadline().map_or(t, |o| t.min(o))
    }

    /// Handles one input at `now_ms` (monotonic ms since boot): runs the monitor, queues its
    /// events and reports, and says what the shell must do.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Actions {
        if let Input::Battery(mv) = input {
            self.battery_mv = Some(mv);
        }
        let outputs = self.monitor.step(now_ms, input);
        self.apply(now_ms, outputs)
    }

    /// Takes a message received on `topic` (a full topic name): it must be one of this
    /// device's downlink topics. See [`on_message`](Self::on_message).
    ///
    /// # Errors
    /// [`Refusal`], counted; nothing changes.
    pub fn on_publish(
        &mut self,
        now_ms: u64,
        topic: &str,
        payload: &[u8],
    ) -> Result<Actions, Refusal> {
        match Topic::parse(topic) {
            Ok(Topic::Device(id, kind)) if id == self.id => self.on_message(now_ms, kind, payload),
            _ => {
                self.stats.refused.foreign_topic =
                    self.stats.refused.foreign_topic.saturating_add(1);
                Err(Refusal::ForeignTopic)
            }
        }
    }

    /// Takes a message from the gateway on this device's `kind` topic:
    /// - `ack`: drops the acknowledged events from the outbox (then retries pending events)
    ///   and takes the wall-clock time;
    /// - `cmd`: unless its id was carried out already, takes the time and runs it;
    /// - `config`: unless its version is in force or was refused last, hands it to the
    ///   monitor, which answers with `config_applied` or `config_refused`.
    ///
    /// # Errors
    /// [`Refusal`], counted; nothing changes.
    pub fn on_message(
        &mut self,
        now_ms: u64,
        kind: DeviceTopic,
        payload: &[u8],
    ) -> Result<Actions, Refusal> {
        if kind.is_uplink() {
            self.stats.refused.uplink_topic = self.stats.refused.uplink_topic.saturating_add(1);
            return Err(Refusal::UplinkTopic(kind));
        }
        let msg = codec::decode(kind, payload).map_err(|e| {
            self.stats.refused.undecodable = self.stats.refused.undecodable.saturating_add(1);
            Refusal::Undecodable(e)
        })?;
        match msg {
            Message::Ack(ack) => {
                self.stats.acks = self.stats.acks.saturating_add(1);
                self.sync_wall(now_ms, ack.time_ms);
                self.outbox.ack(&ack.seqs);
                self.retry_pending(now_ms);
                Ok(Actions::show(self.indicators))
            }
            Message::Command(cmd) => {
                if self.recent_commands.iter().any(|&id| id == cmd.id) {
                    self.stats.duplicate_commands = self.stats.duplicate_commands.saturating_add(1);
                    return Ok(Actions::show(self.indicators));
                }
                self.stats.commands = self.stats.commands.saturating_add(1);
                self.sync_wall(now_ms, cmd.time_ms);
                if self.recent_commands.is_full() {
                    self.recent_commands.pop_front();
                }
                // Cannot fail: a slot was freed above.
                let _ = self.recent_commands.push_back(cmd.id);
                Ok(self.step(now_ms, Input::Command(cmd)))
            }
            Message::Config(config) => {
                let version = config.version;
                if version == self.monitor.config().version || self.refused_config == Some(version)
                {
                    self.stats.duplicate_configs = self.stats.duplicate_configs.saturating_add(1);
                    return Ok(Actions::show(self.indicators));
                }
                self.stats.configs = self.stats.configs.saturating_add(1);
                let outputs = self.monitor.step(now_ms, Input::Config(config));
                let refused = outputs.actions.iter().any(|o| {
                    matches!(o, Output::Event(EventKind::ConfigRefused { version: v, .. }) if *v == version)
                });
                self.refused_config = refused.then_some(version);
                Ok(self.apply(now_ms, outputs))
            }
            // `decode` gives the message of the topic's kind, and uplink kinds were refused
            // above; kept total rather than trusted.
            Message::Telemetry(_) | Message::Event(_) | Message::Status(_) => {
                self.stats.refused.uplink_topic = self.stats.refused.uplink_topic.saturating_add(1);
                Err(Refusal::UplinkTopic(kind))
            }
        }
    }

    /// The retained `online` status at `now_ms`, with a new sequence number, the config and
    /// intervals in force and the telemetry dropped since the last confirmed status. Call
    /// [`status_published`](Self::status_published) once it is published.
    ///
    /// # Errors
    /// [`StatusError`]: no sequence number, or too long for `N`.
    pub fn online_status(&mut self, now_ms: u64) -> Result<Payload<N>, StatusError> {
        let seq = self.seq.next().map_err(|_| {
            self.stats.seq_failures = self.stats.seq_failures.saturating_add(1);
            StatusError::Seq
        })?;
        self.dropped_unconfirmed = self
            .dropped_unconfirmed
            .saturating_add(self.outbox.take_dropped_telemetry());
        let config = self.monitor.config();
        let heartbeat = Heartbeat {
            seq,
            time: self.time(now_ms),
            firmware: self.firmware.clone(),
            signal_dbm: self.signal_dbm,
            battery_mv: self.battery_mv,
            report_interval_s: config.report_interval_s,
            heartbeat_interval_s: config.heartbeat_interval_s,
            config_version: config.version,
            dropped_telemetry: self.dropped_unconfirmed,
        };
        self.stats.statuses = self.stats.statuses.saturating_add(1);
        encode_payload(&Message::Status(Status::Online(heartbeat)), self.encoding).map_err(|e| {
            self.stats.encode_failures = self.stats.encode_failures.saturating_add(1);
            StatusError::Encode(e)
        })
    }

    /// The last status from [`online_status`](Self::online_status) was published: the dropped
    /// telemetry it reported is accounted for.
    pub fn status_published(&mut self) {
        self.dropped_unconfirmed = 0;
    }

    /// The last will: the `offline` status in the device's encoding (`{"state":"offline"}`).
    pub fn will_payload(&self) -> heapless::Vec<u8, MAX_WILL_LEN> {
        encode_payload(&Message::Status(Status::Offline), self.encoding)
            .or_else(|_| heapless::Vec::from_slice(br#"{"state":"offline"}"#))
            .unwrap_or_default()
    }

    /// The device time at `now_ms`.
    fn time(&self, now_ms: u64) -> DeviceTime {
        DeviceTime {
            uptime_ms: now_ms,
            unix_ms: self.wall_ms(now_ms),
        }
    }

    fn sync_wall(&mut self, now_ms: u64, gateway_ms: u64) {
        self.wall = Some(WallSync {
            gateway_ms,
            at_uptime_ms: now_ms,
        });
    }

    /// Queues the monitor's events and reports; turns the rest into actions.
    fn apply(&mut self, now_ms: u64, outputs: Outputs) -> Actions {
        self.indicators = outputs.indicators;
        let mut actions = Actions::show(outputs.indicators);
        // Older events first: they hold lower sequence numbers.
        self.retry_pending(now_ms);
        for output in outputs.actions {
            match output {
                Output::Event(kind) => {
                    self.stats.events = self.stats.events.saturating_add(1);
                    let time = self.time(now_ms);
                    self.queue_event(
                        now_ms,
                        Pending {
                            seq: None,
                            time,
                            kind,
                        },
                    );
                }
                Output::Report => self.queue_telemetry(now_ms),
                Output::Heartbeat => actions.publish_status = true,
                Output::MeasureBattery => actions.measure_battery = true,
                Output::CheckSensors => actions.check_sensors = true,
                Output::Reboot => actions.reboot = true,
            }
        }
        actions
    }

    fn queue_event(&mut self, now_ms: u64, mut event: Pending) {
        // Behind older pending ones (the outbox is full or the store failing), or now.
        if !self.pending.is_empty() || !self.try_push(&mut event) {
            self.park(now_ms, event);
        }
    }

    /// Gives the event a sequence number if it has none, encodes it and pushes it. `false`:
    /// keep it and try again later (the outbox is full, or no sequence number yet).
    fn try_push(&mut self, event: &mut Pending) -> bool {
        let seq = match event.seq {
            Some(seq) => seq,
            None => match self.seq.next() {
                Ok(seq) => {
                    event.seq = Some(seq);
                    seq
                }
                Err(_) => {
                    self.stats.seq_failures = self.stats.seq_failures.saturating_add(1);
                    return false;
                }
            },
        };
        let class = EventClass::of(&event.kind);
        let Some(payload) = self.encode_event(seq, event) else {
            // It will never fit `N`: retrying cannot help.
            self.stats.encode_failures = self.stats.encode_failures.saturating_add(1);
            self.count_lost(class);
            return true;
        };
        match self.outbox.push_event(seq, class, payload) {
            // An evicted informative event is counted by the outbox (`evicted_informative`).
            Ok(_) | Err(PushError::DuplicateSeq(_)) => true,
            Err(PushError::Full(_)) => {
                self.stats.outbox_full = self.stats.outbox_full.saturating_add(1);
                false
            }
        }
    }

    /// Encodes an event; a `config_refused` whose reason makes it too long has its reason
    /// shortened (in `event` too) until it fits. `None` if it cannot fit.
    fn encode_event(&self, seq: Seq, event: &mut Pending) -> Option<Payload<N>> {
        loop {
            let msg = Message::Event(Event {
                seq,
                time: event.time,
                kind: event.kind.clone(),
            });
            match encode_payload::<N>(&msg, self.encoding) {
                Ok(payload) => return Some(payload),
                // Too long (the only way encoding fails).
                Err(_) => match &mut event.kind {
                    EventKind::ConfigRefused { reason, .. } if !reason.is_empty() => {
                        let mut cut = reason.len() / 2;
                        while !reason.is_char_boundary(cut) {
                            cut = cut.saturating_sub(1);
                        }
                        reason.truncate(cut);
                    }
                    _ => return None,
                },
            }
        }
    }

    /// Keeps an event for later; if the list is full, drops an informative one (the new one
    /// or one held), and a critical one only if nothing else is held.
    fn park(&mut self, now_ms: u64, event: Pending) {
        if let Err(event) = self.pending.push(event) {
            let class = EventClass::of(&event.kind);
            let informative = self
                .pending
                .iter()
                .position(|p| EventClass::of(&p.kind) == EventClass::Informative);
            match (class, informative) {
                (EventClass::Critical, Some(i)) => {
                    self.pending.remove(i);
                    self.count_lost(EventClass::Informative);
                    // Cannot fail: a slot was freed.
                    let _ = self.pending.push(event);
                }
                _ => self.count_lost(class),
            }
        }
        if self.pending_retry_at.is_none() {
            self.pending_retry_at = Some(now_ms.saturating_add(PENDING_RETRY_MS));
        }
    }

    /// Pushes pending events, oldest first, until one is refused again.
    fn retry_pending(&mut self, now_ms: u64) {
        while let Some(first) = self.pending.first_mut() {
            let mut event = first.clone();
            let pushed = self.try_push(&mut event);
            if pushed {
                self.pending.remove(0);
            } else if let Some(first) = self.pending.first_mut() {
                // Keeps what it got meanwhile (a sequence number, a shortened reason).
                *first = event;
                self.pending_retry_at = Some(now_ms.saturating_add(PENDING_RETRY_MS));
                return;
            }
        }
        self.pending_retry_at = None;
    }

    fn count_lost(&mut self, class: EventClass) {
        let counter = match class {
            EventClass::Critical => &mut self.stats.events_lost_critical,
            EventClass::Informative => &mut self.stats.events_lost_informative,
        };
        *counter = counter.saturating_add(1);
    }

    fn queue_telemetry(&mut self, now_ms: u64) {
        let Ok(seq) = self.seq.next() else {
            self.stats.seq_failures = self.stats.seq_failures.saturating_add(1);
            return;
        };
        let msg = Message::Telemetry(Telemetry {
            seq,
            time: self.time(now_ms),
            readings: self.monitor.readings(),
        });
        match encode_payload::<N>(&msg, self.encoding) {
            Ok(payload) => {
                // A full telemetry area drops its oldest, counted by the outbox for the next
                // status; a duplicate seq cannot happen (seqs are unique).
                let _ = self.outbox.push_telemetry(seq, payload);
                self.stats.telemetry = self.stats.telemetry.saturating_add(1);
            }
            Err(_) => self.stats.encode_failures = self.stats.encode_failures.saturating_add(1),
        }
    }
}

/// `s` cut to the firmware field's 24 bytes at a character boundary.
fn truncated(s: &str) -> heapless::String<MAX_FIRMWARE_LEN> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;
