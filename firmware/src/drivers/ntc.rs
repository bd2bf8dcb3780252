//! NTC thermistor probe → temperature in deci-°C, with probe open/short detection: pure.
//!
//! # Circuit (assumed)
//!
//! ```text
//!   VREF 3.3 V ── R_fixed 10 kΩ ──┬── ADS1115 AINx
//!                                 │
//!                               NTC 10 kΩ @ 25 °C, B25/50 = 3950 K (the probe, on a lead)
//!                                 │
//!   GND ──────────────────────────┘
//! ```
//!
//! V = VREF × R_ntc / (R_ntc + R_fixed), so R_ntc = R_fixed × code / (code_ref − code), where
//! code_ref is the code VREF itself would give ([`NtcDivider::reference_code`]: 3.3 V at
//! ±4.096 V, 125 µV/LSB → 26 400). At 25 °C the NTC equals R_fixed and the code is
//! code_ref / 2 (13 200, "mid-scale" of the divider).
//!
//! VREF must be the divider's actual supply within about ±1 %: the ADS1115 measures against
//! its internal reference, not ratiometrically, so a VREF error shifts the resistance (a 1 %
//! error ≈ 0.2–0.3 °C near 25–85 °C). Feed the dividers from the same regulated rail as the
//! ADS1115's VDD, or set [`NtcDivider`] from a measured value.
//!
//! # Curve
//!
//! [`RT_TABLE`]: resistance every 5 °C from −40 °C to +200 °C, from the Beta equation
//! R(T) = R25 · exp(B · (1/T − 1/T25)), R25 = 10 kΩ, B = 3950 K, T25 = 298.15 K, in units of
//! 0.1 Ω (rounded). Between points the temperature is interpolated linearly in resistance; the
//! curvature error of that is under 0.2 °C at 5 °C steps. The Beta equation is the model the
//! probe's "10K 3950" rating is given in (the B25/50 value); a maker's own R–T table can
//! deviate from it by a degree or two far from 25–50 °C — replace the table with the
//! supplier's if it is published. Outside the table the result is clamped to −40.0 °C or
//! +200.0 °C (above every GB 14287.3 set-point, so an over-range probe still alarms).
//!
//! # Probe faults
//!
//! - **Open** (probe unplugged, lead broken): R_ntc → ∞, the input is pulled to VREF, the
//!   code to code_ref. Fault when R ≥ [`OPEN_ABOVE_OHM`] (490 kΩ: the divider at 98 % of
//!   VREF; −44 °C on the curve, colder than any indoor terminal in Hangzhou and 2 % of margin
//!   for VREF error) → [`FaultCause::LeadOpen`].
//! - **Short** (lead shorted, probe crushed): R_ntc → 0, code → 0. Fault when R ≤
//!   [`SHORT_BELOW_OHM`] (50 Ω: the divider at 0.5 % of VREF; ≈ 215 °C on the curve, beyond
//!   the probe's rating) → [`FaultCause::LeadShort`].

use firegrid_protocols::channel::FaultCause;

use super::ads1115::Pga;

/// Resistance at 25 °C, Ω.
pub const R25_OHM: u32 = 10_000;

/// B25/50 constant, K.
pub const BETA_K: u32 = 3950;

/// Temperature of [`RT_TABLE`]`\[0\]`, deci-°C (−40.0 °C).
pub const TABLE_FIRST_DC: i16 = -400;

/// Temperature step of [`RT_TABLE`], deci-°C (5.0 °C).
pub const TABLE_STEP_DC: i16 = 50;

/// Temperature of the last entry of [`RT_TABLE`], deci-°C (+200.0 °C).
pub const TABLE_LAST_DC: i16 = 2000;

/// NTC resistance in 0.1 Ω, at −40, −35, …, +200 °C (Beta equation, R25 = 10 kΩ,
/// B = 3950 K). Tenths of an ohm keep the rounding of the table below 0.1 °C at the hot end,
/// where the resistance is under 100 Ω.
#[rustfmt::skip]
pub const RT_TABLE: [u32; 49] = [
    4_018_597, 2_815_768, 2_002_039, 1_443_169, 1_053_847, 778_981, 582_457, 440_260, // −40 … −5 °C
    336_206, 259_246, 201_746, 158_371, 125_353, 100_000, 80_371, 65_055, // 0 … 35 °C
    53_015, 43_481, 35_882, 29_784, 24_862, 20_864, 17_598, 14_917, // 40 … 75 °C
    12_703, 10_867, 9_336, 8_054, 6_975, 6_064, 5_291, 4_633, // 80 … 115 °C
    4_071, 3_588, 3_173, 2_814, 2_503, 2_233, 1_997, 1_791, // 120 … 155 °C
    1_610, 1_451, 1_310, 1_186, 1_076, 979, 892, 814, // 160 … 195 °C
    745, // 200 °C
];

/// At or above this resistance the probe is open, Ω (divider at 98 % of VREF).
pub const OPEN_ABOVE_OHM: u32 = 490_000;

/// At or below this resistance the probe is shorted, Ω (divider at 0.5 % of VREF).
pub const SHORT_BELOW_OHM: u32 = 50;

/// The divider in front of one ADC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtcDivider {
    /// The fixed resistor between VREF and the ADC input, Ω.
    pub r_fixed_ohm: u32,
    /// The ADC code VREF would give.
    pub reference_code: i32,
}

impl NtcDivider {
    /// The reference design: 10 kΩ from 3.3 V, ADS1115 at ±4.096 V.
    pub const REFERENCE: NtcDivider = NtcDivider::new(10_000, 3_300_000, Pga::Fs4_096V);

    /// A divider of `r_fixed_ohm` from `vref_uv` (µV) read at `pga`.
    pub const fn new(r_fixed_ohm: u32, vref_uv: u32, pga: Pga) -> Self {
        let code = match (vref_uv as u64)
            .saturating_mul(1000)
            .checked_div(pga.lsb_nv() as u64)
        {
            Some(code) => code,
            None => 0,
        };
        NtcDivider {
            r_fixed_ohm,
            reference_code: if code > i16::MAX as u64 {
                i16::MAX as i32
            } else {
                code as i32
            },
        }
    }

    /// The NTC resistance for `code`, in 0.1 Ω (rounded, saturating); `None` when the code is
    /// at or above the reference (infinite resistance).
    pub fn resistance_deci_ohm(&self, code: i16) -> Option<u32> {
        let code = i64::from(code).max(0);
        let rest = i64::from(self.reference_code).checked_sub(code)?;
        if rest <= 0 {
            return None;
        }
        let r = i64::from(self.r_fixed_ohm)
            .checked_mul(10)?
            .checked_mul(code)?
            .checked_add(rest / 2)?
            .checked_div(rest)?;
        Some(u32::try_from(r).unwrap_or(u32::MAX))
    }
}

impl Default for NtcDivider {
    fn default() -> Self {
        NtcDivider::REFERENCE
    }
}

/// Temperature, deci-°C, of an NTC of `r_deci_ohm` (0.1 Ω) on the [`RT_TABLE`] curve,
/// clamped to [`TABLE_FIRST_DC`]..=[`TABLE_LAST_DC`].
pub fn deci_ohm_to_deci_celsius(r_deci_ohm: u32) -> i16 {
    let mut t_hi_side = TABLE_FIRST_DC;
    for pair in RT_TABLE.windows(2) {
        let &[r_cold, r_warm] = pair else {
            break;
        };
        if r_deci_ohm >= r_cold {
            return t_hi_side;
        }
        if r_deci_ohm > r_warm {
            // r_warm < r < r_cold: interpolate linearly in resistance.
            let span = i64::from(r_cold.saturating_sub(r_warm));
            let along = i64::from(r_cold.saturating_sub(r_deci_ohm));
            let step = i64::from(TABLE_STEP_DC);
            let frac = along
                .saturating_mul(step)
                .saturating_add(span / 2)
                .checked_div(span)
                .unwrap_or(0);
            return i16::try_from(i64::from(t_hi_side).saturating_add(frac)).unwrap_or(t_hi_side);
        }
        t_hi_side = t_hi_side.saturating_add(TABLE_STEP_DC);
    }
    TABLE_LAST_DC
}

/// Temperature of the probe behind `divider` for an ADS1115 `code`, deci-°C; or the probe
/// fault ([`FaultCause::LeadOpen`] / [`FaultCause::LeadShort`]) by the thresholds above.
pub fn temperature_dc(code: i16, divider: &NtcDivider) -> Result<i16, FaultCause> {
    match divider.resistance_deci_ohm(code) {
        None => Err(FaultCause::LeadOpen),
        Some(r) if r >= OPEN_ABOVE_OHM.saturating_mul(10) => Err(FaultCause::LeadOpen),
        Some(r) if r <= SHORT_BELOW_OHM.saturating_mul(10) => Err(FaultCause::LeadShort),
        Some(r) => Ok(deci_ohm_to_deci_celsius(r)),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// Beta-equation resistance (the model, in f64) at `t_c` °C.
    fn beta_r(t_c: f64) -> f64 {
        let t = t_c + 273.15;
        10_000.0 * (3950.0 * (1.0 / t - 1.0 / 298.15)).exp()
    }

    /// The ADS1115 code the reference divider gives at `t_c` °C.
    fn code_at(t_c: f64) -> i16 {
        let r = beta_r(t_c);
        (26_400.0 * r / (r + 10_000.0)).round() as i16
    }

    #[test]
    fn table_is_the_beta_curve() {
        for (i, &r) in RT_TABLE.iter().enumerate() {
            let t = -40.0 + 5.0 * i as f64;
            assert!(
                (f64::from(r) / 10.0 - beta_r(t)).abs() <= 0.05,
                "{t} °C: {r} dΩ"
            );
        }
        assert_eq!(RT_TABLE[13], R25_OHM * 10, "25 °C");
        assert!(
            RT_TABLE.windows(2).all(|w| w[0] > w[1]),
            "strictly decreasing"
        );
        assert_eq!(
            TABLE_FIRST_DC + TABLE_STEP_DC * (RT_TABLE.len() as i16 - 1),
            TABLE_LAST_DC
        );
    }

    #[test]
    fn reference_divider() {
        assert_eq!(NtcDivider::REFERENCE.reference_code, 26_400);
        assert_eq!(
            NtcDivider::REFERENCE.resistance_deci_ohm(13_200),
            Some(100_000)
        );
        assert_eq!(NtcDivider::REFERENCE.resistance_deci_ohm(26_400), None);
        assert_eq!(NtcDivider::REFERENCE.resistance_deci_ohm(-5), Some(0));
    }

    #[test]
    fn known_points() {
        let d = NtcDivider::REFERENCE;
        // 25 °C: 10 kΩ, mid-scale of the divider.
        assert_eq!(temperature_dc(13_200, &d), Ok(250));
        // 85 °C: 1086.7 Ω → code 2588.
        assert_eq!(code_at(85.0), 2588);
        assert!((temperature_dc(2588, &d).unwrap() - 850).abs() <= 5);
        // 0 °C and 55 °C, 100 °C, 140 °C.
        for (t, want) in [(0.0, 0), (55.0, 550), (100.0, 1000), (140.0, 1400)] {
            let got = temperature_dc(code_at(t), &d).unwrap();
            assert!((got - want).abs() <= 5, "{t} °C read {got} dC");
        }
    }

    #[test]
    fn within_half_a_degree_over_the_whole_table() {
        let d = NtcDivider::REFERENCE;
        for t10 in -400..=2000 {
            let t = f64::from(t10) / 10.0;
            let got = temperature_dc(code_at(t), &d).unwrap();
            assert!((i32::from(got) - t10).abs() <= 5, "{t} °C read {got} dC");
        }
    }

    #[test]
    fn open_probe() {
        let d = NtcDivider::REFERENCE;
        assert_eq!(temperature_dc(26_400, &d), Err(FaultCause::LeadOpen));
        assert_eq!(temperature_dc(i16::MAX, &d), Err(FaultCause::LeadOpen));
        // 98 % of VREF (490 kΩ) is the threshold.
        assert_eq!(temperature_dc(25_872, &d), Err(FaultCause::LeadOpen));
        // −40 °C is still a reading.
        assert_eq!(temperature_dc(code_at(-40.0), &d), Ok(-400));
    }

    #[test]
    fn shorted_probe() {
        let d = NtcDivider::REFERENCE;
        assert_eq!(temperature_dc(0, &d), Err(FaultCause::LeadShort));
        assert_eq!(temperature_dc(-3, &d), Err(FaultCause::LeadShort));
        assert_eq!(temperature_dc(i16::MIN, &d), Err(FaultCause::LeadShort));
        // 50 Ω → code ≈ 131 (49.9 Ω).
        assert_eq!(temperature_dc(131, &d), Err(FaultCause::LeadShort));
        assert!(temperature_dc(133, &d).is_ok());
        // 200 °C (74.5 Ω, code 195) is still a reading.
        assert_eq!(temperature_dc(code_at(200.0), &d), Ok(2000));
    }

    #[test]
    fn between_table_end_and_fault_threshold_clamps() {
        // 60 Ω: hotter than 200 °C, not yet a short.
        assert_eq!(deci_ohm_to_deci_celsius(600), TABLE_LAST_DC);
        // 450 kΩ: colder than −40 °C, not yet open.
        assert_eq!(deci_ohm_to_deci_celsius(4_500_000), TABLE_FIRST_DC);
        assert_eq!(deci_ohm_to_deci_celsius(u32::MAX), TABLE_FIRST_DC);
        assert_eq!(deci_ohm_to_deci_celsius(0), TABLE_LAST_DC);
        // Exactly on table points and half-way.
        assert_eq!(deci_ohm_to_deci_celsius(100_000), 250);
        assert_eq!(deci_ohm_to_deci_celsius(4_018_597), -400);
        assert_eq!(deci_ohm_to_deci_celsius(745), 2000);
    }

    #[test]
    fn every_code_converts_without_panicking() {
        for code in i16::MIN..=i16::MAX {
            let _ = temperature_dc(code, &NtcDivider::REFERENCE);
        }
    }
}
