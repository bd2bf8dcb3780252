//! The compact binary encoding: `0xFB`, version `1`, then postcard.
//!
//! [postcard](https://docs.rs/postcard) 1.x has a stable, documented wire format (varint
//! integers, zigzag for signed, one byte for `Option` and enum tags, length-prefixed sequences
//! and strings), works without a heap, and is maintained for embedded Rust. The message after
//! the two header bytes is the postcard encoding of the topic's message type in
//! [`crate::message`], field by field in declaration order. A type change that is not
//! append-only takes a new [`super::BINARY_VERSION`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BINARY_MARKER, BINARY_VERSION, DecodeError, EncodeError};
use crate::message::{Ack, Command, Config, Event, Message, Status, Telemetry};
use crate::topic::DeviceTopic;

/// Decodes a binary payload (marker included) received on a topic of kind `kind`.
///
/// # Errors
/// [`DecodeError`] for a wrong header, malformed postcard, or trailing bytes.
pub fn decode(kind: DeviceTopic, payload: &[u8]) -> Result<Message, DecodeError> {
    let body = match payload {
        [BINARY_MARKER, BINARY_VERSION, body @ ..] => body,
        [BINARY_MARKER, v, ..] => {
            return Err(DecodeError::UnsupportedBinaryVersion { version: Some(*v) });
        }
        [BINARY_MARKER] => return Err(DecodeError::UnsupportedBinaryVersion { version: None }),
        [] => return Err(DecodeError::Empty),
        [first, ..] => return Err(DecodeError::UnknownEncoding { first: *first }),
    };
    Ok(match kind {
        DeviceTopic::Telemetry => Message::Telemetry(take::<Telemetry>(body)?),
        DeviceTopic::Event => Message::Event(take::<Event>(body)?),
        DeviceTopic::Status => Message::Status(take::<Status>(body)?),
        DeviceTopic::Config => Message::Config(take::<Config>(body)?),
        DeviceTopic::Cmd => Message::Command(take::<Command>(body)?),
        DeviceTopic::Ack => Message::Ack(take::<Ack>(body)?),
    })
}

fn take<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(DecodeError::Binary)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::TrailingBytes { count: rest.len() })
    }
}

/// Encodes `msg` with its header into `buf`; returns the length used.
///
/// # Errors
/// [`EncodeError::BufferFull`] if `buf` is too small.
pub fn encode(msg: &Message, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let [marker, version, body @ ..] = buf else {
        return Err(EncodeError::BufferFull);
    };
    *marker = BINARY_MARKER;
    *version = BINARY_VERSION;
    let n = match msg {
        Message::Telemetry(m) => put(m, body),
        Message::Event(m) => put(m, body),
        Message::Status(m) => put(m, body),
        Message::Config(m) => put(m, body),
        Message::Command(m) => put(m, body),
        Message::Ack(m) => put(m, body),
    }?;
    Ok(n.saturating_add(2))
}

fn put<T: Serialize>(value: &T, body: &mut [u8]) -> Result<usize, EncodeError> {
    postcard::to_slice(value, body)
        .map(|used| used.len())
        .map_err(|_| EncodeError::BufferFull)
}
