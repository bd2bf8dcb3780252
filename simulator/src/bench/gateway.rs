//! The gateway under test: the `firegrid` binary as a child process against the benchmark's
//! Mosquitto, its HTTP API (registration) and `/metrics`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firegrid_testkit::firegrid::{Broker, Firegrid, GatewayConfig, Ready};

use serde::Serialize;
use serde_json::{Value, json};

use super::memory::{self, Rss};
use super::{BenchError, progress};

/// Timeout of one API call (an import of 5000 devices included).
const API_TIMEOUT: Duration = Duration::from_secs(120);

/// Devices per `POST /api/v1/device-imports` (the gateway takes at most 5000).
pub const IMPORT_CHUNK: usize = 5000;

/// The benchmark devices' heartbeat interval, s: the gateway opens an offline episode after
/// three intervals without a message. The ingest search pauses the load between its steps and
/// sends to a part of the fleet only; with a city (a million devices, registered over minutes)
/// the default minute would put devices offline that the benchmark merely has not reached again,
/// and a flood of offline alerts is not what it measures (they are counted: "offline episodes").
pub const HEARTBEAT_S: u32 = 900;

/// The grid cell every benchmark device is in: its alerts go to `firegrid/v1/alert/bench-grid`.
pub const GRID: &str = "bench-grid";

/// The `firegrid` binary: `explicit`, or `firegrid` next to this executable (or one directory
/// up, for a test executable in `target/*/deps/`).
///
/// # Errors
/// [`BenchError::GatewayMissing`] with how to build it.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, BenchError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(BenchError::GatewayMissing(p.to_owned()))
        };
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join("firegrid"), dir.join("..").join("firegrid")];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| BenchError::GatewayMissing(candidates[0].clone()))
}

/// A running `firegrid run` with a temporary data directory: the test kit's launcher
/// ([`Firegrid`], the one launcher of the binary), with the benchmark's API client. Killed on
/// drop.
#[derive(Debug)]
pub struct Gateway {
    firegrid: Option<Firegrid>,
    dir: tempfile::TempDir,
    api: String,
    http: reqwest::Client,
}

impl Gateway {
    /// Starts the gateway against the broker on `mqtt_port` and waits until `/healthz` says
    /// 200 (broker connected, store open), checking all the while that it still runs.
    ///
    /// # Errors
    /// [`BenchError::Gateway`] with its log when it exits or does not become healthy.
    pub async fn start(binary: &Path, mqtt_port: u16) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("firegrid-bench-")
            .tempdir()?;
        let broker = std::net::SocketAddr::from(([127, 0, 0, 1], mqtt_port));
        let mut config = GatewayConfig::new(&dir.path().join("data"), Broker::External(broker));
        config.set("broker.client_id", "bench-gateway");
        let firegrid = Firegrid::try_start(
            binary,
            config,
            dir.path(),
            &[("RUST_LOG", "warn")],
            Ready::Healthy,
        )
        .await
        .map_err(|e| BenchError::Gateway {
            what: e.what,
            log: e.log,
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", firegrid.token))
                .map_err(|e| BenchError::Api(format!("the admin token: {e}")))?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let http = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .default_headers(headers)
            .build()
            .map_err(|e| BenchError::Api(e.to_string()))?;
        Ok(Self {
            api: format!("http://{}", firegrid.api_addr),
            firegrid: Some(firegrid),
            dir,
            http,
        })
    }

    fn failed(&self, what: &str) -> BenchError {
        BenchError::Gateway {
            what: what.to_string(),
            log: self.log_tail(),
        }
    }

    /// The last 40 lines of its log.
    pub fn log_tail(&self) -> String {
        let log = self
            .firegrid
            .as_ref()
            .map(Firegrid::log)
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Its memory now.
    ///
    /// # Errors
    /// [`BenchError::Gateway`] if it is no longer running.
    pub fn rss(&mut self) -> Result<Rss, BenchError> {
        let Some(firegrid) = self.firegrid.as_mut() else {
            return Err(self.failed("was stopped"));
        };
        if let Some(status) = firegrid.process.exited() {
            return Err(self.failed(&format!("exited ({status})")));
        }
        Ok(memory::rss(firegrid.process.pid()))
    }

    /// Its process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.firegrid.as_ref().map_or(0, |f| f.process.pid())
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut f) = self.firegrid.take() {
            let _ = f.process.kill9();
        }
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `POST path` with a JSON body; the JSON answer of a 2xx.
    ///
    /// # Errors
    /// [`BenchError::Api`] with the status and the gateway's error message.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, BenchError> {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .map_err(|e| BenchError::Api(format!("POST {path}: {e}")))?;
        let status = r.status();
        let text = r
            .text()
            .await
            .map_err(|e| BenchError::Api(format!("POST {path}: {e}")))?;
        if !status.is_success() {
            return Err(BenchError::Api(format!("POST {path}: {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `/metrics`, as series name (with labels) → value.
    ///
    /// # Errors
    /// [`BenchError::Api`].
    pub async fn metrics(&self) -> Result<Metrics, BenchError> {
        let text = self
            .http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| BenchError::Api(format!("GET /metrics: {e}")))?
            .text()
            .await
            .map_err(|e| BenchError::Api(format!("GET /metrics: {e}")))?;
        Ok(Metrics::parse(&text))
    }

    /// Creates the benchmark's street and grid cell and a site in it; its id.
    ///
    /// # Errors
    /// [`BenchError::Api`].
    pub async fn create_site(&self) -> Result<i64, BenchError> {
        self.post(
            "/api/v1/areas",
            &json!({"id": "bench-street", "level": "street", "name": "Bench street"}),
        )
        .await?;
        self.post(
            "/api/v1/areas",
            &json!({"id": GRID, "level": "grid", "name": "Bench grid", "parent_id": "bench-street"}),
        )
        .await?;
        let site = self
            .post(
                "/api/v1/sites",
                &json!({"name": "Bench block", "address": "1 Bench Rd", "area_id": GRID}),
            )
            .await?;
        site["id"]
            .as_i64()
            .ok_or_else(|| BenchError::Api(format!("no site id in {site}")))
    }

    /// Registers `ids` in service at `site`: the first `single` one POST each (over a
    /// keep-alive connection, one after the other), the rest by bulk import.
    ///
    /// # Errors
    /// [`BenchError::Api`].
    pub async fn register(
        &self,
        ids: &[&str],
        site: i64,
        single: usize,
    ) -> Result<Registration, BenchError> {
        let device = |id: &str| {
            json!({
                "id": id, "kind": "electrical_fire_monitor", "state": "in_service",
                "site_id": site, "grid_id": GRID,
                "config": {"heartbeat_interval_s": HEARTBEAT_S, "channels": [
                    {"ch": 0, "residual_ma": 300}, {"ch": 1, "temp_dc": 850},
                    {"ch": 2, "temp_dc": 850}, {"ch": 3, "temp_dc": 850}, {"ch": 4, "temp_dc": 850}
                ]}
            })
        };
        let single = single.min(ids.len());
        let started = Instant::now();
        for id in &ids[..single] {
            self.post("/api/v1/devices", &device(id)).await?;
        }
        let single_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for chunk in ids[single..].chunks(IMPORT_CHUNK) {
            let body = Value::Array(chunk.iter().map(|id| device(id)).collect());
            self.post("/api/v1/device-imports", &body).await?;
        }
        let import_s = started.elapsed().as_secs_f64();
        let imported = ids.len() - single;
        let r = Registration {
            single_posts: single,
            single_post_per_s: rate(single, single_s),
            imported,
            import_per_s: rate(imported, import_s),
            total_s: single_s + import_s,
        };
        progress(&format!(
            "registered {} devices in {:.1} s: {:.0}/s by single POSTs, {:.0}/s by import",
            ids.len(),
            r.total_s,
            r.single_post_per_s,
            r.import_per_s
        ));
        Ok(r)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

fn rate(n: usize, s: f64) -> f64 {
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

/// How registration went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Registration {
    /// Devices registered by one `POST /api/v1/devices` each.
    pub single_posts: usize,
    /// Their rate, devices per second.
    pub single_post_per_s: f64,
    /// Devices registered by `POST /api/v1/device-imports` (5000 per request).
    pub imported: usize,
    /// Their rate, devices per second.
    pub import_per_s: f64,
    /// All of it, s.
    pub total_s: f64,
}

/// A scrape of `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    /// Parses the Prometheus text format (series → value; comments skipped).
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// One series, e.g. `firegrid_queue_depth{queue="ingest"}`; 0 when absent.
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// Telemetry messages taken at ingest.
    pub fn telemetry(&self) -> u64 {
        self.get("firegrid_ingest_messages_total{kind=\"telemetry\"}") as u64
    }

    /// Reading rows stored.
    pub fn stored(&self) -> u64 {
        self.get("firegrid_readings_stored_total") as u64
    }

    /// Reading rows dropped because the readings queue was full.
    pub fn dropped(&self) -> u64 {
        self.get("firegrid_readings_dropped_total") as u64
    }

    /// The deepest of the pipeline's queues (ingest, journal, readings, notify) now: each has
    /// its own bound, so a sum would say nothing about whether one was full.
    pub fn deepest_queue(&self) -> u64 {
        ["ingest", "journal", "readings", "notify"]
            .iter()
            .map(|q| self.get(&format!("firegrid_queue_depth{{queue=\"{q}\"}}")) as u64)
            .max()
            .unwrap_or(0)
    }

    /// The mean of histogram `name` (seconds), in ms; 0 without observations.
    pub fn mean_ms(&self, name: &str) -> f64 {
        let count = self.get(&format!("{name}_count"));
        if count > 0.0 {
            self.get(&format!("{name}_sum")) / count * 1000.0
        } else {
            0.0
        }
    }

    /// Messages refused for `reason`.
    pub fn refused(&self, reason: &str) -> u64 {
        self.get(&format!("firegrid_refusals_total{{reason=\"{reason}\"}}")) as u64
    }

    /// Episodes opened of `category`.
    pub fn episodes(&self, category: &str) -> u64 {
        self.get(&format!(
            "firegrid_episodes_opened_total{{category=\"{category}\"}}"
        )) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_is_read_by_series() {
        let m = Metrics::parse(
            "# HELP x y\nfiregrid_ingest_messages_total{kind=\"telemetry\"} 12\n\
             firegrid_queue_depth{queue=\"ingest\"} 3\nfiregrid_queue_depth{queue=\"readings\"} 4\n\
             firegrid_readings_stored_total 60\n",
        );
        assert_eq!(m.telemetry(), 12);
        assert_eq!(m.deepest_queue(), 4);
        assert_eq!(m.stored(), 60);
        assert_eq!(m.dropped(), 0);
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let e = locate(Some(Path::new("/nonexistent/firegrid")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cargo build --release -p firegrid-gateway"),
            "{e}"
        );
    }
}
