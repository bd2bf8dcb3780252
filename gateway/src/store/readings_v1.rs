//! Moving the readings of the readings file's version 1 (one row per message and channel in
//! `readings`, keyed by `(device, channel, seq)`) into the day tables of version 2, once, when
//! the store opens.
//!
//! Device by device, in windows of [`WINDOW_SEQ`] sequence numbers: each window's rows are
//! grouped into messages by `(seq, ts_ms)`, written to their day's table, and deleted from the
//! old table in the same transaction — a crash stops between windows and the next start goes
//! on from there. The hourly rollups are already right (version 1 kept them) and are not
//! touched. The old table is dropped once empty.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use firegrid_protocols::channel::MAX_CHANNELS;
use firegrid_protocols::message::Reading;

use super::StoreError;
use super::readings::{DAY_MS, count_day, create_day, insert_row};

/// Sequence numbers per transaction (at most this many messages of `MAX_CHANNELS` rows).
const WINDOW_SEQ: i64 = 4096;

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

/// Makes version 1's `readings` table again (empty) if it is gone, for a main file whose
/// version 3 is still to run (it copies an older main file's readings into it): a main file
/// older than its readings file, or a fresh one after the main file was found damaged.
///
/// # Errors
/// A database error.
pub(super) fn table_for_main_v3(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS readings (
            device      TEXT NOT NULL,
            channel     INTEGER NOT NULL,
            seq         INTEGER NOT NULL,
            ts_ms       INTEGER NOT NULL,
            residual_ma INTEGER,
            temp_dc     INTEGER,
            voltage_dv  INTEGER,
            current_ma  INTEGER,
            PRIMARY KEY (device, channel, seq)
        ) STRICT, WITHOUT ROWID;",
    )?;
    Ok(())
}

/// Moves every row of version 1's `readings` table, if it is there, into the day tables, then
/// drops it.
///
/// # Errors
/// A database error (what was moved before it stays moved; the next start goes on).
pub(super) fn drain(conn: &mut Connection) -> Result<Drained, StoreError> {
    let mut done = Drained::default();
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'readings'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
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
                create_day(&tx, day)?;
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
