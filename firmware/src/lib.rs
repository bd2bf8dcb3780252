#![no_std]
#![doc = include_str!("../README.md")]
// Nothing read from a bus, a sensor or the network may panic the device.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(test)]
extern crate std;

pub mod backoff;
pub mod clock;
pub mod device;
pub mod drivers;
pub mod monitor;
pub mod mqtt;
pub mod outbox;
pub mod seq;

pub use firegrid_protocols as protocols;
