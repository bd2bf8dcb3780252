//! The gateway's record-signing key: an Ed25519 key pair made on first start in the data
//! directory (`commissioning-key.pk8`, PKCS#8, mode 0600, never logged), its public half
//! beside it (`commissioning-key.pub`, base64) for `firegrid record verify --key`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

use super::record::public_key_b64;

/// The private key's file name in the data directory.
pub const KEY_FILE: &str = "commissioning-key.pk8";
/// The public key's file name in the data directory.
pub const PUBLIC_FILE: &str = "commissioning-key.pub";

/// Why the key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("record-signing key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error("record-signing key {0}: not an Ed25519 PKCS#8 key (move it away to make a new one)")]
    Invalid(PathBuf),
    /// The random source failed.
    #[error("record-signing key: the random source failed")]
    Random,
}

/// Reads the key pair of `data_dir`, making it (and its public file) when there is none.
///
/// # Errors
/// The file cannot be read or written, or holds no valid key.
pub fn load_or_create(data_dir: &Path) -> Result<Ed25519KeyPair, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    let key = match std::fs::read(&path) {
        Ok(bytes) => {
            Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeyError::Invalid(path.clone()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Random)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            f.write_all(pkcs8.as_ref()).map_err(io)?;
            f.sync_all().map_err(io)?;
            tracing::info!(file = %path.display(), "record-signing key made");
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| KeyError::Invalid(path.clone()))?
        }
        Err(e) => return Err(io(e)),
    };
    let public = data_dir.join(PUBLIC_FILE);
    let text = format!("{}\n", public_key_b64(&key));
    if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&public, text).map_err(|source| KeyError::Io {
            path: public,
            source,
        })?;
    }
    Ok(key)
}

/// The public key (base64) of the key pair in `data_dir`, without making one.
///
/// # Errors
/// There is no key there, or it is not valid.
pub fn public_of(data_dir: &Path) -> Result<String, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let bytes = std::fs::read(&path).map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    let key = Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeyError::Invalid(path))?;
    Ok(public_key_b64(&key))
}

/// A key pair kept only in memory (API tests).
///
/// # Errors
/// The random source failed.
pub fn ephemeral() -> Result<Ed25519KeyPair, KeyError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Random)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let k1 = load_or_create(dir.path()).expect("made");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("the file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let k2 = load_or_create(dir.path()).expect("read again");
        assert_eq!(public_key_b64(&k1), public_key_b64(&k2));
        assert_eq!(public_of(dir.path()).expect("public"), public_key_b64(&k1));
        let written = std::fs::read_to_string(dir.path().join(PUBLIC_FILE)).expect("pub file");
        assert_eq!(written.trim(), public_key_b64(&k1));
    }

    #[test]
    fn a_damaged_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join(KEY_FILE), b"junk").expect("write");
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyError::Invalid(_))
        ));
        assert_eq!(
            std::fs::read(dir.path().join(KEY_FILE)).expect("kept"),
            b"junk"
        );
    }
}
