//! The highest sustained ingest rate: the offered rate stepped up until the gateway stops
//! keeping up.
//!
//! One step: the publishers run at the offered rate for a settling moment and then one
//! window; `/metrics` is read at both ends of the window (telemetry taken at ingest, reading
//! rows stored, rows dropped) and every 250 ms in between (queue depths). Then the publishers
//! pause and the step waits until the gateway has taken in every message the broker accepted
//! (PUBACKs counted by the publishers) and stored all their rows: the drain time.
//!
//! A step is **sustained** when, over its window, the gateway took in at least 97 % of what the
//! broker accepted, stored at least [`STORED_SHARE`] of the rows it took in, and dropped no
//! reading, and afterwards had taken in and stored every row within [`MAX_DRAIN`] — so nothing
//! was piling up. (The drain alone would let a gateway with a deep readings queue pass a step
//! its writer does not keep up with: a 3 s window and 1 s of drain hide a 25 % deficit.) The highest sustained step's rate (taken
//! in, per second) is the result. Steps go up in fractions of the baseline rate; after the
//! first step that is not sustained, two more bisect between it and the last good one (full
//! mode).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::cpu::{Meter, Usage};
use super::gateway::Gateway;
use super::load::{CHANNELS, Load};
use super::{BenchError, Plan, progress};

/// The longest a sustained step may take to drain after its window.
pub const MAX_DRAIN: Duration = Duration::from_millis(1000);

/// How long a step waits for the gateway to catch up before it gives up on that.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// The share of the accepted messages (and their rows) a sustained step must take in (store).
const KEEP_UP: f64 = 0.97;

/// The share of the rows taken in during the window a sustained step must have stored during
/// it: below the 97 % taken in by the error of the stored count, which the gateway samples every
/// 100 ms (up to 100 ms of rows at each end of a 3 s window, ~3 %), and by what the readings
/// writer holds while it gathers a group (up to 250 ms before it writes, ~8 % of the window at
/// either end: decision record 23). A writer that falls behind by more still fails here, and
/// every step must have stored everything within [`MAX_DRAIN`] after its window.
pub const STORED_SHARE: f64 = 0.85;

/// One step of the search.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Step {
    /// Offered rate, messages per second.
    pub offered_per_s: f64,
    /// Accepted by the broker (PUBACKed) during the window, per second.
    pub published_per_s: f64,
    /// Taken in by the gateway during the window, per second.
    pub ingested_per_s: f64,
    /// Reading rows stored during the window, per second.
    pub stored_rows_per_s: f64,
    /// Reading rows dropped during the window.
    pub dropped_rows: u64,
    /// The deepest any one pipeline queue was when sampled in the window.
    pub deepest_queue: u64,
    /// Time to take in and store everything after the window, s (`DRAIN_LIMIT` when it did not).
    pub drain_s: f64,
    /// Whether the gateway kept up (see the module docs).
    pub sustained: bool,
    /// The CPU the gateway, the broker and the load generator used in the window.
    pub cpu: Usage,
}

impl Step {
    /// The gateway's CPU per message taken in during the window, microseconds.
    pub fn gateway_us_per_message(&self) -> f64 {
        Usage::us_per_message(self.cpu.gateway_cores, self.ingested_per_s)
    }
}

/// The search's outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ingest {
    /// The highest sustained rate taken in, messages per second (0 if none was).
    pub sustained_per_s: f64,
    /// Reading rows stored per second at that rate.
    pub stored_rows_per_s: f64,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

impl Ingest {
    /// The sustained step that took in the most.
    pub fn best(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.sustained)
            .max_by(|a, b| a.ingested_per_s.total_cmp(&b.ingested_per_s))
    }
}

/// Runs the search with `load` (connected to the gateway's broker, process `broker_pid`).
///
/// # Errors
/// [`BenchError::Api`] when `/metrics` cannot be read.
pub async fn search(
    gw: &mut Gateway,
    load: &Load,
    plan: &Plan,
    baseline_per_s: f64,
    broker_pid: u32,
) -> Result<Ingest, BenchError> {
    let fractions: &[f64] = if plan.quick {
        &[0.2, 0.5, 0.8, 1.0]
    } else {
        &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    };
    let mut out = Ingest::default();
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    for f in fractions {
        let s = step(gw, load, plan, f * baseline_per_s, broker_pid).await?;
        let ok = s.sustained;
        out.steps.push(s);
        if ok {
            good = Some(f * baseline_per_s);
        } else {
            bad = Some(f * baseline_per_s);
            break;
        }
    }
    if !plan.quick
        && let Some(mut hi) = bad
    {
        let mut lo = good.unwrap_or(0.0);
        for _ in 0..2 {
            let mid = (lo + hi) / 2.0;
            let s = step(gw, load, plan, mid, broker_pid).await?;
            if s.sustained {
                lo = mid;
            } else {
                hi = mid;
            }
            out.steps.push(s);
        }
    }
    if let Some((per_s, rows_per_s)) = out.best().map(|b| (b.ingested_per_s, b.stored_rows_per_s)) {
        out.sustained_per_s = per_s;
        out.stored_rows_per_s = rows_per_s;
    }
    Ok(out)
}

/// One step at `per_s`.
async fn step(
    gw: &mut Gateway,
    load: &Load,
    plan: &Plan,
    per_s: f64,
    broker_pid: u32,
) -> Result<Step, BenchError> {
    load.set_rate(per_s);
    tokio::time::sleep(plan.window / 4).await;
    let (m0, a0, t0) = (gw.metrics().await?, load.acked(), Instant::now());
    let meter = Meter::start(Some(gw.pid()), broker_pid);
    let mut deepest_queue = m0.deepest_queue();
    let end = t0 + plan.window;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250).min(end - Instant::now())).await;
        deepest_queue = deepest_queue.max(gw.metrics().await?.deepest_queue());
    }
    let (m1, a1, t1) = (gw.metrics().await?, load.acked(), Instant::now());
    let cpu = meter.usage();
    load.set_rate(0.0);
    let drain = drain(gw, load).await?;
    gw.rss()?; // still running
    let secs = t1.duration_since(t0).as_secs_f64();
    let published = (a1 - a0) as f64;
    let ingested = m1.telemetry().saturating_sub(m0.telemetry()) as f64;
    let stored = m1.stored().saturating_sub(m0.stored()) as f64;
    let dropped = m1.dropped().saturating_sub(m0.dropped());
    let s = Step {
        offered_per_s: per_s,
        published_per_s: published / secs,
        ingested_per_s: ingested / secs,
        stored_rows_per_s: stored / secs,
        dropped_rows: dropped,
        deepest_queue,
        drain_s: drain.as_secs_f64(),
        // Storing is checked in the window (within the stored count's sampling error) and by
        // the drain: every row of every accepted message stored soon after the window.
        sustained: published > 0.0
            && ingested >= KEEP_UP * published
            && stored >= STORED_SHARE * ingested * CHANNELS as f64
            && dropped == 0
            && drain <= MAX_DRAIN,
        cpu,
    };
    progress(&format!(
        "offered {:>7.0}/s: broker took {:>7.0}/s, gateway took in {:>7.0}/s, stored {:>8.0} rows/s, \
         dropped {}, deepest queue {}, drained in {:.2} s: {}; CPU: gateway {:.2} ({:.1} us/msg), \
         broker {:.2}, load {:.2} cores, machine {:.0} % busy, {:.0} % stolen",
        s.offered_per_s,
        s.published_per_s,
        s.ingested_per_s,
        s.stored_rows_per_s,
        s.dropped_rows,
        s.deepest_queue,
        s.drain_s,
        if s.sustained {
            "sustained"
        } else {
            "NOT sustained"
        },
        s.cpu.gateway_cores,
        s.gateway_us_per_message(),
        s.cpu.broker_cores,
        s.cpu.load_cores,
        s.cpu.machine_busy * 100.0,
        s.cpu.machine_steal * 100.0,
    ));
    Ok(s)
}

/// Waits (polling `/metrics`) until the gateway has taken in every telemetry message the
/// broker accepted from `load` (the only telemetry it gets) and stored or dropped all of their
/// rows; how long that took (60 s, the limit, if it did not).
///
/// # Errors
/// [`BenchError::Api`].
pub async fn drain(gw: &Gateway, load: &Load) -> Result<Duration, BenchError> {
    drain_within(gw, load, DRAIN_LIMIT).await
}

/// [`drain`] with a limit of its own (`limit` if it did not drain).
///
/// # Errors
/// [`BenchError::Api`].
pub async fn drain_within(
    gw: &Gateway,
    load: &Load,
    limit: Duration,
) -> Result<Duration, BenchError> {
    let started = Instant::now();
    loop {
        let m = gw.metrics().await?;
        let target = load.acked();
        if m.telemetry() >= target && m.stored() + m.dropped() >= target * CHANNELS as u64 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Ok(limit);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
