#![doc = include_str!("../README.md")]

pub use firegrid_firmware as firmware;
