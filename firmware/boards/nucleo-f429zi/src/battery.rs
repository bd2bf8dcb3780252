//! The backup cell's voltage from the STM32F429's internal ADC channels: pure arithmetic, so
//! the host tests check it.
//!
//! The cell sits on the `VBAT` pin (RM0090 §5.1.2: it also keeps the RTC and the backup
//! domain). ADC1 channel 18 reads `VBAT / 4` on the STM32F42x (RM0090 §13.12), channel 17 the
//! internal reference `VREFINT`. The ADC's own reference is `VDDA`, which is not known
//! exactly; `VREFINT` is, through its factory calibration `VREFINT_CAL` (the raw 12-bit
//! reading of `VREFINT` at `VDDA` = 3.3 V, 30 °C, stored at `0x1FFF_7A2A`; datasheet DS9405
//! table "Internal reference voltage calibration values"). So
//!
//! ```text
//! VDDA = 3300 mV × VREFINT_CAL / raw_vref
//! VBAT = 4 × VDDA × raw_vbat / 4095 = 4 × 3300 mV × VREFINT_CAL × raw_vbat / (raw_vref × 4095)
//! ```
//!
//! independent of the supply. Without a usable calibration value the typical `VREFINT`
//! (1.21 V) stands in: `VBAT = 4 × 1210 mV × raw_vbat / raw_vref`, within about ±3 %.

/// `VDDA` at which `VREFINT_CAL` was taken, mV.
pub const VREFINT_CAL_VDDA_MV: u32 = 3_300;
/// The typical internal reference, mV (datasheet: 1.18–1.24 V).
pub const VREFINT_TYPICAL_MV: u32 = 1_210;
/// Full scale of the 12-bit ADC.
pub const ADC_MAX: u32 = 4_095;
/// `VBAT` is divided by this before the ADC (STM32F42x/43x; the F40x divides by 2).
pub const VBAT_DIVIDER: u32 = 4;

/// The `VBAT` voltage in mV from raw 12-bit readings of `VBAT/4` and `VREFINT`, and the
/// factory `VREFINT_CAL` if it is plausible (a 1.18–1.24 V reference at 3.3 V reads
/// 1464–1539). `None` if `raw_vref` is 0 (the reference channel did not convert).
pub fn vbat_mv(raw_vbat: u16, raw_vref: u16, vrefint_cal: Option<u16>) -> Option<u16> {
    if raw_vref == 0 {
        return None;
    }
    let raw_vbat = u64::from(raw_vbat);
    let raw_vref = u64::from(raw_vref);
    let mv = match vrefint_cal.filter(|c| (1_400..=1_600).contains(c)) {
        Some(cal) => {
            let num = u64::from(VBAT_DIVIDER * VREFINT_CAL_VDDA_MV) * u64::from(cal) * raw_vbat;
            let den = raw_vref * u64::from(ADC_MAX);
            (num + den / 2) / den
        }
        None => {
            let num = u64::from(VBAT_DIVIDER * VREFINT_TYPICAL_MV) * raw_vbat;
            (num + raw_vref / 2) / raw_vref
        }
    };
    Some(u16::try_from(mv).unwrap_or(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw readings a perfect ADC gives for `vdda_mv`, `vbat_mv` and a reference `vref_mv`.
    fn raw(vdda_mv: f64, vbat_mv: f64, vref_mv: f64) -> (u16, u16) {
        let code = |mv: f64| (mv / vdda_mv * 4095.0).round() as u16;
        (code(vbat_mv / 4.0), code(vref_mv))
    }

    #[test]
    fn calibrated_reading_is_independent_of_vdda() {
        // A part whose reference is 1.200 V: CAL = 1200 / 3300 × 4095 = 1489.
        let cal = (1200.0_f64 / 3300.0 * 4095.0).round() as u16;
        for vdda in [3000.0, 3300.0, 3600.0] {
            for vbat in [2000.0, 2600.0, 3000.0, 3300.0] {
                let (rb, rv) = raw(vdda, vbat, 1200.0);
                let got = f64::from(vbat_mv(rb, rv, Some(cal)).unwrap());
                assert!(
                    (got - vbat).abs() <= vbat * 0.005 + 4.0,
                    "{vdda} {vbat}: {got}"
                );
            }
        }
    }

    #[test]
    fn typical_reference_without_calibration() {
        let (rb, rv) = raw(3300.0, 3000.0, 1210.0);
        let got = f64::from(vbat_mv(rb, rv, None).unwrap());
        assert!((got - 3000.0).abs() < 10.0, "{got}");
        // An implausible calibration word (erased, or another chip's layout) is not used.
        assert_eq!(vbat_mv(rb, rv, Some(0xFFFF)), vbat_mv(rb, rv, None));
    }

    #[test]
    fn no_reference_no_reading() {
        assert_eq!(vbat_mv(1000, 0, Some(1500)), None);
        assert_eq!(vbat_mv(4095, 1, None), Some(u16::MAX));
    }
}
