//! A real VictoriaMetrics (Debian's `victoria-metrics`, which accepts the InfluxDB v2 write
//! API) on a free loopback port in a temporary directory, for tests and the benchmark. Killed
//! (SIGKILL) when dropped; `FIREGRID_VICTORIA_METRICS` overrides the binary's path.
//!
//! [`VictoriaMetrics::start`] runs it as packaged, which keeps *both* copies of a point written
//! twice (InfluxDB overwrites it): so a test that finds every reading exactly once shows that
//! the writer sent none twice. [`VictoriaMetrics::start_with_dedup`] adds
//! `-dedup.minScrapeInterval=1ms`, the setting docs/tsdb.md recommends for production, under
//! which a re-sent batch (the writer is at-least-once at one narrow boundary) is idempotent.
//! [`VictoriaMetrics::start_scraping`] makes it a scraper too: its own HTTP client, content
//! negotiation and text parser read a `/metrics`, as a production scraper would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::port::{ATTEMPTS, clashed, free_port};
use crate::process::{Process, temp_dir, wait_ready};

/// Why VictoriaMetrics did not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The binary is missing.
    #[error("{0} not found: install Debian's victoria-metrics package (scripts/test does)")]
    Missing(PathBuf),
    /// Files or the process could not be made.
    #[error("cannot start victoria-metrics: {0}")]
    Io(#[from] std::io::Error),
    /// It did not become ready.
    #[error("victoria-metrics on port {port} not ready ({why}); its log:\n{log}")]
    NotReady {
        /// Its port.
        port: u16,
        /// Exited or timed out.
        why: String,
        /// Its log.
        log: String,
    },
    /// A request to it failed.
    #[error("victoria-metrics request: {0}")]
    Http(#[from] reqwest::Error),
}

/// A VictoriaMetrics process. See the [module docs](self).
#[derive(Debug)]
pub struct VictoriaMetrics {
    process: Option<Process>,
    port: u16,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    dedup: bool,
    /// Whether `scrape.yaml` in `dir` is its `-promscrape.config`.
    scrape: bool,
    starts: u32,
}

/// One exported series: its labels and its points (ms, value), by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `__name__` and the tags.
    pub labels: BTreeMap<String, String>,
    /// (timestamp ms, value), as exported (in time order).
    pub points: Vec<(i64, f64)>,
}

impl VictoriaMetrics {
    /// How long start waits for `/health`.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

    /// Starts one on a free port in a new temporary directory.
    ///
    /// # Errors
    /// [`VmError`] if it cannot start.
    pub async fn start() -> Result<Self, VmError> {
        Self::start_as(false).await
    }

    /// Starts one with `-dedup.minScrapeInterval=1ms`: a point written twice is kept once.
    ///
    /// # Errors
    /// [`VmError`] if it cannot start.
    pub async fn start_with_dedup() -> Result<Self, VmError> {
        Self::start_as(true).await
    }

    /// Starts one that also scrapes `http://{target}/metrics` every `interval` as the job
    /// `job` (its series get `job` and `instance` labels; `up{job}` says whether the last
    /// scrape worked, `scrape_samples_scraped{job}` how many samples it parsed).
    ///
    /// # Errors
    /// [`VmError`] if it cannot start.
    pub async fn start_scraping(
        job: &str,
        target: SocketAddr,
        interval: Duration,
    ) -> Result<Self, VmError> {
        let dir = temp_dir("vm")?;
        std::fs::write(
            dir.path().join("scrape.yaml"),
            format!(
                "scrape_configs:\n  - job_name: {job}\n    scrape_interval: {}ms\n    \
                 metrics_path: /metrics\n    static_configs:\n      - targets: [\"{target}\"]\n",
                interval.as_millis()
            ),
        )?;
        Self::start_in(dir, false, true).await
    }

    async fn start_as(dedup: bool) -> Result<Self, VmError> {
        Self::start_in(temp_dir("vm")?, dedup, false).await
    }

    async fn start_in(dir: tempfile::TempDir, dedup: bool, scrape: bool) -> Result<Self, VmError> {
        let mut me = Self {
            process: None,
            port: 0,
            dedup,
            scrape,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            starts: 0,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            me.port = free_port();
            match me.spawn().await {
                Err(VmError::NotReady { ref log, .. }) if attempt < ATTEMPTS && clashed(log) => {}
                other => return other.map(|()| me),
            }
        }
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Stops it gracefully (SIGTERM: it flushes what it accepted to disk, as a real server
    /// being restarted would) and waits for it to exit (SIGKILL after 30 s); its data stays.
    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop_with("TERM").await;
        }
    }

    /// Starts it (again) on the same port with the same data.
    ///
    /// # Errors
    /// [`VmError`] if it cannot start.
    pub async fn restart(&mut self) -> Result<(), VmError> {
        self.stop().await;
        let deadline = Instant::now() + Self::READY_TIMEOUT;
        loop {
            match self.spawn().await {
                Err(VmError::NotReady { ref log, .. })
                    if Instant::now() < deadline && clashed(log) =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Its log so far (every start's).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("vm-{n}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    async fn spawn(&mut self) -> Result<(), VmError> {
        let binary = std::env::var_os("FIREGRID_VICTORIA_METRICS")
            .map_or_else(|| PathBuf::from("/usr/bin/victoria-metrics"), PathBuf::from);
        if !binary.exists() {
            return Err(VmError::Missing(binary));
        }
        self.starts += 1;
        let mut process = Process::spawn(
            Command::new(&binary)
                .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
                .arg(format!(
                    "-storageDataPath={}",
                    self.dir.path().join("data").display()
                ))
                .args([
                    "-retentionPeriod=100y",
                    "-search.latencyOffset=0s",
                    "-search.disableCache",
                    "-loggerLevel=WARN",
                ])
                .args(self.dedup.then_some("-dedup.minScrapeInterval=1ms"))
                .args(self.scrape.then(|| {
                    format!(
                        "-promscrape.config={}",
                        self.dir.path().join("scrape.yaml").display()
                    )
                })),
            &self.dir.path().join(format!("vm-{}.log", self.starts)),
        )?;
        let (http, health) = (self.http.clone(), format!("{}/health", self.url()));
        let ready = wait_ready(&mut process, Self::READY_TIMEOUT, || {
            let (http, health) = (http.clone(), health.clone());
            async move {
                match http.get(&health).send().await {
                    Ok(r) => r.status().is_success(),
                    Err(_) => false,
                }
            }
        })
        .await;
        match ready {
            Ok(()) => {
                self.process = Some(process);
                Ok(())
            }
            Err(why) => {
                process.kill9();
                Err(VmError::NotReady {
                    port: self.port,
                    why: why.to_string(),
                    log: self.log(),
                })
            }
        }
    }

    /// Every series whose name matches the regex `name_re`, after a forced flush.
    ///
    /// # Errors
    /// [`VmError::Http`] if a request fails.
    pub async fn export(&self, name_re: &str) -> Result<Vec<Series>, VmError> {
        self.http
            .get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await?
            .error_for_status()?;
        let text = self
            .http
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[("match[]", format!("{{__name__=~\"{name_re}\"}}"))])
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text.lines().filter_map(parse_export_line).collect())
    }

    /// Polls [`export`](Self::export) every 100 ms until `done` holds for the series, or
    /// `timeout`; returns the last export.
    ///
    /// # Errors
    /// [`VmError::Http`] if a request fails.
    pub async fn export_until(
        &self,
        name_re: &str,
        timeout: Duration,
        mut done: impl FnMut(&[Series]) -> bool,
    ) -> Result<Vec<Series>, VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            let series = self.export(name_re).await?;
            if done(&series) || Instant::now() >= deadline {
                return Ok(series);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The number of points over `series`.
pub fn point_count(series: &[Series]) -> usize {
    series.iter().map(|s| s.points.len()).sum()
}

fn parse_export_line(line: &str) -> Option<Series> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let labels = v
        .get("metric")?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let values = v.get("values")?.as_array()?;
    let times = v.get("timestamps")?.as_array()?;
    let points = times
        .iter()
        .zip(values)
        .filter_map(|(t, v)| Some((t.as_i64()?, v.as_f64()?)))
        .collect();
    Some(Series { labels, points })
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }
}
