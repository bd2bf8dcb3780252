//! Simulated legacy monitors over Modbus: servers speaking the built-in profile
//! `typical-rcm-4t`, driven by the same physical models as the simulated MQTT devices, with
//! fault injection; and the Modbus benchmark.
//!
//! - [`monitor`]: one monitor as registers — its [`Models`](crate::device::Models), its
//!   settings, and its own alarm logic (pure; time passed in).
//! - [`server`]: Modbus TCP and RTU servers (tokio-modbus) holding monitors by slave id, with
//!   [`Fault`] injection per slave (no reply, late reply, exception, garbage).
//! - [`bench`](mod@bench): polls per second over one TCP connection and across a fleet of monitors.

pub mod bench;
pub mod monitor;
pub mod server;

pub use monitor::SimMonitor;
pub use server::{Fault, ModbusSim, Slaves};
