//! The results: what was measured at each size, the goals, the machine; printed as a table
//! and written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::cpu::Usage;
use super::gateway::Registration;
use super::ingest::Ingest;
use super::latency::LatencyStats;
use super::memory::Rss;
use super::{BenchError, Plan};

/// Everything one run measured. Serialized as `bench-results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResults {
    /// The command line that produced it.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// What ran.
    pub versions: Versions,
    /// Settings.
    pub settings: Settings,
    /// One entry per fleet size.
    pub sizes: Vec<SizeResult>,
    /// Where each goal of the issue lands (filled by [`BenchResults::finish`]).
    pub goals: Vec<Goal>,
    /// Memory per device between consecutive sizes (filled by [`BenchResults::finish`]).
    pub marginal: Vec<Marginal>,
    /// More benchmarks' results (TSDB writer, Modbus polling, …): see [`Self::add_section`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// Wall time of the run, s.
    pub elapsed_s: f64,
}

/// The machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Memory, MiB (`/proc/meminfo`).
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
}

/// Versions of what ran.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// `firegrid-sim`.
    pub firegrid_sim: String,
    /// `firegrid --version`.
    pub firegrid: String,
    /// The gateway binary that ran.
    pub firegrid_path: String,
    /// Mosquitto's version line.
    pub mosquitto: String,
}

/// The settings of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Smoke mode.
    pub quick: bool,
    /// Publisher connections (each carries many device ids).
    pub publishers: usize,
    /// Alarm samples per load.
    pub alarms_per_load: usize,
    /// Time between two alarm samples, ms.
    pub alarm_spacing_ms: f64,
    /// Measuring window, s.
    pub window_s: f64,
    /// Payload encoding.
    pub encoding: String,
    /// Channels per telemetry message (reading rows per message).
    pub channels: usize,
    /// Telemetry and events QoS.
    pub qos: u8,
    /// Mosquitto's nice value, in every phase (the managed broker's default).
    pub broker_nice: i8,
}

/// What one fleet size measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SizeResult {
    /// Devices registered, in service and sending.
    pub devices: usize,
    /// Telemetry into a plain subscriber, messages per second.
    pub baseline_per_s: f64,
    /// The CPU the broker and the load generator (with the plain subscriber) used then.
    pub baseline_cpu: Usage,
    /// The gateway's sustained ingest over the baseline.
    pub ingest_ratio: f64,
    /// How registration went.
    pub registration: Registration,
    /// The gateway's memory.
    pub memory: Memory,
    /// The sustained-rate search.
    pub ingest: Ingest,
    /// Alarm latency at each background load.
    pub loads: Vec<LoadResult>,
    /// The gateway's mean journal commit (with its fsync) over the size's run, ms.
    pub journal_commit_mean_ms: f64,
    /// The gateway's own mean alarm latency (message received → alert published), ms.
    pub gateway_alarm_mean_ms: f64,
    /// Messages the gateway refused as from unknown devices (0 when registration reached it).
    pub refused_unknown: u64,
    /// Offline episodes the gateway opened (devices silent too long between phases).
    pub offline_episodes: u64,
}

impl SizeResult {
    /// Where the CPU went: per message taken in at the best sustained step (gateway, broker,
    /// load generator) and at the baseline (broker, load generator with the plain subscriber).
    pub fn cpu_line(&self) -> String {
        let per = Usage::us_per_message;
        let b = &self.baseline_cpu;
        let at_baseline = format!(
            "at the baseline broker {:.1}, load {:.1} (machine {:.0} % busy, {:.0} % stolen)",
            per(b.broker_cores, self.baseline_per_s),
            per(b.load_cores, self.baseline_per_s),
            b.machine_busy * 100.0,
            b.machine_steal * 100.0
        );
        match self.ingest.best() {
            Some(s) => format!(
                "{} devices, CPU us per message: at the best sustained step gateway {:.1}, \
                 broker {:.1}, load {:.1} (machine {:.0} % busy, {:.0} % stolen); {at_baseline}",
                self.devices,
                s.gateway_us_per_message(),
                per(s.cpu.broker_cores, s.ingested_per_s),
                per(s.cpu.load_cores, s.ingested_per_s),
                s.cpu.machine_busy * 100.0,
                s.cpu.machine_steal * 100.0
            ),
            None => format!(
                "{} devices, CPU us per message: no sustained step; {at_baseline}",
                self.devices
            ),
        }
    }
}

/// The gateway's memory at one size.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// Started, nothing registered.
    pub idle: Rss,
    /// Every device registered and having sent telemetry, queues drained.
    pub active: Rss,
    /// At the end of the size's measurements (after the ingest search).
    pub end: Rss,
    /// (active − idle) / devices, bytes.
    pub per_device_bytes: f64,
}

/// Alarm latency at one background load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// The load as a share of the sustained rate.
    pub fraction: f64,
    /// Background telemetry offered, messages per second.
    pub offered_per_s: f64,
    /// Background telemetry the gateway took in meanwhile, per second.
    pub ingested_per_s: f64,
    /// Through the gateway: device publish → grid worker's receipt of the alert.
    pub alarm: LatencyStats,
    /// Through a plain relay, same load (the two-hop baseline).
    pub baseline: Option<LatencyStats>,
}

/// The gateway's memory per device from one size to the next: (active RSS at `to` − active RSS
/// at `from`) / (`to` − `from`). Fixed costs that grow with load rather than with devices
/// (SQLite page caches, queue buffers, allocator arenas) cancel out here.
#[derive(Debug, Clone, Serialize)]
pub struct Marginal {
    /// The smaller size.
    pub from: usize,
    /// The larger size.
    pub to: usize,
    /// Bytes per added device.
    pub per_device_bytes: f64,
}

/// A goal of the issue and where this run lands.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What.
    pub goal: String,
    /// The measured value, in words.
    pub value: String,
    /// Whether it is met.
    pub met: bool,
}

/// Another benchmark's results.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Its name (the JSON key's value and the table's heading).
    pub name: String,
    /// Its results.
    pub results: serde_json::Value,
    /// Its table, as printed.
    #[serde(skip)]
    pub table: String,
}

fn first_line(program: &str, arg: &str) -> String {
    std::process::Command::new(program)
        .arg(arg)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_default(),
        memory_mib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl BenchResults {
    /// Empty results for `plan`, with the machine and versions filled in.
    pub async fn new(plan: &Plan, gateway: &Path) -> Self {
        let mosquitto = std::env::var("FIREGRID_MOSQUITTO")
            .unwrap_or_else(|_| "/usr/sbin/mosquitto".to_string());
        Self {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            machine: machine(),
            versions: Versions {
                firegrid_sim: env!("CARGO_PKG_VERSION").to_string(),
                firegrid: first_line(&gateway.to_string_lossy(), "--version"),
                firegrid_path: gateway.display().to_string(),
                mosquitto: first_line(&mosquitto, "-h"),
            },
            settings: Settings {
                quick: plan.quick,
                publishers: plan.publishers,
                alarms_per_load: plan.alarms,
                alarm_spacing_ms: plan.alarm_spacing.as_secs_f64() * 1000.0,
                window_s: plan.window.as_secs_f64(),
                encoding: format!("{:?}", plan.encoding).to_lowercase(),
                channels: super::load::CHANNELS,
                qos: 1,
                broker_nice: plan.broker_nice,
            },
            sizes: Vec::new(),
            goals: Vec::new(),
            marginal: Vec::new(),
            sections: Vec::new(),
            elapsed_s: 0.0,
        }
    }

    /// Adds another benchmark's results under `name`, with the table that prints for them.
    ///
    /// # Errors
    /// [`BenchError::Json`] if `results` does not serialize.
    pub fn add_section(
        &mut self,
        name: &str,
        results: &impl Serialize,
        table: String,
    ) -> Result<(), BenchError> {
        self.sections.push(Section {
            name: name.to_string(),
            results: serde_json::to_value(results)?,
            table,
        });
        Ok(())
    }

    /// Works out where each goal lands: issue 12's (its "done when"; the latency ones at 10k
    /// devices and more), the project's ingest goal beyond it, and the alarm p99 against this
    /// run's own two-hop baseline (the one goal a slower or busier machine does not move).
    pub fn finish(&mut self) {
        let mut goals = Vec::new();
        for s in &self.sizes {
            let n = s.devices;
            for (least, beyond) in [(0.5, ""), (0.8, " (the project's goal beyond)")] {
                goals.push(Goal {
                    goal: format!("{n} devices: ingest with storage >= {least} x baseline{beyond}"),
                    value: format!(
                        "{:.2} ({:.0} of {:.0} msg/s)",
                        s.ingest_ratio, s.ingest.sustained_per_s, s.baseline_per_s
                    ),
                    met: s.ingest_ratio >= least,
                });
            }
            for l in &s.loads {
                let pct = (l.fraction * 100.0).round();
                let all = l.alarm.received == l.alarm.sent && l.alarm.received > 0;
                let lost = if all { "" } else { " (alarms lost)" };
                let half = (l.fraction - 0.5).abs() < 1e-9;
                if n >= 10_000 {
                    let p99_max = if half { 5.0 } else { 10.0 };
                    goals.push(Goal {
                        goal: format!(
                            "{n} devices: alarm p99 <= {p99_max} ms, p50 <= 2 ms at {pct}% load, every alert"
                        ),
                        value: format!(
                            "p99 {:.2} ms, p50 {:.2} ms, {}/{} alerts",
                            l.alarm.p99_ms, l.alarm.p50_ms, l.alarm.received, l.alarm.sent
                        ),
                        met: all && l.alarm.p99_ms <= p99_max && l.alarm.p50_ms <= 2.0,
                    });
                }
                if half {
                    let base = l.baseline.as_ref().map_or(0.0, |b| b.p99_ms);
                    goals.push(Goal {
                        goal: format!("{n} devices: alarm p99 <= 3 x two-hop p99 at {pct}% load"),
                        value: format!(
                            "{:.2} ms vs 3 x {base:.2} = {:.2} ms{lost}",
                            l.alarm.p99_ms,
                            3.0 * base
                        ),
                        met: all && base > 0.0 && l.alarm.p99_ms <= 3.0 * base,
                    });
                }
            }
            // Issue 12: 1 KiB per active device from 100k devices up (smaller fleets carry
            // the fixed costs over fewer devices).
            let budget = if n >= 100_000 { 1024.0 } else { 2048.0 };
            goals.push(Goal {
                goal: format!(
                    "{n} devices: gateway memory <= {} KiB per active device",
                    budget / 1024.0
                ),
                value: format!("{:.0} B", s.memory.per_device_bytes),
                met: s.memory.per_device_bytes <= budget,
            });
        }
        let ran_100k = self
            .sizes
            .iter()
            .any(|s| s.devices >= 100_000 && s.ingest.sustained_per_s > 0.0);
        goals.push(Goal {
            goal: "100k devices run on this machine".into(),
            value: if ran_100k {
                "yes".into()
            } else {
                "not run".into()
            },
            met: ran_100k,
        });
        if self.sizes.iter().any(|s| s.devices >= 1_000_000) {
            let city = self
                .sizes
                .iter()
                .any(|s| s.devices >= 1_000_000 && s.ingest.sustained_per_s > 0.0);
            goals.push(Goal {
                goal: "a city (1M devices) runs on this machine".into(),
                value: if city { "yes" } else { "no sustained step" }.into(),
                met: city,
            });
        }
        self.goals = goals;
        self.marginal = self
            .sizes
            .windows(2)
            .filter(|w| w[1].devices > w[0].devices)
            .map(|w| Marginal {
                from: w[0].devices,
                to: w[1].devices,
                per_device_bytes: (w[1].memory.active.rss_kib as f64
                    - w[0].memory.active.rss_kib as f64)
                    * 1024.0
                    / (w[1].devices - w[0].devices) as f64,
            })
            .collect();
    }

    /// The results as a readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let m = &self.machine;
        let _ = writeln!(
            t,
            "firegrid benchmark: {} cores ({}), {} MiB, Linux {}; {}; {}",
            m.cores, m.cpu, m.memory_mib, m.kernel, self.versions.firegrid, self.versions.mosquitto
        );
        let s = &self.settings;
        let _ = writeln!(
            t,
            "telemetry: QoS {}, {}, {} channels per message; {} publisher connections; {} alarms per load, one every {:.0} ms; {:.1} s windows; broker at nice {}\n",
            s.qos,
            s.encoding,
            s.channels,
            s.publishers,
            s.alarms_per_load,
            s.alarm_spacing_ms,
            s.window_s,
            s.broker_nice
        );
        let _ = writeln!(
            t,
            "| devices | baseline msg/s | ingest msg/s | ratio | rows stored/s | RSS idle MiB | RSS active MiB | per device | register (POST / import) /s |"
        );
        let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.sizes {
            let _ = writeln!(
                t,
                "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0} B | {:.0} / {:.0} |",
                r.devices,
                r.baseline_per_s,
                r.ingest.sustained_per_s,
                r.ingest_ratio,
                r.ingest.stored_rows_per_s,
                r.memory.idle.rss_kib as f64 / 1024.0,
                r.memory.active.rss_kib as f64 / 1024.0,
                r.memory.per_device_bytes,
                r.registration.single_post_per_s,
                r.registration.import_per_s,
            );
        }
        for r in &self.sizes {
            let _ = writeln!(
                t,
                "{} devices, inside the gateway: journal commit (fsync) mean {:.2} ms; \
                 receive -> alert published mean {:.2} ms; {} unknown-device refusals; \
                 {} offline episodes",
                r.devices,
                r.journal_commit_mean_ms,
                r.gateway_alarm_mean_ms,
                r.refused_unknown,
                r.offline_episodes
            );
        }
        for r in &self.sizes {
            let _ = writeln!(t, "{}", r.cpu_line());
        }
        for r in &self.sizes {
            let a = &r.memory.active;
            let _ = writeln!(
                t,
                "{} devices, RSS active: {:.1} MiB anonymous (heap, stacks), {:.1} MiB file \
                 pages, {:.1} MiB shared (WAL indexes)",
                r.devices,
                a.anon_kib as f64 / 1024.0,
                a.file_kib as f64 / 1024.0,
                a.shmem_kib as f64 / 1024.0
            );
        }
        for m in &self.marginal {
            let _ = writeln!(
                t,
                "memory from {} to {} devices: {:.0} B per added device",
                m.from, m.to, m.per_device_bytes
            );
        }
        let _ = writeln!(
            t,
            "\nalarm latency, ms (publish -> grid worker's receipt): p50 / p99 / p999 (max)\n"
        );
        let _ = writeln!(
            t,
            "| devices | load | background msg/s | two-hop baseline | through the gateway | alerts |"
        );
        let _ = writeln!(t, "|---:|---:|---:|---|---|---:|");
        let fmt = |l: &LatencyStats| {
            format!(
                "{:.2} / {:.2} / {:.2} ({:.2})",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        };
        for r in &self.sizes {
            for l in &r.loads {
                let _ = writeln!(
                    t,
                    "| {} | {:.0}% | {:.0} | {} | {} | {}/{} |",
                    r.devices,
                    l.fraction * 100.0,
                    l.ingested_per_s,
                    l.baseline.as_ref().map_or_else(|| "-".into(), fmt),
                    fmt(&l.alarm),
                    l.alarm.received,
                    l.alarm.sent
                );
            }
        }
        let _ = writeln!(t, "\n| goal | this run | met |");
        let _ = writeln!(t, "|---|---|---|");
        for g in &self.goals {
            let _ = writeln!(
                t,
                "| {} | {} | {} |",
                g.goal,
                g.value,
                if g.met { "yes" } else { "**no**" }
            );
        }
        for s in &self.sections {
            let _ = writeln!(t, "\n{}\n\n{}", s.name, s.table);
        }
        let _ = writeln!(t, "\ncommand: {}  ({:.0} s)", self.command, self.elapsed_s);
        t
    }

    /// Writes the JSON to `path`.
    ///
    /// # Errors
    /// [`BenchError::Io`], [`BenchError::Json`].
    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}
