//! A `socat` PTY pair (Debian's `socat`): two serial-like ends joined, for RS-485 (Modbus
//! RTU) tests. No port: the links are named files in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Process, temp_dir};

/// How long start waits for the pair.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The pair: end `a` (e.g. for the gateway) and end `b` (e.g. for a simulated monitor).
/// Killed when dropped.
#[derive(Debug)]
pub struct PtyPair {
    process: Process,
    a: PathBuf,
    b: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    /// Starts `socat` and waits until both links exist.
    ///
    /// # Panics
    /// If socat is missing, exits, or makes no pair within [`READY_TIMEOUT`].
    pub async fn start() -> Self {
        let dir = temp_dir("pty").expect("a temporary directory");
        let (a, b) = (dir.path().join("ttyA"), dir.path().join("ttyB"));
        let mut process = Process::spawn(
            Command::new("socat")
                .arg(format!("pty,raw,echo=0,link={}", a.display()))
                .arg(format!("pty,raw,echo=0,link={}", b.display())),
            &dir.path().join("socat.log"),
        )
        .expect("socat runs (Debian package socat; scripts/test installs it)");
        crate::wait::until("socat's PTY pair", READY_TIMEOUT, || {
            if let Some(status) = process.exited() {
                panic!(
                    "socat exited before making the PTY pair ({status}): {}",
                    process.log()
                );
            }
            (a.exists() && b.exists()).then_some(())
        })
        .await;
        Self {
            process,
            a,
            b,
            _dir: dir,
        }
    }

    /// One end.
    pub fn a(&self) -> &Path {
        &self.a
    }

    /// The other end.
    pub fn b(&self) -> &Path {
        &self.b
    }

    /// socat's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
