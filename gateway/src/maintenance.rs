//! Housekeeping on a schedule, off the alarm path: the store's retention ([`Store::prune`]:
//! readings by `[store] readings_retention_days`, rollups, the pending-device list and the
//! notifications outbox bounded) and passive checkpoints of both store files
//! ([`Store::checkpoint`]), each on the blocking pool so that no runtime thread waits for
//! SQLite.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::UnixMs;
use crate::store::{PruneReport, Store};

/// When housekeeping runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Between prunes (default 1 h; the first one this long after start-up, so that a
    /// restart never begins with a long delete).
    pub prune_every: Duration,
    /// Between checkpoints (default 10 s: the journal's WAL stays small, and the journal's
    /// own commits never have to checkpoint).
    pub checkpoint_every: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            prune_every: Duration::from_secs(3600),
            checkpoint_every: Duration::from_secs(10),
        }
    }
}

/// Runs housekeeping on `store` until `cancel`, with the wall clock `clock` (a test passes
/// its own). Each prune's report goes to `reports`, if given, and to the log.
///
/// # Cancel safety
/// Stops between steps: a prune or checkpoint that has started finishes on the blocking pool.
pub async fn run(
    store: Store,
    schedule: Schedule,
    clock: fn() -> UnixMs,
    cancel: CancellationToken,
    reports: Option<mpsc::UnboundedSender<PruneReport>>,
) {
    let start = tokio::time::Instant::now();
    let mut prune = tokio::time::interval_at(start + schedule.prune_every, schedule.prune_every);
    let mut checkpoint =
        tokio::time::interval_at(start + schedule.checkpoint_every, schedule.checkpoint_every);
    // A late step runs once, not once for each tick missed.
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = checkpoint.tick() => {
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.checkpoint()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("store checkpoint failed (tried again later): {e}"),
                    Err(e) => tracing::error!("store checkpoint failed: {e}"),
                }
            }
            _ = prune.tick() => {
                let (store, now) = (store.clone(), clock());
                match tokio::task::spawn_blocking(move || store.prune(now)).await {
                    Ok(Ok(report)) => {
                        tracing::info!(?report, "store pruned");
                        if let Some(r) = &reports {
                            let _ = r.send(report);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!("store not pruned (tried again later): {e}"),
                    Err(e) => tracing::error!("store not pruned: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Sample, StoreOptions};
    use firegrid_protocols::DeviceId;
    use firegrid_protocols::message::Reading;

    const DAY_MS: u64 = 86_400_000;
    /// 2025-11-29 08:00 UTC: the clock the schedule is given.
    const T0: u64 = 1_764_403_200_000;

    fn t0() -> UnixMs {
        T0
    }

    fn sample(seq: u32, ts_ms: u64) -> Sample {
        Sample {
            device: DeviceId::new("d-1").expect("a valid device id"),
            seq,
            ts_ms,
            readings: vec![Reading {
                channel: 0,
                residual_ma: Some(100),
                ..Reading::default()
            }],
        }
    }

    /// Tokio's clock paused: the schedule's hour passes at once, and the prune it runs sees
    /// the explicit time `T0`.
    #[tokio::test(start_paused = true)]
    async fn the_schedule_prunes_readings_past_their_retention() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (store, _) = Store::open_with(
            dir.path().join("firegrid.db"),
            StoreOptions {
                readings_retention_ms: 30 * DAY_MS,
                ..StoreOptions::default()
            },
        )
        .expect("a store");
        store
            .insert_readings(&[sample(1, T0 - 31 * DAY_MS), sample(2, T0 - DAY_MS)])
            .expect("readings");
        let cancel = CancellationToken::new();
        let (tx, mut reports) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            store.clone(),
            Schedule::default(),
            t0,
            cancel.clone(),
            Some(tx),
        ));
        let first = reports.recv().await.expect("a prune within the first hour");
        assert_eq!(first.readings, 1, "{first:?}");
        let second = reports.recv().await.expect("a prune every hour");
        assert_eq!(second, PruneReport::default());
        let device = DeviceId::new("d-1").expect("a valid device id");
        let left = store
            .history(&device, 0, T0 - 40 * DAY_MS, T0, 0)
            .expect("history");
        assert_eq!(left.len(), 1, "the reading within the retention stays");
        cancel.cancel();
        task.await.expect("the schedule stops");
    }
}
