//! Where photos are kept: `{data_dir}/evidence/{sha256}.{jpg|png}`, written whole or not at all
//! (a temporary file, fsynced, renamed, the directory fsynced) before the store records them,
//! so a record never names a missing or partial file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::MediaType;

/// The photo directory and the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceDir {
    dir: PathBuf,
    max_photo_bytes: u64,
}

impl EvidenceDir {
    /// Photos under `dir` (made when the first one is kept), each at most `max_photo_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_photo_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_photo_bytes,
        }
    }

    /// The largest photo accepted, bytes.
    pub const fn max_photo_bytes(&self) -> u64 {
        self.max_photo_bytes
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a photo of this digest and type is kept in.
    pub fn path_of(&self, sha256: &str, media: MediaType) -> Option<PathBuf> {
        // The name comes from the store; only a hex digest may name a file.
        (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("{sha256}.{}", media.extension())))
    }

    /// Keeps a checked photo; returns its SHA-256 (hex). Blocking: call off the runtime.
    ///
    /// # Errors
    /// The directory or the file cannot be written (disk full...).
    pub fn keep(&self, bytes: &[u8], media: MediaType) -> std::io::Result<String> {
        let sha = hex(&Sha256::digest(bytes));
        let path = self
            .path_of(&sha, media)
            .ok_or_else(|| std::io::Error::other("digest is not hex"))?;
        if path.exists() {
            return Ok(sha);
        }
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{sha}.{}.tmp", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(sha)
    }

    /// Reads a kept photo back. Blocking: call off the runtime.
    ///
    /// # Errors
    /// The file is missing or unreadable.
    pub fn read(&self, sha256: &str, media: MediaType) -> std::io::Result<Vec<u8>> {
        let path = self
            .path_of(sha256, media)
            .ok_or_else(|| std::io::Error::other("digest is not hex"))?;
        std::fs::read(path)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_kept_once_under_its_digest_and_read_back() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let d = EvidenceDir::new(tmp.path().join("evidence"), 100);
        let png = b"\x89PNG\r\n\x1a\nbody";
        let a = d.keep(png, MediaType::Png).expect("kept");
        let b = d.keep(png, MediaType::Png).expect("kept again");
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(d.read(&a, MediaType::Png).expect("read"), png);
        let names: Vec<_> = std::fs::read_dir(d.dir())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(format!("{a}.png"))]);
    }

    #[test]
    fn only_a_hex_digest_names_a_file() {
        let d = EvidenceDir::new("/x", 1);
        assert!(d.path_of("../../etc/passwd", MediaType::Jpeg).is_none());
        assert!(d.path_of(&"g".repeat(64), MediaType::Jpeg).is_none());
        assert!(d.path_of(&"a".repeat(64), MediaType::Jpeg).is_some());
    }
}
