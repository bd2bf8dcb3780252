//! Alarm set-points and the GB numbers that bound them.
//!
//! Every number here is a named constant whose doc says where it comes from, and every one is a
//! default of a setting: [`Limits`] carries the ranges a deployment enforces, [`Limits::GB`] being
//! the standards' values. "Secondary" means product datasheets citing the standard agree but the
//! clause text itself was not read; treat such values as defaults, not rules.
//!
//! Firmware and gateway both evaluate set-points (a device that only reports values must still
//! alarm), so the rule for *raising* and *clearing* lives here, once: a channel alarms when its
//! value is at or above the set-point for the alarm delay, and clears only when it falls below
//! the set-point minus the hysteresis ([`Threshold::clear_below`]).

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::channel::Quantity;

/// Lowest residual-current alarm set-point, mA. GB 14287.2 (secondary: datasheets citing it).
pub const RESIDUAL_SETPOINT_MIN_MA: u16 = 20;
/// Highest residual-current alarm set-point, mA. GB 14287.2 (secondary).
pub const RESIDUAL_SETPOINT_MAX_MA: u16 = 1000;
/// Default residual-current set-point, mA: the low end of the 300–500 mA that GB 50116-2013
/// §9.2.3 (explanation) recommends — normal leakage is often 100–200 mA and ~300 mA can start a
/// fire (confirmed).
pub const RESIDUAL_SETPOINT_DEFAULT_MA: u16 = 300;

/// Lowest temperature alarm set-point, deci-°C (55.0 °C). GB 14287.3 (secondary).
pub const TEMP_SETPOINT_MIN_DC: i16 = 550;
/// Highest temperature alarm set-point, deci-°C (140.0 °C). GB 14287.3 (secondary).
pub const TEMP_SETPOINT_MAX_DC: i16 = 1400;
/// Default temperature set-point, deci-°C (85.0 °C): a common commercial default (secondary).
pub const TEMP_SETPOINT_DEFAULT_DC: i16 = 850;

/// Longest alarm delay, s: a detector must alarm within 30 s of the value reaching the set-point
/// (GB 31252 §4.3.1 and the inspection code; corroborated), so the delay cannot exceed it.
pub const ALARM_DELAY_MAX_S: u16 = 30;
/// Default alarm delay, s: filters inrush and switching transients while staying well inside
/// the 30 s response (firegrid's choice; a setting).
pub const ALARM_DELAY_DEFAULT_S: u16 = 10;

/// Set-point accuracy the standard asks of a detector: the alarm value within ±5 % of the set
/// value (GB 14287, secondary). Tests of firmware measurement chains use it as their tolerance.
pub const SETPOINT_ACCURACY_PERCENT: u8 = 5;

/// Hysteresis of residual-current alarms, percent of the set-point: an alarm clears only below
/// 90 % of the set-point (firegrid's choice; not in the standards; damps flapping).
pub const RESIDUAL_HYSTERESIS_PERCENT: u8 = 10;
/// What remains of a residual-current set-point below which its alarm clears, percent.
const RESIDUAL_CLEAR_PERCENT: i32 = 100 - RESIDUAL_HYSTERESIS_PERCENT as i32;
/// Hysteresis of temperature alarms, deci-°C: an alarm clears only 3.0 °C below the set-point
/// (firegrid's choice; not in the standards).
pub const TEMP_HYSTERESIS_DC: i16 = 30;

/// Default telemetry report interval of a mains-powered monitor, s (firegrid's choice).
pub const REPORT_INTERVAL_DEFAULT_S: u32 = 60;
/// Default heartbeat interval of a mains-powered monitor, s (standards.md: configurable, 60 s).
pub const HEARTBEAT_INTERVAL_DEFAULT_S: u32 = 60;
/// Longest heartbeat interval, s: a battery smoke alarm reports at least once per 24 h, matching
/// its battery check (GB 20517-2025 §5.11.1, confirmed; GB/T 45839-2025 not read).
pub const HEARTBEAT_INTERVAL_MAX_S: u32 = 24 * 3600;
/// Shortest report or heartbeat interval, s (firegrid's choice: protects the broker).
pub const INTERVAL_MIN_S: u32 = 5;
/// Longest interval between battery checks, s: at power-up, then at least every 24 h
/// (GB 20517-2025 §5.11.1, confirmed).
pub const BATTERY_CHECK_INTERVAL_MAX_S: u32 = 24 * 3600;
/// How long a silence of the battery-fault sound lasts, s: (7 ± 1) h (GB 20517-2025 §5.11.2,
/// confirmed). A smoke alarm during the silence still sounds fully.
pub const BATTERY_SILENCE_S: u32 = 7 * 3600;

// The defaults sit inside the ranges they default in (checked when compiling).
const _: () = assert!(ALARM_DELAY_DEFAULT_S <= ALARM_DELAY_MAX_S);
const _: () = assert!(HEARTBEAT_INTERVAL_DEFAULT_S <= HEARTBEAT_INTERVAL_MAX_S);
const _: () = assert!(REPORT_INTERVAL_DEFAULT_S >= INTERVAL_MIN_S);
const _: () = assert!(BATTERY_SILENCE_S >= 6 * 3600 && BATTERY_SILENCE_S <= 8 * 3600);

/// One channel's alarm set-point, in the unit of its quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Threshold {
    /// Residual current, mA.
    ResidualMa(u16),
    /// Temperature, deci-°C.
    TempDc(i16),
}

impl Threshold {
    /// The quantity it applies to.
    pub const fn quantity(self) -> Quantity {
        match self {
            Self::ResidualMa(_) => Quantity::ResidualCurrent,
            Self::TempDc(_) => Quantity::Temperature,
        }
    }

    /// The set-point in the quantity's unit (mA or deci-°C).
    pub const fn value(self) -> i32 {
        match self {
            Self::ResidualMa(v) => v as i32,
            Self::TempDc(v) => v as i32,
        }
    }

    /// Makes a set-point of `quantity` from a value in its unit, checked against `limits`.
    ///
    /// # Errors
    /// [`ThresholdError`] if the value is outside the range.
    pub fn new(quantity: Quantity, value: i32, limits: &Limits) -> Result<Self, ThresholdError> {
        let t = match quantity {
            Quantity::ResidualCurrent => Self::ResidualMa(u16::try_from(value).unwrap_or(u16::MAX)),
            Quantity::Temperature => Self::TempDc(i16::try_from(value).unwrap_or(i16::MAX)),
        };
        if t.value() != value {
            return Err(limits.error(quantity, value));
        }
        t.validate(limits)?;
        Ok(t)
    }

    /// The default set-point of `quantity`.
    pub const fn default_for(quantity: Quantity) -> Self {
        match quantity {
            Quantity::ResidualCurrent => Self::ResidualMa(RESIDUAL_SETPOINT_DEFAULT_MA),
            Quantity::Temperature => Self::TempDc(TEMP_SETPOINT_DEFAULT_DC),
        }
    }

    /// Checks the set-point against `limits`.
    ///
    /// # Errors
    /// [`ThresholdError`] says the value, the range and its source.
    pub fn validate(self, limits: &Limits) -> Result<(), ThresholdError> {
        let (min, max) = limits.range(self.quantity());
        if (min..=max).contains(&self.value()) {
            Ok(())
        } else {
            Err(limits.error(self.quantity(), self.value()))
        }
    }

    /// Whether `value` (in the quantity's unit) is at or above the set-point.
    pub const fn is_exceeded_by(self, value: i32) -> bool {
        value >= self.value()
    }

    /// An alarm on this set-point clears only when the value is below this.
    pub const fn clear_below(self) -> i32 {
        match self {
            Self::ResidualMa(v) => (v as i32).saturating_mul(RESIDUAL_CLEAR_PERCENT) / 100,
            Self::TempDc(v) => (v as i32).saturating_sub(TEMP_HYSTERESIS_DC as i32),
        }
    }
}

/// A set-point outside the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdError {
    /// What the set-point is for.
    pub quantity: Quantity,
    /// The refused value, in the quantity's unit.
    pub value: i32,
    /// Lowest allowed value.
    pub min: i32,
    /// Highest allowed value.
    pub max: i32,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.quantity {
            Quantity::ResidualCurrent => write!(
                f,
                "residual-current set-point {} mA is outside {}-{} mA (GB 14287.2)",
                self.value, self.min, self.max
            ),
            Quantity::Temperature => write!(
                f,
                "temperature set-point {} is outside {}-{} (deci-°C; GB 14287.3: 55-140 °C)",
                self.value, self.min, self.max
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ThresholdError {}

/// The ranges a deployment enforces on settings; [`Limits::GB`] is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Lowest residual-current set-point, mA.
    pub residual_min_ma: u16,
    /// Highest residual-current set-point, mA.
    pub residual_max_ma: u16,
    /// Lowest temperature set-point, deci-°C.
    pub temp_min_dc: i16,
    /// Highest temperature set-point, deci-°C.
    pub temp_max_dc: i16,
    /// Longest alarm delay, s.
    pub alarm_delay_max_s: u16,
}

impl Limits {
    /// The GB ranges (see the constants' docs for sources).
    pub const GB: Self = Self {
        residual_min_ma: RESIDUAL_SETPOINT_MIN_MA,
        residual_max_ma: RESIDUAL_SETPOINT_MAX_MA,
        temp_min_dc: TEMP_SETPOINT_MIN_DC,
        temp_max_dc: TEMP_SETPOINT_MAX_DC,
        alarm_delay_max_s: ALARM_DELAY_MAX_S,
    };

    /// The allowed set-point range of `quantity`, inclusive, in its unit.
    pub const fn range(&self, quantity: Quantity) -> (i32, i32) {
        match quantity {
            Quantity::ResidualCurrent => (self.residual_min_ma as i32, self.residual_max_ma as i32),
            Quantity::Temperature => (self.temp_min_dc as i32, self.temp_max_dc as i32),
        }
    }

    fn error(&self, quantity: Quantity, value: i32) -> ThresholdError {
        let (min, max) = self.range(quantity);
        ThresholdError {
            quantity,
            value,
            min,
            max,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::GB
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn gb_ranges_inclusive() {
        let l = Limits::GB;
        for (q, ok, bad) in [
            (Quantity::ResidualCurrent, [20, 1000], [19, 1001]),
            (Quantity::Temperature, [550, 1400], [549, 1401]),
        ] {
            for v in ok {
                assert!(Threshold::new(q, v, &l).is_ok(), "{q:?} {v}");
            }
            for v in bad {
                assert!(Threshold::new(q, v, &l).is_err(), "{q:?} {v}");
            }
        }
        assert!(Threshold::new(Quantity::ResidualCurrent, -5, &l).is_err());
        assert!(Threshold::new(Quantity::ResidualCurrent, 70_000, &l).is_err());
        assert!(Threshold::new(Quantity::Temperature, 40_000, &l).is_err());
    }

    #[test]
    fn defaults_are_inside_the_gb_ranges() {
        for q in [Quantity::ResidualCurrent, Quantity::Temperature] {
            assert_eq!(Threshold::default_for(q).validate(&Limits::GB), Ok(()));
        }
    }

    #[test]
    fn errors_name_value_range_and_standard() {
        let e = Threshold::new(Quantity::ResidualCurrent, 5, &Limits::GB).unwrap_err();
        assert_eq!(
            e.to_string(),
            "residual-current set-point 5 mA is outside 20-1000 mA (GB 14287.2)"
        );
    }

    #[test]
    fn hysteresis() {
        let r = Threshold::ResidualMa(300);
        assert!(r.is_exceeded_by(300) && !r.is_exceeded_by(299));
        assert_eq!(r.clear_below(), 270);
        let t = Threshold::TempDc(850);
        assert_eq!(t.clear_below(), 820);
    }

    #[test]
    fn a_deployment_can_narrow_the_limits() {
        let strict = Limits {
            residual_max_ma: 500,
            ..Limits::GB
        };
        assert!(Threshold::ResidualMa(600).validate(&strict).is_err());
        assert!(Threshold::ResidualMa(600).validate(&Limits::GB).is_ok());
    }
}
