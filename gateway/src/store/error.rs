//! What can go wrong in the store.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use super::resource::Noun;
use crate::model::{EpisodeId, TicketState};

/// An error of the store. The ones a caller acts on are typed: [`StoreError::DiskFull`] (stop
/// acknowledging devices: nothing was written), [`StoreError::Unknown`] references, [`StoreError::InUse`],
/// [`StoreError::IllegalTransition`]; the rest are reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk (or the database's size limit) is full: the transaction was rolled back and
    /// nothing of it is stored. A caller must not acknowledge what it tried to write.
    #[error("the store's disk is full: nothing was written")]
    DiskFull,
    /// An SQLite error.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// A file operation around the database (creating its folder, moving a damaged file aside).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer gateway: refused and left untouched.
    #[error(
        "the store has schema version {found}, newer than this gateway's {supported}: \
         run a newer gateway or restore a backup"
    )]
    TooNew {
        /// The file's version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// A JSON column could not be written or read.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value does not parse (the file was edited by hand, or is damaged).
    #[error("stored data is invalid: {0}")]
    Invalid(String),
    /// No registry record of this noun with this id.
    #[error("unknown {what} {}", shown_id(*what, id))]
    Unknown {
        /// Which noun.
        what: Noun,
        /// The id asked for (text ids quoted).
        id: String,
    },
    /// The area exists but is not a grid cell.
    #[error("area {0:?} is not a grid cell")]
    NotAGrid(String),
    /// A record outside the area the actor is limited to.
    #[error("{}", out_of_scope(what, area.as_ref(), scope))]
    OutOfScope {
        /// What (e.g. `device "hz-1"`, `the new site`).
        what: String,
        /// The area it lies in, if any.
        area: Option<firegrid_protocols::GridId>,
        /// The actor's area.
        scope: firegrid_protocols::GridId,
    },
    /// No user with this name.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No API token with this id.
    #[error("unknown token {0:?}")]
    UnknownToken(String),
    /// No episode with this id.
    #[error("unknown episode {0}")]
    UnknownEpisode(EpisodeId),
    /// No notification with this id.
    #[error("unknown notification {0}")]
    UnknownNotification(i64),
    /// Something with this id exists already.
    #[error("{what} {id:?} exists already")]
    AlreadyExists {
        /// Which noun.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Still referenced: it cannot be deleted (or changed that way).
    #[error("{what} {id:?} is still used by {by}")]
    InUse {
        /// Which noun.
        what: &'static str,
        /// Its id.
        id: String,
        /// What still refers to it.
        by: &'static str,
    },
    /// References that exist but do not fit together (a room of another site, a parent area of
    /// a lower level, a circuit that would be its own ancestor).
    #[error("{0}")]
    Mismatch(String),
    /// A device cannot be in this state without this field.
    #[error("device {device:?} cannot be {state} without {missing}")]
    Incomplete {
        /// The device.
        device: String,
        /// The state asked for.
        state: &'static str,
        /// The missing field.
        missing: &'static str,
    },
    /// A device configuration outside the allowed ranges.
    #[error("invalid device configuration: {0}")]
    InvalidConfig(String),
    /// A ticket cannot move this way (see [`TicketState::may_become`]).
    #[error("episode {id}: the ticket cannot go from {from} to {to}")]
    IllegalTransition {
        /// The episode.
        id: EpisodeId,
        /// Its ticket's state.
        from: TicketState,
        /// The state asked for.
        to: TicketState,
    },
    /// A query that cannot be answered as asked (e.g. too many points).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// No secret could be drawn (the operating system's random source failed).
    #[error("{0}")]
    Secret(#[from] crate::secret::SecretError),
    /// A writer's queue is full: the caller decides (readings are dropped and counted).
    #[error("the store's writer queue is full")]
    QueueFull,
    /// A writer thread could not be started.
    #[error("cannot start a store writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A writer thread has stopped.
    #[error("the store's writer has stopped")]
    Closed,
    /// A group commit failed for a reason reported to every caller in the group.
    #[error("journal transaction failed: {0}")]
    Transaction(String),
}

fn out_of_scope(
    what: &str,
    area: Option<&firegrid_protocols::GridId>,
    scope: &firegrid_protocols::GridId,
) -> String {
    match area {
        Some(a) => format!(
            "{what} lies in area {a}, outside your area {scope}: ask an admin for a user scoped \
             to it"
        ),
        None => format!(
            "{what} is not in any area yet: only a city-wide user (admin or operator without an \
             area) reaches it"
        ),
    }
}

/// An id as messages show it: text ids (areas, devices) quoted, numbers as they are.
fn shown_id(what: Noun, id: &str) -> String {
    match what {
        Noun::Area | Noun::Device => format!("{id:?}"),
        _ => id.to_string(),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            Self::DiskFull
        } else {
            Self::Sqlite(e)
        }
    }
}

impl StoreError {
    /// Whether the disk is full (stop acknowledging; free space or raise the limit).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::DiskFull)
    }

    /// Whether the database file is damaged (found while running; the next open checks and
    /// recovers).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Sqlite(e) if is_damage(e))
    }

    /// Whether the error concerns the whole transaction (I/O, disk, damage) rather than one
    /// caller's data: such an error fails a whole group commit.
    pub(super) fn is_fatal(&self) -> bool {
        match self {
            Self::DiskFull
            | Self::Io { .. }
            | Self::Transaction(_)
            | Self::Closed
            | Self::Spawn(_) => true,
            // SQLite's own failures concern the transaction, except a constraint (this
            // caller's data); a conversion error (a value out of range) is this caller's too.
            Self::Sqlite(e) => {
                matches!(e.sqlite_error_code(), Some(c) if c != ErrorCode::ConstraintViolation)
            }
            _ => false,
        }
    }

    /// A copy for every caller of a failed group commit.
    pub(super) fn shared(&self) -> Self {
        match self {
            Self::DiskFull => Self::DiskFull,
            Self::Closed => Self::Closed,
            other => Self::Transaction(other.to_string()),
        }
    }
}

/// Whether an SQLite error says the file is not a (sound) database.
pub(super) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}
