//! Readings, shaped for the write rate: one row per telemetry message, its channels packed
//! ([`packed`]), in a table per UTC day of the readings' time (`raw_<day>`, listed with its
//! row count and key in `raw_days`), appended in the order written, with one unique index,
//! which both the history's range reads and the dedupe of redelivered messages use:
//! `(ts_ms / 1000, device, ts_ms, seq)` — the second of the reading first, so that what a fleet
//! sends in one second lands on one compact run of the index however large the fleet
//! (decision record 24); days written before it keep `(device, ts_ms, seq)` ([`DayKey`]).
//! Retention drops a day's table whole ([`Store::prune`]), never a `DELETE`.
//!
//! Hourly rollups: one row per (hour, device) with its channels packed ([`super::rollup`]),
//! keyed by the hour first, so that the hour being written is one compact run of the tree
//! however large the fleet, upserted in the transaction that stores the rows, one per (hour,
//! device) of it (decision record 21). With [`StoreOptions::raw_readings`] off (readings go to
//! the TSDB), only the rollups are kept. History: raw, raw grouped by a step under an hour, or
//! rollups (one lookup per hour).
//!
//! [`StoreOptions::raw_readings`]: super::StoreOptions::raw_readings

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::{ChannelNo, Quantity};
use firegrid_protocols::message::{Reading, Seq, Telemetry};

use super::rollup::{Acc, Hour, Rollup, values};
use super::{Store, StoreError};
use super::{packed, sql};
use crate::model::UnixMs;

/// One hour, ms: the rollup period, and the step from which [`Store::history`] reads rollups.
pub const HOUR_MS: u64 = 3_600_000;

/// The most points [`Store::history`] returns.
pub const MAX_POINTS: u64 = 10_000;

/// One telemetry message's readings, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// From whom.
    pub device: DeviceId,
    /// The message's sequence number (the dedupe key with the device and channel).
    pub seq: Seq,
    /// When the readings were taken: the device's clock if it has one, else the receive time.
    pub ts_ms: UnixMs,
    /// One per channel.
    pub readings: Vec<Reading>,
}

impl Sample {
    /// The readings of a telemetry message received at `received_ms`.
    pub fn from_telemetry(device: DeviceId, telemetry: &Telemetry, received_ms: UnixMs) -> Self {
        Self {
            device,
            seq: telemetry.seq,
            ts_ms: telemetry.time.unix_ms.unwrap_or(received_ms),
            readings: telemetry.readings.iter().copied().collect(),
        }
    }
}

/// What [`Store::insert_readings`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InsertReport {
    /// Rows stored.
    pub inserted: u64,
    /// Rows already stored (redelivered telemetry).
    pub duplicates: u64,
    /// Rows refused: timed before 2020 or more than a day ahead of the gateway's clock.
    pub refused: u64,
}

/// Minimum, maximum and mean of a quantity over a point's interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agg {
    /// Minimum.
    pub min: i64,
    /// Maximum.
    pub max: i64,
    /// Mean.
    pub avg: f64,
}

/// One point of a history: an interval starting at `t_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Point {
    /// Start of the interval (a multiple of the step since the epoch; the reading's own time
    /// for raw points).
    pub t_ms: UnixMs,
    /// Readings in it.
    pub count: u64,
    /// Residual current, mA.
    pub residual_ma: Option<Agg>,
    /// Temperature, deci-°C.
    pub temp_dc: Option<Agg>,
    /// Voltage, deci-volts.
    pub voltage_dv: Option<Agg>,
    /// Load current, mA.
    pub current_ma: Option<Agg>,
}

/// One day, ms: raw readings are kept in one table per UTC day of their time.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// Readings timed before 2020-01-01 are refused: no clock that was ever set says so, and each
/// day of readings is a table of its own.
const OLDEST_MS: u64 = 1_577_836_800_000;

/// Readings timed more than this far past the gateway's clock are refused (a device clock
/// gone wrong would otherwise make tables of days to come).
const FUTURE_MS: u64 = DAY_MS;

/// The table of the raw readings of day `day` (days since the Unix epoch, UTC).
fn day_table(day: u64) -> String {
    format!("raw_{day}")
}

/// The width of the time buckets that lead a new day table's index, ms
/// (`raw_days.key_bucket_ms`). Each group the readings writer takes spans well under a second
/// of readings, so its index entries go to the end of one or two buckets: measured at 100k
/// devices, ~1.3 KB written per message against ~5.1 KB with the device first, and half the
/// writer's time (decision record 24). The price is on the history: one index lookup per
/// second of the range asked.
const KEY_BUCKET_MS: u64 = 1000;

/// How a day table's unique index is keyed (`raw_days.key_bucket_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DayKey {
    /// `(device, ts_ms, seq)`, stored as 0: the day tables made before the bucketed key, and
    /// those the move from readings file version 1 makes (rows without their rollups).
    Device,
    /// `(ts_ms / width, device, ts_ms, seq)`, the width in ms: what the writer makes. Every
    /// row of such a day has its hour's rollup, written in the same transaction.
    Bucket(u64),
}

impl DayKey {
    /// What the readings writer makes a new day with.
    pub(super) const NEW: Self = Self::Bucket(KEY_BUCKET_MS);

    fn of(key_bucket_ms: i64) -> Self {
        match u64::try_from(key_bucket_ms) {
            Ok(w) if w > 0 => Self::Bucket(w),
            _ => Self::Device,
        }
    }

    /// `(columns of the index, raw_days.key_bucket_ms)`.
    fn sql(self) -> (String, u64) {
        match self {
            Self::Device => ("device, ts_ms, seq".into(), 0),
            Self::Bucket(w) => (format!("ts_ms / {w}, device, ts_ms, seq"), w),
        }
    }
}

/// Makes day `day`'s table if it is not there: one row per message in the order written
/// (rowid), its channels packed ([`packed`]), and the one index the history needs, unique,
/// keyed as `key` says ([`DayKey::NEW`] for what the writer makes): a redelivered message is a
/// no-op (a bucket is a function of `ts_ms`, so both keys are as unique as `(device, ts_ms,
/// seq)`). A day table that is there keeps its index, and its `raw_days` row says which.
pub(super) fn create_day(conn: &Connection, day: u64, key: DayKey) -> Result<(), StoreError> {
    let t = day_table(day);
    let (columns, width) = key.sql();
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {t} (device TEXT NOT NULL, seq INTEGER NOT NULL, \
         ts_ms INTEGER NOT NULL, channels BLOB NOT NULL) STRICT; \
         CREATE UNIQUE INDEX IF NOT EXISTS {t}_key ON {t}({columns}); \
         INSERT OR IGNORE INTO raw_days (day, readings, key_bucket_ms) VALUES ({day}, 0, {width});"
    ))?;
    Ok(())
}

/// Stores one message's row in its day's table (made before): whether it was new.
pub(super) fn insert_row(
    tx: &Connection,
    day: u64,
    device: &str,
    seq: Seq,
    ts_ms: UnixMs,
    readings: &[Reading],
) -> Result<bool, StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {} (device, seq, ts_ms, channels) VALUES (?1, ?2, ?3, ?4)",
        day_table(day)
    ))?;
    Ok(insert.execute(params![
        device,
        seq,
        sql::int(ts_ms)?,
        packed::pack(readings)
    ])? > 0)
}

/// Adds `rows` reading rows to day `day`'s count (what [`Store::prune`] reports when it drops
/// the day).
pub(super) fn count_day(tx: &Connection, day: u64, rows: u64) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE raw_days SET readings = readings + ?2 WHERE day = ?1")?
        .execute(params![sql::int(day)?, sql::int(rows)?])?;
    Ok(())
}

/// Adds `rollups` to those stored (one read and one write of a row per (hour, device)). A
/// stored rollup that does not unpack (a damaged file) is replaced, with a warning.
pub(super) fn add_rollups<'a>(
    tx: &Connection,
    rollups: impl IntoIterator<Item = (u64, &'a str, Rollup)>,
) -> Result<(), StoreError> {
    let mut read =
        tx.prepare_cached("SELECT channels FROM rollups WHERE hour_ms = ?1 AND device = ?2")?;
    let mut write = tx.prepare_cached(
        "INSERT INTO rollups (hour_ms, device, channels) VALUES (?1, ?2, ?3) \
         ON CONFLICT(hour_ms, device) DO UPDATE SET channels = excluded.channels",
    )?;
    for (hour_ms, device, mut rollup) in rollups {
        let hour = sql::int(hour_ms)?;
        let stored: Option<Vec<u8>> = read
            .query_row(params![hour, device], |r| r.get(0))
            .optional()?;
        if let Some(blob) = stored {
            match Rollup::unpack(&blob) {
                Ok(before) => rollup.merge(&before),
                Err(e) => tracing::warn!(device, hour_ms, "damaged hourly rollup replaced: {e}"),
            }
        }
        write.execute(params![hour, device, rollup.pack()])?;
    }
    Ok(())
}

/// Writes one chunk (sorted by day, device, time, seq) in one transaction: each message one row
/// of its day's table (`INSERT OR IGNORE`; none when `raw` is false), then the rollups of the
/// rows that were new, one upsert per (hour, device) of the chunk.
fn insert_chunk(
    conn: &mut Connection,
    chunk: &[&Sample],
    raw: bool,
    made_days: &mut std::collections::HashSet<u64>,
) -> Result<InsertReport, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut report = InsertReport::default();
    let mut hours: BTreeMap<(u64, &str), Rollup> = BTreeMap::new();
    let mut day: Option<(u64, u64)> = None;
    for s in chunk {
        let rows = s.readings.len() as u64;
        if raw {
            let d = s.ts_ms / DAY_MS;
            match day {
                Some((at, _)) if at == d => {}
                _ => {
                    if let Some((at, n)) = day {
                        count_day(&tx, at, n)?;
                    }
                    if made_days.insert(d) {
                        create_day(&tx, d, DayKey::NEW)?;
                    }
                    day = Some((d, 0));
                }
            }
            if !insert_row(&tx, d, s.device.as_str(), s.seq, s.ts_ms, &s.readings)? {
                report.duplicates += rows;
                continue;
            }
            if let Some((_, n)) = &mut day {
                *n += rows;
            }
        }
        report.inserted += rows;
        hours
            .entry((s.ts_ms / HOUR_MS * HOUR_MS, s.device.as_str()))
            .or_default()
            .add(&s.readings);
    }
    if let Some((at, n)) = day {
        count_day(&tx, at, n)?;
    }
    add_rollups(&tx, hours.into_iter().map(|((h, d), r)| (h, d, r)))?;
    tx.commit()?;
    Ok(report)
}

/// Calls `each(hour_ms, hour)` for every hourly rollup of a device's `channel` whose hour starts
/// in `[from_ms, to_ms)`, oldest first: one lookup per hour, over the hours the table holds.
fn each_rollup(
    c: &Connection,
    device: &DeviceId,
    channel: ChannelNo,
    (from_ms, to_ms): (UnixMs, UnixMs),
    mut each: impl FnMut(UnixMs, &Hour),
) -> Result<(), StoreError> {
    let (first, last): (Option<i64>, Option<i64>) =
        c.query_row("SELECT min(hour_ms), max(hour_ms) FROM rollups", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    let first = u64::try_from(first)
        .unwrap_or(0)
        .max(from_ms.div_ceil(HOUR_MS) * HOUR_MS);
    let end = u64::try_from(last)
        .unwrap_or(0)
        .saturating_add(1)
        .min(to_ms);
    let mut read =
        c.prepare_cached("SELECT channels FROM rollups WHERE hour_ms = ?1 AND device = ?2")?;
    for hour_ms in (first..end).step_by(HOUR_MS as usize) {
        let blob: Option<Vec<u8>> = read
            .query_row(params![sql::int(hour_ms)?, device.as_str()], |r| r.get(0))
            .optional()?;
        let Some(blob) = blob else { continue };
        let rollup = Rollup::unpack(&blob)
            .map_err(|e| StoreError::Invalid(format!("rollups at {hour_ms}: {e}")))?;
        if let Some(h) = rollup.channel(channel) {
            each(hour_ms, h);
        }
    }
    Ok(())
}

/// The days with a raw table in `[from_day, to_day]` and how each is keyed, oldest first.
fn days(c: &Connection, from_day: u64, to_day: u64) -> Result<Vec<(u64, DayKey)>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT day, key_bucket_ms FROM raw_days WHERE day >= ?1 AND day <= ?2 ORDER BY day",
    )?;
    let rows = stmt.query_map(params![sql::int(from_day)?, sql::int(to_day)?], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for d in rows {
        let (day, key) = d?;
        out.push((u64::try_from(day).unwrap_or(0), DayKey::of(key)));
    }
    Ok(out)
}

/// A device's rows of a bucketed day timed in `[?3, ?4)`, in time order (then seq): `?2` the
/// device, `?1` and `?5` the first and last bucket. One index lookup per bucket, in one
/// statement (~0.7 µs each; a statement per bucket cost ~4.6). The buckets come in order (a
/// recursive table is a first-in, first-out queue, and `CROSS JOIN` keeps it the outer loop),
/// each bucket's rows in the index's order, `(ts_ms, seq)`: no sort.
pub(super) fn bucket_rows_sql(day: u64, width: u64) -> String {
    format!(
        "WITH RECURSIVE k(b) AS (SELECT ?1 UNION ALL SELECT b + 1 FROM k WHERE b < ?5) \
         SELECT r.ts_ms, r.channels FROM k CROSS JOIN {} AS r \
         WHERE r.ts_ms / {width} = k.b AND r.device = ?2 AND r.ts_ms >= ?3 AND r.ts_ms < ?4",
        day_table(day)
    )
}

/// The highest seq of a device's rows in one bucket of a bucketed day: `?1` the bucket, `?2`
/// the device.
pub(super) fn bucket_max_seq_sql(day: u64, width: u64) -> String {
    format!(
        "SELECT max(seq) FROM {} WHERE ts_ms / {width} = ?1 AND device = ?2",
        day_table(day)
    )
}

/// Calls `each(row)` for a device's rows of day table `day` timed in `[from_ms, to_ms)` (within
/// the day), in time order (then seq), until it returns `Ok(false)`; returns whether it was
/// not stopped. A bucketed day is read one bucket after another ([`bucket_rows_sql`]).
fn each_day_row(
    c: &Connection,
    (day, key): (u64, DayKey),
    device: &DeviceId,
    (from_ms, to_ms): (UnixMs, UnixMs),
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    let mut drain = |mut rows: rusqlite::Rows<'_>| -> Result<bool, StoreError> {
        while let Some(row) = rows.next()? {
            if !each(row)? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let (from, to) = (sql::int(from_ms)?, sql::int(to_ms)?);
    match key {
        DayKey::Device => {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT ts_ms, channels FROM {} WHERE device = ?1 AND ts_ms >= ?2 \
                 AND ts_ms < ?3 ORDER BY ts_ms, seq",
                day_table(day)
            ))?;
            drain(stmt.query(params![device.as_str(), from, to])?)
        }
        DayKey::Bucket(width) => {
            let mut stmt = c.prepare_cached(&bucket_rows_sql(day, width))?;
            let (first, last) = (sql::int(from_ms / width)?, sql::int((to_ms - 1) / width)?);
            drain(stmt.query(params![first, device.as_str(), from, to, last])?)
        }
    }
}

/// Calls `each(ts_ms, reading)` for every raw reading of a device's `channel` timed in
/// `[from_ms, to_ms)`, in time order (then seq), until it returns `false`.
fn each_raw(
    c: &Connection,
    device: &DeviceId,
    channel: ChannelNo,
    (from_ms, to_ms): (UnixMs, UnixMs),
    mut each: impl FnMut(UnixMs, &Reading) -> bool,
) -> Result<(), StoreError> {
    if to_ms <= from_ms {
        return Ok(());
    }
    for (day, key) in days(c, from_ms / DAY_MS, (to_ms - 1) / DAY_MS)? {
        // Within the day: a bucketed day is read bucket by bucket.
        let range = (from_ms.max(day * DAY_MS), to_ms.min((day + 1) * DAY_MS));
        let go_on = each_day_row(c, (day, key), device, range, |row| {
            let ts: i64 = row.get(0)?;
            let blob = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let readings = packed::unpack(blob)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", day_table(day))))?;
            Ok(match readings.iter().find(|r| r.channel == channel) {
                Some(r) => each(u64::try_from(ts).unwrap_or(0), r),
                None => true,
            })
        })?;
        if !go_on {
            return Ok(());
        }
    }
    Ok(())
}

/// One value as a point's aggregate.
fn one(v: Option<i64>) -> Option<Agg> {
    v.map(|v| Agg {
        min: v,
        max: v,
        avg: v as f64,
    })
}

fn agg(a: Acc) -> Option<Agg> {
    match (a.min, a.max) {
        (Some(min), Some(max)) if a.n > 0 => Some(Agg {
            min,
            max,
            avg: a.sum as f64 / a.n as f64,
        }),
        _ => None,
    }
}

/// The points of buckets of readings, oldest first.
fn points_of(buckets: BTreeMap<u64, Hour>) -> Vec<Point> {
    buckets
        .into_iter()
        .map(|(t_ms, h)| Point {
            t_ms,
            count: u64::try_from(h.count).unwrap_or(0),
            residual_ma: agg(h.q[0]),
            temp_dc: agg(h.q[1]),
            voltage_dv: agg(h.q[2]),
            current_ma: agg(h.q[3]),
        })
        .collect()
}

impl Store {
    /// Stores a batch of readings at the wall clock's time: see
    /// [`insert_readings_at`](Self::insert_readings_at).
    ///
    /// # Errors
    /// As [`insert_readings_at`](Self::insert_readings_at).
    pub fn insert_readings(&self, batch: &[Sample]) -> Result<InsertReport, StoreError> {
        self.insert_readings_at(batch, crate::clock::now_ms())
    }

    /// Stores a batch of readings, at most [`StoreOptions::readings_chunk_rows`] rows per
    /// transaction (each commit fsynced: decision 25): each message one row of
    /// its day's table, skipping messages already stored, and updates the hourly rollups with
    /// the new ones. With [`StoreOptions::raw_readings`] off, only the rollups. Readings timed
    /// before 2020 or more than a day after `now` are refused ([`InsertReport::refused`]).
    /// Called by the [`ReadingsWriter`](super::ReadingsWriter); direct calls block.
    ///
    /// [`StoreOptions::readings_chunk_rows`]: super::StoreOptions::readings_chunk_rows
    /// [`StoreOptions::raw_readings`]: super::StoreOptions::raw_readings
    ///
    /// # Errors
    /// [`StoreError::DiskFull`]; a database error. Chunks before the failing one are stored.
    pub fn insert_readings_at(
        &self,
        batch: &[Sample],
        now: UnixMs,
    ) -> Result<InsertReport, StoreError> {
        let mut total = InsertReport::default();
        let mut samples: Vec<&Sample> = Vec::with_capacity(batch.len());
        for s in batch {
            if s.ts_ms < OLDEST_MS || s.ts_ms > now.saturating_add(FUTURE_MS) {
                total.refused += s.readings.len() as u64;
            } else {
                samples.push(s);
            }
        }
        if total.refused > 0 {
            tracing::warn!(
                rows = total.refused,
                "readings refused: timed before 2020 or more than a day ahead of the gateway's \
                 clock (a device clock gone wrong)"
            );
        }
        // In key order, a chunk's rows go to one day's table after another, and their index
        // entries walk the index from left to right, each page touched once per chunk instead
        // of once per row; the rows themselves are appended.
        samples.sort_unstable_by(|a, b| {
            (a.ts_ms / DAY_MS, a.device.as_str(), a.ts_ms, a.seq).cmp(&(
                b.ts_ms / DAY_MS,
                b.device.as_str(),
                b.ts_ms,
                b.seq,
            ))
        });
        let raw = self.inner.options.raw_readings;
        let max_rows = self.inner.options.readings_chunk_rows.max(1);
        let mut from = 0;
        while from < samples.len() {
            let mut to = from;
            let mut rows = 0;
            while to < samples.len()
                && (to == from || rows + samples[to].readings.len() <= max_rows)
            {
                rows += samples[to].readings.len();
                to += 1;
            }
            let chunk = &samples[from..to];
            let report = self.write_readings(|conn| {
                let mut made = super::lock(&self.inner.made_days);
                let written = insert_chunk(conn, chunk, raw, &mut made);
                if written.is_err() {
                    // A day made in the transaction rolled back is not there.
                    made.clear();
                }
                written
            })?;
            total.inserted += report.inserted;
            total.duplicates += report.duplicates;
            from = to;
        }
        Ok(total)
    }

    /// The step [`history`](Self::history) answers `step_ms` with: the same, or an hour when
    /// raw readings are not kept ([`StoreOptions::raw_readings`] off) and a finer step is asked.
    ///
    /// [`StoreOptions::raw_readings`]: super::StoreOptions::raw_readings
    pub fn history_step(&self, step_ms: u64) -> u64 {
        if self.inner.options.raw_readings || step_ms >= HOUR_MS {
            step_ms
        } else {
            HOUR_MS
        }
    }

    /// A channel's history over `[from_ms, to_ms)`, one [`Point`] per `step_ms`:
    /// - `step_ms == 0`: every raw reading;
    /// - `step_ms < HOUR_MS`: raw readings grouped by `step_ms`;
    /// - `step_ms >= HOUR_MS`: hourly rollups grouped by `step_ms` (hour-granular at the
    ///   edges; available long after raw readings are pruned).
    ///
    /// Without raw readings ([`StoreOptions::raw_readings`] off), finer steps are answered
    /// from the rollups too, by the hour ([`history_step`](Self::history_step)).
    ///
    /// [`StoreOptions::raw_readings`]: super::StoreOptions::raw_readings
    ///
    /// # Errors
    /// [`StoreError::InvalidQuery`] for more than [`MAX_POINTS`] points; a database error.
    pub fn history(
        &self,
        device: &DeviceId,
        channel: ChannelNo,
        from_ms: UnixMs,
        to_ms: UnixMs,
        step_ms: u64,
    ) -> Result<Vec<Point>, StoreError> {
        if step_ms > 0 && to_ms.saturating_sub(from_ms) / step_ms > MAX_POINTS {
            return Err(StoreError::InvalidQuery(format!(
                "{} points asked for, at most {MAX_POINTS}: use a larger step",
                to_ms.saturating_sub(from_ms) / step_ms
            )));
        }
        let step_ms = self.history_step(step_ms);
        let too_many = || {
            StoreError::InvalidQuery(format!(
                "more than {MAX_POINTS} raw readings in the range: use a step"
            ))
        };
        if step_ms == 0 {
            let mut points = Vec::new();
            self.read(|c| {
                each_raw(c, device, channel, (from_ms, to_ms), |t_ms, r| {
                    let [res, temp, volt, cur] = values(r);
                    points.push(Point {
                        t_ms,
                        count: 1,
                        residual_ma: one(res),
                        temp_dc: one(temp),
                        voltage_dv: one(volt),
                        current_ma: one(cur),
                    });
                    points.len() as u64 <= MAX_POINTS
                })
            })?;
            if points.len() as u64 > MAX_POINTS {
                return Err(too_many());
            }
            return Ok(points);
        }
        if step_ms < HOUR_MS {
            let mut buckets: BTreeMap<u64, Hour> = BTreeMap::new();
            self.read(|c| {
                each_raw(c, device, channel, (from_ms, to_ms), |t_ms, r| {
                    buckets.entry(t_ms / step_ms * step_ms).or_default().add(r);
                    true
                })
            })?;
            if buckets.len() as u64 > MAX_POINTS {
                return Err(too_many());
            }
            return Ok(points_of(buckets));
        }
        let mut buckets: BTreeMap<u64, Hour> = BTreeMap::new();
        self.read(|c| {
            each_rollup(c, device, channel, (from_ms, to_ms), |hour_ms, h| {
                buckets
                    .entry(hour_ms / step_ms * step_ms)
                    .or_default()
                    .merge(h);
            })
        })?;
        Ok(points_of(buckets))
    }

    /// How many raw readings of `quantity` (as [`Reading::value_of`]) a channel had in
    /// `[from_ms, to_ms]`, and the highest; without raw readings, from the rollups of the
    /// hours that start in it.
    ///
    /// # Errors
    /// A database error.
    pub(super) fn raw_count_and_max(
        &self,
        device: &DeviceId,
        channel: ChannelNo,
        quantity: Quantity,
        from_ms: UnixMs,
        to_ms: UnixMs,
    ) -> Result<(u64, Option<i32>), StoreError> {
        let (mut count, mut max) = (0u64, None::<i32>);
        if !self.inner.options.raw_readings {
            let at = match quantity {
                Quantity::ResidualCurrent => 0,
                Quantity::Temperature => 1,
            };
            let mut acc = Acc::default();
            self.read(|c| {
                each_rollup(
                    c,
                    device,
                    channel,
                    (from_ms, to_ms.saturating_add(1)),
                    |_, h| {
                        acc.merge(&h.q[at]);
                    },
                )
            })?;
            let max = acc.max.map(|m| i32::try_from(m).unwrap_or(i32::MAX));
            return Ok((u64::try_from(acc.n).unwrap_or(0), max));
        }
        self.read(|c| {
            each_raw(
                c,
                device,
                channel,
                (from_ms, to_ms.saturating_add(1)),
                |_, r| {
                    if let Some(v) = r.value_of(quantity) {
                        count += 1;
                        max = Some(max.map_or(v, |m| m.max(v)));
                    }
                    true
                },
            )
        })?;
        Ok((count, max))
    }

    /// The highest sequence number of a device's newest stored raw readings: of the newest
    /// day that has any, and in a bucketed day ([`DayKey::Bucket`]) of the newest bucket that
    /// has any — found through the hourly rollups, written with the rows: the newest hour of
    /// the day with the device's rollup, then its buckets newest first. A device whose
    /// sequence numbers grow with time (a Modbus monitor the gateway numbers) has its highest
    /// there.
    ///
    /// # Errors
    /// A database error.
    pub(super) fn readings_max_seq(&self, device: &DeviceId) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            let mut all = days(c, 0, i64::MAX as u64)?;
            all.reverse();
            let mut rollup =
                c.prepare_cached("SELECT 1 FROM rollups WHERE hour_ms = ?1 AND device = ?2")?;
            for (day, key) in all {
                let width = match key {
                    DayKey::Device => {
                        let max: Option<i64> = c.query_row(
                            &format!("SELECT max(seq) FROM {} WHERE device = ?1", day_table(day)),
                            [device.as_str()],
                            |r| r.get(0),
                        )?;
                        if max.is_some() {
                            return Ok(max);
                        }
                        continue;
                    }
                    DayKey::Bucket(width) => width,
                };
                let mut in_bucket = c.prepare_cached(&bucket_max_seq_sql(day, width))?;
                for hour in (0..DAY_MS / HOUR_MS).rev() {
                    let hour_ms = day * DAY_MS + hour * HOUR_MS;
                    if !rollup.exists(params![sql::int(hour_ms)?, device.as_str()])? {
                        continue;
                    }
                    for bucket in (hour_ms / width..=(hour_ms + HOUR_MS - 1) / width).rev() {
                        let max: Option<i64> = in_bucket
                            .query_row(params![sql::int(bucket)?, device.as_str()], |r| r.get(0))?;
                        if max.is_some() {
                            return Ok(max);
                        }
                    }
                }
            }
            Ok(None)
        })
    }

    /// Raw reading rows stored (one per message and channel), from the day tables' counts.
    ///
    /// # Errors
    /// A database error.
    pub fn raw_readings_count(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c.query_row("SELECT total(readings) FROM raw_days", [], |r| {
                r.get::<_, f64>(0).map(|v| v as i64)
            })?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
