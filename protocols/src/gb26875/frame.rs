//! The frame: start marker, control unit, ADU, checksum, end marker.
//!
//! | bytes | field |
//! | --- | --- |
//! | 1–2 | `@@` |
//! | 3–4 | business serial number, u16 LE (the reply echoes it) |
//! | 5–6 | version: main (1), user |
//! | 7–12 | send time: s, min, h, day, month, year − 2000 (binary, local time) |
//! | 13–18 | source address, 6 bytes LE |
//! | 19–24 | destination address, 6 bytes LE |
//! | 25–26 | ADU length L, u16 LE, ≤ 1024 |
//! | 27 | command: 1 control, 2 send, 3 confirm, 4 request, 5 response, 6 deny |
//! | 28 … 27+L | ADU |
//! | 28+L | checksum over bytes 3 … 27+L ([`Profile::checksum`]) |
//! | 29+L – 30+L | `##` |

use core::fmt;

use super::profile::{ChecksumRule, Profile, sum, xor};

/// The start marker (the standard writes it "64, 64").
pub const START: [u8; 2] = [0x40, 0x40];
/// The end marker (the standard writes it "35, 35"; not `0x35 0x35`).
pub const END: [u8; 2] = [0x23, 0x23];
/// Bytes of the control unit.
pub const CONTROL_LEN: usize = 25;
/// Bytes before the ADU: start marker and control unit.
pub const HEADER_LEN: usize = 27;
/// The largest ADU, bytes (§6.6).
pub const MAX_ADU: usize = 1024;
/// The smallest frame (empty ADU), bytes.
pub const MIN_FRAME: usize = 30;
/// The largest frame, bytes.
pub const MAX_FRAME: usize = MIN_FRAME + MAX_ADU;

/// The control unit's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Command(pub u8);

impl Command {
    /// A control command (the centre sets something: clock, initialise, duty check).
    pub const CONTROL: Self = Self(1);
    /// Send data (alarms, status; the device's uploads).
    pub const SEND: Self = Self(2);
    /// Confirm: the answer to 1 and 2.
    pub const CONFIRM: Self = Self(3);
    /// Request (a query).
    pub const REQUEST: Self = Self(4);
    /// Response: the answer to 4.
    pub const RESPONSE: Self = Self(5);
    /// Deny: a bad frame, or a command that cannot be carried out.
    pub const DENY: Self = Self(6);

    /// Its name in the standard, or `reserved` (7–127), `user-defined` (128–255).
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "reserved-0",
            1 => "control",
            2 => "send",
            3 => "confirm",
            4 => "request",
            5 => "response",
            6 => "deny",
            7..=127 => "reserved",
            _ => "user-defined",
        }
    }

    /// Whether the standard defines it (1–6).
    pub const fn is_standard(self) -> bool {
        matches!(self.0, 1..=6)
    }
}

/// A 6-byte address (a transmission device or a centre), little-endian on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The address whose little-endian value is `v` (the top 16 bits of `v` are dropped).
    pub const fn from_u64(v: u64) -> Self {
        let b = v.to_le_bytes();
        Self([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Its value (bytes read little-endian).
    pub const fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }
}

/// A time tag: second, minute, hour, day, month, year − 2000, one binary byte each, local time
/// with no zone (§8.2.2). Kept as sent: variants send BCD or zeros, so decoding never rejects a
/// tag; [`TimeTag::is_valid`] says whether it is a real date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeTag(pub [u8; 6]);

impl TimeTag {
    /// A tag from its fields.
    pub const fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Self {
        #[allow(clippy::cast_possible_truncation)] // % 100 fits a byte.
        let yy = (year % 100) as u8;
        Self([second, minute, hour, day, month, yy])
    }

    /// Seconds (0–59).
    pub const fn second(self) -> u8 {
        self.0[0]
    }
    /// Minutes (0–59).
    pub const fn minute(self) -> u8 {
        self.0[1]
    }
    /// Hours (0–23).
    pub const fn hour(self) -> u8 {
        self.0[2]
    }
    /// Day of the month (1–31).
    pub const fn day(self) -> u8 {
        self.0[3]
    }
    /// Month (1–12).
    pub const fn month(self) -> u8 {
        self.0[4]
    }
    /// The year (2000 + the byte).
    pub const fn year(self) -> u16 {
        2000u16.saturating_add(self.0[5] as u16)
    }

    /// Whether every field is in its range (not a BCD or all-zero variant).
    pub const fn is_valid(self) -> bool {
        let [s, mi, h, d, mo, y] = self.0;
        s < 60 && mi < 60 && h < 24 && d >= 1 && d <= 31 && mo >= 1 && mo <= 12 && y < 100
    }
}

impl fmt::Display for TimeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year(),
            self.month(),
            self.day(),
            self.hour(),
            self.minute(),
            self.second()
        )
    }
}

/// The control unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Business serial number: the initiator counts, the reply echoes.
    pub serial: u16,
    /// Version bytes: main (1), user. Never a reason to refuse a frame.
    pub version: [u8; 2],
    /// When the frame was sent (the sender's clock).
    pub time: TimeTag,
    /// Who sent it.
    pub source: Address,
    /// For whom.
    pub destination: Address,
    /// The ADU's length, bytes.
    pub adu_len: u16,
    /// The command.
    pub command: Command,
}

impl Header {
    /// The header of the reply to this frame: the same serial number, source and destination
    /// swapped, `command`, an empty ADU (set [`Header::adu_len`] for a response with data).
    pub const fn reply(&self, command: Command, version: [u8; 2], time: TimeTag) -> Self {
        Self {
            serial: self.serial,
            version,
            time,
            source: self.destination,
            destination: self.source,
            adu_len: 0,
            command,
        }
    }

    /// The 25 bytes of the control unit.
    pub fn to_bytes(&self) -> [u8; CONTROL_LEN] {
        let mut b = [0u8; CONTROL_LEN];
        let s = self.serial.to_le_bytes();
        let l = self.adu_len.to_le_bytes();
        let parts: [&[u8]; 7] = [
            &s,
            &self.version,
            &self.time.0,
            &self.source.0,
            &self.destination.0,
            &l,
            core::slice::from_ref(&self.command.0),
        ];
        let mut at = 0usize;
        for p in parts {
            for (dst, src) in b.iter_mut().skip(at).zip(p) {
                *dst = *src;
            }
            at = at.saturating_add(p.len());
        }
        b
    }

    /// The control unit from its 25 bytes.
    pub fn from_bytes(b: &[u8; CONTROL_LEN]) -> Self {
        let [
            s0,
            s1,
            v0,
            v1,
            t0,
            t1,
            t2,
            t3,
            t4,
            t5,
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            d0,
            d1,
            d2,
            d3,
            d4,
            d5,
            l0,
            l1,
            c,
        ] = *b;
        Self {
            serial: u16::from_le_bytes([s0, s1]),
            version: [v0, v1],
            time: TimeTag([t0, t1, t2, t3, t4, t5]),
            source: Address([a0, a1, a2, a3, a4, a5]),
            destination: Address([d0, d1, d2, d3, d4, d5]),
            adu_len: u16::from_le_bytes([l0, l1]),
            command: Command(c),
        }
    }
}

/// A decoded frame, borrowing its ADU from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The control unit.
    pub header: Header,
    /// The application data unit (empty for confirm, deny and keep-alives); parse it with
    /// [`super::adu::Adu::parse`].
    pub adu: &'a [u8],
    /// The checksum byte as received.
    pub checksum: u8,
}

/// Why bytes are not one GB/T 26875.3 frame. Where the control unit was readable it is
/// included, so that the receiver can answer with a deny ([`Header::reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer than [`MIN_FRAME`] bytes.
    TooShort {
        /// The length, bytes.
        len: usize,
    },
    /// It does not start with `@@`.
    BadStart,
    /// The ADU length field is over [`MAX_ADU`].
    AduTooLong {
        /// The control unit.
        header: Header,
    },
    /// The length is not 30 + the ADU length field.
    LengthMismatch {
        /// The control unit.
        header: Header,
        /// The frame length the field gives, bytes.
        expected: usize,
        /// The length received, bytes.
        len: usize,
    },
    /// It does not end with `##`.
    BadEnd {
        /// The control unit.
        header: Header,
    },
    /// The checksum does not match the profile's rule.
    Checksum {
        /// The control unit.
        header: Header,
        /// What the profile computes.
        computed: u8,
        /// What the frame carries.
        found: u8,
    },
}

impl FrameError {
    /// The control unit, when it could be read (to address a deny).
    pub const fn header(&self) -> Option<&Header> {
        match self {
            Self::TooShort { .. } | Self::BadStart => None,
            Self::AduTooLong { header }
            | Self::LengthMismatch { header, .. }
            | Self::BadEnd { header }
            | Self::Checksum { header, .. } => Some(header),
        }
    }

    /// A short name for counters: `too_short`, `bad_start`, `adu_too_long`, `length`,
    /// `bad_end`, `checksum`.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadStart => "bad_start",
            Self::AduTooLong { .. } => "adu_too_long",
            Self::LengthMismatch { .. } => "length",
            Self::BadEnd { .. } => "bad_end",
            Self::Checksum { .. } => "checksum",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(
                f,
                "{len} bytes is too short for a GB/T 26875.3 frame (at least {MIN_FRAME})"
            ),
            Self::BadStart => f.write_str("the frame does not start with @@ (40 40)"),
            Self::AduTooLong { header } => write!(
                f,
                "ADU length {} is over the standard's {MAX_ADU} bytes",
                header.adu_len
            ),
            Self::LengthMismatch { expected, len, .. } => write!(
                f,
                "the length field gives a {expected}-byte frame, got {len} bytes"
            ),
            Self::BadEnd { .. } => f.write_str("the frame does not end with ## (23 23)"),
            Self::Checksum {
                computed, found, ..
            } => write!(
                f,
                "checksum 0x{found:02x} does not match 0x{computed:02x} computed over bytes 3 to 27+L"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// The ADU does not fit the output buffer, or is over [`MAX_ADU`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeError {
    /// The bytes the frame needs.
    pub needed: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {}-byte frame does not fit (ADU at most {MAX_ADU} bytes, or a small buffer)",
            self.needed
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// The control unit of `bytes` if it has at least [`HEADER_LEN`] bytes and starts with `@@`.
pub fn peek_header(bytes: &[u8]) -> Option<Header> {
    let head = bytes.get(..HEADER_LEN)?;
    if head.get(..2)? != START {
        return None;
    }
    let cu: &[u8; CONTROL_LEN] = head.get(2..)?.try_into().ok()?;
    Some(Header::from_bytes(cu))
}

/// Decodes exactly one frame.
///
/// # Errors
/// [`FrameError`]: what is wrong, with the control unit when it was readable.
pub fn decode<'a>(bytes: &'a [u8], profile: &Profile) -> Result<Frame<'a>, FrameError> {
    if bytes.len() < MIN_FRAME {
        return Err(FrameError::TooShort { len: bytes.len() });
    }
    let header = peek_header(bytes).ok_or(FrameError::BadStart)?;
    let adu_len = usize::from(header.adu_len);
    if adu_len > MAX_ADU {
        return Err(FrameError::AduTooLong { header });
    }
    let expected = MIN_FRAME.saturating_add(adu_len);
    if bytes.len() != expected {
        return Err(FrameError::LengthMismatch {
            header,
            expected,
            len: bytes.len(),
        });
    }
    let end = HEADER_LEN.saturating_add(adu_len);
    let (Some(adu), Some(&found), Some(tail)) = (
        bytes.get(HEADER_LEN..end),
        bytes.get(end),
        bytes.get(end.saturating_add(1)..),
    ) else {
        return Err(FrameError::TooShort { len: bytes.len() });
    };
    if tail != END {
        return Err(FrameError::BadEnd { header });
    }
    let covered = bytes.get(2..end).unwrap_or_default();
    if !profile.checksum.accepts(covered, found) {
        return Err(FrameError::Checksum {
            header,
            computed: profile.checksum.compute(covered),
            found,
        });
    }
    Ok(Frame {
        header,
        adu,
        checksum: found,
    })
}

/// Encodes a frame into `out`; the header's ADU length is set from `adu`. Returns the length.
///
/// # Errors
/// [`EncodeError`] if `adu` is over [`MAX_ADU`] or `out` is too small.
pub fn encode(
    header: &Header,
    adu: &[u8],
    profile: &Profile,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let needed = MIN_FRAME.saturating_add(adu.len());
    let Ok(adu_len) = u16::try_from(adu.len()) else {
        return Err(EncodeError { needed });
    };
    if adu.len() > MAX_ADU || out.len() < needed {
        return Err(EncodeError { needed });
    }
    let header = Header { adu_len, ..*header };
    let cu = header.to_bytes();
    // Sum and XOR both combine piecewise, so the control unit and the ADU need no copy.
    let checksum = match profile.checksum {
        ChecksumRule::Xor => xor(&cu) ^ xor(adu),
        ChecksumRule::Sum | ChecksumRule::SumOrXor => sum(&cu).wrapping_add(sum(adu)),
    };
    let pieces: [&[u8]; 5] = [&START, &cu, adu, core::slice::from_ref(&checksum), &END];
    let mut at = 0usize;
    for p in pieces {
        let Some(dst) = out.get_mut(at..at.saturating_add(p.len())) else {
            return Err(EncodeError { needed });
        };
        dst.copy_from_slice(p);
        at = at.saturating_add(p.len());
    }
    Ok(at)
}
