//! What the hazard workflow ([`crate::workflow`]) reads: acknowledged, unrectified tickets, and
//! a channel's readings over a window.

use firegrid_protocols::DeviceId;
use firegrid_protocols::channel::{ChannelNo, Quantity};
use rusqlite::params;

use super::{Store, StoreError, names, sql};
use crate::model::UnixMs;
use crate::workflow::{Acknowledged, ReadingsSince};

impl Store {
    /// Every ticket acknowledged (or dispatched) and not yet rectified.
    ///
    /// # Errors
    /// A database error.
    pub fn unrectified_tickets(&self) -> Result<Vec<Acknowledged>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, category, ticket, acknowledged_ms, acknowledged_level, escalation \
                 FROM episodes WHERE ticket IN ('acknowledged', 'dispatched') \
                 AND acknowledged_ms IS NOT NULL",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let category: String = r.get(1)?;
                let ticket: String = r.get(2)?;
                out.push(Acknowledged {
                    episode: r.get(0)?,
                    category: names::category(&category)?,
                    ticket: names::ticket(&ticket)?,
                    acknowledged_ms: r.get(3)?,
                    acknowledged_level: r.get::<_, Option<u8>>(4)?.unwrap_or(0),
                    escalation: r.get(5)?,
                });
            }
            Ok(out)
        })
    }

    /// How many readings of `quantity` a channel had in `[from_ms, to_ms]`, and the highest.
    ///
    /// # Errors
    /// A database error.
    pub fn readings_since(
        &self,
        device: &DeviceId,
        channel: ChannelNo,
        quantity: Quantity,
        from_ms: UnixMs,
        to_ms: UnixMs,
    ) -> Result<ReadingsSince, StoreError> {
        let col = match quantity {
            Quantity::ResidualCurrent => "residual_ma",
            Quantity::Temperature => "temp_dc",
        };
        let sql = format!(
            "SELECT count({col}), max({col}) FROM readings \
             WHERE device = ?1 AND channel = ?2 AND ts_ms >= ?3 AND ts_ms <= ?4"
        );
        self.read(|c| {
            let (count, max): (i64, Option<i32>) = c.query_row(
                &sql,
                params![
                    device.as_str(),
                    channel,
                    sql::int(from_ms)?,
                    sql::int(to_ms)?
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(ReadingsSince {
                count: u64::try_from(count).unwrap_or(0),
                max,
            })
        })
    }
}
