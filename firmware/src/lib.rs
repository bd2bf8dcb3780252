#![no_std]
#![doc = include_str!("../README.md")]

#[cfg(test)]
extern crate std;

pub mod drivers;
pub mod monitor;
pub mod outbox;
pub mod seq;

pub use firegrid_protocols as protocols;
