//! GB/T 26875.3-2011, the alarm transmission network protocol between a user information
//! transmission device (用户信息传输装置) and a city's remote fire-monitoring centre
//! (城市消防远程监控中心).
//!
//! A frame is `@@` · control unit (25 bytes: serial number, version, send-time tag, source and
//! destination addresses, ADU length, command) · application data unit (≤ 1024 bytes) ·
//! checksum · `##`. Everything here works on byte slices without a heap, like the rest of the
//! crate; descriptions are carried as raw GB18030 bytes, decoded where `std` is available.
//!
//! # Layout
//!
//! - [`frame`]: the frame — control unit, checksum, [`frame::decode`] and [`frame::encode`],
//!   confirm and deny replies.
//! - [`adu`]: the application data unit and its typed information objects (uplink types 1–8,
//!   21, 24–26, 28; downlink 61–68, 81–91; anything else kept raw), parse and encode.
//! - [`split`]: a streaming splitter for TCP reads: garbage, split and merged reads, and
//!   private protocols that reuse `@@ … ##` (the length field decides).
//! - [`profile`]: the vendor variants seen in the field (checksum rule, version bytes, status
//!   bit 0), as named profiles.
//!
//! ```
//! use firegrid_protocols::gb26875::{adu::{Adu, Object}, frame, profile::STANDARD};
//!
//! // A keep-alive: command 2 with an empty ADU (a real frame from an open implementation).
//! let bytes = [
//!     0x40, 0x40, 0x00, 0x00, 0x01, 0x01, 0x0c, 0x3b, 0x0c, 0x1b, 0x0c, 0x11, 0x67, 0x2b,
//!     0x00, 0x00, 0x00, 0x00, 0x38, 0x5b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xb5,
//!     0x23, 0x23,
//! ];
//! let f = frame::decode(&bytes, &STANDARD).unwrap();
//! assert_eq!(f.header.command, frame::Command::SEND);
//! assert!(f.adu.is_empty());
//! let mut out = [0u8; frame::MAX_FRAME];
//! let n = frame::encode(&f.header, f.adu, &STANDARD, &mut out).unwrap();
//! assert_eq!(&out[..n], &bytes[..]);
//! ```

pub mod adu;
pub mod frame;
pub mod profile;
pub mod split;

#[cfg(test)]
mod tests;
