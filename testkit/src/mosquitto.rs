//! A real Mosquitto (Debian's `mosquitto`) on a free loopback port: anonymous access, no
//! persistence, TCP_NODELAY, its log in its temporary directory. `FIREGRID_MOSQUITTO`
//! overrides the binary's path.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::port::{ATTEMPTS, clashed, free_port};
use crate::process::{NotReady, Process, temp_dir, wait_ready};

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
    /// It did not become ready.
    #[error("mosquitto on port {port} {why}; its log:\n{log}")]
    NotReady {
        /// Its port.
        port: u16,
        /// Exited, or did not answer in time.
        why: String,
        /// Its log.
        log: String,
    },
}

/// A Mosquitto process on `127.0.0.1:{port}`. Killed when dropped; its temporary directory
/// (configuration and log) is removed then.
#[derive(Debug)]
pub struct Mosquitto {
    process: Option<Process>,
    port: u16,
    dir: tempfile::TempDir,
    extra_config: String,
    starts: u32,
}

impl Mosquitto {
    /// How long a start waits for it to answer an MQTT CONNECT.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

    /// Starts one on a free port and waits until it answers an MQTT CONNECT.
    ///
    /// # Errors
    /// [`MosquittoError`] if it cannot start.
    pub async fn start() -> Result<Self, MosquittoError> {
        Self::start_with("").await
    }

    /// Starts one on a free port with `extra_config` lines appended to its configuration (a
    /// later line wins over the defaults: e.g. `max_queued_messages 0`, `log_type all`), and
    /// waits until it answers an MQTT CONNECT. A port taken meanwhile is retried with another.
    ///
    /// # Errors
    /// [`MosquittoError`] if it cannot start.
    pub async fn start_with(extra_config: &str) -> Result<Self, MosquittoError> {
        let dir = temp_dir("mosquitto")?;
        // Started as root, Mosquitto drops to its own user, which reads files here (a password
        // file on SIGHUP).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let mut me = Self {
            process: None,
            port: 0,
            dir,
            extra_config: extra_config.to_string(),
            starts: 0,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            me.port = free_port();
            match me.spawn().await {
                Err(MosquittoError::NotReady { ref log, .. })
                    if attempt < ATTEMPTS && clashed(log) => {}
                other => return other.map(|()| me),
            }
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its process id (e.g. to send it SIGHUP); 0 when stopped.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, Process::pid)
    }

    /// Kills it (SIGKILL: no clean goodbye to clients) and waits for it to exit. The port
    /// stays this broker's for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// Freezes it (SIGSTOP): its sockets stay open, nothing answers.
    ///
    /// # Panics
    /// If it is not running.
    pub fn pause(&self) {
        self.process
            .as_ref()
            .expect("mosquitto runs")
            .signal("STOP");
    }

    /// Thaws it (SIGCONT).
    ///
    /// # Panics
    /// If it is not running.
    pub fn resume(&self) {
        self.process
            .as_ref()
            .expect("mosquitto runs")
            .signal("CONT");
    }

    /// Kills it and starts it again on the same port (retrying while the old socket lets go
    /// of it, up to [`READY_TIMEOUT`](Self::READY_TIMEOUT)). Without persistence, every session
    /// and subscription is lost.
    ///
    /// # Errors
    /// [`MosquittoError`] if it cannot start again.
    pub async fn restart(&mut self) -> Result<(), MosquittoError> {
        self.kill();
        let deadline = Instant::now() + Self::READY_TIMEOUT;
        loop {
            match self.spawn().await {
                Err(MosquittoError::NotReady { ref log, .. })
                    if Instant::now() < deadline && clashed(log) =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Its log so far (every start's).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_file(n)).unwrap_or_default())
            .collect()
    }

    /// Waits until its log contains `text`.
    ///
    /// # Panics
    /// After `timeout`, naming the text.
    pub async fn wait_log(&self, text: &str, timeout: Duration) {
        crate::wait::until(&format!("{text:?} in Mosquitto's log"), timeout, || {
            self.log().contains(text).then_some(())
        })
        .await;
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_file(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("mosquitto-{start}.log"))
    }

    async fn spawn(&mut self) -> Result<(), MosquittoError> {
        let binary = std::env::var_os("FIREGRID_MOSQUITTO")
            .map_or_else(|| PathBuf::from("/usr/sbin/mosquitto"), PathBuf::from);
        if !binary.exists() {
            return Err(MosquittoError::Missing { path: binary });
        }
        let config = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 set_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n\
                 log_type notice\nlog_type information\n{}\n",
                self.port, self.extra_config
            ),
        )?;
        self.starts += 1;
        let mut process = Process::spawn(
            Command::new(&binary).arg("-c").arg(&config),
            &self.log_file(self.starts),
        )?;
        let addr = self.addr();
        // A refusal is an answer too: a Mosquitto with a password file refuses the probe.
        let ready = wait_ready(&mut process, Self::READY_TIMEOUT, || connack(addr)).await;
        match ready {
            Ok(()) => {
                self.process = Some(process);
                Ok(())
            }
            Err(why) => {
                process.kill9();
                Err(MosquittoError::NotReady {
                    port: self.port,
                    why: match why {
                        NotReady::Exited(_) => why.to_string(),
                        NotReady::Timeout(_) => format!("{why} (an MQTT CONNECT)"),
                    },
                    log: self.log(),
                })
            }
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an MQTT 3.1.1 CONNECT to `addr` gets a CONNACK (accepted or refused) within 1 s.
async fn connack(addr: SocketAddr) -> bool {
    // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s, an empty client id.
    const CONNECT: [u8; 14] = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&CONNECT).await?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await?;
        io::Result::Ok(ack[0] == 0x20 && ack[1] == 2)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), exchange).await,
        Ok(Ok(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_restart_keeps_the_port_and_a_killed_broker_answers_nothing() {
        let mut m = match Mosquitto::start().await {
            Ok(m) => m,
            Err(MosquittoError::Missing { path }) if !crate::strict() => {
                eprintln!("SKIPPED: {} missing", path.display());
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert!(connack(m.addr()).await);
        let port = m.port();
        m.restart().await.expect("mosquitto starts again");
        assert_eq!(m.port(), port);
        assert!(connack(m.addr()).await);
        m.kill();
        assert!(!connack(m.addr()).await, "killed, nothing answers");
    }
}
