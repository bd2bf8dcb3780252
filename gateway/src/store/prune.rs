//! Retention: what the store deletes so that it stays bounded — raw readings past
//! [`StoreOptions::readings_retention_ms`] (a day's table dropped whole once the whole day is
//! past it: raw readings are kept up to a day longer than the retention), rollups past theirs, the pending-device list beyond
//! [`StoreOptions::pending_devices_max`], delivered notifications past
//! [`StoreOptions::delivered_notifications_retention_ms`] and alerts nobody could deliver for
//! [`StoreOptions::undelivered_notifications_max_age_ms`] (person deliveries likewise). The gateway runs it on a schedule
//! ([`crate::maintenance`]); every deletion is in small transactions, off the alarm path.
//!
//! [`StoreOptions::readings_retention_ms`]: super::StoreOptions::readings_retention_ms
//! [`StoreOptions::pending_devices_max`]: super::StoreOptions::pending_devices_max
//! [`StoreOptions::delivered_notifications_retention_ms`]: super::StoreOptions::delivered_notifications_retention_ms
//! [`StoreOptions::undelivered_notifications_max_age_ms`]: super::StoreOptions::undelivered_notifications_max_age_ms

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::readings::DAY_MS;
use super::sql;
use super::{Store, StoreError};
use crate::model::UnixMs;

/// Rows deleted per transaction on the main file (bounds how long the journal waits for it).
const CHUNK_ROWS: i64 = 1000;

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Raw readings.
    pub readings: u64,
    /// Hourly rollups (one per device and hour).
    pub hourly: u64,
    /// Entries of the pending-device list (the least recently seen beyond its bound).
    pub pending_devices: u64,
    /// Delivered notifications past their retention.
    pub notifications_delivered: u64,
    /// Notifications never delivered and given up (logged at `warn`).
    pub notifications_undelivered: u64,
    /// Person deliveries delivered or stopped past the delivered retention, or queued longer
    /// ago than the undelivered age.
    pub person_deliveries: u64,
}

impl Store {
    /// Deletes what is past its retention at `now` ([`StoreOptions`](super::StoreOptions)): raw
    /// readings (whole days) and rollups, the pending-device list beyond its bound, delivered
    /// notifications past their retention and notifications nobody could deliver for too long.
    /// Raw readings go one day's table per transaction, rollups and the rest in chunks of
    /// at most 1000 rows on the main file, so that no transaction is long. Run it hourly, off
    /// the alarm path.
    ///
    /// # Errors
    /// A database error (what was deleted before it stays deleted).
    pub fn prune(&self, now: UnixMs) -> Result<PruneReport, StoreError> {
        let options = &self.inner.options;
        let raw_before = sql::int(now.saturating_sub(options.readings_retention_ms))?;
        let hourly_before = sql::int(now.saturating_sub(options.hourly_retention_ms))?;
        let mut report = PruneReport::default();
        // Raw readings: every day that ended before the cutoff, its table dropped whole.
        let days: Vec<(i64, i64)> = self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT day, readings FROM raw_days WHERE (day + 1) * ?1 <= ?2 ORDER BY day",
            )?;
            let rows = stmt.query_map(params![sql::int(DAY_MS)?, raw_before], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        for (day, rows) in days {
            self.write_readings(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute_batch(&format!("DROP TABLE IF EXISTS raw_{day}"))?;
                tx.execute("DELETE FROM raw_days WHERE day = ?1", [day])?;
                tx.commit()?;
                if let Ok(day) = u64::try_from(day) {
                    super::lock(&self.inner.made_days).remove(&day);
                }
                Ok(())
            })?;
            report.readings += u64::try_from(rows).unwrap_or(0);
        }
        // Rollups: the oldest hours first, in chunks (the table is keyed by the hour).
        loop {
            let n = self.write_readings(|conn| {
                Ok(conn
                    .prepare_cached(
                        "DELETE FROM rollups WHERE (hour_ms, device) IN (SELECT hour_ms, device \
                         FROM rollups WHERE hour_ms < ?1 LIMIT ?2)",
                    )?
                    .execute(params![hourly_before, CHUNK_ROWS])?)
            })?;
            report.hourly += n as u64;
            if (n as i64) < CHUNK_ROWS {
                break;
            }
        }
        report.pending_devices = self.delete_in_chunks(
            "DELETE FROM pending_devices WHERE id IN (SELECT id FROM pending_devices \
             ORDER BY last_seen_ms DESC LIMIT ?2 OFFSET ?1)",
            sql::int(options.pending_devices_max as u64)?,
        )?;
        report.notifications_delivered = self.delete_in_chunks(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
             WHERE delivered_ms IS NOT NULL AND delivered_ms < ?1 LIMIT ?2)",
            sql::int(now.saturating_sub(options.delivered_notifications_retention_ms))?,
        )?;
        let given_up = self.delete_in_chunks(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
             WHERE delivered_ms IS NULL AND json_extract(payload, '$.sent_ms') < ?1 LIMIT ?2)",
            sql::int(now.saturating_sub(options.undelivered_notifications_max_age_ms))?,
        )?;
        if given_up > 0 {
            tracing::warn!(
                notifications = given_up,
                "alerts that could not be delivered for too long were given up"
            );
        }
        report.notifications_undelivered = given_up;
        report.person_deliveries = self.delete_in_chunks(
            "DELETE FROM person_deliveries WHERE id IN (SELECT id FROM person_deliveries \
             WHERE coalesce(delivered_ms, stopped_ms) < ?1 LIMIT ?2)",
            sql::int(now.saturating_sub(options.delivered_notifications_retention_ms))?,
        )?;
        report.person_deliveries += self.delete_in_chunks(
            "DELETE FROM person_deliveries WHERE id IN (SELECT id FROM person_deliveries \
             WHERE created_ms < ?1 LIMIT ?2)",
            sql::int(now.saturating_sub(options.undelivered_notifications_max_age_ms))?,
        )?;
        Ok(report)
    }

    /// Runs `delete` (parameters: `?1` = `arg`, `?2` = the chunk size) until it deletes
    /// nothing; returns the rows deleted.
    fn delete_in_chunks(&self, delete: &str, arg: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.write_bulk(|conn| {
                Ok(conn
                    .prepare_cached(delete)?
                    .execute(params![arg, CHUNK_ROWS])?)
            })?;
            total += n as u64;
            if (n as i64) < CHUNK_ROWS {
                return Ok(total);
            }
        }
    }
}
