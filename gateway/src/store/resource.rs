//! One generic registry resource: create, read, list, change and delete, each checked and
//! audited in one transaction, written once for every noun.
//!
//! A noun (areas, workers, sites, rooms, circuits, devices) is a value of [`Noun`] and an impl
//! of [`Resource`] on its fields type that says only what differs: its table and columns, how
//! a row reads back, what its references must satisfy, what refuses its deletion, how a list
//! is filtered, and which area it lies in (for scoped access). Everything else — existence,
//! `AlreadyExists`, `Unknown`, the audit entry, timestamps — is here, once.

use std::fmt;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::journal::insert_audit;
use super::sql::{SUBTREE, Where};
use super::{Store, StoreError};
use crate::model::UnixMs;
use firegrid_protocols::GridId;

/// Who makes a change, when, and within which area: written to the audit log with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// A person's user name, or `gateway`.
    pub who: &'a str,
    /// The time of the change, ms since the Unix epoch.
    pub now: UnixMs,
    /// The area subtree they may change things in; `None`: anywhere. A change of a record
    /// outside it (before or after the change) is [`StoreError::OutOfScope`].
    pub scope: Option<&'a GridId>,
}

impl<'a> Actor<'a> {
    /// `who` at `now`, anywhere.
    pub const fn new(who: &'a str, now: UnixMs) -> Self {
        Self {
            who,
            now,
            scope: None,
        }
    }

    /// `who` at `now`, limited to the subtree of `scope` (if any).
    pub const fn scoped(who: &'a str, now: UnixMs, scope: Option<&'a GridId>) -> Self {
        Self { who, now, scope }
    }
}

/// A registry noun, as a value: what errors, audit entries and access rules name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Noun {
    /// An area (district, street, community, grid cell).
    Area,
    /// A grid worker or other person alerts go to.
    Worker,
    /// A rental building.
    Site,
    /// A room of a site.
    Room,
    /// A node of a site's supply tree.
    Circuit,
    /// A device.
    Device,
}

impl Noun {
    /// Its name in the API, the audit log and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Area => "area",
            Self::Worker => "worker",
            Self::Site => "site",
            Self::Room => "room",
            Self::Circuit => "circuit",
            Self::Device => "device",
        }
    }
}

impl fmt::Display for Noun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored registry record: its id, its fields, when it was created and last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<F, I> {
    /// Its id.
    pub id: I,
    /// Its data.
    #[serde(flatten)]
    pub fields: F,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: UnixMs,
    /// When it was last changed, ms since the Unix epoch.
    pub updated_ms: UnixMs,
}

/// A record of the resource `F`.
pub(crate) type RecordOf<F> = Record<F, <F as Resource>::Id>;

/// What differs between the registry's nouns; implemented by each noun's fields type.
pub(crate) trait Resource: Clone + Serialize + Send + Sync + Sized + 'static {
    /// Its id.
    type Id: Clone + PartialEq + fmt::Display + Serialize + Send + Sync + 'static;
    /// What a create is given as id: the id itself, or `()` when the store assigns it.
    type NewId: Send + 'static;
    /// Which records to list.
    type Filter: Send + 'static;
    /// The noun.
    const NOUN: Noun;
    /// Its table (with columns `id`, `created_ms`, `updated_ms` and [`COLUMNS`](Self::COLUMNS)).
    const TABLE: &'static str;
    /// The columns written from its fields, in the order of [`values`](Self::values).
    const COLUMNS: &'static [&'static str];
    /// What refuses a deletion: `(SQL counting the users of the id given as ?1, their name)`.
    const USED_BY: &'static [(&'static str, &'static str)];

    /// The id as an SQL value.
    fn id_value(id: &Self::Id) -> Value;
    /// The id given to a create, if it is not assigned by the store.
    fn given_id(new: &Self::NewId) -> Option<&Self::Id>;
    /// The id of a created record: the given one, or the row id the store assigned.
    fn new_id(new: Self::NewId, rowid: i64) -> Self::Id;
    /// The values of [`COLUMNS`](Self::COLUMNS).
    fn values(&self) -> Result<Vec<Value>, StoreError>;
    /// A row of its table (read by column name) as id and fields.
    fn from_row(r: &Row<'_>) -> Result<(Self::Id, Self), StoreError>;
    /// Checks the fields against the rest of the registry, inside the write transaction;
    /// `id` is `None` for a create whose id the store assigns, `before` is `Some` for a change.
    fn check(
        &self,
        conn: &Connection,
        id: Option<&Self::Id>,
        before: Option<&Self>,
    ) -> Result<(), StoreError>;
    /// Adds the filter's conditions; returns the page `(limit, offset)` if it has one.
    fn filter(filter: &Self::Filter, w: &mut Where) -> Option<(u32, u32)>;
    /// An SQL expression over a row of [`TABLE`](Self::TABLE): the area the record lies in
    /// (for scoped lists).
    const AREA_SQL: &'static str;
    /// The area a record with these fields lies in, for scoped access (`None`: none yet, e.g.
    /// a device not yet placed: only a city-wide user reaches it). `id` is `None` for a record
    /// not yet created whose id the store assigns.
    fn area(&self, conn: &Connection, id: Option<&Self::Id>) -> Result<Option<GridId>, StoreError>;
    /// Done after the insert, in the same transaction.
    fn inserted(_conn: &Connection, _id: &Self::Id) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The "unknown" error of a noun.
pub(crate) fn unknown(noun: Noun, id: impl fmt::Display) -> StoreError {
    StoreError::Unknown {
        what: noun,
        id: id.to_string(),
    }
}

pub(super) fn audit(
    conn: &Connection,
    actor: Actor<'_>,
    action: &str,
    subject: String,
    detail: &impl Serialize,
) -> Result<(), StoreError> {
    let detail = serde_json::to_string(detail)?;
    insert_audit(conn, actor.now, actor.who, action, &subject, &detail)
}

/// Runs `sql` with `params` and maps each row.
pub(super) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

pub(super) fn count(
    conn: &Connection,
    sql: &str,
    id: impl rusqlite::ToSql,
) -> Result<i64, StoreError> {
    Ok(conn.query_row(sql, [id], |r| r.get(0))?)
}

/// Fails with [`StoreError::InUse`] if any of `checks` (one `?1`: the id) counts a row.
pub(super) fn refuse_if_used(
    conn: &Connection,
    what: Noun,
    id: &str,
    checks: &[(&str, &'static str)],
    param: &Value,
) -> Result<(), StoreError> {
    for (sql, by) in checks {
        if count(conn, sql, param)? > 0 {
            return Err(StoreError::InUse {
                what: what.as_str(),
                id: id.to_string(),
                by,
            });
        }
    }
    Ok(())
}

pub(super) fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Whether `area` lies in the subtree of `scope` (the area itself included).
pub(super) fn within(conn: &Connection, area: &GridId, scope: &GridId) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT ?1 IN ({SUBTREE})"),
        [area.as_str(), scope.as_str()],
        |r| r.get(0),
    )?)
}

/// Fails with [`StoreError::OutOfScope`] unless a record with these fields lies within `scope`.
pub(super) fn check_scope<F: Resource>(
    conn: &Connection,
    id: Option<&F::Id>,
    fields: &F,
    scope: Option<&GridId>,
) -> Result<(), StoreError> {
    let Some(scope) = scope else {
        return Ok(());
    };
    let area = fields.area(conn, id)?;
    let inside = match &area {
        Some(a) => within(conn, a, scope)?,
        None => false,
    };
    if inside {
        return Ok(());
    }
    Err(StoreError::OutOfScope {
        what: match id {
            Some(id) => StoreError::Unknown {
                what: F::NOUN,
                id: id.to_string(),
            }
            .to_string()
            .replacen("unknown ", "", 1),
            None => format!("the new {}", F::NOUN),
        },
        area,
        scope: scope.clone(),
    })
}

fn record<F: Resource>(r: &Row<'_>) -> Result<RecordOf<F>, StoreError> {
    let (id, fields) = F::from_row(r)?;
    Ok(Record {
        id,
        fields,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
    })
}

/// One record, read inside `conn` (a transaction or a read connection).
pub(super) fn get_in<F: Resource>(
    conn: &Connection,
    id: &F::Id,
) -> Result<Option<RecordOf<F>>, StoreError> {
    let sql = format!("SELECT * FROM {} WHERE id = ?1", F::TABLE);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query([F::id_value(id)])?;
    found.next()?.map(record::<F>).transpose()
}

/// Whether a record exists, inside `conn`.
pub(super) fn exists<F: Resource>(conn: &Connection, id: &F::Id) -> Result<bool, StoreError> {
    let sql = format!("SELECT 1 FROM {} WHERE id = ?1", F::TABLE);
    Ok(conn
        .query_row(&sql, [F::id_value(id)], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Inserts one record inside the caller's transaction: checked, audited.
pub(super) fn insert_in<F: Resource>(
    tx: &Connection,
    new: F::NewId,
    fields: &F,
    actor: Actor<'_>,
) -> Result<RecordOf<F>, StoreError> {
    let given = F::given_id(&new);
    if let Some(id) = given
        && exists::<F>(tx, id)?
    {
        return Err(StoreError::AlreadyExists {
            what: F::NOUN.as_str(),
            id: id.to_string(),
        });
    }
    fields.check(tx, given, None)?;
    check_scope(tx, given, fields, actor.scope)?;
    let mut cols: Vec<&str> = F::COLUMNS.to_vec();
    let mut values = fields.values()?;
    if let Some(id) = given {
        cols.push("id");
        values.push(F::id_value(id));
    }
    cols.extend(["created_ms", "updated_ms"]);
    let now = Value::Integer(super::sql::int(actor.now)?);
    values.extend([now.clone(), now]);
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        F::TABLE,
        cols.join(", "),
        vec!["?"; cols.len()].join(", ")
    );
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    let id = F::new_id(new, tx.last_insert_rowid());
    F::inserted(tx, &id)?;
    let record = Record {
        id,
        fields: fields.clone(),
        created_ms: actor.now,
        updated_ms: actor.now,
    };
    let noun = F::NOUN;
    audit(
        tx,
        actor,
        &format!("{noun}.create"),
        format!("{noun}/{}", record.id),
        &record,
    )?;
    Ok(record)
}

impl Store {
    /// Creates a record: its references checked, audited with who made it.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (a given id that is taken); [`StoreError::Unknown`] for a
    /// reference that does not exist; the noun's own checks ([`StoreError::Mismatch`],
    /// [`StoreError::NotAGrid`], [`StoreError::Incomplete`], [`StoreError::InvalidConfig`]).
    pub(crate) fn create<F: Resource>(
        &self,
        id: F::NewId,
        fields: &F,
        actor: Actor<'_>,
    ) -> Result<RecordOf<F>, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let record = insert_in(&tx, id, fields, actor)?;
            tx.commit()?;
            Ok(record)
        })
    }

    /// Changes a record (all its fields: read it first to change one).
    ///
    /// # Errors
    /// [`StoreError::Unknown`] for it or a reference; as [`create`](Self::create), plus
    /// [`StoreError::InUse`] for a change that what uses it does not allow.
    pub(crate) fn update<F: Resource>(
        &self,
        id: &F::Id,
        fields: &F,
        actor: Actor<'_>,
    ) -> Result<RecordOf<F>, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let before = get_in::<F>(&tx, id)?.ok_or_else(|| unknown(F::NOUN, id))?;
            check_scope(&tx, Some(id), &before.fields, actor.scope)?;
            fields.check(&tx, Some(id), Some(&before.fields))?;
            check_scope(&tx, Some(id), fields, actor.scope)?;
            let set: Vec<String> = F::COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
            let mut values = fields.values()?;
            values.push(Value::Integer(super::sql::int(actor.now)?));
            values.push(F::id_value(id));
            let sql = format!(
                "UPDATE {} SET {}, updated_ms = ? WHERE id = ?",
                F::TABLE,
                set.join(", ")
            );
            tx.prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(values))?;
            let record = get_in::<F>(&tx, id)?.ok_or_else(|| unknown(F::NOUN, id))?;
            let noun = F::NOUN;
            audit(
                &tx,
                actor,
                &format!("{noun}.update"),
                format!("{noun}/{id}"),
                &record,
            )?;
            tx.commit()?;
            Ok(record)
        })
    }

    /// Deletes a record nothing refers to.
    ///
    /// # Errors
    /// [`StoreError::Unknown`]; [`StoreError::InUse`] while something refers to it (a device
    /// with history is decommissioned, never deleted).
    pub(crate) fn delete<F: Resource>(
        &self,
        id: &F::Id,
        actor: Actor<'_>,
    ) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let before = get_in::<F>(&tx, id)?.ok_or_else(|| unknown(F::NOUN, id))?;
            check_scope(&tx, Some(id), &before.fields, actor.scope)?;
            let value = F::id_value(id);
            refuse_if_used(&tx, F::NOUN, &id.to_string(), F::USED_BY, &value)?;
            tx.execute(&format!("DELETE FROM {} WHERE id = ?1", F::TABLE), [value])?;
            let noun = F::NOUN;
            audit(
                &tx,
                actor,
                &format!("{noun}.delete"),
                format!("{noun}/{id}"),
                &(),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// One record.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn get<F: Resource>(&self, id: &F::Id) -> Result<Option<RecordOf<F>>, StoreError> {
        self.read(|c| get_in::<F>(c, id))
    }

    /// One record, if it lies within `scope` (`None`: anywhere).
    ///
    /// # Errors
    /// [`StoreError::OutOfScope`]; a database error.
    pub(crate) fn get_scoped<F: Resource>(
        &self,
        id: &F::Id,
        scope: Option<&GridId>,
    ) -> Result<Option<RecordOf<F>>, StoreError> {
        self.read(|c| {
            let Some(r) = get_in::<F>(c, id)? else {
                return Ok(None);
            };
            check_scope(c, Some(&r.id), &r.fields, scope)?;
            Ok(Some(r))
        })
    }

    /// Records by id, filtered; with `scope`, only those in that area's subtree.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn list<F: Resource>(
        &self,
        filter: &F::Filter,
        scope: Option<&GridId>,
    ) -> Result<Vec<RecordOf<F>>, StoreError> {
        let mut w = Where::default();
        let page = F::filter(filter, &mut w);
        if let Some(area) = scope {
            w.in_area(F::AREA_SQL, area.as_str());
        }
        let mut sql = format!("SELECT * FROM {}{} ORDER BY id", F::TABLE, w.sql());
        if let Some((limit, offset)) = page {
            sql.push_str(&format!(
                " LIMIT {} OFFSET {offset}",
                super::sql::page(limit, 1000, 10_000)
            ));
        }
        self.read(|c| rows(c, &sql, &w.params, record::<F>))
    }
}
