//! The journal: events (deduplicated by device and sequence number across restarts), episodes
//! and their tickets, the audit log, and the notifications outbox.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use firegrid_protocols::message::{Event, Message, Seq};
use firegrid_protocols::topic::DeviceTopic;
use firegrid_protocols::{DeviceId, GridId};

use super::names::{self, event_kind_str, quantity_str, source_str};
use super::registry::AreaId;
use super::sql::{self, Where};
use super::{Store, StoreError};
use crate::engine::{OpenEpisode, Output};
use crate::model::{
    Category, DERIVED_EPISODE_IDS, Episode, EpisodeId, EpisodeKey, TicketState, UnixMs,
};

/// A notification's id (assigned by the store).
pub type NotificationId = i64;

/// An event as received, to journal before acknowledging it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// From whom.
    pub device: DeviceId,
    /// The event.
    pub event: Event,
    /// When the gateway received it.
    pub received_ms: UnixMs,
}

/// One write in a journal transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalOp {
    /// A device's event: [`JournalResult::Inserted`], or [`JournalResult::Duplicate`] if its
    /// `(device, seq)` is journaled already (a resend: acknowledge it again, raise nothing).
    Event(NewEvent),
    /// What the engine decided at `at_ms`: an episode opened (it starts at `at_ms`), a new
    /// peak, its end (at `at_ms`), an escalation.
    Engine {
        /// The engine's output.
        output: Output,
        /// When.
        at_ms: UnixMs,
    },
    /// An alert to send (at least once).
    Notify(NewNotification),
    /// A notification was delivered.
    Delivered {
        /// Which.
        id: NotificationId,
        /// When.
        at_ms: UnixMs,
    },
    /// A delivery failed: try again at `next_attempt_ms`.
    Failed {
        /// Which.
        id: NotificationId,
        /// When to try again.
        next_attempt_ms: UnixMs,
    },
    /// An undelivered notification is not to be tried again (a webhook whose episode a person
    /// has acknowledged): its next attempt moves to [`NEVER_MS`], out of the due list, and the
    /// audit log says why (`notification.stopped`, by `gateway`).
    Stopped {
        /// Which.
        id: NotificationId,
        /// When.
        at_ms: UnixMs,
        /// Why, for the audit log.
        reason: String,
    },
}

/// The next attempt of a [`JournalOp::Stopped`] notification: never due.
pub const NEVER_MS: UnixMs = i64::MAX as UnixMs;

impl JournalOp {
    /// The engine's outputs at `at_ms`, as ops.
    pub fn from_outputs(
        outputs: impl IntoIterator<Item = Output>,
        at_ms: UnixMs,
    ) -> impl Iterator<Item = Self> {
        outputs
            .into_iter()
            .map(move |output| Self::Engine { output, at_ms })
    }
}

/// The outcome of one [`JournalOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalResult {
    /// The event is new and journaled.
    Inserted,
    /// The event (or the opened episode) was journaled before: nothing changed.
    Duplicate,
    /// The change is journaled.
    Applied,
    /// The notification is queued under this id.
    Enqueued(NotificationId),
    /// The op names an episode the journal does not have (nothing changed; logged).
    UnknownEpisode(EpisodeId),
    /// The op names a notification the journal does not have (nothing changed).
    UnknownNotification(NotificationId),
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An episode started.
    Opened,
    /// An episode went up a level.
    Escalated,
    /// An episode's condition ended.
    Ended,
}

impl NotificationKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Ended => "ended",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "opened" => Ok(Self::Opened),
            "escalated" => Ok(Self::Escalated),
            "ended" => Ok(Self::Ended),
            _ => Err(names::invalid("notification kind", s)),
        }
    }
}

/// How an alert goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyChannel {
    /// Published on an MQTT topic.
    Mqtt,
    /// POSTed to a webhook.
    Webhook,
    /// Pushed to server-sent-event clients.
    Sse,
}

impl NotifyChannel {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Webhook => "webhook",
            Self::Sse => "sse",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "mqtt" => Ok(Self::Mqtt),
            "webhook" => Ok(Self::Webhook),
            "sse" => Ok(Self::Sse),
            _ => Err(names::invalid("notification channel", s)),
        }
    }
}

/// An alert to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    /// The id to queue it under — the alert's `alert_id`, derived from what the alert is about
    /// so that a crash and the device's resend give the same id again
    /// ([`alert_id`](crate::notify::alert::alert_id)); `None`: the next free one. An id
    /// already taken by the same alert is that alert (queued once); by another alert (a
    /// collision of the derivation), the next free one is used instead.
    #[serde(skip)]
    pub id: Option<NotificationId>,
    /// The episode.
    pub episode_id: EpisodeId,
    /// What it says.
    pub kind: NotificationKind,
    /// The escalation level it is for (0: the grid cell).
    pub level: u8,
    /// How it goes out.
    pub channel: NotifyChannel,
    /// Where: a topic, a URL, an SSE stream name.
    pub target: String,
    /// What is sent.
    pub payload: serde_json::Value,
    /// When to send it first (usually now).
    pub next_attempt_ms: UnixMs,
}

/// A queued alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// Its data.
    #[serde(flatten)]
    pub fields: NewNotification,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was delivered.
    pub delivered_ms: Option<UnixMs>,
}

/// A step of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketStep {
    /// The episode.
    pub episode_id: EpisodeId,
    /// The state reached.
    pub state: TicketState,
    /// Who (`gateway` for `raised`).
    pub who: String,
    /// When.
    pub at_ms: UnixMs,
    /// What they said.
    pub note: Option<String>,
}

/// An audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub at_ms: UnixMs,
    /// Who.
    pub who: String,
    /// What, e.g. `device.update`, `ticket.acknowledged`, `episode.escalate`.
    pub action: String,
    /// On what, e.g. `device/hz-0042`, `episode/17`.
    pub subject: String,
    /// Details (the new record, the ticket move, ...).
    pub detail: serde_json::Value,
}

/// Which audit entries to list (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only by this person.
    pub who: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only on this subject.
    pub subject: Option<String>,
    /// From this time on (inclusive).
    pub from_ms: Option<UnixMs>,
    /// Before this time (exclusive).
    pub to_ms: Option<UnixMs>,
    /// At most this many (0: 100; at most 10 000).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// Which episodes to list (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpisodeFilter {
    /// Only those raised to this area or a grid cell below it.
    pub area: Option<AreaId>,
    /// Only those raised to this grid cell.
    pub grid: Option<GridId>,
    /// Only this device's.
    pub device: Option<DeviceId>,
    /// Only with the ticket in this state.
    pub ticket: Option<TicketState>,
    /// Only of this category.
    pub category: Option<Category>,
    /// Only those whose condition has not ended.
    pub open_only: bool,
    /// Started at or after this time.
    pub from_ms: Option<UnixMs>,
    /// Started before this time.
    pub to_ms: Option<UnixMs>,
    /// At most this many (0: 100; at most 10 000).
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// A journaled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// From whom.
    pub device: DeviceId,
    /// When received.
    pub received_ms: UnixMs,
    /// The event as received.
    pub event: Event,
}

pub(super) fn insert_audit(
    conn: &Connection,
    at_ms: UnixMs,
    who: &str,
    action: &str,
    subject: &str,
    detail_json: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, who, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at_ms, who, action, subject, detail_json])?;
    Ok(())
}

fn insert_step(
    conn: &Connection,
    id: EpisodeId,
    state: TicketState,
    who: &str,
    at_ms: UnixMs,
    note: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ticket_steps (episode_id, state, who, at_ms, note) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, state.as_str(), who, at_ms, note])?;
    Ok(())
}

fn episode_exists(conn: &Connection, id: EpisodeId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM episodes WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Applies one op inside the caller's transaction.
fn apply(conn: &Connection, op: &JournalOp) -> Result<JournalResult, StoreError> {
    match op {
        JournalOp::Event(e) => {
            let body = sql::protocol_json(&Message::Event(e.event.clone()))?;
            let n = conn
                .prepare_cached(
                    "INSERT INTO events (device, seq, received_ms, device_time_ms, uptime_ms, \
                     kind, channel, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT(device, seq) DO NOTHING",
                )?
                .execute(params![
                    e.device.as_str(),
                    e.event.seq,
                    e.received_ms,
                    e.event.time.unix_ms,
                    e.event.time.uptime_ms,
                    event_kind_str(&e.event.kind),
                    e.event.kind.channel(),
                    body
                ])?;
            Ok(if n == 1 {
                JournalResult::Inserted
            } else {
                JournalResult::Duplicate
            })
        }
        JournalOp::Engine { output, at_ms } => apply_output(conn, output, *at_ms),
        JournalOp::Notify(n) => {
            if !episode_exists(conn, n.episode_id)? {
                tracing::warn!(
                    episode = n.episode_id,
                    "notification for an unknown episode"
                );
                return Ok(JournalResult::UnknownEpisode(n.episode_id));
            }
            let payload = serde_json::to_string(&n.payload)?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO notifications (id, episode_id, kind, level, channel, target, \
                 payload, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT(id) DO NOTHING",
            )?;
            let mut queue = |id: Option<NotificationId>| {
                insert.execute(params![
                    id,
                    n.episode_id,
                    n.kind.as_str(),
                    n.level,
                    n.channel.as_str(),
                    n.target,
                    payload,
                    n.next_attempt_ms
                ])
            };
            if queue(n.id)? == 1 {
                return Ok(JournalResult::Enqueued(conn.last_insert_rowid()));
            }
            let Some(id) = n.id else {
                return Err(StoreError::Invalid(
                    "a notification without an id conflicted".into(),
                ));
            };
            let same: Option<(EpisodeId, String, u8, String)> = conn
                .prepare_cached(
                    "SELECT episode_id, kind, level, target FROM notifications WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            if same.as_ref().is_some_and(|(e, k, l, t)| {
                (*e, k.as_str(), *l, t.as_str())
                    == (n.episode_id, n.kind.as_str(), n.level, &n.target)
            }) {
                // Queued before: the same alert, once.
                return Ok(JournalResult::Enqueued(id));
            }
            tracing::warn!(
                alert_id = id,
                episode = n.episode_id,
                "alert id taken by another alert: queued under the next free id"
            );
            queue(None)?;
            Ok(JournalResult::Enqueued(conn.last_insert_rowid()))
        }
        JournalOp::Delivered { id, at_ms } => {
            let n = conn
                .prepare_cached(
                    "UPDATE notifications SET delivered_ms = ?2, attempts = attempts + 1 \
                     WHERE id = ?1 AND delivered_ms IS NULL",
                )?
                .execute(params![id, at_ms])?;
            notification_result(conn, *id, n)
        }
        JournalOp::Failed {
            id,
            next_attempt_ms,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = ?2 \
                     WHERE id = ?1 AND delivered_ms IS NULL",
                )?
                .execute(params![id, next_attempt_ms])?;
            notification_result(conn, *id, n)
        }
        JournalOp::Stopped { id, at_ms, reason } => {
            let n = conn
                .prepare_cached(
                    "UPDATE notifications SET next_attempt_ms = ?2 \
                     WHERE id = ?1 AND delivered_ms IS NULL AND next_attempt_ms < ?2",
                )?
                .execute(params![id, sql::int(NEVER_MS)?])?;
            if n > 0 {
                let detail = serde_json::json!({ "reason": reason }).to_string();
                let subject = format!("notification/{id}");
                insert_audit(
                    conn,
                    *at_ms,
                    "gateway",
                    "notification.stopped",
                    &subject,
                    &detail,
                )?;
            }
            notification_result(conn, *id, n)
        }
    }
}

fn notification_result(
    conn: &Connection,
    id: NotificationId,
    changed: usize,
) -> Result<JournalResult, StoreError> {
    if changed > 0 {
        return Ok(JournalResult::Applied);
    }
    let known = conn
        .prepare_cached("SELECT 1 FROM notifications WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some();
    // Already delivered: nothing to do.
    Ok(if known {
        JournalResult::Applied
    } else {
        JournalResult::UnknownNotification(id)
    })
}

fn apply_output(
    conn: &Connection,
    output: &Output,
    at_ms: UnixMs,
) -> Result<JournalResult, StoreError> {
    let (id, n) = match output {
        Output::Opened {
            id,
            key,
            grid,
            source,
            level,
            detail,
        } => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO episodes (id, device, channel, category, grid, source, \
                     started_ms, peak_quantity, peak_value, peak_threshold, detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT(id) DO NOTHING",
                )?
                .execute(params![
                    id,
                    key.device.as_str(),
                    key.channel,
                    key.category.as_str(),
                    grid.as_str(),
                    source_str(*source),
                    at_ms,
                    level.map(|l| quantity_str(l.quantity)),
                    level.map(|l| l.value),
                    level.map(|l| l.threshold),
                    detail
                ])?;
            if n == 0 {
                return Ok(JournalResult::Duplicate);
            }
            insert_step(conn, *id, TicketState::Raised, "gateway", at_ms, None)?;
            return Ok(JournalResult::Applied);
        }
        Output::Peak { id, level } => (
            *id,
            conn.prepare_cached(
                "UPDATE episodes SET peak_quantity = ?2, peak_value = ?3, peak_threshold = ?4 \
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                quantity_str(level.quantity),
                level.value,
                level.threshold
            ])?,
        ),
        Output::Ended { id } => (
            *id,
            conn.prepare_cached(
                "UPDATE episodes SET ended_ms = coalesce(ended_ms, ?2) WHERE id = ?1",
            )?
            .execute(params![id, at_ms])?,
        ),
        Output::Escalated { id, level } => {
            let n = conn
                .prepare_cached(
                    "UPDATE episodes SET escalation = max(escalation, ?2) WHERE id = ?1",
                )?
                .execute(params![id, level])?;
            if n > 0 {
                insert_audit(
                    conn,
                    at_ms,
                    "gateway",
                    "episode.escalate",
                    &format!("episode/{id}"),
                    &serde_json::json!({ "level": level }).to_string(),
                )?;
            }
            (*id, n)
        }
    };
    if n == 0 {
        tracing::warn!(
            episode = id,
            "journal op for an unknown episode: {output:?}"
        );
        return Ok(JournalResult::UnknownEpisode(id));
    }
    Ok(JournalResult::Applied)
}

const EPISODE_COLS: &str = "id, device, channel, category, grid, source, started_ms, ended_ms, \
     peak_quantity, peak_value, peak_threshold, detail, ticket, escalation";

fn episode_row(r: &Row<'_>) -> Result<Episode, StoreError> {
    let device: String = r.get(1)?;
    let category: String = r.get(3)?;
    let grid: String = r.get(4)?;
    let source: String = r.get(5)?;
    let ticket: String = r.get(12)?;
    Ok(Episode {
        id: r.get(0)?,
        key: EpisodeKey {
            device: names::device_id(&device)?,
            channel: r.get(2)?,
            category: names::category(&category)?,
        },
        grid: names::grid_id(&grid)?,
        source: names::source(&source)?,
        started_ms: r.get(6)?,
        ended_ms: r.get(7)?,
        peak: names::level(r.get(8)?, r.get(9)?, r.get(10)?)?,
        detail: r.get(11)?,
        ticket: names::ticket(&ticket)?,
        escalation: r.get(13)?,
    })
}

const NOTIFICATION_COLS: &str = "id, episode_id, kind, level, channel, target, payload, \
     next_attempt_ms, attempts, delivered_ms";

fn notification_row(r: &Row<'_>) -> Result<Notification, StoreError> {
    let kind: String = r.get(2)?;
    let channel: String = r.get(4)?;
    let payload: String = r.get(6)?;
    Ok(Notification {
        id: r.get(0)?,
        fields: NewNotification {
            id: Some(r.get(0)?),
            episode_id: r.get(1)?,
            kind: NotificationKind::parse(&kind)?,
            level: r.get(3)?,
            channel: NotifyChannel::parse(&channel)?,
            target: r.get(5)?,
            payload: serde_json::from_str(&payload)?,
            next_attempt_ms: r.get(7)?,
        },
        attempts: r.get(8)?,
        delivered_ms: r.get(9)?,
    })
}

fn collect<T>(
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

fn episode_by_id(conn: &Connection, id: EpisodeId) -> Result<Option<Episode>, StoreError> {
    Ok(collect(
        conn,
        &format!("SELECT {EPISODE_COLS} FROM episodes WHERE id = ?"),
        &[Value::Integer(sql::int(id)?)],
        episode_row,
    )?
    .pop())
}

impl Store {
    /// Writes `ops` in **one durable transaction**: when this returns `Ok`, every op is on disk
    /// (fsynced) and the caller may acknowledge the device. On `Err` nothing was written.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] (stop acknowledging); a database error.
    pub fn journal_batch(&self, ops: &[JournalOp]) -> Result<Vec<JournalResult>, StoreError> {
        let mut results = self.journal_group(&[ops])?;
        results.pop().unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Group commit: every caller's ops in one transaction (one fsync), each caller in its own
    /// savepoint so that one caller's bad data fails only that caller. An error of the whole
    /// transaction (disk full, I/O) fails every caller.
    pub(super) fn journal_group(
        &self,
        batches: &[&[JournalOp]],
    ) -> Result<Vec<Result<Vec<JournalResult>, StoreError>>, StoreError> {
        self.write_journal(|conn| {
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(batches.len());
            for ops in batches {
                let sp = tx.savepoint()?;
                let applied: Result<Vec<_>, _> = ops.iter().map(|op| apply(&sp, op)).collect();
                match applied {
                    Ok(results) => {
                        sp.commit()?;
                        out.push(Ok(results));
                    }
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => {
                        sp.finish()?; // rolls this caller's ops back
                        out.push(Err(e));
                    }
                }
            }
            #[cfg(test)]
            super::faults::wait_while_held(self.path());
            #[cfg(test)]
            if super::faults::take(self.path()) {
                // Rolled back by the drop of `tx`, as a commit that found the disk full.
                return Err(StoreError::DiskFull);
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// The episodes to give back to the engine after a restart ([`Engine::restore`]): those
    /// whose condition has not ended, and ended ones still escalating (not acknowledged, of a
    /// category that [needs acknowledgement after the end](Category::needs_ack_after_end)).
    ///
    /// [`Engine::restore`]: crate::engine::Engine::restore
    ///
    /// # Errors
    /// A database error.
    pub fn open_episodes(&self) -> Result<Vec<OpenEpisode>, StoreError> {
        let sql = format!(
            "SELECT {EPISODE_COLS} FROM episodes WHERE ended_ms IS NULL OR ticket = 'raised' \
             ORDER BY started_ms, id"
        );
        let episodes = self.read(|c| collect(c, &sql, &[], episode_row))?;
        Ok(episodes
            .into_iter()
            .filter(|e| {
                e.ended_ms.is_none()
                    || (!e.ticket.is_acknowledged() && e.key.category.needs_ack_after_end())
            })
            .map(|e| OpenEpisode {
                id: e.id,
                key: e.key,
                started_ms: e.started_ms,
                ended: e.ended_ms.is_some(),
                acknowledged: e.ticket.is_acknowledged(),
                escalation: e.escalation,
                peak: e.peak,
                source: e.source,
            })
            .collect())
    }

    /// The largest episode id the engine assigned (0 if none; derived ids, from
    /// [`DERIVED_EPISODE_IDS`] up, are not counted): the engine starts at one past it.
    ///
    /// # Errors
    /// A database error.
    pub fn max_episode_id(&self) -> Result<EpisodeId, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(max(id), 0) FROM episodes WHERE id < ?1",
                [DERIVED_EPISODE_IDS],
                |r| r.get(0),
            )?)
        })
    }

    /// Which of `ids` the journal holds as episodes (the planner derives a new episode's id
    /// and takes the next derivation when one is taken).
    ///
    /// # Errors
    /// A database error.
    pub fn taken_episodes(
        &self,
        ids: &[EpisodeId],
    ) -> Result<std::collections::HashSet<EpisodeId>, StoreError> {
        let mut found = std::collections::HashSet::new();
        if ids.is_empty() {
            return Ok(found);
        }
        self.read(|c| {
            for id in ids {
                if episode_exists(c, *id)? {
                    found.insert(*id);
                }
            }
            Ok(found)
        })
    }

    /// One episode.
    ///
    /// # Errors
    /// A database error.
    pub fn episode(&self, id: EpisodeId) -> Result<Option<Episode>, StoreError> {
        self.read(|c| episode_by_id(c, id))
    }

    /// Episodes, newest first.
    ///
    /// # Errors
    /// A database error.
    pub fn episodes(&self, filter: &EpisodeFilter) -> Result<Vec<Episode>, StoreError> {
        let mut w = Where::default();
        if let Some(a) = &filter.area {
            w.in_area("grid", a.as_str());
        }
        if let Some(g) = &filter.grid {
            w.eq("grid = ?", g.to_string());
        }
        if let Some(d) = &filter.device {
            w.eq("device = ?", d.to_string());
        }
        if let Some(t) = filter.ticket {
            w.eq("ticket = ?", t.as_str().to_string());
        }
        if let Some(c) = filter.category {
            w.eq("category = ?", c.as_str().to_string());
        }
        if filter.open_only {
            w.raw("ended_ms IS NULL");
        }
        if let Some(from) = filter.from_ms {
            w.eq("started_ms >= ?", sql::int(from)?);
        }
        if let Some(to) = filter.to_ms {
            w.eq("started_ms < ?", sql::int(to)?);
        }
        let sql = format!(
            "SELECT {EPISODE_COLS} FROM episodes{} ORDER BY started_ms DESC, id DESC LIMIT {} OFFSET {}",
            w.sql(),
            sql::page(filter.limit, 100, 10_000),
            filter.offset
        );
        self.read(|c| collect(c, &sql, &w.params, episode_row))
    }

    /// Moves an episode's ticket to `to` (forward only, see [`TicketState::may_become`]), with
    /// a ticket step and an audit entry, in one durable transaction. Tell the engine
    /// ([`Input::Acknowledged`](crate::engine::Input::Acknowledged)) when the ticket becomes
    /// acknowledged.
    ///
    /// # Errors
    /// [`StoreError::UnknownEpisode`]; [`StoreError::IllegalTransition`].
    pub fn ticket_transition(
        &self,
        id: EpisodeId,
        to: TicketState,
        who: &str,
        note: Option<&str>,
        now: UnixMs,
    ) -> Result<Episode, StoreError> {
        self.write_journal(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let from: String = tx
                .query_row("SELECT ticket FROM episodes WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or(StoreError::UnknownEpisode(id))?;
            let from = names::ticket(&from)?;
            if !from.may_become(to) {
                return Err(StoreError::IllegalTransition { id, from, to });
            }
            tx.execute(
                "UPDATE episodes SET ticket = ?2 WHERE id = ?1",
                params![id, to.as_str()],
            )?;
            if to.is_acknowledged() && !from.is_acknowledged() {
                // The rectify deadlines count from here (crate::workflow).
                tx.execute(
                    "UPDATE episodes SET acknowledged_ms = ?2, acknowledged_level = escalation \
                     WHERE id = ?1",
                    params![id, sql::int(now)?],
                )?;
            }
            insert_step(&tx, id, to, who, now, note)?;
            let detail = serde_json::json!({ "from": from, "to": to, "note": note });
            insert_audit(
                &tx,
                now,
                who,
                &format!("ticket.{to}"),
                &format!("episode/{id}"),
                &detail.to_string(),
            )?;
            let episode = episode_by_id(&tx, id)?.ok_or(StoreError::UnknownEpisode(id))?;
            tx.commit()?;
            Ok(episode)
        })
    }

    /// An episode's ticket steps, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn ticket_steps(&self, id: EpisodeId) -> Result<Vec<TicketStep>, StoreError> {
        self.read(|c| {
            collect(
                c,
                "SELECT episode_id, state, who, at_ms, note FROM ticket_steps \
                 WHERE episode_id = ? ORDER BY id",
                &[Value::Integer(sql::int(id)?)],
                |r| {
                    let state: String = r.get(1)?;
                    Ok(TicketStep {
                        episode_id: r.get(0)?,
                        state: names::ticket(&state)?,
                        who: r.get(2)?,
                        at_ms: r.get(3)?,
                        note: r.get(4)?,
                    })
                },
            )
        })
    }

    /// Writes an audit entry (durably); returns its id.
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn audit(
        &self,
        who: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
        now: UnixMs,
    ) -> Result<i64, StoreError> {
        let detail = detail.to_string();
        self.write_journal(|conn| {
            insert_audit(conn, now, who, action, subject, &detail)?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// Audit entries, newest first.
    ///
    /// # Errors
    /// A database error.
    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut w = Where::default();
        if let Some(v) = &filter.who {
            w.eq("who = ?", v.clone());
        }
        if let Some(v) = &filter.action {
            w.eq("action = ?", v.clone());
        }
        if let Some(v) = &filter.subject {
            w.eq("subject = ?", v.clone());
        }
        if let Some(from) = filter.from_ms {
            w.eq("at_ms >= ?", sql::int(from)?);
        }
        if let Some(to) = filter.to_ms {
            w.eq("at_ms < ?", sql::int(to)?);
        }
        let sql = format!(
            "SELECT id, at_ms, who, action, subject, detail FROM audit{} ORDER BY id DESC \
             LIMIT {} OFFSET {}",
            w.sql(),
            sql::page(filter.limit, 100, 10_000),
            filter.offset
        );
        self.read(|c| {
            collect(c, &sql, &w.params, |r| {
                let detail: String = r.get(5)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    who: r.get(2)?,
                    action: r.get(3)?,
                    subject: r.get(4)?,
                    detail: serde_json::from_str(&detail)?,
                })
            })
        })
    }

    /// Undelivered notifications due at `now`, oldest due first.
    ///
    /// # Errors
    /// A database error.
    pub fn due_notifications(
        &self,
        now: UnixMs,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications \
             WHERE delivered_ms IS NULL AND next_attempt_ms <= ? \
             ORDER BY next_attempt_ms, id LIMIT {}",
            sql::page(limit, 100, 10_000)
        );
        self.read(|c| collect(c, &sql, &[Value::Integer(sql::int(now)?)], notification_row))
    }

    /// Notifications of `channel` queued after sequence number `after`, in the order they were
    /// queued, each with its sequence number: a follower of the outbox (the GB/T 26875.3
    /// uplink) reads every alert once, in order, from its own mark. (Ids are derived from what
    /// an alert is about, so they do not increase; the queue order does.)
    ///
    /// # Errors
    /// A database error.
    pub fn notifications_after(
        &self,
        after: i64,
        channel: NotifyChannel,
        limit: u32,
    ) -> Result<Vec<(i64, Notification)>, StoreError> {
        let cols: String = NOTIFICATION_COLS
            .split(',')
            .map(|c| format!("n.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, o.seq FROM notification_order o JOIN notifications n \
             ON n.id = o.notification_id WHERE o.seq > ? AND n.channel = ? \
             ORDER BY o.seq LIMIT {}",
            sql::page(limit, 100, 10_000)
        );
        let seq_col = NOTIFICATION_COLS.split(',').count();
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params![after, channel.as_str()], |r| {
                Ok((r.get::<_, i64>(seq_col)?, notification_row(r)))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, n) = row?;
                out.push((seq, n?));
            }
            Ok(out)
        })
    }

    /// Where the queue order is now: the highest sequence number of [`Store::notifications_after`]
    /// (0 for none).
    ///
    /// # Errors
    /// A database error.
    pub fn max_notification_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM notification_order",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// An episode's notifications, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn notifications_of(&self, episode: EpisodeId) -> Result<Vec<Notification>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications WHERE episode_id = ? ORDER BY id"
        );
        self.read(|c| {
            collect(
                c,
                &sql,
                &[Value::Integer(sql::int(episode)?)],
                notification_row,
            )
        })
    }

    /// Marks a notification delivered (a repeat is a no-op). Many at once: use
    /// [`JournalOp::Delivered`] through the [`JournalWriter`](super::JournalWriter).
    ///
    /// # Errors
    /// [`StoreError::UnknownNotification`]; a database error.
    pub fn mark_delivered(&self, id: NotificationId, now: UnixMs) -> Result<(), StoreError> {
        match self.journal_batch(&[JournalOp::Delivered { id, at_ms: now }])?[..] {
            [JournalResult::UnknownNotification(id)] => Err(StoreError::UnknownNotification(id)),
            _ => Ok(()),
        }
    }

    /// Counts a failed delivery and sets the next attempt.
    ///
    /// # Errors
    /// [`StoreError::UnknownNotification`]; a database error.
    pub fn mark_failed(
        &self,
        id: NotificationId,
        next_attempt_ms: UnixMs,
    ) -> Result<(), StoreError> {
        match self.journal_batch(&[JournalOp::Failed {
            id,
            next_attempt_ms,
        }])?[..]
        {
            [JournalResult::UnknownNotification(id)] => Err(StoreError::UnknownNotification(id)),
            _ => Ok(()),
        }
    }

    /// Whether the event `(device, seq)` is journaled already: the pipeline asks before the
    /// engine sees an event, so that a resent event raises nothing twice.
    ///
    /// # Errors
    /// A database error.
    pub fn event_exists(&self, device: &DeviceId, seq: Seq) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM events WHERE device = ? AND seq = ?)",
                rusqlite::params![device.as_str(), i64::from(seq)],
                |r| r.get::<_, bool>(0),
            )?)
        })
    }

    /// Which of `keys` (device, sequence number) are journaled already, in one read: the
    /// pipeline asks this for a whole batch before planning it, so that a resent event raises
    /// nothing twice.
    ///
    /// # Errors
    /// A database error.
    pub fn journaled_events(
        &self,
        keys: &[(DeviceId, Seq)],
    ) -> Result<std::collections::HashSet<(DeviceId, Seq)>, StoreError> {
        let mut found = std::collections::HashSet::new();
        if keys.is_empty() {
            return Ok(found);
        }
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM events WHERE device = ? AND seq = ?")?;
            for (device, seq) in keys {
                if stmt
                    .query_row(rusqlite::params![device.as_str(), i64::from(*seq)], |_| {
                        Ok(())
                    })
                    .optional()?
                    .is_some()
                {
                    found.insert((device.clone(), *seq));
                }
            }
            Ok(found)
        })
    }

    /// The highest sequence number of `device` in the store (events and readings), if any: a
    /// device the gateway polls itself (Modbus) numbers its messages above it after a restart.
    ///
    /// # Errors
    /// A database error.
    pub fn max_seq(&self, device: &DeviceId) -> Result<Option<Seq>, StoreError> {
        let max: Option<i64> = self.read(|c| {
            let max: Option<i64> = c.query_row(
                "SELECT max(seq) FROM events WHERE device = ?",
                [device.as_str()],
                |r| r.get(0),
            )?;
            Ok(max)
        })?;
        let max = max.max(self.readings_max_seq(device)?);
        Ok(max.and_then(|m| Seq::try_from(m).ok()))
    }

    /// A device's journaled events, newest first: those before `before_seq` if given.
    ///
    /// # Errors
    /// A database error.
    pub fn device_events(
        &self,
        device: &DeviceId,
        before_seq: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT device, received_ms, body FROM events WHERE device = ? AND seq < ? \
             ORDER BY seq DESC LIMIT {}",
            sql::page(limit, 100, 10_000)
        );
        let before = before_seq.map_or(i64::MAX, i64::from);
        self.read(|c| {
            collect(
                c,
                &sql,
                &[Value::Text(device.to_string()), Value::Integer(before)],
                |r| {
                    let device: String = r.get(0)?;
                    let body: String = r.get(2)?;
                    let Message::Event(event) = sql::from_protocol_json(DeviceTopic::Event, &body)?
                    else {
                        return Err(names::invalid("event body", &body));
                    };
                    Ok(StoredEvent {
                        device: names::device_id(&device)?,
                        received_ms: r.get(1)?,
                        event,
                    })
                },
            )
        })
    }
}
