//! What the reports read ([`crate::reports`] computes them): the area tree with its key areas
//! (重点区域, flagged here), the episodes of an area subtree with their ticket times, and the
//! watched devices with whether they are offline. Registry and journal tables only — never the
//! readings tables.

use rusqlite::types::Value;

use firegrid_protocols::GridId;

use super::names;
use super::resource::{Actor, Noun, audit, rows, unknown, within};
use super::sql::SUBTREE;
use super::{AreaId, Store, StoreError};
use crate::model::UnixMs;
use crate::reports::{AreaRow, DeviceRow, HazardRow};

/// The most episodes one report reads.
pub const MAX_REPORT_EPISODES: usize = 200_000;

impl Store {
    /// Flags (`key`) or unflags `area` as a key area, audited as `area.key` by the actor.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] (the area); [`StoreError::OutOfScope`] when it is outside the
    /// actor's scope.
    pub fn set_key_area(
        &self,
        area: &AreaId,
        key: bool,
        actor: Actor<'_>,
    ) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = super::resource::immediate(conn)?;
            let exists: i64 = tx.query_row(
                "SELECT count(*) FROM areas WHERE id = ?1",
                [area.as_str()],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Err(unknown(Noun::Area, area));
            }
            if let Some(scope) = actor.scope
                && !within(&tx, area, scope)?
            {
                return Err(StoreError::OutOfScope {
                    what: format!("area {area}"),
                    area: Some(area.clone()),
                    scope: scope.clone(),
                });
            }
            if key {
                tx.execute(
                    "INSERT INTO key_areas (area_id, flagged_ms, flagged_by) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (area_id) DO NOTHING",
                    rusqlite::params![
                        area.as_str(),
                        i64::try_from(actor.now).unwrap_or(i64::MAX),
                        actor.who
                    ],
                )?;
            } else {
                tx.execute("DELETE FROM key_areas WHERE area_id = ?1", [area.as_str()])?;
            }
            audit(
                &tx,
                actor,
                "area.key",
                format!("area/{area}"),
                &serde_json::json!({ "key": key }),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Every area with its key flag.
    ///
    /// # Errors
    /// A database error.
    pub fn report_areas(&self) -> Result<Vec<AreaRow>, StoreError> {
        self.read(|c| {
            rows(
                c,
                "SELECT a.id, a.parent_id, a.name, a.level, k.area_id IS NOT NULL \
                 FROM areas a LEFT JOIN key_areas k ON k.area_id = a.id ORDER BY a.id",
                &[],
                |r| {
                    let id: String = r.get(0)?;
                    let parent: Option<String> = r.get(1)?;
                    let level: String = r.get(3)?;
                    Ok(AreaRow {
                        id: names::grid_id(&id)?,
                        parent: parent.as_deref().map(names::grid_id).transpose()?,
                        name: r.get(2)?,
                        level: level.parse()?,
                        key: r.get(4)?,
                    })
                },
            )
        })
    }

    /// The episodes whose grid cell is in `area`'s subtree (all areas: `None`) that are
    /// unresolved (`unresolved_only`) or started at or after `since`, with their site and
    /// ticket times; at most [`MAX_REPORT_EPISODES`].
    ///
    /// # Errors
    /// [`StoreError::InvalidQuery`] when there are more; a database error.
    pub fn report_episodes(
        &self,
        area: Option<&GridId>,
        since: Option<UnixMs>,
        unresolved_only: bool,
    ) -> Result<Vec<HazardRow>, StoreError> {
        let mut sql = String::from(
            "SELECT e.id, e.category, e.device, e.grid, e.started_ms, e.ticket, \
             e.acknowledged_ms, (SELECT min(t.at_ms) FROM ticket_steps t \
             WHERE t.episode_id = e.id AND t.state = 'rectified'), s.id, s.name, s.address \
             FROM episodes e LEFT JOIN devices d ON d.id = e.device \
             LEFT JOIN sites s ON s.id = d.site_id WHERE 1",
        );
        let mut params: Vec<Value> = Vec::new();
        if let Some(a) = area {
            sql.push_str(&format!(" AND e.grid IN ({SUBTREE})"));
            params.push(Value::Text(a.to_string()));
        }
        if let Some(t) = since {
            sql.push_str(" AND e.started_ms >= ?");
            params.push(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
        }
        if unresolved_only {
            sql.push_str(" AND e.ticket NOT IN ('verified', 'closed')");
        }
        sql.push_str(&format!(
            " ORDER BY e.started_ms, e.id LIMIT {}",
            MAX_REPORT_EPISODES + 1
        ));
        let found = self.read(|c| {
            rows(c, &sql, &params, |r| {
                let category: String = r.get(1)?;
                let device: String = r.get(2)?;
                let grid: String = r.get(3)?;
                let ticket: String = r.get(5)?;
                let site: Option<i64> = r.get(8)?;
                Ok(HazardRow {
                    episode: r.get(0)?,
                    category: names::category(&category)?,
                    device,
                    grid: names::grid_id(&grid)?,
                    site: match site {
                        Some(id) => Some((id, r.get(9)?, r.get(10)?)),
                        None => None,
                    },
                    started_ms: r.get(4)?,
                    ticket: names::ticket(&ticket)?,
                    acknowledged_ms: r.get(6)?,
                    rectified_ms: r.get(7)?,
                })
            })
        })?;
        if found.len() > MAX_REPORT_EPISODES {
            return Err(StoreError::InvalidQuery(format!(
                "more than {MAX_REPORT_EPISODES} episodes: ask for a smaller area or fewer days"
            )));
        }
        Ok(found)
    }

    /// The devices whose grid cell is in `area`'s subtree (all: `None`), with since when each
    /// is offline (its open offline episode's start), whether its battery is low (its
    /// battery-low episode is open) and when its last self-test result arrived.
    ///
    /// # Errors
    /// A database error.
    pub fn report_devices(&self, area: Option<&GridId>) -> Result<Vec<DeviceRow>, StoreError> {
        let mut sql = String::from(
            "SELECT d.id, d.grid_id, d.site_id, d.state, (SELECT min(e.started_ms) FROM episodes e \
             WHERE e.device = d.id AND e.category = 'offline' AND e.ended_ms IS NULL), \
             EXISTS (SELECT 1 FROM episodes e WHERE e.device = d.id \
             AND e.category = 'battery_low' AND e.ended_ms IS NULL), d.kind, d.created_ms, \
             (SELECT max(v.received_ms) FROM events v WHERE v.device = d.id \
             AND v.kind = 'self_test') \
             FROM devices d WHERE d.grid_id IS NOT NULL",
        );
        let mut params: Vec<Value> = Vec::new();
        if let Some(a) = area {
            sql.push_str(&format!(" AND d.grid_id IN ({SUBTREE})"));
            params.push(Value::Text(a.to_string()));
        }
        sql.push_str(" ORDER BY d.id");
        self.read(|c| {
            rows(c, &sql, &params, |r| {
                let id: String = r.get(0)?;
                let grid: Option<String> = r.get(1)?;
                let state: String = r.get(3)?;
                let kind: String = r.get(6)?;
                Ok(DeviceRow {
                    id,
                    grid: grid.as_deref().map(names::grid_id).transpose()?,
                    site_id: r.get(2)?,
                    state: names::device_state(&state)?,
                    offline_since_ms: r.get(4)?,
                    // Low by the device's own word: its battery-low episode is open.
                    battery_low: Some(r.get::<_, bool>(5)?),
                    kind: names::device_kind(&kind)?,
                    created_ms: r.get(7)?,
                    last_self_test_ms: r.get(8)?,
                    // Decided against the schedule by the caller (commissioning::overdue).
                    self_test_overdue: None,
                })
            })
        })
    }
}
