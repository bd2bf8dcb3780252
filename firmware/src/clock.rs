//! Time for the device runner: a monotonic millisecond clock and a way to wait for a deadline.
//!
//! The runner ([`crate::mqtt::run`]) takes every time from [`Clock::now_ms`] — milliseconds since
//! boot, never going back, the `now_ms` of [`crate::device::Device`] and of the monitor — and
//! waits with [`Clock::sleep_until`]. The shell implements it with what the platform has:
//!
//! - on the board, embassy-time (with its time driver on a hardware timer):
//!
//!   ```ignore
//!   struct EmbassyClock;
//!   impl firegrid_firmware::clock::Clock for EmbassyClock {
//!       fn now_ms(&self) -> u64 {
//!           embassy_time::Instant::now().as_millis()
//!       }
//!       async fn sleep_until(&self, deadline_ms: u64) {
//!           embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline_ms)).await
//!       }
//!   }
//!   ```
//!
//! - on the host and in the simulator, tokio: `mqtt::host::TokioClock` (feature `tokio`).
//!
//! `sleep_until` takes `&self`, not `&mut self`: the runner waits on a deadline while it also
//! holds other futures, and neither embassy's `Timer::at` nor tokio's `sleep_until` needs
//! exclusive state. Its future must be cancel-safe (dropping it before it fires has no effect),
//! which both are: the runner races it against network and sensor futures.

use core::future::Future;

/// A monotonic millisecond clock that can wait. See the [module documentation](self).
pub trait Clock {
    /// Milliseconds since boot; never goes back.
    fn now_ms(&self) -> u64;

    /// Completes at or after `deadline_ms` (at once if it has passed). Cancel-safe.
    fn sleep_until(&self, deadline_ms: u64) -> impl Future<Output = ()>;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn sleep_until(&self, deadline_ms: u64) -> impl Future<Output = ()> {
        (**self).sleep_until(deadline_ms)
    }
}
