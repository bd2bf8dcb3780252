//! Moving the readings of the readings file's version 1 (one row per message and channel in
//! `readings`, keyed by `(device, channel, seq)`) into the day tables of version 2, once, when
//! the store opens.
//!
//! Device by device, in windows of [`WINDOW_SEQ`] sequence numbers: each window's rows are
//! grouped into messages by `(seq, ts_ms)`, written to their day's table, and deleted from the
//! old table in the same transaction — a crash stops between windows and the next start goes
//! on from there. The old table is dropped once empty.
//!
//! Then the hourly rollups of versions 1 and 2 (`readings_hourly`, one row per (device, channel,
//! hour)) into version 3's (`rollups`, one per (hour, device), channels packed): in chunks of
//! [`HOURLY_CHUNK`] rows, each chunk's rows added to the new table and deleted from the old one
//! in one transaction, the old table dropped once empty.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use firegrid_protocols::channel::MAX_CHANNELS;
use firegrid_protocols::message::Reading;

use super::StoreError;
use super::readings::{DAY_MS, DayKey, add_rollups, count_day, create_day, insert_row};
use super::rollup::{Acc, Hour, Rollup};

/// Sequence numbers per transaction (at most this many messages of `MAX_CHANNELS` rows).
const WINDOW_SEQ: i64 = 4096;

/// Rows of the old rollups moved per transaction.
const HOURLY_CHUNK: i64 = 4096;

/// What [`drain`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Drained {
    /// Reading rows (message, channel) read from version 1's table.
    pub(super) rows: u64,
    /// Messages written to the day tables.
    pub(super) messages: u64,
}

fn narrow<T: TryFrom<i64>>(v: Option<i64>) -> Option<T> {
    v.and_then(|v| T::try_from(v).ok())
}

/// Makes version 1's `readings` and `readings_hourly` tables again (empty) if they are gone,
/// for a main file whose version 3 is still to run (it copies an older main file's readings and
/// rollups into them): a main file older than its readings file, or a fresh one after the main
/// file was found damaged.
///
/// # Errors
/// A database error.
pub(super) fn table_for_main_v3(conn: &Connection) -> Result<(), StoreError> {
    // Version 1 as released (a migration is never edited), each statement made idempotent.
    conn.execute_batch(
        &super::schema::READINGS_MIGRATIONS[0]
            .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
            .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS "),
    )?;
    Ok(())
}

/// Whether the readings file has a table of this name.
fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some())
}

/// Moves every row of the old rollups (`readings_hourly`), if the table is there, into
/// `rollups`, then drops it. Returns the rows moved.
///
/// # Errors
/// A database error (what was moved before it stays moved; the next start goes on).
pub(super) fn drain_hourly(conn: &mut Connection) -> Result<u64, StoreError> {
    let mut moved = 0;
    if !has_table(conn, "readings_hourly")? {
        return Ok(moved);
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut keys = Vec::new();
        let mut rollups: BTreeMap<(u64, String), Rollup> = BTreeMap::new();
        {
            let mut rows = tx.prepare_cached(
                "SELECT device, channel, hour_ms, count, \
                 residual_n, residual_min, residual_max, residual_sum, \
                 temp_n, temp_min, temp_max, temp_sum, \
                 voltage_n, voltage_min, voltage_max, voltage_sum, \
                 current_n, current_min, current_max, current_sum \
                 FROM readings_hourly ORDER BY device, channel, hour_ms LIMIT ?1",
            )?;
            let mut it = rows.query([HOURLY_CHUNK])?;
            while let Some(r) = it.next()? {
                let (device, channel, hour_ms): (String, i64, i64) =
                    (r.get(0)?, r.get(1)?, r.get(2)?);
                keys.push((device.clone(), channel, hour_ms));
                let (Ok(ch), Ok(hour)) = (u8::try_from(channel), u64::try_from(hour_ms)) else {
                    continue;
                };
                if usize::from(ch) >= MAX_CHANNELS {
                    continue;
                }
                let acc = |i: usize| -> rusqlite::Result<Acc> {
                    Ok(Acc {
                        n: r.get(i)?,
                        min: r.get(i + 1)?,
                        max: r.get(i + 2)?,
                        sum: r.get(i + 3)?,
                    })
                };
                let mut hour_of = Rollup::default();
                hour_of.0.insert(
                    ch,
                    Hour {
                        count: r.get(3)?,
                        q: [acc(4)?, acc(8)?, acc(12)?, acc(16)?],
                    },
                );
                rollups.entry((hour, device)).or_default().merge(&hour_of);
            }
        }
        if keys.is_empty() {
            tx.execute_batch("DROP TABLE readings_hourly")?;
            tx.commit()?;
            if moved > 0 {
                tracing::info!(
                    rows = moved,
                    "hourly rollups moved to one row per device and hour"
                );
            }
            return Ok(moved);
        }
        add_rollups(
            &tx,
            rollups
                .iter()
                .map(|((h, d), r)| (*h, d.as_str(), r.clone())),
        )?;
        {
            let mut delete = tx.prepare_cached(
                "DELETE FROM readings_hourly WHERE device = ?1 AND channel = ?2 AND hour_ms = ?3",
            )?;
            for (device, channel, hour_ms) in &keys {
                delete.execute(params![device, channel, hour_ms])?;
            }
        }
        moved += keys.len() as u64;
        tx.commit()?;
    }
}

/// Moves every row of version 1's `readings` table, if it is there, into the day tables, then
/// drops it.
///
/// # Errors
/// A database error (what was moved before it stays moved; the next start goes on).
pub(super) fn drain(conn: &mut Connection) -> Result<Drained, StoreError> {
    let mut done = Drained::default();
    if !has_table(conn, "readings")? {
        return Ok(done);
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device: Option<String> = tx
            .query_row(
                "SELECT device FROM readings ORDER BY device LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let Some(device) = device else {
            tx.execute_batch("DROP TABLE readings")?;
            tx.commit()?;
            if done.rows > 0 {
                tracing::info!(
                    rows = done.rows,
                    messages = done.messages,
                    "readings moved to one row per message in tables per day"
                );
            }
            return Ok(done);
        };
        // The window: from the device's lowest sequence number left, over every channel.
        let mut start: Option<i64> = None;
        {
            let mut first = tx.prepare_cached(
                "SELECT min(seq) FROM readings WHERE device = ?1 AND channel = ?2",
            )?;
            for ch in 0..MAX_CHANNELS as i64 {
                let m: Option<i64> = first.query_row(params![device, ch], |r| r.get(0))?;
                start = match (start, m) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let Some(start) = start else {
            // Channels beyond the protocol's (a hand-edited file): nothing to move.
            tx.execute("DELETE FROM readings WHERE device = ?1", [&device])?;
            tx.commit()?;
            continue;
        };
        let end = start.saturating_add(WINDOW_SEQ);
        let mut messages: BTreeMap<(i64, i64), Vec<Reading>> = BTreeMap::new();
        {
            let mut rows = tx.prepare_cached(
                "SELECT channel, seq, ts_ms, residual_ma, temp_dc, voltage_dv, current_ma \
                 FROM readings WHERE device = ?1 AND channel = ?2 AND seq >= ?3 AND seq < ?4 \
                 ORDER BY seq",
            )?;
            for ch in 0..MAX_CHANNELS as i64 {
                let mut it = rows.query(params![device, ch, start, end])?;
                while let Some(r) = it.next()? {
                    let (seq, ts): (i64, i64) = (r.get(1)?, r.get(2)?);
                    let reading = Reading {
                        channel: narrow(r.get(0)?).unwrap_or(0),
                        residual_ma: narrow(r.get(3)?),
                        temp_dc: narrow(r.get(4)?),
                        voltage_dv: narrow(r.get(5)?),
                        current_ma: narrow(r.get(6)?),
                    };
                    messages.entry((seq, ts)).or_default().push(reading);
                    done.rows += 1;
                }
            }
        }
        let mut per_day: BTreeMap<u64, u64> = BTreeMap::new();
        for ((seq, ts), readings) in &messages {
            let (Ok(seq), Ok(ts)) = (u32::try_from(*seq), u64::try_from(*ts)) else {
                continue;
            };
            let day = ts / DAY_MS;
            if !per_day.contains_key(&day) {
                // Keyed by the device: these rows come without their hours' rollups, which
                // `Store::max_seq` follows in a bucketed day.
                create_day(&tx, day, DayKey::Device)?;
            }
            if insert_row(&tx, day, &device, seq, ts, readings)? {
                *per_day.entry(day).or_default() += readings.len() as u64;
                done.messages += 1;
            } else {
                per_day.entry(day).or_default();
            }
        }
        for (day, rows) in per_day {
            count_day(&tx, day, rows)?;
        }
        {
            let mut delete = tx.prepare_cached(
                "DELETE FROM readings WHERE device = ?1 AND channel = ?2 AND seq >= ?3 \
                 AND seq < ?4",
            )?;
            for ch in 0..MAX_CHANNELS as i64 {
                delete.execute(params![device, ch, start, end])?;
            }
        }
        tx.commit()?;
    }
}
