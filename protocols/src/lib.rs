#![no_std]
#![doc = include_str!("../README.md")]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod channel;
pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod gb26875;
pub mod id;
pub mod message;
pub mod regmap;
pub mod thresholds;
pub mod topic;

pub use codec::{DecodeError, Encoding, decode, encode};
pub use id::{DeviceId, GridId, IdError};
pub use message::Message;
pub use topic::{DeviceTopic, Topic};
