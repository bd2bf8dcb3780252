//! Opening: check, migrate, and recover from a damaged file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::Serialize;

use super::error::is_damage;
use super::{
    Role, Store, StoreError, StoreOptions, configure, open_connection, readings_path, schema,
};

/// What [`Store::open`] found and did. Log it at start-up; expose it on the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// The database file.
    pub path: PathBuf,
    /// The schema version now.
    pub schema_version: u32,
    /// The file did not exist (or was empty): a new store.
    pub created: bool,
    /// The schema was migrated from this version.
    pub migrated_from: Option<u32>,
    /// The integrity check at open.
    pub check: Check,
    /// The file was damaged and replaced: what happened to it.
    pub recovery: Option<Recovery>,
    /// The readings file was damaged and replaced by an empty one: why (its readings are not
    /// salvaged; the damaged file is beside it as `<file>.damaged-<ms>`).
    pub readings_recovery: Option<String>,
}

impl StoreHealth {
    /// Whether the store opened as it was, without recovery.
    pub fn is_clean(&self) -> bool {
        self.recovery.is_none() && self.readings_recovery.is_none()
    }
}

impl fmt::Display for StoreHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store {} (schema {}",
            self.path.display(),
            self.schema_version
        )?;
        if self.created {
            f.write_str(", new")?;
        }
        if let Some(v) = self.migrated_from {
            write!(f, ", migrated from {v}")?;
        }
        match self.check {
            Check::Passed { ms } => write!(f, ", quick_check ok in {ms} ms")?,
            Check::Skipped => f.write_str(", not checked")?,
        }
        f.write_str(")")?;
        if let Some(r) = &self.recovery {
            write!(f, ": RECOVERED: {r}")?;
        }
        if let Some(r) = &self.readings_recovery {
            write!(f, ": READINGS FILE REPLACED: {r}")?;
        }
        Ok(())
    }
}

/// The integrity check at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// `PRAGMA quick_check` said ok.
    Passed {
        /// How long it took, ms.
        ms: u64,
    },
    /// Not run ([`StoreOptions::check_at_open`] off).
    Skipped,
}

/// A damaged store that was moved aside and replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// What was wrong (SQLite's words).
    pub reason: String,
    /// Where the damaged file is now (its `-wal` and `-shm`, if any, beside it).
    pub moved_to: PathBuf,
    /// What was copied from the damaged file into the fresh store, table by table.
    pub salvaged: Vec<TableSalvage>,
    /// Why nothing at all could be salvaged, if so.
    pub salvage_error: Option<String>,
}

impl Recovery {
    /// Rows copied into the fresh store.
    pub fn rows_salvaged(&self) -> u64 {
        self.salvaged.iter().map(|t| t.rows).sum()
    }

    /// The tables that could not be copied whole.
    pub fn incomplete_tables(&self) -> impl Iterator<Item = &TableSalvage> {
        self.salvaged.iter().filter(|t| !t.complete)
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; the damaged file was moved to {}; {} rows salvaged",
            self.reason,
            self.moved_to.display(),
            self.rows_salvaged()
        )?;
        if let Some(e) = &self.salvage_error {
            write!(f, " ({e})")?;
        }
        let lost: Vec<_> = self.incomplete_tables().map(|t| t.table.as_str()).collect();
        if !lost.is_empty() {
            write!(f, "; incomplete: {}", lost.join(", "))?;
        }
        Ok(())
    }
}

/// What was copied of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSalvage {
    /// The table.
    pub table: String,
    /// Rows copied.
    pub rows: u64,
    /// Whether the whole table could be read.
    pub complete: bool,
    /// Why not.
    pub error: Option<String>,
}

enum Attempt {
    /// The file is not a (sound) database: move it aside and start fresh.
    Damaged(String),
    /// Anything else: report it.
    Failed(StoreError),
}

fn classify(e: rusqlite::Error) -> Attempt {
    if is_damage(&e) {
        Attempt::Damaged(e.to_string())
    } else {
        Attempt::Failed(e.into())
    }
}

pub(super) fn open(path: &Path, options: StoreOptions) -> Result<(Store, StoreHealth), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "create the folder",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let reason = match attempt(path, &options) {
        Ok(ok) => return Ok(ok),
        Err(Attempt::Failed(e)) => return Err(e),
        Err(Attempt::Damaged(reason)) => reason,
    };
    tracing::error!(
        path = %path.display(),
        %reason,
        "the store is damaged: moving it aside and starting a fresh one"
    );
    let moved_to = quarantine(path)?;
    let (store, mut health) = attempt(path, &options).map_err(|a| match a {
        Attempt::Failed(e) => e,
        Attempt::Damaged(r) => StoreError::Invalid(format!("a fresh store is damaged: {r}")),
    })?;
    let (salvaged, salvage_error) = store.write_journal(|conn| Ok(salvage(&moved_to, conn)))?;
    let recovery = Recovery {
        reason,
        moved_to,
        salvaged,
        salvage_error,
    };
    tracing::error!(path = %path.display(), "store recovered: {recovery}");
    health.recovery = Some(recovery);
    Ok((store, health))
}

fn attempt(path: &Path, options: &StoreOptions) -> Result<(Store, StoreHealth), Attempt> {
    let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let mut journal = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    // WAL is a property of the file, set by the first connection. This is also the first read
    // of the header: a file that is not a database fails here.
    let mode: String = journal
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Attempt::Failed(StoreError::Invalid(format!(
            "journal_mode is {mode}, not wal"
        ))));
    }
    configure(&journal, Role::Journal).map_err(classify)?;
    let check = if options.check_at_open {
        let started = Instant::now();
        let problems = quick_check(&journal).map_err(|e| match classify(e) {
            Attempt::Damaged(reason) => Attempt::Damaged(format!("quick_check: {reason}")),
            failed => failed,
        })?;
        if !problems.is_empty() {
            return Err(Attempt::Damaged(format!(
                "quick_check: {}",
                problems.join("; ")
            )));
        }
        Check::Passed {
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    } else {
        Check::Skipped
    };
    let (mut readings, readings_recovery) =
        open_readings(path, options).map_err(Attempt::Failed)?;
    if schema::version(&journal).map_err(classify)? < 3 {
        super::readings_v1::table_for_main_v3(&readings).map_err(|e| match e {
            StoreError::Sqlite(e) => classify(e),
            other => Attempt::Failed(other),
        })?;
    }
    let found = schema::migrate(&mut journal, &readings_path(path)).map_err(|e| match e {
        StoreError::Sqlite(e) => classify(e),
        other => Attempt::Failed(other),
    })?;
    // After the main file's migrations: its version 3 moves an older store's readings and
    // rollups into the readings file's version-1 tables, which these empty into the day tables
    // and the packed rollups.
    super::readings_v1::drain(&mut readings)
        .and_then(|_| super::readings_v1::drain_hourly(&mut readings))
        .map_err(|e| match e {
            StoreError::Sqlite(e) => classify(e),
            other => Attempt::Failed(other),
        })?;
    let bulk = open_connection(path, Role::Bulk).map_err(classify)?;
    let health = StoreHealth {
        path: path.to_path_buf(),
        schema_version: schema::LATEST,
        created: !existed,
        migrated_from: (existed && found < schema::LATEST).then_some(found),
        check,
        recovery: None,
        readings_recovery,
    };
    Ok((
        Store::from_parts(path.to_path_buf(), options.clone(), journal, bulk, readings),
        health,
    ))
}

/// Opens (or creates) the readings file beside the main file at `main`, checks and migrates
/// it. A damaged one is moved aside and replaced by an empty one (readings are not
/// acknowledged end to end, nor salvaged): returned with why.
fn open_readings(
    main: &Path,
    options: &StoreOptions,
) -> Result<(Connection, Option<String>), StoreError> {
    let path = readings_path(main);
    let reason = match attempt_readings(&path, options) {
        Ok(conn) => return Ok((conn, None)),
        Err(Attempt::Failed(e)) => return Err(e),
        Err(Attempt::Damaged(reason)) => reason,
    };
    tracing::error!(
        path = %path.display(),
        %reason,
        "the readings file is damaged: moving it aside and starting an empty one (the journal is not affected)"
    );
    let moved_to = quarantine(&path)?;
    let conn = attempt_readings(&path, options).map_err(|a| match a {
        Attempt::Failed(e) => e,
        Attempt::Damaged(r) => {
            StoreError::Invalid(format!("a fresh readings file is damaged: {r}"))
        }
    })?;
    Ok((
        conn,
        Some(format!("{reason}; moved to {}", moved_to.display())),
    ))
}

fn attempt_readings(path: &Path, options: &StoreOptions) -> Result<Connection, Attempt> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Attempt::Failed(StoreError::Invalid(format!(
            "readings file: journal_mode is {mode}, not wal"
        ))));
    }
    configure(&conn, Role::Readings).map_err(classify)?;
    if options.check_at_open {
        let problems = quick_check(&conn).map_err(|e| match classify(e) {
            Attempt::Damaged(reason) => Attempt::Damaged(format!("quick_check: {reason}")),
            failed => failed,
        })?;
        if !problems.is_empty() {
            return Err(Attempt::Damaged(format!(
                "quick_check: {}",
                problems.join("; ")
            )));
        }
    }
    schema::migrate_readings(&mut conn).map_err(|e| match e {
        StoreError::Sqlite(e) => classify(e),
        other => Attempt::Failed(other),
    })?;
    Ok(conn)
}

/// `PRAGMA quick_check`: the problems found (none: sound). Stops at 10.
fn quick_check(conn: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// Moves the damaged file and its `-wal` and `-shm` aside; returns the new path of the file.
fn quarantine(path: &Path) -> Result<PathBuf, StoreError> {
    let ms = crate::clock::now_ms();
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let mut target = path.with_file_name(format!("{name}.damaged-{ms}"));
    let mut n = 1;
    while target.exists() {
        target = path.with_file_name(format!("{name}.damaged-{ms}-{n}"));
        n += 1;
    }
    let io = |action: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::rename(path, &target).map_err(io("move the damaged store aside", path))?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if from.exists() {
            let mut to = target.as_os_str().to_owned();
            to.push(suffix);
            std::fs::rename(&from, PathBuf::from(to))
                .map_err(io("move the damaged store aside", &from))?;
        }
    }
    Ok(target)
}

/// Copies every row that can still be read from the damaged file into the fresh store, table
/// by table (parents first; foreign keys off while copying: the rows were consistent once).
fn salvage(damaged: &Path, fresh: &mut Connection) -> (Vec<TableSalvage>, Option<String>) {
    let old = match Connection::open_with_flags(
        damaged,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(format!("cannot open it: {e}"))),
    };
    // Fails for a file that is not a database at all.
    if let Err(e) = old.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
        return (Vec::new(), Some(format!("nothing readable: {e}")));
    }
    if let Err(e) = fresh.pragma_update(None, "foreign_keys", false) {
        return (Vec::new(), Some(e.to_string()));
    }
    let mut out = Vec::new();
    for table in schema::TABLES {
        let salvaged = copy_table(&old, fresh, table);
        if salvaged.rows > 0 || !salvaged.complete {
            out.push(salvaged);
        }
    }
    let error = fresh
        .pragma_update(None, "foreign_keys", true)
        .err()
        .map(|e| e.to_string());
    (out, error)
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get(0))?;
    names.collect()
}

fn copy_table(old: &Connection, fresh: &mut Connection, table: &str) -> TableSalvage {
    let mut out = TableSalvage {
        table: table.to_string(),
        rows: 0,
        complete: false,
        error: None,
    };
    let result = (|| -> Result<(), rusqlite::Error> {
        let ours = columns(fresh, table)?;
        let theirs = columns(old, table)?;
        if theirs.is_empty() {
            // Not in the damaged file (older schema, or its schema is unreadable).
            out.complete = true;
            return Ok(());
        }
        let cols: Vec<&str> = ours
            .iter()
            .filter(|c| theirs.contains(c))
            .map(String::as_str)
            .collect();
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let marks = vec!["?"; cols.len()].join(", ");
        let tx = fresh.transaction()?;
        {
            let mut insert = tx.prepare(&format!(
                "INSERT OR IGNORE INTO {table} ({list}) VALUES ({marks})"
            ))?;
            let mut select = old.prepare(&format!("SELECT {list} FROM {table}"))?;
            let mut rows = select.query([])?;
            // A damaged page ends the table here: keep what was read before it.
            let read = loop {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
                let values = (0..cols.len())
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>();
                match values {
                    Ok(values) => out.rows += insert.execute(params_from_iter(values))? as u64,
                    Err(e) => break Err(e),
                }
            };
            match read {
                Ok(()) => out.complete = true,
                Err(e) => out.error = Some(e.to_string()),
            }
        }
        tx.commit()
    })();
    if let Err(e) = result {
        out.complete = false;
        out.error.get_or_insert_with(|| e.to_string());
    }
    out
}
