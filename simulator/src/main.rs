//! The `firegrid-sim` command: run a simulated district against a gateway, or check a scenario.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use firegrid_simulator::bench;
use firegrid_simulator::device::Counters;
use firegrid_simulator::fleet::{Fleet, FleetOptions};
use firegrid_simulator::provision::{self, Api};
use firegrid_simulator::scenario::{Incident, Plan, Scenario};

/// firegrid-sim: simulated districts of firegrid devices running the real firmware.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario's district: register it in the gateway, then play its devices and
    /// incidents until Ctrl-C (or --for-s).
    Run(RunArgs),
    /// Check a scenario file and print what it makes.
    Check {
        /// The scenario (TOML).
        scenario: PathBuf,
    },
    /// Measure ingest, alarm latency and memory against a plain-broker baseline; print a table
    /// and write JSON (see docs/performance.md).
    Bench(bench::BenchArgs),
    /// A simulated city remote fire-monitoring centre (GB/T 26875.3): accepts, confirms, logs
    /// decoded frames as JSON lines; can send duty checks and clock syncs, and misbehave.
    Centre(firegrid_simulator::centre::CentreArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The scenario (TOML); see simulator/scenarios/.
    #[arg(long, short)]
    scenario: PathBuf,
    /// The broker the devices connect to (MQTT 5; the managed broker's `listen`).
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: SocketAddr,
    /// The gateway's HTTP API, to register the district.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// An admin's API token, to register the district (`firegrid user add NAME --role admin`
    /// prints one).
    #[arg(long, env = "FIREGRID_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Do not register the district (it is registered already, or the gateway is not ours).
    #[arg(long)]
    no_register: bool,
    /// A JSON file of the devices' MQTT passwords (`{"device id": "password"}`): written after
    /// registering (readable by its owner only), read with --no-register. Without it, devices
    /// registered here use the passwords just issued, and with --no-register they connect
    /// without credentials (an open broker).
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    /// Worker threads running the devices.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The devices' MQTT keep-alive, s.
    #[arg(long, default_value_t = 60)]
    keep_alive_s: u16,
    /// The first boots are spread over this long, ms.
    #[arg(long, default_value_t = 2_000)]
    boot_spread_ms: u64,
    /// Base of the devices' reconnect backoff, ms (doubling per failed attempt, full jitter).
    #[arg(long, default_value_t = 1_000)]
    backoff_base_ms: u64,
    /// The largest reconnect backoff window, ms (the firmware's default: 5 min).
    #[arg(long, default_value_t = 300_000)]
    backoff_cap_ms: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    for_s: Option<u64>,
    /// Print a status line this often, s (0: never).
    #[arg(long, default_value_t = 10)]
    status_every_s: u64,
}

/// Writes a file only its owner can read (it holds passwords).
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents.as_bytes())
}

fn load(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Centre(args) => match runtime() {
            Ok(r) => match r.block_on(firegrid_simulator::centre::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("firegrid-sim centre: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
        Cmd::Bench(args) => match runtime() {
            Ok(r) => r.block_on(run_bench(args)),
            Err(code) => code,
        },
        Cmd::Check { scenario } => match load(&scenario) {
            Ok(s) => {
                let plan = s.plan();
                println!(
                    "{}: ok — {} streets, {} devices, {} incidents",
                    scenario.display(),
                    plan.streets.len(),
                    plan.devices.len(),
                    s.incidents.len()
                );
                for i in sorted(&s.incidents) {
                    println!("  {}", describe(i));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::Run(args) => {
            let scenario = match load(&args.scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match runtime() {
                Ok(r) => r.block_on(run(args, scenario)),
                Err(code) => code,
            }
        }
    }
}

async fn run_bench(args: bench::BenchArgs) -> ExitCode {
    match bench_all(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firegrid-sim bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The gateway benchmark, then the TSDB writer's and Modbus polling's sections.
async fn bench_all(args: bench::BenchArgs) -> Result<(), String> {
    let out = args.out.clone();
    let quick = args.quick;
    let mut results = bench::run(args).await.map_err(|e| e.to_string())?;
    // The time-series writer and its spool, each against its baseline.
    let tsdb = firegrid_gateway::tsdb::bench::BenchOptions {
        readings: if quick { 20_000 } else { 200_000 },
        rounds: if quick { 1 } else { 3 },
        ..Default::default()
    };
    let t = firegrid_gateway::tsdb::bench::run(&tsdb)
        .await
        .map_err(|e| format!("the TSDB benchmark failed: {e}"))?;
    if let Err(e) = results.add_section("tsdb", &t, t.table()) {
        eprintln!("firegrid-sim bench: TSDB results: {e}");
    }
    // Modbus polling: one TCP connection, and a fleet of monitors.
    let modbus = firegrid_simulator::modbus::bench::BenchOptions {
        monitors: if quick { 50 } else { 1000 },
        connection_run_ms: if quick { 500 } else { 2_000 },
        fleet_run_ms: if quick { 1_000 } else { 5_000 },
        ..Default::default()
    };
    let m = firegrid_simulator::modbus::bench::run(modbus)
        .await
        .map_err(|e| format!("the Modbus benchmark failed: {e}"))?;
    if let Err(e) = results.add_section("modbus", &m, m.table()) {
        eprintln!("firegrid-sim bench: Modbus results: {e}");
    }
    results.finish();
    println!("{}", results.table());
    results
        .write(&out)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("results written to {}", out.display());
    Ok(())
}

async fn run(args: RunArgs, scenario: Scenario) -> ExitCode {
    let plan = scenario.plan();
    say(&format!(
        "scenario \"{}\": {} devices on {} streets",
        scenario.name,
        plan.devices.len(),
        plan.streets.len()
    ));
    let mut credentials = std::collections::HashMap::new();
    if args.no_register
        && let Some(path) = &args.credentials_file
    {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(c) => credentials = c,
            Err(e) => {
                eprintln!("firegrid-sim: --credentials-file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if !args.no_register {
        let Some(token) = args.token.as_deref() else {
            eprintln!(
                "firegrid-sim: registering the district needs an admin's API token: give \
                 --token TOKEN or set FIREGRID_TOKEN (make one with `firegrid user add NAME \
                 --role admin`), or pass --no-register if the district is registered already"
            );
            return ExitCode::from(2);
        };
        let api = match Api::new(&args.api, token) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("firegrid-sim: HTTP client: {e}");
                return ExitCode::FAILURE;
            }
        };
        match provision::provision(&api, &scenario, &plan, say).await {
            Ok(p) => {
                say(&format!(
                    "registered in the gateway at {} ({} created, {} already there)",
                    args.api, p.created, p.existing
                ));
                credentials = p.credentials;
                if let Some(path) = &args.credentials_file
                    && let Err(e) = write_private(
                        path,
                        &serde_json::to_string(&credentials).unwrap_or_default(),
                    )
                {
                    eprintln!("firegrid-sim: --credentials-file {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("firegrid-sim: registering the district failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let cancel = CancellationToken::new();
    let mut options = FleetOptions::new(args.broker, plan.devices.len());
    options.threads = args.threads.max(1);
    options.keep_alive_s = args.keep_alive_s;
    options.boot_spread_ms = args.boot_spread_ms;
    options.backoff_base_ms = args.backoff_base_ms;
    options.backoff_cap_ms = args.backoff_cap_ms;
    options.credentials = std::sync::Arc::new(credentials);
    let fleet = match Fleet::start(&plan, &options, &cancel) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("firegrid-sim: cannot start the devices: {e}");
            return ExitCode::FAILURE;
        }
    };
    say(&format!(
        "{} devices booting on {} threads, connecting to {}",
        plan.devices.len(),
        options.threads,
        args.broker
    ));
    let stop = cancel.clone();
    let for_s = args.for_s;
    tokio::spawn(async move {
        let limit = async {
            match for_s {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => say("Ctrl-C: stopping the devices"),
            () = limit => say("time is up: stopping the devices"),
        }
        stop.cancel();
    });
    play(&scenario, &plan, &fleet, args.status_every_s, &cancel).await;
    let counters = fleet.counters().clone();
    tokio::task::spawn_blocking(move || fleet.join()).await.ok();
    say(&status(&counters, plan.devices.len()));
    ExitCode::SUCCESS
}

/// Announces the incidents as they start and prints a status line now and then, until
/// `cancel`.
async fn play(
    scenario: &Scenario,
    plan: &Plan,
    fleet: &Fleet,
    status_every_s: u64,
    cancel: &CancellationToken,
) {
    let start = fleet.started();
    let mut timeline = sorted(&scenario.incidents).into_iter().peekable();
    let mut next_status = (status_every_s > 0).then(|| start + Duration::from_secs(status_every_s));
    loop {
        let next_incident = timeline
            .peek()
            .map(|i| start + Duration::from_secs(at_s(i)));
        let wake = [next_incident, next_status].into_iter().flatten().min();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sleep => {}
        }
        let now = tokio::time::Instant::now();
        while let Some(i) = timeline.next_if(|i| start + Duration::from_secs(at_s(i)) <= now) {
            say(&describe(i));
        }
        if let Some(at) = next_status
            && at <= now
        {
            say(&status(fleet.counters(), plan.devices.len()));
            next_status = Some(at + Duration::from_secs(status_every_s));
        }
    }
}

fn status(c: &Counters, devices: usize) -> String {
    format!(
        "devices {devices}, connected {}, telemetry sent {}, events sent {} (+{} resent), acks {}",
        c.connected.load(Ordering::Relaxed),
        Counters::get(&c.telemetry),
        Counters::get(&c.events),
        Counters::get(&c.resends),
        Counters::get(&c.acks),
    )
}

fn say(line: &str) {
    println!("firegrid-sim: {line}");
}

fn sorted(incidents: &[Incident]) -> Vec<&Incident> {
    let mut v: Vec<&Incident> = incidents.iter().collect();
    v.sort_by_key(|i| at_s(i));
    v
}

const fn at_s(i: &Incident) -> u64 {
    match i {
        Incident::LeakageCreep { at_s, .. }
        | Incident::Smoke { at_s, .. }
        | Incident::LooseTerminal { at_s, .. }
        | Incident::LeadOpen { at_s, .. }
        | Incident::BatteryDrain { at_s, .. }
        | Incident::NetworkOutage { at_s, .. }
        | Incident::PowerCut { at_s, .. } => *at_s,
    }
}

fn describe(i: &Incident) -> String {
    let what = match i {
        Incident::LeakageCreep {
            room, ma_per_min, ..
        } => format!("leakage on the circuit of room {room} starts rising {ma_per_min} mA/min"),
        Incident::Smoke { room, for_s, .. } => format!("smoke in room {room} for {for_s} s"),
        Incident::LooseTerminal { room, ch, .. } => {
            format!("terminal {ch} in room {room} works loose and heats up under load")
        }
        Incident::LeadOpen {
            room, ch, for_s, ..
        } => match for_s {
            Some(s) => format!("sensor lead {ch} in room {room} opens for {s} s"),
            None => format!("sensor lead {ch} in room {room} opens"),
        },
        Incident::BatteryDrain {
            room, mv_per_min, ..
        } => format!("smoke alarm battery in room {room} drains {mv_per_min} mV/min"),
        Incident::NetworkOutage { street, for_s, .. } => {
            format!("street {street} loses its network for {for_s} s")
        }
        Incident::PowerCut { street, for_s, .. } => {
            format!("street {street} loses power for {for_s} s; then every device boots at once")
        }
    };
    format!("+{} s: {what}", at_s(i))
}
