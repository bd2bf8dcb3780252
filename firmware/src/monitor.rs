//! The monitor core: what the device decides, as a pure state machine.
//!
//! [`Monitor::step`] takes the time and one [`Input`] — a channel sample, a smoke-line edge, a
//! battery measurement, a button press, a command or a config from the gateway, or just the
//! passing of time — and returns [`Outputs`]: events to publish, work for the I/O shell
//! (measure the battery, check the sensors, report, reboot), and the [`Indicators`] (sounder,
//! lights, relay) the shell must show now. [`Monitor::next_deadline`] says when to call it
//! again if nothing else happens. No clocks, no I/O: tests drive it with explicit time.
//!
//! The rules, with their sources (numbers in `firegrid_protocols::thresholds`):
//! - A channel alarms when its value stays at or above the set-point for the alarm delay
//!   (GB 14287: within 30 s); the alarm **latches** until a reset command or the test button
//!   (GB 14287.5-2025 §5.3.4), and a reset clears it only when the value is below the
//!   hysteresis ([`Threshold::clear_below`]).
//! - A channel that cannot measure (lead open or short) is a **fault**, not an alarm
//!   (GB 14287.5-2025 §5.3.5), confirmed after [`FAULT_CONFIRM_MS`] and cleared by the next
//!   good sample.
//! - The battery is checked at power-up and then every [`BATTERY_CHECK_INTERVAL_MAX_S`] at the
//!   latest (GB 20517-2025 §5.11.1); a low battery chirps, distinct from the fire sound.
//! - `silence` mutes the battery chirp for [`BATTERY_SILENCE_S`] ((7 ± 1) h, GB 20517-2025
//!   §5.11.2) and the current electrical alarm or fault sound until a new one starts; **smoke is
//!   never silenced**.
//! - Local sound and light follow the state, whether or not the network is up.
//! - The supply relay trips only if the device has one, the config enables it, and an
//!   electrical alarm is latched (GB 50116 / GB 14287.5 §5.3.2: alarm, don't cut, by default).

use heapless::Vec;

use firegrid_protocols::channel::{ChannelNo, FaultCause, MAX_CHANNELS, Quantity};
use firegrid_protocols::message::{
    Action, ChannelConfig, Command, CommandOutcome, Config, EventKind, Level, MAX_REASON_LEN,
    Reading, SelfTestResult,
};
use firegrid_protocols::thresholds::{
    ALARM_DELAY_DEFAULT_S, BATTERY_CHECK_INTERVAL_MAX_S, BATTERY_SILENCE_S,
    HEARTBEAT_INTERVAL_DEFAULT_S, Limits, REPORT_INTERVAL_DEFAULT_S, Threshold,
};

/// How long a lead fault must persist before it is reported, ms: one bad sample (a transient
/// on the bus) is not a fault.
pub const FAULT_CONFIRM_MS: u64 = 3_000;
/// How long the self-test sequence sounds and lights everything, ms.
pub const SELF_TEST_MS: u64 = 3_000;
/// Battery voltage at or below which the battery is low, mV (a 3 V lithium cell near its end;
/// a setting of the device's [`Layout`]).
pub const BATTERY_LOW_DEFAULT_MV: u16 = 2_600;
/// A low battery is good again only above the low level plus this, mV.
pub const BATTERY_HYSTERESIS_MV: u16 = 100;
/// The most outputs one step can produce: one event per channel plus a few device-wide ones.
pub const MAX_OUTPUTS: usize = MAX_CHANNELS + 8;

const SEC: u64 = 1_000;

/// What the device is: its channels and optional parts. Fixed by the hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The quantity each channel measures, by channel number (`None`: no such channel).
    pub channels: [Option<Quantity>; MAX_CHANNELS],
    /// Whether a smoke alarm is attached (its alarm line).
    pub smoke: bool,
    /// Whether the device runs on, or backs up with, a battery it must check.
    pub battery: bool,
    /// Whether a supply relay is fitted.
    pub relay: bool,
    /// Battery-low level, mV.
    pub battery_low_mv: u16,
    /// The set-point ranges this device accepts.
    pub limits: Limits,
}

impl Layout {
    /// The typical electrical-fire monitor: channel 0 residual current, 1–4 temperature, a
    /// backup battery, no smoke alarm, no relay.
    pub fn typical_monitor() -> Self {
        let mut channels = [None; MAX_CHANNELS];
        channels[0] = Some(Quantity::ResidualCurrent);
        for c in channels.iter_mut().take(5).skip(1) {
            *c = Some(Quantity::Temperature);
        }
        Self {
            channels,
            smoke: false,
            battery: true,
            relay: false,
            battery_low_mv: BATTERY_LOW_DEFAULT_MV,
            limits: Limits::GB,
        }
    }

    /// An independent smoke alarm with its battery: no measuring channels.
    pub fn smoke_alarm() -> Self {
        Self {
            channels: [None; MAX_CHANNELS],
            smoke: true,
            battery: true,
            relay: false,
            battery_low_mv: BATTERY_LOW_DEFAULT_MV,
            limits: Limits::GB,
        }
    }

    /// The factory config for this layout: default set-points and delays (version 0).
    pub fn default_config(&self) -> Config {
        let mut channels = Vec::new();
        for (no, q) in self.channels.iter().enumerate() {
            if let (Some(q), Ok(channel)) = (q, ChannelNo::try_from(no)) {
                // Cannot overflow: one entry per channel, MAX_CHANNELS of them.
                let _ = channels.push(ChannelConfig {
                    channel,
                    enabled: true,
                    threshold: Threshold::default_for(*q),
                    delay_s: ALARM_DELAY_DEFAULT_S,
                });
            }
        }
        Config {
            version: 0,
            report_interval_s: REPORT_INTERVAL_DEFAULT_S,
            heartbeat_interval_s: HEARTBEAT_INTERVAL_DEFAULT_S,
            buzzer: true,
            relay_trip: false,
            channels,
        }
    }
}

/// One thing that happened, for [`Monitor::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing but time passing (a deadline was reached).
    Tick,
    /// A channel's measurement in its quantity's unit, or why it could not measure.
    Sample {
        /// The channel.
        channel: ChannelNo,
        /// The value (mA or deci-°C) or the fault.
        value: Result<i32, FaultCause>,
    },
    /// The smoke alarm's line changed (debounced): `true` = sounding.
    Smoke(bool),
    /// The enclosure switch changed: `true` = opened.
    Tamper(bool),
    /// The battery was measured (after [`Output::MeasureBattery`]), mV.
    Battery(u16),
    /// The sensor check of a self-test finished (after [`Output::CheckSensors`]).
    SensorCheck(bool),
    /// The test button was pressed: runs the self-test and resets latched alarms.
    TestButton,
    /// A command from the gateway.
    Command(Command),
    /// A config from the gateway.
    Config(Config),
}

/// The sound the sounder makes; the board maps each to a pattern (`drivers::outputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sound {
    /// Silent.
    Off,
    /// The battery-fault chirp, distinct from the fire sound (GB 20517-2025 §5.11.1).
    BatteryChirp,
    /// A lead fault.
    Fault,
    /// An electrical alarm (leakage or over-temperature).
    Alarm,
    /// Self-test: every sound element on.
    SelfTest,
    /// Smoke: the fire sound, never silenced.
    Fire,
}

/// What the sounder, lights and relay must show now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indicators {
    /// The sound.
    pub sound: Sound,
    /// The red alarm light (smoke or a latched electrical alarm).
    pub alarm_led: bool,
    /// The yellow fault light (lead fault or low battery).
    pub fault_led: bool,
    /// The supply relay tripped.
    pub relay_tripped: bool,
}

/// Something the shell must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Publish this event (the shell adds sequence number and time, and queues it in the outbox).
    Event(EventKind),
    /// Publish telemetry of [`Monitor::readings`] (the report interval elapsed and there is
    /// something to report).
    Report,
    /// Publish a heartbeat status (the heartbeat interval elapsed).
    Heartbeat,
    /// Measure the battery and feed [`Input::Battery`].
    MeasureBattery,
    /// Check the sensors and feed [`Input::SensorCheck`].
    CheckSensors,
    /// Restart the device (after the command's result is published).
    Reboot,
}

/// The result of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// What to do, in order.
    pub actions: Vec<Output, MAX_OUTPUTS>,
    /// What to show.
    pub indicators: Indicators,
}

#[derive(Debug, Clone, Copy, Default)]
struct ChannelState {
    /// The latest good value.
    value: Option<i32>,
    /// Since when the value has been at or above the set-point.
    above_since: Option<u64>,
    /// A latched alarm: the level that raised it, updated to the peak.
    latched: Option<Level>,
    /// A reported fault.
    fault: Option<FaultCause>,
    /// A fault seen but not yet confirmed: cause and since when.
    fault_pending: Option<(FaultCause, u64)>,
}

/// The monitor core. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Monitor {
    layout: Layout,
    config: Config,
    channels: [ChannelState; MAX_CHANNELS],
    smoke: bool,
    tamper: bool,
    battery_low: bool,
    battery_check_due: u64,
    battery_silenced_until: Option<u64>,
    /// Electrical alarm/fault sound muted until a new alarm or fault starts.
    muted: bool,
    self_test: Option<SelfTest>,
    report_due: u64,
    heartbeat_due: u64,
}

#[derive(Debug, Clone, Copy)]
struct SelfTest {
    ends: u64,
    sensors_ok: Option<bool>,
}

impl Monitor {
    /// A monitor at power-up time `now_ms`, with the factory config of `layout`. The first step
    /// asks for a battery check (GB 20517-2025 §5.11.1: at power-up) and a heartbeat.
    pub fn new(layout: Layout, now_ms: u64) -> Self {
        let config = layout.default_config();
        Self {
            layout,
            config,
            channels: [ChannelState::default(); MAX_CHANNELS],
            smoke: false,
            tamper: false,
            battery_low: false,
            battery_check_due: now_ms,
            battery_silenced_until: None,
            muted: false,
            self_test: None,
            report_due: now_ms,
            heartbeat_due: now_ms,
        }
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest good value of every enabled channel.
    pub fn readings(&self) -> Vec<Reading, MAX_CHANNELS> {
        let mut out = Vec::new();
        for c in self.config.channels.iter().filter(|c| c.enabled) {
            let Some(state) = self.channels.get(usize::from(c.channel)) else {
                continue;
            };
            let Some(value) = state.value else { continue };
            let mut r = Reading {
                channel: c.channel,
                ..Reading::default()
            };
            match c.threshold {
                Threshold::ResidualMa(_) => r.residual_ma = u32::try_from(value).ok(),
                Threshold::TempDc(_) => r.temp_dc = i16::try_from(value).ok(),
            }
            // Cannot overflow: at most one reading per channel.
            let _ = out.push(r);
        }
        out
    }

    /// When to call [`step`](Self::step) with [`Input::Tick`] if no other input comes first.
    pub fn next_deadline(&self) -> u64 {
        let mut t = self.report_due.min(self.heartbeat_due);
        if self.layout.battery {
            t = t.min(self.battery_check_due);
        }
        if let Some(until) = self.battery_silenced_until {
            t = t.min(until);
        }
        if let Some(st) = self.self_test {
            t = t.min(st.ends);
        }
        for (cfg, state) in self.enabled_channels() {
            if let (Some(since), None) = (state.above_since, state.latched) {
                t = t.min(since.saturating_add(u64::from(cfg.delay_s).saturating_mul(SEC)));
            }
            if let Some((_, since)) = state.fault_pending {
                t = t.min(since.saturating_add(FAULT_CONFIRM_MS));
            }
        }
        t
    }

    /// Handles one input at time `now_ms` (monotonic, never going back) and returns what to do.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Outputs {
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Sample { channel, value } => self.sample(now_ms, channel, value, &mut out),
            Input::Smoke(on) if on != self.smoke && self.layout.smoke => {
                self.smoke = on;
                push(
                    &mut out,
                    Output::Event(if on {
                        EventKind::Smoke
                    } else {
                        EventKind::SmokeCleared
                    }),
                );
            }
            Input::Tamper(open) if open != self.tamper => {
                self.tamper = open;
                push(
                    &mut out,
                    Output::Event(if open {
                        EventKind::Tamper
                    } else {
                        EventKind::TamperCleared
                    }),
                );
            }
            Input::Smoke(_) | Input::Tamper(_) => {}
            Input::Battery(mv) => self.battery(mv, &mut out),
            Input::SensorCheck(ok) => {
                if let Some(st) = self.self_test.as_mut() {
                    st.sensors_ok = Some(ok);
                }
            }
            Input::TestButton => {
                self.reset_alarms(None, &mut out);
                self.start_self_test(now_ms, &mut out);
            }
            Input::Command(cmd) => self.command(now_ms, cmd, &mut out),
            Input::Config(config) => self.apply_config(now_ms, config, &mut out),
        }
        self.timers(now_ms, &mut out);
        Outputs {
            actions: out,
            indicators: self.indicators(now_ms),
        }
    }

    fn enabled_channels(&self) -> impl Iterator<Item = (&ChannelConfig, &ChannelState)> {
        self.config
            .channels
            .iter()
            .filter(|c| c.enabled)
            .filter_map(|c| Some((c, self.channels.get(usize::from(c.channel))?)))
    }

    fn channel_config(&self, channel: ChannelNo) -> Option<ChannelConfig> {
        self.config
            .channels
            .iter()
            .find(|c| c.channel == channel && c.enabled)
            .copied()
    }

    fn sample(
        &mut self,
        now: u64,
        channel: ChannelNo,
        value: Result<i32, FaultCause>,
        out: &mut Outs,
    ) {
        let Some(cfg) = self.channel_config(channel) else {
            return;
        };
        let Some(state) = self.channels.get_mut(usize::from(channel)) else {
            return;
        };
        match value {
            Err(cause) => {
                state.value = None;
                state.above_since = None;
                if state.fault != Some(cause) && state.fault_pending.map(|(c, _)| c) != Some(cause)
                {
                    state.fault_pending = Some((cause, now));
                }
            }
            Ok(value) => {
                state.fault_pending = None;
                if let Some(cause) = state.fault.take() {
                    push(
                        out,
                        Output::Event(EventKind::FaultCleared { channel, cause }),
                    );
                }
                state.value = Some(value);
                if cfg.threshold.is_exceeded_by(value) {
                    state.above_since.get_or_insert(now);
                    if let Some(level) = state.latched.as_mut() {
                        level.value = level.value.max(value);
                    }
                } else {
                    state.above_since = None;
                }
            }
        }
    }

    /// Raises alarms whose delay ran out, confirms faults, and runs the schedules.
    fn timers(&mut self, now: u64, out: &mut Outs) {
        let configs = self.config.channels.clone();
        for cfg in configs.iter().filter(|c| c.enabled) {
            let Some(state) = self.channels.get_mut(usize::from(cfg.channel)) else {
                continue;
            };
            let delay = u64::from(cfg.delay_s).saturating_mul(SEC);
            if let (Some(since), None, Some(value)) =
                (state.above_since, state.latched, state.value)
                && now >= since.saturating_add(delay)
            {
                let level = Level {
                    quantity: cfg.threshold.quantity(),
                    value,
                    threshold: cfg.threshold.value(),
                };
                state.latched = Some(level);
                self.muted = false;
                push(
                    out,
                    Output::Event(EventKind::AlarmRaised {
                        channel: cfg.channel,
                        level,
                    }),
                );
            }
            if let Some((cause, since)) = state.fault_pending
                && now >= since.saturating_add(FAULT_CONFIRM_MS)
            {
                state.fault_pending = None;
                state.fault = Some(cause);
                self.muted = false;
                push(
                    out,
                    Output::Event(EventKind::Fault {
                        channel: cfg.channel,
                        cause,
                    }),
                );
            }
        }
        if self.layout.battery && now >= self.battery_check_due {
            self.battery_check_due =
                now.saturating_add(u64::from(BATTERY_CHECK_INTERVAL_MAX_S).saturating_mul(SEC));
            push(out, Output::MeasureBattery);
        }
        if self
            .battery_silenced_until
            .is_some_and(|until| now >= until)
        {
            self.battery_silenced_until = None;
        }
        if let Some(st) = self.self_test
            && now >= st.ends
        {
            self.self_test = None;
            let faults = self.channels.iter().any(|c| c.fault.is_some());
            let result = if st.sensors_ok == Some(true) && !faults {
                SelfTestResult::Passed
            } else {
                SelfTestResult::Failed
            };
            push(out, Output::Event(EventKind::SelfTest { result }));
        }
        if now >= self.report_due {
            self.report_due =
                now.saturating_add(u64::from(self.config.report_interval_s).saturating_mul(SEC));
            if self.enabled_channels().any(|(_, s)| s.value.is_some()) {
                push(out, Output::Report);
            }
        }
        if now >= self.heartbeat_due {
            self.heartbeat_due =
                now.saturating_add(u64::from(self.config.heartbeat_interval_s).saturating_mul(SEC));
            push(out, Output::Heartbeat);
        }
    }

    fn battery(&mut self, mv: u16, out: &mut Outs) {
        if !self.layout.battery {
            return;
        }
        let low = self.layout.battery_low_mv;
        if !self.battery_low && mv <= low {
            self.battery_low = true;
            push(out, Output::Event(EventKind::BatteryLow { battery_mv: mv }));
        } else if self.battery_low && mv > low.saturating_add(BATTERY_HYSTERESIS_MV) {
            self.battery_low = false;
            self.battery_silenced_until = None;
            push(out, Output::Event(EventKind::BatteryOk { battery_mv: mv }));
        }
    }

    fn command(&mut self, now: u64, cmd: Command, out: &mut Outs) {
        let outcome = match cmd.action {
            Action::SelfTest => {
                // The result event follows when the sequence ends; the command is answered now.
                self.start_self_test(now, out);
                CommandOutcome::Done
            }
            Action::Silence => self.silence(now, out),
            Action::ResetAlarm { channel } => self.reset_alarms(channel, out),
            Action::Reboot => CommandOutcome::Done,
        };
        push(
            out,
            Output::Event(EventKind::CommandResult {
                id: cmd.id,
                outcome,
            }),
        );
        if cmd.action == Action::Reboot {
            push(out, Output::Reboot);
        }
    }

    fn silence(&mut self, now: u64, out: &mut Outs) -> CommandOutcome {
        let electrical_sounding = !self.muted && self.electrical_sound().is_some();
        let battery_sounding = self.battery_low && self.battery_silenced_until.is_none();
        if !electrical_sounding && !battery_sounding {
            // Smoke alone, or nothing: smoke is never silenced (GB 20517-2025 §5.11.2).
            return if self.smoke {
                CommandOutcome::Refused
            } else {
                CommandOutcome::NotApplicable
            };
        }
        self.muted = true;
        if battery_sounding {
            self.battery_silenced_until =
                Some(now.saturating_add(u64::from(BATTERY_SILENCE_S).saturating_mul(SEC)));
            push(
                out,
                Output::Event(EventKind::Silenced {
                    duration_s: BATTERY_SILENCE_S,
                }),
            );
        }
        CommandOutcome::Done
    }

    fn reset_alarms(&mut self, only: Option<ChannelNo>, out: &mut Outs) -> CommandOutcome {
        let mut outcome = CommandOutcome::NotApplicable;
        let configs = self.config.channels.clone();
        for cfg in configs
            .iter()
            .filter(|c| only.is_none_or(|ch| ch == c.channel))
        {
            let Some(state) = self.channels.get_mut(usize::from(cfg.channel)) else {
                continue;
            };
            let Some(level) = state.latched else { continue };
            match state.value {
                Some(value) if value < cfg.threshold.clear_below() => {
                    state.latched = None;
                    state.above_since = None;
                    let level = Level { value, ..level };
                    push(
                        out,
                        Output::Event(EventKind::AlarmCleared {
                            channel: cfg.channel,
                            level,
                        }),
                    );
                    if outcome != CommandOutcome::Refused {
                        outcome = CommandOutcome::Done;
                    }
                }
                // Still at or above the hysteresis (or unmeasurable): the alarm stays latched.
                _ => outcome = CommandOutcome::Refused,
            }
        }
        outcome
    }

    fn start_self_test(&mut self, now: u64, out: &mut Outs) {
        self.self_test = Some(SelfTest {
            ends: now.saturating_add(SELF_TEST_MS),
            sensors_ok: None,
        });
        push(out, Output::CheckSensors);
    }

    fn apply_config(&mut self, now: u64, config: Config, out: &mut Outs) {
        if config.version == self.config.version {
            return;
        }
        let version = config.version;
        match self.check_config(&config) {
            Ok(()) => {
                for state in &mut self.channels {
                    // A new set-point or delay restarts the alarm delay; a latched alarm stays.
                    state.above_since = None;
                }
                // Shorter intervals take effect now, not after the old, longer ones: the
                // gateway expects a message within the new heartbeat interval.
                let report = u64::from(config.report_interval_s).saturating_mul(SEC);
                let heartbeat = u64::from(config.heartbeat_interval_s).saturating_mul(SEC);
                self.report_due = self.report_due.min(now.saturating_add(report));
                self.heartbeat_due = self.heartbeat_due.min(now.saturating_add(heartbeat));
                self.config = config;
                push(out, Output::Event(EventKind::ConfigApplied { version }));
            }
            Err(reason) => push(
                out,
                Output::Event(EventKind::ConfigRefused { version, reason }),
            ),
        }
    }

    /// The config must pass the GB ranges and match the hardware: every channel exists and
    /// measures the quantity its set-point is for.
    fn check_config(&self, config: &Config) -> Result<(), heapless::String<MAX_REASON_LEN>> {
        use core::fmt::Write;
        let mut reason = heapless::String::new();
        if let Err(e) = config.validate(&self.layout.limits) {
            // A reason longer than the message allows is cut, not lost.
            let _ = write!(reason, "{e}");
            return Err(reason);
        }
        for c in &config.channels {
            let fitted = self
                .layout
                .channels
                .get(usize::from(c.channel))
                .copied()
                .flatten();
            if fitted != Some(c.threshold.quantity()) {
                let _ = match fitted {
                    None => write!(reason, "channel {} is not fitted on this device", c.channel),
                    Some(q) => write!(reason, "channel {} measures {q:?}", c.channel),
                };
                return Err(reason);
            }
        }
        if config.relay_trip && !self.layout.relay {
            let _ = write!(reason, "relay_trip set but no relay is fitted");
            return Err(reason);
        }
        Ok(())
    }

    /// The electrical sound the state calls for, if any.
    fn electrical_sound(&self) -> Option<Sound> {
        let states = || self.enabled_channels().map(|(_, s)| s);
        if self.config.buzzer && states().any(|s| s.latched.is_some()) {
            Some(Sound::Alarm)
        } else if states().any(|s| s.fault.is_some()) {
            Some(Sound::Fault)
        } else {
            None
        }
    }

    fn indicators(&self, now: u64) -> Indicators {
        let latched = self.enabled_channels().any(|(_, s)| s.latched.is_some());
        let faulted = self.enabled_channels().any(|(_, s)| s.fault.is_some());
        let chirp =
            self.battery_low && self.battery_silenced_until.is_none_or(|until| now >= until);
        let sound = if self.smoke {
            Sound::Fire
        } else if self.self_test.is_some() {
            Sound::SelfTest
        } else if let Some(s) = self.electrical_sound().filter(|_| !self.muted) {
            s
        } else if chirp {
            Sound::BatteryChirp
        } else {
            Sound::Off
        };
        Indicators {
            sound,
            alarm_led: self.smoke || latched || self.self_test.is_some(),
            fault_led: faulted || self.battery_low || self.self_test.is_some(),
            relay_tripped: self.layout.relay && self.config.relay_trip && latched,
        }
    }
}

type Outs = Vec<Output, MAX_OUTPUTS>;

/// Queues an output. [`MAX_OUTPUTS`] bounds what one step produces (one event per channel plus
/// the device-wide ones), so this never drops.
fn push(out: &mut Outs, o: Output) {
    let _ = out.push(o);
}

#[cfg(test)]
mod tests;
