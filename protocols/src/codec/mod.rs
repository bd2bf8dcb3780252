//! The two encodings of every message, and how a receiver tells them apart.
//!
//! - **JSON** ([`json`]): readable, documented in `docs/protocol.md`, for third-party devices and
//!   `mosquitto_pub`. A JSON payload is UTF-8 text whose first non-blank byte is `{`.
//! - **Binary** ([`binary`]): for constrained links. A binary payload starts with the marker byte
//!   [`BINARY_MARKER`] (`0xFB`), then a format version byte ([`BINARY_VERSION`]), then the
//!   message in [postcard](https://docs.rs/postcard) 1.x wire format.
//!
//! `0xFB` can never occur in UTF-8 text (bytes `0xF5..=0xFF` are invalid there), so no JSON
//! payload starts with it and no binary payload is valid JSON: [`detect`] never guesses.
//!
//! Decoding is total: any byte string gives a message or a [`DecodeError`] that says why, never
//! a panic, and never an allocation (the crate has no heap; collections are bounded).
//!
//! ```
//! use firegrid_protocols::codec::{self, Encoding};
//! use firegrid_protocols::message::Message;
//! use firegrid_protocols::topic::DeviceTopic;
//!
//! let json = br#"{"seq":7,"up_ms":1200,"readings":[{"ch":0,"residual_ma":112}]}"#;
//! let msg = codec::decode(DeviceTopic::Telemetry, json).unwrap();
//! let mut buf = [0u8; 64];
//! let n = codec::encode(&msg, Encoding::Binary, &mut buf).unwrap();
//! assert_eq!(codec::decode(DeviceTopic::Telemetry, &buf[..n]).unwrap(), msg);
//! assert!(n < json.len() / 3);
//! ```

pub mod binary;
pub mod json;

use core::fmt;

use crate::message::Message;
use crate::topic::DeviceTopic;

/// The first byte of every binary payload. Not a byte of any UTF-8 text.
pub const BINARY_MARKER: u8 = 0xFB;
/// The binary format version this crate writes (and the only one it reads so far).
pub const BINARY_VERSION: u8 = 1;
/// The largest payload a receiver accepts, bytes. The largest message this crate encodes in
/// JSON (a telemetry message with every quantity on all 16 channels) is well under it.
pub const MAX_PAYLOAD: usize = 4096;
/// The deepest nesting of JSON arrays and objects accepted. firegrid messages nest 3 deep; the
/// margin leaves room for unknown (ignored) fields of later minor versions.
pub const MAX_JSON_DEPTH: usize = 8;

/// How a payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text.
    Json,
    /// Marker, version, postcard.
    Binary,
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload is empty.
    Empty,
    /// The payload is longer than [`MAX_PAYLOAD`].
    TooLarge {
        /// Its length, bytes.
        len: usize,
    },
    /// Neither a binary marker nor a JSON object.
    UnknownEncoding {
        /// The first non-blank byte.
        first: u8,
    },
    /// A binary payload of a format version this side does not read.
    UnsupportedBinaryVersion {
        /// The version byte (`None`: the payload ends after the marker).
        version: Option<u8>,
    },
    /// JSON nested deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
    /// Malformed JSON, or JSON of the wrong shape for the topic.
    Json(serde_json_core::de::Error),
    /// Malformed binary, or binary of the wrong shape for the topic.
    Binary(postcard::Error),
    /// Bytes after the end of a binary message (JSON reports them as [`DecodeError::Json`]).
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// Well-formed, but its content breaks a rule of the protocol.
    Invalid(Invalid),
    /// The topic kind carries no message of this protocol direction (never happens for the six
    /// device topics; kept so that callers can match exhaustively on future kinds).
    NoSuchMessage,
}

/// A rule of the protocol that a well-formed message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// An event of this kind needs this field.
    MissingField {
        /// The event kind (`"alarm_raised"`, ...).
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A value needs exactly one quantity (`residual_ma` or `temp_dc`) and has none or both.
    QuantityAmbiguous,
    /// A reading carries no value at all.
    EmptyReading {
        /// Its channel.
        channel: u8,
    },
    /// A channel number at or above [`crate::channel::MAX_CHANNELS`].
    ChannelOutOfRange {
        /// The channel.
        channel: u8,
    },
    /// The same channel twice in one message.
    DuplicateChannel {
        /// The channel.
        channel: u8,
    },
    /// A status that says `online` lacks its heartbeat fields, or `offline` has them.
    StatusShape,
    /// A value does not fit its field (e.g. a residual current over 2^31 mA).
    OutOfRange {
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingField { kind, field } => {
                write!(f, "event kind {kind:?} needs field {field:?}")
            }
            Self::QuantityAmbiguous => f.write_str(
                "a level needs exactly one of \"residual_ma\" (with \"threshold_ma\") or \"temp_dc\" (with \"threshold_dc\")",
            ),
            Self::EmptyReading { channel } => write!(
                f,
                "reading of channel {channel} has no value: give residual_ma, temp_dc, voltage_dv or current_ma"
            ),
            Self::ChannelOutOfRange { channel } => write!(
                f,
                "channel {channel} does not exist: channels are 0-{}",
                crate::channel::MAX_CHANNELS - 1
            ),
            Self::DuplicateChannel { channel } => {
                write!(f, "channel {channel} appears twice in one message")
            }
            Self::StatusShape => f.write_str(
                "status \"online\" needs seq, up_ms, firmware and the intervals; \"offline\" carries nothing else",
            ),
            Self::OutOfRange { field } => write!(f, "field {field:?} is out of range"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty payload"),
            Self::TooLarge { len } => {
                write!(
                    f,
                    "payload of {len} bytes is over the {MAX_PAYLOAD}-byte limit"
                )
            }
            Self::UnknownEncoding { first } => write!(
                f,
                "payload starts with byte 0x{first:02x}: expected a JSON object ('{{') or the binary marker 0x{BINARY_MARKER:02x}"
            ),
            Self::UnsupportedBinaryVersion { version: Some(v) } => write!(
                f,
                "binary format version {v} is not supported: this side reads version {BINARY_VERSION}"
            ),
            Self::UnsupportedBinaryVersion { version: None } => {
                f.write_str("binary payload ends after its marker: no version byte")
            }
            Self::TooDeep => write!(f, "JSON nests deeper than {MAX_JSON_DEPTH} levels"),
            Self::Json(e) => write!(f, "bad JSON: {e}"),
            Self::Binary(e) => write!(f, "bad binary message: {e}"),
            Self::TrailingBytes { count } => {
                write!(f, "{count} bytes follow the end of the message")
            }
            Self::Invalid(e) => write!(f, "invalid message: {e}"),
            Self::NoSuchMessage => f.write_str("no message is defined for this topic"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

impl DecodeError {
    /// A short, stable, machine-friendly name of the reason, for refusal counters and metrics
    /// labels (e.g. `"json"`, `"too_large"`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownEncoding { .. } => "unknown_encoding",
            Self::UnsupportedBinaryVersion { .. } => "binary_version",
            Self::TooDeep => "too_deep",
            Self::Json(_) => "json",
            Self::Binary(_) => "binary",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::Invalid(_) => "invalid",
            Self::NoSuchMessage => "no_such_message",
        }
    }
}

impl From<Invalid> for DecodeError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(e)
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferFull,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferFull => f.write_str("output buffer too small for the message"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// Tells the encoding of a payload from its first bytes, without guessing.
///
/// # Errors
/// [`DecodeError::Empty`], [`DecodeError::TooLarge`] or [`DecodeError::UnknownEncoding`].
pub fn detect(payload: &[u8]) -> Result<Encoding, DecodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge { len: payload.len() });
    }
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeError::Empty),
        Some(&BINARY_MARKER) if payload.first() == Some(&BINARY_MARKER) => Ok(Encoding::Binary),
        Some(b'{') => Ok(Encoding::Json),
        Some(&first) => Err(DecodeError::UnknownEncoding { first }),
    }
}

/// Decodes a payload received on a device topic of kind `kind`, in whichever encoding it is.
///
/// # Errors
/// [`DecodeError`] says why the payload was refused.
pub fn decode(kind: DeviceTopic, payload: &[u8]) -> Result<Message, DecodeError> {
    let msg = match detect(payload)? {
        Encoding::Json => json::decode(kind, payload)?,
        Encoding::Binary => binary::decode(kind, payload)?,
    };
    validate(&msg)?;
    Ok(msg)
}

/// Encodes `msg` into `buf` and returns the length used.
///
/// # Errors
/// [`EncodeError::BufferFull`] if `buf` is too small.
pub fn encode(msg: &Message, encoding: Encoding, buf: &mut [u8]) -> Result<usize, EncodeError> {
    match encoding {
        Encoding::Json => json::encode(msg, buf),
        Encoding::Binary => binary::encode(msg, buf),
    }
}

/// Rules both encodings must meet beyond their shape.
fn validate(msg: &Message) -> Result<(), Invalid> {
    use crate::channel::MAX_CHANNELS;
    use crate::message::EventKind;

    let check_channel = |channel: u8| {
        if usize::from(channel) < MAX_CHANNELS {
            Ok(())
        } else {
            Err(Invalid::ChannelOutOfRange { channel })
        }
    };
    let check_unique = |channels: &mut dyn Iterator<Item = u8>| {
        let mut seen = 0u32;
        for channel in channels {
            check_channel(channel)?;
            let bit = 1u32 << channel;
            if seen & bit != 0 {
                return Err(Invalid::DuplicateChannel { channel });
            }
            seen |= bit;
        }
        Ok(())
    };
    match msg {
        Message::Telemetry(t) => {
            check_unique(&mut t.readings.iter().map(|r| r.channel))?;
            if let Some(r) = t.readings.iter().find(|r| {
                r.residual_ma.is_none()
                    && r.temp_dc.is_none()
                    && r.voltage_dv.is_none()
                    && r.current_ma.is_none()
            }) {
                return Err(Invalid::EmptyReading { channel: r.channel });
            }
            Ok(())
        }
        Message::Event(e) => match e.kind {
            EventKind::AlarmRaised { channel, .. }
            | EventKind::AlarmCleared { channel, .. }
            | EventKind::Fault { channel, .. }
            | EventKind::FaultCleared { channel, .. } => check_channel(channel),
            _ => Ok(()),
        },
        Message::Config(c) => check_unique(&mut c.channels.iter().map(|c| c.channel)),
        Message::Command(c) => match c.action {
            crate::message::Action::ResetAlarm {
                channel: Some(channel),
            } => check_channel(channel),
            _ => Ok(()),
        },
        Message::Status(_) | Message::Ack(_) => Ok(()),
    }
}

/// Checks that no JSON array or object nests deeper than [`MAX_JSON_DEPTH`], so that the
/// recursive parser never runs out of stack on hostile input.
fn check_json_depth(payload: &[u8]) -> Result<(), DecodeError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in payload {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > MAX_JSON_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
