//! The gateway's metrics, rendered in the Prometheus text format (version 0.0.4) at `/metrics`.
//!
//! A small fixed registry, no metrics framework: every series is an atomic the pipeline bumps
//! or sets, and [`Metrics::render`] writes them out with their `# HELP` and `# TYPE` lines.
//! [`Metrics`] is `Send + Sync`; share it as an `Arc<Metrics>` between the pipeline and the
//! API.
//!
//! | Metric | Type | Labels | Set by |
//! | --- | --- | --- | --- |
//! | `firegrid_ingest_messages_total` | counter | `kind` = `telemetry`, `event`, `status` | [`Metrics::ingested`] |
//! | `firegrid_refusals_total` | counter | `reason` (see [`Refusal::reason`]) | [`Metrics::refused`] or [`Metrics::set_refusals`] |
//! | `firegrid_journal_commit_seconds` | histogram | | [`Metrics::journal_commit`] |
//! | `firegrid_alarm_latency_seconds` | histogram | | [`Metrics::alarm_latency`]: receive → alert published |
//! | `firegrid_evidence_accepted_total`, `firegrid_evidence_refused_total` | counter | notes and photos kept; uploads refused by `reason` ([`crate::evidence::EvidenceStats`]) | the evidence routes |
//! | `firegrid_person_deliveries_total`, `firegrid_person_alerts_total`, `firegrid_person_dispatch_errors_total` | counter | alerts to people ([`crate::notify::dispatch::PeopleStats`]) | the people dispatcher |
//! | `firegrid_alerts_total` | counter | `channel` = `mqtt`, `webhook`, `sse`; `result` = `ok`, `retry`, `stopped` (a webhook whose ticket was acknowledged) | [`Metrics::alert`] |
//! | `firegrid_episodes_opened_total` | counter | `category` | [`Metrics::episode_opened`] |
//! | `firegrid_devices_known` | gauge | | [`Metrics::set_devices_known`] |
//! | `firegrid_disk_free_bytes` | gauge | | [`Metrics::set_disk_free`] (the data directory's file system, sampled) |
//! | `firegrid_queue_depth` | gauge | `queue` = `ingest`, `journal`, `readings`, `notify` | [`Metrics::set_queue_depth`] |
//! | `firegrid_readings_dropped_total` | counter | | [`Metrics::readings_dropped`] |
//! | `firegrid_device_dropped_telemetry_total` | counter | | [`Metrics::device_dropped_telemetry`] (telemetry devices dropped from a full outbox, from their statuses) |
//! | `firegrid_readings_stored_total` | counter | | [`Metrics::set_readings_stored`] (reading rows written by the readings writer) |
//! | `firegrid_pending_devices_dropped_total` | counter | | [`Metrics::set_pending_dropped`] (unregistered devices dropped from the full pending list) |
//! | `firegrid_broker_reconnects_total` | counter | | [`Metrics::set_broker_counters`] (the client's own count, sampled) |
//! | `firegrid_broker_oversize_total` | counter | | [`Metrics::set_broker_counters`]: packets larger than the client takes (each dropped its connection and session) |
//! | `firegrid_broker_refused_logins_total` | counter | | the managed broker ([`Metrics::managed_broker`]): logins refused (no, wrong or revoked credential) |
//! | `firegrid_broker_reloads_total` | counter | | the managed broker: account changes loaded |
//! | `firegrid_broker_restarts_total` | counter | | the managed broker: restarts after it exited |
//! | `firegrid_api_refusals_total` | counter | `reason` = `no_token`, `bad_token`, `role`, `scope`; the web UI's `csrf`, `login`, `login_rate` | [`Metrics::api_refused`] |
//! | `firegrid_tsdb_*` | | | the TSDB writer, when on: [`TsdbStats::render`] (docs/tsdb.md) |
//! | `firegrid_modbus_*` | | `bus`, `result` | [`Metrics::modbus`] (see [`crate::modbus::stats`]) |
//!
//! [`Refusal::reason`]: crate::ingest::Refusal::reason
//! [`TsdbStats::render`]: crate::tsdb::TsdbStats::render

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use firegrid_protocols::DeviceTopic;

use crate::model::Category;

/// The prefix of every metric name.
pub const PREFIX: &str = "firegrid_";

/// Upper bounds (s) of the journal-commit histogram's buckets: an fsync is ~0.1–10 ms on an
/// SSD, far more on an SD card or a busy disk.
pub const JOURNAL_COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Upper bounds (s) of the alarm-latency histogram's buckets (receive → alert published): the
/// goal is milliseconds.
pub const ALARM_LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The uplink message kinds counted at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestKind {
    /// `telemetry`.
    Telemetry,
    /// `event`.
    Event,
    /// `status`.
    Status,
}

impl IngestKind {
    const ALL: [Self; 3] = [Self::Telemetry, Self::Event, Self::Status];

    /// The kind of an uplink topic (`None` for the downlink topics).
    pub const fn of(topic: DeviceTopic) -> Option<Self> {
        match topic {
            DeviceTopic::Telemetry => Some(Self::Telemetry),
            DeviceTopic::Event => Some(Self::Event),
            DeviceTopic::Status => Some(Self::Status),
            DeviceTopic::Config | DeviceTopic::Cmd | DeviceTopic::Ack => None,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Event => "event",
            Self::Status => "status",
        }
    }
}

/// How an alert went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertChannel {
    /// Published on MQTT.
    Mqtt,
    /// POSTed to a webhook.
    Webhook,
    /// Pushed to server-sent-event clients.
    Sse,
}

impl AlertChannel {
    const ALL: [Self; 3] = [Self::Mqtt, Self::Webhook, Self::Sse];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Webhook => "webhook",
            Self::Sse => "sse",
        }
    }
}

/// What became of one delivery attempt of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertResult {
    /// Delivered.
    Ok,
    /// Failed; it will be tried again.
    Retry,
    /// Not tried again: a webhook whose episode a person has acknowledged.
    Stopped,
}

impl AlertResult {
    const ALL: [Self; 3] = [Self::Ok, Self::Retry, Self::Stopped];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::Stopped => "stopped",
        }
    }
}

/// The pipeline's queues whose depth is a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Messages from the broker waiting for ingest.
    Ingest,
    /// Op lists waiting for the journal writer.
    Journal,
    /// Telemetry samples waiting for the readings writer.
    Readings,
    /// Alerts waiting to be sent.
    Notify,
}

impl Queue {
    const ALL: [Self; 4] = [Self::Ingest, Self::Journal, Self::Readings, Self::Notify];

    const fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Journal => "journal",
            Self::Readings => "readings",
            Self::Notify => "notify",
        }
    }
}

/// A histogram with fixed buckets: a count per bucket, the sum (in nanoseconds) and the count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds` for `+Inf`.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds, in seconds, increasing.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{PREFIX}{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{PREFIX}{name}_sum {sum}");
        // The count is the +Inf bucket, so that both always agree in one scrape.
        let _ = writeln!(out, "{PREFIX}{name}_count {cumulative}");
    }
}

/// Why the API refused a request: no token, a bad token, a role, a scope.
pub const API_REFUSALS: [&str; 7] = [
    "no_token",
    "bad_token",
    "role",
    "scope",
    "csrf",
    "login",
    "login_rate",
];

/// The gateway's metrics. See the [module docs](self).
#[derive(Debug)]
pub struct Metrics {
    ingest: [AtomicU64; IngestKind::ALL.len()],
    refusals: Mutex<BTreeMap<String, u64>>,
    journal_commit: Histogram,
    alarm_latency: Histogram,
    alerts: [[AtomicU64; AlertResult::ALL.len()]; AlertChannel::ALL.len()],
    episodes_opened: [AtomicU64; Category::ALL.len()],
    devices_known: AtomicI64,
    disk_free: AtomicU64,
    queue_depth: [AtomicI64; Queue::ALL.len()],
    readings_dropped: AtomicU64,
    readings_stored: AtomicU64,
    device_dropped_telemetry: AtomicU64,
    pending_dropped: AtomicU64,
    broker_reconnects: AtomicU64,
    broker_oversize: AtomicU64,
    api_refusals: [AtomicU64; API_REFUSALS.len()],
    tsdb: std::sync::Arc<crate::tsdb::TsdbStats>,
    /// Modbus polling counters (rendered only when a bus is configured).
    pub modbus: Arc<crate::modbus::stats::ModbusStats>,
    /// The managed broker's counters (zero with an external broker).
    pub managed_broker: Arc<crate::broker::mosquitto::BrokerStats>,
    /// GB/T 26875.3 uplink counters (rendered only when the uplink is on).
    pub uplink: Arc<crate::uplink::stats::UplinkStats>,
    /// The people dispatcher's counters.
    pub people: Arc<crate::notify::dispatch::PeopleStats>,
    /// Evidence uploads kept and refused.
    pub evidence: Arc<crate::evidence::EvidenceStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series at zero.
    pub fn new() -> Self {
        Self {
            ingest: Default::default(),
            refusals: Mutex::new(BTreeMap::new()),
            journal_commit: Histogram::new(&JOURNAL_COMMIT_BUCKETS),
            alarm_latency: Histogram::new(&ALARM_LATENCY_BUCKETS),
            alerts: Default::default(),
            episodes_opened: Default::default(),
            devices_known: AtomicI64::new(0),
            disk_free: AtomicU64::new(0),
            queue_depth: Default::default(),
            readings_dropped: AtomicU64::new(0),
            readings_stored: AtomicU64::new(0),
            device_dropped_telemetry: AtomicU64::new(0),
            pending_dropped: AtomicU64::new(0),
            broker_reconnects: AtomicU64::new(0),
            broker_oversize: AtomicU64::new(0),
            api_refusals: Default::default(),
            tsdb: std::sync::Arc::default(),
            modbus: Arc::default(),
            managed_broker: Arc::default(),
            uplink: Arc::default(),
            people: Arc::default(),
            evidence: Arc::default(),
        }
    }

    /// The TSDB writer's state (all zero while it is off).
    pub fn tsdb(&self) -> &std::sync::Arc<crate::tsdb::TsdbStats> {
        &self.tsdb
    }

    /// Counts a message taken at ingest.
    pub fn ingested(&self, kind: IngestKind) {
        self.ingest[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Messages taken at ingest so far, of every kind.
    pub fn ingested_total(&self) -> u64 {
        self.ingest.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// Counts a refused message by its reason ([`Refusal::reason`]).
    ///
    /// [`Refusal::reason`]: crate::ingest::Refusal::reason
    pub fn refused(&self, reason: &str) {
        let mut map = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                map.insert(reason.to_string(), 1);
            }
        }
    }

    /// Replaces the refusal counts with a snapshot (e.g. [`Refusals::snapshot`]), for a
    /// pipeline that keeps its own counts. Use this or [`refused`](Self::refused), not both.
    ///
    /// [`Refusals::snapshot`]: crate::ingest::Refusals::snapshot
    pub fn set_refusals<'a>(&self, counts: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut map = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        map.clear();
        map.extend(counts.into_iter().map(|(k, v)| (k.to_string(), v)));
    }

    /// Counts an API request refused by the access check, by reason (one of
    /// [`API_REFUSALS`]; anything else is counted as `role`).
    pub fn api_refused(&self, reason: &str) {
        let i = API_REFUSALS.iter().position(|r| *r == reason).unwrap_or(2);
        self.api_refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long a journal commit (with its fsync) took.
    pub fn journal_commit(&self, d: Duration) {
        self.journal_commit.observe(d);
    }

    /// Records the time from receiving a message to publishing the alert it raised.
    pub fn alarm_latency(&self, d: Duration) {
        self.alarm_latency.observe(d);
    }

    /// Counts one delivery attempt of an alert.
    pub fn alert(&self, channel: AlertChannel, result: AlertResult) {
        self.alerts[channel as usize][result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an episode opened.
    pub fn episode_opened(&self, category: Category) {
        self.episodes_opened[category as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Sets how many devices the engine watches.
    pub fn set_devices_known(&self, n: u64) {
        self.devices_known
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Sets the free bytes of the data directory's file system.
    pub fn set_disk_free(&self, bytes: u64) {
        self.disk_free.store(bytes, Ordering::Relaxed);
    }

    /// Sets a queue's depth.
    pub fn set_queue_depth(&self, queue: Queue, depth: usize) {
        self.queue_depth[queue as usize]
            .store(i64::try_from(depth).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Counts reading rows (one per channel of a telemetry message) dropped because the
    /// readings queue was full.
    pub fn readings_dropped(&self, n: u64) {
        self.readings_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the reading rows stored so far (the readings writer's own count, sampled).
    pub fn set_readings_stored(&self, rows: u64) {
        self.readings_stored.fetch_max(rows, Ordering::Relaxed);
    }

    /// Counts telemetry messages devices say they dropped from a full outbox (a status's
    /// `dropped_telemetry`).
    pub fn device_dropped_telemetry(&self, n: u64) {
        self.device_dropped_telemetry
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the unregistered devices dropped from the full pending list (the readings writer's
    /// own count, sampled).
    pub fn set_pending_dropped(&self, devices: u64) {
        self.pending_dropped.fetch_max(devices, Ordering::Relaxed);
    }

    /// Sets the broker client's reconnects and oversize packets (its own counts, sampled).
    pub fn set_broker_counters(&self, reconnects: u64, oversize: u64) {
        self.broker_reconnects
            .fetch_max(reconnects, Ordering::Relaxed);
        self.broker_oversize.fetch_max(oversize, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        header(
            &mut out,
            "ingest_messages_total",
            "Uplink messages taken at ingest, by topic kind.",
            "counter",
        );
        for kind in IngestKind::ALL {
            series(
                &mut out,
                "ingest_messages_total",
                &[("kind", kind.as_str())],
                load(&self.ingest[kind as usize]),
            );
        }

        header(
            &mut out,
            "refusals_total",
            "Uplink messages refused, by reason.",
            "counter",
        );
        {
            let map = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
            for (reason, n) in map.iter() {
                series(&mut out, "refusals_total", &[("reason", reason)], *n);
            }
        }

        self.journal_commit.render(
            &mut out,
            "journal_commit_seconds",
            "Time of a durable journal commit (with its fsync).",
        );
        self.alarm_latency.render(
            &mut out,
            "alarm_latency_seconds",
            "Time from receiving a message to publishing the alert it raised.",
        );

        header(
            &mut out,
            "alerts_total",
            "Alert delivery attempts, by channel and result.",
            "counter",
        );
        for channel in AlertChannel::ALL {
            for result in AlertResult::ALL {
                series(
                    &mut out,
                    "alerts_total",
                    &[("channel", channel.as_str()), ("result", result.as_str())],
                    load(&self.alerts[channel as usize][result as usize]),
                );
            }
        }

        header(
            &mut out,
            "episodes_opened_total",
            "Episodes opened, by category.",
            "counter",
        );
        for category in Category::ALL {
            series(
                &mut out,
                "episodes_opened_total",
                &[("category", category.as_str())],
                load(&self.episodes_opened[category as usize]),
            );
        }

        header(
            &mut out,
            "devices_known",
            "Devices the alarm engine watches.",
            "gauge",
        );
        series(
            &mut out,
            "devices_known",
            &[],
            self.devices_known.load(Ordering::Relaxed),
        );

        header(
            &mut out,
            "disk_free_bytes",
            "Free bytes on the data directory's file system.",
            "gauge",
        );
        series(
            &mut out,
            "disk_free_bytes",
            &[],
            self.disk_free.load(Ordering::Relaxed),
        );

        header(
            &mut out,
            "queue_depth",
            "Items waiting in the pipeline's queues.",
            "gauge",
        );
        for queue in Queue::ALL {
            series(
                &mut out,
                "queue_depth",
                &[("queue", queue.as_str())],
                self.queue_depth[queue as usize].load(Ordering::Relaxed),
            );
        }

        header(
            &mut out,
            "readings_dropped_total",
            "Reading rows (one per channel of a telemetry message) dropped because the readings queue was full.",
            "counter",
        );
        series(
            &mut out,
            "readings_dropped_total",
            &[],
            load(&self.readings_dropped),
        );

        header(
            &mut out,
            "readings_stored_total",
            "Reading rows written to the store.",
            "counter",
        );
        series(
            &mut out,
            "readings_stored_total",
            &[],
            load(&self.readings_stored),
        );

        header(
            &mut out,
            "device_dropped_telemetry_total",
            "Telemetry messages devices dropped from a full outbox (reported in their statuses).",
            "counter",
        );
        series(
            &mut out,
            "device_dropped_telemetry_total",
            &[],
            load(&self.device_dropped_telemetry),
        );

        header(
            &mut out,
            "pending_devices_dropped_total",
            "Unregistered devices dropped from the pending list, or never put on it, because it was full (the most recently seen are kept).",
            "counter",
        );
        series(
            &mut out,
            "pending_devices_dropped_total",
            &[],
            load(&self.pending_dropped),
        );

        header(
            &mut out,
            "broker_reconnects_total",
            "Reconnects of the gateway's MQTT connection.",
            "counter",
        );
        series(
            &mut out,
            "broker_reconnects_total",
            &[],
            load(&self.broker_reconnects),
        );

        header(
            &mut out,
            "broker_oversize_total",
            "Packets larger than the gateway's MQTT client takes (each dropped its connection and the session holding it).",
            "counter",
        );
        series(
            &mut out,
            "broker_oversize_total",
            &[],
            load(&self.broker_oversize),
        );

        for (name, help, value) in [
            (
                "broker_refused_logins_total",
                "Logins the managed broker refused (no, wrong or revoked credential).",
                &self.managed_broker.refused_logins,
            ),
            (
                "broker_reloads_total",
                "Account changes the managed broker loaded.",
                &self.managed_broker.reloads,
            ),
            (
                "broker_restarts_total",
                "Restarts of the managed broker after it exited.",
                &self.managed_broker.restarts,
            ),
        ] {
            header(&mut out, name, help, "counter");
            series(&mut out, name, &[], load(value));
        }
        header(
            &mut out,
            "api_refusals_total",
            "API requests refused by the access check, by reason.",
            "counter",
        );
        for (reason, n) in API_REFUSALS.iter().zip(&self.api_refusals) {
            series(
                &mut out,
                "api_refusals_total",
                &[("reason", reason)],
                load(n),
            );
        }

        // The TSDB writer's series, when it runs.
        let mut last = String::new();
        self.tsdb.render(|name, help, kind, labels, value| {
            if name != last {
                header(&mut out, name, help, kind);
                last = name.to_string();
            }
            series(&mut out, name, labels, value);
        });
        self.modbus.render(&mut out);
        self.uplink.render(&mut out);
        self.people.render(&mut out);
        self.evidence.render(&mut out);
        out
    }
}

/// The `# HELP` and `# TYPE` lines of a metric.
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}{name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

/// One sample line.
pub(crate) fn series(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(PREFIX);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value with `\`, `"` and line feeds escaped, as the text format requires.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text with `\` and line feeds escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_text_is_cumulative_with_sum_and_count() {
        static BOUNDS: [f64; 3] = [0.001, 0.01, 1.0];
        let h = Histogram::new(&BOUNDS);
        h.observe(Duration::from_micros(500)); // ≤ 0.001
        h.observe(Duration::from_millis(1)); // ≤ 0.001 (inclusive)
        h.observe(Duration::from_millis(5)); // ≤ 0.01
        h.observe(Duration::from_secs(3)); // +Inf
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "An example.");
        assert_eq!(
            out,
            "# HELP firegrid_x_seconds An example.\n\
             # TYPE firegrid_x_seconds histogram\n\
             firegrid_x_seconds_bucket{le=\"0.001\"} 2\n\
             firegrid_x_seconds_bucket{le=\"0.01\"} 3\n\
             firegrid_x_seconds_bucket{le=\"1\"} 3\n\
             firegrid_x_seconds_bucket{le=\"+Inf\"} 4\n\
             firegrid_x_seconds_sum 3.0065\n\
             firegrid_x_seconds_count 4\n"
        );
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        let m = Metrics::new();
        m.refused("we\"ird\\");
        let text = m.render();
        assert!(
            text.contains("firegrid_refusals_total{reason=\"we\\\"ird\\\\\"} 1\n"),
            "{text}"
        );
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn refusals_count_or_take_a_snapshot() {
        let m = Metrics::new();
        m.refused("duplicate");
        m.refused("duplicate");
        m.refused("bad_topic");
        let text = m.render();
        assert!(text.contains(
            "# HELP firegrid_refusals_total Uplink messages refused, by reason.\n\
             # TYPE firegrid_refusals_total counter\n\
             firegrid_refusals_total{reason=\"bad_topic\"} 1\n\
             firegrid_refusals_total{reason=\"duplicate\"} 2\n\
             # HELP firegrid_journal_commit_seconds"
        ));
        m.set_refusals([("unknown_device", 7)]);
        let text = m.render();
        assert!(text.contains("firegrid_refusals_total{reason=\"unknown_device\"} 7\n"));
        assert!(!text.contains("reason=\"duplicate\""));
    }

    /// The whole exposition of a small example, exactly.
    #[test]
    fn whole_text_of_a_small_example() {
        let m = Metrics::new();
        m.ingested(IngestKind::Telemetry);
        m.ingested(IngestKind::Telemetry);
        m.ingested(IngestKind::Event);
        m.refused("duplicate");
        m.journal_commit(Duration::from_millis(2));
        m.alarm_latency(Duration::from_millis(4));
        m.alert(AlertChannel::Mqtt, AlertResult::Ok);
        m.alert(AlertChannel::Webhook, AlertResult::Retry);
        m.episode_opened(Category::Smoke);
        m.set_devices_known(12);
        m.set_queue_depth(Queue::Journal, 3);
        m.readings_dropped(5);
        m.set_readings_stored(40);
        m.set_broker_counters(1, 0);
        let expected = "\
# HELP firegrid_ingest_messages_total Uplink messages taken at ingest, by topic kind.
# TYPE firegrid_ingest_messages_total counter
firegrid_ingest_messages_total{kind=\"telemetry\"} 2
firegrid_ingest_messages_total{kind=\"event\"} 1
firegrid_ingest_messages_total{kind=\"status\"} 0
# HELP firegrid_refusals_total Uplink messages refused, by reason.
# TYPE firegrid_refusals_total counter
firegrid_refusals_total{reason=\"duplicate\"} 1
# HELP firegrid_journal_commit_seconds Time of a durable journal commit (with its fsync).
# TYPE firegrid_journal_commit_seconds histogram
firegrid_journal_commit_seconds_bucket{le=\"0.0005\"} 0
firegrid_journal_commit_seconds_bucket{le=\"0.001\"} 0
firegrid_journal_commit_seconds_bucket{le=\"0.002\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.005\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.01\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.025\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.05\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.1\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.25\"} 1
firegrid_journal_commit_seconds_bucket{le=\"0.5\"} 1
firegrid_journal_commit_seconds_bucket{le=\"1\"} 1
firegrid_journal_commit_seconds_bucket{le=\"2.5\"} 1
firegrid_journal_commit_seconds_bucket{le=\"+Inf\"} 1
firegrid_journal_commit_seconds_sum 0.002
firegrid_journal_commit_seconds_count 1
# HELP firegrid_alarm_latency_seconds Time from receiving a message to publishing the alert it raised.
# TYPE firegrid_alarm_latency_seconds histogram
firegrid_alarm_latency_seconds_bucket{le=\"0.001\"} 0
firegrid_alarm_latency_seconds_bucket{le=\"0.0025\"} 0
firegrid_alarm_latency_seconds_bucket{le=\"0.005\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.01\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.025\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.05\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.1\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.25\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"0.5\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"1\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"2.5\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"5\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"10\"} 1
firegrid_alarm_latency_seconds_bucket{le=\"+Inf\"} 1
firegrid_alarm_latency_seconds_sum 0.004
firegrid_alarm_latency_seconds_count 1
# HELP firegrid_alerts_total Alert delivery attempts, by channel and result.
# TYPE firegrid_alerts_total counter
firegrid_alerts_total{channel=\"mqtt\",result=\"ok\"} 1
firegrid_alerts_total{channel=\"mqtt\",result=\"retry\"} 0
firegrid_alerts_total{channel=\"mqtt\",result=\"stopped\"} 0
firegrid_alerts_total{channel=\"webhook\",result=\"ok\"} 0
firegrid_alerts_total{channel=\"webhook\",result=\"retry\"} 1
firegrid_alerts_total{channel=\"webhook\",result=\"stopped\"} 0
firegrid_alerts_total{channel=\"sse\",result=\"ok\"} 0
firegrid_alerts_total{channel=\"sse\",result=\"retry\"} 0
firegrid_alerts_total{channel=\"sse\",result=\"stopped\"} 0
# HELP firegrid_episodes_opened_total Episodes opened, by category.
# TYPE firegrid_episodes_opened_total counter
firegrid_episodes_opened_total{category=\"alarm\"} 0
firegrid_episodes_opened_total{category=\"fault\"} 0
firegrid_episodes_opened_total{category=\"offline\"} 0
firegrid_episodes_opened_total{category=\"battery_low\"} 0
firegrid_episodes_opened_total{category=\"smoke\"} 1
firegrid_episodes_opened_total{category=\"tamper\"} 0
# HELP firegrid_devices_known Devices the alarm engine watches.
# TYPE firegrid_devices_known gauge
firegrid_devices_known 12
# HELP firegrid_disk_free_bytes Free bytes on the data directory's file system.
# TYPE firegrid_disk_free_bytes gauge
firegrid_disk_free_bytes 0
# HELP firegrid_queue_depth Items waiting in the pipeline's queues.
# TYPE firegrid_queue_depth gauge
firegrid_queue_depth{queue=\"ingest\"} 0
firegrid_queue_depth{queue=\"journal\"} 3
firegrid_queue_depth{queue=\"readings\"} 0
firegrid_queue_depth{queue=\"notify\"} 0
# HELP firegrid_readings_dropped_total Reading rows (one per channel of a telemetry message) dropped because the readings queue was full.
# TYPE firegrid_readings_dropped_total counter
firegrid_readings_dropped_total 5
# HELP firegrid_readings_stored_total Reading rows written to the store.
# TYPE firegrid_readings_stored_total counter
firegrid_readings_stored_total 40
# HELP firegrid_device_dropped_telemetry_total Telemetry messages devices dropped from a full outbox (reported in their statuses).
# TYPE firegrid_device_dropped_telemetry_total counter
firegrid_device_dropped_telemetry_total 0
# HELP firegrid_pending_devices_dropped_total Unregistered devices dropped from the pending list, or never put on it, because it was full (the most recently seen are kept).
# TYPE firegrid_pending_devices_dropped_total counter
firegrid_pending_devices_dropped_total 0
# HELP firegrid_broker_reconnects_total Reconnects of the gateway's MQTT connection.
# TYPE firegrid_broker_reconnects_total counter
firegrid_broker_reconnects_total 1
# HELP firegrid_broker_oversize_total Packets larger than the gateway's MQTT client takes (each dropped its connection and the session holding it).
# TYPE firegrid_broker_oversize_total counter
firegrid_broker_oversize_total 0
# HELP firegrid_broker_refused_logins_total Logins the managed broker refused (no, wrong or revoked credential).
# TYPE firegrid_broker_refused_logins_total counter
firegrid_broker_refused_logins_total 0
# HELP firegrid_broker_reloads_total Account changes the managed broker loaded.
# TYPE firegrid_broker_reloads_total counter
firegrid_broker_reloads_total 0
# HELP firegrid_broker_restarts_total Restarts of the managed broker after it exited.
# TYPE firegrid_broker_restarts_total counter
firegrid_broker_restarts_total 0
# HELP firegrid_api_refusals_total API requests refused by the access check, by reason.
# TYPE firegrid_api_refusals_total counter
firegrid_api_refusals_total{reason=\"no_token\"} 0
firegrid_api_refusals_total{reason=\"bad_token\"} 0
firegrid_api_refusals_total{reason=\"role\"} 0
firegrid_api_refusals_total{reason=\"scope\"} 0
firegrid_api_refusals_total{reason=\"csrf\"} 0
firegrid_api_refusals_total{reason=\"login\"} 0
firegrid_api_refusals_total{reason=\"login_rate\"} 0
# HELP firegrid_person_deliveries_total Alert deliveries to workers' own channels, by channel and result.
# TYPE firegrid_person_deliveries_total counter
firegrid_person_deliveries_total{channel=\"mqtt\",result=\"ok\"} 0
firegrid_person_deliveries_total{channel=\"mqtt\",result=\"retry\"} 0
firegrid_person_deliveries_total{channel=\"mqtt\",result=\"stopped\"} 0
firegrid_person_deliveries_total{channel=\"webhook\",result=\"ok\"} 0
firegrid_person_deliveries_total{channel=\"webhook\",result=\"retry\"} 0
firegrid_person_deliveries_total{channel=\"webhook\",result=\"stopped\"} 0
firegrid_person_deliveries_total{channel=\"sms\",result=\"ok\"} 0
firegrid_person_deliveries_total{channel=\"sms\",result=\"retry\"} 0
firegrid_person_deliveries_total{channel=\"sms\",result=\"stopped\"} 0
# HELP firegrid_person_alerts_total Alerts fanned out to the workers of their areas.
# TYPE firegrid_person_alerts_total counter
firegrid_person_alerts_total 0
# HELP firegrid_person_dispatch_errors_total Store reads or writes of the people dispatcher that failed (retried).
# TYPE firegrid_person_dispatch_errors_total counter
firegrid_person_dispatch_errors_total 0
# HELP firegrid_evidence_accepted_total Notes and photos kept as evidence on tickets.
# TYPE firegrid_evidence_accepted_total counter
firegrid_evidence_accepted_total{kind=\"note\"} 0
firegrid_evidence_accepted_total{kind=\"photo\"} 0
# HELP firegrid_evidence_refused_total Evidence uploads refused, by reason.
# TYPE firegrid_evidence_refused_total counter
firegrid_evidence_refused_total{reason=\"too_large\"} 0
firegrid_evidence_refused_total{reason=\"not_image\"} 0
firegrid_evidence_refused_total{reason=\"empty\"} 0
firegrid_evidence_refused_total{reason=\"bad_note\"} 0
firegrid_evidence_refused_total{reason=\"bad_form\"} 0
";
        assert_eq!(m.render(), expected);
    }

    #[test]
    fn uplink_topics_are_ingest_kinds() {
        assert_eq!(
            IngestKind::of(DeviceTopic::Telemetry),
            Some(IngestKind::Telemetry)
        );
        assert_eq!(
            IngestKind::of(DeviceTopic::Status),
            Some(IngestKind::Status)
        );
        assert_eq!(IngestKind::of(DeviceTopic::Cmd), None);
    }

    #[test]
    fn metrics_are_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Metrics>();
        let m = std::sync::Arc::new(Metrics::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.ingested(IngestKind::Status);
                        m.refused("x");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = m.render();
        assert!(text.contains("firegrid_ingest_messages_total{kind=\"status\"} 4000\n"));
        assert!(text.contains("firegrid_refusals_total{reason=\"x\"} 4000\n"));
    }
}
