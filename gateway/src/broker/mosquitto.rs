//! Mosquitto as the devices' broker, its accounts written by the gateway
//! (docs/decisions/0006-managed-mosquitto.md, docs/security.md).
//!
//! - [`files`]: the configuration, password file and ACL as pure functions of the settings and
//!   the accounts;
//! - [`supervisor`]: [`ManagedBroker`] starts Mosquitto, reloads its accounts when they change,
//!   probes its listener and restarts it when it exits (`[broker] mode = "managed"`);
//! - [`ExternalAccounts`]: for a Mosquitto the operator runs, the same files written where the
//!   configuration says, and a reload command run after each change.

pub mod files;
mod log;
pub mod supervisor;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use files::{Account, Grant, Limits, TlsFiles};
pub use supervisor::{
    BrokerStats, MANAGED_BROKER_NICE, ManagedBroker, ManagedConfig, ManagedError, set_nice,
};

/// Where the accounts come from: called at every start and after every change.
pub trait AccountSource: Send + Sync + 'static {
    /// Every account but the gateway's own.
    ///
    /// # Errors
    /// A description of why they cannot be read (the files are then left as they were).
    fn accounts(&self) -> Result<Vec<Account>, String>;
}

impl<F> AccountSource for F
where
    F: Fn() -> Result<Vec<Account>, String> + Send + Sync + 'static,
{
    fn accounts(&self) -> Result<Vec<Account>, String> {
        self()
    }
}

/// Told when accounts change (a device registered or decommissioned, a credential issued or
/// revoked, a token made or revoked): the broker's files are rewritten and reloaded. Cloning
/// gives another handle to the same signal; with no broker files to write, telling it does
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct AccountsChanged(Arc<Notify>);

impl AccountsChanged {
    /// Says that accounts changed.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Why the account files were not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// The accounts could not be read.
    #[error("cannot read the accounts: {0}")]
    Source(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How often the accounts are read again even when nobody said they changed (a `firegrid
/// user` command run on the data directory while the gateway runs); the broker reloads only if
/// they did change.
pub const ACCOUNTS_RECHECK: Duration = Duration::from_secs(30);

/// The password file and ACL of one broker, and what goes in them.
pub(crate) struct AccountFiles {
    pub(crate) source: Arc<dyn AccountSource>,
    /// The gateway's own accounts, always present.
    pub(crate) own: Vec<Account>,
    pub(crate) password_file: PathBuf,
    pub(crate) acl_file: PathBuf,
    /// The files' permission bits (e.g. 0o600, or 0o640 for a broker running as another user
    /// of the files' group).
    pub(crate) mode: u32,
    /// What was written last, to skip a reload when nothing changed.
    pub(crate) last: std::sync::Mutex<Option<(String, String)>>,
}

impl AccountFiles {
    pub(crate) fn new(
        source: Arc<dyn AccountSource>,
        own: Vec<Account>,
        password_file: PathBuf,
        acl_file: PathBuf,
    ) -> Self {
        Self {
            source,
            own,
            password_file,
            acl_file,
            mode: 0o600,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Writes both files if what they say changed since the last write; returns how many
    /// accounts came from the source, or `None` if nothing changed (no reload needed).
    pub(crate) fn write(&self) -> Result<Option<usize>, AccountsError> {
        let mut accounts = self.source.accounts().map_err(AccountsError::Source)?;
        let n = accounts.len();
        accounts.extend(self.own.iter().cloned());
        let files = (files::password_file(&accounts), files::acl_file(&accounts));
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_ref() == Some(&files) {
            return Ok(None);
        }
        write_atomically(&self.password_file, &files.0, self.mode)?;
        write_atomically(&self.acl_file, &files.1, self.mode)?;
        *last = Some(files);
        Ok(Some(n))
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so the broker never reads
/// half a file, with permission bits `mode` (it holds password hashes: never world-readable).
pub(crate) fn write_atomically(
    path: &Path,
    contents: &str,
    mode: u32,
) -> Result<(), AccountsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| AccountsError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("firegrid-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode & 0o770)
        .open(&tmp)
        .map_err(err)?;
    // The mode given at creation is masked by the umask; set it as asked.
    use std::os::unix::fs::PermissionsExt as _;
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o770))
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The accounts of an external Mosquitto: the files written where `[broker.external]` says,
/// and `reload_command` run after each change (never through a shell).
pub struct ExternalAccounts {
    /// Where the password file goes.
    pub password_file: PathBuf,
    /// Where the ACL file goes.
    pub acl_file: PathBuf,
    /// What to run after they changed (program and arguments).
    pub reload_command: Vec<String>,
    /// The files' permission bits (the broker's user must be able to read them).
    pub mode: u32,
}

impl ExternalAccounts {
    /// Writes the files once now (so the broker can start with them) and runs the reload
    /// command, then does both again after each change until `cancel`.
    ///
    /// # Errors
    /// [`AccountsError`] if the first write fails.
    pub fn start(
        self,
        source: Arc<dyn AccountSource>,
        own: Vec<Account>,
        changed: AccountsChanged,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<(), AccountsError> {
        let Self {
            password_file,
            acl_file,
            reload_command,
            mode,
        } = self;
        let mut files = AccountFiles::new(source, own, password_file, acl_file);
        files.mode = mode;
        files.write()?;
        tasks.spawn(async move {
            reload(&reload_command).await;
            let mut recheck = tokio::time::interval(ACCOUNTS_RECHECK);
            recheck.tick().await;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = changed.notified() => {
                        tokio::time::sleep(supervisor::RELOAD_DEBOUNCE).await;
                    }
                    _ = recheck.tick() => {}
                }
                match files.write() {
                    Ok(Some(n)) => {
                        tracing::debug!(accounts = n, "external broker's accounts written");
                        reload(&reload_command).await;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(
                        "external broker's accounts not written (the old ones stay): {e}"
                    ),
                }
            }
        });
        Ok(())
    }
}

/// Runs the reload command, waiting at most 10 s for it.
async fn reload(command: &[String]) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tracing::error!("broker reload command {program:?} failed: {status}"),
        Ok(Err(e)) => tracing::error!("broker reload command {program:?} did not start: {e}"),
        Err(_) => tracing::error!("broker reload command {program:?} took over 10 s: killed"),
    }
}
