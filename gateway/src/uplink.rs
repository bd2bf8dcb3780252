//! The GB/T 26875.3 uplink: firegrid reports to a city's remote fire-monitoring centre as a
//! user information transmission device (用户信息传输装置), `[uplink.gb26875]` in the
//! configuration (docs/gb26875.md).
//!
//! Alarm, fault and smoke episodes (and offline, battery-low) become type-2 component status
//! frames, readings type-3 analog values, the gateway's own state type 21 — including faults of
//! the link to the centre. Every frame goes by send/confirm with the standard's timeout and
//! retransmission; the frames of alerts are journaled (`data_dir/uplink.db`) before they are
//! sent and leave that journal only when confirmed, so they survive reconnects and restarts and
//! are sent again byte for byte (same serial number: the centre never sees a new event twice).
//!
//! # Layout
//!
//! - [`config`]: the `[uplink.gb26875]` section.
//! - [`session`]: the pure session core (`handle(input, now)`, `next_deadline()`).
//! - [`mapping`]: firegrid's devices and episodes → the standard's components and statuses.
//! - [`store`]: the uplink's journal of unconfirmed frames, device numbers, serial counter.
//! - [`shell`]: the TCP connection, the outbox follower, the timers.
//! - [`describe`], [`text`], [`time`]: frames as JSON (`firegrid gb26875 decode`), GB18030,
//!   time tags.
//! - [`stats`]: the `/metrics` series.

pub mod config;
pub mod describe;
pub mod mapping;
mod reports;
pub mod session;
pub mod shell;
pub mod stats;
pub mod store;
pub mod text;
pub mod time;
