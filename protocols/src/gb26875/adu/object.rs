//! The information objects of an ADU (§8.2): their fields, and reading and writing them.

use super::{Component, DESCRIPTION_LEN, Status, System, knows};
use crate::gb26875::frame::TimeTag;

/// One information object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object<'a> {
    /// Type 1.
    SystemStatus {
        /// The system.
        system: System,
        /// Its status.
        status: Status,
        /// When it happened.
        time: TimeTag,
    },
    /// Type 2.
    ComponentStatus {
        /// The system.
        system: System,
        /// The component.
        component: Component,
        /// Its status.
        status: Status,
        /// Description, GB18030, NUL/space padded.
        description: [u8; DESCRIPTION_LEN],
        /// When it happened.
        time: TimeTag,
    },
    /// Type 3.
    AnalogValue {
        /// The system.
        system: System,
        /// The component.
        component: Component,
        /// Analog type (table 7: 3 temperature 0.1 °C, 9 current 0.1 A, 128–255 user-defined).
        analog: u8,
        /// The value in the analog type's unit.
        value: i16,
        /// When it was sampled.
        time: TimeTag,
    },
    /// Type 4.
    Operation {
        /// The system.
        system: System,
        /// Flags: reset, silence, manual alarm, alarm clear, self-test, confirm, test.
        flags: u8,
        /// Operator number.
        operator: u8,
        /// When.
        time: TimeTag,
    },
    /// Type 5.
    SoftwareVersion {
        /// The system.
        system: System,
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Type 6 (description GB18030, 0–255 bytes).
    SystemConfig {
        /// The system.
        system: System,
        /// Description.
        description: &'a [u8],
    },
    /// Type 7.
    ComponentConfig {
        /// The system.
        system: System,
        /// The component.
        component: Component,
        /// Description, GB18030, padded.
        description: [u8; DESCRIPTION_LEN],
    },
    /// Type 8.
    SystemTime {
        /// The system.
        system: System,
        /// Its clock.
        time: TimeTag,
    },
    /// Type 21. Some devices send 6 more bytes (an occurrence time) before the time tag:
    /// they are kept in `extra`.
    UitdStatus {
        /// Status byte ([`super::uitd`]).
        status: u8,
        /// Bytes between the status and the time tag (usually none).
        extra: &'a [u8],
        /// When.
        time: TimeTag,
    },
    /// Type 24.
    UitdOperation {
        /// Flags: reset, silence, manual alarm, alarm clear, self-test, duty-check answer, test.
        flags: u8,
        /// Operator number.
        operator: u8,
        /// When.
        time: TimeTag,
    },
    /// Type 25.
    UitdVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Type 26 (description GB18030, 0–255 bytes).
    UitdConfig {
        /// Description.
        description: &'a [u8],
    },
    /// Type 28.
    UitdTime {
        /// Its clock.
        time: TimeTag,
    },
    /// Types 61, 65, 66, 68: read something of a system.
    ReadSystem {
        /// The system.
        system: System,
    },
    /// Types 62, 63, 67: read something of a component.
    ReadComponent {
        /// The system.
        system: System,
        /// The component's address.
        address: u32,
    },
    /// Type 64: read a facility's operation records.
    ReadOperations {
        /// The system.
        system: System,
        /// How many records.
        count: u8,
        /// From when.
        start: TimeTag,
    },
    /// Type 84: read the transmission device's operation records.
    ReadUitdOperations {
        /// How many records.
        count: u8,
        /// From when.
        start: TimeTag,
    },
    /// Types 81, 85, 86, 88, 89: one reserved byte.
    Reserved {
        /// The byte (0).
        byte: u8,
    },
    /// Type 90: set the clock to this time.
    SyncClock {
        /// The centre's time.
        time: TimeTag,
    },
    /// Type 91: duty check.
    DutyCheck {
        /// How long the person on duty has to answer, minutes.
        timeout_min: u8,
    },
    /// A reserved or user-defined type: the object count and the objects' bytes as they came.
    Raw {
        /// The object count.
        count: u8,
        /// The objects' bytes.
        bytes: &'a [u8],
    },
}

pub(super) fn read_object<'a>(kind: u8, r: &mut Reader<'a>, size21: usize) -> Option<Object<'a>> {
    Some(match kind {
        1 => Object::SystemStatus {
            system: r.system()?,
            status: Status(r.u16()?),
            time: r.time()?,
        },
        2 => Object::ComponentStatus {
            system: r.system()?,
            component: r.component()?,
            status: Status(r.u16()?),
            description: r.array()?,
            time: r.time()?,
        },
        3 => Object::AnalogValue {
            system: r.system()?,
            component: r.component()?,
            analog: r.byte()?,
            value: i16::from_le_bytes(r.array()?),
            time: r.time()?,
        },
        4 => Object::Operation {
            system: r.system()?,
            flags: r.byte()?,
            operator: r.byte()?,
            time: r.time()?,
        },
        5 => Object::SoftwareVersion {
            system: r.system()?,
            major: r.byte()?,
            minor: r.byte()?,
        },
        6 => {
            let system = r.system()?;
            let len = r.byte()?;
            Object::SystemConfig {
                system,
                description: r.take(usize::from(len))?,
            }
        }
        7 => Object::ComponentConfig {
            system: r.system()?,
            component: r.component()?,
            description: r.array()?,
        },
        8 => Object::SystemTime {
            system: r.system()?,
            time: r.time()?,
        },
        21 => Object::UitdStatus {
            status: r.byte()?,
            extra: r.take(size21.checked_sub(7)?)?,
            time: r.time()?,
        },
        24 => Object::UitdOperation {
            flags: r.byte()?,
            operator: r.byte()?,
            time: r.time()?,
        },
        25 => Object::UitdVersion {
            major: r.byte()?,
            minor: r.byte()?,
        },
        26 => {
            let len = r.byte()?;
            Object::UitdConfig {
                description: r.take(usize::from(len))?,
            }
        }
        28 => Object::UitdTime { time: r.time()? },
        61 | 65 | 66 | 68 => Object::ReadSystem {
            system: r.system()?,
        },
        62 | 63 | 67 => Object::ReadComponent {
            system: r.system()?,
            address: u32::from_le_bytes(r.array()?),
        },
        64 => Object::ReadOperations {
            system: r.system()?,
            count: r.byte()?,
            start: r.time()?,
        },
        84 => Object::ReadUitdOperations {
            count: r.byte()?,
            start: r.time()?,
        },
        90 => Object::SyncClock { time: r.time()? },
        91 => Object::DutyCheck {
            timeout_min: r.byte()?,
        },
        _ => Object::Reserved { byte: r.byte()? },
    })
}

impl Object<'_> {
    /// Whether this object belongs in an ADU of type `kind`.
    pub fn fits(&self, kind: u8) -> bool {
        match self {
            Self::SystemStatus { .. } => kind == 1,
            Self::ComponentStatus { .. } => kind == 2,
            Self::AnalogValue { .. } => kind == 3,
            Self::Operation { .. } => kind == 4,
            Self::SoftwareVersion { .. } => kind == 5,
            Self::SystemConfig { .. } => kind == 6,
            Self::ComponentConfig { .. } => kind == 7,
            Self::SystemTime { .. } => kind == 8,
            Self::UitdStatus { .. } => kind == 21,
            Self::UitdOperation { .. } => kind == 24,
            Self::UitdVersion { .. } => kind == 25,
            Self::UitdConfig { .. } => kind == 26,
            Self::UitdTime { .. } => kind == 28,
            Self::ReadSystem { .. } => matches!(kind, 61 | 65 | 66 | 68),
            Self::ReadComponent { .. } => matches!(kind, 62 | 63 | 67),
            Self::ReadOperations { .. } => kind == 64,
            Self::ReadUitdOperations { .. } => kind == 84,
            Self::Reserved { .. } => matches!(kind, 81 | 85 | 86 | 88 | 89),
            Self::SyncClock { .. } => kind == 90,
            Self::DutyCheck { .. } => kind == 91,
            Self::Raw { .. } => !knows(kind),
        }
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) -> Option<()> {
        match *self {
            Self::SystemStatus {
                system,
                status,
                time,
            } => {
                w.system(system)?;
                w.put(&status.0.to_le_bytes())?;
                w.put(&time.0)
            }
            Self::ComponentStatus {
                system,
                component,
                status,
                description,
                time,
            } => {
                w.system(system)?;
                w.component(component)?;
                w.put(&status.0.to_le_bytes())?;
                w.put(&description)?;
                w.put(&time.0)
            }
            Self::AnalogValue {
                system,
                component,
                analog,
                value,
                time,
            } => {
                w.system(system)?;
                w.component(component)?;
                w.put(&[analog])?;
                w.put(&value.to_le_bytes())?;
                w.put(&time.0)
            }
            Self::Operation {
                system,
                flags,
                operator,
                time,
            } => {
                w.system(system)?;
                w.put(&[flags, operator])?;
                w.put(&time.0)
            }
            Self::SoftwareVersion {
                system,
                major,
                minor,
            } => {
                w.system(system)?;
                w.put(&[major, minor])
            }
            Self::SystemConfig {
                system,
                description,
            } => {
                w.system(system)?;
                w.put(&[u8::try_from(description.len()).ok()?])?;
                w.put(description)
            }
            Self::ComponentConfig {
                system,
                component,
                description,
            } => {
                w.system(system)?;
                w.component(component)?;
                w.put(&description)
            }
            Self::SystemTime { system, time } => {
                w.system(system)?;
                w.put(&time.0)
            }
            Self::UitdStatus {
                status,
                extra,
                time,
            } => {
                w.put(&[status])?;
                w.put(extra)?;
                w.put(&time.0)
            }
            Self::UitdOperation {
                flags,
                operator,
                time,
            } => {
                w.put(&[flags, operator])?;
                w.put(&time.0)
            }
            Self::UitdVersion { major, minor } => w.put(&[major, minor]),
            Self::UitdConfig { description } => {
                w.put(&[u8::try_from(description.len()).ok()?])?;
                w.put(description)
            }
            Self::UitdTime { time } | Self::SyncClock { time } => w.put(&time.0),
            Self::ReadSystem { system } => w.system(system),
            Self::ReadComponent { system, address } => {
                w.system(system)?;
                w.put(&address.to_le_bytes())
            }
            Self::ReadOperations {
                system,
                count,
                start,
            } => {
                w.system(system)?;
                w.put(&[count])?;
                w.put(&start.0)
            }
            Self::ReadUitdOperations { count, start } => {
                w.put(&[count])?;
                w.put(&start.0)
            }
            Self::Reserved { byte } => w.put(&[byte]),
            Self::DutyCheck { timeout_min } => w.put(&[timeout_min]),
            Self::Raw { bytes, .. } => w.put(bytes),
        }
    }
}

/// Reads fields off the front of a slice.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub(super) fn byte(&mut self) -> Option<u8> {
        let [b] = self.array()?;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }
    fn time(&mut self) -> Option<TimeTag> {
        Some(TimeTag(self.array()?))
    }
    fn system(&mut self) -> Option<System> {
        let [kind, address] = self.array()?;
        Some(System { kind, address })
    }
    fn component(&mut self) -> Option<Component> {
        Some(Component {
            kind: self.byte()?,
            address: u32::from_le_bytes(self.array()?),
        })
    }
}

/// Writes fields into a slice.
pub(super) struct Writer<'a> {
    pub(super) out: &'a mut [u8],
    pub(super) at: usize,
}

impl Writer<'_> {
    pub(super) fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.out.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }
    fn system(&mut self, s: System) -> Option<()> {
        self.put(&[s.kind, s.address])
    }
    fn component(&mut self, c: Component) -> Option<()> {
        self.put(&[c.kind])?;
        self.put(&c.address.to_le_bytes())
    }
}
