//! Modbus counters for `/metrics`, per bus: polls by result, reconnects, request latency.
//!
//! | Metric | Type | Labels |
//! | --- | --- | --- |
//! | `firegrid_modbus_requests_total` | counter | `bus`, `result` = `ok`, `timeout`, `exception`, `garbage` |
//! | `firegrid_modbus_reconnects_total` | counter | `bus` |
//! | `firegrid_modbus_request_seconds` | histogram | (all buses) |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::collect;

/// Upper bounds (s) of the request-latency buckets: ~1 ms on a LAN, ~20–100 ms per request at
/// 9600 baud.
pub const REQUEST_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How a request ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// Answered.
    Ok,
    /// No answer in time.
    Timeout,
    /// An exception code.
    Exception,
    /// A reply that was not a valid answer (or a failed connection).
    Garbage,
}

impl RequestResult {
    const ALL: [Self; 4] = [Self::Ok, Self::Timeout, Self::Exception, Self::Garbage];
    const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Timeout => "timeout",
            Self::Exception => "exception",
            Self::Garbage => "garbage",
        }
    }
}

/// The counters of one bus.
#[derive(Debug, Default)]
pub struct BusStats {
    results: [AtomicU64; 4],
    reconnects: AtomicU64,
}

impl BusStats {
    /// Counts one request.
    pub fn request(&self, r: RequestResult) {
        if let Some(c) = self.results.get(r as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one (re)connect.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far with this result.
    pub fn count(&self, r: RequestResult) -> u64 {
        self.results
            .get(r as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Every bus's counters.
#[derive(Debug)]
pub struct ModbusStats {
    buses: Mutex<BTreeMap<String, Arc<BusStats>>>,
    latency: Histogram,
}

impl Default for ModbusStats {
    fn default() -> Self {
        Self {
            buses: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(REQUEST_BUCKETS),
        }
    }
}

impl ModbusStats {
    /// The counters of the bus called `name` (made on first use).
    pub fn bus(&self, name: &str) -> Arc<BusStats> {
        self.buses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Records a request's time.
    pub fn latency(&self, d: Duration) {
        self.latency.observe(d.as_secs_f64());
    }
}

impl Collector for ModbusStats {
    /// The series (nothing if no bus is configured).
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let buses = self.buses.lock().unwrap_or_else(PoisonError::into_inner);
        if buses.is_empty() {
            return Ok(());
        }
        collect::counters(
            &mut encoder,
            "modbus_requests_total",
            "Modbus requests, by bus and result.",
            buses.iter().flat_map(|(name, b)| {
                RequestResult::ALL
                    .map(|r| ([("bus", name.as_str()), ("result", r.as_str())], b.count(r)))
            }),
        )?;
        collect::counters(
            &mut encoder,
            "modbus_reconnects_total",
            "Modbus connections opened again after a timeout, garbage or failure.",
            buses.iter().map(|(name, b)| {
                (
                    [("bus", name.as_str())],
                    b.reconnects.load(Ordering::Relaxed),
                )
            }),
        )?;
        self.latency.encode(encoder.encode_descriptor(
            "modbus_request_seconds",
            "Time of one Modbus request, sent to answered.",
            None,
            self.latency.metric_type(),
        )?)
    }
}
