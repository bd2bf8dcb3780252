//! The Modbus benchmark: how many polls a second one TCP connection carries, and how many a
//! fleet of simulated monitors (each its own TCP endpoint, as with one converter per
//! distribution box) answers together, all in this process on loopback.
//!
//! A *request* is one read (function 03); a *poll* is one whole read of a monitor's profile —
//! the four requests of `typical-rcm-4t` (`0x0000`×5, `0x0010`×5, `0x0020`×5, `0x0030`×6) —
//! which is what the gateway does per device per period. Every request has a timeout, as in
//! the gateway; the counts say how many failed. The client is a bare tokio-modbus one, not the
//! gateway's poller: these are the wire's and the simulated monitors' numbers.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_modbus::client::Reader;

use super::monitor::SimMonitor;
use super::server::{ModbusSim, Slaves};

/// The read blocks of one poll of the built-in profile: (start, count).
pub const POLL_BLOCKS: [(u16, u16); 4] = [(0x00, 5), (0x10, 5), (0x20, 5), (0x30, 6)];

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BenchOptions {
    /// Simulated monitors in the fleet run, one TCP endpoint and connection each.
    pub monitors: usize,
    /// How long the single-connection run polls, ms.
    pub connection_run_ms: u64,
    /// How long the fleet run polls, ms.
    pub fleet_run_ms: u64,
    /// Deadline of one request, ms.
    pub timeout_ms: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            monitors: 1000,
            connection_run_ms: 2_000,
            fleet_run_ms: 5_000,
            timeout_ms: 1_000,
        }
    }
}

/// One run's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    /// TCP connections polled in parallel.
    pub connections: usize,
    /// Monitors polled.
    pub monitors: usize,
    /// Requests answered.
    pub requests: u64,
    /// Requests that failed (timeout, transport error, exception).
    pub failed: u64,
    /// Whole polls (every block of a monitor) answered.
    pub polls: u64,
    /// Wall time of the run, s.
    pub elapsed_s: f64,
    /// Requests answered per second.
    pub requests_per_s: f64,
    /// Polls per second.
    pub polls_per_s: f64,
    /// Polls per second per connection.
    pub polls_per_s_per_connection: f64,
    /// Median request latency, ms.
    pub p50_ms: f64,
    /// 99th-percentile request latency, ms.
    pub p99_ms: f64,
}

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModbusBench {
    /// What was asked.
    pub options: BenchOptions,
    /// One monitor over one TCP connection, polled back to back.
    pub single_connection: Throughput,
    /// `options.monitors` monitors, each over its own connection, all at once.
    pub fleet: Throughput,
}

impl ModbusBench {
    /// A plain-text table of the results.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<22} {:>6} {:>9} {:>10} {:>12} {:>14} {:>9} {:>9} {:>7}",
            "Modbus TCP run",
            "conns",
            "monitors",
            "polls/s",
            "requests/s",
            "polls/s/conn",
            "p50 ms",
            "p99 ms",
            "failed"
        );
        for (name, r) in [
            ("one connection", &self.single_connection),
            ("fleet", &self.fleet),
        ] {
            let _ = writeln!(
                t,
                "{:<22} {:>6} {:>9} {:>10.0} {:>12.0} {:>14.1} {:>9.3} {:>9.3} {:>7}",
                name,
                r.connections,
                r.monitors,
                r.polls_per_s,
                r.requests_per_s,
                r.polls_per_s_per_connection,
                r.p50_ms,
                r.p99_ms,
                r.failed
            );
        }
        t
    }
}

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    failed: u64,
    polls: u64,
    latencies_us: Vec<u32>,
}

/// Polls one connection until `until`.
async fn poll_loop(addr: SocketAddr, until: Instant, timeout: Duration) -> io::Result<Tally> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut ctx = tokio_modbus::client::tcp::attach_slave(stream, tokio_modbus::Slave(1));
    let mut t = Tally::default();
    while Instant::now() < until {
        let mut whole = true;
        for (start, count) in POLL_BLOCKS {
            let sent = Instant::now();
            match tokio::time::timeout(timeout, ctx.read_holding_registers(start, count)).await {
                Ok(Ok(Ok(w))) if w.len() == usize::from(count) => {
                    t.requests += 1;
                    let us = sent.elapsed().as_micros();
                    t.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                _ => {
                    t.failed += 1;
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            t.polls += 1;
        } else {
            // As the gateway does: a failed request costs the connection.
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            ctx = tokio_modbus::client::tcp::attach_slave(stream, tokio_modbus::Slave(1));
        }
    }
    Ok(t)
}

fn summarise(tallies: Vec<Tally>, monitors: usize, elapsed: Duration) -> Throughput {
    let connections = tallies.len();
    let mut all = Tally::default();
    for t in tallies {
        all.requests += t.requests;
        all.failed += t.failed;
        all.polls += t.polls;
        all.latencies_us.extend(t.latencies_us);
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let n = all.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 - 1.0) * p).round() as usize;
        f64::from(all.latencies_us.get(i).copied().unwrap_or(0)) / 1000.0
    };
    let s = elapsed.as_secs_f64().max(1e-9);
    let polls_per_s = all.polls as f64 / s;
    Throughput {
        connections,
        monitors,
        requests: all.requests,
        failed: all.failed,
        polls: all.polls,
        elapsed_s: s,
        requests_per_s: all.requests as f64 / s,
        polls_per_s,
        polls_per_s_per_connection: polls_per_s / connections.max(1) as f64,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

/// Runs `monitors` servers and one polling connection to each for `run`.
async fn fleet_run(monitors: usize, run: Duration, timeout: Duration) -> io::Result<Throughput> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut servers = Vec::with_capacity(monitors);
    for i in 0..monitors {
        let slaves = Slaves::new([(1, SimMonitor::new(10.0 + (i % 50) as f64))]);
        servers.push(ModbusSim::tcp(any, slaves, 1.0).await?);
    }
    let started = Instant::now();
    let until = started + run;
    let mut tasks = tokio::task::JoinSet::new();
    for s in &servers {
        let addr = s
            .addr()
            .ok_or_else(|| io::Error::other("a TCP server without an address"))?;
        tasks.spawn(poll_loop(addr, until, timeout));
    }
    let mut tallies = Vec::with_capacity(monitors);
    while let Some(r) = tasks.join_next().await {
        tallies.push(r.map_err(io::Error::other)??);
    }
    let elapsed = started.elapsed();
    drop(servers);
    Ok(summarise(tallies, monitors, elapsed))
}

/// Runs the benchmark.
///
/// # Errors
/// A server cannot bind or a client cannot connect (e.g. too few file descriptors for
/// `monitors` × 2 sockets).
pub async fn run(options: BenchOptions) -> io::Result<ModbusBench> {
    let ms = Duration::from_millis;
    let timeout = ms(options.timeout_ms);
    let single_connection = fleet_run(1, ms(options.connection_run_ms), timeout).await?;
    let fleet = fleet_run(options.monitors, ms(options.fleet_run_ms), timeout).await?;
    Ok(ModbusBench {
        options,
        single_connection,
        fleet,
    })
}
