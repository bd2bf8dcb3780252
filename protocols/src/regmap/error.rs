//! The error types of the module: [`DecodeError`], [`EncodeError`], [`StateCodeError`] and
//! [`MapError`].

use core::fmt;

use super::{Meaning, RegisterKind, ValueType};
use crate::channel::{ChannelNo, ChannelState, MAX_CHANNELS, Quantity};

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
    ///
    /// [`Register::decode_bit`]: super::Register::decode_bit
    BitRegisterAsWords {
        /// The register's address.
        address: u16,
    },
    /// A word register was given a bit; use [`Register::decode`].
    ///
    /// [`Register::decode`]: super::Register::decode
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
    ///
    /// [`Register::encode_bit`]: super::Register::encode_bit
    BitRegisterAsWords {
        /// The register's address.
        address: u16,
    },
    /// A word register was asked for a bit; use [`Register::encode`].
    ///
    /// [`Register::encode`]: super::Register::encode
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
///
/// [`RegisterMap`]: super::RegisterMap
/// [`RegisterMap::validate`]: super::RegisterMap::validate
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
