//! The managed broker: a Mosquitto the gateway starts, watches, reloads and restarts.
//!
//! - **Start**: a broker left running by a gateway that was killed (`kill -9` leaves its child
//!   behind) is stopped first (its pid is kept in the broker's directory); then the
//!   configuration, password file and ACL are written ([`super::files`]) and Mosquitto is
//!   started and waited for: it is ready once the gateway's probe account logs in.
//! - **Accounts**: [`AccountsChanged::notify`](super::AccountsChanged::notify) (a device registered, a credential
//!   rotated or revoked, a token made) rewrites the password file and ACL — changes within
//!   [`RELOAD_DEBOUNCE`] are taken together — and sends SIGHUP: Mosquitto re-reads both and
//!   disconnects every connected client whose credential is gone.
//! - **Watch**: every [`PROBE_INTERVAL`] the listener is probed; `listening` turns false (and
//!   `/healthz` 503) when it does not answer. A broker that exits is restarted with backoff.
//! - **Log**: Mosquitto's log lines go to the gateway's log (target `mosquitto`); refused logins
//!   are counted and logged once per client id per minute.
//! - **Stop**: cancelling sends SIGTERM (Mosquitto saves its sessions) and waits.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::files::{ACL_FILE, Account, ConfFile, Grant, Limits, PASSWORD_FILE, TlsFiles};
use super::{AccountFiles, AccountSource, AccountsChanged, AccountsError, write_atomically};
use crate::broker::probe::{MqttVersion, ProbeError, probe_as};
use crate::secret::{Secret, SecretError};

/// Account changes within this time are written and reloaded together.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(50);
/// How often the listener is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a probe may take before the listener counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a start waits for Mosquitto to accept the probe account.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of Mosquitto's log kept to explain a failed start.
const LOG_TAIL_LINES: usize = 40;
/// The probe's account: it may connect and nothing else.
pub const PROBE_USERNAME: &str = "firegrid.probe";
/// The file holding the running broker's pid, in the broker's directory.
const PID_FILE: &str = "mosquitto.pid";

/// The managed broker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedConfig {
    /// The `mosquitto` binary (a bare name is looked up in `PATH`, then `/usr/sbin`).
    pub binary: PathBuf,
    /// Its directory (configuration, password file, ACL, persistence, pid).
    pub dir: PathBuf,
    /// Plain-TCP listener.
    pub listen: SocketAddr,
    /// TLS listener and its files.
    pub listen_tls: Option<(SocketAddr, TlsFiles)>,
    /// Per-client limits.
    pub limits: Limits,
    /// Its nice value (−20 to 19; 0: the gateway's own), set at every start
    /// ([`MANAGED_BROKER_NICE`] by default).
    pub nice: i8,
}

/// The managed broker's default nice value: ahead of the gateway's ordinary threads (telemetry,
/// storage, the API) when the machine is busy, because every alarm crosses the broker twice
/// (docs/decisions/0026).
pub const MANAGED_BROKER_NICE: i8 = -5;

/// Sets the nice value of process `pid` (its main thread: Mosquitto has one).
///
/// # Errors
/// The system refused (a value below the caller's own needs root, `CAP_SYS_NICE` or an
/// `RLIMIT_NICE` allowing it), or `pid` is not a process.
pub fn set_nice(pid: u32, nice: i8) -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(process(pid)?), i32::from(nice))?;
    Ok(())
}

/// The nice value of process `pid`.
///
/// # Errors
/// `pid` is not a process.
fn nice_of(pid: u32) -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(process(pid)?))?)
}

fn process(pid: u32) -> std::io::Result<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("{pid} is not a process id")))
}

/// Why the managed broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagedError {
    /// The binary is not there.
    #[error(
        "{0} not found: the default broker is Debian's mosquitto (apt-get install mosquitto; \
         scripts/run installs it), or set [broker] mode = \"external\""
    )]
    Missing(PathBuf),
    /// A file or the process could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The accounts could not be read or written.
    #[error("broker accounts: {0}")]
    Accounts(#[from] AccountsError),
    /// No secret could be drawn for the gateway's accounts.
    #[error("broker accounts: {0}")]
    Secret(#[from] SecretError),
    /// Mosquitto exited while starting.
    #[error("mosquitto exited while starting ({status}); its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// Mosquitto did not let the probe account in.
    #[error(
        "mosquitto on {addr} did not accept the gateway's login within {waited:?} ({last}); its log:\n{log}"
    )]
    NotReady {
        /// The listener.
        addr: SocketAddr,
        /// How long start waited.
        waited: Duration,
        /// The last probe's failure.
        last: String,
        /// The end of its log.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ManagedError {
    let what = what.into();
    move |source| ManagedError::Io { what, source }
}

/// Counters of the managed broker, for `/metrics`.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Logins refused (no, wrong or revoked credentials).
    pub refused_logins: AtomicU64,
    /// Times the accounts were rewritten and reloaded.
    pub reloads: AtomicU64,
    /// Times the broker was restarted after it exited.
    pub restarts: AtomicU64,
    /// Its nice value, read back after its last start.
    pub nice: AtomicI64,
}

impl prometheus_client::collector::Collector for BrokerStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        for (name, help, value) in [
            (
                "broker_refused_logins_total",
                "Logins the managed broker refused (no, wrong or revoked credential).",
                &self.refused_logins,
            ),
            (
                "broker_reloads_total",
                "Account changes the managed broker loaded.",
                &self.reloads,
            ),
            (
                "broker_restarts_total",
                "Restarts of the managed broker after it exited.",
                &self.restarts,
            ),
        ] {
            crate::metrics::collect::counter(
                &mut encoder,
                name,
                help,
                value.load(Ordering::Relaxed),
            )?;
        }
        crate::metrics::collect::gauge(
            &mut encoder,
            "broker_nice",
            "The managed broker's nice value after its last start (lower runs first; the \
             gateway's own when the setting was refused).",
            self.nice.load(Ordering::Relaxed),
        )
    }
}

struct Shared {
    config: ManagedConfig,
    files: AccountFiles,
    secret: Secret,
    changed: AccountsChanged,
    listening: watch::Sender<bool>,
    stats: Arc<BrokerStats>,
    log_tail: Mutex<VecDeque<String>>,
}

/// A running managed broker.
#[derive(Clone)]
pub struct ManagedBroker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ManagedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedBroker")
            .field("listen", &self.shared.config.listen)
            .finish_non_exhaustive()
    }
}

impl ManagedBroker {
    /// Starts Mosquitto with the accounts of `source` plus the gateway's own (`gateway_users`,
    /// its links' usernames, all with one fresh secret, [`ManagedBroker::secret`]) and keeps
    /// it running until `cancel`, reloading the accounts whenever `changed` is told and
    /// counting into `stats`.
    ///
    /// # Errors
    /// [`ManagedError`] if it cannot be started.
    pub async fn start(
        config: ManagedConfig,
        source: Arc<dyn AccountSource>,
        gateway_users: &[String],
        changed: AccountsChanged,
        stats: Arc<BrokerStats>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Self, ManagedError> {
        let binary = resolve_binary(&config.binary)?;
        std::fs::create_dir_all(&config.dir)
            .map_err(io(format!("cannot create {}", config.dir.display())))?;
        stop_stale(&config.dir).await;
        let secret = Secret::generate()?;
        let mut own: Vec<Account> = Vec::with_capacity(gateway_users.len() + 1);
        for u in gateway_users {
            own.push(Account {
                username: u.clone(),
                hash: secret.hash()?,
                grant: Grant::Gateway,
            });
        }
        own.push(Account {
            username: PROBE_USERNAME.into(),
            hash: secret.hash()?,
            grant: Grant::ConnectOnly,
        });
        // Port 0: a free port, chosen here because Mosquitto cannot report one it chose; if
        // another process takes it before Mosquitto binds it, another one.
        let pick_port = config.listen.port() == 0;
        let mut attempts = 0;
        loop {
            let mut config = ManagedConfig {
                binary: binary.clone(),
                ..config.clone()
            };
            if pick_port {
                config.listen.set_port(unused_port_on(config.listen.ip())?);
            }
            let (listening, _) = watch::channel(false);
            let files = AccountFiles::new(
                source.clone(),
                own.clone(),
                config.dir.join(PASSWORD_FILE),
                config.dir.join(ACL_FILE),
            );
            let shared = Arc::new(Shared {
                config,
                files,
                secret: secret.clone(),
                changed: changed.clone(),
                listening,
                stats: stats.clone(),
                log_tail: Mutex::new(VecDeque::new()),
            });
            match shared.launch(tasks).await {
                Ok(child) => {
                    shared.listening.send_replace(true);
                    tasks.spawn(shared.clone().supervise(child, cancel, tasks.clone()));
                    return Ok(Self { shared });
                }
                Err(ManagedError::Exited { log, .. })
                    if pick_port && attempts < 5 && log.contains("Address already in use") =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where devices connect: the plain listener (its port chosen, if it was 0).
    #[must_use]
    pub fn device_addr(&self) -> SocketAddr {
        self.shared.config.listen
    }

    /// The address the gateway's own client connects to (the plain listener; an unspecified
    /// address such as `0.0.0.0` is reached on loopback).
    #[must_use]
    pub fn client_addr(&self) -> SocketAddr {
        connect_addr(self.shared.config.listen)
    }

    /// The secret of the gateway's accounts.
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.shared.secret
    }

    /// Whether the listener answers (probed every [`PROBE_INTERVAL`]).
    #[must_use]
    pub fn listening(&self) -> watch::Receiver<bool> {
        self.shared.listening.subscribe()
    }

    /// Its counters.
    #[must_use]
    pub fn stats(&self) -> &BrokerStats {
        &self.shared.stats
    }
}

/// A port of `ip` nothing listens on now, for a listener configured with port 0 (production
/// code: the caller retries another when Mosquitto finds it taken).
fn unused_port_on(ip: IpAddr) -> Result<u16, ManagedError> {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io(format!("cannot find a free port on {ip}")))
}

fn connect_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

fn resolve_binary(binary: &Path) -> Result<PathBuf, ManagedError> {
    if binary.components().count() > 1 {
        return if binary.exists() {
            Ok(binary.to_path_buf())
        } else {
            Err(ManagedError::Missing(binary.to_path_buf()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(|| ManagedError::Missing(binary.to_path_buf()))
}

impl Shared {
    fn write_accounts(&self) -> Result<Option<usize>, ManagedError> {
        Ok(self.files.write()?)
    }

    fn log_tail(&self) -> String {
        self.log_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Writes every file, spawns Mosquitto and waits until the probe account gets in.
    async fn launch(self: &Arc<Self>, tasks: &TaskTracker) -> Result<Child, ManagedError> {
        let c = &self.config;
        let conf_path = c.dir.join("mosquitto.conf");
        let conf = super::files::conf_file(&ConfFile {
            listen: c.listen,
            listen_tls: c.listen_tls.as_ref().map(|(a, f)| (*a, f)),
            dir: &c.dir,
            limits: c.limits,
        });
        write_atomically(&conf_path, &conf, 0o600)?;
        // At a (re)start the files are written whether they changed or not.
        if let Ok(mut last) = self.files.last.lock() {
            *last = None;
        }
        let accounts = self.write_accounts()?.unwrap_or_default();
        let mut child = Command::new(&c.binary)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("cannot start {}", c.binary.display())))?;
        if let Some(pid) = child.id() {
            let _ = std::fs::write(c.dir.join(PID_FILE), pid.to_string());
            if c.nice != 0
                && let Err(e) = set_nice(pid, c.nice)
            {
                tracing::warn!(
                    "the managed broker runs at the gateway's own nice value (nice {} refused: \
                     {e}): give the gateway CAP_SYS_NICE or an RLIMIT_NICE allowing it \
                     (systemd: LimitNICE={}) so that alarms, which cross the broker twice, do \
                     not wait for a CPU behind telemetry and storage",
                    c.nice,
                    c.nice
                );
            }
            if let Ok(now) = nice_of(pid) {
                self.stats.nice.store(i64::from(now), Ordering::Relaxed);
            }
        }
        if let Some(stderr) = child.stderr.take() {
            tasks.spawn(self.clone().read_log(stderr));
        }
        let addr = connect_addr(c.listen);
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().map_err(io("mosquitto's status"))? {
                // Let the log reader take the last lines.
                tokio::task::yield_now().await;
                return Err(ManagedError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            let probe = self.probe(addr).await;
            match probe {
                Ok(()) if child.try_wait().ok().flatten().is_none() => {
                    tracing::info!(%addr, accounts, "managed broker (mosquitto) ready");
                    return Ok(child);
                }
                _ if started.elapsed() >= READY_TIMEOUT => {
                    return Err(ManagedError::NotReady {
                        addr,
                        waited: started.elapsed(),
                        last: probe.err().map(|e| e.to_string()).unwrap_or_default(),
                        log: self.log_tail(),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    async fn probe(&self, addr: SocketAddr) -> Result<(), ProbeError> {
        probe_as(
            addr,
            MqttVersion::V311,
            PROBE_TIMEOUT,
            Some((PROBE_USERNAME, self.secret.expose())),
        )
        .await
    }

    /// Keeps the broker running until `cancel`.
    async fn supervise(
        self: Arc<Self>,
        mut child: Child,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut recheck = tokio::time::interval(super::ACCOUNTS_RECHECK);
        recheck.tick().await;
        let mut probe_every = tokio::time::interval(PROBE_INTERVAL);
        probe_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let addr = connect_addr(self.config.listen);
        loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    stop(&mut child).await;
                    let _ = std::fs::remove_file(self.config.dir.join(PID_FILE));
                    self.listening.send_replace(false);
                    return;
                }
                status = child.wait() => {
                    self.listening.send_replace(false);
                    tracing::error!(
                        "the managed broker exited ({}); restarting it in {backoff:?}; its log:\n{}",
                        status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                        self.log_tail()
                    );
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        match self.launch(&tasks).await {
                            Ok(c) => {
                                child = c;
                                self.stats.restarts.fetch_add(1, Ordering::Relaxed);
                                self.listening.send_replace(true);
                                backoff = Duration::from_millis(100);
                                break;
                            }
                            Err(e) => tracing::error!("the managed broker did not restart: {e}"),
                        }
                    }
                }
                () = self.changed.notified() => {
                    // Take changes that come close together at once.
                    tokio::time::sleep(RELOAD_DEBOUNCE).await;
                    self.reload(&child);
                }
                _ = recheck.tick() => self.reload(&child),
                _ = probe_every.tick() => {
                    let up = self.probe(addr).await.is_ok();
                    if self.listening.send_replace(up) != up {
                        if up {
                            tracing::info!(%addr, "the broker's listener answers again");
                        } else {
                            tracing::error!(%addr, "the broker's listener does not answer");
                        }
                    }
                }
            }
        }
    }

    /// Writes the accounts and, if they changed, tells Mosquitto to load them.
    fn reload(&self, child: &Child) {
        match self.write_accounts() {
            Ok(Some(n)) => {
                hangup(child);
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(accounts = n, "broker accounts reloaded");
            }
            Ok(None) => {}
            Err(e) => tracing::error!("broker accounts not reloaded (the old ones stay): {e}"),
        }
    }

    /// Forwards Mosquitto's log to the gateway's, keeps its tail, counts refused logins.
    async fn read_log(self: Arc<Self>, stderr: tokio::process::ChildStderr) {
        let mut lines = BufReader::new(stderr).lines();
        let mut warned: HashMap<String, Instant> = HashMap::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut tail) = self.log_tail.lock() {
                if tail.len() == LOG_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
            }
            match super::log::classify(&line) {
                super::log::Line::RefusedLogin(id) => {
                    self.stats.refused_logins.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    if warned.len() > 10_000 {
                        warned.retain(|_, t| now.duration_since(*t) < Duration::from_secs(60));
                    }
                    let due = warned
                        .get(id)
                        .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60));
                    if due {
                        warned.insert(id.to_owned(), now);
                        tracing::warn!(
                            client = id,
                            "broker refused a login (no, wrong or revoked credential); further ones from this id are counted, logged once a minute"
                        );
                    }
                }
                super::log::Line::Problem => tracing::warn!(target: "mosquitto", "{line}"),
                super::log::Line::Other => tracing::debug!(target: "mosquitto", "{line}"),
            }
        }
    }
}

/// Sends SIGHUP: Mosquitto re-reads its password file and ACL.
fn hangup(child: &Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`].
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(STOP_TIMEOUT, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Whether process `pid` exists and has not exited (a zombie has: it holds no socket).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) S …": the state follows the last ')' (comm may hold one).
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X"))
    })
}

/// Stops a Mosquitto left behind by a gateway that was killed: the pid in the directory, if
/// that process is a mosquitto run with this directory's configuration.
async fn stop_stale(dir: &Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join(PID_FILE)) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    let conf = dir.join("mosquitto.conf");
    let ours = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("mosquitto") && cmd.contains(&*conf.to_string_lossy())
        })
    };
    if !ours(pid) {
        return;
    }
    tracing::warn!(
        pid,
        "stopping the broker left running by a gateway that did not stop cleanly"
    );
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
    let started = Instant::now();
    // Not our child: nothing to wait on but the process table. Its command line empties when
    // its memory goes, before its sockets close: wait until it is gone or a zombie (the port
    // is free by then).
    while running(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
