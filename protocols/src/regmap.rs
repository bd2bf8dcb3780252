//! Modbus register maps as data: one definition shared by the gateway (Modbus client) and the
//! simulator (Modbus server).
//!
//! Legacy electrical-fire monitors speak Modbus RTU or TCP. Instead of hand-written parsing per
//! device, a device's register layout is described as data — a [`RegisterMap`] — and this module
//! turns raw register words into values in canonical units and back.
//!
//! # The model
//!
//! * A [`Register`] is one value at one (0-based, PDU) Modbus address of one
//!   [`RegisterKind`] (holding, input, coil, discrete input; each kind is its own address space).
//!   Address `0x0000` of a holding register is what vendor manuals often write as `40001`.
//! * Its [`ValueType`] says how many words it spans and how they are read: `U16`, `I16`, `U32` and
//!   `I32` (the 32-bit types with an explicit [`WordOrder`]), or `Bool` for coils and discrete
//!   inputs.
//! * Its [`Scale`] turns the raw integer into the canonical unit with integers only:
//!   `canonical = round(raw × mul / div) + offset`, rounded to nearest (halves away from zero),
//!   computed with checked `i64` arithmetic; a result that does not fit an `i32` is an error.
//! * Its [`Meaning`] says what the value is (residual current of channel 2, report period, …) and
//!   thereby its canonical [`Unit`]: residual current in **mA**, temperature in **deci-°C**
//!   (0.1 °C), durations in **seconds**; codes, bitmaps and flags are unscaled integers.
//! * `writable` says whether the client may write it (only holding registers and coils can be).
//! * State-code registers hold a raw code that the map's [`StateCode`] table turns into a
//!   [`ChannelState`] for the channel's [`Quantity`]; an unknown code is an error, never "normal".
//!
//! [`RegisterMap::read_blocks`] plans the few contiguous reads (at most
//! [`MAX_READ_REGISTERS`] words, or [`MAX_READ_BITS`] bits, each) that fetch every register of a
//! kind, and [`RegisterMap::validate`] checks a map loaded from a file before it is used. The
//! element types implement serde's `Serialize` and `Deserialize`, so a gateway can load a profile
//! (e.g. from TOML) into its own vectors and borrow them as a [`RegisterMap`].
//!
//! ```
//! use firegrid_protocols::regmap::{Meaning, TYPICAL_RCM_TEMP};
//!
//! let reg = TYPICAL_RCM_TEMP.find(Meaning::Temperature(1)).unwrap();
//! assert_eq!(reg.decode(&[1350]), Ok(850)); // 85.0 °C
//! let setpoint = TYPICAL_RCM_TEMP.find(Meaning::TemperatureSetPoint(1)).unwrap();
//! assert_eq!(setpoint.encode_write(700).unwrap().as_slice(), &[1200]); // 70.0 °C
//! ```
//!
//! # Built-in profile `typical-rcm-4t` ([`TYPICAL_RCM_TEMP`])
//!
//! A typical commercial residual-current / temperature monitor: 1 residual-current channel
//! (channel 0) and 4 temperature channels (channels 1–4). Modbus RTU, 9600 baud, slave address
//! 1–247; all registers are holding registers (read with function 03, written with 06 or 16), all
//! `U16`. A composite of public vendor data, not one vendor's map.
//!
//! | Address | Meaning | Raw → canonical | Unit | Access |
//! |---|---|---|---|---|
//! | `0x0000` | residual current, ch 0 | raw ÷ 10 (raw in 0.1 mA) | mA | R |
//! | `0x0001`–`0x0004` | temperature, ch 1–4 | raw − 500 (raw/10 − 50 °C) | deci-°C | R |
//! | `0x0010`–`0x0014` | state code, ch 0–4 | raw (see below) | code | R |
//! | `0x0020` | residual alarm set-point, ch 0 | raw | mA | R/W |
//! | `0x0021`–`0x0024` | temperature alarm set-point, ch 1–4 | raw − 500 | deci-°C | R/W |
//! | `0x0030` | alarm delay | raw | s | R/W |
//! | `0x0031` | report period | raw | s | R/W |
//! | `0x0032` | heartbeat period | raw | s | R/W |
//! | `0x0033` | channel-enable bitmap (bit *n* = channel *n*) | raw | bitmap | R/W |
//! | `0x0034` | buzzer enable (0/1) | raw | flag | R/W |
//! | `0x0035` | relay (trip) enable (0/1) | raw | flag | R/W |
//!
//! State codes:
//!
//! | Code | Residual-current channel | Temperature channel |
//! |---|---|---|
//! | 0 | normal | normal |
//! | 1 | alarm | — |
//! | 2 | fault: CT open (`LeadOpen`) | — |
//! | 3 | fault: CT short (`LeadShort`) | — |
//! | 4 | — | alarm (over-temperature) |
//! | 5 | — | fault: probe open (`LeadOpen`) |
//! | 6 | — | fault: probe short (`LeadShort`) |
//!
//! A code marked "—" is an error ([`StateCodeError::UnknownCode`]) for that kind of channel.
//!
//! Read plan ([`RegisterMap::read_blocks`]): with `max_gap = 0` four reads (`0x0000`×5,
//! `0x0010`×5, `0x0020`×5, `0x0030`×6); with `max_gap >= 11` a single read of 54 registers
//! from `0x0000` (only for devices that answer reads of unmapped addresses).

use core::fmt;
use core::ops::{Deref, RangeInclusive};

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelNo, ChannelState, FaultCause, MAX_CHANNELS, Quantity};

#[cfg(test)]
mod tests;

/// The most registers (16-bit words) one Modbus read (function 03/04) may return.
pub const MAX_READ_REGISTERS: u16 = 125;

/// The most bits one Modbus read of coils or discrete inputs (function 01/02) may return.
pub const MAX_READ_BITS: u16 = 2000;

/// The four Modbus data tables. Each is its own address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegisterKind {
    /// 16-bit read/write register (read 03, write 06/16).
    Holding,
    /// 16-bit read-only register (read 04).
    Input,
    /// Read/write bit (read 01, write 05/15).
    Coil,
    /// Read-only bit (read 02).
    DiscreteInput,
}

impl RegisterKind {
    /// Whether this kind holds bits (coils, discrete inputs) rather than 16-bit words.
    pub const fn is_bit(self) -> bool {
        matches!(self, Self::Coil | Self::DiscreteInput)
    }

    /// Whether a client can write this kind at all (holding registers and coils).
    pub const fn is_writable_kind(self) -> bool {
        matches!(self, Self::Holding | Self::Coil)
    }

    /// The Modbus function code that reads this kind.
    pub const fn read_function(self) -> u8 {
        match self {
            Self::Coil => 0x01,
            Self::DiscreteInput => 0x02,
            Self::Holding => 0x03,
            Self::Input => 0x04,
        }
    }

    /// The most registers (or bits) one read of this kind may return.
    pub const fn max_read(self) -> u16 {
        if self.is_bit() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        }
    }
}

impl fmt::Display for RegisterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Holding => "holding register",
            Self::Input => "input register",
            Self::Coil => "coil",
            Self::DiscreteInput => "discrete input",
        })
    }
}

/// The order of the two 16-bit words of a 32-bit value (the bytes within each word are always
/// big-endian, as Modbus defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WordOrder {
    /// Big-endian word order: the high word is at the lower address ("ABCD").
    HighWordFirst,
    /// Little-endian word order: the low word is at the lower address ("CDAB", word-swapped).
    LowWordFirst,
}

/// How the raw value of a register is encoded in its word(s) or bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueType {
    /// One word, unsigned, `0..=65535`.
    U16,
    /// One word, two's complement, `-32768..=32767`.
    I16,
    /// Two words, unsigned, in the given word order.
    U32(WordOrder),
    /// Two words, two's complement, in the given word order.
    I32(WordOrder),
    /// One bit (coil or discrete input), raw 0 or 1.
    Bool,
}

impl ValueType {
    /// How many addresses the value spans: words for the word types, 1 (bit) for `Bool`.
    pub const fn width(self) -> u16 {
        match self {
            Self::U16 | Self::I16 | Self::Bool => 1,
            Self::U32(_) | Self::I32(_) => 2,
        }
    }

    /// Whether this is the bit type (for coils and discrete inputs).
    pub const fn is_bool(self) -> bool {
        matches!(self, Self::Bool)
    }

    /// The raw integer range the type can hold.
    pub const fn raw_range(self) -> (i64, i64) {
        match self {
            Self::U16 => (0, u16::MAX as i64),
            Self::I16 => (i16::MIN as i64, i16::MAX as i64),
            Self::U32(_) => (0, u32::MAX as i64),
            Self::I32(_) => (i32::MIN as i64, i32::MAX as i64),
            Self::Bool => (0, 1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::U16 => "U16",
            Self::I16 => "I16",
            Self::U32(WordOrder::HighWordFirst) => "U32 (high word first)",
            Self::U32(WordOrder::LowWordFirst) => "U32 (low word first)",
            Self::I32(WordOrder::HighWordFirst) => "I32 (high word first)",
            Self::I32(WordOrder::LowWordFirst) => "I32 (low word first)",
            Self::Bool => "Bool",
        })
    }
}

/// Integer scaling from raw to canonical: `canonical = round(raw × mul / div) + offset`.
///
/// Rounding is to nearest, halves away from zero. The sign of the ratio is carried by `mul`;
/// `mul` and `div` must both be non-zero ([`RegisterMap::validate`] checks). Missing fields
/// deserialize to the identity (`mul = 1`, `div = 1`, `offset = 0`).
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
fn div_round(n: i64, d: i64) -> Option<i64> {
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
fn floor_div(n: i128, d: i128) -> Option<i128> {
    n.checked_div_euclid(d)
}

/// Ceiling of `n / d` for `d > 0`.
fn ceil_div(n: i128, d: i128) -> Option<i128> {
    n.checked_neg()?.checked_div_euclid(d)?.checked_neg()
}

/// The canonical unit of a [`Meaning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Milliampere (residual current).
    MilliAmpere,
    /// Tenth of a degree Celsius (temperature).
    DeciCelsius,
    /// Second (durations).
    Second,
    /// A code looked up in a table (state codes).
    Code,
    /// A bitmap, bit *n* for channel *n*.
    Bitmap,
    /// 0 = off, 1 = on.
    Flag,
    /// An unscaled number with no unit (addresses, versions, vendor-specific values).
    Number,
}

/// What a register means. The channel number is the device's own, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Meaning {
    /// Measured residual (leakage) current of a channel, mA.
    ResidualCurrent(ChannelNo),
    /// Measured temperature of a channel, deci-°C.
    Temperature(ChannelNo),
    /// State code of a channel, decoded with the map's [`StateCode`] table.
    StateCode(ChannelNo),
    /// Residual-current alarm set-point of a channel, mA.
    ResidualSetPoint(ChannelNo),
    /// Temperature alarm set-point of a channel, deci-°C.
    TemperatureSetPoint(ChannelNo),
    /// How long a value must stay above its set-point before the alarm, s.
    AlarmDelay,
    /// Period of unsolicited value reports, s.
    ReportPeriod,
    /// Period of heartbeats, s.
    HeartbeatPeriod,
    /// Which channels are enabled, bit *n* = channel *n*.
    ChannelEnable,
    /// Whether the local buzzer sounds on alarm (0/1).
    BuzzerEnable,
    /// Whether the relay output trips on alarm (0/1).
    RelayEnable,
    /// Writing 1 resets latched alarms (a command, reads as 0 on most devices).
    AlarmReset,
    /// The device's Modbus slave address (1–247).
    DeviceAddress,
    /// Firmware version as the vendor encodes it (e.g. 0x0102 or 102 for 1.02).
    FirmwareVersion,
    /// A vendor-specific value, told apart by the number (unscaled semantics are the profile's).
    Other(u16),
}

impl Meaning {
    /// The channel the value belongs to, if it is a per-channel value.
    pub const fn channel(self) -> Option<ChannelNo> {
        match self {
            Self::ResidualCurrent(ch)
            | Self::Temperature(ch)
            | Self::StateCode(ch)
            | Self::ResidualSetPoint(ch)
            | Self::TemperatureSetPoint(ch) => Some(ch),
            _ => None,
        }
    }

    /// The quantity (and so the kind of channel) the value implies, if any. A state code says
    /// nothing by itself; its channel's quantity comes from the channel's other registers.
    pub const fn quantity(self) -> Option<Quantity> {
        match self {
            Self::ResidualCurrent(_) | Self::ResidualSetPoint(_) => Some(Quantity::ResidualCurrent),
            Self::Temperature(_) | Self::TemperatureSetPoint(_) => Some(Quantity::Temperature),
            _ => None,
        }
    }

    /// The canonical unit of the decoded value.
    pub const fn unit(self) -> Unit {
        match self {
            Self::ResidualCurrent(_) | Self::ResidualSetPoint(_) => Unit::MilliAmpere,
            Self::Temperature(_) | Self::TemperatureSetPoint(_) => Unit::DeciCelsius,
            Self::StateCode(_) => Unit::Code,
            Self::AlarmDelay | Self::ReportPeriod | Self::HeartbeatPeriod => Unit::Second,
            Self::ChannelEnable => Unit::Bitmap,
            Self::BuzzerEnable | Self::RelayEnable | Self::AlarmReset => Unit::Flag,
            Self::DeviceAddress | Self::FirmwareVersion | Self::Other(_) => Unit::Number,
        }
    }
}

/// One register (or coil / discrete input) of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Register {
    /// 0-based Modbus (PDU) address of the first word or bit.
    pub address: u16,
    /// Which data table the register is in.
    pub kind: RegisterKind,
    /// How the raw value is encoded.
    pub value_type: ValueType,
    /// Raw → canonical scaling (identity if omitted).
    #[serde(default)]
    pub scale: Scale,
    /// Whether the client may write it (false if omitted).
    #[serde(default)]
    pub writable: bool,
    /// What the value is.
    pub meaning: Meaning,
}

impl Register {
    /// A read-only register with the identity scale.
    pub const fn new(
        address: u16,
        kind: RegisterKind,
        value_type: ValueType,
        meaning: Meaning,
    ) -> Self {
        Self {
            address,
            kind,
            value_type,
            scale: Scale::IDENTITY,
            writable: false,
            meaning,
        }
    }

    /// The same register with `canonical = round(raw × mul / div) + offset`.
    pub const fn with_scale(self, mul: i32, div: u32, offset: i32) -> Self {
        Self {
            scale: Scale::new(mul, div, offset),
            ..self
        }
    }

    /// The same register, writable.
    pub const fn read_write(self) -> Self {
        Self {
            writable: true,
            ..self
        }
    }

    /// How many addresses (words, or bits) the register spans.
    pub const fn width(&self) -> u16 {
        self.value_type.width()
    }

    /// The address one past the register's last word or bit (may be `0x1_0000`).
    pub const fn end(&self) -> u32 {
        // Cannot overflow: u16 + at most 2 in a u32.
        (self.address as u32).saturating_add(self.width() as u32)
    }

    /// Decodes the register's value in canonical units from words as read, `words[0]` being the
    /// word at [`address`](Self::address). Extra words are ignored.
    pub fn decode(&self, words: &[u16]) -> Result<i32, DecodeError> {
        let address = self.address;
        if !self.scale.is_valid() {
            return Err(DecodeError::InvalidScale { address });
        }
        let too_few = || DecodeError::TooFewWords {
            address,
            needed: self.width(),
            got: words.len(),
        };
        let raw = match self.value_type {
            ValueType::Bool => return Err(DecodeError::BitRegisterAsWords { address }),
            ValueType::U16 => i64::from(*words.first().ok_or_else(too_few)?),
            ValueType::I16 => i64::from(words.first().ok_or_else(too_few)?.cast_signed()),
            ValueType::U32(order) => {
                let pair = words.get(..2).ok_or_else(too_few)?;
                i64::from(join_words(pair, order).ok_or_else(too_few)?)
            }
            ValueType::I32(order) => {
                let pair = words.get(..2).ok_or_else(too_few)?;
                i64::from(join_words(pair, order).ok_or_else(too_few)?.cast_signed())
            }
        };
        self.scale
            .to_canonical(raw)
            .ok_or(DecodeError::Overflow { address, raw })
    }

    /// Decodes a coil or discrete input (raw 0 or 1, then scaled).
    pub fn decode_bit(&self, bit: bool) -> Result<i32, DecodeError> {
        let address = self.address;
        if !self.value_type.is_bool() {
            return Err(DecodeError::WordRegisterAsBit { address });
        }
        if !self.scale.is_valid() {
            return Err(DecodeError::InvalidScale { address });
        }
        let raw = i64::from(bit);
        self.scale
            .to_canonical(raw)
            .ok_or(DecodeError::Overflow { address, raw })
    }

    /// Encodes a canonical value into the register's raw words, whether or not the register is
    /// writable (a Modbus server needs this to serve read-only values). A client writing to a
    /// device uses [`encode_write`](Self::encode_write).
    pub fn encode(&self, value: i32) -> Result<RawWords, EncodeError> {
        let address = self.address;
        if self.value_type.is_bool() {
            return Err(EncodeError::BitRegisterAsWords { address });
        }
        let raw = self.raw_for(value)?;
        split_words(raw, self.value_type).ok_or_else(|| self.out_of_range(value))
    }

    /// Like [`encode`](Self::encode), but refuses a register that is not writable.
    pub fn encode_write(&self, value: i32) -> Result<RawWords, EncodeError> {
        self.check_writable()?;
        self.encode(value)
    }

    /// Encodes a canonical value into a coil or discrete input bit, whether or not writable.
    pub fn encode_bit(&self, value: i32) -> Result<bool, EncodeError> {
        let address = self.address;
        if !self.value_type.is_bool() {
            return Err(EncodeError::WordRegisterAsBit { address });
        }
        match self.raw_for(value)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.out_of_range(value)),
        }
    }

    /// Like [`encode_bit`](Self::encode_bit), but refuses a coil that is not writable.
    pub fn encode_write_bit(&self, value: i32) -> Result<bool, EncodeError> {
        self.check_writable()?;
        self.encode_bit(value)
    }

    /// The canonical values that [`encode`](Self::encode) accepts (every value in the range
    /// encodes, after rounding, to a raw value the type can hold), clamped to `i32`. `None` if the
    /// scale is invalid.
    pub fn value_range(&self) -> Option<RangeInclusive<i32>> {
        let Scale { mul, div, offset } = self.scale;
        if !self.scale.is_valid() {
            return None;
        }
        let (raw_min, raw_max) = self.value_type.raw_range();
        // encode(v) = round(x), x = (v - offset)·div/mul, is within [raw_min, raw_max] exactly
        // when raw_min - ½ < x < raw_max + ½ (halves round away from zero and raw_min <= 0 <=
        // raw_max), i.e. 2·(v - offset)·div lies strictly between (2·raw_min - 1)·mul and
        // (2·raw_max + 1)·mul.
        let mul = i128::from(mul);
        let a = i128::from(raw_min)
            .checked_mul(2)?
            .checked_sub(1)?
            .checked_mul(mul)?;
        let b = i128::from(raw_max)
            .checked_mul(2)?
            .checked_add(1)?
            .checked_mul(mul)?;
        let twice_div = i128::from(div).checked_mul(2)?;
        let lo = floor_div(a.min(b), twice_div)?
            .checked_add(1)?
            .checked_add(i128::from(offset))?;
        let hi = ceil_div(a.max(b), twice_div)?
            .checked_sub(1)?
            .checked_add(i128::from(offset))?;
        let clamp = |v: i128| i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX });
        Some(clamp(lo)..=clamp(hi))
    }

    fn check_writable(&self) -> Result<(), EncodeError> {
        if self.writable && self.kind.is_writable_kind() {
            Ok(())
        } else {
            Err(EncodeError::NotWritable {
                address: self.address,
                kind: self.kind,
            })
        }
    }

    fn raw_for(&self, value: i32) -> Result<i64, EncodeError> {
        if !self.scale.is_valid() {
            return Err(EncodeError::InvalidScale {
                address: self.address,
            });
        }
        // An i64 overflow means |raw| >= 2^32: outside every value type.
        self.scale
            .to_raw(value)
            .ok_or_else(|| self.out_of_range(value))
    }

    fn out_of_range(&self, value: i32) -> EncodeError {
        let range = self.value_range().unwrap_or(0..=0);
        EncodeError::OutOfRange {
            address: self.address,
            value_type: self.value_type,
            value,
            min: *range.start(),
            max: *range.end(),
        }
    }
}

/// Joins two words (as read, lower address first) into a `u32`.
fn join_words(pair: &[u16], order: WordOrder) -> Option<u32> {
    let [first, second] = *pair else {
        return None;
    };
    let (high, low) = match order {
        WordOrder::HighWordFirst => (first, second),
        WordOrder::LowWordFirst => (second, first),
    };
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Some(u32::from_be_bytes([a, b, c, d]))
}

/// Splits a raw value into words for a word type; `None` if it does not fit.
fn split_words(raw: i64, value_type: ValueType) -> Option<RawWords> {
    let two = |value: u32, order: WordOrder| {
        let [a, b, c, d] = value.to_be_bytes();
        let (high, low) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        match order {
            WordOrder::HighWordFirst => RawWords::two(high, low),
            WordOrder::LowWordFirst => RawWords::two(low, high),
        }
    };
    match value_type {
        ValueType::U16 => u16::try_from(raw).ok().map(RawWords::one),
        ValueType::I16 => i16::try_from(raw)
            .ok()
            .map(|v| RawWords::one(v.cast_unsigned())),
        ValueType::U32(order) => u32::try_from(raw).ok().map(|v| two(v, order)),
        ValueType::I32(order) => i32::try_from(raw)
            .ok()
            .map(|v| two(v.cast_unsigned(), order)),
        ValueType::Bool => None,
    }
}

/// The one or two raw words of an encoded value, lower address first. Dereferences to `[u16]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawWords {
    words: [u16; 2],
    len: u8,
}

impl RawWords {
    const fn one(word: u16) -> Self {
        Self {
            words: [word, 0],
            len: 1,
        }
    }

    const fn two(first: u16, second: u16) -> Self {
        Self {
            words: [first, second],
            len: 2,
        }
    }

    /// The words, lower address first.
    pub fn as_slice(&self) -> &[u16] {
        self.words
            .get(..usize::from(self.len))
            .unwrap_or(&self.words)
    }
}

impl Deref for RawWords {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        self.as_slice()
    }
}

impl AsRef<[u16]> for RawWords {
    fn as_ref(&self) -> &[u16] {
        self.as_slice()
    }
}

/// Why raw words could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Fewer words than the register's type spans.
    TooFewWords {
        /// The register's address.
        address: u16,
        /// Words the type needs.
        needed: u16,
        /// Words given.
        got: usize,
    },
    /// A `Bool` (coil / discrete input) register was given words; use
    /// [`Register::decode_bit`].
    BitRegisterAsWords {
        /// The register's address.
        address: u16,
    },
    /// A word register was given a bit; use [`Register::decode`].
    WordRegisterAsBit {
        /// The register's address.
        address: u16,
    },
    /// The scaled value does not fit an `i32`.
    Overflow {
        /// The register's address.
        address: u16,
        /// The raw value read.
        raw: i64,
    },
    /// The register's scale has `mul == 0` or `div == 0` (the map was not validated).
    InvalidScale {
        /// The register's address.
        address: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooFewWords {
                address,
                needed,
                got,
            } => write!(
                f,
                "register {address:#06x}: needs {needed} word(s), got {got}"
            ),
            Self::BitRegisterAsWords { address } => {
                write!(f, "register {address:#06x} is a bit, not words")
            }
            Self::WordRegisterAsBit { address } => {
                write!(f, "register {address:#06x} holds words, not a bit")
            }
            Self::Overflow { address, raw } => write!(
                f,
                "register {address:#06x}: raw value {raw} scales beyond the i32 range"
            ),
            Self::InvalidScale { address } => {
                write!(f, "register {address:#06x}: scale has mul or div 0")
            }
        }
    }
}

/// Why a canonical value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// The register is read-only (or of a read-only kind).
    NotWritable {
        /// The register's address.
        address: u16,
        /// The register's kind.
        kind: RegisterKind,
    },
    /// The value, scaled to raw, does not fit the register's type.
    OutOfRange {
        /// The register's address.
        address: u16,
        /// The register's type.
        value_type: ValueType,
        /// The value refused, in canonical units.
        value: i32,
        /// The smallest value accepted, in canonical units.
        min: i32,
        /// The largest value accepted, in canonical units.
        max: i32,
    },
    /// A `Bool` register was asked for words; use [`Register::encode_bit`].
    BitRegisterAsWords {
        /// The register's address.
        address: u16,
    },
    /// A word register was asked for a bit; use [`Register::encode`].
    WordRegisterAsBit {
        /// The register's address.
        address: u16,
    },
    /// The register's scale has `mul == 0` or `div == 0` (the map was not validated).
    InvalidScale {
        /// The register's address.
        address: u16,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotWritable { address, kind } => {
                write!(f, "{kind} {address:#06x} is not writable")
            }
            Self::OutOfRange {
                address,
                value_type,
                value,
                min,
                max,
            } => write!(
                f,
                "register {address:#06x} ({value_type}): value {value} outside {min}..={max}"
            ),
            Self::BitRegisterAsWords { address } => {
                write!(f, "register {address:#06x} is a bit, not words")
            }
            Self::WordRegisterAsBit { address } => {
                write!(f, "register {address:#06x} holds words, not a bit")
            }
            Self::InvalidScale { address } => {
                write!(f, "register {address:#06x}: scale has mul or div 0")
            }
        }
    }
}

/// One row of a state-code table: on a channel measuring `quantity`, raw `code` means `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateCode {
    /// The raw code as read from a state-code register.
    pub code: u16,
    /// The kind of channel the code applies to.
    pub quantity: Quantity,
    /// The state it means.
    pub state: ChannelState,
}

impl StateCode {
    /// A table row.
    pub const fn new(code: u16, quantity: Quantity, state: ChannelState) -> Self {
        Self {
            code,
            quantity,
            state,
        }
    }
}

/// Why a state code could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateCodeError {
    /// The code is not in the table for this quantity.
    UnknownCode {
        /// The raw code.
        code: u16,
        /// The channel's quantity.
        quantity: Quantity,
    },
    /// The table has no code for this state of this quantity.
    NoCode {
        /// The channel's quantity.
        quantity: Quantity,
        /// The state asked for.
        state: ChannelState,
    },
    /// The map has no measurement or set-point register for the channel, so its quantity (and
    /// thereby which codes apply) is unknown.
    UnknownChannel {
        /// The channel.
        channel: ChannelNo,
    },
}

impl fmt::Display for StateCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownCode { code, quantity } => {
                write!(f, "unknown state code {code} for a {quantity:?} channel")
            }
            Self::NoCode { quantity, state } => {
                write!(f, "no state code for {state:?} on a {quantity:?} channel")
            }
            Self::UnknownChannel { channel } => {
                write!(f, "channel {channel} has no quantity in this map")
            }
        }
    }
}

/// A defect of a [`RegisterMap`], found by [`RegisterMap::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapError {
    /// Two registers of one kind start at the same address.
    DuplicateAddress {
        /// The kind (address space).
        kind: RegisterKind,
        /// The address.
        address: u16,
    },
    /// A register starts inside a multi-word register (or a multi-word register covers the
    /// start of another).
    Overlap {
        /// The kind (address space).
        kind: RegisterKind,
        /// The later register's address.
        address: u16,
        /// The address of the register it overlaps.
        other: u16,
    },
    /// A register's scale has `div == 0`.
    ZeroDivisor {
        /// The register's address.
        address: u16,
    },
    /// A register's scale has `mul == 0` (every raw value would mean the same).
    ZeroMultiplier {
        /// The register's address.
        address: u16,
    },
    /// A `Bool` type on a holding or input register.
    BoolOnWordKind {
        /// The kind.
        kind: RegisterKind,
        /// The register's address.
        address: u16,
    },
    /// A word type on a coil or discrete input.
    WordTypeOnBitKind {
        /// The kind.
        kind: RegisterKind,
        /// The register's address.
        address: u16,
    },
    /// An input register or discrete input marked writable.
    WritableReadOnlyKind {
        /// The kind.
        kind: RegisterKind,
        /// The register's address.
        address: u16,
    },
    /// Two registers with the same meaning.
    DuplicateMeaning {
        /// The meaning.
        meaning: Meaning,
        /// The later register's address.
        address: u16,
        /// The earlier register's address.
        first: u16,
    },
    /// A multi-word register runs past address `0xFFFF`.
    PastAddressSpace {
        /// The register's address.
        address: u16,
    },
    /// A meaning names a channel `>= MAX_CHANNELS`.
    ChannelOutOfRange {
        /// The register's address.
        address: u16,
        /// The channel.
        channel: ChannelNo,
    },
    /// A state-code register for a channel that has no residual-current or temperature
    /// register, so its codes cannot be decoded.
    StateWithoutQuantity {
        /// The state-code register's address.
        address: u16,
        /// The channel.
        channel: ChannelNo,
    },
    /// A channel has both residual-current and temperature registers.
    ConflictingQuantity {
        /// The address of the register that contradicts an earlier one.
        address: u16,
        /// The channel.
        channel: ChannelNo,
    },
    /// The state-code table lists a code twice for one quantity.
    DuplicateStateCode {
        /// The code.
        code: u16,
        /// The quantity.
        quantity: Quantity,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DuplicateAddress { kind, address } => {
                write!(f, "two {kind}s at {address:#06x}")
            }
            Self::Overlap {
                kind,
                address,
                other,
            } => write!(
                f,
                "{kind} at {address:#06x} overlaps the multi-word one at {other:#06x}"
            ),
            Self::ZeroDivisor { address } => {
                write!(f, "register {address:#06x}: scale div is 0")
            }
            Self::ZeroMultiplier { address } => {
                write!(f, "register {address:#06x}: scale mul is 0")
            }
            Self::BoolOnWordKind { kind, address } => {
                write!(f, "{kind} {address:#06x} holds words but has type Bool")
            }
            Self::WordTypeOnBitKind { kind, address } => {
                write!(f, "{kind} {address:#06x} is a bit but has a word type")
            }
            Self::WritableReadOnlyKind { kind, address } => {
                write!(f, "{kind} {address:#06x} is read-only but marked writable")
            }
            Self::DuplicateMeaning {
                meaning,
                address,
                first,
            } => write!(
                f,
                "register {address:#06x} means {meaning:?}, as does {first:#06x}"
            ),
            Self::PastAddressSpace { address } => {
                write!(f, "register {address:#06x} runs past address 0xffff")
            }
            Self::ChannelOutOfRange { address, channel } => write!(
                f,
                "register {address:#06x}: channel {channel} is not below {MAX_CHANNELS}"
            ),
            Self::StateWithoutQuantity { address, channel } => write!(
                f,
                "state register {address:#06x}: channel {channel} has no residual-current or \
                 temperature register"
            ),
            Self::ConflictingQuantity { address, channel } => write!(
                f,
                "register {address:#06x}: channel {channel} is both residual-current and \
                 temperature"
            ),
            Self::DuplicateStateCode { code, quantity } => {
                write!(f, "state code {code} listed twice for {quantity:?}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
#[cfg(feature = "std")]
impl std::error::Error for StateCodeError {}
#[cfg(feature = "std")]
impl std::error::Error for MapError {}

/// A device's register layout and state codes.
///
/// Borrowed so that a built-in profile is `'static` ([`TYPICAL_RCM_TEMP`]) and one loaded at run
/// time can live in vectors the caller owns. Only `Serialize` is derived (borrowed slices cannot
/// be deserialized): deserialize the rows ([`Register`], [`StateCode`]) into owned storage, then
/// build the map with [`RegisterMap::new`] and [`validate`](RegisterMap::validate) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct RegisterMap<'a> {
    /// Profile name, e.g. `"typical-rcm-4t"`.
    pub name: &'a str,
    /// The registers, in any order.
    pub registers: &'a [Register],
    /// The state-code table.
    pub state_codes: &'a [StateCode],
}

impl<'a> RegisterMap<'a> {
    /// A map from its parts (not validated).
    pub const fn new(
        name: &'a str,
        registers: &'a [Register],
        state_codes: &'a [StateCode],
    ) -> Self {
        Self {
            name,
            registers,
            state_codes,
        }
    }

    /// The register with this meaning (the first, if the map is invalid and has several).
    pub fn find(&self, meaning: Meaning) -> Option<&'a Register> {
        self.registers.iter().find(|r| r.meaning == meaning)
    }

    /// The register of this kind starting at this address.
    pub fn at(&self, kind: RegisterKind, address: u16) -> Option<&'a Register> {
        self.registers
            .iter()
            .find(|r| r.kind == kind && r.address == address)
    }

    /// The quantity a channel measures, from its measurement or set-point registers.
    pub fn channel_quantity(&self, channel: ChannelNo) -> Option<Quantity> {
        self.registers
            .iter()
            .filter(|r| r.meaning.channel() == Some(channel))
            .find_map(|r| r.meaning.quantity())
    }

    /// The state a raw code means on a channel measuring `quantity`.
    pub fn state_of(&self, quantity: Quantity, code: u16) -> Result<ChannelState, StateCodeError> {
        self.state_codes
            .iter()
            .find(|s| s.quantity == quantity && s.code == code)
            .map(|s| s.state)
            .ok_or(StateCodeError::UnknownCode { code, quantity })
    }

    /// The raw code for a state on a channel measuring `quantity` (for a server).
    pub fn code_of(&self, quantity: Quantity, state: ChannelState) -> Result<u16, StateCodeError> {
        self.state_codes
            .iter()
            .find(|s| s.quantity == quantity && s.state == state)
            .map(|s| s.code)
            .ok_or(StateCodeError::NoCode { quantity, state })
    }

    /// The state a raw code read from `channel`'s state-code register means.
    pub fn channel_state(
        &self,
        channel: ChannelNo,
        code: u16,
    ) -> Result<ChannelState, StateCodeError> {
        let quantity = self
            .channel_quantity(channel)
            .ok_or(StateCodeError::UnknownChannel { channel })?;
        self.state_of(quantity, code)
    }

    /// The contiguous reads that fetch every register of `kind`, lowest address first.
    ///
    /// Registers at most `max_gap` unmapped addresses apart are read in one request (the gap is
    /// read and ignored); each read spans at most [`RegisterKind::max_read`] addresses. Use
    /// `max_gap = 0` for devices that answer a read of an unmapped address with an exception.
    /// A multi-word register is never split across two reads.
    pub fn read_blocks(&self, kind: RegisterKind, max_gap: u16) -> ReadBlocks<'a> {
        ReadBlocks {
            registers: self.registers,
            kind,
            max_gap,
            next: 0,
        }
    }

    /// Checks the map for the defects listed in [`MapError`]; returns the first one found (in
    /// register order, then the state-code table).
    pub fn validate(&self) -> Result<(), MapError> {
        for (i, reg) in self.registers.iter().enumerate() {
            check_register(reg)?;
            let earlier = self.registers.get(..i).unwrap_or_default();
            for other in earlier {
                check_pair(other, reg)?;
            }
        }
        self.check_channels()?;
        for (i, row) in self.state_codes.iter().enumerate() {
            let earlier = self.state_codes.get(..i).unwrap_or_default();
            if earlier
                .iter()
                .any(|e| e.code == row.code && e.quantity == row.quantity)
            {
                return Err(MapError::DuplicateStateCode {
                    code: row.code,
                    quantity: row.quantity,
                });
            }
        }
        Ok(())
    }

    fn check_channels(&self) -> Result<(), MapError> {
        for reg in self.registers {
            let Some(channel) = reg.meaning.channel() else {
                continue;
            };
            let address = reg.address;
            if let Some(quantity) = reg.meaning.quantity() {
                let first = self.channel_quantity(channel);
                if first.is_some_and(|q| q != quantity) {
                    return Err(MapError::ConflictingQuantity { address, channel });
                }
            } else if self.channel_quantity(channel).is_none() {
                return Err(MapError::StateWithoutQuantity { address, channel });
            }
        }
        Ok(())
    }
}

/// Defects of one register on its own.
fn check_register(reg: &Register) -> Result<(), MapError> {
    let (address, kind) = (reg.address, reg.kind);
    if reg.scale.div == 0 {
        return Err(MapError::ZeroDivisor { address });
    }
    if reg.scale.mul == 0 {
        return Err(MapError::ZeroMultiplier { address });
    }
    match (kind.is_bit(), reg.value_type.is_bool()) {
        (false, true) => return Err(MapError::BoolOnWordKind { kind, address }),
        (true, false) => return Err(MapError::WordTypeOnBitKind { kind, address }),
        _ => {}
    }
    if reg.writable && !kind.is_writable_kind() {
        return Err(MapError::WritableReadOnlyKind { kind, address });
    }
    if reg.end() > 0x1_0000 {
        return Err(MapError::PastAddressSpace { address });
    }
    if let Some(channel) = reg.meaning.channel()
        && usize::from(channel) >= MAX_CHANNELS
    {
        return Err(MapError::ChannelOutOfRange { address, channel });
    }
    Ok(())
}

/// Defects of a register against an earlier one.
fn check_pair(earlier: &Register, reg: &Register) -> Result<(), MapError> {
    let (address, kind) = (reg.address, reg.kind);
    if earlier.kind == kind {
        if earlier.address == address {
            return Err(MapError::DuplicateAddress { kind, address });
        }
        let (start, other) = (u32::from(address), u32::from(earlier.address));
        if start < earlier.end() && other < reg.end() {
            return Err(MapError::Overlap {
                kind,
                address,
                other: earlier.address,
            });
        }
    }
    if earlier.meaning == reg.meaning {
        return Err(MapError::DuplicateMeaning {
            meaning: reg.meaning,
            address,
            first: earlier.address,
        });
    }
    Ok(())
}

/// One Modbus read: `count` registers (or bits) of `kind` from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadBlock {
    /// The data table read.
    pub kind: RegisterKind,
    /// First address.
    pub start: u16,
    /// Number of registers (or bits), `1..=kind.max_read()`.
    pub count: u16,
}

impl ReadBlock {
    /// The address one past the last one read.
    pub const fn end(&self) -> u32 {
        (self.start as u32).saturating_add(self.count as u32)
    }

    /// Whether the block reads all of `reg`.
    pub fn contains(&self, reg: &Register) -> bool {
        self.kind == reg.kind && reg.address >= self.start && reg.end() <= self.end()
    }

    /// Where `reg` starts within the block's response, if the block contains it.
    pub fn offset_of(&self, reg: &Register) -> Option<usize> {
        if self.contains(reg) {
            Some(usize::from(reg.address.checked_sub(self.start)?))
        } else {
            None
        }
    }

    /// The part of the block's response (`words[0]` at [`start`](Self::start)) that holds
    /// `reg`, ready for [`Register::decode`]; `None` if the block does not contain `reg` or
    /// `words` is short.
    pub fn words_for<'w>(&self, reg: &Register, words: &'w [u16]) -> Option<&'w [u16]> {
        let offset = self.offset_of(reg)?;
        words.get(offset..offset.checked_add(usize::from(reg.width()))?)
    }
}

/// Iterator over the reads planned by [`RegisterMap::read_blocks`].
#[derive(Debug, Clone)]
pub struct ReadBlocks<'a> {
    registers: &'a [Register],
    kind: RegisterKind,
    max_gap: u16,
    /// Registers ending at or before this address are already covered.
    next: u32,
}

impl<'a> ReadBlocks<'a> {
    /// Of the registers of our kind that end after `after`, the one starting lowest.
    fn lowest_ending_after(&self, after: u32) -> Option<&'a Register> {
        self.registers
            .iter()
            .filter(|r| r.kind == self.kind && r.end() > after)
            .min_by_key(|r| r.address)
    }
}

impl Iterator for ReadBlocks<'_> {
    type Item = ReadBlock;

    fn next(&mut self) -> Option<ReadBlock> {
        let first = self.lowest_ending_after(self.next)?;
        let start = u32::from(first.address);
        let limit = start.saturating_add(u32::from(self.kind.max_read()));
        let mut end = first.end();
        // Each step strictly raises `end`, so this ends.
        while let Some(reg) = self.lowest_ending_after(end) {
            let gap = u32::from(reg.address).saturating_sub(end);
            if gap > u32::from(self.max_gap) || reg.end() > limit {
                break;
            }
            end = reg.end();
        }
        self.next = end;
        Some(ReadBlock {
            kind: self.kind,
            start: first.address,
            count: u16::try_from(end.saturating_sub(start)).unwrap_or(u16::MAX),
        })
    }
}

const fn holding_u16(address: u16, meaning: Meaning) -> Register {
    Register::new(address, RegisterKind::Holding, ValueType::U16, meaning)
}

/// Raw/10 − 50 °C, i.e. deci-°C = raw − 500.
const TEMP_OFFSET: i32 = -500;

static TYPICAL_REGISTERS: [Register; 21] = [
    holding_u16(0x0000, Meaning::ResidualCurrent(0)).with_scale(1, 10, 0),
    holding_u16(0x0001, Meaning::Temperature(1)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0002, Meaning::Temperature(2)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0003, Meaning::Temperature(3)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0004, Meaning::Temperature(4)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0010, Meaning::StateCode(0)),
    holding_u16(0x0011, Meaning::StateCode(1)),
    holding_u16(0x0012, Meaning::StateCode(2)),
    holding_u16(0x0013, Meaning::StateCode(3)),
    holding_u16(0x0014, Meaning::StateCode(4)),
    holding_u16(0x0020, Meaning::ResidualSetPoint(0)).read_write(),
    holding_u16(0x0021, Meaning::TemperatureSetPoint(1))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0022, Meaning::TemperatureSetPoint(2))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0023, Meaning::TemperatureSetPoint(3))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0024, Meaning::TemperatureSetPoint(4))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0030, Meaning::AlarmDelay).read_write(),
    holding_u16(0x0031, Meaning::ReportPeriod).read_write(),
    holding_u16(0x0032, Meaning::HeartbeatPeriod).read_write(),
    holding_u16(0x0033, Meaning::ChannelEnable).read_write(),
    holding_u16(0x0034, Meaning::BuzzerEnable).read_write(),
    holding_u16(0x0035, Meaning::RelayEnable).read_write(),
];

static TYPICAL_STATE_CODES: [StateCode; 8] = {
    use ChannelState::{Alarm, Fault, Normal};
    use FaultCause::{LeadOpen, LeadShort};
    use Quantity::{ResidualCurrent, Temperature};
    [
        StateCode::new(0, ResidualCurrent, Normal),
        StateCode::new(1, ResidualCurrent, Alarm),
        StateCode::new(2, ResidualCurrent, Fault(LeadOpen)),
        StateCode::new(3, ResidualCurrent, Fault(LeadShort)),
        StateCode::new(0, Temperature, Normal),
        StateCode::new(4, Temperature, Alarm),
        StateCode::new(5, Temperature, Fault(LeadOpen)),
        StateCode::new(6, Temperature, Fault(LeadShort)),
    ]
};

/// Built-in profile `"typical-rcm-4t"`: a typical commercial residual-current / temperature
/// monitor with 1 residual-current channel (0) and 4 temperature channels (1–4), Modbus RTU at
/// 9600 baud, slave address 1–247, holding registers only (functions 03/06/16).
///
/// This is a composite of public vendor data — leakage current in 0.1 mA, temperature as
/// raw/10 − 50 °C, state codes 0 normal / 1 alarm / 2 CT open / 3 CT short for leakage and
/// 0 normal / 4 over-temperature / 5 probe open / 6 probe short for temperature — not one
/// vendor's map. The full register table is in the [module documentation](self).
pub static TYPICAL_RCM_TEMP: RegisterMap<'static> =
    RegisterMap::new("typical-rcm-4t", &TYPICAL_REGISTERS, &TYPICAL_STATE_CODES);
