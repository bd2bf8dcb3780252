//! Physical models behind the simulated sensors: pure and deterministic.
//!
//! Every function takes the simulated time explicitly (ms since the simulation's epoch, e.g.
//! midnight of day 0, so 09:00 is `9 * HOUR_MS`; waveform samples take µs). Randomness comes
//! only from a caller-owned, seeded [`XorShift64`]. Nothing here has global state.
//!
//! - [`CircuitModel`]: the residual (leakage) current of a circuit, creeping at a rate from a
//!   start time, as the 50 Hz waveform a 1000:1 zero-sequence CT turns into a voltage across
//!   its 100 Ω burden, plus the DC bias of the board's lead-fault network, and the CT lead
//!   faults (open: input driven to ≈ 2 V; short: exactly 0 V). See the firmware's
//!   `drivers::residual` for the reference design these numbers copy.
//! - [`TerminalModel`]: a terminal's temperature, first-order toward ambient + k·I², and its
//!   NTC probe's lead faults; [`ntc_resistance_ohm`] gives the probe resistance.
//! - [`SmokeModel`]: smoke present from a time for a duration.
//! - [`BatteryModel`]: a battery draining linearly, with its low level.

/// One second, ms.
pub const SECOND_MS: u64 = 1_000;
/// One minute, ms.
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
/// One hour, ms.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One day, ms.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// A small, seeded PRNG (Marsaglia xorshift64): deterministic noise for one simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator from `seed` (0, which xorshift cannot leave, is replaced by a constant).
    pub const fn new(seed: u64) -> Self {
        XorShift64 {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// Uniform in \[0, 1).
    pub fn next_f64(&mut self) -> f64 {
        // 53 random bits → the mantissa of a double in [0, 1).
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Approximately normal, mean 0, standard deviation 1 (Irwin–Hall: the sum of four
    /// uniforms, scaled; bounded to ±√12 ≈ 3.5 σ, enough for sensor noise).
    pub fn next_gaussian(&mut self) -> f64 {
        let sum: f64 = (0..4).map(|_| self.next_f64() - 0.5).sum();
        sum * 3.0_f64.sqrt()
    }
}

/// The state of a sensor lead (the CT's secondary leads or an NTC probe's leads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeadState {
    /// Connected and sound.
    #[default]
    Ok,
    /// Broken or unplugged.
    Open,
    /// Shorted.
    Short,
}

/// A lead fault over a span of time: `state` from `from_ms` until `until_ms` (exclusive;
/// `None`: for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultWindow {
    /// The lead's state during the window ([`LeadState::Open`] or [`LeadState::Short`]).
    pub state: LeadState,
    /// Start, ms.
    pub from_ms: u64,
    /// End (exclusive), ms; `None` for a permanent fault.
    pub until_ms: Option<u64>,
}

impl FaultWindow {
    /// A fault that starts at `from_ms` and stays.
    pub const fn from(state: LeadState, from_ms: u64) -> Self {
        FaultWindow {
            state,
            from_ms,
            until_ms: None,
        }
    }

    /// Whether the window covers `now_ms`.
    pub fn covers(&self, now_ms: u64) -> bool {
        now_ms >= self.from_ms && self.until_ms.is_none_or(|end| now_ms < end)
    }
}

/// The lead state at `now_ms` given a list of fault windows: the last window covering
/// `now_ms` wins; [`LeadState::Ok`] if none does.
pub fn lead_state_at(faults: &[FaultWindow], now_ms: u64) -> LeadState {
    faults
        .iter()
        .rev()
        .find(|f| f.covers(now_ms))
        .map_or(LeadState::Ok, |f| f.state)
}

/// Residual current: a base level plus a linear creep from a start time, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakageModel {
    /// Leakage before the creep starts, mA RMS.
    pub base_ma: f64,
    /// Creep rate, mA per minute (0: steady).
    pub creep_ma_per_min: f64,
    /// When the creep starts, ms.
    pub creep_from_ms: u64,
    /// The leakage never exceeds this, mA RMS.
    pub max_ma: f64,
}

impl LeakageModel {
    /// A steady leakage of `ma` mA RMS.
    pub const fn steady(ma: f64) -> Self {
        LeakageModel {
            base_ma: ma,
            creep_ma_per_min: 0.0,
            creep_from_ms: 0,
            max_ma: f64::INFINITY,
        }
    }

    /// `base_ma`, creeping up by `ma_per_min` from `from_ms` (no cap).
    pub const fn creeping(base_ma: f64, ma_per_min: f64, from_ms: u64) -> Self {
        LeakageModel {
            base_ma,
            creep_ma_per_min: ma_per_min,
            creep_from_ms: from_ms,
            max_ma: f64::INFINITY,
        }
    }

    /// The leakage at `now_ms`, mA RMS (never negative).
    pub fn ma_at(&self, now_ms: u64) -> f64 {
        let minutes = now_ms.saturating_sub(self.creep_from_ms) as f64 / MINUTE_MS as f64;
        (self.base_ma + self.creep_ma_per_min * minutes)
            .min(self.max_ma)
            .max(0.0)
    }
}

/// The zero-sequence CT and the board's input network (the firmware's reference design,
/// `drivers::residual`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CtModel {
    /// Turns ratio N: secondary = primary / N.
    pub ratio: f64,
    /// Burden resistor in the CT housing, Ω.
    pub burden_ohm: f64,
    /// DC offset of the bias network with the CT connected, µV: ≈ 16.5 µA through
    /// burden ∥ winding (100 Ω ∥ 30 Ω ≈ 23.1 Ω) ≈ 381 µV.
    pub bias_offset_uv: f64,
    /// Input voltage with the CT open, µV: the bias pulls the inputs ≈ 2 V apart.
    pub open_uv: f64,
}

impl CtModel {
    /// 1000:1, 100 Ω, bias 16.5 µA × 23.08 Ω, open at 2 V.
    pub const REFERENCE: CtModel = CtModel {
        ratio: 1000.0,
        burden_ohm: 100.0,
        bias_offset_uv: 16.5 * (100.0 * 30.0 / 130.0),
        open_uv: 2_000_000.0,
    };
}

/// A circuit as the residual-current channel sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitModel {
    /// The residual current over time.
    pub leakage: LeakageModel,
    /// The leakage of the circuits fed through this one (a feeder's branches), added to its
    /// own: a residual-current monitor at a feeder's head sees everything downstream (in
    /// phase: insulation leakage is mostly resistive).
    pub branches: Vec<LeakageModel>,
    /// Mains frequency, Hz (50).
    pub mains_hz: f64,
    /// Phase of the residual current at t = 0, rad.
    pub phase_rad: f64,
    /// Noise on the residual current, mA RMS (primary side).
    pub noise_ma_rms: f64,
    /// The circuit's load current, A RMS: heats its terminals ([`TerminalModel`]).
    pub load_a: f64,
    /// The CT and input network.
    pub ct: CtModel,
    /// CT lead faults.
    pub ct_faults: Vec<FaultWindow>,
}

impl CircuitModel {
    /// A circuit with `leakage`, 50 Hz, 0.2 mA RMS noise, 10 A load, the reference CT, no
    /// faults.
    pub fn new(leakage: LeakageModel) -> Self {
        CircuitModel {
            leakage,
            branches: Vec::new(),
            mains_hz: 50.0,
            phase_rad: 0.0,
            noise_ma_rms: 0.2,
            load_a: 10.0,
            ct: CtModel::REFERENCE,
            ct_faults: Vec::new(),
        }
    }

    /// The residual current's RMS at `now_ms`, mA (without noise): its own leakage and its
    /// branches'.
    pub fn leakage_ma(&self, now_ms: u64) -> f64 {
        self.leakage.ma_at(now_ms) + self.branches.iter().map(|b| b.ma_at(now_ms)).sum::<f64>()
    }

    /// The CT lead state at `now_ms`.
    pub fn ct_state(&self, now_ms: u64) -> LeadState {
        lead_state_at(&self.ct_faults, now_ms)
    }

    /// The instantaneous primary residual current at `t_us`, mA: a sine of the RMS at that
    /// time, plus noise.
    pub fn residual_instant_ma(&self, t_us: u64, rng: &mut XorShift64) -> f64 {
        let t_s = t_us as f64 / 1e6;
        let angle = core::f64::consts::TAU * self.mains_hz * t_s + self.phase_rad;
        let rms = self.leakage_ma(t_us / 1000);
        core::f64::consts::SQRT_2 * rms * angle.sin() + self.noise_ma_rms * rng.next_gaussian()
    }

    /// The differential voltage at the ADC input (AIN0P − AIN0N) at `t_us`, µV: the CT's
    /// secondary current through the burden plus the bias offset; ≈ 2 V with the CT open,
    /// exactly 0 with it shorted.
    pub fn adc_input_uv(&self, t_us: u64, rng: &mut XorShift64) -> f64 {
        match self.ct_state(t_us / 1000) {
            LeadState::Open => self.ct.open_uv,
            LeadState::Short => 0.0,
            LeadState::Ok => {
                let secondary_ma = self.residual_instant_ma(t_us, rng) / self.ct.ratio;
                // mA × Ω = mV; × 1000 → µV.
                self.ct.bias_offset_uv + secondary_ma * self.ct.burden_ohm * 1000.0
            }
        }
    }
}

/// Ambient temperature of the reference scenario, °C.
pub const AMBIENT_C: f64 = 25.0;

/// Thermal time constant of a terminal block, ms (10 min: a few tens of grams of brass and
/// plastic in a distribution box).
pub const TERMINAL_TAU_MS: u64 = 10 * MINUTE_MS;

/// Temperature rise per A² of a sound terminal, K/A²: k = R_contact × R_thermal ≈ 0.5 mΩ ×
/// 80 K/W = 0.04, so 16 A gives ≈ 10 K.
pub const K_SOUND_C_PER_A2: f64 = 0.04;

/// Temperature rise per A² of a loose terminal, K/A²: contact resistance ≈ 4 mΩ, so 16 A gives
/// ≈ 82 K (≈ 107 °C).
pub const K_LOOSE_C_PER_A2: f64 = 0.32;

/// A terminal's temperature: first order, dT/dt = (ambient + k·I² − T) / τ, solved exactly for
/// a load constant between two calls of [`TerminalModel::advance`]; and its probe's faults.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalModel {
    /// Ambient temperature, °C.
    pub ambient_c: f64,
    /// Steady-state rise per A² of load, K/A².
    pub k_c_per_a2: f64,
    /// Time constant, ms.
    pub tau_ms: u64,
    /// NTC probe lead faults.
    pub probe_faults: Vec<FaultWindow>,
    temp_c: f64,
    last_ms: u64,
}

impl TerminalModel {
    /// A terminal at ambient at `start_ms`, with no probe faults.
    pub fn new(ambient_c: f64, k_c_per_a2: f64, tau_ms: u64, start_ms: u64) -> Self {
        TerminalModel {
            ambient_c,
            k_c_per_a2,
            tau_ms,
            probe_faults: Vec::new(),
            temp_c: ambient_c,
            last_ms: start_ms,
        }
    }

    /// A sound terminal: [`AMBIENT_C`], [`K_SOUND_C_PER_A2`], [`TERMINAL_TAU_MS`].
    pub fn sound(start_ms: u64) -> Self {
        Self::new(AMBIENT_C, K_SOUND_C_PER_A2, TERMINAL_TAU_MS, start_ms)
    }

    /// A loose terminal: [`AMBIENT_C`], [`K_LOOSE_C_PER_A2`], [`TERMINAL_TAU_MS`].
    pub fn loose(start_ms: u64) -> Self {
        Self::new(AMBIENT_C, K_LOOSE_C_PER_A2, TERMINAL_TAU_MS, start_ms)
    }

    /// The temperature the terminal tends to under `load_a`, °C.
    pub fn steady_state_c(&self, load_a: f64) -> f64 {
        self.ambient_c + self.k_c_per_a2 * load_a * load_a
    }

    /// The temperature at the last [`advance`](Self::advance), °C.
    pub const fn temperature_c(&self) -> f64 {
        self.temp_c
    }

    /// Advances to `now_ms` with `load_a` flowing since the last call; returns the
    /// temperature, °C. A time earlier than the last one changes nothing.
    pub fn advance(&mut self, now_ms: u64, load_a: f64) -> f64 {
        let dt = now_ms.saturating_sub(self.last_ms) as f64;
        self.last_ms = self.last_ms.max(now_ms);
        let target = self.steady_state_c(load_a);
        let decay = if self.tau_ms == 0 {
            0.0
        } else {
            (-dt / self.tau_ms as f64).exp()
        };
        self.temp_c = target + (self.temp_c - target) * decay;
        self.temp_c
    }

    /// The probe's lead state at `now_ms`.
    pub fn probe_state(&self, now_ms: u64) -> LeadState {
        lead_state_at(&self.probe_faults, now_ms)
    }
}

/// The NTC probe's resistance at `temp_c`, Ω: Beta equation, R25 = 10 kΩ, B = 3950 K (the
/// firmware's `drivers::ntc` probe).
pub fn ntc_resistance_ohm(temp_c: f64) -> f64 {
    const T25_K: f64 = 298.15;
    let r25 = f64::from(firegrid_firmware::drivers::ntc::R25_OHM);
    let beta = f64::from(firegrid_firmware::drivers::ntc::BETA_K);
    r25 * (beta * (1.0 / (temp_c + 273.15) - 1.0 / T25_K)).exp()
}

/// Smoke episodes: smoke present from `from_ms` for `duration_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmokeModel {
    /// (from_ms, duration_ms) of each episode.
    pub episodes: Vec<(u64, u64)>,
}

impl SmokeModel {
    /// One episode.
    pub fn once(from_ms: u64, duration_ms: u64) -> Self {
        SmokeModel {
            episodes: vec![(from_ms, duration_ms)],
        }
    }

    /// Whether there is smoke at `now_ms` (the alarm sounds and drives its alarm output).
    pub fn present(&self, now_ms: u64) -> bool {
        self.episodes
            .iter()
            .any(|&(from, dur)| now_ms >= from && now_ms - from < dur)
    }
}

/// A battery draining linearly from `full_mv` at `from_ms`, low at or below `low_mv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryModel {
    /// Voltage at `from_ms`, mV.
    pub full_mv: f64,
    /// Drain, mV per day.
    pub drain_mv_per_day: f64,
    /// Low-battery level, mV.
    pub low_mv: f64,
    /// When the battery is at `full_mv`, ms.
    pub from_ms: u64,
}

impl BatteryModel {
    /// A 9 V alarm battery: 9000 mV, draining `drain_mv_per_day`, low at 7500 mV.
    pub const fn nine_volt(drain_mv_per_day: f64, from_ms: u64) -> Self {
        BatteryModel {
            full_mv: 9_000.0,
            drain_mv_per_day,
            low_mv: 7_500.0,
            from_ms,
        }
    }

    /// The voltage at `now_ms`, mV (never negative).
    pub fn voltage_mv(&self, now_ms: u64) -> f64 {
        let days = now_ms.saturating_sub(self.from_ms) as f64 / DAY_MS as f64;
        (self.full_mv - self.drain_mv_per_day * days).max(0.0)
    }

    /// Whether the battery is low at `now_ms` (the alarm drives its battery-low output).
    pub fn is_low(&self, now_ms: u64) -> bool {
        self.voltage_mv(now_ms) <= self.low_mv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leakage_creeping_5_ma_per_min_from_0900() {
        let model = LeakageModel::creeping(10.0, 5.0, 9 * HOUR_MS);
        assert_eq!(model.ma_at(8 * HOUR_MS), 10.0);
        assert_eq!(model.ma_at(9 * HOUR_MS), 10.0);
        assert!((model.ma_at(9 * HOUR_MS + 10 * MINUTE_MS) - 60.0).abs() < 1e-9);
        assert!((model.ma_at(9 * HOUR_MS + 30 * SECOND_MS) - 12.5).abs() < 1e-9);
        let capped = LeakageModel {
            max_ma: 30.0,
            ..model
        };
        assert_eq!(capped.ma_at(10 * HOUR_MS), 30.0);
    }

    #[test]
    fn waveform_rms_is_the_leakage() {
        let mut circuit = CircuitModel::new(LeakageModel::steady(300.0));
        circuit.noise_ma_rms = 0.0;
        let mut rng = XorShift64::new(1);
        // One 50 Hz cycle at 4 kSPS: 80 samples, 250 µs apart.
        let sq: f64 = (0..80)
            .map(|i| circuit.residual_instant_ma(i * 250, &mut rng).powi(2))
            .sum();
        assert!(((sq / 80.0).sqrt() - 300.0).abs() < 1e-6);
        // 300 mA → 0.3 mA secondary → 30 mV RMS + bias offset at the ADC.
        let v_peak = circuit.adc_input_uv(5_000, &mut rng) - circuit.ct.bias_offset_uv;
        assert!((v_peak - 30_000.0 * core::f64::consts::SQRT_2).abs() < 1e-3);
    }

    #[test]
    fn temperature_approaches_steady_state_with_its_time_constant() {
        let mut t = TerminalModel::loose(0);
        let load = 16.0;
        let steady = t.steady_state_c(load);
        assert!((steady - (25.0 + 0.32 * 256.0)).abs() < 1e-9);
        // After one τ: 63.2 % of the way; after 5 τ: within 1 %.
        let one_tau = t.advance(TERMINAL_TAU_MS, load);
        let expected = 25.0 + (steady - 25.0) * (1.0 - (-1.0_f64).exp());
        assert!((one_tau - expected).abs() < 1e-9, "{one_tau} vs {expected}");
        // Stepping in small increments gives the same as one step (exact solution).
        let mut stepped = TerminalModel::loose(0);
        for s in 1..=600 {
            stepped.advance(s * SECOND_MS, load);
        }
        assert!((stepped.temperature_c() - expected).abs() < 1e-9);
        let later = t.advance(5 * TERMINAL_TAU_MS, load);
        assert!((steady - later) / (steady - 25.0) < 0.01);
        // Load off: cools back toward ambient with the same τ.
        let hot = later;
        let cooled = t.advance(6 * TERMINAL_TAU_MS, 0.0);
        assert!((cooled - (25.0 + (hot - 25.0) * (-1.0_f64).exp())).abs() < 1e-9);
        // A sound terminal at the same load stays near 35 °C.
        let mut sound = TerminalModel::sound(0);
        assert!((sound.advance(10 * TERMINAL_TAU_MS, load) - 35.24).abs() < 0.01);
    }

    #[test]
    fn faults_switch_at_their_times() {
        let mut circuit = CircuitModel::new(LeakageModel::steady(0.0));
        circuit.ct_faults = vec![
            FaultWindow {
                state: LeadState::Open,
                from_ms: 1_000,
                until_ms: Some(2_000),
            },
            FaultWindow::from(LeadState::Short, 5_000),
        ];
        assert_eq!(circuit.ct_state(999), LeadState::Ok);
        assert_eq!(circuit.ct_state(1_000), LeadState::Open);
        assert_eq!(circuit.ct_state(1_999), LeadState::Open);
        assert_eq!(circuit.ct_state(2_000), LeadState::Ok);
        assert_eq!(circuit.ct_state(4_999), LeadState::Ok);
        assert_eq!(circuit.ct_state(5_000), LeadState::Short);
        assert_eq!(circuit.ct_state(DAY_MS), LeadState::Short);
        let mut rng = XorShift64::new(7);
        assert_eq!(circuit.adc_input_uv(1_500_000, &mut rng), 2_000_000.0);
        assert_eq!(circuit.adc_input_uv(5_000_000, &mut rng), 0.0);

        let mut terminal = TerminalModel::sound(0);
        terminal.probe_faults = vec![FaultWindow::from(LeadState::Open, HOUR_MS)];
        assert_eq!(terminal.probe_state(HOUR_MS - 1), LeadState::Ok);
        assert_eq!(terminal.probe_state(HOUR_MS), LeadState::Open);
    }

    #[test]
    fn smoke_and_battery() {
        let smoke = SmokeModel::once(10 * MINUTE_MS, MINUTE_MS);
        assert!(!smoke.present(10 * MINUTE_MS - 1));
        assert!(smoke.present(10 * MINUTE_MS));
        assert!(smoke.present(11 * MINUTE_MS - 1));
        assert!(!smoke.present(11 * MINUTE_MS));
        assert!(!SmokeModel::default().present(0));

        // 9000 mV draining 15 mV/day: low (7500 mV) after exactly 100 days.
        let battery = BatteryModel::nine_volt(15.0, 0);
        assert!((battery.voltage_mv(10 * DAY_MS) - 8_850.0).abs() < 1e-9);
        assert!(!battery.is_low(100 * DAY_MS - 1));
        assert!(battery.is_low(100 * DAY_MS));
    }

    #[test]
    fn ntc_resistance_matches_the_firmware_table() {
        use firegrid_firmware::drivers::ntc::{RT_TABLE, TABLE_FIRST_DC, TABLE_STEP_DC};
        for (i, &deci_ohm) in RT_TABLE.iter().enumerate() {
            let c = f64::from(TABLE_FIRST_DC + TABLE_STEP_DC * i as i16) / 10.0;
            let r = ntc_resistance_ohm(c) * 10.0;
            assert!(
                (r - f64::from(deci_ohm)).abs() <= 1.0,
                "{c} °C: {r} vs {deci_ohm}"
            );
        }
    }

    #[test]
    fn prng_is_deterministic_and_roughly_normal() {
        let mut a = XorShift64::new(42);
        let mut b = XorShift64::new(42);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| a.next_gaussian()).collect();
        let mean = xs.iter().sum::<f64>() / f64::from(n);
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n);
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
