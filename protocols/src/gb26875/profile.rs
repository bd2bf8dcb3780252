//! Vendor profiles: the variants of GB/T 26875.3 seen in the field, as named settings.
//!
//! The standard's rules are [`STANDARD`]. What differs between centres and devices in the wild
//! (from the behaviour of open implementations and vendor documents; see `docs/gb26875.md`):
//!
//! - **Version bytes** (byte 5 main version, fixed 1; byte 6 user version): frames carry
//!   `01 01`, `01 00`, and `00 01` (one codec writes the version as a big-endian u16). A
//!   receiver never rejects on version; a profile says what this side writes.
//! - **Checksum**: the standard's 8-bit arithmetic sum of the control unit and the ADU; one
//!   vendor's parser also accepts an XOR of the same bytes.
//! - **Status bit 0**: the standard says 1 = normal, 0 = test, but published frames report a
//!   fire with bit 0 = 0. With [`Profile::bit0_informational`] a receiver treats it as
//!   information only; a fire bit is never ignored either way.

use core::fmt;

/// How the checksum byte is computed over bytes 3 … 27+L (control unit and ADU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumRule {
    /// The sum of the bytes mod 256 (GB/T 26875.3-2011 §6.6, table 2).
    Sum,
    /// The XOR of the bytes.
    Xor,
    /// Accept a sum or an XOR; write the sum.
    SumOrXor,
}

impl ChecksumRule {
    /// The checksum this rule writes.
    pub fn compute(self, bytes: &[u8]) -> u8 {
        match self {
            Self::Sum | Self::SumOrXor => sum(bytes),
            Self::Xor => xor(bytes),
        }
    }

    /// Whether `found` is a checksum this rule accepts for `bytes`.
    pub fn accepts(self, bytes: &[u8], found: u8) -> bool {
        match self {
            Self::Sum => sum(bytes) == found,
            Self::Xor => xor(bytes) == found,
            Self::SumOrXor => sum(bytes) == found || xor(bytes) == found,
        }
    }
}

/// The standard's checksum: the 8-bit arithmetic sum, carries dropped.
pub fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// The XOR of the bytes.
pub fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a ^ b)
}

/// One variant of the protocol, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    /// Its name in the configuration (`profile = "standard"`).
    pub name: &'static str,
    /// The checksum rule.
    pub checksum: ChecksumRule,
    /// The version bytes this side writes (main, user).
    pub version: [u8; 2],
    /// Status bit 0 (1 normal / 0 test) is information only: a frame with bit 0 = 0 is not
    /// treated as a test. The fire and fault bits are honoured either way.
    pub bit0_informational: bool,
}

/// GB/T 26875.3-2011 as written: sum checksum, version `01 01` (main 1, user 1), bit 0
/// informational (published frames report fires with bit 0 = 0).
pub const STANDARD: Profile = Profile {
    name: "standard",
    checksum: ChecksumRule::Sum,
    version: [1, 1],
    bit0_informational: true,
};

/// As [`STANDARD`], with user version 0: version bytes `01 00`.
pub const USER_VERSION_0: Profile = Profile {
    name: "user-version-0",
    version: [1, 0],
    ..STANDARD
};

/// The version written as a big-endian u16 1: bytes `00 01`, as one open codec does.
pub const VERSION_U16_BE: Profile = Profile {
    name: "version-u16-be",
    version: [0, 1],
    ..STANDARD
};

/// Accepts a sum or an XOR checksum (one vendor's private variant), writes the sum.
pub const SUM_OR_XOR: Profile = Profile {
    name: "sum-or-xor",
    checksum: ChecksumRule::SumOrXor,
    ..STANDARD
};

/// The standard's rules with bit 0 meaning what the standard says (0 = test).
pub const STRICT: Profile = Profile {
    name: "strict",
    bit0_informational: false,
    ..STANDARD
};

/// Every built-in profile.
pub const ALL: [Profile; 5] = [STANDARD, USER_VERSION_0, VERSION_U16_BE, SUM_OR_XOR, STRICT];

/// A profile name that is not built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownProfile;

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown GB/T 26875.3 profile: use one of ")?;
        for (i, p) in ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.name)?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UnknownProfile {}

impl Profile {
    /// The built-in profile of this name.
    ///
    /// # Errors
    /// [`UnknownProfile`] (its message lists the names).
    pub fn by_name(name: &str) -> Result<Self, UnknownProfile> {
        ALL.iter()
            .find(|p| p.name == name)
            .copied()
            .ok_or(UnknownProfile)
    }
}
