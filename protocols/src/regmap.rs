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
//!
//! [`ChannelState`]: crate::channel::ChannelState
//! [`Quantity`]: crate::channel::Quantity

mod error;
mod map;
mod meaning;
mod profile;
mod register;
mod scale;

pub use error::{DecodeError, EncodeError, MapError, StateCodeError};
pub use map::{ReadBlock, ReadBlocks, RegisterMap, StateCode};
pub use meaning::{Meaning, Unit};
pub use profile::TYPICAL_RCM_TEMP;
pub use register::{RawWords, Register, RegisterKind, ValueType, WordOrder};
pub use scale::Scale;

#[cfg(test)]
use crate::channel::ChannelState;
#[cfg(test)]
use profile::{TYPICAL_REGISTERS, TYPICAL_STATE_CODES};
#[cfg(test)]
use scale::div_round;

#[cfg(test)]
mod tests;

/// The most registers (16-bit words) one Modbus read (function 03/04) may return.
pub const MAX_READ_REGISTERS: u16 = 125;

/// The most bits one Modbus read of coils or discrete inputs (function 01/02) may return.
pub const MAX_READ_BITS: u16 = 2000;
