//! [`Register`]: one value at one Modbus address, its kind and type, and its decoding and
//! encoding into raw words ([`RawWords`]).

use core::fmt;
use core::ops::{Deref, RangeInclusive};

use serde::{Deserialize, Serialize};

use super::scale::{ceil_div, floor_div};
use super::{DecodeError, EncodeError, MAX_READ_BITS, MAX_READ_REGISTERS, Meaning, Scale};

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
