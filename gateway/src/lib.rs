#![doc = include_str!("../README.md")]

pub mod access;
pub mod alarm_path;
pub mod api;
pub mod app;
pub mod broker;
pub mod circuits;
pub mod clock;
pub mod commissioning;
pub mod config;
pub mod control;
pub mod disk;
pub mod engine;
pub mod evidence;
pub mod fuzzing;
pub mod ingest;
pub mod maintenance;
pub mod malloc;
pub mod metrics;
pub mod modbus;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod reports;
pub mod secret;
pub mod store;
pub mod tls;
pub mod tsdb;
pub mod uplink;
pub mod workflow;

pub use firegrid_protocols as protocols;
