#![doc = include_str!("../README.md")]

pub mod broker;
pub mod config;
pub mod engine;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod store;

pub use firegrid_protocols as protocols;
