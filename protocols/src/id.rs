//! Identifiers that appear in MQTT topics: device ids and grid-cell ids.
//!
//! Both are 1–32 characters of `[A-Za-z0-9_-]`. That keeps them safe in a topic level (never
//! `+`, `#` or `/`), in a file name, in a URL path and in a SQL string, and bounded in memory.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest id, in bytes.
pub const MAX_ID_LEN: usize = 32;

/// Why a string is not a valid id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id contains a character outside `[A-Za-z0-9_-]`.
    BadChar {
        /// The first offending character.
        ch: char,
        /// Its byte offset in the id.
        at: usize,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RULE: &str = "ids are 1-32 characters of [A-Za-z0-9_-]";
        match self {
            Self::Empty => write!(f, "id is empty: {RULE}"),
            Self::TooLong { len } => write!(f, "id is {len} bytes long: {RULE}"),
            Self::BadChar { ch, at } => {
                write!(f, "id contains {ch:?} at byte {at}: {RULE}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdError {}

/// Checks `s` against the id rule.
///
/// # Errors
/// [`IdError`] says what is wrong.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some((at, ch)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(IdError::BadChar { ch, at });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: s.len() });
    }
    Ok(())
}

macro_rules! bounded_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(heapless::String<MAX_ID_LEN>);

        impl $name {
            /// Validates `s` and makes an id of it.
            ///
            /// # Errors
            /// [`IdError`] if `s` breaks the id rule.
            pub fn new(s: &str) -> Result<Self, IdError> {
                validate_id(s)?;
                let mut out = heapless::String::new();
                // Cannot fail: validate_id bounded the length by the capacity.
                out.push_str(s).map_err(|_| IdError::TooLong { len: s.len() })?;
                Ok(Self(out))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = heapless::String::<MAX_ID_LEN>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded_id!(
    /// A device's id: the `{device_id}` level of its topics, and its identity in the registry.
    ///
    /// ```
    /// use firegrid_protocols::DeviceId;
    /// assert!(DeviceId::new("hz-gongshu-0042").is_ok());
    /// let err = DeviceId::new("a/b").unwrap_err();
    /// assert_eq!(err.to_string(), "id contains '/' at byte 1: ids are 1-32 characters of [A-Za-z0-9_-]");
    /// ```
    DeviceId
);

bounded_id!(
    /// A grid cell's id: the `{grid_id}` level of `firegrid/v1/alert/{grid_id}`.
    GridId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn accepts_the_whole_alphabet_and_the_longest_id() {
        assert!(DeviceId::new("AZaz09_-").is_ok());
        assert!(DeviceId::new(&"x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn refuses_wildcards_separators_and_bounds() {
        assert_eq!(DeviceId::new(""), Err(IdError::Empty));
        assert_eq!(
            DeviceId::new(&"x".repeat(33)),
            Err(IdError::TooLong { len: 33 })
        );
        for (s, ch, at) in [
            ("a+", '+', 1),
            ("#", '#', 0),
            ("a/b", '/', 1),
            ("ab c", ' ', 2),
        ] {
            assert_eq!(DeviceId::new(s), Err(IdError::BadChar { ch, at }), "{s}");
        }
        assert_eq!(
            DeviceId::new("温度").unwrap_err().to_string(),
            "id contains '温' at byte 0: ids are 1-32 characters of [A-Za-z0-9_-]"
        );
    }
}
