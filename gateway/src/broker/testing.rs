//! Test support: a real Mosquitto on a free loopback port, and free ports.
//!
//! Available to this crate's tests and, with the `test-support` feature, to other crates' tests
//! (e.g. `firegrid-e2e`: `firegrid-gateway = { workspace = true, features = ["test-support"] }`).
//!
//! Mosquitto comes from Debian's `mosquitto` package (`scripts/test` installs it);
//! `FIREGRID_MOSQUITTO` overrides the binary's path.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::testing::NotReady;

use super::probe::{MqttVersion, probe};

pub use crate::testing::free_port;

/// Why a Mosquitto did not start.
#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    /// The binary is missing.
    #[error("{path} not found: install Debian's mosquitto package (scripts/test does)")]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// Files or the process could not be made.
    #[error("cannot start mosquitto: {0}")]
    Io(#[from] io::Error),
    /// It exited during start-up.
    #[error("mosquitto exited during start-up ({status}); its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log.
        log: String,
    },
    /// It did not answer an MQTT CONNECT in time.
    #[error("mosquitto on port {port} did not answer within {waited:?}; its log:\n{log}")]
    NotReady {
        /// Its port.
        port: u16,
        /// How long start waited.
        waited: Duration,
        /// Its log.
        log: String,
    },
}

/// A Mosquitto process on `127.0.0.1:{port}`: anonymous access, no persistence, TCP_NODELAY.
/// Killed when dropped; its temporary directory (config and log) is removed then.
#[derive(Debug)]
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra_config: String,
}

impl Mosquitto {
    /// How long [`Mosquitto::start`] waits for it to answer.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts one on a free port and waits until it answers an MQTT CONNECT.
    pub async fn start() -> Result<Self, MosquittoError> {
        Self::start_on(free_port()).await
    }

    /// Starts one on a free port with `extra_config` lines appended to its configuration
    /// (e.g. `max_queued_messages 0` for a load test; a later line wins over the defaults), and
    /// waits until it answers an MQTT CONNECT.
    pub async fn start_with(extra_config: &str) -> Result<Self, MosquittoError> {
        Self::start_on_with(free_port(), extra_config).await
    }

    /// Starts one on `port` and waits until it answers an MQTT CONNECT.
    pub async fn start_on(port: u16) -> Result<Self, MosquittoError> {
        Self::start_on_with(port, "").await
    }

    async fn start_on_with(port: u16, extra_config: &str) -> Result<Self, MosquittoError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "firegrid-mosquitto-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let mut me = Self {
            child: None,
            port,
            dir,
            extra_config: extra_config.to_string(),
        };
        me.spawn().await?;
        Ok(me)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id (e.g. to send it SIGHUP).
    ///
    /// # Panics
    /// If it was killed and not restarted.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills it (SIGKILL: no clean goodbye to clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port. Without persistence, every session and
    /// subscription is lost.
    pub async fn restart(&mut self) -> Result<(), MosquittoError> {
        self.kill();
        self.spawn().await
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) -> Result<(), MosquittoError> {
        let binary = std::env::var_os("FIREGRID_MOSQUITTO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"));
        if !binary.exists() {
            return Err(MosquittoError::Missing { path: binary });
        }
        let config = self.dir.join("mosquitto.conf");
        fs::write(
            &config,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 set_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n\
                 log_type notice\nlog_type information\n{}\n",
                self.port, self.extra_config
            ),
        )?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), MosquittoError> {
        let addr = self.addr();
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let ready = crate::testing::wait_ready(
            child,
            Self::READY_TIMEOUT,
            Duration::from_millis(10),
            || async move {
                // A refusal is an answer too: a Mosquitto configured with a password file
                // refuses the probe's anonymous CONNECT.
                matches!(
                    probe(addr, MqttVersion::V311, Duration::from_millis(500)).await,
                    Ok(()) | Err(super::probe::ProbeError::Refused(_))
                )
            },
        )
        .await;
        match ready {
            Ok(()) => Ok(()),
            Err(NotReady::Exited(status)) => {
                self.child = None;
                Err(MosquittoError::Exited {
                    status,
                    log: self.log(),
                })
            }
            Err(NotReady::Timeout(waited)) => Err(MosquittoError::NotReady {
                port: self.port,
                waited,
                log: self.log(),
            }),
            Err(NotReady::Io(e)) => Err(MosquittoError::Io(e)),
        }
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; says whether it held.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
