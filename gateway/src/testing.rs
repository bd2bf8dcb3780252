//! Servers as child processes for tests and benchmarks: a free port, and waiting until a
//! freshly spawned server answers while checking that it is still alive (a probe once succeeded
//! against *another* process's server on the same port). Used by the Mosquitto harness
//! ([`broker::testing`](crate::broker::testing)) and the VictoriaMetrics harness
//! ([`tsdb::testing`](crate::tsdb::testing)).

use std::net::TcpListener;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now (bound to port 0, read, released). Another
/// process could take it before the caller binds it; on a test machine that is rare.
///
/// # Panics
/// If the loopback interface cannot bind port 0 (no usable network stack).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface can bind port 0")
}

/// Why a spawned server never became ready.
#[derive(Debug)]
pub enum NotReady {
    /// It exited first.
    Exited(ExitStatus),
    /// It was alive but did not answer within the time.
    Timeout(Duration),
    /// Its status could not be read.
    Io(std::io::Error),
}

/// Polls `probe` every `interval` until it says ready, as long as `child` is alive, for at
/// most `timeout`.
///
/// # Errors
/// [`NotReady`]: the child exited, or `timeout` passed.
pub async fn wait_ready<F, Fut>(
    child: &mut Child,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<(), NotReady>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(NotReady::Io)? {
            return Err(NotReady::Exited(status));
        }
        if probe().await {
            // Still ours: the answer did not come from another process on a reused port.
            return match child.try_wait().map_err(NotReady::Io)? {
                Some(status) => Err(NotReady::Exited(status)),
                None => Ok(()),
            };
        }
        if started.elapsed() >= timeout {
            return Err(NotReady::Timeout(started.elapsed()));
        }
        tokio::time::sleep(interval).await;
    }
}
