//! Residual-current true-RMS calculator and CT lead-fault detection: pure, no bus.
//!
//! Feed it channel 0 of the [`ads131m02`](super::ads131m02) sample by sample
//! ([`RmsCalculator::push`]); after every window of whole mains cycles it returns either the
//! residual current in mA or why the channel cannot measure ([`FaultCause`]).
//!
//! # Signal chain and calibration
//!
//! A zero-sequence current transformer (ZCT) encloses the circuit's line and neutral; its
//! primary current is the residual (leakage) current. Its secondary current, primary /
//! [`CtCalibration::ct_ratio`] (1000:1 in the reference design), flows through the burden
//! resistor [`CtCalibration::burden_milliohm`] (100 Ω), whose voltage the ADC samples at gain
//! [`CtCalibration::gain`] (4: full scale ±300 mV; one code = 1.2 V / 4 / 2²³ ≈ 35.8 nV):
//!
//! ```text
//! V_rms[µV]  = rms_codes × VREF[µV] / (gain × 2²³)
//! I_prim[mA] = V_rms[µV] × ct_ratio / burden[mΩ]
//! ```
//!
//! So 300 mA primary → 0.3 mA secondary → 30 mV rms across 100 Ω → ≈ 839 000 codes rms. The
//! largest undistorted sine is 300 mV peak = 212 mV rms → 2.12 A primary, twice the highest
//! GB 14287.2 set-point (1000 mA); beyond it the ADC clips and the reading is a lower bound
//! (counted in [`ResidualReading::clipped_samples`]).
//!
//! # Window
//!
//! The RMS is taken over [`RmsConfig::cycles_per_window`] whole mains cycles (10 cycles =
//! 200 ms at 50 Hz, the IEC 61000-4-30 aggregation window), samples per cycle = sample rate /
//! mains frequency (4000 / 50 = 80). Whole cycles make the RMS of a steady sine exact and the
//! mean an exact DC estimate; a trailing partial cycle is never counted
//! ([`RmsCalculator::finish`] drops it). The mean is subtracted (DC-offset removal: ADC offset
//! and the bias below), so this measures AC residual current (type AC); the RMS includes
//! harmonics up to the Nyquist frequency (2 kHz). The grid's ±0.5 Hz frequency tolerance leaves
//! a window a fraction of a cycle off, an RMS error well under 1 %.
//!
//! # Lead faults: electrical assumption (bias network)
//!
//! A burden resistor on the board would hide a broken CT lead (an open CT then reads like zero
//! current). The reference design therefore puts the **burden resistor inside the CT housing**,
//! across the winding, and adds a weak DC **bias network** on the board:
//!
//! ```text
//!   AVDD 3.3 V ── 100 kΩ ──┬── AIN0P ──── lead ────┬───────┐
//!                          │                       │ CT    │ burden 100 Ω
//!   AGND ──────── 100 kΩ ──┴── AIN0N ──── lead ────┴───────┘ (in the CT housing)
//! ```
//!
//! - **CT connected**: the ≈16.5 µA bias current flows through burden ∥ winding (≈ 23 Ω with a
//!   30 Ω winding), a DC offset of ≈ 0.4 mV ≈ 10 600 codes: far from both thresholds below, and
//!   removed with the mean before the RMS.
//! - **CT open** (lead broken, CT unplugged): nothing ties AIN0P to AIN0N; the bias pulls the
//!   inputs apart to ≈ 2 V, far past full scale: the window's mean sits at the positive rail.
//!   Detected as |mean| ≥ [`LeadFaultThresholds::open_min_abs_mean`] (half of full scale; no
//!   CT signal has such a DC component — a CT does not pass DC) → [`FaultCause::LeadOpen`].
//! - **CT short** (leads or burden shorted): the input is 0 V exactly: the bias offset
//!   disappears and only the ADC's own noise remains. Detected as |mean| ≤
//!   [`LeadFaultThresholds::short_max_abs_mean`] **and** RMS ≤
//!   [`LeadFaultThresholds::short_max_rms`] over the whole window → [`FaultCause::LeadShort`].
//!   The variance alone cannot tell a short from a healthy CT on a circuit without leakage;
//!   the missing bias offset is what does. This needs the ADC offset well below the short
//!   threshold (≈ 72 µV at gain 4): calibrate it (CH0_OCAL) if a part is worse.
//!
//! The resistor values are the reference design's; a board with other values sets its own
//! [`LeadFaultThresholds`].

use firegrid_protocols::channel::FaultCause;

use super::ads131m02::{CODE_MAX, CODE_MIN, CODES_PER_FULL_SCALE, Gain, VREF_UV};

/// Mains frequency in Hangzhou (the whole of China): 50 Hz.
pub const MAINS_HZ: u32 = 50;

/// Most samples one window may hold: 2¹⁶. Bounds the sums (Σx² < 2⁶²) so that they cannot
/// overflow whatever the bus delivers.
pub const MAX_WINDOW_SAMPLES: u32 = 1 << 16;

/// Fewest samples per mains cycle accepted (a true RMS needs the waveform, not a few points).
pub const MIN_SAMPLES_PER_CYCLE: u32 = 8;

/// Conversion from ADC codes to primary residual current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtCalibration {
    /// CT turns ratio N: secondary current = primary / N (1000 for a 1000:1 ZCT).
    pub ct_ratio: u32,
    /// Burden resistor, mΩ (100 Ω = 100 000).
    pub burden_milliohm: u32,
    /// The ADC channel's PGA gain.
    pub gain: Gain,
    /// ADC reference voltage, µV (ADS131M02 internal reference: 1.2 V).
    pub vref_uv: u32,
}

impl CtCalibration {
    /// The reference design: 1000:1 ZCT, 100 Ω burden, gain 4, internal 1.2 V reference.
    pub const REFERENCE: CtCalibration = CtCalibration {
        ct_ratio: 1000,
        burden_milliohm: 100_000,
        gain: Gain::X4,
        vref_uv: VREF_UV,
    };

    /// Primary current in mA (rounded, saturating) for an RMS given as `rms_times_n / n`
    /// codes. Keeping the numerator unscaled avoids rounding the RMS to whole codes.
    fn milliamps(&self, rms_times_n: u128, n: u64) -> u32 {
        let num = rms_times_n
            .checked_mul(u128::from(self.vref_uv))
            .and_then(|v| v.checked_mul(u128::from(self.ct_ratio)));
        let den = u128::from(n)
            .checked_mul(u128::from(self.gain.factor()))
            .and_then(|v| v.checked_mul(u128::from(CODES_PER_FULL_SCALE)))
            .and_then(|v| v.checked_mul(u128::from(self.burden_milliohm)));
        match (num, den) {
            (Some(num), Some(den)) if den > 0 => {
                let rounded = num.saturating_add(den / 2).checked_div(den).unwrap_or(0);
                u32::try_from(rounded).unwrap_or(u32::MAX)
            }
            _ => u32::MAX,
        }
    }

    /// The primary RMS current in mA of a sine that just reaches full scale: the top of the
    /// measuring range (2121 mA for [`CtCalibration::REFERENCE`]).
    pub fn full_scale_sine_ma(&self) -> u32 {
        // FS/√2 in codes, times n = 1000 for resolution: 2²³ / √2 × 1000 ≈ 5 931 642 135.
        const FS_RMS_CODES_X1000: u128 = 5_931_642_135;
        self.milliamps(FS_RMS_CODES_X1000, 1000)
    }
}

/// Window statistics that decide a lead fault. All in ADC codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadFaultThresholds {
    /// CT open when |mean| ≥ this: the bias drives the input to a rail.
    pub open_min_abs_mean: u32,
    /// CT short needs |mean| ≤ this: the bias offset has disappeared.
    pub short_max_abs_mean: u32,
    /// CT short needs RMS (after mean removal) ≤ this: no signal, only ADC noise.
    pub short_max_rms: u32,
}

impl LeadFaultThresholds {
    /// For the reference bias network and gain 4 (one code ≈ 35.8 nV):
    /// open at half of full scale (2²² codes, 150 mV DC); short below 2000 codes mean
    /// (≈ 72 µV, a fifth of the ≈ 10 600-code bias offset) and 500 codes RMS (≈ 18 µV,
    /// ≈ 0.18 mA primary, several times the ADC noise).
    pub const REFERENCE: LeadFaultThresholds = LeadFaultThresholds {
        open_min_abs_mean: 1 << 22,
        short_max_abs_mean: 2_000,
        short_max_rms: 500,
    };
}

/// Settings of an [`RmsCalculator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RmsConfig {
    /// ADC output data rate, SPS (4000 with [`Config::RESIDUAL_CURRENT`]).
    ///
    /// [`Config::RESIDUAL_CURRENT`]: super::ads131m02::Config::RESIDUAL_CURRENT
    pub sample_rate_hz: u32,
    /// Mains frequency, Hz ([`MAINS_HZ`]).
    pub mains_hz: u32,
    /// Whole mains cycles per reading.
    pub cycles_per_window: u32,
    /// Codes → mA.
    pub calibration: CtCalibration,
    /// Lead-fault thresholds.
    pub faults: LeadFaultThresholds,
}

impl RmsConfig {
    /// 4 kSPS, 50 Hz, 10-cycle (200 ms) windows, reference calibration and thresholds.
    pub const REFERENCE: RmsConfig = RmsConfig {
        sample_rate_hz: 4000,
        mains_hz: MAINS_HZ,
        cycles_per_window: 10,
        calibration: CtCalibration::REFERENCE,
        faults: LeadFaultThresholds::REFERENCE,
    };
}

impl Default for RmsConfig {
    fn default() -> Self {
        RmsConfig::REFERENCE
    }
}

/// Why an [`RmsConfig`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmsConfigError {
    /// The sample rate is not a whole multiple of the mains frequency (or either is 0), so a
    /// window could not hold whole cycles.
    NotWholeSamplesPerCycle,
    /// Fewer than [`MIN_SAMPLES_PER_CYCLE`] samples per cycle.
    TooFewSamplesPerCycle,
    /// `cycles_per_window` is 0.
    NoCycles,
    /// The window would exceed [`MAX_WINDOW_SAMPLES`].
    WindowTooLong,
    /// CT ratio or burden resistance is 0.
    BadCalibration,
}

/// One window's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidualReading {
    /// True-RMS primary residual current, mA (rounded).
    pub milliamps: u32,
    /// RMS after mean removal, codes (rounded).
    pub rms_codes: u32,
    /// Window mean (DC offset), codes.
    pub mean_codes: i32,
    /// Samples at either rail: when non-zero the current exceeded the range and
    /// [`ResidualReading::milliamps`] is a lower bound.
    pub clipped_samples: u32,
    /// Samples in the window (whole cycles only).
    pub samples: u32,
}

/// Running sums over samples: enough to get mean and RMS exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowStats {
    /// Number of samples.
    pub samples: u32,
    /// Σx.
    pub sum: i64,
    /// Σx².
    pub sum_squares: u64,
    /// Samples at [`CODE_MAX`] or [`CODE_MIN`].
    pub clipped: u32,
}

impl WindowStats {
    /// Adds one sample, clamped to the 24-bit code range first.
    pub fn add(&mut self, sample: i32) {
        let x = sample.clamp(CODE_MIN, CODE_MAX);
        if x == CODE_MAX || x == CODE_MIN {
            self.clipped = self.clipped.saturating_add(1);
        }
        self.samples = self.samples.saturating_add(1);
        self.sum = self.sum.saturating_add(i64::from(x));
        self.sum_squares = self
            .sum_squares
            .saturating_add(i64::from(x).unsigned_abs().saturating_pow(2));
    }

    /// Adds another window's sums to this one.
    pub fn merge(&mut self, other: &WindowStats) {
        self.samples = self.samples.saturating_add(other.samples);
        self.sum = self.sum.saturating_add(other.sum);
        self.sum_squares = self.sum_squares.saturating_add(other.sum_squares);
        self.clipped = self.clipped.saturating_add(other.clipped);
    }

    /// Lead-fault check, then true RMS (mean removed) converted to mA. `None` if empty.
    pub fn evaluate(
        &self,
        calibration: &CtCalibration,
        faults: &LeadFaultThresholds,
    ) -> Option<Result<ResidualReading, FaultCause>> {
        let n = u64::from(self.samples);
        let n_i = i64::from(self.samples);
        let mean = self.sum.checked_div(n_i)?;
        let abs_mean = mean.unsigned_abs();
        // N·Σx² − (Σx)² = N²·variance ≥ 0 (Cauchy–Schwarz); saturate for safety.
        let n_sum_sq = u128::from(n).saturating_mul(u128::from(self.sum_squares));
        let sum_sq = u128::from(self.sum.unsigned_abs()).saturating_pow(2);
        let rms_times_n = n_sum_sq.saturating_sub(sum_sq).isqrt();
        let rms_codes = rms_times_n
            .saturating_add(u128::from(n / 2))
            .checked_div(u128::from(n))
            .unwrap_or(0);
        let rms_codes = u32::try_from(rms_codes).unwrap_or(u32::MAX);

        if abs_mean >= u64::from(faults.open_min_abs_mean) {
            return Some(Err(FaultCause::LeadOpen));
        }
        if abs_mean <= u64::from(faults.short_max_abs_mean) && rms_codes <= faults.short_max_rms {
            return Some(Err(FaultCause::LeadShort));
        }
        Some(Ok(ResidualReading {
            milliamps: calibration.milliamps(rms_times_n, n),
            rms_codes,
            mean_codes: i32::try_from(mean).unwrap_or(0),
            clipped_samples: self.clipped,
            samples: self.samples,
        }))
    }
}

/// Accumulates samples into windows of whole mains cycles and evaluates each window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmsCalculator {
    config: RmsConfig,
    samples_per_cycle: u32,
    /// Sums over the complete cycles of the current window.
    complete: WindowStats,
    cycles_complete: u32,
    /// Sums over the cycle in progress.
    partial: WindowStats,
}

impl RmsCalculator {
    /// Checks `config` and starts an empty window.
    pub fn new(config: RmsConfig) -> Result<Self, RmsConfigError> {
        let samples_per_cycle = match config.sample_rate_hz.checked_div(config.mains_hz) {
            Some(n) if config.sample_rate_hz.is_multiple_of(config.mains_hz) => n,
            _ => return Err(RmsConfigError::NotWholeSamplesPerCycle),
        };
        if samples_per_cycle < MIN_SAMPLES_PER_CYCLE {
            return Err(RmsConfigError::TooFewSamplesPerCycle);
        }
        if config.cycles_per_window == 0 {
            return Err(RmsConfigError::NoCycles);
        }
        match samples_per_cycle.checked_mul(config.cycles_per_window) {
            Some(n) if n <= MAX_WINDOW_SAMPLES => {}
            _ => return Err(RmsConfigError::WindowTooLong),
        }
        if config.calibration.ct_ratio == 0 || config.calibration.burden_milliohm == 0 {
            return Err(RmsConfigError::BadCalibration);
        }
        Ok(RmsCalculator {
            config,
            samples_per_cycle,
            complete: WindowStats::default(),
            cycles_complete: 0,
            partial: WindowStats::default(),
        })
    }

    /// The settings.
    pub const fn config(&self) -> &RmsConfig {
        &self.config
    }

    /// Samples per mains cycle (80 at 4 kSPS, 50 Hz).
    pub const fn samples_per_cycle(&self) -> u32 {
        self.samples_per_cycle
    }

    /// Samples per full window.
    pub const fn window_samples(&self) -> u32 {
        self.samples_per_cycle
            .saturating_mul(self.config.cycles_per_window)
    }

    /// Whole cycles accumulated in the current window so far.
    pub const fn cycles_complete(&self) -> u32 {
        self.cycles_complete
    }

    /// Adds one channel-0 sample. Returns the window's result when this sample completes the
    /// window (then starts a new one), `None` otherwise.
    pub fn push(&mut self, sample: i32) -> Option<Result<ResidualReading, FaultCause>> {
        self.partial.add(sample);
        if self.partial.samples < self.samples_per_cycle {
            return None;
        }
        self.complete.merge(&self.partial);
        self.partial = WindowStats::default();
        self.cycles_complete = self.cycles_complete.saturating_add(1);
        if self.cycles_complete < self.config.cycles_per_window {
            return None;
        }
        self.finish()
    }

    /// Evaluates the whole cycles accumulated so far, dropping the cycle in progress, and
    /// starts a new window. `None` if not one whole cycle was complete.
    pub fn finish(&mut self) -> Option<Result<ResidualReading, FaultCause>> {
        let result = self
            .complete
            .evaluate(&self.config.calibration, &self.config.faults);
        self.reset();
        result
    }

    /// Discards everything accumulated (e.g. after an ADC error broke the sample stream).
    pub fn reset(&mut self) {
        self.complete = WindowStats::default();
        self.partial = WindowStats::default();
        self.cycles_complete = 0;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Codes of the ADC input for a primary RMS current, reference calibration (f64 model).
    fn peak_codes(primary_ma: f64) -> f64 {
        let cal = CtCalibration::REFERENCE;
        let v_rms = primary_ma / 1000.0 / f64::from(cal.ct_ratio) * 100.0; // 100 Ω burden
        let lsb = 1.2 / 4.0 / f64::from(1u32 << 23);
        v_rms * core::f64::consts::SQRT_2 / lsb
    }

    /// Reference bias offset with the CT connected: ≈ 10 600 codes.
    const BIAS: f64 = 10_600.0;

    /// Deterministic noise, ±`amp` codes (a small LCG).
    fn noise(seed: &mut u32, amp: i32) -> i32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let span = u32::try_from(2 * amp + 1).unwrap();
        i32::try_from((*seed >> 8) % span).unwrap() - amp
    }

    /// `count` samples of a 50 Hz sine at 4 kSPS plus DC offset and noise.
    fn sine(primary_ma: f64, dc: f64, phase: f64, count: usize, seed: &mut u32) -> Vec<i32> {
        let peak = peak_codes(primary_ma);
        (0..count)
            .map(|k| {
                let t = k as f64 / 4000.0;
                let x = dc + peak * (2.0 * core::f64::consts::PI * 50.0 * t + phase).sin();
                x.round() as i32 + noise(seed, 40)
            })
            .collect()
    }

    fn run_window(samples: &[i32]) -> Result<ResidualReading, FaultCause> {
        let mut calc = RmsCalculator::new(RmsConfig::REFERENCE).unwrap();
        let mut out = None;
        for (i, &s) in samples.iter().enumerate() {
            let r = calc.push(s);
            if i + 1 < samples.len() {
                assert_eq!(r, None, "no result before the window is full (sample {i})");
            } else {
                out = r;
            }
        }
        out.expect("a result at the end of the window")
    }

    fn assert_within_1_percent(got: u32, want_ma: f64) {
        let err = (f64::from(got) - want_ma).abs() / want_ma;
        assert!(
            err <= 0.01,
            "{got} mA vs {want_ma} mA: {:.3} %",
            err * 100.0
        );
    }

    #[test]
    fn geometry_of_the_reference_window() {
        let calc = RmsCalculator::new(RmsConfig::REFERENCE).unwrap();
        assert_eq!(calc.samples_per_cycle(), 80);
        assert_eq!(calc.window_samples(), 800);
        assert_eq!(CtCalibration::REFERENCE.full_scale_sine_ma(), 2121);
    }

    #[test]
    fn sine_300ma_with_dc_offset_reads_300ma() {
        let mut seed = 1;
        let samples = sine(300.0, BIAS, 0.7, 800, &mut seed);
        let r = run_window(&samples).unwrap();
        assert_within_1_percent(r.milliamps, 300.0);
        assert!(
            (i64::from(r.mean_codes) - 10_600).abs() < 50,
            "mean {}",
            r.mean_codes
        );
        assert_eq!(r.clipped_samples, 0);
        assert_eq!(r.samples, 800);
    }

    #[test]
    fn accurate_across_the_set_point_range() {
        for ma in [30.0, 100.0, 500.0, 1000.0, 2000.0] {
            let mut seed = 7;
            let samples = sine(ma, -BIAS, 1.9, 800, &mut seed);
            assert_within_1_percent(run_window(&samples).unwrap().milliamps, ma);
        }
    }

    #[test]
    fn a_large_dc_offset_does_not_change_the_rms() {
        let mut seed = 3;
        let a = run_window(&sine(300.0, 0.0, 0.0, 800, &mut seed)).unwrap();
        let mut seed = 3;
        let b = run_window(&sine(300.0, 1_000_000.0, 0.0, 800, &mut seed)).unwrap();
        assert_eq!(a.milliamps, b.milliamps);
    }

    #[test]
    fn a_partial_cycle_is_not_counted() {
        let mut seed = 11;
        let whole = sine(300.0, BIAS, 0.3, 160, &mut seed); // 2 whole cycles
        let mut calc = RmsCalculator::new(RmsConfig::REFERENCE).unwrap();
        for &s in &whole {
            assert_eq!(calc.push(s), None);
        }
        let mut reference = calc.clone();
        // Half a cycle of something else entirely: a big step.
        for _ in 0..40 {
            assert_eq!(calc.push(3_000_000), None);
        }
        assert_eq!(calc.cycles_complete(), 2);
        let with_partial = calc.finish().unwrap().unwrap();
        let without = reference.finish().unwrap().unwrap();
        assert_eq!(with_partial, without);
        assert_eq!(with_partial.samples, 160);
        assert_within_1_percent(with_partial.milliamps, 300.0);
    }

    #[test]
    fn less_than_one_cycle_gives_nothing() {
        let mut calc = RmsCalculator::new(RmsConfig::REFERENCE).unwrap();
        for _ in 0..79 {
            assert_eq!(calc.push(1000), None);
        }
        assert_eq!(calc.finish(), None);
    }

    #[test]
    fn windows_repeat() {
        let mut seed = 5;
        let samples = sine(500.0, BIAS, 0.0, 1600, &mut seed);
        let mut calc = RmsCalculator::new(RmsConfig::REFERENCE).unwrap();
        let results: Vec<_> = samples.iter().filter_map(|&s| calc.push(s)).collect();
        assert_eq!(results.len(), 2);
        for r in results {
            assert_within_1_percent(r.unwrap().milliamps, 500.0);
        }
    }

    #[test]
    fn ct_open_reads_as_lead_open() {
        // The bias network drives the input past full scale: every sample at the rail.
        let samples = [CODE_MAX; 800];
        assert_eq!(run_window(&samples), Err(FaultCause::LeadOpen));
        // Either rail (bias network fitted the other way round).
        let samples = [CODE_MIN; 800];
        assert_eq!(run_window(&samples), Err(FaultCause::LeadOpen));
        // Near the rail with noise: still open.
        let mut seed = 9;
        let samples: Vec<i32> = (0..800)
            .map(|_| CODE_MAX - 1000 + noise(&mut seed, 500))
            .collect();
        assert_eq!(run_window(&samples), Err(FaultCause::LeadOpen));
    }

    #[test]
    fn ct_short_reads_as_lead_short() {
        assert_eq!(run_window(&[0; 800]), Err(FaultCause::LeadShort));
        // ADC noise only (±40 codes), no bias offset.
        let mut seed = 13;
        let samples: Vec<i32> = (0..800).map(|_| noise(&mut seed, 40)).collect();
        assert_eq!(run_window(&samples), Err(FaultCause::LeadShort));
    }

    #[test]
    fn healthy_ct_without_leakage_reads_zero_not_short() {
        let mut seed = 17;
        let samples = sine(0.0, BIAS, 0.0, 800, &mut seed);
        let r = run_window(&samples).unwrap();
        assert_eq!(r.milliamps, 0);
    }

    #[test]
    fn small_leakage_without_bias_is_not_a_short() {
        // A real 5 mA signal is above the short's RMS bound even if the offset were lost.
        let mut seed = 19;
        let samples = sine(5.0, 0.0, 0.0, 800, &mut seed);
        assert_within_1_percent(run_window(&samples).unwrap().milliamps, 5.0);
    }

    #[test]
    fn over_range_current_clips_and_is_flagged_not_open() {
        let mut seed = 23;
        let samples: Vec<i32> = sine(4000.0, BIAS, 0.0, 800, &mut seed)
            .into_iter()
            .map(|x| x.clamp(CODE_MIN, CODE_MAX))
            .collect();
        let r = run_window(&samples).unwrap();
        assert!(r.clipped_samples > 0);
        assert!(r.milliamps > 2000, "{} mA", r.milliamps);
    }

    #[test]
    fn out_of_range_samples_are_clamped_without_overflow() {
        let mut calc = RmsCalculator::new(RmsConfig {
            cycles_per_window: 819, // 65 520 samples, the longest window
            ..RmsConfig::REFERENCE
        })
        .unwrap();
        let mut last = None;
        for k in 0..calc.window_samples() {
            last = calc.push(if k % 2 == 0 { i32::MAX } else { i32::MIN });
        }
        let r = last.unwrap().unwrap();
        assert_eq!(r.clipped_samples, 65_520);
        assert_eq!(r.rms_codes, 8_388_608);
    }

    #[test]
    fn config_is_checked() {
        let with = |f: fn(&mut RmsConfig)| {
            let mut c = RmsConfig::REFERENCE;
            f(&mut c);
            RmsCalculator::new(c).map(|_| ())
        };
        assert_eq!(
            with(|c| c.sample_rate_hz = 4001),
            Err(RmsConfigError::NotWholeSamplesPerCycle)
        );
        assert_eq!(
            with(|c| c.mains_hz = 0),
            Err(RmsConfigError::NotWholeSamplesPerCycle)
        );
        assert_eq!(
            with(|c| c.sample_rate_hz = 250),
            Err(RmsConfigError::TooFewSamplesPerCycle)
        );
        assert_eq!(
            with(|c| c.cycles_per_window = 0),
            Err(RmsConfigError::NoCycles)
        );
        assert_eq!(
            with(|c| c.cycles_per_window = 1000),
            Err(RmsConfigError::WindowTooLong)
        );
        assert_eq!(
            with(|c| c.calibration.burden_milliohm = 0),
            Err(RmsConfigError::BadCalibration)
        );
        assert_eq!(with(|c| c.sample_rate_hz = 32_000), Ok(()));
    }
}
