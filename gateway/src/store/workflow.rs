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
        let (count, max) = self.raw_count_and_max(device, channel, quantity, from_ms, to_ms)?;
        Ok(ReadingsSince { count, max })
    }
}

/// A hazard: a site with unresolved episodes (tickets neither verified nor closed), one thing
/// to rectify however many episodes it had.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Hazard {
    /// The site.
    pub site_id: i64,
    /// Its name.
    pub site: String,
    /// Its address.
    pub address: String,
    /// Its area.
    pub area_id: String,
    /// When its oldest unresolved episode started.
    pub since_ms: UnixMs,
    /// The least advanced of its tickets (what is still to do).
    pub ticket: crate::model::TicketState,
    /// Its unresolved episodes, oldest first.
    pub episodes: Vec<HazardEpisode>,
}

/// An episode of a [`Hazard`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HazardEpisode {
    /// The episode.
    pub id: crate::model::EpisodeId,
    /// Its category.
    pub category: crate::model::Category,
    /// Its device.
    pub device: String,
    /// Its ticket's state.
    pub ticket: crate::model::TicketState,
    /// When it started.
    pub started_ms: UnixMs,
    /// When it ended, if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<UnixMs>,
}

impl Store {
    /// The hazards of the sites in `area`'s subtree (all sites: `None`), oldest first. An
    /// episode of a device bound to no site is not a site's hazard (list it with the episodes).
    ///
    /// # Errors
    /// A database error.
    pub fn hazards(&self, area: Option<&crate::store::AreaId>) -> Result<Vec<Hazard>, StoreError> {
        let mut sql = String::from(
            "SELECT s.id, s.name, s.address, s.area_id, e.id, e.category, e.device, e.ticket, \
             e.started_ms, e.ended_ms FROM episodes e JOIN devices d ON d.id = e.device \
             JOIN sites s ON s.id = d.site_id WHERE e.ticket NOT IN ('verified', 'closed')",
        );
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(a) = area {
            sql.push_str(&format!(" AND s.area_id IN ({})", super::sql::SUBTREE));
            params.push(rusqlite::types::Value::Text(a.to_string()));
        }
        sql.push_str(" ORDER BY s.id, e.started_ms, e.id LIMIT 10000");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
            let mut out: Vec<Hazard> = Vec::new();
            while let Some(r) = rows.next()? {
                let site_id: i64 = r.get(0)?;
                let category: String = r.get(5)?;
                let ticket: String = r.get(7)?;
                let e = HazardEpisode {
                    id: r.get(4)?,
                    category: names::category(&category)?,
                    device: r.get(6)?,
                    ticket: names::ticket(&ticket)?,
                    started_ms: r.get(8)?,
                    ended_ms: r.get(9)?,
                };
                match out.last_mut() {
                    Some(h) if h.site_id == site_id => {
                        h.since_ms = h.since_ms.min(e.started_ms);
                        h.ticket = h.ticket.min(e.ticket);
                        h.episodes.push(e);
                    }
                    _ => out.push(Hazard {
                        site_id,
                        site: r.get(1)?,
                        address: r.get(2)?,
                        area_id: r.get(3)?,
                        since_ms: e.started_ms,
                        ticket: e.ticket,
                        episodes: vec![e],
                    }),
                }
            }
            out.sort_by_key(|h| (h.since_ms, h.site_id));
            Ok(out)
        })
    }
}

/// The worker a ticket is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Assignee {
    /// The worker's id.
    pub id: i64,
    /// Their name (absent if the worker was deleted since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Store {
    /// Assigns an episode's ticket to a worker who answers for its grid cell (a worker of the
    /// cell or of an area above it), audited as `ticket.assigned` by `who`.
    ///
    /// The inner `Err` says why a worker who answers for another area is refused.
    ///
    /// # Errors
    /// [`StoreError::UnknownEpisode`]; [`StoreError::Unknown`] (the worker); a database error.
    pub fn assign_ticket(
        &self,
        id: crate::model::EpisodeId,
        worker: i64,
        who: &str,
        now: UnixMs,
    ) -> Result<Result<Assignee, String>, StoreError> {
        use rusqlite::OptionalExtension;
        let grid = self
            .episode(id)?
            .ok_or(StoreError::UnknownEpisode(id))?
            .grid;
        let path = self.area_path(&grid)?;
        self.write_journal(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (name, area): (String, String) = tx
                .query_row(
                    "SELECT name, area_id FROM workers WHERE id = ?1",
                    [worker],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| super::resource::unknown(super::Noun::Worker, worker))?;
            if !path.iter().any(|a| a.id.as_str() == area) {
                return Ok(Err(format!(
                    "worker {worker} answers for {area}, not for grid cell {grid} or an area above it"
                )));
            }
            tx.execute(
                "UPDATE episodes SET assignee_id = ?2 WHERE id = ?1",
                params![id, worker],
            )?;
            super::journal::insert_audit(
                &tx,
                now,
                who,
                "ticket.assigned",
                &format!("episode/{id}"),
                &serde_json::json!({ "worker_id": worker, "name": name }).to_string(),
            )?;
            tx.commit()?;
            Ok(Ok(Assignee {
                id: worker,
                name: Some(name),
            }))
        })
    }

    /// The worker an episode's ticket is assigned to.
    ///
    /// # Errors
    /// A database error.
    pub fn assignee_of(&self, id: crate::model::EpisodeId) -> Result<Option<Assignee>, StoreError> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.query_row(
                "SELECT e.assignee_id, w.name FROM episodes e LEFT JOIN workers w \
                 ON w.id = e.assignee_id WHERE e.id = ?1 AND e.assignee_id IS NOT NULL",
                [sql::int(id)?],
                |r| {
                    Ok(Assignee {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }
}
