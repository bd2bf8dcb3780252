//! The alarm engine: a pure state machine from device news to episodes.
//!
//! [`Engine::handle`] takes one [`Input`] and the time, and returns the [`Output`]s: episodes
//! opened, their peaks, their ends, and escalations. [`Engine::next_deadline`] says when to call
//! it with [`Input::Tick`] if nothing else happens. No I/O, no clock, no channels: tests drive
//! it with explicit time, and the journal writes what it returns.
//!
//! The rules:
//! - **One episode per (device, channel, category)** at a time. A device-reported alarm and a
//!   gateway-detected one for the same channel are the same episode; 1000 identical events
//!   raise one episode.
//! - **Gateway-side set-points**: telemetry is evaluated against the device's set-points with
//!   its alarm delay, so a device that only reports values still alarms. An episode the device
//!   itself raised (it latches) ends only with the device's `alarm_cleared`; one only the
//!   gateway detected ends when the value has stayed below the hysteresis
//!   ([`Threshold::clear_below`]) for [`EngineConfig::clear_hold_ms`].
//! - **Offline**: after [`EngineConfig::offline_factor`] heartbeat intervals without any
//!   message, or on the last will once [`EngineConfig::offline_grace_ms`] has passed without the
//!   device coming back (a flapping link does not page anyone). Any message ends it, once.
//! - **Self-tests**: a failed self-test opens a fault episode of the device (no channel,
//!   detail `self_test_failed`); the next passed one ends it.
//! - **Escalation**: a ticket not acknowledged within [`EngineConfig::escalation_ms`]`[n]` of
//!   its start goes up to level `n + 1` of the area hierarchy. It stops when a person
//!   acknowledges, or when the condition ends for categories that do not need a person after
//!   the end ([`Category::needs_ack_after_end`]).
//!
//! State per device is small (see [`Engine::approx_bytes_per_device`]); timers are kept in a
//! heap, so a tick costs O(log n) per due device, not O(n).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use firegrid_protocols::channel::ChannelNo;
use firegrid_protocols::message::{EventKind, Level, Reading, SelfTestResult};
use firegrid_protocols::thresholds::Threshold;
use firegrid_protocols::{DeviceId, GridId};

use crate::model::{
    Category, DERIVED_EPISODE_IDS, DeviceSpec, EpisodeId, EpisodeKey, Source, UnixMs,
};

/// Settings of the engine (all with documented defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// A device is offline after this many heartbeat intervals without any message.
    pub offline_factor: u32,
    /// After a last will, how long the device has to come back before an offline episode
    /// opens, ms (damps flapping links).
    pub offline_grace_ms: u64,
    /// How long a gateway-detected alarm's value must stay below the hysteresis before the
    /// episode ends, ms (damps flapping values).
    pub clear_hold_ms: u64,
    /// Time from an episode's start to each escalation level, ms, increasing.
    pub escalation_ms: Vec<u64>,
    /// Per category, the acknowledge deadline `A`, ms: an unacknowledged ticket of that
    /// category escalates at `A`, `2A`, `3A`... (as many levels as `escalation_ms` has)
    /// instead of at `escalation_ms` ([`EngineConfig::escalation_after`]). Absent or 0: the
    /// global steps.
    pub acknowledge_ms: std::collections::BTreeMap<Category, u64>,
}

impl EngineConfig {
    /// When, after its start, an unacknowledged episode of `category` at level `level` goes to
    /// the next level, ms; `None` at the top.
    pub fn escalation_after(&self, category: Category, level: u8) -> Option<u64> {
        let n = usize::from(level);
        match self
            .acknowledge_ms
            .get(&category)
            .copied()
            .filter(|a| *a > 0)
        {
            Some(a) if n < self.escalation_ms.len() => Some(a.saturating_mul(u64::from(level) + 1)),
            Some(_) => None,
            None => self.escalation_ms.get(n).copied(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            offline_factor: 3,
            offline_grace_ms: 10_000,
            clear_hold_ms: 30_000,
            // Community after 2 min, street after 10 min, district after 30 min.
            escalation_ms: vec![120_000, 600_000, 1_800_000],
            acknowledge_ms: std::collections::BTreeMap::new(),
        }
    }
}

/// One thing the engine learns.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A device was registered or changed (set-points, grid cell, heartbeat interval).
    Upsert(DeviceSpec),
    /// A device was decommissioned: its open episodes end.
    Remove(DeviceId),
    /// Readings arrived.
    Telemetry {
        /// From whom.
        device: DeviceId,
        /// The readings.
        readings: Vec<Reading>,
    },
    /// An event arrived.
    Event {
        /// From whom.
        device: DeviceId,
        /// What happened.
        kind: EventKind,
        /// The id to open an episode under, if the event opens one (derived from the event,
        /// see [`EpisodeId`]); `None`, or an id the engine holds already: the next of its own.
        open_as: Option<EpisodeId>,
    },
    /// An online status (heartbeat) arrived.
    Online(DeviceId),
    /// The device's last will (offline status) arrived.
    Offline(DeviceId),
    /// A person acknowledged the episode's ticket: escalation stops.
    Acknowledged(EpisodeId),
    /// Time passed.
    Tick,
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An episode started.
    Opened {
        /// Its new id.
        id: EpisodeId,
        /// Device, channel, category.
        key: EpisodeKey,
        /// The grid cell to alert.
        grid: firegrid_protocols::GridId,
        /// Who detected it.
        source: Source,
        /// Value and set-point, for alarms.
        level: Option<Level>,
        /// The fault cause, for faults (`lead_open`, ...).
        detail: Option<&'static str>,
    },
    /// An open alarm episode reached a new peak.
    Peak {
        /// The episode.
        id: EpisodeId,
        /// The new peak.
        level: Level,
    },
    /// The condition ended.
    Ended {
        /// The episode.
        id: EpisodeId,
    },
    /// Nobody acknowledged in time: alert the next level up.
    Escalated {
        /// The episode.
        id: EpisodeId,
        /// The new level (1 = one level above the grid cell).
        level: u8,
    },
}

/// An open episode as the journal remembers it, to rebuild the engine after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEpisode {
    /// Its id.
    pub id: EpisodeId,
    /// Device, channel, category.
    pub key: EpisodeKey,
    /// When it started.
    pub started_ms: UnixMs,
    /// Whether the condition already ended (kept only while it still escalates).
    pub ended: bool,
    /// Whether its ticket is acknowledged.
    pub acknowledged: bool,
    /// Its escalation level.
    pub escalation: u8,
    /// The peak so far.
    pub peak: Option<Level>,
    /// Who detected it first.
    pub source: Source,
}

#[derive(Debug, Clone)]
struct Open {
    id: EpisodeId,
    channel: Option<ChannelNo>,
    category: Category,
    started_ms: UnixMs,
    /// The device raised it itself (it latches): only its `alarm_cleared` ends it.
    device_latched: bool,
    ended: bool,
    acknowledged: bool,
    escalation: u8,
    peak: Option<Level>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Eval {
    channel: ChannelNo,
    /// Where the last value stands against the set-point, since `since_ms` (one byte beside the
    /// channel rather than an enum with its own time: 32 bytes per channel, not 40).
    side: Side,
    delay_ms: u32,
    threshold: Option<Threshold>,
    since_ms: UnixMs,
    last: Option<i32>,
}

/// Where a channel's last value stands against its set-point (above and below the hysteresis
/// exclude each other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Side {
    /// Between the hysteresis and the set-point, or no value yet.
    #[default]
    Between,
    /// At or above the set-point.
    Above,
    /// Below the hysteresis.
    Below,
}

impl Eval {
    fn above_since(&self) -> Option<UnixMs> {
        (self.side == Side::Above).then_some(self.since_ms)
    }

    fn below_since(&self) -> Option<UnixMs> {
        (self.side == Side::Below).then_some(self.since_ms)
    }

    /// The value stands on `side` from `now` (kept if it already did).
    fn stand(&mut self, side: Side, now: UnixMs) {
        if self.side != side {
            self.side = side;
            self.since_ms = now;
        }
    }
}

/// A device as the engine keeps it: only what its decisions read (its id is the map's key; its
/// channels' set-points and delays are in `evals`).
#[derive(Debug, Clone)]
struct Dev {
    /// Its grid cell, shared with the other devices of the cell ([`Engine::grids`]).
    grid: Arc<GridId>,
    heartbeat_interval_s: u32,
    last_seen_ms: UnixMs,
    will_at: Option<UnixMs>,
    /// One per enabled channel, allocated to its exact length (a `Vec` collected from a
    /// filter reserves room for eight: 256 bytes for a five-channel monitor instead of 160).
    evals: Box<[Eval]>,
    open: Vec<Open>,
    /// Its entry in the timer heap (entries at other times are stale, skipped when popped).
    timer: Option<UnixMs>,
}

/// The engine. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    devices: HashMap<DeviceId, Dev>,
    /// Episode id → its device, for acknowledgements.
    episodes: HashMap<EpisodeId, DeviceId>,
    timers: BinaryHeap<Reverse<(UnixMs, DeviceId)>>,
    next_id: EpisodeId,
    /// Every grid cell a device was in, held once (a cell's id is 40 bytes; a device keeps a
    /// pointer to it). Cells are few; none is dropped.
    grids: HashSet<Arc<GridId>>,
}

impl Engine {
    /// An engine with no devices; its own episode ids start at `next_id` (one past the
    /// journal's last below [`DERIVED_EPISODE_IDS`]).
    pub fn new(config: EngineConfig, next_id: EpisodeId) -> Self {
        Self {
            config,
            devices: HashMap::new(),
            episodes: HashMap::new(),
            timers: BinaryHeap::new(),
            next_id: next_id.max(1),
            grids: HashSet::new(),
        }
    }

    /// Puts back an episode that was open when the gateway stopped (call after the device's
    /// [`Input::Upsert`]). Unknown devices are ignored.
    pub fn restore(&mut self, e: OpenEpisode, now: UnixMs) {
        if e.id < DERIVED_EPISODE_IDS {
            self.next_id = self.next_id.max(e.id.saturating_add(1));
        }
        let Some(dev) = self.devices.get_mut(&e.key.device) else {
            return;
        };
        dev.open
            .retain(|o| (o.channel, o.category) != (e.key.channel, e.key.category));
        dev.open.push(Open {
            id: e.id,
            channel: e.key.channel,
            category: e.key.category,
            started_ms: e.started_ms,
            device_latched: e.source == Source::Device,
            ended: e.ended,
            acknowledged: e.acknowledged,
            escalation: e.escalation,
            peak: e.peak,
        });
        self.episodes.insert(e.id, e.key.device.clone());
        let id = e.key.device;
        self.schedule(&id, now);
    }

    /// The settings it runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Whether it still holds the episode (open, or ended and still escalating).
    pub fn holds(&self, id: EpisodeId) -> bool {
        self.episodes.contains_key(&id)
    }

    /// The number of devices known.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// A rough count of the engine's memory per device with `channels` channels and no open
    /// episode, bytes (hash map entry, state, timer entry).
    pub fn approx_bytes_per_device(channels: usize) -> usize {
        use std::mem::size_of;
        size_of::<DeviceId>()
            + size_of::<Dev>()
            + channels * size_of::<Eval>()
            + size_of::<Reverse<(UnixMs, DeviceId)>>()
            + 16
    }

    /// When to call [`handle`](Self::handle) with [`Input::Tick`] at the latest.
    pub fn next_deadline(&self) -> Option<UnixMs> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Handles one input at wall-clock time `now` (ms since the Unix epoch).
    pub fn handle(&mut self, input: Input, now: UnixMs) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Upsert(spec) => self.upsert(spec, now),
            Input::Remove(id) => {
                if let Some(dev) = self.devices.remove(&id) {
                    for o in dev.open.iter().filter(|o| !o.ended) {
                        out.push(Output::Ended { id: o.id });
                    }
                    for o in &dev.open {
                        self.episodes.remove(&o.id);
                    }
                }
            }
            Input::Telemetry { device, readings } => {
                if self.seen(&device, now, &mut out) {
                    self.telemetry(&device, &readings, now, &mut out);
                    self.schedule(&device, now);
                }
            }
            Input::Event {
                device,
                kind,
                open_as,
            } => {
                if self.seen(&device, now, &mut out) {
                    self.event(&device, kind, open_as, now, &mut out);
                    self.schedule(&device, now);
                }
            }
            Input::Online(device) => {
                if self.seen(&device, now, &mut out) {
                    self.schedule(&device, now);
                }
            }
            Input::Offline(device) => {
                if let Some(dev) = self.devices.get_mut(&device) {
                    dev.will_at.get_or_insert(now);
                    self.schedule(&device, now);
                }
            }
            Input::Acknowledged(id) => {
                if let Some(device) = self.episodes.get(&id).cloned()
                    && let Some(dev) = self.devices.get_mut(&device)
                {
                    if let Some(o) = dev.open.iter_mut().find(|o| o.id == id) {
                        o.acknowledged = true;
                    }
                    self.forget_finished(&device);
                    self.schedule(&device, now);
                }
            }
            Input::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn upsert(&mut self, spec: DeviceSpec, now: UnixMs) {
        // Allocated once at its exact length (no shrinking reallocation to leave a gap).
        let mut evals = Vec::with_capacity(spec.channels.iter().filter(|c| c.enabled).count());
        evals.extend(spec.channels.iter().filter(|c| c.enabled).map(|c| Eval {
            channel: c.channel,
            threshold: Some(c.threshold),
            delay_ms: u32::from(c.delay_s).saturating_mul(1000),
            ..Eval::default()
        }));
        let evals = evals.into_boxed_slice();
        let grid = match self.grids.get(&spec.grid) {
            Some(g) => Arc::clone(g),
            None => {
                let g = Arc::new(spec.grid);
                self.grids.insert(Arc::clone(&g));
                g
            }
        };
        let id = spec.id.clone();
        match self.devices.get_mut(&id) {
            Some(dev) => {
                dev.grid = grid;
                dev.heartbeat_interval_s = spec.heartbeat_interval_s;
                dev.evals = evals;
            }
            None => {
                self.devices.insert(
                    id.clone(),
                    Dev {
                        grid,
                        heartbeat_interval_s: spec.heartbeat_interval_s,
                        last_seen_ms: now,
                        will_at: None,
                        evals,
                        open: Vec::new(),
                        timer: None,
                    },
                );
            }
        }
        self.schedule(&id, now);
    }

    /// Notes that a device spoke: clears a pending will and ends an offline episode (once).
    /// Returns whether the device is known.
    fn seen(&mut self, device: &DeviceId, now: UnixMs, out: &mut Vec<Output>) -> bool {
        let Some(dev) = self.devices.get_mut(device) else {
            return false;
        };
        dev.last_seen_ms = dev.last_seen_ms.max(now);
        dev.will_at = None;
        end(dev, None, Category::Offline, out);
        self.forget_finished(device);
        true
    }

    fn telemetry(
        &mut self,
        device: &DeviceId,
        readings: &[Reading],
        now: UnixMs,
        out: &mut Vec<Output>,
    ) {
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        for r in readings {
            let Some(i) = dev.evals.iter().position(|e| e.channel == r.channel) else {
                continue;
            };
            let Some(threshold) = dev.evals[i].threshold else {
                continue;
            };
            let Some(value) = r.value_of(threshold.quantity()) else {
                continue;
            };
            let eval = &mut dev.evals[i];
            eval.last = Some(value);
            if threshold.is_exceeded_by(value) {
                eval.stand(Side::Above, now);
            } else if value < threshold.clear_below() {
                eval.stand(Side::Below, now);
            } else {
                eval.stand(Side::Between, now);
            }
            let level = Level {
                quantity: threshold.quantity(),
                value,
                threshold: threshold.value(),
            };
            if let Some(o) = find_open(dev, Some(r.channel), Category::Alarm) {
                raise_peak(o, level, out);
            }
        }
        self.evaluate(device, now, out);
    }

    /// Opens gateway-detected alarms whose delay ran out, and ends those whose value stayed
    /// below the hysteresis long enough.
    fn evaluate(&mut self, device: &DeviceId, now: UnixMs, out: &mut Vec<Output>) {
        let clear_hold = self.config.clear_hold_ms;
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        for i in 0..dev.evals.len() {
            let e = dev.evals[i];
            let (Some(threshold), Some(value)) = (e.threshold, e.last) else {
                continue;
            };
            let level = Level {
                quantity: threshold.quantity(),
                value,
                threshold: threshold.value(),
            };
            if let Some(since) = e.above_since()
                && now >= since.saturating_add(u64::from(e.delay_ms))
                && find_open(dev, Some(e.channel), Category::Alarm).is_none()
            {
                let id = self.next_id;
                self.next_id += 1;
                open(
                    dev,
                    device,
                    id,
                    Some(e.channel),
                    Category::Alarm,
                    Source::Gateway,
                    Some(level),
                    None,
                    now,
                    out,
                );
                self.episodes.insert(id, device.clone());
            }
            if let Some(since) = e.below_since()
                && now >= since.saturating_add(clear_hold)
                && find_open(dev, Some(e.channel), Category::Alarm)
                    .is_some_and(|o| !o.device_latched)
            {
                end(dev, Some(e.channel), Category::Alarm, out);
            }
        }
        self.forget_finished(device);
    }

    fn event(
        &mut self,
        device: &DeviceId,
        kind: EventKind,
        open_as: Option<EpisodeId>,
        now: UnixMs,
        out: &mut Vec<Output>,
    ) {
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        let (channel, category, start, level, detail) = match kind {
            EventKind::AlarmRaised { channel, level } => {
                (Some(channel), Category::Alarm, true, Some(level), None)
            }
            EventKind::AlarmCleared { channel, .. } => {
                (Some(channel), Category::Alarm, false, None, None)
            }
            EventKind::Fault { channel, cause } => (
                Some(channel),
                Category::Fault,
                true,
                None,
                Some(cause_name(cause)),
            ),
            EventKind::FaultCleared { channel, .. } => {
                (Some(channel), Category::Fault, false, None, None)
            }
            EventKind::Smoke => (None, Category::Smoke, true, None, None),
            EventKind::SmokeCleared => (None, Category::Smoke, false, None, None),
            EventKind::BatteryLow { .. } => (None, Category::BatteryLow, true, None, None),
            EventKind::BatteryOk { .. } => (None, Category::BatteryLow, false, None, None),
            EventKind::Tamper => (None, Category::Tamper, true, None, None),
            EventKind::TamperCleared => (None, Category::Tamper, false, None, None),
            // A failed self-test is a fault of the device (no channel) until one passes.
            EventKind::SelfTest {
                result: SelfTestResult::Failed,
            } => (None, Category::Fault, true, None, Some("self_test_failed")),
            EventKind::SelfTest {
                result: SelfTestResult::Passed,
            } => (None, Category::Fault, false, None, None),
            // Silences, command and config answers are journaled, not episodes.
            _ => return,
        };
        if !start {
            end(dev, channel, category, out);
            if category == Category::Alarm
                && let Some(e) = dev.evals.iter_mut().find(|e| Some(e.channel) == channel)
                && e.side == Side::Above
            {
                e.stand(Side::Between, now);
            }
            self.forget_finished(device);
            return;
        }
        if let Some(o) = find_open(dev, channel, category) {
            // Merge: the device confirms what the gateway saw, or repeats itself.
            o.device_latched |= category == Category::Alarm;
            if let Some(level) = level {
                raise_peak(o, level, out);
            }
            return;
        }
        let id = match open_as.filter(|id| !self.episodes.contains_key(id)) {
            Some(id) => id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                id
            }
        };
        open(
            dev,
            device,
            id,
            channel,
            category,
            Source::Device,
            level,
            detail,
            now,
            out,
        );
        if let Some(o) = find_open(dev, channel, category) {
            o.device_latched = category == Category::Alarm;
        }
        self.episodes.insert(id, device.clone());
    }

    fn tick(&mut self, now: UnixMs, out: &mut Vec<Output>) {
        // Take every due device first, so that each is handled once per tick.
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, device))) = self.timers.pop() else {
                break;
            };
            // Skip entries superseded by a later schedule of the same device.
            if let Some(dev) = self.devices.get_mut(&device)
                && dev.timer == Some(t)
            {
                dev.timer = None;
                due.push(device);
            }
        }
        for device in due {
            self.offline(&device, now, out);
            self.evaluate(&device, now, out);
            self.escalate(&device, now, out);
            self.schedule(&device, now);
        }
    }

    fn offline(&mut self, device: &DeviceId, now: UnixMs, out: &mut Vec<Output>) {
        let (factor, grace) = (
            u64::from(self.config.offline_factor),
            self.config.offline_grace_ms,
        );
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        if find_open(dev, None, Category::Offline).is_some() {
            return;
        }
        let silent_until = dev
            .last_seen_ms
            .saturating_add(u64::from(dev.heartbeat_interval_s) * 1000 * factor);
        let by_will = dev
            .will_at
            .is_some_and(|at| now >= at.saturating_add(grace));
        if by_will || now >= silent_until {
            let source = if by_will {
                Source::Device
            } else {
                Source::Gateway
            };
            let id = self.next_id;
            self.next_id += 1;
            open(
                dev,
                device,
                id,
                None,
                Category::Offline,
                source,
                None,
                None,
                now,
                out,
            );
            dev.will_at = None;
            self.episodes.insert(id, device.clone());
        }
    }

    fn escalate(&mut self, device: &DeviceId, now: UnixMs, out: &mut Vec<Output>) {
        let config = &self.config;
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        for o in dev.open.iter_mut().filter(|o| escalates(o)) {
            while let Some(after) = config.escalation_after(o.category, o.escalation)
                && now >= o.started_ms.saturating_add(after)
            {
                o.escalation += 1;
                out.push(Output::Escalated {
                    id: o.id,
                    level: o.escalation,
                });
            }
        }
    }

    /// Drops ended episodes that no longer escalate.
    fn forget_finished(&mut self, device: &DeviceId) {
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        let episodes = &mut self.episodes;
        dev.open.retain(|o| {
            let keep = !o.ended || escalates(o);
            if !keep {
                episodes.remove(&o.id);
            }
            keep
        });
    }

    /// Computes the device's next deadline and pushes it to the heap if it changed.
    fn schedule(&mut self, device: &DeviceId, now: UnixMs) {
        let (factor, grace, clear_hold) = (
            u64::from(self.config.offline_factor),
            self.config.offline_grace_ms,
            self.config.clear_hold_ms,
        );
        let config = &self.config;
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        let mut next: Option<UnixMs> = None;
        let mut at = |t: UnixMs| next = Some(next.map_or(t, |n| n.min(t)));
        if find_open(dev, None, Category::Offline).is_none() {
            at(dev
                .last_seen_ms
                .saturating_add(u64::from(dev.heartbeat_interval_s) * 1000 * factor));
            if let Some(w) = dev.will_at {
                at(w.saturating_add(grace));
            }
        }
        for e in &dev.evals {
            let alarm = dev.open.iter().find(|o| {
                !o.ended && o.channel == Some(e.channel) && o.category == Category::Alarm
            });
            match (alarm, e.above_since(), e.below_since()) {
                // Not alarming yet: the end of the alarm delay.
                (None, Some(since), _) => at(since.saturating_add(u64::from(e.delay_ms))),
                // A gateway-detected alarm: the end of the hold below the hysteresis.
                (Some(o), _, Some(since)) if !o.device_latched => {
                    at(since.saturating_add(clear_hold))
                }
                _ => {}
            }
        }
        for o in dev.open.iter().filter(|o| escalates(o)) {
            if let Some(after) = config.escalation_after(o.category, o.escalation) {
                at(o.started_ms.saturating_add(after));
            }
        }
        // Only an earlier deadline is pushed. A later one (telemetry moves the offline deadline
        // on at every message) waits behind the entry already in the heap: when that one
        // fires, the device is looked at, nothing is due yet, and its next deadline is pushed
        // then. So the heap holds about one entry per device, not one per message.
        match (next.map(|t| t.max(now)), dev.timer) {
            (Some(t), Some(pending)) if t >= pending => {}
            (Some(t), _) => {
                dev.timer = Some(t);
                self.timers.push(Reverse((t, device.clone())));
            }
            (None, _) => {}
        }
        // Stale entries are skipped when popped; compact if they pile up.
        if self.timers.len() > 2 * self.devices.len() + 64 {
            let devices = &self.devices;
            let live: Vec<_> = self
                .timers
                .drain()
                .filter(|Reverse((t, d))| devices.get(d).is_some_and(|dev| dev.timer == Some(*t)))
                .collect();
            self.timers = live.into();
        }
    }
}

fn escalates(o: &Open) -> bool {
    !o.acknowledged && (!o.ended || o.category.needs_ack_after_end())
}

fn find_open(dev: &mut Dev, channel: Option<ChannelNo>, category: Category) -> Option<&mut Open> {
    dev.open
        .iter_mut()
        .find(|o| !o.ended && o.channel == channel && o.category == category)
}

fn raise_peak(o: &mut Open, level: Level, out: &mut Vec<Output>) {
    if o.peak.is_none_or(|p| level.value > p.value) {
        o.peak = Some(level);
        out.push(Output::Peak { id: o.id, level });
    }
}

#[allow(clippy::too_many_arguments)]
fn open(
    dev: &mut Dev,
    device: &DeviceId,
    id: EpisodeId,
    channel: Option<ChannelNo>,
    category: Category,
    source: Source,
    level: Option<Level>,
    detail: Option<&'static str>,
    now: UnixMs,
    out: &mut Vec<Output>,
) {
    dev.open.push(Open {
        id,
        channel,
        category,
        started_ms: now,
        device_latched: false,
        ended: false,
        acknowledged: false,
        escalation: 0,
        peak: level,
    });
    out.push(Output::Opened {
        id,
        key: EpisodeKey {
            device: device.clone(),
            channel,
            category,
        },
        grid: GridId::clone(&dev.grid),
        source,
        level,
        detail,
    });
}

fn end(dev: &mut Dev, channel: Option<ChannelNo>, category: Category, out: &mut Vec<Output>) {
    if let Some(o) = find_open(dev, channel, category) {
        o.ended = true;
        out.push(Output::Ended { id: o.id });
    }
}

fn cause_name(cause: firegrid_protocols::channel::FaultCause) -> &'static str {
    use firegrid_protocols::channel::FaultCause::*;
    match cause {
        LeadOpen => "lead_open",
        LeadShort => "lead_short",
        SensorError => "sensor_error",
    }
}

#[cfg(test)]
mod tests;
