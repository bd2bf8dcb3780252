//! The TSDB writer's benchmark (feature `bench`): the writer's sustained rate into a real
//! VictoriaMetrics and the spool's append rate, each against a baseline measured in the same
//! run.
//!
//! | Row | What | Baseline |
//! | --- | --- | --- |
//! | writer | readings handed to a [`Feed`](super::Feed) → spool thread → spool → writer (gzip, POST) → confirmed | the same line protocol POSTed by a plain `reqwest` client, no spool, no gzip, one batch after another |
//! | spool append | [`Spool::append`](super::Spool::append) of `append_batch` readings, fsync after each | the same record bytes appended to a plain file, fsync after each batch |
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use firegrid_gateway::tsdb::bench::{self, BenchOptions};
//! let result = bench::run(&BenchOptions::default()).await?;
//! println!("{}", result.table());
//! # Ok(()) }
//! ```

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::codec;
use super::config::TsdbConfig;
use super::point::{Point, Tags};
use super::spool::{Fsync, Spool, SpoolOptions};
use super::{Tsdb, TsdbStats, line};
use firegrid_testkit::{VictoriaMetrics, VmError};

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Readings written by the writer, and by the baseline.
    pub readings: usize,
    /// Readings per POST (writer and baseline).
    pub batch_size: usize,
    /// Readings per spool append (and per fsync) in the spool rows.
    pub append_batch: usize,
    /// An InfluxDB-v2-compatible server to write to; `None`: start a VictoriaMetrics.
    pub url: Option<String>,
    /// How long the writer may take before the run fails.
    pub timeout: Duration,
    /// Rounds; each measures every row, in turn with its baseline, and the best rate of each
    /// is reported (the machine is shared: the best is the least disturbed).
    pub rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            readings: 200_000,
            batch_size: 5000,
            append_batch: 100,
            url: None,
            timeout: Duration::from_secs(300),
            rounds: 3,
        }
    }
}

/// The results; rates in readings per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TsdbBench {
    /// Readings per run.
    pub readings: usize,
    /// Readings per POST.
    pub batch_size: usize,
    /// Readings per spool append.
    pub append_batch: usize,
    /// Rounds measured (the best of each row is reported).
    pub rounds: usize,
    /// The writer's rate: handed over → confirmed by the server.
    pub writer_per_s: f64,
    /// The baseline: plain POSTs of the same line protocol.
    pub baseline_post_per_s: f64,
    /// The spool's append rate, fsync after each append.
    pub spool_append_per_s: f64,
    /// The baseline: raw sequential append + fsync of the same bytes.
    pub raw_append_per_s: f64,
}

impl TsdbBench {
    /// A plain-text table of the results.
    pub fn table(&self) -> String {
        let row = |what: &str, rate: f64, base: f64, base_what: &str| {
            format!(
                "{what:<34} {rate:>12.0}/s   {base_what:<38} {base:>12.0}/s   {:>5.2}×\n",
                if base > 0.0 { rate / base } else { 0.0 }
            )
        };
        let mut s = format!(
            "TSDB benchmark: {} readings, {} per POST, {} per spool append, best of {} rounds\n",
            self.readings, self.batch_size, self.append_batch, self.rounds
        );
        s += &row(
            "writer (feed→spool→gzip POST)",
            self.writer_per_s,
            self.baseline_post_per_s,
            "baseline: plain reqwest POST",
        );
        s += &row(
            "spool append + fsync",
            self.spool_append_per_s,
            self.raw_append_per_s,
            "baseline: raw file append + fsync",
        );
        s
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// VictoriaMetrics could not start.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// Files could not be written.
    #[error("benchmark files: {0}")]
    Io(#[from] std::io::Error),
    /// The writer could not start or finish.
    #[error("writer: {0}")]
    Writer(String),
    /// A baseline request failed.
    #[error("baseline POST: {0}")]
    Http(#[from] reqwest::Error),
}

/// Runs the benchmark (see the [module docs](self)). Needs a multi-threaded tokio runtime.
///
/// # Errors
/// [`BenchError`] if a server, file or request fails.
pub async fn run(opts: &BenchOptions) -> Result<TsdbBench, BenchError> {
    let mut vm = None;
    let url = match &opts.url {
        Some(u) => u.clone(),
        None => {
            let v = VictoriaMetrics::start().await?;
            let u = v.url();
            vm = Some(v);
            u
        }
    };
    let dir = tempfile_dir()?;
    let base_ms = now_ms().saturating_sub(opts.readings as u64 + 1000);
    let (mut writer_per_s, mut baseline_post_per_s) = (0.0f64, 0.0f64);
    let (mut spool_append_per_s, mut raw_append_per_s) = (0.0f64, 0.0f64);
    for round in 0..opts.rounds.max(1) {
        let round_dir = dir.join(round.to_string());
        let w = writer_rate(opts, &url, &round_dir, base_ms, round).await?;
        let b = baseline_rate(opts, &url, base_ms, round).await?;
        let (s, r) = {
            let opts = opts.clone();
            tokio::task::spawn_blocking(move || spool_rates(&opts, &round_dir, base_ms))
                .await
                .map_err(|e| BenchError::Writer(e.to_string()))??
        };
        writer_per_s = writer_per_s.max(w);
        baseline_post_per_s = baseline_post_per_s.max(b);
        spool_append_per_s = spool_append_per_s.max(s);
        raw_append_per_s = raw_append_per_s.max(r);
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(vm);
    Ok(TsdbBench {
        readings: opts.readings,
        batch_size: opts.batch_size,
        append_batch: opts.append_batch,
        rounds: opts.rounds.max(1),
        writer_per_s,
        baseline_post_per_s,
        spool_append_per_s,
        raw_append_per_s,
    })
}

use crate::clock::now_ms;

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "firegrid-tsdb-bench-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Reading `i` of a run of `prefix` devices: 100 devices × 4 channels, 1 ms apart.
fn point(prefix: &str, base_ms: u64, i: usize) -> Point {
    Point {
        device: format!("{prefix}-{:03}", i % 100),
        channel: u8::try_from(i / 100 % 4).unwrap_or(0),
        ts_ns: i64::try_from(base_ms + i as u64).unwrap_or(0) * 1_000_000,
        residual_ma: Some(u32::try_from(i % 500).unwrap_or(0)),
        temp_dc: Some(300),
        voltage_dv: None,
        current_ma: None,
        tags: Tags {
            site: Some(1),
            circuit: Some(i64::try_from(i % 100).unwrap_or(0)),
            grid: Some("grid-bench".into()),
        },
    }
}

async fn writer_rate(
    opts: &BenchOptions,
    url: &str,
    dir: &std::path::Path,
    base_ms: u64,
    round: usize,
) -> Result<f64, BenchError> {
    let prefix = format!("bench-w{round}");
    let config = TsdbConfig {
        enabled: true,
        url: url.to_string(),
        batch_size: opts.batch_size,
        flush_interval_ms: 50,
        fsync: Fsync::Interval,
        ..TsdbConfig::default()
    };
    let stats = Arc::new(TsdbStats::default());
    let cancel = CancellationToken::new();
    let data = dir.join("writer");
    let (tsdb, feed) = Tsdb::start(&config, &data, stats.clone(), cancel.clone())
        .map_err(|e| BenchError::Writer(e.to_string()))?;
    let started = Instant::now();
    // Hand readings over as the pipeline does: one sample per device message, 4 channels.
    let mut i = 0;
    while i < opts.readings {
        let n = (opts.readings - i).min(400);
        let points: Vec<Point> = (i..i + n).map(|j| point(&prefix, base_ms, j)).collect();
        feed.offer_points(points);
        i += n;
        if stats.status().queue_dropped_readings > 0 {
            return Err(BenchError::Writer("the spool queue overflowed".into()));
        }
        tokio::task::yield_now().await;
    }
    let want = opts.readings as u64;
    while stats.status().written_readings < want {
        if started.elapsed() > opts.timeout {
            return Err(BenchError::Writer(format!(
                "{} of {want} readings written within {:?}: {:?}",
                stats.status().written_readings,
                opts.timeout,
                stats.status().last_error
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    drop(feed);
    tsdb.stopped().await;
    Ok(want as f64 / elapsed.as_secs_f64())
}

async fn baseline_rate(
    opts: &BenchOptions,
    url: &str,
    base_ms: u64,
    round: usize,
) -> Result<f64, BenchError> {
    let prefix = format!("bench-b{round}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let write = format!("{}/api/v2/write", url.trim_end_matches('/'));
    let points: Vec<Point> = (0..opts.readings)
        .map(|j| point(&prefix, base_ms, j))
        .collect();
    let started = Instant::now();
    let mut body = Vec::new();
    for chunk in points.chunks(opts.batch_size.max(1)) {
        body.clear();
        line::encode(chunk, &mut body);
        client
            .post(&write)
            .query(&[("org", "bench"), ("bucket", "bench"), ("precision", "ns")])
            .body(body.clone())
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(opts.readings as f64 / started.elapsed().as_secs_f64())
}

fn spool_rates(
    opts: &BenchOptions,
    dir: &std::path::Path,
    base_ms: u64,
) -> Result<(f64, f64), BenchError> {
    let points: Vec<Point> = (0..opts.readings)
        .map(|j| point("bench-s", base_ms, j))
        .collect();
    let batch = opts.append_batch.max(1);
    let spool_opts = SpoolOptions::with_bound(u64::MAX / 2, Fsync::Always);
    std::fs::create_dir_all(dir)?;
    let (mut spool, _) = Spool::open(&dir.join("spool"), spool_opts)?;
    let started = Instant::now();
    for chunk in points.chunks(batch) {
        spool.append(chunk)?;
    }
    let spool_rate = opts.readings as f64 / started.elapsed().as_secs_f64();

    // The same bytes, prepared up front: only the append and the fsync are timed.
    let chunks: Vec<Vec<u8>> = points
        .chunks(batch)
        .map(|chunk| {
            let mut out = Vec::new();
            let mut payload = Vec::new();
            for p in chunk {
                payload.clear();
                p.encode(&mut payload);
                codec::encode_record(&payload, &mut out);
            }
            out
        })
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("raw"))?;
    let started = Instant::now();
    for c in &chunks {
        f.write_all(c)?;
        f.sync_data()?;
    }
    let raw_rate = opts.readings as f64 / started.elapsed().as_secs_f64();
    Ok((spool_rate, raw_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark at a tiny size, so that it cannot rot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_benchmark_runs_at_a_tiny_size() {
        let r = run(&BenchOptions {
            readings: 2000,
            batch_size: 500,
            append_batch: 100,
            url: None,
            timeout: Duration::from_secs(30),
            rounds: 1,
        })
        .await
        .unwrap();
        for rate in [
            r.writer_per_s,
            r.baseline_post_per_s,
            r.spool_append_per_s,
            r.raw_append_per_s,
        ] {
            assert!(rate.is_finite() && rate > 0.0, "{r:?}");
        }
        let table = r.table();
        assert!(
            table.contains("writer") && table.contains("raw file append"),
            "{table}"
        );
    }
}
