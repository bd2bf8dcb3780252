//! One simulated device running the real firmware end to end.
//!
//! A [`SimDevice`] holds the physical models (a [`CircuitModel`] on channel 0, a
//! [`TerminalModel`] per temperature channel 1–4, optional smoke and a battery), the simulated
//! chips ([`SimAds131m02`], [`SimAds1115`]) and reads them through the real drivers
//! ([`Ads131m02`] + [`RmsCalculator`], [`Ads1115`] + [`ntc::temperature_dc`]). It is the
//! firmware's [`Shell`]: [`Shell::next_input`] takes one sensing pass every
//! [`SimOptions::sample_interval_ms`] of the device's (tokio) clock and yields its samples one
//! by one; [`Shell::show`] records the indicators.
//!
//! [`run_device`] runs it on the firmware's MQTT runner ([`mqtt::run`]) with the host
//! [`TcpConnector`] and [`TokioClock`]. Its future is not `Send`: run it on a current-thread
//! runtime or in a [`tokio::task::LocalSet`]. What the device does is published on a
//! [`tokio::sync::watch`] channel ([`SimDevice::watch`], a [`DeviceView`]) for tests and
//! metrics.
//!
//! Time: the firmware runs on wall time (its alarm delays, resend timeouts and heartbeats are
//! real seconds); the models run on *model time* = device time × [`SimOptions::time_scale`],
//! so a slow physical process (a creeping leakage, a heating terminal) can be compressed
//! without changing what the firmware decides.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use firegrid_firmware::clock::Clock;
use firegrid_firmware::device::Device;
use firegrid_firmware::drivers::ads131m02::{self, Ads131m02};
use firegrid_firmware::drivers::ads1115::{self, Ads1115, Channel, SlaveAddr};
use firegrid_firmware::drivers::ntc::{self, NtcDivider};
use firegrid_firmware::drivers::residual::{RmsCalculator, RmsConfig};
use firegrid_firmware::monitor::{Indicators, Input, Layout};
use firegrid_firmware::mqtt::host::{TcpConnector, TokioClock};
use firegrid_firmware::mqtt::{self, Connector, DownCause, Exit, LinkEvent, Shell};
use firegrid_firmware::seq::SeqStore;
use firegrid_protocols::channel::{ChannelNo, FaultCause};
use firegrid_protocols::id::DeviceId;
use firegrid_protocols::message::Seq;
use firegrid_protocols::topic::DeviceTopic;
use tokio::sync::watch;

use crate::physics::{
    BatteryModel, CircuitModel, LeadState, LeakageModel, SmokeModel, TerminalModel,
};
use crate::sim_bus::{NoDelay, SimAds131m02, SimAds1115};

/// Event slots of a simulated device's outbox.
pub const EVENT_SLOTS: usize = 32;
/// Telemetry slots of a simulated device's outbox.
pub const TELEMETRY_SLOTS: usize = 16;
/// Receive buffer of a simulated device, bytes.
pub const RX_BUFFER: usize = 16 * 1024;

/// The firmware device a [`SimDevice`] runs.
pub type FirmwareDevice = Device<Flash, EVENT_SLOTS, TELEMETRY_SLOTS>;

/// A simulated device's non-volatile sequence-number store: clones share one cell, so the
/// high-water mark survives a simulated power cut (the device is dropped and booted again with
/// a clone), as the board's flash log does.
#[derive(Debug, Clone, Default)]
pub struct Flash(Rc<Cell<Option<u32>>>);

impl Flash {
    /// The stored high-water mark.
    pub fn value(&self) -> Option<u32> {
        self.0.get()
    }
}

impl SeqStore for Flash {
    type Error = core::convert::Infallible;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        Ok(self.0.get())
    }

    fn store(&mut self, value: u32) -> Result<(), Self::Error> {
        self.0.set(Some(value));
        Ok(())
    }
}

/// How a [`SimDevice`] senses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Device time between two sensing passes, ms (≥ 1). Default 1 000.
    pub sample_interval_ms: u64,
    /// Model ms per device ms (> 0). Default 1.0.
    pub time_scale: f64,
    /// Seed of the chips' noise. Default 1.
    pub seed: u64,
    /// Model time at the device's boot, ms (a device booted again after a power cut keeps
    /// the world's time). Default 0.
    pub model_offset_ms: u64,
    /// Whether [`DeviceView`] keeps every message sent and every indicator change (tests), or
    /// only the latest state and counts (fleets running for hours). Default true.
    pub history: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            sample_interval_ms: 1_000,
            time_scale: 1.0,
            seed: 1,
            model_offset_ms: 0,
            history: true,
        }
    }
}

/// The physical world of one device.
#[derive(Debug, Clone)]
pub struct Models {
    /// The circuit on channel 0 (residual current; its load heats the terminals).
    pub circuit: CircuitModel,
    /// The terminals on temperature channels 1–4.
    pub terminals: [TerminalModel; 4],
    /// Smoke, if a smoke alarm is attached (the layout says so).
    pub smoke: Option<SmokeModel>,
    /// The battery, if the layout has one.
    pub battery: Option<BatteryModel>,
}

impl Models {
    /// A healthy circuit (`leakage`), four sound terminals from model time 0, no smoke, a 3 V
    /// backup cell that does not drain.
    pub fn typical(leakage: LeakageModel) -> Self {
        Self {
            circuit: CircuitModel::new(leakage),
            terminals: core::array::from_fn(|_| TerminalModel::sound(0)),
            smoke: None,
            battery: Some(BatteryModel {
                full_mv: 3_000.0,
                drain_mv_per_day: 0.0,
                low_mv: 2_600.0,
                from_ms: 0,
            }),
        }
    }
}

/// What a simulated device has done so far, on [`SimDevice::watch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceView {
    /// Sensing passes taken.
    pub passes: u64,
    /// The latest sample of each channel 0–4.
    pub samples: [Option<Result<i32, FaultCause>>; 5],
    /// The indicators shown now.
    pub indicators: Option<Indicators>,
    /// Every change of the indicators, in order.
    pub shown: Vec<Indicators>,
    /// Whether a session is up.
    pub link_up: bool,
    /// Sessions that came up.
    pub sessions: u32,
    /// Why sessions ended.
    pub downs: Vec<DownCause>,
    /// Every message handed to the MQTT client: topic, seq, resend.
    pub sent: Vec<(DeviceTopic, Seq, bool)>,
    /// Acks taken.
    pub acks: u32,
    /// Unacknowledged events in the outbox after the latest received message.
    pub unacked_events: Option<usize>,
}

/// What a fleet of simulated devices did, summed over its devices (see
/// [`SimDevice::count_into`]).
#[derive(Debug, Default)]
pub struct Counters {
    /// Devices with a session up now.
    pub connected: AtomicI64,
    /// Sessions that came up.
    pub sessions: AtomicU64,
    /// Telemetry messages handed to the MQTT client.
    pub telemetry: AtomicU64,
    /// Events handed to the MQTT client, first sends.
    pub events: AtomicU64,
    /// Events sent again (not acknowledged in time, or after a reconnect).
    pub resends: AtomicU64,
    /// Acks received.
    pub acks: AtomicU64,
}

impl Counters {
    /// A counter's value now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One simulated device: models, simulated chips, real drivers; the firmware's [`Shell`].
#[derive(Debug)]
pub struct SimDevice {
    /// The physical world: set it up before running ([`SimDevice::models_mut`]); changes
    /// during a run are scheduled in the models themselves (creep, fault windows, episodes).
    models: Models,
    layout: Layout,
    options: SimOptions,
    clock: TokioClock,
    adc: SimAds131m02,
    ntc_adc: SimAds1115,
    adc_ready: bool,
    next_pass_ms: u64,
    queue: VecDeque<Input>,
    smoke_shown: bool,
    sensors_ok: bool,
    view: watch::Sender<DeviceView>,
    counters: Option<Arc<Counters>>,
    link_up: bool,
}

impl SimDevice {
    /// A device with `layout` sensing `models`, booting now on `clock`.
    pub fn new(layout: Layout, models: Models, options: SimOptions, clock: TokioClock) -> Self {
        let adc = SimAds131m02::new(
            models.circuit.clone(),
            options.model_offset_ms,
            options.seed,
        );
        Self {
            models,
            layout,
            options: SimOptions {
                sample_interval_ms: options.sample_interval_ms.max(1),
                time_scale: if options.time_scale > 0.0 {
                    options.time_scale
                } else {
                    1.0
                },
                seed: options.seed,
                model_offset_ms: options.model_offset_ms,
                history: options.history,
            },
            clock,
            adc,
            ntc_adc: SimAds1115::new(SlaveAddr::Gnd),
            adc_ready: false,
            next_pass_ms: 0,
            queue: VecDeque::new(),
            smoke_shown: false,
            sensors_ok: true,
            view: watch::Sender::new(DeviceView::default()),
            counters: None,
            link_up: false,
        }
    }

    /// Adds what this device does to `counters` (shared by a fleet).
    pub fn count_into(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
    }

    /// The device's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The models.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The models, to change.
    pub fn models_mut(&mut self) -> &mut Models {
        &mut self.models
    }

    /// What the device does, as it happens.
    pub fn watch(&self) -> watch::Receiver<DeviceView> {
        self.view.subscribe()
    }

    /// Model time at device time `now_ms`, ms.
    pub fn model_ms(&self, now_ms: u64) -> u64 {
        self.options
            .model_offset_ms
            .saturating_add((now_ms as f64 * self.options.time_scale) as u64)
    }

    /// Takes one sensing pass at device time `now_ms` and queues its inputs.
    pub fn sense(&mut self, now_ms: u64) {
        let model_ms = self.model_ms(now_ms);
        let mut ok = true;
        let mut samples: [Option<Result<i32, FaultCause>>; 5] = Default::default();
        if self.layout.channels.first().copied().flatten().is_some() {
            self.adc.circuit.clone_from(&self.models.circuit);
            self.adc.set_time_ms(model_ms);
            match self.residual_window() {
                Some(value) => samples[0] = Some(value),
                None => ok = false,
            }
        }
        let load_a = self.models.circuit.load_a;
        for (i, channel) in Channel::ALL.into_iter().enumerate() {
            let no = i + 1;
            if self.layout.channels.get(no).copied().flatten().is_none() {
                continue;
            }
            let terminal = &mut self.models.terminals[i];
            self.ntc_adc.probes[i].temp_c = terminal.advance(model_ms, load_a);
            self.ntc_adc.probes[i].lead = terminal.probe_state(model_ms);
            let mut driver = Ads1115::new(&mut self.ntc_adc, SlaveAddr::Gnd, ads1115::Config::NTC);
            match driver.read_single_ended(channel, &mut NoDelay::default()) {
                Ok(code) => {
                    samples[no] =
                        Some(ntc::temperature_dc(code, &NtcDivider::REFERENCE).map(i32::from));
                }
                // The bus failed: no sample this pass (the board would retry).
                Err(_) => ok = false,
            }
        }
        for (no, sample) in samples.iter().enumerate() {
            if let (Some(value), Ok(channel)) = (sample, ChannelNo::try_from(no)) {
                self.queue.push_back(Input::Sample {
                    channel,
                    value: *value,
                });
            }
        }
        if self.layout.smoke
            && let Some(smoke) = &self.models.smoke
        {
            let present = smoke.present(model_ms);
            if present != self.smoke_shown {
                self.smoke_shown = present;
                self.queue.push_back(Input::Smoke(present));
            }
        }
        self.sensors_ok = ok;
        self.view.send_modify(|v| {
            v.passes += 1;
            for (slot, sample) in v.samples.iter_mut().zip(samples) {
                if sample.is_some() {
                    *slot = sample;
                }
            }
        });
    }

    /// One RMS window of channel 0 through the real driver; `None` if the chip failed (it is
    /// initialised again next time).
    fn residual_window(&mut self) -> Option<Result<i32, FaultCause>> {
        let mut driver = Ads131m02::new(&mut self.adc);
        if !self.adc_ready {
            driver
                .init(
                    &mut NoDelay::default(),
                    &ads131m02::Config::RESIDUAL_CURRENT,
                )
                .ok()?;
            self.adc_ready = true;
        }
        let mut rms = RmsCalculator::new(RmsConfig::REFERENCE).ok()?;
        loop {
            match driver.read_frame() {
                Ok(frame) => {
                    if let Some(result) = rms.push(frame.channels[0]) {
                        return Some(
                            result.map(|r| i32::try_from(r.milliamps).unwrap_or(i32::MAX)),
                        );
                    }
                }
                Err(_) => {
                    self.adc_ready = false;
                    return None;
                }
            }
        }
    }

    /// Boot: the first sensing pass at `now_ms`, stepped into `device` at once (as a board
    /// measures at power-up), so the first report has values.
    fn boot(&mut self, device: &mut FirmwareDevice, now_ms: u64) {
        self.sense(now_ms);
        self.next_pass_ms = now_ms.saturating_add(self.options.sample_interval_ms);
        let mut shown = None;
        while let Some(input) = self.queue.pop_front() {
            let actions = device.step(now_ms, input);
            if shown != Some(actions.indicators) {
                self.show(actions.indicators);
                shown = Some(actions.indicators);
            }
            if actions.measure_battery {
                self.measure_battery();
            }
            if actions.check_sensors {
                self.check_sensors();
            }
        }
    }

    fn battery_mv(&self) -> Option<u16> {
        let model_ms = self.model_ms(self.clock.now_ms());
        self.models.battery.map(|b| {
            b.voltage_mv(model_ms)
                .round()
                .clamp(0.0, f64::from(u16::MAX)) as u16
        })
    }
}

impl Shell for SimDevice {
    async fn next_input(&mut self) -> Input {
        // Cancel safety: the only await is the timer; queued inputs stay queued.
        if let Some(input) = self.queue.pop_front() {
            return input;
        }
        loop {
            self.clock.sleep_until(self.next_pass_ms).await;
            let now = self.clock.now_ms();
            self.sense(now);
            self.next_pass_ms = self
                .next_pass_ms
                .saturating_add(self.options.sample_interval_ms)
                .max(now.saturating_add(1));
            if let Some(input) = self.queue.pop_front() {
                return input;
            }
        }
    }

    fn show(&mut self, indicators: Indicators) {
        let history = self.options.history;
        self.view.send_modify(|v| {
            v.indicators = Some(indicators);
            if history {
                v.shown.push(indicators);
            }
        });
    }

    fn measure_battery(&mut self) {
        if let Some(mv) = self.battery_mv() {
            self.queue.push_back(Input::Battery(mv));
        }
    }

    fn check_sensors(&mut self) {
        let ok = self.sensors_ok
            && self
                .models
                .circuit
                .ct_state(self.model_ms(self.clock.now_ms()))
                == LeadState::Ok;
        self.queue.push_back(Input::SensorCheck(ok));
    }

    fn on_link(&mut self, event: &LinkEvent) {
        if let Some(c) = &self.counters {
            match event {
                LinkEvent::Up { .. } => {
                    Counters::add(&c.sessions);
                    if !self.link_up {
                        c.connected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                LinkEvent::Down { .. } if self.link_up => {
                    c.connected.fetch_sub(1, Ordering::Relaxed);
                }
                LinkEvent::Sent { resend: true, .. } => Counters::add(&c.resends),
                LinkEvent::Sent {
                    topic: DeviceTopic::Event,
                    ..
                } => Counters::add(&c.events),
                LinkEvent::Sent {
                    topic: DeviceTopic::Telemetry,
                    ..
                } => Counters::add(&c.telemetry),
                LinkEvent::Received {
                    topic: Some(DeviceTopic::Ack),
                    refused: None,
                    ..
                } => Counters::add(&c.acks),
                _ => {}
            }
        }
        match event {
            LinkEvent::Up { .. } => self.link_up = true,
            LinkEvent::Down { .. } => self.link_up = false,
            _ => {}
        }
        let history = self.options.history;
        self.view.send_modify(|v| match event {
            LinkEvent::Up { .. } => {
                v.link_up = true;
                v.sessions += 1;
            }
            LinkEvent::Down { cause, .. } => {
                v.link_up = false;
                if history {
                    v.downs.push(*cause);
                }
            }
            LinkEvent::Sent { topic, seq, resend } if history => {
                v.sent.push((*topic, *seq, *resend));
            }
            LinkEvent::Received {
                topic,
                refused,
                unacked_events,
            } => {
                if *topic == Some(DeviceTopic::Ack) && refused.is_none() {
                    v.acks += 1;
                }
                v.unacked_events = Some(*unacked_events);
            }
            _ => {}
        });
    }
}

impl Drop for SimDevice {
    /// A device switched off mid-session is no longer connected.
    fn drop(&mut self) {
        if let (Some(c), true) = (&self.counters, self.link_up) {
            c.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Runs `sim` as device `id` on the broker at `broker`, through the firmware's MQTT runner,
/// until a reboot is asked for. The future is not `Send` (see the module documentation).
pub async fn run_device(
    id: DeviceId,
    broker: SocketAddr,
    sim: SimDevice,
    options: &mqtt::Options<'_>,
) -> Exit {
    run_device_on(
        id,
        TcpConnector::new(broker),
        Flash::default(),
        sim,
        options,
    )
    .await
}

/// Runs `sim` as device `id` over `connector`, its sequence numbers kept in `flash`, until a
/// reboot is asked for. The future is not `Send` (see the module documentation).
pub async fn run_device_on<C: Connector>(
    id: DeviceId,
    mut connector: C,
    flash: Flash,
    mut sim: SimDevice,
    options: &mqtt::Options<'_>,
) -> Exit {
    let clock = sim.clock;
    let now = clock.now_ms();
    let mut device = FirmwareDevice::new(id, sim.layout.clone(), flash, now);
    sim.boot(&mut device, now);
    let mut rx_buffer = vec![0u8; RX_BUFFER];
    mqtt::run(
        &mut device,
        &mut connector,
        &clock,
        &mut sim,
        options,
        &mut rx_buffer,
    )
    .await
}

#[cfg(test)]
mod tests;
