//! A child process whose output goes to a log file, killed when dropped; and waiting for a
//! freshly started server to answer while checking that it is still alive (a probe once
//! succeeded against *another* process's server on the same port).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`Process::interrupt`] and [`Process::stop_with`] wait for the exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process, its stdout and stderr in one log file. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdin closed and its output in `log` (created or truncated).
    ///
    /// # Errors
    /// If the log file cannot be made or the program cannot start.
    pub fn spawn(command: &mut Command, log: &Path) -> std::io::Result<Self> {
        let out = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What it wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.exited().is_none() && self.child.is_some()
    }

    /// Its exit status if it exited (`None` while it runs, or after it was killed here).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Its process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `kill -SIGNAL` (`STOP`, `CONT`, `HUP`…) without waiting for anything.
    ///
    /// # Panics
    /// If it is not running or `kill` fails.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid();
        assert_ne!(pid, 0, "kill -{signal}: the process is not running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}: {status}");
    }

    /// SIGKILL, and waits until it is gone: its exit status (`None` if it was not running).
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        c.wait().ok()
    }

    /// SIGINT (what Ctrl-C sends), and waits up to [`STOP_TIMEOUT`] for it to exit; says whether
    /// it exited cleanly (SIGKILL after the timeout).
    pub async fn interrupt(&mut self) -> bool {
        self.stop_with("INT").await.is_some_and(|s| s.success())
    }

    /// `kill -SIGNAL`, and waits up to [`STOP_TIMEOUT`] for it to exit: its exit status, or
    /// `None` if it was not running or did not exit in time (then it is killed).
    pub async fn stop_with(&mut self, signal: &str) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// Why a started server never became ready.
#[derive(Debug)]
pub enum NotReady {
    /// It exited first.
    Exited(ExitStatus),
    /// It was alive but did not answer within the time.
    Timeout(Duration),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(s) => write!(f, "exited during start-up ({s})"),
            Self::Timeout(d) => write!(f, "did not answer within {d:?}"),
        }
    }
}

/// Polls `probe` every 10 ms until it says ready, as long as `process` is alive, for at most
/// `timeout`; ready only if the process is still alive after the answer.
///
/// # Errors
/// [`NotReady`]: the process exited, or `timeout` passed.
pub async fn wait_ready<F, Fut>(
    process: &mut Process,
    timeout: Duration,
    mut probe: F,
) -> Result<(), NotReady>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if let Some(status) = process.exited() {
            return Err(NotReady::Exited(status));
        }
        if probe().await {
            // Still ours: the answer did not come from another process on a reused port.
            return match process.exited() {
                Some(status) => Err(NotReady::Exited(status)),
                None => Ok(()),
            };
        }
        if started.elapsed() >= timeout {
            return Err(NotReady::Timeout(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A temporary directory of this process under the system's, named `firegrid-{what}-…`.
///
/// # Errors
/// If it cannot be made.
pub fn temp_dir(what: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("firegrid-{what}-"))
        .tempdir()
}
