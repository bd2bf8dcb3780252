//! Person deliveries: the durable queue of alerts to people ([`crate::notify::people`]).
//!
//! The dispatcher follows the outbox's queue order from its own mark (`meta` key
//! [`PEOPLE_MARK`]) and inserts an alert's deliveries together with the mark past it, in one
//! transaction on the bulk connection (never ahead of a waiting journal write): a crash
//! between the two cannot happen, and a fan-out made again after a lost commit inserts nothing
//! twice (one row per alert, worker and channel). Each delivery is then retried with backoff
//! until delivered, or stopped once the episode's ticket is acknowledged (audited).

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use firegrid_protocols::DeviceId;

use super::journal::insert_audit;
use super::{Store, StoreError, WebhookFormat, Worker, WorkerFields, WorkerFilter, names, sql};
use crate::model::{EpisodeId, TicketState, UnixMs};
use crate::notify::alert::AlertKind;
use crate::notify::people::{NewDelivery, PersonChannel, Place};
use crate::store::AreaId;

/// The `meta` key of the dispatcher's mark in the outbox's queue order.
pub const PEOPLE_MARK: &str = "people.mark";

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The alert's notification id.
    pub notification_id: i64,
    /// The episode.
    pub episode_id: EpisodeId,
    /// Why the alert was sent.
    pub kind: AlertKind,
    /// The area whose worker gets it.
    pub area_id: String,
    /// The worker.
    pub worker_id: i64,
    /// The channel.
    pub channel: PersonChannel,
    /// The body's format.
    pub format: WebhookFormat,
    /// The topic or URL (not shown by the API: a URL may hold a token).
    #[serde(skip)]
    pub target: String,
    /// The body sent.
    #[serde(skip)]
    pub body: String,
    /// When it was queued.
    pub created_ms: UnixMs,
    /// Attempts so far.
    pub attempts: u32,
    /// The next attempt.
    pub next_attempt_ms: UnixMs,
    /// When it was delivered.
    pub delivered_ms: Option<UnixMs>,
    /// When its retries stopped (the ticket was acknowledged).
    pub stopped_ms: Option<UnixMs>,
    /// The last failure.
    pub last_error: Option<String>,
}

const COLS: &str = "id, notification_id, episode_id, kind, area_id, worker_id, channel, format, \
     target, body, created_ms, attempts, next_attempt_ms, delivered_ms, stopped_ms, last_error";

fn channel_of(s: &str) -> Result<PersonChannel, StoreError> {
    PersonChannel::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| names::invalid("delivery channel", s))
}

fn kind_of(s: &str) -> Result<AlertKind, StoreError> {
    match s {
        "opened" => Ok(AlertKind::Opened),
        "escalated" => Ok(AlertKind::Escalated),
        "ended" => Ok(AlertKind::Ended),
        _ => Err(names::invalid("alert kind", s)),
    }
}

const fn kind_str(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Opened => "opened",
        AlertKind::Escalated => "escalated",
        AlertKind::Ended => "ended",
    }
}

fn row(r: &Row<'_>) -> Result<Delivery, StoreError> {
    let kind: String = r.get(3)?;
    let channel: String = r.get(6)?;
    let format: String = r.get(7)?;
    Ok(Delivery {
        id: r.get(0)?,
        notification_id: r.get(1)?,
        episode_id: r.get(2)?,
        kind: kind_of(&kind)?,
        area_id: r.get(4)?,
        worker_id: r.get(5)?,
        channel: channel_of(&channel)?,
        format: WebhookFormat::parse(&format)?,
        target: r.get(8)?,
        body: r.get(9)?,
        created_ms: r.get(10)?,
        attempts: r.get(11)?,
        next_attempt_ms: r.get(12)?,
        delivered_ms: r.get(13)?,
        stopped_ms: r.get(14)?,
        last_error: r.get(15)?,
    })
}

fn rows(
    c: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rs = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rs.next()? {
        out.push(row(r)?);
    }
    Ok(out)
}

impl Store {
    /// Where a device is, as a person alert says it: its site (name, address, owner), room,
    /// circuit and kind. An unknown device, or one without a site, gives what is known.
    ///
    /// # Errors
    /// A database error.
    pub fn place_of(&self, device: &DeviceId) -> Result<Place, StoreError> {
        let Some(d) = self.device(device)? else {
            return Ok(Place::default());
        };
        let f = &d.fields;
        self.read(|c| {
            let mut place = Place {
                device_kind: Some(f.kind),
                ..Place::default()
            };
            if let Some(site) = f.site_id
                && let Some((name, address, owner, phone)) = c
                    .query_row(
                        "SELECT name, address, owner_name, owner_phone FROM sites WHERE id = ?1",
                        [site],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?
            {
                place.site = Some(name);
                place.address = Some(address);
                place.owner_name = owner;
                place.owner_phone = phone;
            }
            if let Some(room) = f.room_id
                && let Some((name, tenant, phone)) = c
                    .query_row(
                        "SELECT name, tenant_name, tenant_phone FROM rooms WHERE id = ?1",
                        [room],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?
            {
                place.room = Some(name);
                place.tenant_name = tenant;
                place.tenant_phone = phone;
            }
            if let Some(circuit) = f.circuit_id {
                place.circuit = c
                    .query_row("SELECT name FROM circuits WHERE id = ?1", [circuit], |r| {
                        r.get(0)
                    })
                    .optional()?;
            }
            Ok(place)
        })
    }

    /// The workers of exactly this area.
    ///
    /// # Errors
    /// A database error.
    pub fn workers_of(&self, area: &AreaId) -> Result<Vec<Worker>, StoreError> {
        self.list::<WorkerFields>(
            &WorkerFilter {
                area_id: Some(area.clone()),
            },
            None,
        )
    }

    /// Queues `deliveries` and moves the dispatcher's mark to `mark`, in one transaction.
    /// Returns how many were new (a delivery already queued is kept as it is).
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn queue_deliveries(
        &self,
        mark: i64,
        deliveries: &[NewDelivery],
        now: UnixMs,
    ) -> Result<usize, StoreError> {
        self.write_bulk(|conn| {
            let tx = conn.transaction()?;
            let mut new = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO person_deliveries (notification_id, episode_id, kind, \
                     area_id, worker_id, channel, format, target, body, created_ms, \
                     next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for d in deliveries {
                    new += insert.execute(params![
                        d.notification_id,
                        d.episode_id,
                        kind_str(d.kind),
                        d.area_id.as_str(),
                        d.worker_id,
                        d.channel.as_str(),
                        d.format.as_str(),
                        d.target,
                        d.body,
                        sql::int(now)?,
                        sql::int(d.next_attempt_ms)?,
                    ])?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![PEOPLE_MARK, mark.to_string()],
            )?;
            tx.commit()?;
            Ok(new)
        })
    }

    /// The dispatcher's mark (0 before the first fan-out).
    ///
    /// # Errors
    /// A database error.
    pub fn people_mark(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.meta(PEOPLE_MARK)?.and_then(|v| v.parse().ok()))
    }

    /// Deliveries due at `now` (neither delivered nor stopped), oldest due first.
    ///
    /// # Errors
    /// A database error.
    pub fn due_deliveries(&self, now: UnixMs, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {COLS} FROM person_deliveries WHERE delivered_ms IS NULL AND stopped_ms IS NULL \
             AND next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT {}",
            sql::page(limit, 100, 10_000)
        );
        self.read(|c| rows(c, &sql, &[Value::Integer(sql::int(now)?)]))
    }

    /// An episode's deliveries, in the order they were queued.
    ///
    /// # Errors
    /// A database error.
    pub fn deliveries_of(&self, episode: EpisodeId) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!("SELECT {COLS} FROM person_deliveries WHERE episode_id = ? ORDER BY id");
        self.read(|c| rows(c, &sql, &[Value::Integer(sql::int(episode)?)]))
    }

    /// Records an attempt's outcome: delivered at `at_ms` (`Ok`), or failed with the next
    /// attempt's time (`Err`).
    ///
    /// # Errors
    /// A database error.
    pub fn delivery_attempted(
        &self,
        id: i64,
        outcome: Result<UnixMs, (UnixMs, String)>,
    ) -> Result<(), StoreError> {
        self.write_bulk(|c| {
            match outcome {
                Ok(at) => c.execute(
                    "UPDATE person_deliveries SET attempts = attempts + 1, delivered_ms = ?2, \
                     last_error = NULL WHERE id = ?1",
                    params![id, sql::int(at)?],
                )?,
                Err((next, error)) => c.execute(
                    "UPDATE person_deliveries SET attempts = attempts + 1, next_attempt_ms = ?2, \
                     last_error = ?3 WHERE id = ?1",
                    params![id, sql::int(next)?, error],
                )?,
            };
            Ok(())
        })
    }

    /// Stops a delivery's retries (its ticket is `ticket`), audited as `delivery.stopped`.
    ///
    /// # Errors
    /// A database error.
    pub fn delivery_stopped(
        &self,
        id: i64,
        ticket: TicketState,
        at_ms: UnixMs,
    ) -> Result<(), StoreError> {
        self.write_bulk(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE person_deliveries SET stopped_ms = ?2 WHERE id = ?1",
                params![id, sql::int(at_ms)?],
            )?;
            let detail =
                serde_json::json!({ "reason": format!("ticket {}: retries stop", ticket.as_str()) });
            insert_audit(
                &tx,
                at_ms,
                "gateway",
                "delivery.stopped",
                &format!("delivery/{id}"),
                &detail.to_string(),
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}
