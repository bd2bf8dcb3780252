//! A real VictoriaMetrics (Debian's `victoria-metrics`, which accepts the InfluxDB v2 write
//! API) on a free loopback port in a temporary directory, for tests and the benchmark. Stopped
//! (SIGKILL) when dropped; `FIREGRID_VICTORIA_METRICS` overrides the binary's path.
//!
//! [`VictoriaMetrics::start`] runs it as packaged, which keeps *both* copies of a point written
//! twice (InfluxDB overwrites it): so a test that finds every reading exactly once shows that
//! the writer sent none twice. [`VictoriaMetrics::start_with_dedup`] adds
//! `-dedup.minScrapeInterval=1ms`, the setting docs/tsdb.md recommends for production, under
//! which a re-sent batch (the writer is at-least-once at one narrow boundary) is idempotent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::testing::{NotReady, free_port, wait_ready};

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
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    http: reqwest::Client,
    dedup: bool,
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

    async fn start_as(dedup: bool) -> Result<Self, VmError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "firegrid-vm-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut me = Self {
            child: None,
            port: free_port(),
            dedup,
            dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        me.spawn().await?;
        Ok(me)
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops it gracefully (SIGTERM: it flushes what it accepted to disk, as a real server
    /// being restarted would) and waits for it to exit, at most 10 s, then SIGKILL; its data
    /// stays.
    pub async fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let term = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        if term.is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.kill_now(c);
    }

    fn kill_now(&self, mut c: Child) {
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Starts it (again) on the same port with the same data.
    ///
    /// # Errors
    /// [`VmError`] if it cannot start.
    pub async fn restart(&mut self) -> Result<(), VmError> {
        self.stop().await;
        self.spawn().await
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("vm.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) -> Result<(), VmError> {
        let binary = std::env::var_os("FIREGRID_VICTORIA_METRICS")
            .map_or_else(|| PathBuf::from("/usr/bin/victoria-metrics"), PathBuf::from);
        if !binary.exists() {
            return Err(VmError::Missing(binary));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("vm.log"))?;
        let mut child = Command::new(&binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.join("data").display()
            ))
            .args([
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=WARN",
            ])
            .args(self.dedup.then_some("-dedup.minScrapeInterval=1ms"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let (http, health) = (self.http.clone(), format!("{}/health", self.url()));
        let ready = wait_ready(
            &mut child,
            Self::READY_TIMEOUT,
            Duration::from_millis(20),
            || {
                let (http, health) = (http.clone(), health.clone());
                async move {
                    match http.get(&health).send().await {
                        Ok(r) => r.status().is_success(),
                        Err(_) => false,
                    }
                }
            },
        )
        .await;
        match ready {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match e {
                    NotReady::Exited(s) => format!("exited: {s}"),
                    NotReady::Timeout(d) => format!("no answer within {d:?}"),
                    NotReady::Io(e) => e.to_string(),
                };
                Err(VmError::NotReady {
                    port: self.port,
                    why,
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
        if let Some(c) = self.child.take() {
            self.kill_now(c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
