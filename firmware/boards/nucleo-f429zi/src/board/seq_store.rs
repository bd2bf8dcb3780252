//! The sequence-number store the device uses: the flash log ([`crate::seq_log`]) on the
//! STM32F429's last two sectors, shared between the device (which stores a mark once per 256
//! numbers) and the maintenance task (which erases the spare sector when the active one
//! filled). Both run in thread mode, so a thread-mode mutex suffices and never masks
//! interrupts: a 1–2 s erase stalls only thread mode, never the local alarm.

use core::cell::RefCell;

use defmt::{Debug2Format, info, warn};
use embassy_stm32::flash::{Blocking, Flash};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::ThreadModeRawMutex;
use embassy_time::{Duration, Ticker};
use firegrid_firmware::seq::SeqStore;

use crate::seq_log::{Error, FlashSeqStore};

/// How often the maintenance task looks at the spare sector.
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(60);

/// The flash log over the HAL's blocking flash driver.
pub(crate) type BoardStore = FlashSeqStore<Flash<'static, Blocking>>;
/// The store in its thread-mode mutex.
pub(crate) type StoreCell = Mutex<ThreadModeRawMutex, RefCell<BoardStore>>;

/// A handle to the shared store: what the device's sequence allocator owns.
#[derive(Clone, Copy)]
pub(crate) struct SharedSeqStore(&'static StoreCell);

impl SharedSeqStore {
    pub(crate) const fn new(cell: &'static StoreCell) -> Self {
        Self(cell)
    }

    /// Erases the spare sector if it needs it; logs what happened.
    pub(crate) fn maintain(&self) {
        match self.0.lock(|s| s.borrow_mut().maintain()) {
            Ok(true) => info!("sequence log: spare sector erased"),
            Ok(false) => {}
            Err(e) => warn!("sequence log maintenance: {}", Debug2Format(&e)),
        }
    }
}

impl SeqStore for SharedSeqStore {
    type Error = Error<embassy_stm32::flash::Error>;

    fn load(&mut self) -> Result<Option<u32>, Self::Error> {
        self.0.lock(|s| s.borrow_mut().load())
    }

    fn store(&mut self, value: u32) -> Result<(), Self::Error> {
        self.0.lock(|s| s.borrow_mut().store(value))
    }
}

#[embassy_executor::task]
pub(crate) async fn maintenance_task(store: SharedSeqStore) -> ! {
    let mut ticker = Ticker::every(MAINTENANCE_PERIOD);
    loop {
        ticker.next().await;
        store.maintain();
    }
}
