#![doc = include_str!("../README.md")]

pub mod access;
pub mod api;
pub mod app;
pub mod broker;
pub mod clock;
pub mod config;
pub mod control;
pub mod engine;
pub mod fuzzing;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod modbus;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod secret;
pub mod store;
#[cfg(any(test, feature = "test-support", feature = "bench"))]
pub mod testing;
pub mod tls;
pub mod tsdb;
pub mod uplink;
pub mod workflow;

pub use firegrid_protocols as protocols;
