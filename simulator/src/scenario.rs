//! Scenarios: a district in a TOML file — streets cut into grid cells, sites, rooms — and the
//! incidents to play on it ("leakage on this circuit creeps up from +60 s", "smoke in room 3 at
//! +120 s", "street 2 loses its network for 5 min", "power returns to the whole street at
//! once").
//!
//! [`Scenario::parse`] reads and checks the file (errors name the line and what is expected);
//! [`Scenario::plan`] expands it, purely and deterministically from its seed, into a [`Plan`]:
//! every device with its physical models (incidents on sensors are compiled into the models'
//! own schedules) and the network and power schedules of each street. The fleet runner plays
//! a plan; the provisioner registers it in the gateway.
//!
//! Names: street `xh` → grid cells `xh-1`, `xh-2` → sites `xh-1-1`… → rooms `xh-1-1-1`…; each
//! room has an electrical-fire monitor `<room>-m` (residual current on its circuit, four
//! terminal temperatures) and, if the street has smoke alarms, an independent smoke alarm
//! `<room>-s`. A street id is 1–12 of `[a-z0-9]` so that every derived id stays a valid device
//! id.

use std::collections::BTreeMap;
use std::fmt;

use firegrid_firmware::monitor::Layout;
use serde::Deserialize;

use crate::device::Models;
use crate::physics::{
    CircuitModel, FaultWindow, LeadState, LeakageModel, SmokeModel, TerminalModel, XorShift64,
};
#[cfg(test)]
use firegrid_protocols::id::DeviceId;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The district's name (the top area).
    pub name: String,
    /// The district's area id (1–32 of `[A-Za-z0-9_-]`).
    #[serde(default = "default_district_id")]
    pub id: String,
    /// Seed of everything random (base leakage, noise): one seed, one district.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How the devices are set up.
    #[serde(default)]
    pub devices: DeviceSettings,
    /// The streets.
    #[serde(rename = "street")]
    pub streets: Vec<Street>,
    /// What happens, in time order or not.
    #[serde(default, rename = "incident")]
    pub incidents: Vec<Incident>,
}

fn default_district_id() -> String {
    "district".into()
}

const fn default_seed() -> u64 {
    1
}

/// `[devices]`: what every simulated device is given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSettings {
    /// How often a device senses, ms. Each pass reads the residual-current ADC over whole mains
    /// cycles through the real driver, so this sets the simulator's CPU use.
    pub sample_interval_ms: u64,
    /// Telemetry interval given in the device's configuration, s.
    pub report_interval_s: u32,
    /// Heartbeat interval given in the device's configuration, s.
    pub heartbeat_interval_s: u32,
    /// Alarm delay of every channel, s.
    pub alarm_delay_s: u16,
    /// Residual-current set-point, mA.
    pub residual_ma: u32,
    /// Temperature set-point, deci-°C.
    pub temp_dc: i32,
    /// A circuit's healthy leakage, mA: uniform in `[min, max]`.
    pub base_leakage_ma: [f64; 2],
    /// Load current of each circuit, A (heats its terminals).
    pub load_a: f64,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            sample_interval_ms: 1_000,
            report_interval_s: 30,
            heartbeat_interval_s: 60,
            alarm_delay_s: 2,
            residual_ma: 300,
            temp_dc: 850,
            base_leakage_ma: [5.0, 40.0],
            load_a: 10.0,
        }
    }
}

impl DeviceSettings {
    /// The configuration a monitor gets, checked against the GB ranges as the gateway and the
    /// device check it.
    ///
    /// # Errors
    /// What is out of range, and the range.
    pub fn device_config(&self) -> Result<firegrid_protocols::message::Config, String> {
        use firegrid_protocols::channel::Quantity;
        use firegrid_protocols::thresholds::{Limits, Threshold};
        let mut config = Layout::typical_monitor().default_config();
        config.report_interval_s = self.report_interval_s;
        config.heartbeat_interval_s = self.heartbeat_interval_s;
        for ch in config.channels.iter_mut() {
            ch.delay_s = self.alarm_delay_s;
            ch.threshold = match ch.threshold.quantity() {
                Quantity::ResidualCurrent => {
                    let ma = i32::try_from(self.residual_ma).unwrap_or(i32::MAX);
                    Threshold::new(Quantity::ResidualCurrent, ma, &Limits::GB)
                }
                Quantity::Temperature => {
                    Threshold::new(Quantity::Temperature, self.temp_dc, &Limits::GB)
                }
            }
            .map_err(|e| e.to_string())?;
        }
        config.validate(&Limits::GB).map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// `[[street]]`: a street and how it is cut up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Street {
    /// Short id, 1–12 of `[a-z0-9]`; every id below derives from it.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Grid cells on the street, each with its responsible grid worker.
    pub cells: u32,
    /// Sites (buildings) per grid cell.
    pub sites_per_cell: u32,
    /// Rental rooms per site, each with a monitor on its circuit.
    pub rooms_per_site: u32,
    /// Whether each room also has an independent smoke alarm.
    #[serde(default = "yes")]
    pub smoke_alarms: bool,
    /// Whether each site also has a monitor at the head of its supply (its feeder), whose
    /// residual current is the site's own wiring's plus every room circuit's below it: the
    /// rooms' circuits are registered as the feeder circuit's branches (leak tracing,
    /// docs/utility.md).
    #[serde(default)]
    pub feeders: bool,
}

const fn yes() -> bool {
    true
}

/// `[[incident]]`: something that happens `at_s` seconds after the simulator starts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incident {
    /// A room's circuit starts leaking more and more (insulation ageing, damp).
    LeakageCreep {
        /// Start, s after the simulator starts.
        at_s: u64,
        /// The room (its monitor's circuit).
        room: String,
        /// Rise, mA per minute.
        ma_per_min: f64,
        /// It never exceeds this, mA.
        #[serde(default = "no_cap")]
        max_ma: f64,
    },
    /// Smoke in a room (its smoke alarm sounds).
    Smoke {
        /// Start, s.
        at_s: u64,
        /// The room.
        room: String,
        /// How long, s.
        for_s: u64,
    },
    /// A terminal on a room's monitor works loose and runs hot under load.
    LooseTerminal {
        /// Start, s.
        at_s: u64,
        /// The room.
        room: String,
        /// Temperature channel 1–4.
        ch: u8,
    },
    /// A sensor lead opens (a fault, not an alarm).
    LeadOpen {
        /// Start, s.
        at_s: u64,
        /// The room.
        room: String,
        /// Channel 0 (the CT) or 1–4 (a temperature probe).
        ch: u8,
        /// How long; absent: for good.
        #[serde(default)]
        for_s: Option<u64>,
    },
    /// A room's smoke alarm battery drains until low. The firmware checks its battery at
    /// power-up and every 24 h, so the drain shows at the next check (e.g. after a power cut).
    BatteryDrain {
        /// Start, s.
        at_s: u64,
        /// The room.
        room: String,
        /// Drain, mV per minute.
        mv_per_min: f64,
    },
    /// A street's devices lose the network (their connections drop, reconnects fail).
    NetworkOutage {
        /// Start, s.
        at_s: u64,
        /// The street id, or `*` for all.
        street: String,
        /// How long, s.
        for_s: u64,
    },
    /// A street's devices lose power, then all boot at the same instant.
    PowerCut {
        /// Start, s.
        at_s: u64,
        /// The street id, or `*` for all.
        street: String,
        /// How long, s.
        for_s: u64,
    },
}

const fn no_cap() -> f64 {
    f64::INFINITY
}

/// Why a scenario is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// The most devices one scenario may make.
pub const MAX_DEVICES: u64 = 200_000;

impl Scenario {
    /// Parses and checks a scenario.
    ///
    /// # Errors
    /// A TOML error (with line and column) or a check that failed, saying what is expected.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let s: Self = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), ScenarioError> {
        let err = |m: String| Err(ScenarioError(m));
        if firegrid_protocols::GridId::new(&self.id).is_err() {
            return err(format!(
                "id {:?}: a district id is 1–32 of [A-Za-z0-9_-]",
                self.id
            ));
        }
        if self.streets.is_empty() {
            return err("a scenario needs at least one [[street]]".into());
        }
        let d = &self.devices;
        if d.sample_interval_ms == 0 {
            return err("[devices] sample_interval_ms must be ≥ 1".into());
        }
        d.device_config()
            .map_err(|e| ScenarioError(format!("[devices]: {e}")))?;
        let [lo, hi] = d.base_leakage_ma;
        if !(0.0..=1000.0).contains(&lo) || !(lo..=1000.0).contains(&hi) {
            return err(format!(
                "[devices] base_leakage_ma = [{lo}, {hi}]: expected 0 ≤ min ≤ max ≤ 1000"
            ));
        }
        let mut total = 0u64;
        let mut seen = BTreeMap::new();
        for st in &self.streets {
            let ok = (1..=12).contains(&st.id.len())
                && st
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                return err(format!(
                    "street id {:?}: expected 1–12 of [a-z0-9] (device ids derive from it)",
                    st.id
                ));
            }
            if seen.insert(st.id.clone(), ()).is_some() {
                return err(format!("street id {:?} appears twice", st.id));
            }
            if st.cells == 0 || st.sites_per_cell == 0 || st.rooms_per_site == 0 {
                return err(format!(
                    "street {:?}: cells, sites_per_cell and rooms_per_site must be ≥ 1",
                    st.id
                ));
            }
            if st.cells > 999 || st.sites_per_cell > 999 || st.rooms_per_site > 999 {
                return err(format!(
                    "street {:?}: at most 999 cells, sites per cell and rooms per site",
                    st.id
                ));
            }
            let per_room = if st.smoke_alarms { 2 } else { 1 };
            total += u64::from(st.cells)
                * u64::from(st.sites_per_cell)
                * u64::from(st.rooms_per_site)
                * per_room;
        }
        if total > MAX_DEVICES {
            return err(format!(
                "the scenario makes {total} devices: at most {MAX_DEVICES}"
            ));
        }
        for (i, incident) in self.incidents.iter().enumerate() {
            self.check_incident(incident)
                .map_err(|m| ScenarioError(format!("incident {}: {m}", i + 1)))?;
        }
        Ok(())
    }

    fn check_incident(&self, incident: &Incident) -> Result<(), String> {
        match incident {
            Incident::LeakageCreep {
                room, ma_per_min, ..
            } => {
                self.room(room)?;
                if !ma_per_min.is_finite() || *ma_per_min < 0.0 {
                    return Err(format!("ma_per_min = {ma_per_min}: expected ≥ 0"));
                }
            }
            Incident::Smoke { room, for_s, .. } => {
                let street = self.room(room)?;
                if !street.smoke_alarms {
                    return Err(format!(
                        "room {room:?}: street {:?} has no smoke alarms",
                        street.id
                    ));
                }
                if *for_s == 0 {
                    return Err("for_s must be ≥ 1".into());
                }
            }
            Incident::LooseTerminal { room, ch, .. } => {
                self.room(room)?;
                if !(1..=4).contains(ch) {
                    return Err(format!("ch = {ch}: temperature channels are 1–4"));
                }
            }
            Incident::LeadOpen { room, ch, .. } => {
                self.room(room)?;
                if *ch > 4 {
                    return Err(format!("ch = {ch}: channels are 0 (CT) and 1–4"));
                }
            }
            Incident::BatteryDrain {
                room, mv_per_min, ..
            } => {
                let street = self.room(room)?;
                if !street.smoke_alarms {
                    return Err(format!(
                        "room {room:?}: street {:?} has no smoke alarms (their battery drains)",
                        street.id
                    ));
                }
                if !mv_per_min.is_finite() || *mv_per_min < 0.0 {
                    return Err(format!("mv_per_min = {mv_per_min}: expected ≥ 0"));
                }
            }
            Incident::NetworkOutage { street, for_s, .. }
            | Incident::PowerCut { street, for_s, .. } => {
                if street != "*" && !self.streets.iter().any(|s| &s.id == street) {
                    return Err(format!("no street {street:?} (or \"*\" for all)"));
                }
                if *for_s == 0 {
                    return Err("for_s must be ≥ 1".into());
                }
            }
        }
        Ok(())
    }

    /// The street a room id belongs to, if the room exists.
    fn room(&self, room: &str) -> Result<&Street, String> {
        let bad = || {
            format!(
                "room {room:?}: expected STREET-CELL-SITE-ROOM of this scenario (ROOM may be \
                 `feeder` on a street with feeders), e.g. \"{}-1-1-1\"",
                self.streets.first().map_or("xh", |s| s.id.as_str())
            )
        };
        let mut parts = room.split('-');
        let (Some(street), Some(c), Some(s), Some(r), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let street = self
            .streets
            .iter()
            .find(|x| x.id == street)
            .ok_or_else(bad)?;
        let n = |v: &str, max: u32| v.parse::<u32>().ok().filter(|n| (1..=max).contains(n));
        // A site's feeder ([`Street::feeders`]) is a place incidents may name too.
        let room_or_feeder =
            n(r, street.rooms_per_site).or((street.feeders && r == "feeder").then_some(0));
        match (
            n(c, street.cells),
            n(s, street.sites_per_cell),
            room_or_feeder,
        ) {
            (Some(_), Some(_), Some(_)) => Ok(street),
            _ => Err(bad()),
        }
    }

    /// Expands the scenario into devices and schedules. Pure: the same scenario gives the
    /// same plan.
    pub fn plan(&self) -> Plan {
        let mut rng = XorShift64::new(self.seed);
        let d = &self.devices;
        let mut devices = Vec::new();
        let mut streets = Vec::new();
        for st in &self.streets {
            let mut street_devices = Vec::new();
            for c in 1..=st.cells {
                for s in 1..=st.sites_per_cell {
                    for r in 1..=st.rooms_per_site {
                        let room = format!("{}-{c}-{s}-{r}", st.id);
                        let [lo, hi] = d.base_leakage_ma;
                        let base = lo + (hi - lo) * rng.next_f64();
                        let mut models = Models::typical(LeakageModel::steady(base));
                        models.circuit.load_a = d.load_a;
                        models.circuit.phase_rad = rng.next_f64() * core::f64::consts::TAU;
                        street_devices.push(devices.len());
                        devices.push(PlannedDevice {
                            id: format!("{room}-m"),
                            kind: DeviceKind::Monitor,
                            street: st.id.clone(),
                            cell: c,
                            site: s,
                            room: room.clone(),
                            feeder: false,
                            seed: rng.next_u64(),
                            models,
                        });
                        if st.smoke_alarms {
                            street_devices.push(devices.len());
                            devices.push(PlannedDevice {
                                id: format!("{room}-s"),
                                kind: DeviceKind::SmokeAlarm,
                                street: st.id.clone(),
                                cell: c,
                                site: s,
                                room,
                                feeder: false,
                                seed: rng.next_u64(),
                                models: smoke_alarm_models(),
                            });
                        }
                    }
                    if st.feeders {
                        let [lo, hi] = d.base_leakage_ma;
                        let mut models =
                            Models::typical(LeakageModel::steady(lo + (hi - lo) * rng.next_f64()));
                        models.circuit.load_a = d.load_a;
                        street_devices.push(devices.len());
                        devices.push(PlannedDevice {
                            id: format!("{}-{c}-{s}-feeder", st.id),
                            kind: DeviceKind::Monitor,
                            street: st.id.clone(),
                            cell: c,
                            site: s,
                            room: format!("{}-{c}-{s}-feeder", st.id),
                            feeder: true,
                            seed: rng.next_u64(),
                            models,
                        });
                    }
                }
            }
            streets.push(StreetPlan {
                id: st.id.clone(),
                devices: street_devices,
                outages: Vec::new(),
                power_cuts: Vec::new(),
            });
        }
        let mut plan = Plan {
            devices,
            streets,
            settings: d.clone(),
        };
        for incident in &self.incidents {
            plan.apply(incident);
        }
        plan.feed_branches();
        plan
    }
}

/// A smoke alarm's world: no circuit to speak of, no smoke yet, its 3 V cell holding.
fn smoke_alarm_models() -> Models {
    let mut models = Models::typical(LeakageModel::steady(0.0));
    models.smoke = Some(SmokeModel::default());
    models
}

/// What kind of device a [`PlannedDevice`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// An electrical-fire monitor: residual current on channel 0, temperatures on 1–4.
    Monitor,
    /// An independent smoke alarm.
    SmokeAlarm,
}

impl DeviceKind {
    /// The firmware layout.
    pub fn layout(self) -> Layout {
        match self {
            Self::Monitor => Layout::typical_monitor(),
            Self::SmokeAlarm => Layout::smoke_alarm(),
        }
    }

    /// The kind's name in the gateway's API.
    pub const fn api_name(self) -> &'static str {
        match self {
            Self::Monitor => "electrical_fire_monitor",
            Self::SmokeAlarm => "smoke_alarm",
        }
    }
}

/// One device of a plan.
#[derive(Debug, Clone)]
pub struct PlannedDevice {
    /// Its id.
    pub id: String,
    /// What it is.
    pub kind: DeviceKind,
    /// Its street's id.
    pub street: String,
    /// Grid cell number on the street, from 1.
    pub cell: u32,
    /// Site number in the cell, from 1.
    pub site: u32,
    /// Its room's id (a feeder's: `{site key}-feeder`, a place that is not a room).
    pub room: String,
    /// Whether it is its site's feeder monitor ([`Street::feeders`]).
    pub feeder: bool,
    /// Seed of its chips' noise and its backoff jitter.
    pub seed: u64,
    /// Its world, incidents included, in model time from the simulator's start.
    pub models: Models,
}

impl PlannedDevice {
    /// The grid cell's id.
    pub fn grid_id(&self) -> String {
        format!("{}-{}", self.street, self.cell)
    }

    /// The site's key (`street-cell-site`).
    pub fn site_key(&self) -> String {
        format!("{}-{}-{}", self.street, self.cell, self.site)
    }
}

/// A street's devices and schedules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreetPlan {
    /// The street's id.
    pub id: String,
    /// Indexes into [`Plan::devices`].
    pub devices: Vec<usize>,
    /// Network outages: (from, until) ms after start.
    pub outages: Vec<(u64, u64)>,
    /// Power cuts: (from, until) ms after start.
    pub power_cuts: Vec<(u64, u64)>,
}

impl StreetPlan {
    /// Whether the network is down at `now_ms`.
    pub fn network_down(&self, now_ms: u64) -> bool {
        self.outages.iter().any(|&(a, b)| (a..b).contains(&now_ms))
    }

    /// Whether the power is off at `now_ms`.
    pub fn power_off(&self, now_ms: u64) -> bool {
        self.power_cuts
            .iter()
            .any(|&(a, b)| (a..b).contains(&now_ms))
    }

    /// The next time after `now_ms` at which the network or power changes, ms.
    pub fn next_change(&self, now_ms: u64) -> Option<u64> {
        self.outages
            .iter()
            .chain(&self.power_cuts)
            .flat_map(|&(a, b)| [a, b])
            .filter(|&t| t > now_ms)
            .min()
    }
}

/// A scenario expanded: every device and every street's schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    /// All devices, street by street.
    pub devices: Vec<PlannedDevice>,
    /// The streets, in file order.
    pub streets: Vec<StreetPlan>,
    /// The device settings.
    pub settings: DeviceSettings,
}

impl Plan {
    /// Gives each feeder monitor its site's room circuits' leakage (incidents included).
    fn feed_branches(&mut self) {
        let mut by_site: std::collections::HashMap<String, Vec<LeakageModel>> =
            std::collections::HashMap::new();
        for d in &self.devices {
            if d.kind == DeviceKind::Monitor && !d.feeder {
                by_site
                    .entry(d.site_key())
                    .or_default()
                    .push(d.models.circuit.leakage);
            }
        }
        for d in self.devices.iter_mut().filter(|d| d.feeder) {
            d.models.circuit.branches = by_site.remove(&d.site_key()).unwrap_or_default();
        }
    }

    fn room_devices(&mut self, room: &str) -> impl Iterator<Item = &mut PlannedDevice> {
        self.devices.iter_mut().filter(move |d| d.room == room)
    }

    fn apply(&mut self, incident: &Incident) {
        const S: u64 = 1_000;
        match incident {
            Incident::LeakageCreep {
                at_s,
                room,
                ma_per_min,
                max_ma,
            } => {
                for d in self.room_devices(room) {
                    if d.kind == DeviceKind::Monitor {
                        let leak = &mut d.models.circuit.leakage;
                        *leak = LeakageModel {
                            base_ma: leak.base_ma,
                            creep_ma_per_min: *ma_per_min,
                            creep_from_ms: at_s * S,
                            max_ma: max_ma.max(leak.base_ma),
                        };
                    }
                }
            }
            Incident::Smoke { at_s, room, for_s } => {
                for d in self.room_devices(room) {
                    if let Some(smoke) = &mut d.models.smoke {
                        smoke.episodes.push((at_s * S, for_s * S));
                    }
                }
            }
            Incident::LooseTerminal { at_s, room, ch } => {
                for d in self.room_devices(room) {
                    if d.kind == DeviceKind::Monitor {
                        let i = usize::from(ch.saturating_sub(1)).min(3);
                        let faults = d.models.terminals[i].probe_faults.clone();
                        d.models.terminals[i] = TerminalModel::loose(at_s * S);
                        d.models.terminals[i].probe_faults = faults;
                    }
                }
            }
            Incident::LeadOpen {
                at_s,
                room,
                ch,
                for_s,
            } => {
                let window = FaultWindow {
                    state: LeadState::Open,
                    from_ms: at_s * S,
                    until_ms: for_s.map(|f| (at_s + f) * S),
                };
                for d in self.room_devices(room) {
                    if d.kind == DeviceKind::Monitor {
                        match ch {
                            0 => d.models.circuit.ct_faults.push(window),
                            c => {
                                let i = usize::from(c - 1).min(3);
                                d.models.terminals[i].probe_faults.push(window);
                            }
                        }
                    }
                }
            }
            Incident::BatteryDrain {
                at_s,
                room,
                mv_per_min,
            } => {
                for d in self.room_devices(room) {
                    if d.kind == DeviceKind::SmokeAlarm
                        && let Some(battery) = &mut d.models.battery
                    {
                        battery.drain_mv_per_day = mv_per_min * 1_440.0;
                        battery.from_ms = at_s * S;
                    }
                }
            }
            Incident::NetworkOutage {
                at_s,
                street,
                for_s,
            } => self.add_window(street, (at_s * S, (at_s + for_s) * S), |st| &mut st.outages),
            Incident::PowerCut {
                at_s,
                street,
                for_s,
            } => self.add_window(street, (at_s * S, (at_s + for_s) * S), |st| {
                &mut st.power_cuts
            }),
        }
    }

    /// Adds `window` to the list `pick` chooses of `street` (or of every street for `*`).
    fn add_window(
        &mut self,
        street: &str,
        window: (u64, u64),
        pick: impl Fn(&mut StreetPlan) -> &mut Vec<(u64, u64)>,
    ) {
        for st in &mut self.streets {
            if street == "*" || st.id == street {
                pick(st).push(window);
            }
        }
    }

    /// The circuit model of a monitor, for tests and reports.
    pub fn circuit(&self, device: &str) -> Option<&CircuitModel> {
        self.devices
            .iter()
            .find(|d| d.id == device)
            .map(|d| &d.models.circuit)
    }
}

#[cfg(test)]
mod tests;
