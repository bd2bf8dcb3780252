//! Legacy electrical-fire monitors over Modbus TCP and RTU: polled, and fed into the same
//! ingest → engine → journal path as MQTT devices.
//!
//! # Layout
//! - [`profile`]: register profiles — the built-in `typical-rcm-4t` and TOML files — validated.
//! - [`poller`]: the pure core of one bus: schedule, replies, offline, messages.
//! - [`decode`]: one poll's words → values, readings, and the events of state changes.
//! - [`setpoint`]: a device configuration turned into register writes.
//! - [`bus`]: the I/O shell running a [`poller::Poller`] over a connection, one request at a time
//!   under a timeout; [`tcp`] and [`rtu`] open the connections.
//! - [`stats`]: counters for `/metrics`.
//! - [`probe`]: `firegrid modbus probe`, one read printed for installers.
//!
//! Each bus (a TCP endpoint, or a serial line) is one task: requests on it are serialised, so
//! one RS-485 line never sees two masters' frames, and a TCP converter with several monitors
//! behind it gets one request at a time. Messages made from registers are handed to the
//! pipeline as [`Incoming`](crate::broker::Incoming) (`Incoming::polled`) through an
//! [`UplinkSender`](crate::broker::UplinkSender) — events ahead of telemetry, in the same queues
//! as the MQTT devices' — so a legacy monitor's alarm takes the very path an MQTT device's does.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::{ChannelNo, ChannelState, FaultCause};
use firegrid_protocols::message::{Config as DeviceConfig, Seq};

pub mod bus;
pub mod decode;
pub mod poller;
pub mod probe;
pub mod profile;
pub mod rtu;
pub mod setpoint;
pub mod stats;
pub mod tcp;

pub use profile::{Profile, Profiles};

/// The `[modbus]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusConfig {
    /// Profile files (TOML) loaded beside the built-in `typical-rcm-4t`.
    pub profiles: Vec<PathBuf>,
    /// Deadline of one request (reply included), ms.
    pub timeout_ms: u64,
    /// Failed polls in a row before a device is reported offline.
    pub offline_after: u32,
    /// How often an answering device sends an online heartbeat, s.
    pub heartbeat_s: u64,
    /// Modbus TCP endpoints (a monitor, or a serial-to-Ethernet converter with monitors behind).
    pub tcp: Vec<TcpBus>,
    /// Serial lines (RS-485) polled as Modbus RTU.
    pub rtu: Vec<RtuBus>,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        Self {
            profiles: Vec::new(),
            timeout_ms: 1000,
            offline_after: 3,
            heartbeat_s: 60,
            tcp: Vec::new(),
            rtu: Vec::new(),
        }
    }
}

/// `[[modbus.tcp]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpBus {
    /// `host:port` of the Modbus TCP server.
    pub address: String,
    /// The monitors behind it.
    pub devices: Vec<DeviceEntry>,
}

/// `[[modbus.rtu]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtuBus {
    /// The serial device, e.g. `/dev/ttyUSB0`.
    pub path: PathBuf,
    /// Baud rate (8N1).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The monitors on the line.
    pub devices: Vec<DeviceEntry>,
}

fn default_baud() -> u32 {
    9600
}

/// One monitor: `{ id = "hz-0100", slave = 1, profile = "typical-rcm-4t", interval_ms = 5000 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// The device id as registered (API `POST /api/v1/devices`).
    pub id: String,
    /// Modbus unit id, 1–247.
    pub slave: u8,
    /// Profile name.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Poll period, ms.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
}

fn default_profile() -> String {
    "typical-rcm-4t".into()
}

fn default_interval() -> u64 {
    5000
}

impl ModbusConfig {
    /// Checks what can be checked without opening anything; the message names the key.
    ///
    /// # Errors
    /// What is wrong, e.g. `[[modbus.tcp]] devices: "hz-1" slave 0 is not 1-247`.
    pub fn check(&self) -> Result<(), String> {
        if self.timeout_ms == 0 {
            return Err("[modbus] timeout_ms must be at least 1".into());
        }
        if self.offline_after == 0 {
            return Err("[modbus] offline_after must be at least 1".into());
        }
        if self.heartbeat_s == 0 {
            return Err("[modbus] heartbeat_s must be at least 1".into());
        }
        let mut ids = HashSet::new();
        let buses = self
            .tcp
            .iter()
            .map(|b| ("[[modbus.tcp]]", &b.devices))
            .chain(self.rtu.iter().map(|b| ("[[modbus.rtu]]", &b.devices)));
        for (section, devices) in buses {
            let mut slaves = HashSet::new();
            for d in devices {
                d.id.parse::<DeviceId>()
                    .map_err(|e| format!("{section} devices: id {:?}: {e}", d.id))?;
                if !ids.insert(d.id.clone()) {
                    return Err(format!("{section} devices: {:?} is listed twice", d.id));
                }
                if !(1..=247).contains(&d.slave) {
                    return Err(format!(
                        "{section} devices: {:?} slave {} is not 1-247",
                        d.id, d.slave
                    ));
                }
                if !slaves.insert(d.slave) {
                    return Err(format!(
                        "{section} devices: slave {} is used twice on one bus",
                        d.slave
                    ));
                }
                if d.interval_ms < 100 {
                    return Err(format!(
                        "{section} devices: {:?} interval_ms {} is under 100",
                        d.id, d.interval_ms
                    ));
                }
            }
        }
        for b in &self.rtu {
            if b.baud == 0 {
                return Err(format!(
                    "[[modbus.rtu]] {}: baud must not be 0",
                    b.path.display()
                ));
            }
        }
        // Profiles are read here too, so that `firegrid check-config` finds a bad one.
        let profiles =
            Profiles::load(&self.profiles).map_err(|e| format!("[modbus] profiles: {e}"))?;
        for d in self
            .tcp
            .iter()
            .flat_map(|b| &b.devices)
            .chain(self.rtu.iter().flat_map(|b| &b.devices))
        {
            if profiles.get(&d.profile).is_none() {
                return Err(format!(
                    "[modbus] device {:?}: no profile {:?} (loaded: {})",
                    d.id,
                    d.profile,
                    profiles.names().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for b in &self.tcp {
            if !b.address.contains(':') {
                return Err(format!(
                    "[[modbus.tcp]] address {:?} must be host:port, e.g. \"10.0.0.5:502\"",
                    b.address
                ));
            }
        }
        Ok(())
    }

    /// Whether any bus is configured.
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.rtu.is_empty()
    }
}

/// Why polling cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ModbusError {
    /// A profile file did not load.
    #[error("{0}")]
    Profile(#[from] profile::LoadError),
    /// A device names a profile that is not loaded.
    #[error("[modbus] device {device:?}: no profile {profile:?} (loaded: {loaded})")]
    UnknownProfile {
        /// The device.
        device: String,
        /// The name.
        profile: String,
        /// The names loaded.
        loaded: String,
    },
    /// A device id is malformed.
    #[error("[modbus] device {0:?}: not a valid device id")]
    DeviceId(String),
}

/// Routes set-point changes to the bus polling the device.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: std::collections::HashMap<DeviceId, mpsc::Sender<(DeviceId, DeviceConfig)>>,
}

impl Router {
    /// Whether `device` is polled over Modbus.
    pub fn polls(&self, device: &DeviceId) -> bool {
        self.routes.contains_key(device)
    }

    /// Hands a configuration to the device's poller. Returns `false` if the device is not
    /// polled (publish it over MQTT instead) or its bus's queue is full.
    pub fn configure(&self, device: &DeviceId, config: DeviceConfig) -> bool {
        self.routes
            .get(device)
            .is_some_and(|tx| tx.try_send((device.clone(), config)).is_ok())
    }
}

/// What the gateway remembers of a polled device across a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// The highest sequence number it used (the store's), so that numbers never repeat.
    pub used_seq: Seq,
    /// Channels with an open alarm or fault episode, and which.
    pub states: Vec<(ChannelNo, ChannelState)>,
}

/// Starts one task per bus on `tasks`; they stop on `cancel`. `restored` says what the store
/// remembers of each device (see [`Restored`]).
///
/// # Errors
/// [`ModbusError`] if a profile or a device entry is wrong.
pub fn spawn(
    config: &ModbusConfig,
    restored: impl Fn(&DeviceId) -> Restored,
    sink: crate::broker::UplinkSender,
    stats: Arc<stats::ModbusStats>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Router, ModbusError> {
    let profiles = Profiles::load(&config.profiles)?;
    let poller_config = poller::PollerConfig {
        offline_after: config.offline_after,
        heartbeat_ms: config.heartbeat_s.saturating_mul(1000),
        max_gap: 0,
    };
    let timeout = Duration::from_millis(config.timeout_ms);
    let mut router = Router::default();
    let buses = config
        .tcp
        .iter()
        .map(|b| (bus::Link::Tcp(b.address.clone()), &b.devices))
        .chain(config.rtu.iter().map(|b| {
            (
                bus::Link::Rtu {
                    path: b.path.clone(),
                    baud: b.baud,
                },
                &b.devices,
            )
        }));
    for (link, devices) in buses {
        let mut schedules = schedules(devices, &profiles)?;
        for s in &mut schedules {
            let r = restored(&s.id);
            s.used_seq = r.used_seq;
            s.restored = r.states;
        }
        let (tx, rx) = mpsc::channel(16);
        for s in &schedules {
            router.routes.insert(s.id.clone(), tx.clone());
        }
        let b = bus::Bus {
            link,
            devices: schedules,
            poller: poller_config,
            timeout,
        };
        tasks.spawn(bus::run(b, sink.clone(), rx, stats.clone(), cancel.clone()));
    }
    Ok(router)
}

/// The schedules of a bus's devices.
///
/// # Errors
/// An unknown profile or a malformed id.
pub fn schedules(
    devices: &[DeviceEntry],
    profiles: &Profiles,
) -> Result<Vec<poller::DeviceSchedule>, ModbusError> {
    devices
        .iter()
        .map(|d| {
            let profile = profiles
                .get(&d.profile)
                .ok_or_else(|| ModbusError::UnknownProfile {
                    device: d.id.clone(),
                    profile: d.profile.clone(),
                    loaded: profiles.names().collect::<Vec<_>>().join(", "),
                })?;
            Ok(poller::DeviceSchedule {
                id: d
                    .id
                    .parse()
                    .map_err(|_| ModbusError::DeviceId(d.id.clone()))?,
                slave: d.slave,
                profile,
                interval_ms: d.interval_ms,
                used_seq: 0,
                restored: Vec::new(),
            })
        })
        .collect()
}

/// The channel states `device`'s open episodes imply: alarm, or fault (of a cause the episode
/// does not keep).
pub fn open_states(
    device: &DeviceId,
    open: &[crate::engine::OpenEpisode],
) -> Vec<(ChannelNo, ChannelState)> {
    use crate::model::Category;
    open.iter()
        .filter(|e| e.key.device == *device && !e.ended)
        .filter_map(|e| {
            let state = match e.key.category {
                Category::Alarm => ChannelState::Alarm,
                Category::Fault => ChannelState::Fault(FaultCause::SensorError),
                _ => return None,
            };
            Some((e.key.channel?, state))
        })
        .collect()
}
