//! What the metrics cost the alarm path: the operations the pipeline does per message and per
//! alarm, through prometheus-client (as [`Metrics`] does them) against the hand-written
//! atomics they replaced (kept below as the baseline), in one run, interleaved, the median of
//! several rounds. Ignored by the test runs (they assert nothing); `scripts/measure metrics`
//! runs them in release. docs/performance.md and decision 0018 quote them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::{ALARM_LATENCY_BUCKETS, AlertChannel, AlertResult, IngestKind, Metrics, Queue};

/// Operations per timed loop.
const OPS: u32 = 5_000_000;
/// Rounds; the median is reported.
const ROUNDS: usize = 7;

/// The hand-written histogram this module replaced: a count per bucket, the sum in ns.
struct OldHistogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl OldHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
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
}

/// Alarm latencies as the gateway sees them, 1–30 ms, cycled through.
const LATENCIES_US: [u64; 8] = [1_200, 2_300, 3_100, 4_800, 6_000, 9_500, 14_000, 30_000];

/// Nanoseconds per call of `op(i)`, the median of [`ROUNDS`] rounds, each `threads` threads
/// running [`OPS`] calls at once (the time is the slowest thread's, per call of one thread).
fn ns_per_op(threads: usize, op: &(dyn Fn(u32) + Sync)) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let start = Instant::now();
                            for i in 0..OPS {
                                op(black_box(i));
                            }
                            start.elapsed()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a measurement loop does not panic"))
                    .max()
                    .unwrap_or_default()
            })
            .as_nanos() as f64
                / f64::from(OPS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn report(what: &str, threads: usize, old: &(dyn Fn(u32) + Sync), new: &(dyn Fn(u32) + Sync)) {
    // Interleaved rounds would share the noise; one warm-up of each first.
    let _ = (ns_per_op(1, old), ns_per_op(1, new));
    let (o, n) = (ns_per_op(threads, old), ns_per_op(threads, new));
    println!("| {what} | {threads} | {o:.1} | {n:.1} |");
}

#[test]
#[ignore = "a measurement: scripts/measure metrics"]
fn hot_operations_old_against_new() {
    let m = Metrics::new();
    println!(
        "ns per operation, median of {ROUNDS} rounds of {OPS} (release build)\n\
         | operation | threads | hand-written atomics | prometheus-client |\n| --- | --- | --- | --- |"
    );

    let old_counter = AtomicU64::new(0);
    for threads in [1, 2] {
        report(
            "counter +1 (`ingested`)",
            threads,
            &|_| {
                old_counter.fetch_add(1, Ordering::Relaxed);
            },
            &|_| m.ingested(IngestKind::Event),
        );
    }

    let old_alerts: [[AtomicU64; 3]; 3] = Default::default();
    report(
        "labelled counter +1, handle resolved once (`alert`)",
        1,
        &|i| {
            let (c, r) = (i as usize % 3, (i as usize / 3) % 3);
            old_alerts[c][r].fetch_add(1, Ordering::Relaxed);
        },
        &|i| {
            let c = AlertChannel::ALL[i as usize % 3];
            let r = AlertResult::ALL[(i as usize / 3) % 3];
            m.alert(c, r);
        },
    );

    let old_queue = AtomicU64::new(0);
    report(
        "gauge set (`set_queue_depth`)",
        1,
        &|i| old_queue.store(u64::from(i & 63), Ordering::Relaxed),
        &|i| m.set_queue_depth(Queue::Journal, (i & 63) as usize),
    );

    let old_latency = OldHistogram::new(&ALARM_LATENCY_BUCKETS);
    let latency = |i: u32| Duration::from_micros(LATENCIES_US[i as usize % LATENCIES_US.len()]);
    for threads in [1, 2] {
        report(
            "histogram observe (`alarm_latency`)",
            threads,
            &|i| old_latency.observe(latency(i)),
            &|i| m.alarm_latency(latency(i)),
        );
    }

    // The open-ended family: a refusal by its reason (not the alarm path).
    let old_refusals: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    let reasons = ["duplicate", "unknown_device", "decode_json", "bad_topic"];
    report(
        "refusal by reason (`refused`: mutex + map, against read lock + map)",
        1,
        &|i| {
            let reason = reasons[i as usize % reasons.len()];
            let mut map = old_refusals.lock().unwrap_or_else(PoisonError::into_inner);
            match map.get_mut(reason) {
                Some(n) => *n += 1,
                None => {
                    map.insert(reason.to_string(), 1);
                }
            }
        },
        &|i| m.refused(reasons[i as usize % reasons.len()]),
    );

    // What resolving the label set per increment would cost (a `Family` looked up each
    // time), against the handle resolved once that `Metrics` uses.
    let family = Family::<[(&str, &str); 1], Counter>::default();
    let lookup = ns_per_op(1, &|i| {
        family
            .get_or_create(&[("kind", IngestKind::ALL[i as usize % 3].as_str())])
            .inc();
    });
    let handle = ns_per_op(1, &|i| m.ingested(IngestKind::ALL[i as usize % 3]));
    println!(
        "labelled counter +1: {handle:.1} ns through the handle resolved once, \
         {lookup:.1} ns looking the label set up in a Family each time (not done)"
    );

    // A scrape of the metrics above, for scale.
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..1000 {
        bytes += black_box(m.render()).len();
    }
    println!(
        "render: {:.1} µs per scrape of {} bytes",
        start.elapsed().as_secs_f64() * 1e6 / 1000.0,
        bytes / 1000
    );
}
