//! What the live stream replays: ticket moves in the order they were made, with the episode's
//! grid cell and device (the alerts come from the outbox's queue order,
//! [`Store::notifications_after`]).

use rusqlite::types::Value;
use serde::Serialize;

use super::{Store, StoreError, names, sql};
use crate::model::{EpisodeId, TicketState, UnixMs};

/// A ticket move, as the live stream shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketMove {
    /// Its place in the order of moves (the stream's cursor).
    #[serde(skip)]
    pub step_id: i64,
    /// The episode.
    pub episode: EpisodeId,
    /// The state reached.
    pub state: TicketState,
    /// Who moved it.
    pub who: String,
    /// When.
    pub at_ms: UnixMs,
    /// What they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The episode's grid cell.
    pub grid: String,
    /// The episode's device.
    pub device: String,
}

impl Store {
    /// Ticket moves made after step `after` (`raised` steps excepted: the `opened` alert says
    /// it), in order.
    ///
    /// # Errors
    /// A database error.
    pub fn ticket_moves_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TicketMove>, StoreError> {
        let sql = format!(
            "SELECT t.id, t.episode_id, t.state, t.who, t.at_ms, t.note, e.grid, e.device \
             FROM ticket_steps t JOIN episodes e ON e.id = t.episode_id \
             WHERE t.id > ? AND t.state != 'raised' ORDER BY t.id LIMIT {}",
            sql::page(limit, 100, 10_000)
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query([Value::Integer(after)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let state: String = r.get(2)?;
                out.push(TicketMove {
                    step_id: r.get(0)?,
                    episode: r.get(1)?,
                    state: names::ticket(&state)?,
                    who: r.get(3)?,
                    at_ms: r.get(4)?,
                    note: r.get(5)?,
                    grid: r.get(6)?,
                    device: r.get(7)?,
                });
            }
            Ok(out)
        })
    }

    /// The last ticket step's id (0 for none).
    ///
    /// # Errors
    /// A database error.
    pub fn max_ticket_step(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(id), 0) FROM ticket_steps", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }
}
