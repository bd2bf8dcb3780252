#![doc = include_str!("../README.md")]

pub use firegrid_firmware as firmware;

pub mod bench;
pub mod centre;
pub mod device;
pub mod fleet;
pub mod modbus;
pub mod net;
pub mod physics;
pub mod provision;
pub mod scenario;
pub mod sim_bus;
