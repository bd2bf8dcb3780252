//! The application data unit: type flag, object count, information objects (§7, §8).
//!
//! [`Adu::parse`] checks the whole unit (object sizes and counts for every type this crate
//! knows) so that iterating its [`Object`]s cannot fail; types it does not know (reserved,
//! user-defined 128–254) are kept raw. [`encode`] writes objects back; a parsed ADU's bytes are
//! already its encoding.

use core::fmt;

mod object;

pub use object::Object;
use object::{Reader, Writer, read_object};

/// Bytes of a description (component status and configuration), GB18030, NUL/space padded.
pub const DESCRIPTION_LEN: usize = 31;

/// ADU type flags (§8.1.1, table 4).
pub mod kind {
    /// Building fire facility system status.
    pub const SYSTEM_STATUS: u8 = 1;
    /// Component status.
    pub const COMPONENT_STATUS: u8 = 2;
    /// Component analog value.
    pub const ANALOG_VALUE: u8 = 3;
    /// Operation record of a facility.
    pub const OPERATION: u8 = 4;
    /// Facility software version.
    pub const SOFTWARE_VERSION: u8 = 5;
    /// Facility system configuration.
    pub const SYSTEM_CONFIG: u8 = 6;
    /// Component configuration.
    pub const COMPONENT_CONFIG: u8 = 7;
    /// Facility system time.
    pub const SYSTEM_TIME: u8 = 8;
    /// The transmission device's own status.
    pub const UITD_STATUS: u8 = 21;
    /// The transmission device's operation record.
    pub const UITD_OPERATION: u8 = 24;
    /// The transmission device's software version.
    pub const UITD_VERSION: u8 = 25;
    /// The transmission device's configuration.
    pub const UITD_CONFIG: u8 = 26;
    /// The transmission device's time.
    pub const UITD_TIME: u8 = 28;
    /// Read the facility system status.
    pub const READ_SYSTEM_STATUS: u8 = 61;
    /// Read a component's status.
    pub const READ_COMPONENT_STATUS: u8 = 62;
    /// Read a component's analog value.
    pub const READ_ANALOG_VALUE: u8 = 63;
    /// Read the facility's operation records.
    pub const READ_OPERATIONS: u8 = 64;
    /// Read the facility's software version.
    pub const READ_SOFTWARE_VERSION: u8 = 65;
    /// Read the facility's system configuration.
    pub const READ_SYSTEM_CONFIG: u8 = 66;
    /// Read a component's configuration.
    pub const READ_COMPONENT_CONFIG: u8 = 67;
    /// Read the facility's time.
    pub const READ_SYSTEM_TIME: u8 = 68;
    /// Read the transmission device's status.
    pub const READ_UITD_STATUS: u8 = 81;
    /// Read the transmission device's operation records.
    pub const READ_UITD_OPERATIONS: u8 = 84;
    /// Read the transmission device's software version.
    pub const READ_UITD_VERSION: u8 = 85;
    /// Read the transmission device's configuration.
    pub const READ_UITD_CONFIG: u8 = 86;
    /// Read the transmission device's time.
    pub const READ_UITD_TIME: u8 = 88;
    /// Initialise the transmission device.
    pub const INIT_UITD: u8 = 89;
    /// Synchronise the transmission device's clock.
    pub const SYNC_CLOCK: u8 = 90;
    /// Duty check (查岗): is someone on duty?
    pub const DUTY_CHECK: u8 = 91;
}

/// The name of an ADU type, for logs and JSON.
pub const fn kind_name(k: u8) -> &'static str {
    match k {
        1 => "system_status",
        2 => "component_status",
        3 => "analog_value",
        4 => "operation",
        5 => "software_version",
        6 => "system_config",
        7 => "component_config",
        8 => "system_time",
        21 => "uitd_status",
        24 => "uitd_operation",
        25 => "uitd_version",
        26 => "uitd_config",
        28 => "uitd_time",
        61 => "read_system_status",
        62 => "read_component_status",
        63 => "read_analog_value",
        64 => "read_operations",
        65 => "read_software_version",
        66 => "read_system_config",
        67 => "read_component_config",
        68 => "read_system_time",
        81 => "read_uitd_status",
        84 => "read_uitd_operations",
        85 => "read_uitd_version",
        86 => "read_uitd_config",
        88 => "read_uitd_time",
        89 => "init_uitd",
        90 => "sync_clock",
        91 => "duty_check",
        128..=254 => "user_defined",
        _ => "reserved",
    }
}

/// A facility system: its type (table 5: 1 fire alarm system, 128–255 user-defined …) and
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct System {
    /// System type.
    pub kind: u8,
    /// System address.
    pub address: u8,
}

/// A component: its type (table 6: 16 electrical-fire monitor, 17 residual-current detector,
/// 18 temperature detector, 40 smoke detector …) and 4-byte address (LE; vendors pack loop and
/// point differently, so it stays a raw u32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Component {
    /// Component type.
    pub kind: u8,
    /// Component address.
    pub address: u32,
}

/// A system or component status word (§8.2.1.1, §8.2.1.2), LE on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status(pub u16);

impl Status {
    /// Bit 0: normal operation (1) or test (0). See [`super::profile::Profile::bit0_informational`].
    pub const NORMAL: u16 = 1 << 0;
    /// Bit 1: fire alarm.
    pub const FIRE: u16 = 1 << 1;
    /// Bit 2: fault.
    pub const FAULT: u16 = 1 << 2;
    /// Bit 3: disabled (shielded).
    pub const DISABLED: u16 = 1 << 3;
    /// Bit 4: supervisory.
    pub const SUPERVISORY: u16 = 1 << 4;
    /// Bit 5: started.
    pub const STARTED: u16 = 1 << 5;
    /// Bit 6: feedback.
    pub const FEEDBACK: u16 = 1 << 6;
    /// Bit 7: delay.
    pub const DELAY: u16 = 1 << 7;
    /// Bit 8: (main) power fault.
    pub const POWER_FAULT: u16 = 1 << 8;
    /// Bit 9 (systems): backup power fault.
    pub const BACKUP_POWER_FAULT: u16 = 1 << 9;
    /// Bit 10 (systems): bus fault.
    pub const BUS_FAULT: u16 = 1 << 10;

    /// Whether `bit` (one of the constants) is set.
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// The transmission device's status byte (§8.2.1.8).
pub mod uitd {
    /// Bit 0: normal monitoring (1) or test (0).
    pub const NORMAL: u8 = 1 << 0;
    /// Bit 1: fire alarm.
    pub const FIRE: u8 = 1 << 1;
    /// Bit 2: fault.
    pub const FAULT: u8 = 1 << 2;
    /// Bit 3: main power fault.
    pub const MAIN_POWER_FAULT: u8 = 1 << 3;
    /// Bit 4: backup power fault.
    pub const BACKUP_POWER_FAULT: u8 = 1 << 4;
    /// Bit 5: link to the monitoring centre faulty.
    pub const LINK_FAULT: u8 = 1 << 5;
    /// Bit 6: monitored line faulty.
    pub const LINE_FAULT: u8 = 1 << 6;
}

/// Why an ADU is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AduError {
    /// Fewer than 2 bytes (type flag, object count).
    TooShort,
    /// More objects than the standard allows for the type.
    TooManyObjects {
        /// The type flag.
        kind: u8,
        /// The count.
        count: u8,
        /// The most allowed.
        max: u8,
    },
    /// The objects' bytes do not divide into `count` objects of the type's size.
    ObjectSize {
        /// The type flag.
        kind: u8,
        /// The count.
        count: u8,
        /// The objects' bytes.
        len: usize,
    },
    /// An object of another type than the ADU's (encoding).
    WrongObject {
        /// The type flag.
        kind: u8,
    },
    /// The output is too small or the ADU would be over 1024 bytes (encoding).
    TooLong,
}

impl fmt::Display for AduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("an ADU needs at least a type flag and an object count"),
            Self::TooManyObjects { kind, count, max } => write!(
                f,
                "{count} objects of type {kind} ({}): at most {max}",
                kind_name(*kind)
            ),
            Self::ObjectSize { kind, count, len } => write!(
                f,
                "{len} bytes are not {count} objects of type {kind} ({})",
                kind_name(*kind)
            ),
            Self::WrongObject { kind } => write!(
                f,
                "an object that is not of type {kind} ({})",
                kind_name(*kind)
            ),
            Self::TooLong => f.write_str("the ADU does not fit (at most 1024 bytes)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AduError {}

/// The size of one object of a type, when fixed (time tags included).
const fn fixed_size(k: u8) -> Option<usize> {
    Some(match k {
        1 | 4 => 10,
        2 => 46,
        3 => 16,
        5 => 4,
        7 => 38,
        8 | 24 => 8,
        25 | 61 | 65 | 66 | 68 => 2,
        28 | 62 | 63 | 67 | 90 => 6,
        64 => 9,
        84 => 7,
        81 | 85 | 86 | 88 | 89 | 91 => 1,
        _ => return None,
    })
}

/// Whether this crate knows the layout of a type's objects.
const fn knows(k: u8) -> bool {
    fixed_size(k).is_some() || matches!(k, 6 | 21 | 26)
}

/// The most objects of a type (§8.3; none given: 255).
const fn max_count(k: u8) -> u8 {
    match k {
        1 | 4 | 61 => 102,
        2 | 62 => 22,
        3 | 63 => 63,
        6 | 66 => 3,
        7 | 67 => 26,
        24 => 127,
        5 | 8 | 21 | 25 | 26 | 28 | 64 | 65 | 68 | 81 | 84 | 85 | 86 | 88 | 89 | 90 | 91 => 1,
        _ => u8::MAX,
    }
}

/// A parsed ADU. Its objects were checked by [`Adu::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adu<'a> {
    /// The type flag.
    pub kind: u8,
    /// The object count.
    pub count: u8,
    /// The objects' bytes.
    pub body: &'a [u8],
}

impl<'a> Adu<'a> {
    /// Parses and checks an ADU.
    ///
    /// # Errors
    /// [`AduError`]: too short, over 1024 bytes, too many objects, or bytes that are not whole
    /// objects.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AduError> {
        let (&kind, rest) = bytes.split_first().ok_or(AduError::TooShort)?;
        let (&count, body) = rest.split_first().ok_or(AduError::TooShort)?;
        let max = max_count(kind);
        if count > max {
            return Err(AduError::TooManyObjects { kind, count, max });
        }
        if bytes.len() > super::frame::MAX_ADU {
            return Err(AduError::TooLong);
        }
        let adu = Self { kind, count, body };
        let bad = AduError::ObjectSize {
            kind,
            count,
            len: body.len(),
        };
        match (kind, fixed_size(kind)) {
            (_, Some(size)) if Some(body.len()) != size.checked_mul(usize::from(count)) => {
                return Err(bad);
            }
            (21, None) if adu.uitd_status_size().is_none() => return Err(bad),
            (6 | 26, None) => {
                let mut r = Reader(body);
                for _ in 0..count {
                    if kind == 6 {
                        r.take(2).ok_or(bad)?;
                    }
                    let len = r.byte().ok_or(bad)?;
                    r.take(usize::from(len)).ok_or(bad)?;
                }
                if !r.0.is_empty() {
                    return Err(bad);
                }
            }
            _ => {}
        }
        Ok(adu)
    }

    /// Type 21's object size: `body / count`, at least 7 (V8: some devices send 13).
    fn uitd_status_size(&self) -> Option<usize> {
        let count = usize::from(self.count);
        if count == 0 {
            return self.body.is_empty().then_some(7);
        }
        let size = self.body.len().checked_div(count)?;
        (size >= 7 && size.checked_mul(count) == Some(self.body.len())).then_some(size)
    }

    /// The objects.
    pub fn objects(&self) -> Objects<'a> {
        Objects {
            kind: self.kind,
            left: self.count,
            rest: Reader(self.body),
            size21: self.uitd_status_size().unwrap_or(7),
        }
    }
}

/// The objects of an [`Adu`].
#[derive(Debug, Clone)]
pub struct Objects<'a> {
    kind: u8,
    left: u8,
    rest: Reader<'a>,
    size21: usize,
}

impl<'a> Iterator for Objects<'a> {
    type Item = Object<'a>;

    fn next(&mut self) -> Option<Object<'a>> {
        let r = &mut self.rest;
        if !knows(self.kind) {
            // A type this crate does not know: all the bytes as one raw object.
            if self.left == 0 && r.0.is_empty() {
                return None;
            }
            let count = core::mem::take(&mut self.left);
            return Some(Object::Raw {
                count,
                bytes: core::mem::take(&mut r.0),
            });
        }
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        read_object(self.kind, r, self.size21)
    }
}

/// Encodes an ADU of type `kind` with `objects` into `out`; returns its length. The result
/// parses back ([`Adu::parse`]) to the same objects.
///
/// # Errors
/// [`AduError::WrongObject`] for an object of another type, [`AduError::TooManyObjects`],
/// [`AduError::ObjectSize`] for type-21 objects of different sizes, [`AduError::TooLong`] when
/// it does not fit `out` or 1024 bytes.
pub fn encode(kind: u8, objects: &[Object<'_>], out: &mut [u8]) -> Result<usize, AduError> {
    let max = max_count(kind);
    let total = objects.iter().fold(0usize, |n, o| {
        n.saturating_add(match o {
            Object::Raw { count, .. } => usize::from(*count),
            _ => 1,
        })
    });
    let count = u8::try_from(total).map_err(|_| AduError::TooManyObjects {
        kind,
        count: u8::MAX,
        max,
    })?;
    if count > max {
        return Err(AduError::TooManyObjects { kind, count, max });
    }
    let limit = out.len().min(super::frame::MAX_ADU);
    let mut w = Writer {
        out: out.get_mut(..limit).ok_or(AduError::TooLong)?,
        at: 0,
    };
    w.put(&[kind, count]).ok_or(AduError::TooLong)?;
    let mut extra_len = None;
    for o in objects {
        if !o.fits(kind) {
            return Err(AduError::WrongObject { kind });
        }
        if let Object::UitdStatus { extra, .. } = o
            && *extra_len.get_or_insert(extra.len()) != extra.len()
        {
            return Err(AduError::ObjectSize {
                kind,
                count,
                len: w.at,
            });
        }
        o.write(&mut w).ok_or(AduError::TooLong)?;
    }
    // A raw object's bytes must still parse (e.g. count 0 with bytes is not an ADU).
    let n = w.at;
    Adu::parse(out.get(..n).ok_or(AduError::TooLong)?)?;
    Ok(n)
}

/// A description padded to [`DESCRIPTION_LEN`] bytes with NULs (longer input is cut; the
/// caller cuts on a character boundary first).
pub fn description(bytes: &[u8]) -> [u8; DESCRIPTION_LEN] {
    let mut d = [0u8; DESCRIPTION_LEN];
    for (dst, src) in d.iter_mut().zip(bytes) {
        *dst = *src;
    }
    d
}

/// A description without its trailing NULs and spaces.
pub fn trim_description(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| *b != 0 && *b != b' ')
        .map_or(0, |i| i.saturating_add(1));
    bytes.get(..end).unwrap_or_default()
}
