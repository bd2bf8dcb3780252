//! Readings: raw per (telemetry message, channel), deduplicated by `(device, channel, seq)`;
//! hourly rollups maintained on insert; downsampled history; retention.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde::{Deserialize, Serialize};

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::ChannelNo;
use firegrid_protocols::message::{Reading, Seq, Telemetry};

use super::sql;
use super::{Store, StoreError};
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
}

/// Minimum, maximum and mean of a quantity over a point's interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// Minimum.
    pub min: i64,
    /// Maximum.
    pub max: i64,
    /// Mean.
    pub avg: f64,
}

/// One point of a history: an interval starting at `t_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// Per quantity: count, min, max, sum.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    n: i64,
    min: Option<i64>,
    max: Option<i64>,
    sum: i64,
}

impl Acc {
    fn add(&mut self, v: Option<i64>) {
        if let Some(v) = v {
            self.n += 1;
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
            self.sum = self.sum.saturating_add(v);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Hour {
    count: i64,
    q: [Acc; 4],
}

fn values(r: &Reading) -> [Option<i64>; 4] {
    [
        r.residual_ma.map(i64::from),
        r.temp_dc.map(i64::from),
        r.voltage_dv.map(i64::from),
        r.current_ma.map(i64::from),
    ]
}

/// Writes one chunk in one transaction: raw rows (`INSERT OR IGNORE`), then the rollups of the
/// rows that were new.
fn insert_chunk(
    conn: &mut Connection,
    chunk: &[(&Sample, &Reading)],
) -> Result<InsertReport, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut report = InsertReport::default();
    let mut hours: HashMap<(&str, ChannelNo, u64), Hour> = HashMap::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO readings (device, channel, seq, ts_ms, residual_ma, temp_dc, \
             voltage_dv, current_ma) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (s, r) in chunk {
            let n = insert.execute(params![
                s.device.as_str(),
                r.channel,
                s.seq,
                s.ts_ms,
                r.residual_ma,
                r.temp_dc,
                r.voltage_dv,
                r.current_ma
            ])?;
            if n == 0 {
                report.duplicates += 1;
                continue;
            }
            report.inserted += 1;
            let hour = hours
                .entry((s.device.as_str(), r.channel, s.ts_ms / HOUR_MS * HOUR_MS))
                .or_default();
            hour.count += 1;
            for (acc, v) in hour.q.iter_mut().zip(values(r)) {
                acc.add(v);
            }
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO readings_hourly (device, channel, hour_ms, count, \
             residual_n, residual_min, residual_max, residual_sum, \
             temp_n, temp_min, temp_max, temp_sum, \
             voltage_n, voltage_min, voltage_max, voltage_sum, \
             current_n, current_min, current_max, current_sum) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19, ?20) \
             ON CONFLICT(device, channel, hour_ms) DO UPDATE SET count = count + excluded.count, \
             residual_n = residual_n + excluded.residual_n, \
             residual_min = min(coalesce(residual_min, excluded.residual_min), \
                                coalesce(excluded.residual_min, residual_min)), \
             residual_max = max(coalesce(residual_max, excluded.residual_max), \
                                coalesce(excluded.residual_max, residual_max)), \
             residual_sum = residual_sum + excluded.residual_sum, \
             temp_n = temp_n + excluded.temp_n, \
             temp_min = min(coalesce(temp_min, excluded.temp_min), \
                            coalesce(excluded.temp_min, temp_min)), \
             temp_max = max(coalesce(temp_max, excluded.temp_max), \
                            coalesce(excluded.temp_max, temp_max)), \
             temp_sum = temp_sum + excluded.temp_sum, \
             voltage_n = voltage_n + excluded.voltage_n, \
             voltage_min = min(coalesce(voltage_min, excluded.voltage_min), \
                               coalesce(excluded.voltage_min, voltage_min)), \
             voltage_max = max(coalesce(voltage_max, excluded.voltage_max), \
                               coalesce(excluded.voltage_max, voltage_max)), \
             voltage_sum = voltage_sum + excluded.voltage_sum, \
             current_n = current_n + excluded.current_n, \
             current_min = min(coalesce(current_min, excluded.current_min), \
                               coalesce(excluded.current_min, current_min)), \
             current_max = max(coalesce(current_max, excluded.current_max), \
                               coalesce(excluded.current_max, current_max)), \
             current_sum = current_sum + excluded.current_sum",
        )?;
        for ((device, channel, hour_ms), h) in &hours {
            let [r, t, v, c] = h.q;
            upsert.execute(params![
                device, channel, hour_ms, h.count, r.n, r.min, r.max, r.sum, t.n, t.min, t.max,
                t.sum, v.n, v.min, v.max, v.sum, c.n, c.min, c.max, c.sum
            ])?;
        }
    }
    tx.commit()?;
    Ok(report)
}

fn agg(n: i64, min: Option<i64>, max: Option<i64>, sum: f64) -> Option<Agg> {
    match (min, max) {
        (Some(min), Some(max)) if n > 0 => Some(Agg {
            min,
            max,
            avg: sum / n as f64,
        }),
        _ => None,
    }
}

/// The `(device, channel)` pairs of a table keyed by them, one index seek per pair (a skip
/// scan: never a full scan of the table).
pub(super) fn pairs(conn: &Connection, table: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let mut next = conn.prepare(&format!(
        "SELECT device, channel FROM {table} WHERE (device, channel) > (?1, ?2) \
         ORDER BY device, channel LIMIT 1"
    ))?;
    let mut out = Vec::new();
    let mut at = (String::new(), -1_i64);
    while let Some(pair) = next
        .query_row(params![at.0, at.1], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
    {
        out.push(pair.clone());
        at = pair;
    }
    Ok(out)
}

impl Store {
    /// Stores a batch of readings, at most [`StoreOptions::readings_chunk_rows`] rows per
    /// transaction (`synchronous=NORMAL`: not fsynced per commit), skipping rows already stored,
    /// and updates the hourly rollups with the new ones. Called by the
    /// [`ReadingsWriter`](super::ReadingsWriter); direct calls block.
    ///
    /// [`StoreOptions::readings_chunk_rows`]: super::StoreOptions::readings_chunk_rows
    ///
    /// # Errors
    /// [`StoreError::DiskFull`]; a database error. Chunks before the failing one are stored.
    pub fn insert_readings(&self, batch: &[Sample]) -> Result<InsertReport, StoreError> {
        let mut rows: Vec<(&Sample, &Reading)> = batch
            .iter()
            .flat_map(|s| s.readings.iter().map(move |r| (s, r)))
            .collect();
        // In key order, the inserts of a chunk walk the B-trees from left to right and touch
        // each page once, instead of once per row: a batch holds many devices in arrival order.
        rows.sort_unstable_by(|(a, x), (b, y)| {
            (a.device.as_str(), x.channel, a.seq).cmp(&(b.device.as_str(), y.channel, b.seq))
        });
        let mut total = InsertReport::default();
        for chunk in rows.chunks(self.inner.options.readings_chunk_rows.max(1)) {
            let report = self.write_readings(|conn| insert_chunk(conn, chunk))?;
            total.inserted += report.inserted;
            total.duplicates += report.duplicates;
        }
        Ok(total)
    }

    /// A channel's history over `[from_ms, to_ms)`, one [`Point`] per `step_ms`:
    /// - `step_ms == 0`: every raw reading;
    /// - `step_ms < HOUR_MS`: raw readings grouped by `step_ms`;
    /// - `step_ms >= HOUR_MS`: hourly rollups grouped by `step_ms` (hour-granular at the
    ///   edges; available long after raw readings are pruned).
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
        let (from, to) = (sql::int(from_ms)?, sql::int(to_ms)?);
        if step_ms > 0 && to_ms.saturating_sub(from_ms) / step_ms > MAX_POINTS {
            return Err(StoreError::InvalidQuery(format!(
                "{} points asked for, at most {MAX_POINTS}: use a larger step",
                to_ms.saturating_sub(from_ms) / step_ms
            )));
        }
        let step = sql::int(step_ms)?;
        let limit = MAX_POINTS as i64 + 1;
        let points = self.read(|c| {
            let (sql, bucket) = if step_ms == 0 {
                let q =
                    |col: &str| format!("{col}, {col}, coalesce({col}, 0), ({col} IS NOT NULL)");
                (
                    format!(
                        "SELECT ts_ms, 1, {}, {}, {}, {} FROM readings \
                         WHERE device = ?1 AND channel = ?2 AND ts_ms >= ?3 AND ts_ms < ?4 \
                         ORDER BY ts_ms, seq LIMIT {limit}",
                        q("residual_ma"),
                        q("temp_dc"),
                        q("voltage_dv"),
                        q("current_ma")
                    ),
                    None,
                )
            } else if step_ms < HOUR_MS {
                let q = |col: &str| format!("min({col}), max({col}), total({col}), count({col})");
                (
                    format!(
                        "SELECT ts_ms / ?5 * ?5 AS t, count(*), {}, {}, {}, {} FROM readings \
                         WHERE device = ?1 AND channel = ?2 AND ts_ms >= ?3 AND ts_ms < ?4 \
                         GROUP BY t ORDER BY t LIMIT {limit}",
                        q("residual_ma"),
                        q("temp_dc"),
                        q("voltage_dv"),
                        q("current_ma")
                    ),
                    Some(step),
                )
            } else {
                let q =
                    |p: &str| format!("min({p}_min), max({p}_max), total({p}_sum), total({p}_n)");
                (
                    format!(
                        "SELECT hour_ms / ?5 * ?5 AS t, sum(count), {}, {}, {}, {} \
                         FROM readings_hourly WHERE device = ?1 AND channel = ?2 \
                         AND hour_ms >= ?3 AND hour_ms < ?4 GROUP BY t ORDER BY t LIMIT {limit}",
                        q("residual"),
                        q("temp"),
                        q("voltage"),
                        q("current")
                    ),
                    Some(step),
                )
            };
            let mut stmt = c.prepare_cached(&sql)?;
            let mut params: Vec<Value> = vec![
                Value::Text(device.to_string()),
                Value::Integer(i64::from(channel)),
                Value::Integer(from),
                Value::Integer(to),
            ];
            params.extend(bucket.map(Value::Integer));
            let rows = stmt.query_map(params_from_iter(params), |r| {
                let q = |i: usize| -> rusqlite::Result<Option<Agg>> {
                    let sum: f64 = r.get(i + 2)?;
                    let n: f64 = r.get(i + 3)?;
                    Ok(agg(n as i64, r.get(i)?, r.get(i + 1)?, sum))
                };
                Ok(Point {
                    t_ms: r.get(0)?,
                    count: r.get(1)?,
                    residual_ma: q(2)?,
                    temp_dc: q(6)?,
                    voltage_dv: q(10)?,
                    current_ma: q(14)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        if points.len() as u64 > MAX_POINTS {
            return Err(StoreError::InvalidQuery(format!(
                "more than {MAX_POINTS} raw readings in the range: use a step"
            )));
        }
        Ok(points)
    }
}
