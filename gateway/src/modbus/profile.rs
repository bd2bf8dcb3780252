//! Modbus profiles: the built-in [`TYPICAL_RCM_TEMP`] and profiles loaded from TOML files,
//! turned into the `protocols` register-map types and validated before use.
//!
//! The TOML format (documented with an example in `docs/modbus.md`):
//!
//! ```toml
//! name = "acme-rcm-1"
//!
//! [[registers]]
//! address = 0x0000          # 0-based PDU address
//! kind = "holding"          # holding | input | coil | discrete_input
//! type = "u16"              # u16 | i16 | u32 | i32 | u32_le | i32_le | bool
//! scale = { mul = 1, div = 10, offset = 0 }
//! meaning = "residual_current"
//! channel = 0
//! writable = false
//!
//! [[state_codes]]
//! code = 1
//! quantity = "residual_current"   # residual_current | temperature
//! state = "alarm"                 # normal | alarm | lead_open | lead_short | sensor_error
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use firegrid_protocols::channel::{ChannelNo, ChannelState, FaultCause, Quantity};
use firegrid_protocols::regmap::{
    MapError, Meaning, Register, RegisterKind, RegisterMap, Scale, StateCode, TYPICAL_RCM_TEMP,
    ValueType, WordOrder,
};

/// The longest profile file read, bytes (a profile is a few kB; this bounds a mistake).
pub const MAX_PROFILE_BYTES: usize = 256 * 1024;

/// A validated profile, owning its registers and state codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: String,
    registers: Vec<Register>,
    state_codes: Vec<StateCode>,
}

impl Profile {
    /// The built-in `typical-rcm-4t` profile.
    pub fn builtin() -> Self {
        Self::from_map(&TYPICAL_RCM_TEMP)
    }

    /// An owned copy of a register map (not validated again).
    pub fn from_map(map: &RegisterMap<'_>) -> Self {
        Self {
            name: map.name.to_owned(),
            registers: map.registers.to_vec(),
            state_codes: map.state_codes.to_vec(),
        }
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The register map, borrowed.
    pub fn map(&self) -> RegisterMap<'_> {
        RegisterMap::new(&self.name, &self.registers, &self.state_codes)
    }

    /// Parses and validates a profile from TOML text.
    ///
    /// # Errors
    /// [`ProfileError`] naming the line, the register or the defect.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        if text.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge { len: text.len() });
        }
        let file: ProfileFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text.get(..s.start)
                    .map_or(1, |b| b.matches('\n').count() + 1)
            });
            ProfileError::Syntax {
                line,
                message: e.message().to_owned(),
            }
        })?;
        if file.name.is_empty() || file.name.len() > 64 {
            return Err(ProfileError::Name);
        }
        let registers = file
            .registers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.to_register().map_err(|what| ProfileError::Register {
                    index: i + 1,
                    address: r.address,
                    what,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if registers.is_empty() {
            return Err(ProfileError::NoRegisters);
        }
        let state_codes = file
            .state_codes
            .iter()
            .map(|s| StateCode::new(s.code, s.quantity, s.state.into()))
            .collect();
        let profile = Self {
            name: file.name,
            registers,
            state_codes,
        };
        profile.map().validate().map_err(ProfileError::Map)?;
        Ok(profile)
    }

    /// Reads, parses and validates a profile file.
    ///
    /// # Errors
    /// [`LoadError`] with the file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            path: path.to_owned(),
            error: ProfileError::Read(e.to_string()),
        })?;
        Self::parse(&text).map_err(|error| LoadError {
            path: path.to_owned(),
            error,
        })
    }
}

/// Profiles by name: the built-in one and those loaded from files.
#[derive(Debug, Clone, Default)]
pub struct Profiles(BTreeMap<String, Arc<Profile>>);

impl Profiles {
    /// The built-in profile only.
    pub fn builtin() -> Self {
        let mut p = Self::default();
        let b = Profile::builtin();
        p.0.insert(b.name.clone(), Arc::new(b));
        p
    }

    /// The built-in profile and every file in `files`.
    ///
    /// # Errors
    /// The first file that does not load, or a name used twice.
    pub fn load(files: &[PathBuf]) -> Result<Self, LoadError> {
        let mut p = Self::builtin();
        for f in files {
            let profile = Profile::load(f)?;
            if p.0.contains_key(&profile.name) {
                return Err(LoadError {
                    path: f.clone(),
                    error: ProfileError::DuplicateName(profile.name),
                });
            }
            p.0.insert(profile.name.clone(), Arc::new(profile));
        }
        Ok(p)
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        self.0.get(name).cloned()
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Why a profile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(String),
    /// Larger than [`MAX_PROFILE_BYTES`].
    #[error("{len} bytes is over the {MAX_PROFILE_BYTES}-byte limit of a profile")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The name is empty or too long.
    #[error("`name` must be 1-64 characters, e.g. \"acme-rcm-1\"")]
    Name,
    /// No `[[registers]]`.
    #[error("a profile needs at least one [[registers]] entry")]
    NoRegisters,
    /// One register entry is inconsistent by itself.
    #[error("[[registers]] entry {index} (address {address:#06x}): {what}")]
    Register {
        /// 1-based position in the file.
        index: usize,
        /// Its address.
        address: u16,
        /// What is wrong.
        what: String,
    },
    /// The registers together are inconsistent ([`RegisterMap::validate`]).
    #[error("{0}")]
    Map(MapError),
    /// Two profiles have the same name.
    #[error("a profile called {0:?} is already loaded (names must be unique)")]
    DuplicateName(String),
}

/// A profile file that did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Modbus profile {path}: {error}")]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: ProfileError,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    registers: Vec<RegisterEntry>,
    #[serde(default)]
    state_codes: Vec<StateEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterEntry {
    address: u16,
    #[serde(default = "holding")]
    kind: KindName,
    #[serde(rename = "type", default = "u16_type")]
    value_type: TypeName,
    #[serde(default)]
    scale: Scale,
    meaning: MeaningName,
    channel: Option<ChannelNo>,
    number: Option<u16>,
    #[serde(default)]
    writable: bool,
}

fn holding() -> KindName {
    KindName::Holding
}

fn u16_type() -> TypeName {
    TypeName::U16
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Holding,
    Input,
    Coil,
    DiscreteInput,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypeName {
    U16,
    I16,
    U32,
    I32,
    U32Le,
    I32Le,
    Bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MeaningName {
    ResidualCurrent,
    Temperature,
    StateCode,
    ResidualSetPoint,
    TemperatureSetPoint,
    AlarmDelay,
    ReportPeriod,
    HeartbeatPeriod,
    ChannelEnable,
    BuzzerEnable,
    RelayEnable,
    AlarmReset,
    DeviceAddress,
    FirmwareVersion,
    Other,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StateName {
    Normal,
    Alarm,
    LeadOpen,
    LeadShort,
    SensorError,
}

impl From<StateName> for ChannelState {
    fn from(s: StateName) -> Self {
        match s {
            StateName::Normal => Self::Normal,
            StateName::Alarm => Self::Alarm,
            StateName::LeadOpen => Self::Fault(FaultCause::LeadOpen),
            StateName::LeadShort => Self::Fault(FaultCause::LeadShort),
            StateName::SensorError => Self::Fault(FaultCause::SensorError),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateEntry {
    code: u16,
    quantity: Quantity,
    state: StateName,
}

impl RegisterEntry {
    fn to_register(&self) -> Result<Register, String> {
        let kind = match self.kind {
            KindName::Holding => RegisterKind::Holding,
            KindName::Input => RegisterKind::Input,
            KindName::Coil => RegisterKind::Coil,
            KindName::DiscreteInput => RegisterKind::DiscreteInput,
        };
        let value_type = match self.value_type {
            TypeName::U16 => ValueType::U16,
            TypeName::I16 => ValueType::I16,
            TypeName::U32 => ValueType::U32(WordOrder::HighWordFirst),
            TypeName::I32 => ValueType::I32(WordOrder::HighWordFirst),
            TypeName::U32Le => ValueType::U32(WordOrder::LowWordFirst),
            TypeName::I32Le => ValueType::I32(WordOrder::LowWordFirst),
            TypeName::Bool => ValueType::Bool,
        };
        let channel = || {
            self.channel
                .ok_or_else(|| "this meaning needs `channel = N`".to_owned())
        };
        let per_device = |m: Meaning| {
            if self.channel.is_some() {
                Err("this meaning is per device: remove `channel`".to_owned())
            } else {
                Ok(m)
            }
        };
        let meaning = match self.meaning {
            MeaningName::ResidualCurrent => Meaning::ResidualCurrent(channel()?),
            MeaningName::Temperature => Meaning::Temperature(channel()?),
            MeaningName::StateCode => Meaning::StateCode(channel()?),
            MeaningName::ResidualSetPoint => Meaning::ResidualSetPoint(channel()?),
            MeaningName::TemperatureSetPoint => Meaning::TemperatureSetPoint(channel()?),
            MeaningName::AlarmDelay => per_device(Meaning::AlarmDelay)?,
            MeaningName::ReportPeriod => per_device(Meaning::ReportPeriod)?,
            MeaningName::HeartbeatPeriod => per_device(Meaning::HeartbeatPeriod)?,
            MeaningName::ChannelEnable => per_device(Meaning::ChannelEnable)?,
            MeaningName::BuzzerEnable => per_device(Meaning::BuzzerEnable)?,
            MeaningName::RelayEnable => per_device(Meaning::RelayEnable)?,
            MeaningName::AlarmReset => per_device(Meaning::AlarmReset)?,
            MeaningName::DeviceAddress => per_device(Meaning::DeviceAddress)?,
            MeaningName::FirmwareVersion => per_device(Meaning::FirmwareVersion)?,
            MeaningName::Other => Meaning::Other(
                self.number
                    .ok_or_else(|| "meaning \"other\" needs `number = N`".to_owned())?,
            ),
        };
        if self.number.is_some() && !matches!(meaning, Meaning::Other(_)) {
            return Err("`number` is only for meaning \"other\"".into());
        }
        let mut r = Register::new(self.address, kind, value_type, meaning);
        r.scale = self.scale;
        r.writable = self.writable;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_builtin_profile_is_valid_and_named() {
        let p = Profiles::builtin();
        let b = p.get("typical-rcm-4t").unwrap();
        b.map().validate().unwrap();
        assert_eq!(b.map(), TYPICAL_RCM_TEMP);
    }

    #[test]
    fn errors_name_the_line_and_the_register() {
        let err = Profile::parse("name = \"x\"\n[[registers]]\naddress = 1\nmeaning = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 4: unknown variant `nope`"), "{err}");
        let err = Profile::parse(
            "name = \"x\"\n[[registers]]\naddress = 0x10\nmeaning = \"temperature\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "[[registers]] entry 1 (address 0x0010): this meaning needs `channel = N`"
        );
        let dup = "name = \"x\"\n[[registers]]\naddress = 1\nmeaning = \"temperature\"\nchannel = 1\n\
                   [[registers]]\naddress = 1\nmeaning = \"residual_current\"\nchannel = 0\n";
        let err = Profile::parse(dup).unwrap_err().to_string();
        assert_eq!(err, "two holding registers at 0x0001");
        let zero = "name = \"x\"\n[[registers]]\naddress = 2\nmeaning = \"temperature\"\n\
                    channel = 1\nscale = { div = 0 }\n";
        let err = Profile::parse(zero).unwrap_err().to_string();
        assert_eq!(err, "register 0x0002: scale div is 0");
        let err = Profile::parse("name = \"x\"\nregisters = []\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "a profile needs at least one [[registers]] entry");
    }

    /// The example of docs/modbus.md parses into what it says.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/modbus.md");
        let start = doc
            .find("```toml\nname = ")
            .expect("docs/modbus.md has the profile example");
        let body = &doc[start + "```toml\n".len()..];
        let example = &body[..body.find("```").expect("the example ends")];
        let p = Profile::parse(example).unwrap();
        let map = p.map();
        assert_eq!(p.name(), "acme-rcm-2");
        let leak = map.find(Meaning::ResidualCurrent(0)).unwrap();
        assert_eq!(leak.kind, RegisterKind::Input);
        // 412.34 mA as 41234 in 0.01 mA, low word first.
        assert_eq!(leak.decode(&[41234, 0]), Ok(412));
        assert_eq!(
            map.channel_state(0, 9),
            Ok(ChannelState::Fault(FaultCause::LeadOpen))
        );
        assert!(map.find(Meaning::BuzzerEnable).unwrap().kind.is_bit());
        assert_eq!(map.read_blocks(RegisterKind::Input, 0).count(), 2);
    }

    proptest! {
        /// Nothing a file can hold makes parsing panic.
        #[test]
        fn parsing_never_panics(text in ".{0,400}") {
            let _ = Profile::parse(&text);
        }

        /// Structured near-valid input: any numbers in the fields.
        #[test]
        fn near_valid_profiles_never_panic(
            addr in any::<u16>(), ch in any::<u8>(), mul in any::<i32>(), div in any::<u32>(),
            offset in any::<i32>(), code in any::<u16>(), kind in 0usize..4, ty in 0usize..7,
        ) {
            let kinds = ["holding", "input", "coil", "discrete_input"];
            let types = ["u16", "i16", "u32", "i32", "u32_le", "i32_le", "bool"];
            let text = format!(
                "name = \"p\"\n[[registers]]\naddress = {addr}\nkind = \"{}\"\ntype = \"{}\"\n\
                 meaning = \"temperature\"\nchannel = {ch}\nscale = {{ mul = {mul}, div = {div}, offset = {offset} }}\n\
                 [[registers]]\naddress = {}\nmeaning = \"state_code\"\nchannel = {ch}\n\
                 [[state_codes]]\ncode = {code}\nquantity = \"temperature\"\nstate = \"alarm\"\n",
                kinds[kind], types[ty], addr.wrapping_add(7),
            );
            if let Ok(p) = Profile::parse(&text) {
                let map = p.map();
                for r in map.registers {
                    let _ = r.decode(&[addr, code]);
                }
                let _ = map.channel_state(ch, code);
            }
        }
    }
}
