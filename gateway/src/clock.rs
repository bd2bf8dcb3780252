//! The wall clock: the one place the gateway reads it.
//!
//! Decisions never read it: the engine, the pipeline's planner and the Modbus poller take
//! `now` as an argument, and only the I/O shells around them call [`now_ms`] (the firmware's
//! `clock::Clock` trait is the same idea on the device side).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::UnixMs;

/// The wall clock, ms since the Unix epoch (0 if the system clock is before 1970).
pub fn now_ms() -> UnixMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
