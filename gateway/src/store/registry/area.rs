//! Areas: the hierarchy district → street → community → grid cell, the escalation path, and
//! the subtrees that scope people's access.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use firegrid_protocols::GridId;

use super::super::names;
use super::super::resource::{Noun, Record, Resource, count, rows, unknown, within};
use super::super::sql::Where;
use super::super::{Store, StoreError};
use super::{AreaId, opt_text, text};

/// A level of the area hierarchy, from the smallest up.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// A grid cell: a few streets' worth of housing with its grid workers.
    Grid,
    /// A community (社区).
    Community,
    /// A street (街道).
    Street,
    /// A district (区).
    District,
}

impl AreaLevel {
    /// The name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grid => "grid",
            Self::Community => "community",
            Self::Street => "street",
            Self::District => "district",
        }
    }
}

impl fmt::Display for AreaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AreaLevel {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "grid" => Ok(Self::Grid),
            "community" => Ok(Self::Community),
            "street" => Ok(Self::Street),
            "district" => Ok(Self::District),
            _ => Err(names::invalid("area level", s)),
        }
    }
}

/// An area's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AreaFields {
    /// The area it belongs to, of a higher level (none for the top).
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    pub parent_id: Option<AreaId>,
    /// Its level.
    pub level: AreaLevel,
    /// Its name.
    pub name: String,
}

/// An area.
pub type Area = Record<AreaFields, AreaId>;

/// Which areas to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaFilter {
    /// Only the children of this area.
    pub parent_id: Option<AreaId>,
    /// Only this level.
    pub level: Option<AreaLevel>,
}

fn area_level(conn: &Connection, id: &str) -> Result<Option<AreaLevel>, StoreError> {
    let level: Option<String> = conn
        .query_row("SELECT level FROM areas WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    level.map(|l| l.parse()).transpose()
}

pub(in super::super) fn require_area(
    conn: &Connection,
    id: &AreaId,
) -> Result<AreaLevel, StoreError> {
    area_level(conn, id.as_str())?.ok_or_else(|| unknown(Noun::Area, id))
}

impl Resource for AreaFields {
    type Id = AreaId;
    type NewId = AreaId;
    type Filter = AreaFilter;
    const NOUN: Noun = Noun::Area;
    const TABLE: &'static str = "areas";
    const COLUMNS: &'static [&'static str] = &["parent_id", "level", "name"];
    const USED_BY: &'static [(&'static str, &'static str)] = &[
        ("SELECT count(*) FROM areas WHERE parent_id = ?1", "areas"),
        ("SELECT count(*) FROM workers WHERE area_id = ?1", "workers"),
        ("SELECT count(*) FROM sites WHERE area_id = ?1", "sites"),
        ("SELECT count(*) FROM devices WHERE grid_id = ?1", "devices"),
    ];
    const AREA_SQL: &'static str = "id";

    fn id_value(id: &AreaId) -> Value {
        text(id)
    }
    fn given_id(new: &AreaId) -> Option<&AreaId> {
        Some(new)
    }
    fn new_id(new: AreaId, _rowid: i64) -> AreaId {
        new
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            opt_text(self.parent_id.as_ref()),
            text(&self.level),
            text(&self.name),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(AreaId, Self), StoreError> {
        let id: String = r.get("id")?;
        let parent: Option<String> = r.get("parent_id")?;
        let level: String = r.get("level")?;
        Ok((
            names::grid_id(&id)?,
            Self {
                parent_id: parent.as_deref().map(names::grid_id).transpose()?,
                level: level.parse()?,
                name: r.get("name")?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        id: Option<&AreaId>,
        before: Option<&Self>,
    ) -> Result<(), StoreError> {
        let Some(id) = id else {
            return Err(StoreError::Invalid("an area needs an id".into()));
        };
        if let Some(parent) = &self.parent_id {
            if parent == id {
                return Err(StoreError::Mismatch(format!(
                    "area {id} cannot be its own parent"
                )));
            }
            let level = require_area(conn, parent)?;
            if level <= self.level {
                return Err(StoreError::Mismatch(format!(
                    "area {id} ({}) cannot be under {parent} ({level}): a parent is of a higher \
                     level",
                    self.level
                )));
            }
        }
        if before.is_some() {
            let children = rows(
                conn,
                "SELECT id, level FROM areas WHERE parent_id = ?1",
                &[text(id)],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )?;
            for (child, level) in children {
                let level: AreaLevel = level.parse()?;
                if level >= self.level {
                    return Err(StoreError::Mismatch(format!(
                        "area {id} cannot become {}: its child {child} is {level}",
                        self.level
                    )));
                }
            }
            if self.level != AreaLevel::Grid
                && count(
                    conn,
                    "SELECT count(*) FROM devices WHERE grid_id = ?1",
                    id.as_str(),
                )? > 0
            {
                return Err(StoreError::InUse {
                    what: "area",
                    id: id.to_string(),
                    by: "devices (as their grid cell): it must stay a grid cell",
                });
            }
        }
        Ok(())
    }
    fn filter(filter: &AreaFilter, w: &mut Where) -> Option<(u32, u32)> {
        if let Some(p) = &filter.parent_id {
            w.eq("parent_id = ?", p.to_string());
        }
        if let Some(l) = filter.level {
            w.eq("level = ?", l.as_str().to_string());
        }
        None
    }
    fn area(&self, _: &Connection, id: Option<&AreaId>) -> Result<Option<GridId>, StoreError> {
        // A new area lies where its parent is; an existing one is its own.
        Ok(id.cloned().or_else(|| self.parent_id.clone()))
    }
}

impl Store {
    /// The area and the areas above it, nearest first: the escalation path of a grid cell.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] (an area).
    pub fn area_path(&self, id: &AreaId) -> Result<Vec<Area>, StoreError> {
        self.read(|c| {
            let path = rows(
                c,
                "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 \
                 UNION ALL SELECT a.parent_id, up.depth + 1 FROM areas a JOIN up ON a.id = up.id \
                 WHERE a.parent_id IS NOT NULL AND up.depth < 16) \
                 SELECT a.* FROM up JOIN areas a ON a.id = up.id ORDER BY up.depth",
                &[text(id)],
                |r| {
                    let (id, fields) = AreaFields::from_row(r)?;
                    Ok(Area {
                        id,
                        fields,
                        created_ms: r.get("created_ms")?,
                        updated_ms: r.get("updated_ms")?,
                    })
                },
            )?;
            if path.is_empty() {
                return Err(unknown(Noun::Area, id));
            }
            Ok(path)
        })
    }

    /// The ids of `area` and every area below it.
    ///
    /// # Errors
    /// A database error.
    pub fn subtree(&self, area: &AreaId) -> Result<Vec<AreaId>, StoreError> {
        self.read(|c| {
            rows(c, super::super::sql::SUBTREE, &[text(area)], |r| {
                names::grid_id(&r.get::<_, String>(0)?)
            })
        })
    }

    /// Whether `area` lies in the subtree of `scope` (the area itself included).
    ///
    /// # Errors
    /// A database error.
    pub fn area_within(&self, area: &AreaId, scope: &AreaId) -> Result<bool, StoreError> {
        self.read(|c| within(c, area, scope))
    }

    /// Whether the subject of an audit entry (`device/hz-1`, `site/3`, `episode/17`) lies in
    /// the subtree of `scope`. A subject that names a person, or something since deleted, is
    /// not in any area.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn subject_within(&self, subject: &str, scope: &GridId) -> Result<bool, StoreError> {
        use super::{CircuitFields, DeviceFields, RoomFields, SiteFields, WorkerFields};
        fn area_sql<F: Resource>() -> String {
            format!("SELECT {} FROM {} WHERE id = ?1", F::AREA_SQL, F::TABLE)
        }
        let Some((noun, id)) = subject.split_once('/') else {
            return Ok(false);
        };
        let sql = match noun {
            "area" => area_sql::<AreaFields>(),
            "worker" => area_sql::<WorkerFields>(),
            "site" => area_sql::<SiteFields>(),
            "room" => area_sql::<RoomFields>(),
            "circuit" => area_sql::<CircuitFields>(),
            "device" => area_sql::<DeviceFields>(),
            "episode" => "SELECT grid FROM episodes WHERE id = ?1".to_string(),
            _ => return Ok(false),
        };
        self.read(|c| {
            let area: Option<Option<String>> = c.query_row(&sql, [id], |r| r.get(0)).optional()?;
            match area.flatten() {
                Some(a) => match GridId::new(&a) {
                    Ok(a) => within(c, &a, scope),
                    Err(_) => Ok(false),
                },
                None => Ok(false),
            }
        })
    }
}
