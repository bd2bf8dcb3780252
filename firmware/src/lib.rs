#![no_std]
#![doc = include_str!("../README.md")]

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
