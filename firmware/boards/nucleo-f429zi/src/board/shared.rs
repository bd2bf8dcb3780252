//! What the two executors share: inputs up, indicators and requests down. Critical-section
//! mutexes, because the senders and receivers run at different interrupt priorities.

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::signal::Signal;
use firegrid_firmware::monitor::{Indicators, Input};

/// Inputs for the device, from the sensing and line tasks (high priority) to the runner
/// (thread mode). Senders wait when it is full (the runner stalled): an edge is delayed,
/// never lost. 16 inputs are 3 s of the sensing task's output.
pub(crate) static INPUTS: Channel<CriticalSectionRawMutex, Input, 16> = Channel::new();

/// The indicators to show: the latest wins.
pub(crate) static INDICATORS: Signal<CriticalSectionRawMutex, Indicators> = Signal::new();

/// The device asked for a battery measurement.
pub(crate) static MEASURE_BATTERY: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// The device asked for a sensor check (self-test).
pub(crate) static CHECK_SENSORS: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Milliseconds since boot on the embassy-time clock.
pub(crate) fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}
