//! An outside Modbus TCP server: PyPI's pymodbus (not written by this project) serving the
//! registers of firegrid's built-in profile `typical-rcm-4t` (`pymodbus_server.py` beside this
//! crate's manifest) on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::port::{ATTEMPTS, clashed, free_port};
use crate::process::{NotReady, Process, temp_dir, wait_ready};

/// How long start waits for the server to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python with pymodbus: `FIREGRID_PYTHON` (scripts/test sets it). Under scripts/test
/// (`FIREGRID_TEST` set) its absence fails the test; a bare `cargo test` skips, saying so.
///
/// # Panics
/// If it is unset and `FIREGRID_TEST` is set.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FIREGRID_PYTHON") {
        return Some(PathBuf::from(p));
    }
    assert!(
        !crate::strict(),
        "FIREGRID_PYTHON is not set: scripts/test sets it to a Python with pymodbus \
         (setup_pymodbus in scripts/lib/setup.sh); without it the outside-server test cannot run"
    );
    eprintln!(
        "SKIPPED: the pymodbus test needs FIREGRID_PYTHON (run scripts/test, or \
         `source scripts/lib/setup.sh && setup_pymodbus` and export it)"
    );
    None
}

/// The server; killed when dropped.
#[derive(Debug)]
pub struct PyModbus {
    process: Process,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PyModbus {
    /// Starts it with `python` as slave `slave`, residual current register `leakage_raw` and
    /// channel 0's state code `state0`; returns once *this* server answers a read of our slave
    /// with our value (another process could hold the port). A port taken meanwhile is retried
    /// with another.
    ///
    /// # Panics
    /// If it does not serve, with its log.
    pub async fn start(python: &Path, slave: u8, leakage_raw: u16, state0: u16) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pymodbus_server.py");
        let dir = temp_dir("pymodbus").expect("a temporary directory");
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let mut process = Process::spawn(
                Command::new(python).arg(&script).args([
                    port.to_string(),
                    slave.to_string(),
                    leakage_raw.to_string(),
                    state0.to_string(),
                ]),
                &dir.path().join(format!("pymodbus-{attempt}.log")),
            )
            .unwrap_or_else(|e| panic!("{} does not run: {e}", python.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_ready(&mut process, READY_TIMEOUT, || {
                reads(addr, slave, leakage_raw)
            })
            .await
            {
                Ok(()) => {
                    return Self {
                        process,
                        addr,
                        _dir: dir,
                    };
                }
                Err(NotReady::Exited(_)) if attempt < ATTEMPTS && clashed(&process.log()) => {}
                Err(why) => panic!("pymodbus on port {port} {why}: {}", process.log()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Where it serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Whether a read of `slave`'s register 0 at `addr` gives `value`, within 1 s.
async fn reads(addr: SocketAddr, slave: u8, value: u16) -> bool {
    use tokio_modbus::client::Reader;
    let read = async {
        let mut ctx = tokio_modbus::client::tcp::connect_slave(addr, tokio_modbus::Slave(slave))
            .await
            .ok()?;
        ctx.read_holding_registers(0, 1).await.ok()?.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), read).await,
        Ok(Some(w)) if w == [value]
    )
}
