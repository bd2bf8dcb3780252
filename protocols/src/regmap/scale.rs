//! [`Scale`]: integer raw ↔ canonical scaling, and its rounding helpers.

use serde::{Deserialize, Serialize};

/// Integer scaling from raw to canonical: `canonical = round(raw × mul / div) + offset`.
///
/// Rounding is to nearest, halves away from zero. The sign of the ratio is carried by `mul`;
/// `mul` and `div` must both be non-zero ([`RegisterMap::validate`] checks). Missing fields
/// deserialize to the identity (`mul = 1`, `div = 1`, `offset = 0`).
///
/// [`RegisterMap::validate`]: super::RegisterMap::validate
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Scale {
    /// Numerator of the ratio.
    pub mul: i32,
    /// Denominator of the ratio.
    pub div: u32,
    /// Added after scaling, in the canonical unit.
    pub offset: i32,
}

impl Scale {
    /// The identity scale: canonical = raw.
    pub const IDENTITY: Self = Self {
        mul: 1,
        div: 1,
        offset: 0,
    };

    /// A scale `round(raw × mul / div) + offset`.
    pub const fn new(mul: i32, div: u32, offset: i32) -> Self {
        Self { mul, div, offset }
    }

    /// Whether both `mul` and `div` are non-zero.
    pub const fn is_valid(self) -> bool {
        self.mul != 0 && self.div != 0
    }

    /// Raw → canonical. `None` if the scale is invalid or the result does not fit an `i32`.
    pub fn to_canonical(self, raw: i64) -> Option<i32> {
        if !self.is_valid() {
            return None;
        }
        let scaled = div_round(raw.checked_mul(i64::from(self.mul))?, i64::from(self.div))?;
        i32::try_from(scaled.checked_add(i64::from(self.offset))?).ok()
    }

    /// Canonical → raw, rounded to nearest. `None` if the scale is invalid or the raw value does
    /// not fit an `i64` (then it does not fit any [`ValueType`] either).
    ///
    /// [`ValueType`]: super::ValueType
    pub fn to_raw(self, canonical: i32) -> Option<i64> {
        if !self.is_valid() {
            return None;
        }
        let shifted = i64::from(canonical).checked_sub(i64::from(self.offset))?;
        div_round(
            shifted.checked_mul(i64::from(self.div))?,
            i64::from(self.mul),
        )
    }
}

impl Default for Scale {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// `n / d` rounded to nearest, halves away from zero; `None` if `d == 0` or on overflow.
pub(super) fn div_round(n: i64, d: i64) -> Option<i64> {
    let q = n.checked_div(d)?;
    let r_abs = n.checked_rem(d)?.unsigned_abs();
    let d_abs = d.unsigned_abs();
    // 2|r| >= |d|, written so it cannot overflow (|r| < |d|).
    if r_abs != 0 && r_abs >= d_abs.checked_sub(r_abs)? {
        if (n < 0) != (d < 0) {
            q.checked_sub(1)
        } else {
            q.checked_add(1)
        }
    } else {
        Some(q)
    }
}

/// Floor of `n / d` for `d > 0`.
pub(super) fn floor_div(n: i128, d: i128) -> Option<i128> {
    n.checked_div_euclid(d)
}

/// Ceiling of `n / d` for `d > 0`.
pub(super) fn ceil_div(n: i128, d: i128) -> Option<i128> {
    n.checked_neg()?.checked_div_euclid(d)?.checked_neg()
}
