#![no_std]
#![doc = include_str!("../README.md")]

pub use firegrid_protocols as protocols;
