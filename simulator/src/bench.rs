//! The benchmark (`firegrid-sim bench`): how much the gateway takes in, how fast alarms get
//! through, and what a device costs in memory, each against what the same machine and broker
//! do without the gateway.
//!
//! # What one run does, per fleet size
//!
//! 1. **Baseline rate** ([`baseline`]): a fresh Mosquitto, the load publishers flat out, and
//!    one plain subscriber on the same topics the gateway subscribes to: the messages per
//!    second that reach a subscriber at all (the physical limit here).
//! 2. **Gateway** ([`gateway`]) on a fresh Mosquitto: the release `firegrid` binary as a child
//!    process with `[broker] mode = "external"` and a temporary data directory. RSS with no
//!    devices; N devices registered (single POSTs for the first ones, to measure them, then
//!    `POST /api/v1/device-imports`); every device sending telemetry; RSS again
//!    ([`memory`]); then the offered rate stepped up until the gateway stops keeping up
//!    ([`ingest`]); then alarms at 50 % and 90 % of that sustained rate ([`latency`]).
//! 3. **Two-hop baseline** ([`baseline`]) on another fresh Mosquitto: the same background
//!    loads into a plain relay that republishes each event to the grid-worker topic — device →
//!    broker → relay → broker → worker, the path an alarm takes through the gateway minus the
//!    gateway.
//!
//! Results print as a table ([`report`]) and are written as JSON with the machine's core count,
//! versions and the command line.
//!
//! # Adding a section
//!
//! Other benchmarks (the TSDB writer, Modbus polling) add their results with
//! [`BenchResults::add_section`]: any `Serialize` value under a name, with the table text that
//! prints for it. Call it after [`run`] (or from inside it), before [`BenchResults::write`].
//!
//! # Layout
//!
//! - [`baseline`]: the plain subscriber/relay.
//! - [`cpu`]: the CPU each process used in a window, and the machine's.
//! - [`gateway`]: the `firegrid` child process, its API and `/metrics`, registration.
//! - [`ingest`]: the sustained-rate search.
//! - [`latency`]: alarm samples, the grid-worker subscriber, percentiles.
//! - [`load`]: the publishers (many device ids per connection).
//! - [`memory`]: RSS from `/proc`.
//! - [`phase`]: the gateway's part of one size, in order.
//! - [`report`]: results, table, JSON.

pub mod baseline;
pub mod cpu;
pub mod gateway;
pub mod ingest;
pub mod latency;
pub mod load;
pub mod memory;
pub mod phase;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firegrid_gateway::broker::mosquitto::{MANAGED_BROKER_NICE, set_nice};
use firegrid_testkit::{Mosquitto, MosquittoError};

pub use report::{BenchResults, SizeResult};

/// Mosquitto's configuration for the benchmark, after the harness's defaults (loopback,
/// anonymous, no persistence, `set_tcp_nodelay true`).
///
/// - `max_queued_messages 0`: Mosquitto otherwise drops QoS 1 messages silently once a slow
///   subscriber's queue holds 1000 (measured), which would hide a slow gateway.
/// - `connection_messages false`: no log line per connection.
/// - `max_inflight_messages` stays at Mosquitto's default (20), as a production broker has it.
pub const MOSQUITTO_CONFIG: &str = "max_queued_messages 0\nconnection_messages false\n";

/// `firegrid-sim bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The smoke mode: small sizes, short windows, few samples; well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Fleet sizes (registered, active devices), comma-separated. Default 1000,10000,100000
    /// (quick: 300).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Where the JSON results go.
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// The `firegrid` binary. Default: next to this executable (`target/release/firegrid`
    /// beside `target/release/firegrid-sim`); build it with
    /// `cargo build --release -p firegrid-gateway -p firegrid-simulator`.
    #[arg(long)]
    pub gateway: Option<PathBuf>,
    /// Publisher connections (each carries many device ids).
    #[arg(long, default_value_t = 8)]
    pub publishers: usize,
    /// Alarm samples per background load (default 300; quick: 20).
    #[arg(long)]
    pub alarms: Option<usize>,
    /// Time between two alarm samples, ms. Each alarm costs the gateway two durable commits
    /// (the event, then its delivery), one after the other in its alert notifier; alarms much
    /// closer than that queue behind each other and measure alert throughput, not latency.
    #[arg(long, default_value_t = 50)]
    pub alarm_spacing_ms: u64,
    /// Seconds per ingest step (default 3; quick: 1).
    #[arg(long)]
    pub window_s: Option<f64>,
    /// Telemetry and events in the protocol's binary encoding instead of JSON.
    #[arg(long)]
    pub binary: bool,
    /// Mosquitto's nice value, for the baselines and the gateway alike. Default: the managed
    /// broker's, as the gateway runs it (`[broker.managed] nice`).
    #[arg(long, default_value_t = MANAGED_BROKER_NICE, allow_negative_numbers = true)]
    pub broker_nice: i8,
}

impl BenchArgs {
    /// The arguments of `firegrid-sim bench --quick` (the smoke test's).
    pub fn quick(gateway: Option<PathBuf>, out: PathBuf) -> Self {
        Self {
            quick: true,
            sizes: Vec::new(),
            out,
            gateway,
            publishers: 4,
            alarms: None,
            alarm_spacing_ms: 50,
            window_s: None,
            binary: false,
            broker_nice: MANAGED_BROKER_NICE,
        }
    }

    /// The settings these arguments mean.
    pub fn plan(&self) -> Plan {
        let sizes = if !self.sizes.is_empty() {
            self.sizes.clone()
        } else if self.quick {
            vec![300]
        } else {
            vec![1000, 10_000, 100_000]
        };
        Plan {
            sizes,
            publishers: self.publishers.max(1),
            alarms: self
                .alarms
                .unwrap_or(if self.quick { 20 } else { 300 })
                .max(1),
            window: Duration::from_secs_f64(
                self.window_s
                    .unwrap_or(if self.quick { 1.0 } else { 3.0 })
                    .max(0.2),
            ),
            alarm_spacing: Duration::from_millis(self.alarm_spacing_ms.max(1)),
            single_posts: if self.quick { 50 } else { 200 },
            encoding: if self.binary {
                firegrid_protocols::codec::Encoding::Binary
            } else {
                firegrid_protocols::codec::Encoding::Json
            },
            quick: self.quick,
            broker_nice: self.broker_nice,
        }
    }
}

/// What a run does, from [`BenchArgs`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Fleet sizes.
    pub sizes: Vec<usize>,
    /// Publisher connections.
    pub publishers: usize,
    /// Alarm samples per load.
    pub alarms: usize,
    /// Length of one measuring window.
    pub window: Duration,
    /// Time between two alarm samples.
    pub alarm_spacing: Duration,
    /// Devices registered by single POSTs (to measure that path) before the bulk import.
    pub single_posts: usize,
    /// Payload encoding.
    pub encoding: firegrid_protocols::codec::Encoding,
    /// Smoke mode.
    pub quick: bool,
    /// Mosquitto's nice value.
    pub broker_nice: i8,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Mosquitto did not start.
    #[error("mosquitto: {0}")]
    Mosquitto(#[from] MosquittoError),
    /// The gateway binary is not there.
    #[error(
        "the firegrid binary is not at {0}: build it with `cargo build --release -p firegrid-gateway -p firegrid-simulator`, or give its path with --gateway PATH"
    )]
    GatewayMissing(PathBuf),
    /// The gateway did not start or stopped.
    #[error("the gateway {what}; its log:\n{log}")]
    Gateway {
        /// What happened.
        what: String,
        /// The tail of its log.
        log: String,
    },
    /// An HTTP call to the gateway failed or was refused.
    #[error("gateway API: {0}")]
    Api(String),
    /// An MQTT client of the benchmark failed.
    #[error("MQTT client: {0}")]
    Mqtt(String),
    /// Files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The results could not be written as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs the whole benchmark and prints progress to stderr; the caller prints or writes the
/// results.
///
/// # Errors
/// [`BenchError`] when a part cannot start or a step cannot be measured at all. A goal that is
/// missed is a result, not an error.
pub async fn run(args: BenchArgs) -> Result<BenchResults, BenchError> {
    let mut plan = args.plan();
    let binary = gateway::locate(args.gateway.as_deref())?;
    plan.broker_nice = allowed_nice(plan.broker_nice).await?;
    let started = Instant::now();
    let mut results = BenchResults::new(&plan, &binary).await;
    for &size in &plan.sizes {
        progress(&format!("== {size} devices"));
        results.sizes.push(one_size(&plan, &binary, size).await?);
    }
    results.elapsed_s = started.elapsed().as_secs_f64();
    Ok(results)
}

/// Everything measured at one fleet size.
async fn one_size(
    plan: &Plan,
    binary: &std::path::Path,
    size: usize,
) -> Result<SizeResult, BenchError> {
    let fleet = load::Fleet::new(&format!("b{size}"), size, plan.encoding);

    // 1. The raw rate into a plain subscriber, on a broker of its own.
    let broker = own_broker(plan).await?;
    let (baseline_rate, baseline_cpu) = baseline::max_rate(&broker, &fleet, plan).await?;
    drop(broker);
    progress(&format!(
        "baseline: {baseline_rate:.0} msg/s to a plain subscriber"
    ));

    // 2. The gateway on a broker of its own.
    let broker = own_broker(plan).await?;
    let mut gw = gateway::Gateway::start(binary, broker.port()).await?;
    let measured = phase::measure(plan, &fleet, &broker, &mut gw, baseline_rate).await;
    if measured.is_err() {
        progress(&format!("the gateway's log ends:\n{}", gw.log_tail()));
    }
    let mut result = measured?;
    gw.stop();
    drop(broker);

    // 3. The two-hop path without the gateway, at the same background loads.
    let broker = own_broker(plan).await?;
    for load in &mut result.loads {
        load.baseline = Some(baseline::two_hop(&broker, &fleet, plan, load.offered_per_s).await?);
    }
    drop(broker);
    result.baseline_per_s = baseline_rate;
    result.baseline_cpu = baseline_cpu;
    result.ingest_ratio = if baseline_rate > 0.0 {
        result.ingest.sustained_per_s / baseline_rate
    } else {
        0.0
    };
    Ok(result)
}

/// A Mosquitto of its own for one phase, at the plan's nice value ([`allowed_nice`]).
async fn own_broker(plan: &Plan) -> Result<Mosquitto, BenchError> {
    let broker = Mosquitto::start_with(MOSQUITTO_CONFIG).await?;
    if plan.broker_nice != 0 {
        set_nice(broker.pid(), plan.broker_nice)?;
    }
    Ok(broker)
}

/// `nice` if the system lets this process give it to a Mosquitto, else 0 (the benchmark's
/// own), said on stderr: the results then record what ran.
async fn allowed_nice(nice: i8) -> Result<i8, BenchError> {
    if nice == 0 {
        return Ok(0);
    }
    let broker = Mosquitto::start_with(MOSQUITTO_CONFIG).await?;
    match set_nice(broker.pid(), nice) {
        Ok(()) => Ok(nice),
        Err(e) => {
            progress(&format!(
                "Mosquitto runs at the benchmark's own nice value: nice {nice} refused ({e}); \
                 run as root (or with CAP_SYS_NICE) to measure the managed broker's"
            ));
            Ok(0)
        }
    }
}

/// A progress line on stderr.
pub(crate) fn progress(line: &str) {
    eprintln!("[bench] {line}");
}
