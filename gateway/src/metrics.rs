//! The gateway's metrics: a [prometheus-client] registry, exposed at `/metrics` in the
//! Prometheus text format (version 0.0.4, [`CONTENT_TYPE`]).
//!
//! The series the pipeline touches per message and per alarm are prometheus-client metrics
//! resolved once, when [`Metrics`] is made: a counter is one atomic add, a labelled counter
//! (`kind`, `channel` × `result`, ...) is an array index and one atomic add
//! (`metrics/fixed.rs`), a histogram observation takes that histogram's own lock (decision
//! 0018 and docs/performance.md measure them against the hand-written atomics they replaced).
//! Counts kept elsewhere (the TSDB writer's, the managed broker's, the uplink's, the people
//! dispatcher's, the evidence routes', Modbus) are read at the scrape by collectors
//! ([`prometheus_client::collector::Collector`]) registered beside them. [`Metrics`] is
//! `Send + Sync`; share it as an `Arc<Metrics>` between the pipeline and the API.
//!
//! | Metric | Type | Labels | Set by |
//! | --- | --- | --- | --- |
//! | `firegrid_ingest_messages_total` | counter | `kind` = `telemetry`, `event`, `status` | [`Metrics::ingested`] |
//! | `firegrid_refusals_total` | counter | `reason` (see [`Refusal::reason`]; a reason appears once it is counted) | [`Metrics::refused`] |
//! | `firegrid_journal_commit_seconds` | histogram | | [`Metrics::journal_commit`] |
//! | `firegrid_alarm_latency_seconds` | histogram | | [`Metrics::alarm_latency`]: receive → alert published |
//! | `firegrid_alerts_total` | counter | `channel` = `mqtt`, `webhook`, `sse`; `result` = `ok`, `retry`, `stopped` (a webhook whose ticket was acknowledged) | [`Metrics::alert`] |
//! | `firegrid_episodes_opened_total` | counter | `category` | [`Metrics::episode_opened`] |
//! | `firegrid_devices_known` | gauge | | [`Metrics::set_devices_known`] |
//! | `firegrid_alarm_path_realtime` | gauge | | [`Metrics::set_alarm_path_realtime`]: 1 when the alarm path's thread runs in the real-time class ([`crate::alarm_path`]) |
//! | `firegrid_disk_free_bytes` | gauge | | [`Metrics::set_disk_free`] (the data directory's file system, sampled) |
//! | `firegrid_queue_depth` | gauge | `queue` = `ingest`, `journal`, `readings` (in reading rows, what bounds it), `notify` | [`Metrics::set_queue_depth`] |
//! | `firegrid_readings_dropped_total` | counter | | [`Metrics::readings_dropped`] |
//! | `firegrid_readings_stored_total` | counter | | [`Metrics::set_readings_stored`] (reading rows written by the readings writer) |
//! | `firegrid_device_dropped_telemetry_total` | counter | | [`Metrics::device_dropped_telemetry`] (telemetry devices dropped from a full outbox, from their statuses) |
//! | `firegrid_pending_devices_dropped_total` | counter | | [`Metrics::set_pending_dropped`] (unregistered devices dropped from the full pending list) |
//! | `firegrid_broker_reconnects_total` | counter | | [`Metrics::set_broker_counters`] (the client's own count, sampled) |
//! | `firegrid_broker_oversize_total` | counter | | [`Metrics::set_broker_counters`]: packets larger than the client takes (each dropped its connection and session) |
//! | `firegrid_api_refusals_total` | counter | `reason` = `no_token`, `bad_token`, `role`, `scope`; the web UI's `csrf`, `login`, `login_rate` | [`Metrics::api_refused`] |
//! | `firegrid_broker_refused_logins_total` | counter | | the managed broker ([`Metrics::managed_broker`]): logins refused (no, wrong or revoked credential) |
//! | `firegrid_broker_reloads_total` | counter | | the managed broker: account changes loaded |
//! | `firegrid_broker_restarts_total` | counter | | the managed broker: restarts after it exited |
//! | `firegrid_broker_nice` | gauge | | the managed broker: its nice value after its last start (`[broker.managed] nice`, or the gateway's own when refused: decision 26) |
//! | `firegrid_tsdb_*` | | | the TSDB writer, when on: [`TsdbStats`] (docs/tsdb.md) |
//! | `firegrid_modbus_*` | | `bus`, `result` | [`Metrics::modbus`], when a bus is configured (see [`crate::modbus::stats`]) |
//! | `firegrid_uplink_*` | | | [`Metrics::uplink`], when the GB/T 26875.3 uplink is on (see [`crate::uplink::stats`]) |
//! | `firegrid_person_deliveries_total`, `firegrid_person_alerts_total`, `firegrid_person_dispatch_errors_total` | counter | alerts to people ([`crate::notify::dispatch::PeopleStats`]) | the people dispatcher |
//! | `firegrid_evidence_accepted_total`, `firegrid_evidence_refused_total` | counter | notes and photos kept; uploads refused by `reason` ([`crate::evidence::EvidenceStats`]) | the evidence routes |
//!
//! [prometheus-client]: prometheus_client
//! [`Refusal::reason`]: crate::ingest::Refusal::reason
//! [`TsdbStats`]: crate::tsdb::TsdbStats

pub(crate) mod collect;
pub(crate) mod fixed;
mod labels;
#[cfg(test)]
mod measure;
pub(crate) mod open;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use labels::{API_REFUSALS, AlertChannel, AlertResult, IngestKind, Queue};

use crate::model::Category;
use collect::register;
use fixed::{Fixed, Labels};
use open::Sorted;

/// The prefix of every metric name.
pub const PREFIX: &str = "firegrid_";

/// The `Content-Type` of [`Metrics::render`]: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

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

/// A counter that only ever goes up, kept as prometheus-client's default (`u64`).
type Count = Counter;

/// The gateway's metrics. See the [module docs](self).
#[derive(Debug)]
pub struct Metrics {
    /// Every series below (clones of the same handles) and the collectors; rendered whole.
    registry: Registry,
    ingest: Fixed<Labels<1>, Count, 3>,
    /// Refusal reasons are open-ended (the codec names its own), so a map: a read lock and a
    /// lookup per refusal, never on the alarm path.
    refusals: Sorted<Count>,
    journal_commit: Histogram,
    alarm_latency: Histogram,
    /// `channel` × `result`, at `channel * 3 + result`.
    alerts: Fixed<Labels<2>, Count, 9>,
    episodes_opened: Fixed<Labels<1>, Count, 6>,
    devices_known: Gauge,
    alarm_path_realtime: Gauge,
    disk_free: Gauge<u64, AtomicU64>,
    queue_depth: Fixed<Labels<1>, Gauge, 4>,
    readings_dropped: Count,
    readings_stored: Count,
    device_dropped_telemetry: Count,
    pending_dropped: Count,
    broker_reconnects: Count,
    broker_oversize: Count,
    api_refusals: Fixed<Labels<1>, Count, 7>,
    tsdb: Arc<crate::tsdb::TsdbStats>,
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
    /// Every series at zero, registered.
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::with_prefix(PREFIX.trim_end_matches('_')),
            ingest: Fixed::new(IngestKind::ALL.map(|k| [("kind", k.as_str())])),
            refusals: Sorted::new("reason"),
            journal_commit: Histogram::new(JOURNAL_COMMIT_BUCKETS),
            alarm_latency: Histogram::new(ALARM_LATENCY_BUCKETS),
            alerts: Fixed::new(std::array::from_fn(|i| {
                let (c, r) = (i / AlertResult::ALL.len(), i % AlertResult::ALL.len());
                [
                    ("channel", AlertChannel::ALL[c].as_str()),
                    ("result", AlertResult::ALL[r].as_str()),
                ]
            })),
            episodes_opened: Fixed::new(Category::ALL.map(|c| [("category", c.as_str())])),
            devices_known: Gauge::default(),
            alarm_path_realtime: Gauge::default(),
            disk_free: Gauge::default(),
            queue_depth: Fixed::new(Queue::ALL.map(|q| [("queue", q.as_str())])),
            readings_dropped: Count::default(),
            readings_stored: Count::default(),
            device_dropped_telemetry: Count::default(),
            pending_dropped: Count::default(),
            broker_reconnects: Count::default(),
            broker_oversize: Count::default(),
            api_refusals: Fixed::new(API_REFUSALS.map(|r| [("reason", r)])),
            tsdb: Arc::default(),
            modbus: Arc::default(),
            managed_broker: Arc::default(),
            uplink: Arc::default(),
            people: Arc::default(),
            evidence: Arc::default(),
        };
        m.registered()
    }

    /// Registers every series and collector, in the order of the exposition.
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        register(
            r,
            "ingest_messages_total",
            "Uplink messages taken at ingest, by topic kind.",
            self.ingest.clone(),
        );
        register(
            r,
            "refusals_total",
            "Uplink messages refused, by reason.",
            self.refusals.clone(),
        );
        register(
            r,
            "journal_commit_seconds",
            "Time of a durable journal commit (with its fsync).",
            self.journal_commit.clone(),
        );
        register(
            r,
            "alarm_latency_seconds",
            "Time from receiving a message to publishing the alert it raised.",
            self.alarm_latency.clone(),
        );
        register(
            r,
            "alerts_total",
            "Alert delivery attempts, by channel and result.",
            self.alerts.clone(),
        );
        register(
            r,
            "episodes_opened_total",
            "Episodes opened, by category.",
            self.episodes_opened.clone(),
        );
        register(
            r,
            "devices_known",
            "Devices the alarm engine watches.",
            self.devices_known.clone(),
        );
        register(
            r,
            "alarm_path_realtime",
            "1 when the alarm path's thread runs in the real-time scheduling class.",
            self.alarm_path_realtime.clone(),
        );
        register(
            r,
            "disk_free_bytes",
            "Free bytes on the data directory's file system.",
            self.disk_free.clone(),
        );
        register(
            r,
            "queue_depth",
            "Items waiting in the pipeline's queues.",
            self.queue_depth.clone(),
        );
        for (name, help, counter) in [
            (
                "readings_dropped_total",
                "Reading rows (one per channel of a telemetry message) dropped because the readings queue was full.",
                &self.readings_dropped,
            ),
            (
                "readings_stored_total",
                "Reading rows written to the store.",
                &self.readings_stored,
            ),
            (
                "device_dropped_telemetry_total",
                "Telemetry messages devices dropped from a full outbox (reported in their statuses).",
                &self.device_dropped_telemetry,
            ),
            (
                "pending_devices_dropped_total",
                "Unregistered devices dropped from the pending list, or never put on it, because it was full (the most recently seen are kept).",
                &self.pending_dropped,
            ),
            (
                "broker_reconnects_total",
                "Reconnects of the gateway's MQTT connection.",
                &self.broker_reconnects,
            ),
            (
                "broker_oversize_total",
                "Packets larger than the gateway's MQTT client takes (each dropped its connection and the session holding it).",
                &self.broker_oversize,
            ),
        ] {
            register(r, name, help, counter.clone());
        }
        register(
            r,
            "api_refusals_total",
            "API requests refused by the access check, by reason.",
            self.api_refusals.clone(),
        );
        r.register_collector(Box::new(self.managed_broker.clone()));
        r.register_collector(Box::new(self.tsdb.clone()));
        r.register_collector(Box::new(self.modbus.clone()));
        r.register_collector(Box::new(self.uplink.clone()));
        r.register_collector(Box::new(self.people.clone()));
        r.register_collector(Box::new(self.evidence.clone()));
        self
    }

    /// The TSDB writer's state (all zero while it is off).
    pub fn tsdb(&self) -> &Arc<crate::tsdb::TsdbStats> {
        &self.tsdb
    }

    /// Counts a message taken at ingest.
    pub fn ingested(&self, kind: IngestKind) {
        self.ingest.at(kind as usize).inc();
    }

    /// Messages taken at ingest so far, of every kind.
    pub fn ingested_total(&self) -> u64 {
        self.ingest.iter().map(|(_, c)| c.get()).sum()
    }

    /// Counts a refused message by its reason ([`Refusal::reason`]).
    ///
    /// [`Refusal::reason`]: crate::ingest::Refusal::reason
    pub fn refused(&self, reason: &'static str) {
        self.refusals.with(reason, |c| c.inc());
    }

    /// Counts an API request refused by the access check, by reason (one of
    /// [`API_REFUSALS`]; anything else is counted as `role`).
    pub fn api_refused(&self, reason: &str) {
        let i = API_REFUSALS.iter().position(|r| *r == reason).unwrap_or(2);
        self.api_refusals.at(i).inc();
    }

    /// Records how long a journal commit (with its fsync) took.
    pub fn journal_commit(&self, d: Duration) {
        self.journal_commit.observe(d.as_secs_f64());
    }

    /// Records the time from receiving a message to publishing the alert it raised.
    pub fn alarm_latency(&self, d: Duration) {
        self.alarm_latency.observe(d.as_secs_f64());
    }

    /// Counts one delivery attempt of an alert.
    pub fn alert(&self, channel: AlertChannel, result: AlertResult) {
        self.alerts
            .at(channel as usize * AlertResult::ALL.len() + result as usize)
            .inc();
    }

    /// Counts an episode opened.
    pub fn episode_opened(&self, category: Category) {
        self.episodes_opened.at(category as usize).inc();
    }

    /// Sets how many devices the engine watches.
    pub fn set_devices_known(&self, n: u64) {
        self.devices_known.set(collect::as_gauge(n));
    }

    /// Sets whether the alarm path's thread runs in the real-time class.
    pub fn set_alarm_path_realtime(&self, on: bool) {
        self.alarm_path_realtime.set(i64::from(on));
    }

    /// Sets the free bytes of the data directory's file system.
    pub fn set_disk_free(&self, bytes: u64) {
        self.disk_free.set(bytes);
    }

    /// Sets a queue's depth.
    pub fn set_queue_depth(&self, queue: Queue, depth: usize) {
        self.queue_depth
            .at(queue as usize)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts reading rows (one per channel of a telemetry message) dropped because the
    /// readings queue was full.
    pub fn readings_dropped(&self, n: u64) {
        self.readings_dropped.inc_by(n);
    }

    /// Sets the reading rows stored so far (the readings writer's own count, sampled).
    pub fn set_readings_stored(&self, rows: u64) {
        sampled(&self.readings_stored, rows);
    }

    /// Counts telemetry messages devices say they dropped from a full outbox (a status's
    /// `dropped_telemetry`).
    pub fn device_dropped_telemetry(&self, n: u64) {
        self.device_dropped_telemetry.inc_by(n);
    }

    /// Sets the unregistered devices dropped from the full pending list (the readings writer's
    /// own count, sampled).
    pub fn set_pending_dropped(&self, devices: u64) {
        sampled(&self.pending_dropped, devices);
    }

    /// Sets the broker client's reconnects and oversize packets (its own counts, sampled).
    pub fn set_broker_counters(&self, reconnects: u64, oversize: u64) {
        sampled(&self.broker_reconnects, reconnects);
        sampled(&self.broker_oversize, oversize);
    }

    /// The Prometheus text exposition (version 0.0.4, [`CONTENT_TYPE`]) of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail, and the collectors only write.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Moves a counter up to a count kept elsewhere (sampled): never down, so a late sample of an
/// older count cannot make the counter look reset.
fn sampled(counter: &Count, count: u64) {
    counter.inner().fetch_max(count, Ordering::Relaxed);
}
