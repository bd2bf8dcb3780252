//! Readings into a time-series database (the InfluxDB v2 write API), through a disk spool, so
//! that an outage of the database — hours, not seconds — loses nothing and never slows an alarm.
//!
//! ```text
//! pipeline ──try_send──▶ spool thread ──append──▶ spool (disk) ──read──▶ writer ──POST──▶ InfluxDB
//!  (never waits;          (fsync policy)           segments, cursor        retry, backoff,   or VictoriaMetrics
//!   full: counted)                                  bound: oldest dropped   dead letter
//! ```
//!
//! Alarms never pass through here: they live in the journal. docs/tsdb.md has the schema, the
//! queries, the spool format and what an operator sees during an outage.
//!
//! # Layout
//! - [`point`]: one reading of one channel with its tags; its binary form in the spool.
//! - [`codec`]: the spool's segment format (pure, property-tested).
//! - [`spool`]: segment files, cursor, bound.
//! - [`line`](mod@line): the schema, as line protocol.
//! - [`retry`]: classifying answers and backoff (pure).
//! - [`writer`]: HTTP, the writer task, the dead-letter file.
//! - [`config`]: the `tsdb` section of the configuration.

pub mod codec;
pub mod config;
pub mod line;
pub mod point;
pub mod retry;
pub mod spool;
pub mod writer;

#[cfg(any(test, feature = "bench"))]
pub mod bench;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use firegrid_protocols::DeviceId;

pub use config::{Token, TsdbConfig};
pub use point::{Point, Tags};
pub use spool::{Fsync, Spool, SpoolOptions};

use crate::store::Sample;

/// How many handed-over sample lists may wait for the spool thread; more are counted as
/// dropped, never waited for.
pub const QUEUE_CAPACITY: usize = 1024;

/// The spool directory and dead-letter file, under the data directory.
pub const SPOOL_DIR: &str = "tsdb-spool";
/// The dead-letter file, under the data directory.
pub const DEAD_LETTER_FILE: &str = "tsdb-dead-letter.lp";

/// The writer's state for `/metrics` and the status endpoint. Lives in
/// [`Metrics`](crate::metrics::Metrics) (all zero while the writer is off).
#[derive(Debug, Default)]
pub struct TsdbStats {
    enabled: AtomicU64,
    spool_bytes: AtomicU64,
    pending: AtomicU64,
    spool_dropped: AtomicU64,
    queue_dropped: AtomicU64,
    spooled: AtomicU64,
    written: AtomicU64,
    dead_lettered: AtomicU64,
    batches: [AtomicU64; 3],
    last_success_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of [`TsdbStats`] (the `tsdb` block of `/healthz`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TsdbStatus {
    /// Whether the writer runs.
    pub enabled: bool,
    /// Readings in the spool not yet confirmed by the server.
    pub pending_readings: u64,
    /// Bytes of the spool on disk.
    pub spool_bytes: u64,
    /// Readings the spool's bound dropped (the oldest first) since the gateway started.
    pub dropped_readings: u64,
    /// Readings not spooled because the spool thread's queue was full (or a write failed).
    pub queue_dropped_readings: u64,
    /// Readings appended to the spool since the gateway started.
    pub spooled_readings: u64,
    /// Readings the server confirmed.
    pub written_readings: u64,
    /// Readings the server refused, now in the dead-letter file.
    pub dead_lettered_readings: u64,
    /// When the server last confirmed a batch, ms since the Unix epoch.
    pub last_success_ms: Option<u64>,
    /// The last failure (cleared by the next success).
    pub last_error: Option<String>,
}

const OK: usize = 0;
const RETRY: usize = 1;
const DEAD: usize = 2;

impl TsdbStats {
    /// Marks the writer as running (its metrics and status block appear).
    pub fn set_enabled(&self) {
        self.enabled.store(1, Ordering::Relaxed);
    }

    /// Readings pending in the spool.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// The spool's counts, copied after each spool operation.
    pub fn set_spool(&self, c: spool::SpoolCounts) {
        self.spool_bytes.store(c.bytes, Ordering::Relaxed);
        self.pending.store(c.pending, Ordering::Relaxed);
        self.spool_dropped.store(c.dropped, Ordering::Relaxed);
    }

    /// A batch of `n` readings was written.
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
        self.batches[OK].fetch_add(1, Ordering::Relaxed);
        self.last_success_ms
            .store(crate::clock::now_ms(), Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A batch of `n` readings was refused and dead-lettered.
    pub fn dead_lettered(&self, n: u64, reason: String) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
        self.batches[DEAD].fetch_add(1, Ordering::Relaxed);
        self.set_error(reason);
    }

    /// An attempt failed; it will be retried.
    pub fn failed(&self, reason: String) {
        self.batches[RETRY].fetch_add(1, Ordering::Relaxed);
        self.set_error(reason);
    }

    /// Records the last error.
    pub fn set_error(&self, reason: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// The snapshot.
    pub fn status(&self) -> TsdbStatus {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let last = load(&self.last_success_ms);
        TsdbStatus {
            enabled: load(&self.enabled) != 0,
            pending_readings: load(&self.pending),
            spool_bytes: load(&self.spool_bytes),
            dropped_readings: load(&self.spool_dropped),
            queue_dropped_readings: load(&self.queue_dropped),
            spooled_readings: load(&self.spooled),
            written_readings: load(&self.written),
            dead_lettered_readings: load(&self.dead_lettered),
            last_success_ms: (last != 0).then_some(last),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

impl prometheus_client::collector::Collector for TsdbStats {
    /// The series; nothing while the writer is off.
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        use crate::metrics::collect::{as_gauge, counter, counters, gauge};
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        if load(&self.enabled) == 0 {
            return Ok(());
        }
        let e = &mut encoder;
        gauge(
            e,
            "tsdb_spool_bytes",
            "Bytes of the TSDB disk spool.",
            as_gauge(load(&self.spool_bytes)),
        )?;
        gauge(
            e,
            "tsdb_spool_pending_readings",
            "Readings in the TSDB spool not yet confirmed by the server.",
            as_gauge(load(&self.pending)),
        )?;
        counter(
            e,
            "tsdb_spool_dropped_readings_total",
            "Readings dropped (oldest first) because the TSDB spool reached its size bound.",
            load(&self.spool_dropped),
        )?;
        counter(
            e,
            "tsdb_queue_dropped_readings_total",
            "Readings not spooled because the spool thread's queue was full or a spool write failed.",
            load(&self.queue_dropped),
        )?;
        counter(
            e,
            "tsdb_spooled_readings_total",
            "Readings appended to the TSDB spool.",
            load(&self.spooled),
        )?;
        counter(
            e,
            "tsdb_written_readings_total",
            "Readings the TSDB confirmed.",
            load(&self.written),
        )?;
        counter(
            e,
            "tsdb_dead_lettered_readings_total",
            "Readings the TSDB refused (4xx), written to the dead-letter file.",
            load(&self.dead_lettered),
        )?;
        counters(
            e,
            "tsdb_batches_total",
            "TSDB write attempts, by result.",
            ["ok", "retry", "dead_letter"]
                .iter()
                .zip(&self.batches)
                .map(|(result, n)| ([("result", *result)], load(n))),
        )?;
        gauge(
            e,
            "tsdb_last_success_timestamp_seconds",
            "When the TSDB last confirmed a batch (0: never).",
            as_gauge(load(&self.last_success_ms) / 1000),
        )
    }
}

/// The pipeline's end of the spool: hands readings over without ever waiting.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: SyncSender<Vec<Point>>,
    stats: Arc<TsdbStats>,
}

impl Feed {
    /// Hands the readings of `samples` to the spool thread, tagged by `tags_of`; if its queue
    /// is full they are counted as dropped (`firegrid_tsdb_queue_dropped_readings_total`).
    pub fn offer(&self, samples: &[Sample], tags_of: impl Fn(&DeviceId) -> Tags) {
        let mut points = Vec::new();
        for s in samples {
            Point::from_sample(s, &tags_of(&s.device), &mut points);
        }
        self.offer_points(points);
    }

    /// Hands `points` to the spool thread; if its queue is full they are counted as dropped.
    pub fn offer_points(&self, points: Vec<Point>) {
        if points.is_empty() {
            return;
        }
        let n = points.len() as u64;
        match self.tx.try_send(points) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.queue_dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Why the TSDB writer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// The configuration cannot be used (the token cannot be read, …).
    #[error("{0}")]
    Config(String),
    /// The spool cannot be opened.
    #[error("TSDB spool {path}: {source}")]
    Spool {
        /// Its directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The running spool thread and writer task.
#[derive(Debug)]
pub struct Tsdb {
    spool_thread: std::thread::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Tsdb {
    /// Opens the spool under `data_dir` and starts the spool thread and the writer; the writer
    /// stops on `cancel`, the spool thread once every [`Feed`] is dropped.
    ///
    /// # Errors
    /// [`TsdbError`] if the token cannot be read or the spool cannot be opened.
    pub fn start(
        config: &TsdbConfig,
        data_dir: &Path,
        stats: Arc<TsdbStats>,
        cancel: CancellationToken,
    ) -> Result<(Self, Feed), TsdbError> {
        let api = writer::WriteApi::new(config).map_err(TsdbError::Config)?;
        let dir = data_dir.join(SPOOL_DIR);
        let (spool, recovery) =
            Spool::open(&dir, config.spool_options()).map_err(|source| TsdbError::Spool {
                path: dir.clone(),
                source,
            })?;
        if recovery.repaired_segments > 0 || recovery.cursor_lost {
            tracing::warn!(?recovery, "tsdb spool recovered after an unclean stop");
        }
        tracing::info!(
            url = %config.url,
            pending = recovery.pending,
            "tsdb writer starting"
        );
        stats.set_enabled();
        stats.set_spool(spool.counts());
        let spool = Arc::new(Mutex::new(spool));
        let spooled = Arc::new(Notify::new());
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let spool_thread = {
            let (spool, stats, spooled) = (spool.clone(), stats.clone(), spooled.clone());
            let policy = (
                config.fsync,
                Duration::from_millis(config.fsync_interval_ms),
            );
            std::thread::Builder::new()
                .name("tsdb-spool".into())
                .spawn(move || spool_thread(&rx, &spool, &stats, &spooled, policy))
                .map_err(|source| TsdbError::Spool {
                    path: dir.clone(),
                    source,
                })?
        };
        let opts = writer::WriterOptions {
            batch_size: config.batch_size,
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            dead_letter: data_dir.join(DEAD_LETTER_FILE),
        };
        let writer = tokio::spawn(writer::run(
            api,
            opts,
            spool,
            spooled,
            stats.clone(),
            cancel,
        ));
        Ok((
            Self {
                spool_thread,
                writer,
            },
            Feed { tx, stats },
        ))
    }

    /// Waits for the writer (cancelled) and the spool thread (every feed dropped) to end.
    pub async fn stopped(self) {
        let _ = self.writer.await;
        let _ = tokio::task::spawn_blocking(move || self.spool_thread.join()).await;
    }
}

/// Appends what the pipeline hands over; syncs per the policy; ends (synced) when every feed
/// is gone.
fn spool_thread(
    rx: &std::sync::mpsc::Receiver<Vec<Point>>,
    spool: &Mutex<Spool>,
    stats: &TsdbStats,
    spooled: &Notify,
    (fsync, interval): (Fsync, Duration),
) {
    let mut last_sync = Instant::now();
    loop {
        let timeout = match fsync {
            Fsync::Interval => interval.saturating_sub(last_sync.elapsed()),
            Fsync::Always | Fsync::Never => Duration::from_secs(3600),
        };
        let mut stop = false;
        match rx.recv_timeout(timeout) {
            Ok(mut points) => {
                while points.len() < 50_000
                    && let Ok(more) = rx.try_recv()
                {
                    points.extend(more);
                }
                let n = points.len() as u64;
                let mut s = spool.lock().unwrap_or_else(PoisonError::into_inner);
                match s.append(&points) {
                    Ok(_) => {
                        stats.spooled.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!("tsdb spool: {n} readings not spooled: {e}");
                        stats.queue_dropped.fetch_add(n, Ordering::Relaxed);
                        stats.set_error(format!("spool: {e}"));
                    }
                }
                stats.set_spool(s.counts());
                drop(s);
                spooled.notify_one();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        if stop || (fsync == Fsync::Interval && last_sync.elapsed() >= interval) {
            let mut s = spool.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = s.sync() {
                tracing::error!("tsdb spool: fsync failed: {e}");
            }
            last_sync = Instant::now();
        }
        if stop {
            return;
        }
    }
}

/// Tests the connection for `firegrid check-config`: the token can be read, and the write API
/// answers an empty write without refusing the credentials or the bucket.
///
/// # Errors
/// What is wrong, in a sentence for the operator (never the token).
pub async fn check_connection(config: &TsdbConfig) -> Result<String, String> {
    let api = writer::WriteApi::new(config)?;
    match api.write(b"").await {
        retry::Outcome::Written => Ok(format!("{}: the write API accepts writes", config.url)),
        // Reachable, credentials and bucket accepted; only the empty body was refused.
        retry::Outcome::Reject { status: 400, .. } => {
            Ok(format!("{}: the write API answers", config.url))
        }
        retry::Outcome::Reject { status, reason } => Err(format!(
            "[tsdb] {}: the write API answered {status}: {reason}",
            config.url
        )),
        retry::Outcome::Retry { reason, .. } => Err(format!(
            "[tsdb] {}: {reason} (check url, org, bucket and the token)",
            config.url
        )),
        retry::Outcome::TooLarge => Err(format!("[tsdb] {}: answered 413", config.url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn metrics_appear_once_the_writer_runs() {
        let m = Metrics::new();
        assert!(!m.render().contains("tsdb"));
        let t = m.tsdb();
        t.set_enabled();
        t.set_spool(spool::SpoolCounts {
            bytes: 4096,
            pending: 70,
            dropped: 3,
        });
        t.written(5);
        t.failed("HTTP 503: restarting".into());
        let text = m.render();
        for line in [
            "# TYPE firegrid_tsdb_spool_bytes gauge\nfiregrid_tsdb_spool_bytes 4096\n",
            "firegrid_tsdb_spool_pending_readings 70\n",
            "# TYPE firegrid_tsdb_spool_dropped_readings_total counter\nfiregrid_tsdb_spool_dropped_readings_total 3\n",
            "firegrid_tsdb_written_readings_total 5\n",
            "# TYPE firegrid_tsdb_batches_total counter\nfiregrid_tsdb_batches_total{result=\"ok\"} 1\n\
             firegrid_tsdb_batches_total{result=\"retry\"} 1\nfiregrid_tsdb_batches_total{result=\"dead_letter\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let status = t.status();
        assert_eq!(status.last_error.as_deref(), Some("HTTP 503: restarting"));
        assert!(status.last_success_ms.is_some());
    }
}
