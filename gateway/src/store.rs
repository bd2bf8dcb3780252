//! The gateway's local store: two SQLite files in WAL mode, with numbered migrations.
//!
//! What it holds: in the main file (`firegrid.db`), the **registry** (areas down to grid
//! cells, workers, sites, rooms, circuits, devices, and the devices that published without
//! being registered) and the **journal** (events, deduplicated by `(device, seq)` across
//! restarts; episodes with their tickets, ticket steps, the audit log, the notifications
//! outbox); in the readings file beside it ([`readings_path`]: `firegrid-readings.db`),
//! **readings** (raw, one row per message in a table per day, kept
//! [`StoreOptions::readings_retention_ms`], plus hourly rollups kept far longer). Two files, two write-ahead logs: a journal commit's fsync never flushes readings.
//! Retention: [`Store::prune`], run hourly by the gateway.
//!
//! # Reliability
//!
//! - **Durable before the ack.** Journal transactions run on a connection with
//!   `synchronous=FULL`: in WAL mode the WAL is fsynced at every commit, so whatever
//!   [`Store::journal_batch`] (or [`JournalWriter`]) has returned `Ok` for survives `kill -9` and
//!   power loss. Only then may the caller publish the device's ack.
//! - **Disk full is typed.** [`StoreError::DiskFull`]: the transaction was rolled back whole, the
//!   caller stops acknowledging (devices keep their events and resend them), never ack-and-drop.
//! - **A damaged file never stops start-up.** [`Store::open`] runs `PRAGMA quick_check`; if the
//!   file is not a database or is damaged, it is moved aside (`<file>.damaged-<ms>`, with its
//!   `-wal`/`-shm`), a fresh store is created, whatever rows can still be read are copied over,
//!   and [`StoreHealth::recovery`] says what happened (also logged at `error`).
//! - **Readings never delay alarms.** Readings and rollups are in a file of their own, written
//!   by a connection of their own (`synchronous=FULL`, though readings are not acknowledged end
//!   to end and the up to 250 ms the writer gathers before it writes are lost on a crash: so
//!   that its writes reach the disk commit by commit, never as a burst of dirty pages that a
//!   journal fsync would wait behind — decision 25) fed by its own thread and
//!   queue ([`ReadingsWriter`]): its own write lock, its own WAL, its own checkpoints. On the
//!   main file, the pending-device list, the devices' statuses (1000 per transaction) and
//!   pruning use a third connection (`NORMAL`); SQLite has one write lock per file, so it and
//!   the journal take turns through an in-process gate that lets a waiting journal write go
//!   first, between two transactions. Checkpoints of the main file run every 10 s
//!   off the alarm path ([`Store::checkpoint`], called by the gateway's maintenance task); the
//!   journal connection checkpoints only as a safety net when its WAL has grown to ~40 MB.
//! - **Readings survive a damaged main file, and the journal a damaged readings file.** The
//!   readings file is checked at open too; a damaged one is moved aside and replaced by an
//!   empty one ([`StoreHealth::readings_recovery`]).
//!
//! # Concurrency
//!
//! [`Store`] is `Clone + Send + Sync` (an `Arc`); its methods block, so async code calls them
//! through `tokio::task::spawn_blocking`, or uses the two writer threads:
//!
//! - [`JournalWriter`]: a bounded queue of op lists, each with a oneshot reply. The thread takes
//!   whatever is queued (up to [`WriterOptions::max_group`]) into **one** transaction, one
//!   savepoint per caller (a caller's bad data fails that caller only), one fsync for all:
//!   group commit. Under load, alarms from many devices share fsyncs instead of queueing
//!   behind each other.
//! - [`ReadingsWriter`]: a bounded queue of telemetry samples and pending-device sightings,
//!   never blocking its caller ([`StoreError::QueueFull`] when full: the caller counts the drop);
//!   it gathers what comes into groups (up to 65 536 rows or 250 ms, [`WriterOptions::readings`]),
//!   each sorted by device and written in chunked transactions (decision record 23).
//!
//! Queries (API, start-up) use a small pool of read connections: WAL lets them read while the
//! writers write.
//!
//! ```no_run
//! # fn run() -> Result<(), firegrid_gateway::store::StoreError> {
//! use firegrid_gateway::store::{JournalWriter, Store, WriterOptions};
//!
//! let (store, health) = Store::open("/var/lib/firegrid/firegrid.db")?;
//! if let Some(recovery) = &health.recovery {
//!     eprintln!("store recovered: {recovery}");
//! }
//! let next_episode = store.max_episode_id()? + 1;
//! let specs = store.device_specs()?; // Engine::new(config, next_episode), Input::Upsert each
//! let open = store.open_episodes()?; // then Engine::restore each
//! let (journal, _thread) = JournalWriter::spawn(store.clone(), WriterOptions::default())?;
//! // async: journal.submit(ops).await?, then ack the device
//! # let _ = (next_episode, specs, open, journal); Ok(()) }
//! ```

mod channels;
mod commissioning;
mod credentials;
mod error;
mod evidence;
mod journal;
mod live;
mod names;
mod packed;
mod people;
mod prune;
mod readings;
mod readings_v1;
mod recovery;
mod registry;
mod reports;
mod resource;
mod rollup;
mod schema;
mod sessions;
mod sql;
mod users;
mod workflow;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use channels::{ChannelCircuit, Measures, effective};
pub use commissioning::{
    DeviceEvent, DeviceStatus, DeviceTest, HeartbeatFields, RosterStatus, StatusUpdate,
};
pub use error::StoreError;
pub use evidence::{Evidence, NewEvidence, Photo};
pub use journal::{
    AuditEntry, AuditFilter, EpisodeFilter, JournalOp, JournalResult, NEVER_MS, NewEvent,
    NewNotification, Notification, NotificationId, NotificationKind, NotifyChannel, StoredEvent,
    TicketStep,
};
pub use live::TicketMove;
pub use people::{Delivery, PEOPLE_MARK};
pub use prune::PruneReport;
pub use readings::{Agg, DAY_MS, HOUR_MS, InsertReport, MAX_POINTS, Point, Sample};
pub use recovery::{Check, Recovery, StoreHealth, TableSalvage};
pub use registry::{
    Area, AreaFields, AreaFilter, AreaId, AreaLevel, Circuit, CircuitFields, CircuitFilter,
    CircuitId, Device, DeviceFields, DeviceFilter, PendingDevice, PendingOutcome, PendingSighting,
    Room, RoomFields, RoomFilter, RoomId, Site, SiteFields, SiteFilter, SiteId, WebhookFormat,
    WireEncoding, Worker, WorkerFields, WorkerFilter, WorkerId,
};
pub use reports::MAX_REPORT_EPISODES;
pub use resource::{Actor, Noun, Record};
pub(crate) use resource::{RecordOf, Resource};
pub use users::{
    ActiveToken, MAX_USER_NAME, NewToken, Principal, TokenInfo, User, check_user_name,
};
pub use workflow::{Assignee, Hazard, HazardEpisode};
pub use writer::{
    Committing, JournalStats, JournalWriter, ReadingsStats, ReadingsWriter, WriterFate,
    WriterOptions,
};

/// Settings of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long raw readings are kept, ms (default 30 days).
    pub readings_retention_ms: u64,
    /// How long hourly rollups are kept, ms (default 2 years).
    pub hourly_retention_ms: u64,
    /// Run `PRAGMA quick_check` at open (default true). It reads the whole file: seconds per GB.
    pub check_at_open: bool,
    /// The most reading rows in one readings transaction (default 8192; a message's rows are
    /// never split). The readings writer's groups are larger: sorted, then written in
    /// transactions of this size, each over its own run of devices.
    pub readings_chunk_rows: usize,
    /// Whether raw readings are kept (default true). Off (`[store] local_readings =
    /// "rollups"`, with the TSDB on): only the hourly rollups, and history answers from them.
    pub raw_readings: bool,
    /// The pending-device list keeps at most this many devices, the most recently seen
    /// (default 10 000).
    pub pending_devices_max: usize,
    /// How long delivered notifications are kept, ms (default 90 days).
    pub delivered_notifications_retention_ms: u64,
    /// A notification not delivered this long after its first attempt is given up (logged),
    /// ms (default 7 days).
    pub undelivered_notifications_max_age_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        const DAY_MS: u64 = 24 * 3600 * 1000;
        Self {
            readings_retention_ms: 30 * DAY_MS,
            hourly_retention_ms: 730 * DAY_MS,
            check_at_open: true,
            readings_chunk_rows: 8192,
            raw_readings: true,
            pending_devices_max: 10_000,
            delivered_notifications_retention_ms: 90 * DAY_MS,
            undelivered_notifications_max_age_ms: 7 * DAY_MS,
        }
    }
}

/// The store. See the [module docs](self). Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// The readings file, beside the main one ([`readings_path`]).
    readings_path: PathBuf,
    options: StoreOptions,
    /// `synchronous=FULL`: journal, registry, tickets, audit, notifications.
    journal: Mutex<Connection>,
    /// `synchronous=NORMAL`, on the main file: pending devices, the main file's checkpoints.
    bulk: Mutex<Connection>,
    /// `synchronous=FULL` (decision 25), on the readings file: readings, rollups, their pruning and
    /// checkpoints. Never waits for the journal, nor the journal for it.
    readings: Mutex<Connection>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
    /// The days whose raw table this process has made or found (`readings::create_day` is a
    /// schema statement: ~20 % of the readings thread when run per transaction). Forgotten
    /// when prune drops the day, and all when a readings transaction fails.
    made_days: Mutex<std::collections::HashSet<u64>>,
    /// Whose turn it is to hold the file's write lock.
    gate: WriteGate,
}

/// WAL pages from which a journal commit checkpoints (only when the readings connection has
/// not: it checkpoints from [`BULK_CHECKPOINT_PAGES`]).
const JOURNAL_CHECKPOINT_PAGES: u32 = 10_000;

/// WAL pages (4 KiB) from which a readings commit checkpoints. A large fleet's readings touch
/// pages all over the B-trees, and a page rewritten many times in the WAL is copied back once
/// per checkpoint: measured with 20 000 devices, 1000 pages gave ~60k rows/s, 8000 pages ~90k
/// (`store::tests::perf::readings_of_a_large_fleet`). Below [`JOURNAL_CHECKPOINT_PAGES`], so
/// that a journal commit (an alarm's path) never checkpoints while readings flow.
const BULK_CHECKPOINT_PAGES: u32 = 8_000;

/// How many idle read connections are kept.
const MAX_IDLE_READERS: usize = 4;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Journal,
    Bulk,
    Readings,
    Reader,
}

/// The readings file that goes with the main file at `path`: `firegrid.db` →
/// `firegrid-readings.db`, in the same folder.
pub fn readings_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "store".into(), |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-readings.{}", ext.to_string_lossy()),
        None => format!("{stem}-readings"),
    };
    path.with_file_name(name)
}

fn configure(conn: &Connection, role: Role) -> Result<(), rusqlite::Error> {
    // Waits for other processes (a `sqlite3` shell, a backup); in-process writers use the gate.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "trusted_schema", false)?;
    // Keeps the WAL file from staying large after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    match role {
        Role::Journal => {
            conn.pragma_update(None, "synchronous", "FULL")?;
            // Checkpoints cost fsyncs of the database file: the readings connection does them.
            // This is only the safety net of a gateway without telemetry (smoke alarms only),
            // where the WAL would otherwise grow for ever: ~40 MB.
            conn.pragma_update(None, "wal_autocheckpoint", JOURNAL_CHECKPOINT_PAGES)?;
        }
        Role::Bulk => {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Role::Readings => {
            // Not for the readings' sake (they are not acknowledged end to end): each commit's
            // few MB go to the disk at once, instead of piling up as dirty pages that the
            // kernel writes back in bursts an alarm's fsync then waits behind (decision 25).
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "wal_autocheckpoint", BULK_CHECKPOINT_PAGES)?;
        }
        Role::Reader => {
            conn.pragma_update(None, "query_only", true)?;
        }
    }
    Ok(())
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if role == Role::Reader {
        // Queries see both files: the readings tables are found in the attached one.
        conn.execute(
            "ATTACH DATABASE ?1 AS rd",
            [readings_path(path).to_string_lossy().as_ref()],
        )?;
    }
    configure(&conn, role)?;
    Ok(conn)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-transaction rolled the transaction back (rusqlite's drop): the connection is
    // sound, so a poisoned lock is used as it is.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (or creates) the store at `path` with default [`StoreOptions`]. See
    /// [`open_with`](Self::open_with).
    ///
    /// # Errors
    /// See [`open_with`](Self::open_with).
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, StoreHealth), StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the store at `path`: creates its folder, checks the file, migrates
    /// the schema. A damaged file is moved aside and replaced by a fresh store with what could
    /// be salvaged; [`StoreHealth`] says what happened.
    ///
    /// # Errors
    /// What no fresh start can fix: the folder cannot be created or written
    /// ([`StoreError::Io`], [`StoreError::Sqlite`]), or the file is from a newer gateway
    /// ([`StoreError::TooNew`], left untouched).
    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<(Self, StoreHealth), StoreError> {
        recovery::open(path.as_ref(), options)
    }

    fn from_parts(
        path: PathBuf,
        options: StoreOptions,
        journal: Connection,
        bulk: Connection,
        readings: Connection,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                readings_path: readings_path(&path),
                path,
                options,
                journal: Mutex::new(journal),
                bulk: Mutex::new(bulk),
                readings: Mutex::new(readings),
                readers: Mutex::new(Vec::new()),
                made_days: Mutex::new(std::collections::HashSet::new()),
                gate: WriteGate::default(),
            }),
        }
    }

    /// The main database file (registry, journal).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The readings file.
    pub fn readings_path(&self) -> &Path {
        &self.inner.readings_path
    }

    /// The settings in force.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Copies each file's WAL into the file as far as readers allow (`PRAGMA
    /// wal_checkpoint(PASSIVE)`, which never blocks a writer), off the alarm path: the main
    /// file's on the bulk connection, the readings file's on the readings connection (which
    /// also does it by itself every ~32 MB of WAL). The gateway calls it on a schedule.
    ///
    /// # Errors
    /// A database error.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        for conn in [&self.inner.bulk, &self.inner.readings] {
            lock(conn).query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Reads with a pooled read connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.inner.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.path, Role::Reader)?,
        };
        let out = f(&conn);
        let mut idle = lock(&self.inner.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// Writes with the journal connection (durable commits), ahead of readings.
    fn write_journal<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.inner.journal);
        let _turn = self.inner.gate.enter(Lane::Journal);
        f(&mut conn)
    }

    /// Writes with the readings connection (the readings file: its own write lock, no turn to
    /// take).
    fn write_readings<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut lock(&self.inner.readings))
    }

    /// Writes with the bulk connection (the main file), after any waiting journal write.
    fn write_bulk<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.inner.bulk);
        let _turn = self.inner.gate.enter(Lane::Bulk);
        f(&mut conn)
    }

    /// Reads a `meta` value.
    ///
    /// # Errors
    /// A database error.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    /// Writes a `meta` value (durably), e.g. the broker session marker.
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write_journal(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }
}

/// Journal transactions made to fail on purpose, by store file (tests only): the ops run,
/// then the transaction is rolled back and reported as [`StoreError::DiskFull`], exactly as
/// when SQLite finds the disk full at commit.
#[cfg(test)]
pub(crate) mod faults {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// Per file: transactions still to fail, transactions failed so far.
    static FAULTS: Mutex<Vec<(PathBuf, u32, u32)>> = Mutex::new(Vec::new());

    /// The next `n` journal transactions on the store at `path` fail as if the disk were full.
    pub(crate) fn fail_journal_commits(path: &Path, n: u32) {
        let mut f = super::lock(&FAULTS);
        match f.iter_mut().find(|(p, ..)| p == path) {
            Some(entry) => entry.1 += n,
            None => f.push((path.to_path_buf(), n, 0)),
        }
    }

    /// How many journal transactions on the store at `path` failed so far.
    pub(crate) fn failed_journal_commits(path: &Path) -> u32 {
        super::lock(&FAULTS)
            .iter()
            .find(|(p, ..)| p == path)
            .map_or(0, |(_, _, failed)| *failed)
    }

    /// Caps the journal connection's database at its present size (`PRAGMA max_page_count`):
    /// SQLite's own SQLITE_FULL from then on, as on a full disk, for any write that needs a new
    /// page; `false` lifts the cap.
    pub(crate) fn journal_disk_full(store: &super::Store, full: bool) {
        let c = super::lock(&store.inner.journal);
        let pages: u64 = if full {
            c.pragma_query_value(None, "page_count", |r| r.get(0))
                .expect("the page count reads")
        } else {
            u64::from(u32::MAX - 1)
        };
        c.pragma_update(None, "max_page_count", pages)
            .expect("max_page_count sets");
    }

    /// Stores whose readings writer thread panics at its next group (a bug, made on purpose).
    static PANICS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// The readings writer thread of the store at `path` panics at its next group.
    pub(crate) fn panic_readings_writer(path: &Path) {
        super::lock(&PANICS).push(path.to_path_buf());
    }

    /// Called by the readings writer before each group: panics if asked to.
    pub(crate) fn readings_writer_panics(store: &super::Store) {
        let mut p = super::lock(&PANICS);
        if let Some(i) = p.iter().position(|x| *x == store.inner.path) {
            p.swap_remove(i);
            drop(p);
            panic!("a readings writer panic made on purpose");
        }
    }

    /// Files whose journal transactions wait before they commit, and their release.
    static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

    /// Journal transactions on the store at `path` wait before their commit while held (a
    /// slow disk), and go on once released.
    pub(crate) fn hold_journal_commits(path: &Path, hold: bool) {
        let mut held = super::lock(&HELD);
        if hold {
            held.push(path.to_path_buf());
        } else {
            held.retain(|p| p != path);
            RELEASED.notify_all();
        }
    }

    /// Waits while journal transactions on `path` are held.
    pub(super) fn wait_while_held(path: &Path) {
        let mut held = super::lock(&HELD);
        while held.iter().any(|p| p == path) {
            held = RELEASED
                .wait(held)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Whether this transaction must fail.
    pub(super) fn take(path: &Path) -> bool {
        let mut f = super::lock(&FAULTS);
        match f.iter_mut().find(|(p, ..)| p == path) {
            Some((_, left, failed)) if *left > 0 => {
                *left -= 1;
                *failed += 1;
                true
            }
            _ => false,
        }
    }
}

/// Which writer asks for the file's write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Journal and registry: goes first.
    Journal,
    /// Readings: waits while a journal write waits.
    Bulk,
}

/// One SQLite write lock per file: the writers take turns here rather than spinning in SQLite's
/// busy handler, and a waiting journal write goes before the next readings chunk.
#[derive(Default)]
struct WriteGate {
    state: Mutex<GateState>,
    turn: Condvar,
}

#[derive(Default)]
struct GateState {
    held: bool,
    journal_waiting: usize,
}

struct Turn<'a>(&'a WriteGate);

impl WriteGate {
    fn enter(&self, lane: Lane) -> Turn<'_> {
        let mut s = lock(&self.state);
        match lane {
            Lane::Journal => {
                s.journal_waiting += 1;
                while s.held {
                    s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                s.journal_waiting -= 1;
            }
            Lane::Bulk => {
                while s.held || s.journal_waiting > 0 {
                    s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        s.held = true;
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).held = false;
        self.0.turn.notify_all();
    }
}
