//! Many simulated devices in one process: a [`Plan`] played on worker threads.
//!
//! Each worker thread runs a current-thread tokio runtime with a `LocalSet` (the firmware's
//! runner future is not `Send`) and a share of the devices. Every device is the real firmware
//! ([`run_device_on`]) behind its street's [`Gate`]; a power cut drops the device (its RAM —
//! outbox, monitor state — is lost, its sequence-number flash is kept) and boots it again when
//! the power returns, all of the street's devices at the same instant, as in the field.
//!
//! [`Fleet::start`] returns at once; [`Fleet::counters`] says what the devices did so far;
//! cancelling the token stops every device.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;

use firegrid_firmware::mqtt::host::TokioClock;
use firegrid_firmware::mqtt::{self, Exit};
use firegrid_protocols::id::DeviceId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::device::{Counters, Flash, SimDevice, SimOptions, run_device_on};
use crate::net::{Gate, SimConnector};
use crate::scenario::{Plan, PlannedDevice};

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The broker the devices connect to (MQTT 5).
    pub broker: SocketAddr,
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Devices spread their connections over this many loopback source addresses
    /// (127.0.0.1, 127.0.0.2, …), 1–250: one address runs out of ports past ~28k.
    pub sources: u8,
    /// The devices' MQTT keep-alive, s: how soon the broker notices a device that vanished.
    pub keep_alive_s: u16,
    /// The first boots are spread over this long, ms (0: every device at once).
    pub boot_spread_ms: u64,
    /// Base of the devices' reconnect backoff, ms.
    pub backoff_base_ms: u64,
    /// The largest reconnect backoff window, ms.
    pub backoff_cap_ms: u64,
    /// Each device's MQTT password by device id (its username is its id); a device without
    /// one connects without credentials (an open broker).
    pub credentials: Arc<HashMap<String, String>>,
}

impl FleetOptions {
    /// Defaults for `broker`: 2 threads, one source address per 20k devices, keep-alive 60 s,
    /// boots spread over 2 s, backoff from 1 s up to the firmware's 5 min.
    pub fn new(broker: SocketAddr, devices: usize) -> Self {
        Self {
            broker,
            threads: 2,
            sources: u8::try_from(devices / 20_000 + 1).unwrap_or(250).min(250),
            keep_alive_s: 60,
            boot_spread_ms: 2_000,
            backoff_base_ms: 1_000,
            backoff_cap_ms: firegrid_firmware::backoff::BackoffConfig::DEFAULT.cap_ms,
            credentials: Arc::default(),
        }
    }
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    start: Instant,
}

impl Fleet {
    /// Starts every device of `plan` on `options.threads` threads; scenario time 0 is now.
    /// The devices run until `cancel`.
    ///
    /// # Errors
    /// A worker thread or its runtime could not be started.
    pub fn start(
        plan: &Plan,
        options: &FleetOptions,
        cancel: &CancellationToken,
    ) -> std::io::Result<Self> {
        let counters = Arc::new(Counters::default());
        let start = Instant::now();
        let threads = options.threads.max(1);
        let mut shares: Vec<Vec<(usize, PlannedDevice)>> = vec![Vec::new(); threads];
        for (i, d) in plan.devices.iter().enumerate() {
            shares[i % threads].push((i, d.clone()));
        }
        let mut handles = Vec::new();
        for (t, share) in shares.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let plan_streets = plan.streets.clone();
            let settings = plan.settings.clone();
            let (options, counters, cancel) = (options.clone(), counters.clone(), cancel.clone());
            let handle = std::thread::Builder::new()
                .name(format!("sim-{t}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, async move {
                        let gates: Vec<(String, Rc<Gate>)> = plan_streets
                            .into_iter()
                            .map(|s| (s.id.clone(), Rc::new(Gate::new(s, start))))
                            .collect();
                        let count = share.len().max(1) as u64;
                        let mut tasks = Vec::new();
                        for (k, (index, device)) in share.into_iter().enumerate() {
                            let Some(gate) = gates
                                .iter()
                                .find(|(id, _)| *id == device.street)
                                .map(|(_, g)| g.clone())
                            else {
                                continue;
                            };
                            let boot_at = start
                                + std::time::Duration::from_millis(
                                    options.boot_spread_ms * k as u64 / count,
                                );
                            let source = IpAddr::V4(Ipv4Addr::new(
                                127,
                                0,
                                0,
                                1 + (index % usize::from(options.sources.max(1))) as u8,
                            ));
                            tasks.push(tokio::task::spawn_local(supervise(
                                device,
                                gate,
                                source,
                                settings.sample_interval_ms,
                                boot_at,
                                options.clone(),
                                counters.clone(),
                                cancel.clone(),
                            )));
                        }
                        for t in tasks {
                            let _ = t.await;
                        }
                    });
                })?;
            handles.push(handle);
        }
        Ok(Self {
            threads: handles,
            counters,
            start,
        })
    }

    /// What the devices did so far.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Scenario time 0.
    pub const fn started(&self) -> Instant {
        self.start
    }

    /// Waits for every worker thread (after the token was cancelled).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One device's life: boot, run the firmware, lose power, boot again, until `cancel`.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    device: PlannedDevice,
    gate: Rc<Gate>,
    source: IpAddr,
    sample_interval_ms: u64,
    boot_at: Instant,
    options: FleetOptions,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) {
    let Ok(id) = DeviceId::new(&device.id) else {
        return;
    };
    let flash = Flash::default();
    let mut mqtt_options = mqtt::Options::new();
    mqtt_options.keep_alive_s = options.keep_alive_s;
    mqtt_options.backoff.base_ms = options.backoff_base_ms;
    mqtt_options.backoff.cap_ms = options.backoff_cap_ms;
    mqtt_options.jitter_seed = device.seed;
    mqtt_options.password = options.credentials.get(&device.id).map(|p| p.as_bytes());
    tokio::select! {
        () = cancel.cancelled() => return,
        () = tokio::time::sleep_until(boot_at) => {}
    }
    loop {
        let now = gate.now_ms();
        if gate.street().power_off(now) {
            let until = gate.cut_ends(now).map_or(now, |end| end);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(gate.at(until)) => continue,
            }
        }
        let next_cut = gate
            .street()
            .power_cuts
            .iter()
            .map(|&(a, _)| a)
            .filter(|&a| a > now)
            .min();
        let mut sim = SimDevice::new(
            device.kind.layout(),
            device.models.clone(),
            SimOptions {
                sample_interval_ms,
                time_scale: 1.0,
                seed: device.seed,
                model_offset_ms: now,
                history: false,
            },
            TokioClock::new(),
        );
        sim.count_into(counters.clone());
        let connector = SimConnector::new(options.broker, source, gate.clone());
        let power_cut = async {
            match next_cut {
                Some(at) => tokio::time::sleep_until(gate.at(at)).await,
                None => core::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            exit = run_device_on(id.clone(), connector, flash.clone(), sim, &mqtt_options) => {
                // A reboot asked for by the gateway: boot again at once.
                let _: Exit = exit;
            }
            () = power_cut => {}
        }
    }
}
