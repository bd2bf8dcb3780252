//! [`RegisterMap`]: a device's registers and state codes, its validation and its read plan
//! ([`ReadBlocks`]).

use serde::{Deserialize, Serialize};

use super::{MapError, Meaning, Register, RegisterKind, StateCodeError};
use crate::channel::{ChannelNo, ChannelState, MAX_CHANNELS, Quantity};

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

/// A device's register layout and state codes.
///
/// Borrowed so that a built-in profile is `'static` ([`TYPICAL_RCM_TEMP`]) and one loaded at run
/// time can live in vectors the caller owns. Only `Serialize` is derived (borrowed slices cannot
/// be deserialized): deserialize the rows ([`Register`], [`StateCode`]) into owned storage, then
/// build the map with [`RegisterMap::new`] and [`validate`](RegisterMap::validate) it.
///
/// [`TYPICAL_RCM_TEMP`]: super::TYPICAL_RCM_TEMP
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
