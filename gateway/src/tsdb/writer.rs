//! The writer: reads batches from the spool, POSTs them to the InfluxDB v2 write API, and
//! commits, retries or dead-letters each by the server's answer (`super::retry`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::{Token, TsdbConfig};
use super::retry::{self, Outcome};
use super::spool::{Batch, Spool};
use super::{TsdbStats, line};
use crate::clock::now_ms;

/// The HTTP side: one client, the write URL, the token.
#[derive(Clone)]
pub struct WriteApi {
    client: reqwest::Client,
    url: String,
    org: String,
    bucket: String,
    token: Option<Token>,
    gzip: bool,
}

impl std::fmt::Debug for WriteApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteApi")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token)
            .finish()
    }
}

impl WriteApi {
    /// The write API of `config` (every request under `config.timeout_ms`).
    ///
    /// # Errors
    /// The token cannot be read, or the HTTP client cannot be built: a sentence naming the key.
    pub fn new(config: &TsdbConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .build()
            .map_err(|e| format!("[tsdb] HTTP client: {e}"))?;
        Ok(Self {
            client,
            url: format!("{}/api/v2/write", config.url.trim_end_matches('/')),
            org: config.org.clone(),
            bucket: config.bucket.clone(),
            token: config.token()?,
            gzip: config.gzip,
        })
    }

    /// POSTs line protocol; the outcome for its batch. A transport failure (refused, timeout)
    /// is a [`Outcome::Retry`], `unconfirmed` when the request had gone out (the server may
    /// hold the batch).
    pub async fn write(&self, line_protocol: &[u8]) -> Outcome {
        let mut req = self
            .client
            .post(&self.url)
            .query(&[
                ("org", self.org.as_str()),
                ("bucket", self.bucket.as_str()),
                ("precision", "ns"),
            ])
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Some(t) = &self.token {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Token {}", t.0));
        }
        req = if self.gzip {
            req.header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(gzip(line_protocol))
        } else {
            req.body(line_protocol.to_vec())
        };
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    retry_after: None,
                    reason: format!("no answer from {}: {}", self.url, error_chain(&e)),
                    unconfirmed: !e.is_connect(),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        retry::classify(status, retry_after.as_deref(), &body, SystemTime::now())
    }
}

/// `e` and its sources, `: `-separated (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// gzip of `bytes` (fast level: the body is small and the CPU is shared with the alarms).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The writer task's settings.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Readings per POST at most.
    pub batch_size: usize,
    /// A smaller batch goes once its oldest reading waited this long.
    pub flush_interval: Duration,
    /// Longest backoff between retries.
    pub retry_max: Duration,
    /// The dead-letter file (line protocol, with `#` comment lines giving each reason).
    pub dead_letter: PathBuf,
}

/// Runs the writer until `cancel`: batches from `spool` to `api`. `spooled` is notified after
/// every append.
///
/// # Cancel safety
/// Cancelling stops it between attempts or during a wait; a batch whose POST was cut off stays
/// in the spool (at least once), and nothing is lost.
pub async fn run(
    api: WriteApi,
    opts: WriterOptions,
    spool: Arc<Mutex<Spool>>,
    spooled: Arc<Notify>,
    stats: Arc<TsdbStats>,
    cancel: CancellationToken,
) {
    let mut limit = opts.batch_size;
    let mut attempt = 0u32;
    let mut body = Vec::new();
    loop {
        if !wait_for_batch(&opts, limit, &spooled, &stats, &cancel).await {
            return;
        }
        let Some(read) = with_spool(&spool, &stats, move |s| s.read_batch(limit)).await else {
            // The spool cannot be read (logged, in the status): do not spin on it.
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        };
        let Some(batch) = read else {
            continue;
        };
        body.clear();
        line::encode(&batch.points, &mut body);
        let outcome = tokio::select! {
            () = cancel.cancelled() => {
                with_spool(&spool, &stats, |s| Ok(s.release())).await;
                return;
            }
            o = api.write(&body) => o,
        };
        match outcome {
            Outcome::Written => {
                let n = batch.points.len() as u64;
                commit(&spool, &stats, batch, move |st| st.written(n)).await;
                attempt = 0;
                limit = opts.batch_size;
            }
            Outcome::Reject { status, reason } => {
                tracing::error!(status, %reason, readings = batch.points.len(), "tsdb: batch refused; dead-lettered");
                if let Err(e) = dead_letter(&opts.dead_letter, status, &reason, &body) {
                    tracing::error!("tsdb: cannot write the dead-letter file: {e}");
                }
                let n = batch.points.len() as u64;
                let reason = format!("HTTP {status}: {reason}");
                commit(&spool, &stats, batch, move |st| st.dead_lettered(n, reason)).await;
                attempt = 0;
            }
            Outcome::TooLarge if batch.points.len() > 1 => {
                with_spool(&spool, &stats, |s| Ok(s.release())).await;
                limit = (batch.points.len() / 2).max(1);
                tracing::warn!(limit, "tsdb: batch too large (413); halving");
            }
            Outcome::TooLarge => {
                let reason = "HTTP 413: a single reading is too large";
                if let Err(e) = dead_letter(&opts.dead_letter, 413, reason, &body) {
                    tracing::error!("tsdb: cannot write the dead-letter file: {e}");
                }
                commit(&spool, &stats, batch, move |st| {
                    st.dead_lettered(1, reason.to_string());
                })
                .await;
            }
            Outcome::Retry {
                retry_after,
                reason,
                unconfirmed,
            } => {
                if unconfirmed {
                    // Said every time: a duplicate in a server without deduplication is
                    // explained by this line (the tests count them from it).
                    tracing::warn!(
                        readings = batch.points.len(),
                        %reason,
                        "tsdb: batch unconfirmed, sent again (the server may hold it already)"
                    );
                }
                with_spool(&spool, &stats, |s| Ok(s.release())).await;
                attempt = attempt.saturating_add(1);
                let delay =
                    retry::next_delay(attempt, retry_after, opts.retry_max, fastrand::f64());
                if attempt == 1 || attempt.is_multiple_of(20) {
                    tracing::warn!(attempt, ?delay, %reason, "tsdb: write failed; retrying");
                }
                stats.failed(reason);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Waits until a batch is due: `limit` readings pending, or some pending for the flush
/// interval. `false` if cancelled.
async fn wait_for_batch(
    opts: &WriterOptions,
    limit: usize,
    spooled: &Notify,
    stats: &TsdbStats,
    cancel: &CancellationToken,
) -> bool {
    let mut since: Option<Instant> = None;
    loop {
        let pending = stats.pending();
        if pending >= limit as u64 {
            return true;
        }
        let wait = if pending > 0 {
            let since = *since.get_or_insert_with(Instant::now);
            match opts.flush_interval.checked_sub(since.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return true,
            }
        } else {
            since = None;
            Duration::from_secs(3600)
        };
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = spooled.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Commits `batch` and counts it by `count` in the same step as the spool's counts are
/// updated, so that no reader of the stats sees it neither pending nor counted.
async fn commit(
    spool: &Arc<Mutex<Spool>>,
    stats: &Arc<TsdbStats>,
    batch: Batch,
    count: impl FnOnce(&TsdbStats) + Send + 'static,
) {
    let (end, st) = (batch.end, stats.clone());
    with_spool(spool, stats, move |s| {
        count(&st);
        s.commit(end)
    })
    .await;
}

/// Runs `f` on the spool on a blocking thread, then copies its counts (pending, bytes, dropped
/// by the bound) into `stats`. `None` if `f` failed (logged).
async fn with_spool<T, F>(spool: &Arc<Mutex<Spool>>, stats: &Arc<TsdbStats>, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Spool) -> std::io::Result<T> + Send + 'static,
{
    let (spool, counts) = (spool.clone(), stats.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let mut s = spool.lock().unwrap_or_else(PoisonError::into_inner);
        let r = f(&mut s);
        counts.set_spool(s.counts());
        r
    })
    .await;
    match joined {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!("tsdb spool: {e}");
            stats.set_error(format!("spool: {e}"));
            None
        }
        Err(e) => {
            tracing::error!("tsdb spool task: {e}");
            None
        }
    }
}

/// Appends a refused batch to the dead-letter file: a comment line with the time, status and
/// reason, then its line protocol (replayable with `influx write` after fixing).
fn dead_letter(
    path: &std::path::Path,
    status: u16,
    reason: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let reason = reason.replace(['\n', '\r'], " ");
    let mut out = format!("# at_ms={} status={status} reason={reason}\n", now_ms()).into_bytes();
    out.extend_from_slice(body);
    f.write_all(&out)?;
    f.sync_data()
}
