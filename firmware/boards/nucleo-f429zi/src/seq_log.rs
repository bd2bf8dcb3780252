//! A [`SeqStore`] on internal flash: the sequence counter's high-water mark as an append-only
//! log of 8-byte records in two erase sectors, used in turn. Generic over [`NorFlash`], so
//! the host tests run it on a simulated flash with torn writes and torn erases; on the board
//! it is the STM32F429's last two 128 KiB sectors (22 and 23, bank 2,
//! `0x081C_0000..0x0820_0000`).
//!
//! # Record
//!
//! `value` (u32, little endian) then `!value`. Erased flash reads `FF…`: an erased slot fails
//! the check (`!0xFFFF_FFFF = 0`). Programming only clears bits and erasing only sets them, so
//! a record torn by a power loss in either direction can never pass the check with a value
//! other than the one meant: with `v' ⊇ v` and `c' ⊇ !v` bitwise (programming interrupted),
//! `c' = !v'` forces `v' = v` and `c' = !v`; with `v' ⊇ v`, `c' ⊇ !v` the other way round
//! (erasing interrupted) the same algebra holds. So [`SeqStore::store`] is atomic as the trait
//! requires: after a reset [`SeqStore::load`] gives the old mark or the new one.
//!
//! # Log
//!
//! [`SeqStore::load`] is the highest valid record in either sector (marks only grow, so the
//! highest is the newest). A store appends after the last used slot of the active sector
//! (a torn slot counts as used, it is never written twice); when the sector is full it
//! switches to the other one, which must be erased, and the full one becomes dirty. Erasing
//! takes the STM32F4 1–2 s for a 128 KiB sector (up to 4 s), so it is not done in
//! [`SeqStore::store`] unless it must be: the board calls [`FlashSeqStore::maintain`] from its
//! low-priority executor, where a stall does not delay the local alarm.
//!
//! # Wear
//!
//! One 8-byte record per [`SeqStore::store`] (the allocator stores once per 256 numbers and
//! once per boot): 16 384 records per 128 KiB sector, so a sector is erased once per 16 384 ×
//! 256 ≈ 4.2 million sequence numbers — at one message a second, once every 48 days; the
//! STM32F4's 10 000 erase cycles last over a thousand years.

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use firegrid_firmware::seq::SeqStore;

/// Bytes per record: the value and its complement.
pub const RECORD_BYTES: u32 = 8;

/// Where the log lives: two erase sectors, as offsets from the start of the flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// The two sectors' offsets.
    pub sectors: [u32; 2],
    /// The size of each, bytes (a multiple of [`RECORD_BYTES`]).
    pub sector_bytes: u32,
}

impl Region {
    /// The STM32F429ZI's last two 128 KiB sectors (22 and 23, in bank 2): offsets
    /// `0x1C_0000` and `0x1E_0000` from `0x0800_0000`. The linker check in `layout.x` keeps the
    /// program out of them (and in bank 1, so executing never stalls on an erase in bank 2).
    pub const STM32F429ZI: Region = Region {
        sectors: [0x1C_0000, 0x1E_0000],
        sector_bytes: 0x2_0000,
    };

    /// Records per sector.
    pub const fn slots(&self) -> u32 {
        self.sector_bytes / RECORD_BYTES
    }
}

/// Why the store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The flash reported an error.
    Flash(E),
    /// The log cannot hold the value: it is not above the mark stored (marks only grow), or
    /// the region does not fit the flash.
    Refused,
}

impl<E: NorFlashError> Error<E> {
    /// The flash error kind, if the flash failed.
    pub fn kind(&self) -> Option<NorFlashErrorKind> {
        match self {
            Self::Flash(e) => Some(e.kind()),
            Self::Refused => None,
        }
    }
}

/// What a sector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SectorScan {
    /// The highest valid record.
    max: Option<u32>,
    /// Slots up to and including the last one that is not erased.
    used: u32,
}

/// The state found by [`FlashSeqStore::mount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mounted {
    /// Index of the sector appended to.
    active: usize,
    /// The next free slot in it (`slots()` when full).
    next_slot: u32,
    /// Whether the other sector is entirely erased.
    spare_erased: bool,
    /// The mark stored, if any.
    value: Option<u32>,
}

/// The flash log. See the [module documentation](self).
#[derive(Debug)]
pub struct FlashSeqStore<F> {
    flash: F,
    region: Region,
    mounted: Option<Mounted>,
}

impl<F: NorFlash> FlashSeqStore<F> {
    /// The log in `region` of `flash`. No I/O until [`mount`](Self::mount) or the first
    /// [`SeqStore::load`].
    pub const fn new(flash: F, region: Region) -> Self {
        Self {
            flash,
            region,
            mounted: None,
        }
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Reads both sectors (256 KiB on the board: about a millisecond) and finds the mark, the
    /// active sector and the next free slot.
    ///
    /// # Errors
    /// [`Error::Flash`] if reading fails; [`Error::Refused`] if the region does not fit.
    pub fn mount(&mut self) -> Result<(), Error<F::Error>> {
        let region = self.region;
        let fits = region.sectors.iter().all(|&s| {
            s.checked_add(region.sector_bytes)
                .is_some_and(|end| usize::try_from(end).is_ok_and(|e| e <= self.flash.capacity()))
        }) && region.sector_bytes.is_multiple_of(RECORD_BYTES)
            && region.sector_bytes > 0;
        if !fits {
            return Err(Error::Refused);
        }
        let a = self.scan(region.sectors[0])?;
        let b = self.scan(region.sectors[1])?;
        // The active sector holds the highest mark; with none anywhere, the first sector —
        // unless it is full of something else and the second is not.
        let active = match (a.max, b.max) {
            (Some(x), Some(y)) => usize::from(y > x),
            (None, Some(_)) => 1,
            (Some(_), None) => 0,
            (None, None) => usize::from(a.used > 0 && b.used == 0),
        };
        let (act, spare) = if active == 0 { (a, b) } else { (b, a) };
        self.mounted = Some(Mounted {
            active,
            next_slot: act.used,
            spare_erased: spare.used == 0,
            value: a.max.max(b.max),
        });
        Ok(())
    }

    /// The mark stored (after a mount).
    pub fn value(&self) -> Option<u32> {
        self.mounted.and_then(|m| m.value)
    }

    /// Whether the spare sector needs an erase before the active one fills.
    pub fn needs_maintenance(&self) -> bool {
        self.mounted.is_some_and(|m| !m.spare_erased)
    }

    /// Erases the spare sector if it is not erased: the slow operation (1–2 s on the board),
    /// done here rather than in [`SeqStore::store`]. Returns whether it erased.
    ///
    /// # Errors
    /// [`Error::Flash`]; the next call tries again.
    pub fn maintain(&mut self) -> Result<bool, Error<F::Error>> {
        if self.mounted.is_none() {
            self.mount()?;
        }
        let Some(m) = self.mounted else {
            return Ok(false);
        };
        if m.spare_erased {
            return Ok(false);
        }
        self.erase(1_usize.saturating_sub(m.active))?;
        if let Some(m) = self.mounted.as_mut() {
            m.spare_erased = true;
        }
        Ok(true)
    }

    fn sector_offset(&self, index: usize) -> u32 {
        self.region.sectors.get(index).copied().unwrap_or_default()
    }

    fn erase(&mut self, index: usize) -> Result<(), Error<F::Error>> {
        let from = self.sector_offset(index);
        let to = from.saturating_add(self.region.sector_bytes);
        self.flash.erase(from, to).map_err(Error::Flash)
    }

    fn scan(&mut self, sector: u32) -> Result<SectorScan, Error<F::Error>> {
        const CHUNK: u32 = 256;
        let mut buf = [0_u8; CHUNK as usize];
        let mut scan = SectorScan::default();
        let mut offset = 0;
        while offset < self.region.sector_bytes {
            let len = CHUNK.min(self.region.sector_bytes.saturating_sub(offset));
            let chunk = buf.get_mut(..len as usize).unwrap_or_default();
            self.flash
                .read(sector.saturating_add(offset), chunk)
                .map_err(Error::Flash)?;
            for (i, rec) in chunk.chunks_exact(RECORD_BYTES as usize).enumerate() {
                let slot = (offset / RECORD_BYTES).saturating_add(u32::try_from(i).unwrap_or(0));
                if rec.iter().any(|&b| b != 0xFF) {
                    scan.used = slot.saturating_add(1);
                }
                if let Some(v) = decode(rec) {
                    scan.max = scan.max.max(Some(v));
                }
            }
            offset = offset.saturating_add(len);
        }
        Ok(scan)
    }
}

/// The record of `value`.
pub const fn encode(value: u32) -> [u8; RECORD_BYTES as usize] {
    let [a, b, c, d] = value.to_le_bytes();
    let [e, f, g, h] = (!value).to_le_bytes();
    [a, b, c, d, e, f, g, h]
}

/// The value of a valid record.
pub fn decode(record: &[u8]) -> Option<u32> {
    let [a, b, c, d, e, f, g, h] = *record else {
        return None;
    };
    let value = u32::from_le_bytes([a, b, c, d]);
    (u32::from_le_bytes([e, f, g, h]) == !value).then_some(value)
}

impl<F: NorFlash> SeqStore for FlashSeqStore<F> {
    type Error = Error<F::Error>;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        self.mount()?;
        Ok(self.value())
    }

    fn store(&mut self, value: u32) -> Result<(), Self::Error> {
        if self.mounted.is_none() {
            self.mount()?;
        }
        let Some(mut m) = self.mounted else {
            return Err(Error::Refused);
        };
        if m.value.is_some_and(|v| value <= v) {
            return Err(Error::Refused);
        }
        if m.next_slot >= self.region.slots() {
            // Full: on to the spare, erasing it now only if maintenance has not.
            let spare = 1_usize.saturating_sub(m.active);
            if !m.spare_erased {
                self.erase(spare)?;
            }
            m.active = spare;
            m.next_slot = 0;
            m.spare_erased = false; // the full sector is the spare now, and dirty
        }
        let offset = self
            .sector_offset(m.active)
            .saturating_add(m.next_slot.saturating_mul(RECORD_BYTES));
        // Whatever happens to the write, this slot is used: never program it twice.
        m.next_slot = m.next_slot.saturating_add(1);
        self.mounted = Some(m);
        self.flash
            .write(offset, &encode(value))
            .map_err(Error::Flash)?;
        if let Some(mounted) = self.mounted.as_mut() {
            mounted.value = Some(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};
    use firegrid_firmware::seq::{SeqAllocator, SeqError};
    use std::vec;
    use std::vec::Vec;

    /// A NOR flash: writes only clear bits, erases set whole sectors. Can cut a write or an
    /// erase short after a number of bytes (a power loss), and then fails every operation.
    #[derive(Debug, Clone)]
    struct SimFlash {
        mem: Vec<u8>,
        /// Bytes that may still change before the "power" goes.
        budget: Option<usize>,
        erases: u32,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct PowerLost;

    impl NorFlashError for PowerLost {
        fn kind(&self) -> NorFlashErrorKind {
            NorFlashErrorKind::Other
        }
    }

    const SECTOR: u32 = 64; // 8 records: small, so the tests cross sectors often

    impl SimFlash {
        fn new() -> Self {
            Self {
                mem: vec![0xFF; (SECTOR * 4) as usize],
                budget: None,
                erases: 0,
            }
        }

        fn spend(&mut self) -> Result<(), PowerLost> {
            match self.budget.as_mut() {
                Some(0) => Err(PowerLost),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        }

        fn power_back(&mut self) {
            self.budget = None;
        }
    }

    impl ErrorType for SimFlash {
        type Error = PowerLost;
    }

    impl ReadNorFlash for SimFlash {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), PowerLost> {
            if self.budget == Some(0) {
                return Err(PowerLost);
            }
            let o = offset as usize;
            bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.mem.len()
        }
    }

    impl NorFlash for SimFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = SECTOR as usize;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), PowerLost> {
            self.erases += 1;
            // Bits come back in a scattered order: odd bytes first, then even ones.
            let range: Vec<usize> = (from as usize..to as usize)
                .filter(|i| i % 2 == 1)
                .chain((from as usize..to as usize).filter(|i| i % 2 == 0))
                .collect();
            for i in range {
                if self.spend().is_err() {
                    // The byte the power went at is half erased.
                    self.mem[i] |= 0x55;
                    return Err(PowerLost);
                }
                self.mem[i] = 0xFF;
            }
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), PowerLost> {
            for (i, &b) in bytes.iter().enumerate() {
                let o = offset as usize + i;
                if self.spend().is_err() {
                    // The byte the power went at is half programmed: some of its bits
                    // are still 1.
                    self.mem[o] &= b | 0xAA;
                    return Err(PowerLost);
                }
                self.mem[o] &= b;
            }
            Ok(())
        }
    }

    const REGION: Region = Region {
        sectors: [SECTOR, SECTOR * 2],
        sector_bytes: SECTOR,
    };

    fn store(flash: SimFlash) -> FlashSeqStore<SimFlash> {
        FlashSeqStore::new(flash, REGION)
    }

    #[test]
    fn record_round_trip_and_erased_is_invalid() {
        for v in [0, 1, 256, 0xDEAD_BEEF, u32::MAX] {
            assert_eq!(decode(&encode(v)), Some(v));
        }
        assert_eq!(decode(&[0xFF; 8]), None);
        assert_eq!(decode(&[0; 8]), None);
    }

    #[test]
    fn new_flash_loads_nothing_then_keeps_the_highest_mark() {
        let mut s = store(SimFlash::new());
        assert_eq!(s.load(), Ok(None));
        for v in (256..=256 * 20).step_by(256) {
            s.store(v).unwrap();
            assert_eq!(s.value(), Some(v));
            // A fresh mount ("reboot") finds it.
            let mut again = store(s.flash.clone());
            assert_eq!(again.load(), Ok(Some(v)), "after storing {v}");
        }
    }

    #[test]
    fn a_lower_or_equal_mark_is_refused() {
        let mut s = store(SimFlash::new());
        s.store(512).unwrap();
        assert_eq!(s.store(512), Err(Error::Refused));
        assert_eq!(s.store(256), Err(Error::Refused));
        assert_eq!(s.load(), Ok(Some(512)));
    }

    #[test]
    fn sectors_alternate_and_maintenance_does_the_erase() {
        let mut s = store(SimFlash::new());
        s.mount().unwrap();
        assert!(!s.needs_maintenance());
        // 8 records fill a sector; the 9th goes to the other one.
        for v in 1..=9 {
            s.store(v).unwrap();
        }
        assert_eq!(s.flash.erases, 0, "the spare was erased already");
        assert!(s.needs_maintenance());
        assert_eq!(s.maintain(), Ok(true));
        assert_eq!(s.flash.erases, 1);
        assert_eq!(s.maintain(), Ok(false));
        for v in 10..=40 {
            s.store(v).unwrap();
            assert_eq!(store(s.flash.clone()).load(), Ok(Some(v)));
            s.maintain().unwrap();
        }
    }

    #[test]
    fn store_erases_itself_when_maintenance_never_ran() {
        let mut s = store(SimFlash::new());
        for v in 1..=30 {
            s.store(v).unwrap();
        }
        assert_eq!(store(s.flash.clone()).load(), Ok(Some(30)));
        assert!(s.flash.erases >= 2);
    }

    #[test]
    fn garbage_in_the_region_is_used_around_not_trusted() {
        let mut flash = SimFlash::new();
        // An old firmware image left bytes in the first sector: no valid record among them.
        for (i, b) in flash.mem[SECTOR as usize..2 * SECTOR as usize]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(37);
        }
        let mut s = store(flash);
        assert_eq!(s.load(), Ok(None));
        s.store(256).unwrap();
        assert_eq!(store(s.flash.clone()).load(), Ok(Some(256)));
    }

    /// The trait's promise: power lost at any byte of a store, or of the erase a store or
    /// maintenance does, leaves the old mark or the new one, never less, never garbage.
    #[test]
    fn power_loss_at_any_byte_keeps_old_or_new() {
        let mut base = store(SimFlash::new());
        for v in 1..=7 {
            base.store(v * 100).unwrap();
        }
        // Slot 8 of 8 is the last of the first sector; the store after it crosses, and with
        // the spare dirtied beforehand it must erase too.
        base.flash.mem[(2 * SECTOR) as usize] = 0x00;
        for (old, new) in [(700, 800), (800, 900)] {
            let mut cut = 0;
            loop {
                let mut s = store(base.flash.clone());
                s.load().unwrap();
                if old == 800 {
                    s.store(800).unwrap();
                }
                s.flash.budget = Some(cut);
                let r = s.store(new);
                s.flash.power_back();
                let got = store(s.flash.clone()).load().unwrap();
                assert!(
                    got == Some(old) || got == Some(new),
                    "cut after {cut} bytes: loaded {got:?}, expected {old} or {new}"
                );
                if r.is_ok() {
                    assert_eq!(got, Some(new));
                    break;
                }
                cut += 1;
            }
            assert!(cut > 0);
        }
    }

    #[test]
    fn power_loss_during_maintenance_is_harmless() {
        let mut base = store(SimFlash::new());
        for v in 1..=9 {
            base.store(v).unwrap();
        }
        assert!(base.needs_maintenance());
        for cut in (0..SECTOR as usize).step_by(3) {
            let mut s = store(base.flash.clone());
            s.mount().unwrap();
            s.flash.budget = Some(cut);
            assert!(s.maintain().is_err());
            s.flash.power_back();
            let mut again = store(s.flash.clone());
            assert_eq!(again.load(), Ok(Some(9)));
            again.store(10).unwrap();
            assert_eq!(store(again.flash.clone()).load(), Ok(Some(10)));
        }
    }

    #[test]
    fn drives_the_allocator_across_reboots() {
        let mut flash = SimFlash::new();
        let mut last = None;
        for _boot in 0..30 {
            let mut seqs = SeqAllocator::<_, 4>::new(store(flash.clone()));
            for _ in 0..5 {
                let s = seqs.next().unwrap();
                assert!(last.is_none_or(|l| s > l), "{s} after {last:?}");
                last = Some(s);
            }
            let mut st = seqs.into_store();
            st.maintain().unwrap();
            flash = st.into_inner();
        }
    }

    #[test]
    fn a_region_outside_the_flash_is_refused() {
        let mut s = FlashSeqStore::new(
            SimFlash::new(),
            Region {
                sectors: [0, SECTOR * 4],
                sector_bytes: SECTOR,
            },
        );
        assert_eq!(s.load(), Err(Error::Refused));
        let mut seqs = SeqAllocator::<_, 4>::new(s);
        assert!(matches!(seqs.next(), Err(SeqError::Load(Error::Refused))));
    }
}
