#![doc = include_str!("../README.md")]

pub use firegrid_firmware as firmware;

pub mod device;
pub mod modbus;
pub mod physics;
pub mod sim_bus;
