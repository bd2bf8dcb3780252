//! Secrets: device MQTT passwords and people's API tokens.
//!
//! A secret is 32 bytes from the operating system's random source, written as 43 characters of
//! URL-safe base64. Only its [`SecretHash`] is stored; the plaintext is shown once, when it is
//! made, and never logged ([`Secret`]'s `Debug` hides it).
//!
//! The hash is Mosquitto's `$6$` password-file format: `$6$` + base64(12-byte salt) + `$` +
//! base64(SHA-512(secret ‖ salt)). One salted SHA-512 is enough for a 256-bit random secret (no
//! dictionary can guess it; slow hashing protects *chosen* passwords), it is what Mosquitto
//! verifies at every CONNECT without cost to the broker's single thread, and it lets the same
//! stored hash go into the password file of the managed broker unchanged
//! (docs/decisions/0006-managed-mosquitto.md).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha512};

/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;
/// Random bytes in a hash's salt (Mosquitto's own choice).
const SALT_BYTES: usize = 12;

/// Why a secret could not be made or a stored hash read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
    /// A stored hash is not in the `$6$salt$hash` format.
    #[error(
        "stored secret hash is not in Mosquitto's $6$ format (\"$6$<base64 salt>$<base64 sha512>\")"
    )]
    BadHash,
}

/// A secret in plaintext, to be shown once. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new random secret.
    ///
    /// # Errors
    /// [`SecretError::Random`] if the operating system cannot give random bytes.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut bytes).map_err(SecretError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a secret given by a person (e.g. read from a file), so it is never printed.
    #[must_use]
    pub fn from_plaintext(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The plaintext, for showing once or for sending in a CONNECT.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash to store.
    ///
    /// # Errors
    /// [`SecretError::Random`] if no salt can be drawn.
    pub fn hash(&self) -> Result<SecretHash, SecretError> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::getrandom(&mut salt).map_err(SecretError::Random)?;
        Ok(SecretHash::with_salt(&self.0, &salt))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// A stored secret's hash, in Mosquitto's `$6$` password-file format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    fn with_salt(plaintext: &str, salt: &[u8]) -> Self {
        let digest = Sha512::new()
            .chain_update(plaintext.as_bytes())
            .chain_update(salt)
            .finalize();
        Self(format!(
            "$6${}${}",
            STANDARD.encode(salt),
            STANDARD.encode(digest)
        ))
    }

    /// Reads a stored hash, checking its format.
    ///
    /// # Errors
    /// [`SecretError::BadHash`] if it is not `$6$<base64 salt>$<base64 SHA-512>`.
    pub fn parse(stored: &str) -> Result<Self, SecretError> {
        Self::parts(stored).ok_or(SecretError::BadHash)?;
        Ok(Self(stored.to_owned()))
    }

    fn parts(s: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let rest = s.strip_prefix("$6$")?;
        let (salt, digest) = rest.split_once('$')?;
        let salt = STANDARD.decode(salt).ok()?;
        let digest = STANDARD.decode(digest).ok()?;
        (!salt.is_empty() && digest.len() == 64).then_some((salt, digest))
    }

    /// Whether `plaintext` is the secret this hash was made from. Compares in constant time.
    #[must_use]
    pub fn verify(&self, plaintext: &str) -> bool {
        let Some((salt, digest)) = Self::parts(&self.0) else {
            return false;
        };
        let candidate = Sha512::new()
            .chain_update(plaintext.as_bytes())
            .chain_update(&salt)
            .finalize();
        candidate
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The stored form (a line of Mosquitto's password file is `username:` + this).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_against_its_own_hash_only() {
        let s = Secret::generate().expect("the OS has randomness");
        assert_eq!(s.expose().len(), 43);
        let h = s.hash().expect("salt");
        assert!(h.verify(s.expose()));
        assert!(!h.verify("wrong"));
        let other = Secret::generate().expect("the OS has randomness");
        assert_ne!(s, other, "two draws of 256 random bits differ");
        assert!(!h.verify(other.expose()));
        // Same secret, two hashes: different salts, both verify.
        let h2 = s.hash().expect("salt");
        assert_ne!(h, h2);
        assert!(h2.verify(s.expose()));
    }

    #[test]
    fn the_format_is_mosquittos() {
        // Made by Python's hashlib the way mosquitto_passwd's $6$ does (SHA-512 of password then
        // salt), and accepted by Mosquitto 2.0.11 for password "secretC".
        let stored = "$6$AZKv+wncWwTP1mNG$hNYtAFKSZ8RdNVHQPoM1zoyYjUgKJI+QoLo34vC6hZlvfkXtY9vmHv+Dqni1NZUaLuQG4yn/7IPVa5yMTIBc0w==";
        let h = SecretHash::parse(stored).expect("valid");
        assert!(h.verify("secretC"));
        assert!(!h.verify("secretc"));
        let salt = STANDARD.decode("AZKv+wncWwTP1mNG").expect("base64");
        assert_eq!(SecretHash::with_salt("secretC", &salt).as_str(), stored);
    }

    #[test]
    fn malformed_hashes_are_refused_and_never_verify() {
        for bad in [
            "",
            "$6$",
            "$7$101$AAAA$BBBB",
            "$6$AAAA",
            "$6$!!$AAAA",
            "$6$AAAA$AAAA",
        ] {
            assert!(SecretHash::parse(bad).is_err(), "{bad}");
            assert!(!SecretHash(bad.into()).verify(""), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_plaintext() {
        let s = Secret::from_plaintext("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
