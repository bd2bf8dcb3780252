//! The runner on the host (crate feature `tokio`): TCP over tokio and a tokio clock, for the
//! simulator and the host tests. The board has its own (embassy-net, embassy-time).
//!
//! ```no_run
//! # async fn example() {
//! use firegrid_firmware::mqtt::host::{TcpConnector, TokioClock};
//!
//! let clock = TokioClock::new(); // "boot" now: now_ms counts from here
//! let mut connector = TcpConnector::new("127.0.0.1:1883".parse().unwrap());
//! // firegrid_firmware::mqtt::run(&mut device, &mut connector, &clock, &mut shell, &options,
//! //     &mut rx_buffer).await
//! # }
//! ```
//!
//! The future of `run` is not `Send` (rust-mqtt's client holds a `dyn Fn`): run a device on a
//! current-thread runtime or in a `tokio::task::LocalSet`.

extern crate std;

use core::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use tokio::io::BufWriter;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Connector;
use crate::clock::Clock;

/// The connection [`TcpConnector`] opens: a TCP stream with a write buffer (rust-mqtt writes a
/// packet in pieces and flushes it), as `embedded-io-async`.
pub type TcpConn = FromTokio<BufWriter<TcpStream>>;

/// Connects to the broker over TCP, with Nagle off (the runner flushes whole packets).
#[derive(Debug, Clone)]
pub struct TcpConnector {
    addr: SocketAddr,
    connects: u32,
}

impl TcpConnector {
    /// A connector to `addr`.
    pub const fn new(addr: SocketAddr) -> Self {
        Self { addr, connects: 0 }
    }

    /// The address it connects to.
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections opened so far.
    pub const fn connects(&self) -> u32 {
        self.connects
    }
}

impl Connector for TcpConnector {
    type Conn = TcpConn;
    type Error = io::Error;

    async fn connect(&mut self) -> Result<TcpConn, io::Error> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        self.connects = self.connects.saturating_add(1);
        Ok(FromTokio::new(BufWriter::new(stream)))
    }
}

/// A [`Clock`] on tokio's time: milliseconds since the clock was made (the device's boot).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    boot: Instant,
}

impl TokioClock {
    /// A clock whose `now_ms` is 0 now.
    pub fn new() -> Self {
        Self {
            boot: Instant::now(),
        }
    }

    /// A clock whose `now_ms` was 0 at `boot`.
    pub const fn since(boot: Instant) -> Self {
        Self { boot }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.boot.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn sleep_until(&self, deadline_ms: u64) -> impl Future<Output = ()> {
        let at = self.boot.checked_add(Duration::from_millis(deadline_ms));
        async move {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                // Beyond what an `Instant` can hold: never.
                None => core::future::pending().await,
            }
        }
    }
}
