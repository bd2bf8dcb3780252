//! The data directory's free space, watched: a **low-disk warning** well before SQLite runs out
//! of space, and a **full** state — a system alarm — before it does.
//!
//! The decision is a pure function of the free bytes and the limits ([`level`]); the watcher
//! ([`watch()`]) samples the file system (`statvfs`) on an interval and publishes a
//! [`DiskReport`] whenever the level changes (and the free bytes on every sample, for
//! `/metrics`). What a level does is the application's (`app.rs`): low is logged and shown by
//! `/healthz` without failing it; full is logged as an error, turns `/healthz` 503 and is
//! published retained on [`SYSTEM_DISK_TOPIC`] for the monitoring centre. Alarms keep their
//! own guarantee meanwhile: a journal commit that fails for want of space is not acknowledged,
//! so devices resend until it succeeds (docs/architecture.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where the gateway publishes its disk state (retained).
pub const SYSTEM_DISK_TOPIC: &str = "firegrid/v1/system/disk";

/// The free space below which the disk is low, and below which it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    /// Free bytes below which a warning is raised.
    pub low_bytes: u64,
    /// Free bytes below which the disk counts as full (a system alarm).
    pub full_bytes: u64,
}

/// How much room the data directory has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskLevel {
    /// Above the low mark.
    Ok,
    /// Below the low mark: warn.
    Low,
    /// Below the full mark: a system alarm.
    Full,
}

/// The level of `free_bytes` against `limits`.
pub const fn level(free_bytes: u64, limits: DiskLimits) -> DiskLevel {
    if free_bytes < limits.full_bytes {
        DiskLevel::Full
    } else if free_bytes < limits.low_bytes {
        DiskLevel::Low
    } else {
        DiskLevel::Ok
    }
}

/// One sample of the data directory's file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskReport {
    /// The level.
    pub level: DiskLevel,
    /// Bytes an unprivileged writer may still use.
    pub free_bytes: u64,
    /// The file system's size, bytes.
    pub total_bytes: u64,
    /// The directory watched.
    pub path: PathBuf,
    /// Why it could not be measured, if it could not (the level is then the last known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The free and total bytes of the file system holding `path`.
///
/// # Errors
/// What `statvfs` says (e.g. the directory is gone).
pub fn space(path: &Path) -> Result<(u64, u64), nix::Error> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let fragment = s.fragment_size();
    Ok((
        s.blocks_available().saturating_mul(fragment),
        s.blocks().saturating_mul(fragment),
    ))
}

/// Samples `path` every `every` until `cancel`, sending each sample to `tx` (a watch: the
/// receivers see the latest). The first sample is taken at once.
pub async fn watch(
    path: PathBuf,
    limits: DiskLimits,
    every: Duration,
    tx: watch::Sender<DiskReport>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let last = tx.borrow().clone();
        let report = match space(&path) {
            Ok((free_bytes, total_bytes)) => DiskReport {
                level: level(free_bytes, limits),
                free_bytes,
                total_bytes,
                path: path.clone(),
                error: None,
            },
            Err(e) => DiskReport {
                error: Some(format!("statvfs {}: {e}", path.display())),
                ..last
            },
        };
        tx.send_replace(report);
    }
}

/// What the gateway does with each sample: `/healthz` and `/metrics` follow it; a change of
/// level is logged (low: a warning; full: an error) and published retained on
/// [`SYSTEM_DISK_TOPIC`] (QoS 1, urgent lane: it must not wait behind telemetry). Runs until the
/// watcher stops.
pub async fn follow(
    mut rx: watch::Receiver<DiskReport>,
    health: std::sync::Arc<crate::api::Health>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    broker: crate::broker::BrokerHandle,
) {
    let mut published: Option<DiskLevel> = None;
    loop {
        let report = rx.borrow_and_update().clone();
        metrics.set_disk_free(report.free_bytes);
        health.set_disk(report.clone());
        if published != Some(report.level) && report.total_bytes > 0 {
            let free_mib = report.free_bytes >> 20;
            match report.level {
                DiskLevel::Full => tracing::error!(
                    free_mib,
                    path = %report.path.display(),
                    "SYSTEM ALARM: the data directory's disk is full: /healthz is 503; alarms are \
                     acknowledged again once the journal can be written ([store] disk_full_mb)"
                ),
                DiskLevel::Low => tracing::warn!(
                    free_mib,
                    path = %report.path.display(),
                    "the data directory's disk is low ([store] disk_low_mb): free space before \
                     it fills"
                ),
                DiskLevel::Ok if published.is_some() => {
                    tracing::info!(free_mib, "the data directory's disk has room again")
                }
                DiskLevel::Ok => {}
            }
            let payload = serde_json::json!({
                "level": report.level,
                "free_bytes": report.free_bytes,
                "total_bytes": report.total_bytes,
                "ts": crate::clock::now_ms(),
            });
            match broker
                .publish(
                    crate::broker::Priority::Urgent,
                    SYSTEM_DISK_TOPIC,
                    payload.to_string(),
                    crate::broker::Qos::AtLeastOnce,
                    true,
                )
                .await
            {
                Ok(()) => published = Some(report.level),
                // Tried again at the next sample.
                Err(e) => tracing::warn!("disk state not published: {e}"),
            }
        }
        if rx.changed().await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;
    const LIMITS: DiskLimits = DiskLimits {
        low_bytes: 1024 * MB,
        full_bytes: 64 * MB,
    };

    #[test]
    fn levels_follow_the_marks() {
        assert_eq!(level(10_000 * MB, LIMITS), DiskLevel::Ok);
        assert_eq!(
            level(1024 * MB, LIMITS),
            DiskLevel::Ok,
            "at the mark: not yet low"
        );
        assert_eq!(level(1024 * MB - 1, LIMITS), DiskLevel::Low);
        assert_eq!(level(64 * MB, LIMITS), DiskLevel::Low);
        assert_eq!(level(64 * MB - 1, LIMITS), DiskLevel::Full);
        assert_eq!(level(0, LIMITS), DiskLevel::Full);
    }

    #[test]
    fn the_temporary_directory_has_a_size() {
        let (free, total) = space(&std::env::temp_dir()).expect("statvfs works here");
        assert!(total > 0 && free <= total, "{free} of {total}");
    }

    #[tokio::test]
    async fn the_watcher_reports_at_once_and_says_why_it_cannot_measure() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let first = DiskReport {
            level: DiskLevel::Ok,
            free_bytes: 0,
            total_bytes: 0,
            path: dir.path().to_owned(),
            error: None,
        };
        let (tx, mut rx) = watch::channel(first);
        let cancel = CancellationToken::new();
        let limits = DiskLimits {
            low_bytes: u64::MAX,
            full_bytes: 0,
        };
        let task = tokio::spawn(watch(
            dir.path().to_owned(),
            limits,
            Duration::from_secs(3600),
            tx,
            cancel.clone(),
        ));
        rx.changed().await.expect("a first sample");
        let r = rx.borrow_and_update().clone();
        assert_eq!(
            r.level,
            DiskLevel::Low,
            "every size is below u64::MAX: {r:?}"
        );
        assert!(r.total_bytes > 0 && r.error.is_none(), "{r:?}");
        cancel.cancel();
        task.await.expect("the watcher stops");

        // A directory that is gone: the last level stays, with the reason.
        let gone = dir.path().join("gone");
        let (tx, mut rx) = watch::channel(r);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(watch(
            gone,
            limits,
            Duration::from_secs(3600),
            tx,
            cancel.clone(),
        ));
        rx.changed().await.expect("a sample");
        let r = rx.borrow().clone();
        assert_eq!(r.level, DiskLevel::Low);
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains("statvfs")),
            "{r:?}"
        );
        cancel.cancel();
        task.await.expect("the watcher stops");
    }
}
