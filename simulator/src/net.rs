//! A simulated device's network: TCP to the broker from one of several loopback source
//! addresses, through a gate that a scenario's outages and power cuts close.
//!
//! A cut is a black hole, as when a street's access switch loses power: from the cut on, the
//! connection delivers nothing and swallows what is written, so the device notices only when
//! its keep-alive or an operation times out (as a real one would), and new connections fail
//! ("network unreachable") until the window ends. The broker's side of a cut connection stays
//! open until the window ends (the TCP stream is held, unread), so the broker notices through
//! its own keep-alive, as it would in the field — or when the link returns.
//!
//! Source addresses: past ~28k connections from one address the ephemeral ports run out, so a
//! fleet spreads its devices over `127.0.0.1`, `127.0.0.2`, … ([`SimConnector::new`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use embedded_io_adapters::tokio_1::FromTokio;
use firegrid_firmware::mqtt::Connector;
use tokio::io::BufWriter;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::scenario::StreetPlan;

/// The schedule of one street's network and power, on the simulator's clock.
#[derive(Debug)]
pub struct Gate {
    street: StreetPlan,
    start: Instant,
}

impl Gate {
    /// The gate of `street`, whose times count from `start`.
    pub const fn new(street: StreetPlan, start: Instant) -> Self {
        Self { street, start }
    }

    /// Scenario time now, ms.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant of scenario time `ms`.
    pub fn at(&self, ms: u64) -> Instant {
        self.start + std::time::Duration::from_millis(ms)
    }

    /// The street's schedule.
    pub const fn street(&self) -> &StreetPlan {
        &self.street
    }

    /// Whether the street is cut off (no network or no power) now.
    pub fn cut(&self) -> bool {
        let now = self.now_ms();
        self.street.network_down(now) || self.street.power_off(now)
    }

    /// When the cut that covers scenario time `ms` ends (the latest end of the windows that
    /// cover it), ms; `None` if none covers it.
    pub fn cut_ends(&self, ms: u64) -> Option<u64> {
        self.street
            .outages
            .iter()
            .chain(&self.street.power_cuts)
            .filter(|&&(a, b)| (a..b).contains(&ms))
            .map(|&(_, b)| b)
            .max()
    }

    /// The start of the next cut after scenario time `ms`.
    pub fn next_cut(&self, ms: u64) -> Option<u64> {
        self.street
            .outages
            .iter()
            .chain(&self.street.power_cuts)
            .map(|&(a, _)| a)
            .filter(|&a| a > ms)
            .min()
    }
}

/// Connects a simulated device to the broker through its street's [`Gate`].
#[derive(Debug, Clone)]
pub struct SimConnector {
    broker: SocketAddr,
    source: IpAddr,
    gate: Rc<Gate>,
}

impl SimConnector {
    /// A connector to `broker` from `source` (a loopback address), through `gate`.
    pub const fn new(broker: SocketAddr, source: IpAddr, gate: Rc<Gate>) -> Self {
        Self {
            broker,
            source,
            gate,
        }
    }
}

impl Connector for SimConnector {
    type Conn = GatedConn;
    type Error = io::Error;

    async fn connect(&mut self) -> Result<GatedConn, io::Error> {
        if self.gate.cut() {
            return Err(io::Error::new(
                io::ErrorKind::NetworkUnreachable,
                "the street's network is down (scenario)",
            ));
        }
        let socket = match self.broker {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if self.source.is_loopback() && self.broker.ip().is_loopback() {
            socket.bind(SocketAddr::new(self.source, 0))?;
        }
        socket.set_nodelay(true)?;
        let stream = socket.connect(self.broker).await?;
        Ok(GatedConn {
            inner: Some(FromTokio::new(BufWriter::new(stream))),
            gate: self.gate.clone(),
            dead: false,
        })
    }
}

/// A connection that turns into a black hole when its street is cut (see the module docs).
pub struct GatedConn {
    inner: Option<FromTokio<BufWriter<TcpStream>>>,
    gate: Rc<Gate>,
    dead: bool,
}

impl std::fmt::Debug for GatedConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedConn")
            .field("open", &self.inner.is_some())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl GatedConn {
    /// Whether the connection fell into a cut (it never comes back).
    fn check(&mut self) -> bool {
        if !self.dead && self.gate.cut() {
            self.dead = true;
        }
        self.dead
    }
}

impl Drop for GatedConn {
    /// A connection dropped inside a cut stays open, unread, until the cut ends: the broker
    /// must not learn of it before the link returns.
    fn drop(&mut self) {
        let now = self.gate.now_ms();
        if let (Some(inner), Some(end)) = (self.inner.take(), self.gate.cut_ends(now)) {
            let until = self.gate.at(end);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    tokio::time::sleep_until(until).await;
                    drop(inner);
                });
            }
        }
    }
}

impl embedded_io_async::ErrorType for GatedConn {
    type Error = io::Error;
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl embedded_io_async::Read for GatedConn {
    /// Cancel-safe: the inner read is, and the cut is a timer.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        if self.check() {
            return core::future::pending().await;
        }
        let next_cut = self
            .gate
            .next_cut(self.gate.now_ms())
            .map(|ms| self.gate.at(ms));
        let inner = self.inner.as_mut().ok_or_else(gone)?;
        let cut = async {
            match next_cut {
                Some(at) => tokio::time::sleep_until(at).await,
                None => core::future::pending().await,
            }
        };
        tokio::select! {
            r = embedded_io_async::Read::read(inner, buf) => r,
            () = cut => {
                self.dead = true;
                core::future::pending().await
            }
        }
    }
}

impl embedded_io_async::Write for GatedConn {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        if self.check() {
            // Into the void: the bytes never arrive.
            return Ok(buf.len());
        }
        embedded_io_async::Write::write(self.inner.as_mut().ok_or_else(gone)?, buf).await
    }

    async fn flush(&mut self) -> Result<(), io::Error> {
        if self.check() {
            return Ok(());
        }
        embedded_io_async::Write::flush(self.inner.as_mut().ok_or_else(gone)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(outages: Vec<(u64, u64)>, power_cuts: Vec<(u64, u64)>) -> Gate {
        Gate::new(
            StreetPlan {
                id: "s".into(),
                devices: Vec::new(),
                outages,
                power_cuts,
            },
            Instant::now(),
        )
    }

    #[tokio::test]
    async fn a_cut_ends_with_the_latest_window_covering_it() {
        let g = gate(vec![(1_000, 5_000), (4_000, 9_000)], vec![(20_000, 21_000)]);
        assert_eq!(g.cut_ends(500), None);
        assert_eq!(g.cut_ends(1_000), Some(5_000));
        assert_eq!(
            g.cut_ends(4_500),
            Some(9_000),
            "overlapping windows: the later end"
        );
        assert_eq!(g.cut_ends(9_000), None, "windows end exclusive");
        assert_eq!(
            g.cut_ends(20_500),
            Some(21_000),
            "a power cut cuts the network too"
        );
        assert_eq!(g.next_cut(0), Some(1_000));
        assert_eq!(g.next_cut(1_000), Some(4_000));
        assert_eq!(g.next_cut(4_000), Some(20_000));
        assert_eq!(g.next_cut(20_000), None);
        assert!(!g.cut(), "nothing is cut at scenario time 0");
    }
}
