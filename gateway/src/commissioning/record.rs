//! The commissioning record: what the gateway certifies about a device it was tested with, and
//! how it is signed and checked (docs/commissioning.md).
//!
//! A record file is the [`Signed`] envelope as pretty-printed JSON and a newline, exactly as
//! [`Signed::to_file`] writes it: `{"record": {…}, "signature": {"alg": "Ed25519",
//! "public_key": …, "value": …}}`. The signature (Ed25519, base64) is over
//! [`DOMAIN`] followed by the record's compact JSON. [`verify`] takes the file's bytes and
//! the gateway's public key and accepts only a file that is byte for byte what the gateway
//! wrote: a changed byte either breaks the JSON, changes the signed record, changes the
//! signature, or changes the layout (refused as not canonical). Pure: no clock, no files.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::model::UnixMs;

/// What the signature covers before the record's JSON: a record's signature is never valid
/// for anything else the key might sign.
pub const DOMAIN: &[u8] = b"firegrid commissioning record v1\n";

/// The record format's name and version.
pub const FORMAT: &str = "firegrid.commissioning/1";

/// What the gateway certifies: the device as it found it, where it is bound, each test with
/// its times and latencies, who commissioned it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CommissioningRecord)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`FORMAT`].
    pub format: String,
    /// The record's number at this gateway.
    pub id: i64,
    /// The device.
    pub device: RecordDevice,
    /// Where it is installed.
    pub binding: Binding,
    /// The tests run while it was commissioned, oldest first.
    pub tests: Vec<TestEntry>,
    /// Who commissioned it (the user name).
    pub installer: String,
    /// When the record was issued, ms since the Unix epoch.
    pub issued_ms: UnixMs,
}

/// The device as the gateway knew it when issuing the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDevice {
    /// Its id.
    pub id: String,
    /// Its kind (`electrical_fire_monitor`, `smoke_alarm`, `legacy_modbus`).
    pub kind: String,
    /// Its firmware, from its latest status.
    pub firmware: Option<String>,
    /// Its radio signal, dBm, from its latest status.
    pub signal_dbm: Option<i64>,
    /// Its battery, mV, from its latest status.
    pub battery_mv: Option<i64>,
    /// The configuration version the device says is in force.
    pub config_in_force: Option<i64>,
    /// The configuration version the gateway wants it to have.
    pub config_wanted: i64,
    /// The configuration wanted (set-points, delays, intervals), as the API shows it.
    pub config: serde_json::Value,
}

/// Where a device is installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RecordBinding)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The site's id.
    pub site_id: Option<i64>,
    /// The site's name.
    pub site: Option<String>,
    /// Its street address.
    pub address: Option<String>,
    /// The room's id.
    pub room_id: Option<i64>,
    /// The room's name.
    pub room: Option<String>,
    /// The circuit's id.
    pub circuit_id: Option<i64>,
    /// The circuit's name.
    pub circuit: Option<String>,
    /// The grid cell.
    pub grid_id: Option<String>,
}

/// One test, with what was measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEntry {
    /// The test's id.
    pub id: i64,
    /// `self_test` (the device's self-test command) or `button` (the test button pressed).
    pub kind: String,
    /// `passed`, `failed`, `alarm` (the button's alarm arrived) or `timed_out`.
    pub result: String,
    /// When the installer asked for it (gateway clock).
    pub requested_ms: UnixMs,
    /// When the device made its answer (the device's clock, set from the gateway's).
    pub device_ms: Option<UnixMs>,
    /// When the gateway received it.
    pub received_ms: Option<UnixMs>,
    /// When the installer's topic had it (the broker confirmed).
    pub delivered_ms: Option<UnixMs>,
    /// Device → gateway, ms (`received_ms − device_ms`).
    pub device_to_gateway_ms: Option<i64>,
    /// Gateway → installer, ms (`delivered_ms − received_ms`).
    pub gateway_to_installer_ms: Option<i64>,
    /// Request → installer, ms (`delivered_ms − requested_ms`).
    pub total_ms: Option<i64>,
}

/// The signature of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `Ed25519`.
    pub alg: String,
    /// The signing key's public half, base64 (what [`verify`] compares with the given key).
    pub public_key: String,
    /// The signature, base64.
    pub value: String,
}

/// A record and its signature: the record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// What is certified.
    pub record: Record,
    /// By whom.
    pub signature: Signature,
}

/// Why a record file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a record file at all.
    #[error("not a commissioning record: {0}")]
    Malformed(String),
    /// Parsed, but not the bytes the gateway wrote (something was changed or re-formatted).
    #[error("the file was changed: it is not byte for byte the record the gateway wrote")]
    NotCanonical,
    /// Another format version.
    #[error("record format {0:?} is not {FORMAT:?}")]
    Format(String),
    /// Signed with another algorithm.
    #[error("signature algorithm {0:?} is not Ed25519")]
    Algorithm(String),
    /// Signed by another key than the one given.
    #[error("signed by key {found}, not by the given gateway key {expected}")]
    OtherKey {
        /// The file's key.
        found: String,
        /// The key given.
        expected: String,
    },
    /// The given public key is not an Ed25519 key.
    #[error("the given public key is not a base64 Ed25519 public key (32 bytes)")]
    BadKey,
    /// The signature does not match the record.
    #[error("the signature does not match the record: it was changed after signing")]
    BadSignature,
}

/// The bytes a record's signature is over.
fn signed_bytes(record: &Record) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    // Serializing plain structs, strings and integers cannot fail.
    m.extend(serde_json::to_vec(record).unwrap_or_default());
    m
}

/// A key pair's public half, base64.
pub fn public_key_b64(key: &Ed25519KeyPair) -> String {
    B64.encode(key.public_key().as_ref())
}

/// Signs `record` with `key`.
pub fn sign(record: Record, key: &Ed25519KeyPair) -> Signed {
    let value = B64.encode(key.sign(&signed_bytes(&record)).as_ref());
    Signed {
        record,
        signature: Signature {
            alg: "Ed25519".to_owned(),
            public_key: public_key_b64(key),
            value,
        },
    }
}

impl Signed {
    /// The record file's bytes: pretty JSON and a newline.
    pub fn to_file(&self) -> Vec<u8> {
        // Plain structs, strings and integers: cannot fail.
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Checks a record file against the gateway's public key (base64); the record when it is
/// exactly what that gateway signed.
///
/// # Errors
/// Why it is not (see [`VerifyError`]).
pub fn verify(file: &[u8], public_key_b64: &str) -> Result<Record, VerifyError> {
    let key = B64
        .decode(public_key_b64.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or(VerifyError::BadKey)?;
    let signed: Signed =
        serde_json::from_slice(file).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if signed.to_file() != file {
        return Err(VerifyError::NotCanonical);
    }
    if signed.record.format != FORMAT {
        return Err(VerifyError::Format(signed.record.format));
    }
    if signed.signature.alg != "Ed25519" {
        return Err(VerifyError::Algorithm(signed.signature.alg));
    }
    let expected = B64.encode(&key);
    if signed.signature.public_key != expected {
        return Err(VerifyError::OtherKey {
            found: signed.signature.public_key,
            expected,
        });
    }
    let sig = B64
        .decode(&signed.signature.value)
        .map_err(|_| VerifyError::BadSignature)?;
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(&signed_bytes(&signed.record), &sig)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(signed.record)
}

/// A test's latencies from its times: device → gateway, gateway → installer, request →
/// installer (each when both ends are known; negative when the device's clock runs ahead).
pub fn latencies(
    requested_ms: UnixMs,
    device_ms: Option<UnixMs>,
    received_ms: Option<UnixMs>,
    delivered_ms: Option<UnixMs>,
) -> (Option<i64>, Option<i64>, Option<i64>) {
    let diff = |a: UnixMs, b: UnixMs| i64::try_from(a).ok()?.checked_sub(i64::try_from(b).ok()?);
    (
        received_ms.zip(device_ms).and_then(|(r, d)| diff(r, d)),
        delivered_ms.zip(received_ms).and_then(|(d, r)| diff(d, r)),
        delivered_ms.and_then(|d| diff(d, requested_ms)),
    )
}

#[cfg(test)]
mod tests;
