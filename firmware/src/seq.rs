//! Sequence numbers that survive reboot.
//!
//! Every uplink message carries a [`Seq`] from **one counter per device** that strictly
//! increases, across reboots too (`docs/protocol.md`, "Sequence numbers and time"): the gateway
//! deduplicates events by (device, `seq`), so a number used twice would make it drop a real
//! alarm as a duplicate.
//!
//! [`SeqAllocator`] keeps the counter in RAM and reserves numbers in **blocks** of `BLOCK` in
//! non-volatile storage ([`SeqStore`]): the stored value is a high-water mark `H` meaning "no
//! number at or above `H` has been handed out". At start it loads `H` (nothing stored: 0),
//! stores `H + BLOCK`, and then hands out `H, H + 1, …, H + BLOCK - 1` without writing; at the
//! end of the block it stores the next mark before handing out more. A number is handed out
//! only once a mark above it is stored, so after any reboot the counter starts above every
//! number used before. A reboot skips the unused rest of its block (at most `BLOCK - 1`
//! numbers), which the protocol allows; the gateway counts it as a gap in telemetry.
//!
//! ```
//! use firegrid_firmware::seq::{MemStore, SeqAllocator};
//!
//! let mut flash = MemStore::new();
//! let mut seqs = SeqAllocator::<_, 256>::new(&mut flash);
//! assert_eq!(seqs.next(), Ok(0));
//! assert_eq!(seqs.next(), Ok(1));
//! drop(seqs); // reboot
//! let mut seqs = SeqAllocator::<_, 256>::new(&mut flash);
//! assert_eq!(seqs.next(), Ok(256)); // skipped the rest of the first block, never reused
//! assert_eq!(flash.writes(), 2);
//! ```
//!
//! # Wear
//!
//! One write per `BLOCK` numbers, plus one per boot. With [`DEFAULT_BLOCK`] = 256 and one
//! uplink message every 10 s, that is one write per 2 560 s (≈ 43 min), ≈ 12 300 writes a
//! year; at the protocol's defaults (telemetry and heartbeat every 60 s, so ≈ 2 messages a
//! minute) one write per ≈ 2 h 8 min, ≈ 4 100 a year. Writing the same flash word in place that
//! often would wear out a 10 000-cycle MCU flash page in a year or two, so a [`SeqStore`] on
//! internal flash must level wear (e.g. append 8-byte records to a 2 KiB page and erase it
//! every 256 records: ≈ 48 erases a year at one message per 10 s); on a 1 000 000-cycle EEPROM
//! a single word lasts ≈ 80 years.
//!
//! # Running out
//!
//! The counter does **not** wrap: a wrapped number would look old to the gateway and be
//! dropped as a duplicate. The highest number handed out is `u32::MAX - 1` (the mark is
//! exclusive); after it [`SeqAllocator::next`] returns [`SeqError::Exhausted`] forever.
//! 2^32 messages at one a second take 136 years, and each reboot burns at most one block, so
//! 16 million reboots would be needed to exhaust the counter by reboots alone.
//!
//! # What a [`SeqStore`] must guarantee
//!
//! [`SeqStore::store`] must be atomic with respect to power loss: after a reset,
//! [`SeqStore::load`] returns either the previous value or the new one, never an erased or
//! torn word read as "nothing stored" or as a smaller number (use two slots with a checksum
//! and a generation, or a log). If `store` reports an error, the allocator assumes nothing was
//! written and hands out no number of the block it was reserving.

use core::fmt;

use firegrid_protocols::message::Seq;

/// The default block size: numbers reserved by one storage write.
pub const DEFAULT_BLOCK: u32 = 256;

/// Non-volatile storage of the sequence counter's high-water mark (flash, EEPROM, FRAM, a
/// backup register…). See the [module documentation](self) for the atomicity it must give.
pub trait SeqStore {
    /// Why reading or writing failed.
    type Error;

    /// The stored high-water mark, or `None` if nothing was ever stored (a new device).
    ///
    /// # Errors
    /// The storage could not be read; the allocator hands out nothing until a load succeeds.
    fn load(&mut self) -> Result<Option<u32>, Self::Error>;

    /// Stores a new high-water mark, replacing the old one atomically.
    ///
    /// # Errors
    /// The storage could not be written; the allocator treats the value as not stored.
    fn store(&mut self, value: u32) -> Result<(), Self::Error>;
}

impl<S: SeqStore + ?Sized> SeqStore for &mut S {
    type Error = S::Error;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        (**self).load()
    }

    fn store(&mut self, value: u32) -> Result<(), Self::Error> {
        (**self).store(value)
    }
}

/// Why no sequence number was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqError<E> {
    /// The stored high-water mark could not be read at start. Nothing was handed out; the next
    /// call tries again.
    Load(E),
    /// The next block could not be reserved. Nothing was handed out; the next call tries again.
    Store(E),
    /// Every number below `u32::MAX` has been used; there will be no more (see the module
    /// documentation on running out).
    Exhausted,
}

impl<E: fmt::Display> fmt::Display for SeqError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => write!(f, "cannot read the sequence counter: {e}"),
            Self::Store(e) => write!(f, "cannot reserve sequence numbers: {e}"),
            Self::Exhausted => f.write_str("sequence numbers exhausted (u32::MAX reached)"),
        }
    }
}

/// The numbers this boot may hand out: `next..limit`, where `limit` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reserved {
    next: u32,
    limit: u32,
}

/// Hands out strictly increasing sequence numbers, reserving them `BLOCK` at a time in a
/// [`SeqStore`]. See the [module documentation](self).
///
/// `BLOCK` must not be 0 (a compile-time error).
#[derive(Debug)]
pub struct SeqAllocator<S, const BLOCK: u32 = DEFAULT_BLOCK> {
    store: S,
    /// `None` until the high-water mark has been loaded.
    reserved: Option<Reserved>,
}

impl<S: SeqStore, const BLOCK: u32> SeqAllocator<S, BLOCK> {
    /// Numbers reserved by one storage write.
    pub const BLOCK: u32 = BLOCK;

    /// An allocator over `store`. Does no I/O: the first [`next`](Self::next) (or
    /// [`start`](Self::start)) loads the mark and reserves the first block.
    pub const fn new(store: S) -> Self {
        const { assert!(BLOCK > 0, "SeqAllocator: BLOCK must be at least 1") };
        Self {
            store,
            reserved: None,
        }
    }

    /// Loads the stored mark and reserves a block now, if that is not done yet, so that a
    /// broken storage shows at boot rather than at the first alarm. Calling it again is cheap
    /// (no I/O while numbers are reserved).
    ///
    /// # Errors
    /// [`SeqError::Load`], [`SeqError::Store`] or [`SeqError::Exhausted`]; the next call (or
    /// [`next`](Self::next)) retries.
    pub fn start(&mut self) -> Result<(), SeqError<S::Error>> {
        self.ensure_reserved().map(|_| ())
    }

    /// The next sequence number. Writes the storage once per `BLOCK` numbers (and at start).
    ///
    /// # Errors
    /// - [`SeqError::Load`]: the mark could not be read (only before the first success);
    /// - [`SeqError::Store`]: the next block could not be reserved;
    /// - [`SeqError::Exhausted`]: `u32::MAX - 1` was handed out already.
    ///
    /// In every case no number is handed out, and none is skipped or reused by the error.
    #[allow(
        clippy::should_implement_trait,
        reason = "fallible, so not an `Iterator`: `None` would hide why"
    )]
    pub fn next(&mut self) -> Result<Seq, SeqError<S::Error>> {
        let r = self.ensure_reserved()?;
        let seq = r.next;
        // `next < limit <= u32::MAX` after `ensure_reserved`, so this cannot overflow.
        r.next = seq.checked_add(1).ok_or(SeqError::Exhausted)?;
        Ok(seq)
    }

    /// How many numbers can be handed out before the next storage write (0 before start).
    pub fn remaining_in_block(&self) -> u32 {
        self.reserved.map_or(0, |r| r.limit.saturating_sub(r.next))
    }

    /// The storage.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The storage, mutably (e.g. to inject faults in tests). Writing a lower mark behind the
    /// allocator's back breaks the guarantee after the next reboot.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the storage back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Makes sure `next < limit`, loading and storing as needed.
    fn ensure_reserved(&mut self) -> Result<&mut Reserved, SeqError<S::Error>> {
        let r = match &mut self.reserved {
            Some(r) => r,
            slot @ None => {
                let mark = self.store.load().map_err(SeqError::Load)?.unwrap_or(0);
                // Kept even if the store below fails: the mark is read once per boot.
                slot.insert(Reserved {
                    next: mark,
                    limit: mark,
                })
            }
        };
        if r.next >= r.limit {
            let limit = r.limit.saturating_add(BLOCK);
            if limit <= r.next {
                return Err(SeqError::Exhausted);
            }
            self.store.store(limit).map_err(SeqError::Store)?;
            r.limit = limit;
        }
        Ok(r)
    }
}

/// The failure a [`MemStore`] was told to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault;

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected storage fault")
    }
}

/// A [`SeqStore`] in RAM, for tests and the simulator: it "survives" a reboot as long as the
/// value itself is kept (pass `&mut store` to each new allocator). Can be told to fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStore {
    value: Option<u32>,
    writes: u32,
    fail_load: bool,
    fail_store: bool,
}

impl MemStore {
    /// An empty store (a new device).
    pub const fn new() -> Self {
        Self {
            value: None,
            writes: 0,
            fail_load: false,
            fail_store: false,
        }
    }

    /// A store holding `value` (a device that has run before).
    pub const fn with_value(value: u32) -> Self {
        Self {
            value: Some(value),
            writes: 0,
            fail_load: false,
            fail_store: false,
        }
    }

    /// The stored value.
    pub const fn value(&self) -> Option<u32> {
        self.value
    }

    /// How many successful writes so far.
    pub const fn writes(&self) -> u32 {
        self.writes
    }

    /// Makes every [`SeqStore::load`] fail (or work again).
    pub fn set_fail_load(&mut self, fail: bool) {
        self.fail_load = fail;
    }

    /// Makes every [`SeqStore::store`] fail without writing (or work again).
    pub fn set_fail_store(&mut self, fail: bool) {
        self.fail_store = fail;
    }
}

impl SeqStore for MemStore {
    type Error = InjectedFault;

    fn load(&mut self) -> Result<Option<u32>, InjectedFault> {
        if self.fail_load {
            return Err(InjectedFault);
        }
        Ok(self.value)
    }

    fn store(&mut self, value: u32) -> Result<(), InjectedFault> {
        if self.fail_store {
            return Err(InjectedFault);
        }
        self.value = Some(value);
        self.writes = self.writes.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    type Alloc<'a, const B: u32> = SeqAllocator<&'a mut MemStore, B>;

    #[test]
    fn new_device_starts_at_zero_and_reserves_one_block() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.remaining_in_block(), 0);
        assert_eq!(a.next(), Ok(0));
        assert_eq!(a.remaining_in_block(), 255);
        assert_eq!(a.store().value(), Some(256));
        assert_eq!(a.store().writes(), 1);
    }

    #[test]
    fn new_does_no_io_and_start_reserves_eagerly() {
        let mut flash = MemStore::with_value(1000);
        let mut a = Alloc::<'_, 10>::new(&mut flash);
        assert_eq!(a.store().writes(), 0);
        assert_eq!(a.start(), Ok(()));
        assert_eq!(a.store().value(), Some(1010));
        assert_eq!(a.start(), Ok(()));
        assert_eq!(a.store().writes(), 1, "a second start writes nothing");
        assert_eq!(a.next(), Ok(1000));
    }

    #[test]
    fn one_write_per_block() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        for expected in 0..2560 {
            assert_eq!(a.next(), Ok(expected));
        }
        assert_eq!(a.store().writes(), 10);
        assert_eq!(a.store().value(), Some(2560));
    }

    #[test]
    fn block_boundary_reserves_before_handing_out() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 4>::new(&mut flash);
        let got: Vec<_> = (0..4).map(|_| a.next().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(a.store().value(), Some(4));
        assert_eq!(a.remaining_in_block(), 0);
        // The 5th number needs the next block: written first.
        assert_eq!(a.next(), Ok(4));
        assert_eq!(a.store().value(), Some(8));
        assert_eq!(a.store().writes(), 2);
    }

    #[test]
    fn block_of_one_writes_every_number() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 1>::new(&mut flash);
        for expected in 0..5 {
            assert_eq!(a.next(), Ok(expected));
            assert_eq!(a.store().value(), Some(expected + 1));
        }
        assert_eq!(a.store().writes(), 5);
    }

    #[test]
    fn strictly_increasing_across_reboots() {
        let mut flash = MemStore::new();
        let mut last: Option<u32> = None;
        // Reboot after 0, 1, 5, 255, 256, 257, 600 messages, in turn.
        for used in [0usize, 1, 5, 255, 256, 257, 600, 3] {
            let mut a = Alloc::<'_, 256>::new(&mut flash);
            for _ in 0..used {
                let s = a.next().unwrap();
                if let Some(l) = last {
                    assert!(s > l, "{s} after {l}");
                }
                last = Some(s);
            }
        }
        assert!(last.is_some());
    }

    #[test]
    fn reboot_skips_at_most_one_block() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        for _ in 0..10 {
            a.next().unwrap();
        }
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Ok(256));
        // A reboot that handed out nothing still reserved (and burned) a block: never reused.
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        a.start().unwrap();
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Ok(768));
    }

    #[test]
    fn load_failure_hands_out_nothing_and_retries() {
        let mut flash = MemStore::with_value(500);
        flash.set_fail_load(true);
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Err(SeqError::Load(InjectedFault)));
        assert_eq!(a.start(), Err(SeqError::Load(InjectedFault)));
        assert_eq!(a.store().writes(), 0, "never writes a mark it did not read");
        a.store_mut().set_fail_load(false);
        assert_eq!(a.next(), Ok(500));
        assert_eq!(a.store().value(), Some(756));
    }

    #[test]
    fn store_failure_at_start_hands_out_nothing() {
        let mut flash = MemStore::with_value(100);
        flash.set_fail_store(true);
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Err(SeqError::Store(InjectedFault)));
        assert_eq!(a.next(), Err(SeqError::Store(InjectedFault)));
        assert_eq!(a.remaining_in_block(), 0);
        // Power lost while failing: the next boot starts from the same mark, nothing was used.
        let mut a = Alloc::<'_, 256>::new(a.into_store());
        a.store_mut().set_fail_store(false);
        assert_eq!(a.next(), Ok(100));
    }

    #[test]
    fn store_failure_at_block_end_hands_out_nothing_until_stored() {
        let mut flash = MemStore::new();
        let mut a = Alloc::<'_, 4>::new(&mut flash);
        for expected in 0..4 {
            assert_eq!(a.next(), Ok(expected));
        }
        a.store_mut().set_fail_store(true);
        for _ in 0..3 {
            assert_eq!(a.next(), Err(SeqError::Store(InjectedFault)));
        }
        assert_eq!(a.store().value(), Some(4));
        // A reboot now must not reuse 0..4: it starts at 4, and so does the running one.
        a.store_mut().set_fail_store(false);
        assert_eq!(
            a.next(),
            Ok(4),
            "no number skipped or reused by the failures"
        );
        assert_eq!(a.store().value(), Some(8));
        let mut b = Alloc::<'_, 4>::new(a.into_store());
        assert_eq!(b.next(), Ok(8));
    }

    #[test]
    fn saturates_at_u32_max_and_reports_exhaustion() {
        let mut flash = MemStore::with_value(u32::MAX - 3);
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Ok(u32::MAX - 3));
        assert_eq!(a.store().value(), Some(u32::MAX), "the mark saturates");
        assert_eq!(a.next(), Ok(u32::MAX - 2));
        assert_eq!(a.next(), Ok(u32::MAX - 1));
        assert_eq!(a.next(), Err(SeqError::Exhausted));
        assert_eq!(a.next(), Err(SeqError::Exhausted));
        assert_eq!(a.store().writes(), 1);
        // And after a reboot too, without writing.
        let mut a = Alloc::<'_, 256>::new(&mut flash);
        assert_eq!(a.next(), Err(SeqError::Exhausted));
        assert_eq!(a.start(), Err(SeqError::Exhausted));
        assert_eq!(flash.writes(), 1);
    }

    #[test]
    fn errors_display() {
        use std::string::ToString;
        assert_eq!(
            SeqError::Store(InjectedFault).to_string(),
            "cannot reserve sequence numbers: injected storage fault"
        );
        assert!(
            SeqError::<InjectedFault>::Exhausted
                .to_string()
                .contains("exhausted")
        );
    }

    /// The simulated-reboot property: whatever the pattern of boots, uses and storage
    /// failures, the numbers handed out over all boots strictly increase.
    #[test]
    fn pseudo_random_boots_and_faults() {
        let mut flash = MemStore::new();
        let mut handed = Vec::new();
        let mut x: u32 = 0x2545_f491; // xorshift state
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _boot in 0..200 {
            let mut a = Alloc::<'_, 16>::new(&mut flash);
            for _ in 0..(rand() % 40) {
                a.store_mut().set_fail_store(rand() % 7 == 0);
                a.store_mut().set_fail_load(rand() % 11 == 0);
                if let Ok(s) = a.next() {
                    handed.push(s);
                }
            }
            flash.set_fail_store(false);
            flash.set_fail_load(false);
        }
        assert!(handed.len() > 1000);
        assert!(handed.windows(2).all(|w| w[0] < w[1]));
    }
}
