//! Store-and-forward of uplink messages, with end-to-end acknowledgement of events.
//!
//! A pure, fixed-capacity core (no clock, no I/O, no heap): the device encodes a message
//! ([`encode_payload`], i.e. [`firegrid_protocols::codec::encode`]), pushes the bytes with their
//! [`Seq`], and its MQTT shell drains the outbox:
//!
//! ```
//! use firegrid_firmware::outbox::{EventClass, Outbox, Payload};
//!
//! let mut outbox = Outbox::<32, 64>::new(); // resend timeout 10 s
//! outbox.on_reconnect(); // link up
//! let telemetry = Payload::from_slice(b"{...telemetry...}").unwrap();
//! let alarm = Payload::from_slice(b"{...alarm...}").unwrap(); // from encode_payload
//! outbox.push_telemetry(7, telemetry).unwrap();
//! outbox.push_event(8, EventClass::Critical, alarm).unwrap();
//!
//! let now_ms = 1_000;
//! // Alarms never wait behind telemetry.
//! let t = outbox.poll_transmit(now_ms).unwrap();
//! assert_eq!(t.seq, 8);
//! // ...publish t.payload on t.topic() (QoS 1); only if that worked:
//! outbox.mark_sent(8, now_ms);
//! let t = outbox.poll_transmit(now_ms).unwrap();
//! assert_eq!(t.seq, 7);
//! outbox.mark_sent(7, now_ms); // telemetry is gone once handed over
//! assert_eq!(outbox.poll_transmit(now_ms), None); // the alarm waits for its ack...
//! assert_eq!(outbox.next_deadline(), Some(11_000)); // ...or its resend, same seq, same bytes
//! assert_eq!(outbox.ack(&[8]), 1); // the gateway's `ack` topic: journaled
//! assert!(outbox.is_empty());
//! ```
//!
//! # Rules (`docs/protocol.md`, "End-to-end acknowledgement")
//!
//! - **Events** stay until the gateway acknowledges their `seq` on the `ack` topic
//!   ([`Outbox::ack`]); an MQTT PUBACK is not enough, as a broker can lose a message. An event
//!   sent and not acknowledged within the resend timeout (default [`RESEND_TIMEOUT_MS`], 10 s,
//!   GB/T 26875.3 §6.5) is due again, with the same `seq` and bytes; after a reconnect
//!   ([`Outbox::on_reconnect`]) every unacknowledged event is due at once.
//! - **Telemetry** is sent once and forgotten ([`Outbox::mark_sent`]); it is not acknowledged
//!   end to end (gaps in its `seq` show losses). While the link is down it is queued.
//! - **Order**: [`Outbox::poll_transmit`] gives due events before any telemetry — critical
//!   before informative, each oldest (lowest `seq`) first — then telemetry, oldest first.
//! - **Bounds**: events and telemetry have separate areas. A full telemetry area drops its
//!   oldest entry, counted for the next status' `dropped_telemetry`
//!   ([`Outbox::take_dropped_telemetry`]). [`EventClass::Critical`] events are never evicted;
//!   a new event in a full event area evicts the oldest [`EventClass::Informative`] one
//!   (counted in [`Stats::evicted_informative`]), and only when every slot holds a critical event
//!   does [`Outbox::push_event`] fail, with [`PushError::Full`] handing the payload back.
//!
//! Status messages are not queued here: the status is retained and rebuilt at every connect
//! and heartbeat, so a stale one is worth nothing; the shell publishes it directly (with a
//! `seq` from the same counter) and reports [`Outbox::take_dropped_telemetry`] in it.
//!
//! The outbox lives in RAM: a reset loses what it holds (a fire monitor's state is re-reported
//! as events by the monitor core after boot).
//!
//! # Sizing
//!
//! Each slot holds up to `N` payload bytes in a [`heapless::Vec<u8, N>`]; the default
//! [`PAYLOAD_CAPACITY`] of 256 bytes fits the typical monitor's telemetry (1 residual-current
//! and 4 temperature channels: 180 bytes in JSON, 50 in binary) and every event, up to 226
//! bytes in JSON with every number at its maximum, except a `config_refused` whose 96-byte
//! reason needs JSON escaping (up to 706 bytes; in binary it is at most 131). A 16-channel
//! telemetry with all four quantities needs 225–365 bytes in binary, 1.3–1.6 KiB in JSON:
//! choose `N` for the device's profile and encoding ([`encode_payload`] says
//! [`EncodeError::BufferFull`] when a message does not fit).
//!
//! On `thumbv7em-none-eabihf` an event slot costs `N + 24` bytes (payload, its length word,
//! `seq`, resend time, class, flag, padding to 8) and a telemetry slot `N + 8`, plus 56 bytes
//! for the outbox itself. The suggested `Outbox<32, 64, 256>` (32 events, 64 telemetry) is
//! 32 × 280 + 64 × 264 + 56 = 25 912 bytes (≈ 25.3 KiB); a binary-only device with `N = 128`
//! needs `Outbox<32, 64, 128>`, 13 624 bytes. (Measured with `size_of` for that target; the
//! host tests bound the per-slot overhead at 24 bytes.) Place it in a `static` or in the
//! main task's state, not in a short-lived stack frame.
//!
//! # When the event area is full of critical events
//!
//! A critical event is an edge of a condition: alarm raised/cleared and fault/fault cleared
//! per channel, smoke/smoke cleared, battery low/ok, tamper/tamper cleared. The typical monitor
//! (5 channels, battery, tamper) can raise and clear every one of its conditions once —
//! 5 × 2 × 2 + 2 + 2 + 2 = 26 edges — without an ack before 32 slots fill. With the link up,
//! acks arrive within a round trip, so [`PushError::Full`] needs the gateway unreachable and
//! conditions *flapping* (repeated fault/fault-cleared of a loose lead, a 16-channel device
//! cycling every condition, ...). Then the caller keeps the payload handed back and pushes it
//! again later (after an ack or a reconnect frees slots); the device's local alarm does not
//! depend on the outbox.

use core::fmt;

use firegrid_protocols::codec::{self, EncodeError, Encoding};
use firegrid_protocols::message::{EventKind, Message, Seq};
use firegrid_protocols::topic::DeviceTopic;

/// Default payload capacity of a slot, bytes (see the [module documentation](self) on sizing).
pub const PAYLOAD_CAPACITY: usize = 256;

/// Default time after which a sent, unacknowledged event is sent again, ms (GB/T 26875.3 §6.5:
/// 10 s).
pub const RESEND_TIMEOUT_MS: u64 = 10_000;

/// An encoded message (JSON or binary), as [`firegrid_protocols::codec::encode`] wrote it.
pub type Payload<const N: usize = PAYLOAD_CAPACITY> = heapless::Vec<u8, N>;

/// Encodes `msg` into a [`Payload`].
///
/// # Errors
/// [`EncodeError::BufferFull`] if the encoded message is longer than `N`.
pub fn encode_payload<const N: usize>(
    msg: &Message,
    encoding: Encoding,
) -> Result<Payload<N>, EncodeError> {
    let mut payload = Payload::<N>::new();
    payload
        .resize_default(N)
        .map_err(|_| EncodeError::BufferFull)?;
    let len = codec::encode(msg, encoding, &mut payload)?;
    payload.truncate(len);
    Ok(payload)
}

/// How much an event matters when the outbox is full. The caller says it (it has the event
/// before encoding); [`EventClass::of`] is the rule for the protocol's event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventClass {
    /// An edge of an alarm, fault, smoke, battery or tamper condition: never evicted, sent
    /// before any informative event.
    Critical,
    /// A self-test result, silencing, command result or config answer: may be evicted by a
    /// newer event when the event area is full.
    Informative,
}

impl EventClass {
    /// The class of an event kind.
    pub const fn of(kind: &EventKind) -> Self {
        match kind {
            EventKind::AlarmRaised { .. }
            | EventKind::AlarmCleared { .. }
            | EventKind::Fault { .. }
            | EventKind::FaultCleared { .. }
            | EventKind::Smoke
            | EventKind::SmokeCleared
            | EventKind::BatteryLow { .. }
            | EventKind::BatteryOk { .. }
            | EventKind::Tamper
            | EventKind::TamperCleared => Self::Critical,
            EventKind::SelfTest { .. }
            | EventKind::Silenced { .. }
            | EventKind::CommandResult { .. }
            | EventKind::ConfigApplied { .. }
            | EventKind::ConfigRefused { .. } => Self::Informative,
        }
    }
}

/// What an outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An event of this class (`event` topic, QoS 1, kept until acknowledged).
    Event(EventClass),
    /// Telemetry (`telemetry` topic, sent once).
    Telemetry,
}

impl Kind {
    /// The device topic to publish on.
    pub const fn topic(self) -> DeviceTopic {
        match self {
            Self::Event(_) => DeviceTopic::Event,
            Self::Telemetry => DeviceTopic::Telemetry,
        }
    }
}

/// The next message to publish, from [`Outbox::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Its sequence number: give it to [`Outbox::mark_sent`] once published.
    pub seq: Seq,
    /// Event (and class) or telemetry.
    pub kind: Kind,
    /// The encoded message, exactly as pushed.
    pub payload: &'a [u8],
    /// Whether it was sent before (a resend after the timeout or a reconnect).
    pub resend: bool,
}

impl Transmit<'_> {
    /// The device topic to publish on.
    pub const fn topic(&self) -> DeviceTopic {
        self.kind.topic()
    }
}

/// Why a push was refused. The payload is handed back, so the caller can try again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError<const N: usize> {
    /// Every event slot holds a critical event (only for [`Outbox::push_event`]).
    Full(Payload<N>),
    /// An entry with this `seq` is already in the outbox (sequence numbers are unique per
    /// device; a repeated one is the caller's mistake, and would make one ack remove two).
    DuplicateSeq(Payload<N>),
}

impl<const N: usize> PushError<N> {
    /// The payload that was not stored.
    pub fn into_payload(self) -> Payload<N> {
        match self {
            Self::Full(p) | Self::DuplicateSeq(p) => p,
        }
    }
}

impl<const N: usize> fmt::Display for PushError<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("outbox full of unacknowledged critical events"),
            Self::DuplicateSeq(_) => f.write_str("outbox already holds this sequence number"),
        }
    }
}

/// Counters since the outbox was made, for metrics; all saturate at `u32::MAX`.
///
/// Events: `events_pushed = events in the outbox + events_acked + evicted_informative`.
/// Telemetry: `telemetry_pushed = telemetry in the outbox + telemetry_sent + dropped_telemetry`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted by [`Outbox::push_event`].
    pub events_pushed: u32,
    /// Events removed by an acknowledgement.
    pub events_acked: u32,
    /// Informative events evicted by a newer event in a full event area.
    pub evicted_informative: u32,
    /// Event transmissions after the first (timeouts and reconnects).
    pub event_resends: u32,
    /// Telemetry accepted by [`Outbox::push_telemetry`] (including what was dropped later).
    pub telemetry_pushed: u32,
    /// Telemetry handed to the MQTT client ([`Outbox::mark_sent`]).
    pub telemetry_sent: u32,
    /// Telemetry dropped from the full telemetry area (or at once, with no telemetry area).
    pub dropped_telemetry: u32,
}

/// An event waiting for its acknowledgement.
#[derive(Debug, Clone)]
struct EventSlot<const N: usize> {
    /// When it is due (again), ms; 0 for "at once" (never sent, or reconnected since).
    due_ms: u64,
    seq: Seq,
    class: EventClass,
    /// Sent at least once.
    sent: bool,
    payload: Payload<N>,
}

/// Telemetry waiting for the link.
#[derive(Debug, Clone)]
struct TelemetrySlot<const N: usize> {
    seq: Seq,
    payload: Payload<N>,
}

/// The store-and-forward outbox: `EVENTS` event slots, `TELEMETRY` telemetry slots, `N`
/// payload bytes each. See the [module documentation](self).
///
/// Starts with the link down: call [`on_reconnect`](Self::on_reconnect) after every MQTT
/// connect (the first one too) and [`on_disconnect`](Self::on_disconnect) when the link drops.
#[derive(Debug, Clone)]
pub struct Outbox<const EVENTS: usize, const TELEMETRY: usize, const N: usize = PAYLOAD_CAPACITY> {
    // Unordered (removal is `swap_remove`, one slot moved); order comes from `seq`.
    events: heapless::Vec<EventSlot<N>, EVENTS>,
    telemetry: heapless::Vec<TelemetrySlot<N>, TELEMETRY>,
    resend_timeout_ms: u64,
    link_up: bool,
    dropped_since_take: u32,
    stats: Stats,
}

impl<const EVENTS: usize, const TELEMETRY: usize, const N: usize> Default
    for Outbox<EVENTS, TELEMETRY, N>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const EVENTS: usize, const TELEMETRY: usize, const N: usize> Outbox<EVENTS, TELEMETRY, N> {
    /// Event slots.
    pub const EVENT_CAPACITY: usize = EVENTS;
    /// Telemetry slots.
    pub const TELEMETRY_CAPACITY: usize = TELEMETRY;
    /// Payload bytes per slot.
    pub const PAYLOAD_CAPACITY: usize = N;

    /// An empty outbox, link down, resend timeout [`RESEND_TIMEOUT_MS`].
    pub const fn new() -> Self {
        Self {
            events: heapless::Vec::new(),
            telemetry: heapless::Vec::new(),
            resend_timeout_ms: RESEND_TIMEOUT_MS,
            link_up: false,
            dropped_since_take: 0,
            stats: Stats {
                events_pushed: 0,
                events_acked: 0,
                evicted_informative: 0,
                event_resends: 0,
                telemetry_pushed: 0,
                telemetry_sent: 0,
                dropped_telemetry: 0,
            },
        }
    }

    /// The same with another resend timeout, ms (a setting). A timeout of 0 makes a sent event
    /// due again at once: it is resent on every poll until acknowledged.
    #[must_use]
    pub const fn with_resend_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.resend_timeout_ms = timeout_ms;
        self
    }

    /// Changes the resend timeout, ms; applies from the next [`mark_sent`](Self::mark_sent).
    pub fn set_resend_timeout_ms(&mut self, timeout_ms: u64) {
        self.resend_timeout_ms = timeout_ms;
    }

    /// The resend timeout, ms.
    pub const fn resend_timeout_ms(&self) -> u64 {
        self.resend_timeout_ms
    }

    /// Stores an event until the gateway acknowledges `seq`; it is due at once.
    ///
    /// In a full event area it evicts the oldest informative event and returns its `seq`.
    ///
    /// # Errors
    /// - [`PushError::Full`]: every slot holds a critical event (nothing evicted);
    /// - [`PushError::DuplicateSeq`]: `seq` is in the outbox already.
    ///
    /// Both hand the payload back.
    pub fn push_event(
        &mut self,
        seq: Seq,
        class: EventClass,
        payload: Payload<N>,
    ) -> Result<Option<Seq>, PushError<N>> {
        if self.contains(seq) {
            return Err(PushError::DuplicateSeq(payload));
        }
        let mut evicted = None;
        if self.events.is_full() {
            let Some(i) = self.oldest_event(|e| e.class == EventClass::Informative) else {
                return Err(PushError::Full(payload));
            };
            evicted = Some(self.events.swap_remove(i).seq);
            self.stats.evicted_informative = self.stats.evicted_informative.saturating_add(1);
        }
        let slot = EventSlot {
            due_ms: 0,
            seq,
            class,
            sent: false,
            payload,
        };
        match self.events.push(slot) {
            Ok(()) => {
                self.stats.events_pushed = self.stats.events_pushed.saturating_add(1);
                Ok(evicted)
            }
            // Only with `EVENTS == 0`: there is no slot at all.
            Err(slot) => Err(PushError::Full(slot.payload)),
        }
    }

    /// Queues telemetry until it is handed to the MQTT client.
    ///
    /// In a full telemetry area it drops the oldest telemetry (counted for
    /// [`take_dropped_telemetry`](Self::take_dropped_telemetry)) and returns its `seq`. With no
    /// telemetry area at all (`TELEMETRY == 0`) the new one is dropped, counted and returned.
    ///
    /// # Errors
    /// [`PushError::DuplicateSeq`]: `seq` is in the outbox already (payload handed back).
    pub fn push_telemetry(
        &mut self,
        seq: Seq,
        payload: Payload<N>,
    ) -> Result<Option<Seq>, PushError<N>> {
        if self.contains(seq) {
            return Err(PushError::DuplicateSeq(payload));
        }
        self.stats.telemetry_pushed = self.stats.telemetry_pushed.saturating_add(1);
        let mut dropped = None;
        if self.telemetry.is_full()
            && let Some(i) = min_index(self.telemetry.iter().map(|t| Some(t.seq)))
        {
            dropped = Some(self.telemetry.swap_remove(i).seq);
            self.count_dropped();
        }
        if self.telemetry.push(TelemetrySlot { seq, payload }).is_err() {
            // Only with `TELEMETRY == 0`.
            self.count_dropped();
            return Ok(Some(seq));
        }
        Ok(dropped)
    }

    /// The gateway has journaled these events (`Ack.seqs` from the `ack` topic): drops them.
    /// Unknown, repeated and telemetry sequence numbers are ignored. Returns how many events
    /// were removed.
    pub fn ack(&mut self, seqs: &[Seq]) -> usize {
        let mut removed = 0usize;
        for &seq in seqs {
            if let Some(i) = self.events.iter().position(|e| e.seq == seq) {
                self.events.swap_remove(i);
                removed = removed.saturating_add(1);
                self.stats.events_acked = self.stats.events_acked.saturating_add(1);
            }
        }
        removed
    }

    /// The next message to publish now, if any: nothing while the link is down; otherwise the
    /// due events, critical before informative and each oldest first, then telemetry, oldest
    /// first. Returns the same message until [`mark_sent`](Self::mark_sent) (or an ack) says
    /// otherwise, so a failed publish is simply tried again.
    pub fn poll_transmit(&self, now_ms: u64) -> Option<Transmit<'_>> {
        if !self.link_up {
            return None;
        }
        let event = min_index(
            self.events
                .iter()
                .map(|e| (e.due_ms <= now_ms).then_some((e.class, e.seq))),
        )
        .and_then(|i| self.events.get(i));
        if let Some(e) = event {
            return Some(Transmit {
                seq: e.seq,
                kind: Kind::Event(e.class),
                payload: &e.payload,
                resend: e.sent,
            });
        }
        min_index(self.telemetry.iter().map(|t| Some(t.seq)))
            .and_then(|i| self.telemetry.get(i))
            .map(|t| Transmit {
                seq: t.seq,
                kind: Kind::Telemetry,
                payload: &t.payload,
                resend: false,
            })
    }

    /// `seq` was handed to the MQTT client: an event is due again after the resend timeout
    /// (unless acknowledged first), telemetry is dropped. Returns what `seq` was, `None` if it
    /// is not in the outbox (e.g. acknowledged meanwhile): then nothing changes.
    pub fn mark_sent(&mut self, seq: Seq, now_ms: u64) -> Option<Kind> {
        if let Some(e) = self.events.iter_mut().find(|e| e.seq == seq) {
            e.due_ms = now_ms.saturating_add(self.resend_timeout_ms);
            if e.sent {
                self.stats.event_resends = self.stats.event_resends.saturating_add(1);
            }
            e.sent = true;
            return Some(Kind::Event(e.class));
        }
        let i = self.telemetry.iter().position(|t| t.seq == seq)?;
        self.telemetry.swap_remove(i);
        self.stats.telemetry_sent = self.stats.telemetry_sent.saturating_add(1);
        Some(Kind::Telemetry)
    }

    /// The link is up (after every MQTT connect, the first one too, once the `ack`
    /// subscription is in place): every unacknowledged event is due at once, telemetry flows.
    pub fn on_reconnect(&mut self) {
        self.link_up = true;
        for e in &mut self.events {
            e.due_ms = 0;
        }
    }

    /// The link is down: nothing is due until [`on_reconnect`](Self::on_reconnect); pushes
    /// are queued.
    pub fn on_disconnect(&mut self) {
        self.link_up = false;
    }

    /// Whether the link is up, as last told.
    pub const fn is_link_up(&self) -> bool {
        self.link_up
    }

    /// When [`poll_transmit`](Self::poll_transmit) will next have something if nothing else
    /// happens, ms: the earliest resend time, or a time at or before now (0) if something is
    /// due already. `None` while the link is down or the outbox is empty.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.link_up {
            return None;
        }
        let events = self.events.iter().map(|e| e.due_ms).min();
        let telemetry = (!self.telemetry.is_empty()).then_some(0);
        match (events, telemetry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The number of telemetry messages dropped since the previous call; resets it. Put it in
    /// the next status' `dropped_telemetry`.
    pub fn take_dropped_telemetry(&mut self) -> u32 {
        core::mem::take(&mut self.dropped_since_take)
    }

    /// Whether an event or telemetry with this `seq` is in the outbox.
    pub fn contains(&self, seq: Seq) -> bool {
        self.events.iter().any(|e| e.seq == seq) || self.telemetry.iter().any(|t| t.seq == seq)
    }

    /// Entries held, events and telemetry.
    pub fn len(&self) -> usize {
        self.events.len().saturating_add(self.telemetry.len())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.telemetry.is_empty()
    }

    /// Unacknowledged events held.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Unacknowledged events of `class` held.
    pub fn event_count_of(&self, class: EventClass) -> usize {
        self.events.iter().filter(|e| e.class == class).count()
    }

    /// Telemetry messages held.
    pub fn telemetry_count(&self) -> usize {
        self.telemetry.len()
    }

    /// The counters since the outbox was made.
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    fn count_dropped(&mut self) {
        self.dropped_since_take = self.dropped_since_take.saturating_add(1);
        self.stats.dropped_telemetry = self.stats.dropped_telemetry.saturating_add(1);
    }

    /// The index of the lowest-`seq` event matching `pred`.
    fn oldest_event(&self, pred: impl Fn(&EventSlot<N>) -> bool) -> Option<usize> {
        min_index(self.events.iter().map(|e| pred(e).then_some(e.seq)))
    }
}

/// The index of the smallest `Some` key (the first of equals), if any.
fn min_index<K: Ord>(keys: impl Iterator<Item = Option<K>>) -> Option<usize> {
    keys.enumerate()
        .filter_map(|(i, k)| k.map(|k| (k, i)))
        .min()
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests;
