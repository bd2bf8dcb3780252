#![doc = include_str!("../README.md")]

pub use firegrid_protocols as protocols;
