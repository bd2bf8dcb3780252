//! The hazard workflow's rules after a person acknowledged: when an unrectified ticket escalates
//! again, and when the data lets a ticket be `verified`. Pure: state, input and time in,
//! decisions out; the shells are the ticket watcher ([`watch`]) and the ticket route.
//!
//! - **Rectify deadline.** A ticket acknowledged at `A` whose category has a rectify deadline
//!   `R` ([`WorkflowConfig::rectify_ms`]) and that is not `rectified` (or beyond) by `A + R`
//!   escalates one level above where it was, again at `A + 2R` one more, and so on: the
//!   acknowledgement stops the "nobody answers" escalation, not the "nothing gets fixed" one.
//! - **Verification by data.** An alarm's ticket may become `verified` only when its episode
//!   ended at least [`WorkflowConfig::verify_hold_ms`] ago and every reading of its channel since
//!   `now - hold` (at least one) is below the set-point by
//!   [`WorkflowConfig::verify_margin_pct`] ([`verification`]). Otherwise an operator overrides,
//!   with a reason, audited.

pub mod watch;

use std::collections::BTreeMap;

use firegrid_protocols::channel::Quantity;

use crate::model::{Category, EpisodeId, TicketState, UnixMs};

/// The workflow's settings (`[tickets]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// Per category, how long after acknowledgement a ticket has to be rectified, ms (absent:
    /// no deadline).
    pub rectify_ms: BTreeMap<Category, u64>,
    /// How far below the set-point readings must stay, percent of it.
    pub verify_margin_pct: u8,
    /// For how long, ms.
    pub verify_hold_ms: u64,
    /// Per category, how long after its start a ticket has to be acknowledged, ms (the
    /// engine's first escalation step of the category: `[tickets] acknowledge_s`, else
    /// `[engine] escalation_s[0]`); shown by the pages ([`deadlines`]). Absent: none.
    pub acknowledge_ms: BTreeMap<Category, u64>,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            rectify_ms: BTreeMap::from([
                (Category::Alarm, 3 * 86_400_000),
                (Category::Smoke, 86_400_000),
                (Category::Fault, 7 * 86_400_000),
            ]),
            verify_margin_pct: 20,
            verify_hold_ms: 600_000,
            acknowledge_ms: BTreeMap::new(),
        }
    }
}

/// An acknowledged ticket, as the watcher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// The episode.
    pub episode: EpisodeId,
    /// Its category.
    pub category: Category,
    /// Its ticket's state.
    pub ticket: TicketState,
    /// When it was acknowledged.
    pub acknowledged_ms: UnixMs,
    /// Its escalation level when it was acknowledged.
    pub acknowledged_level: u8,
    /// Its escalation level now.
    pub escalation: u8,
}

/// The highest level an overdue ticket is escalated to (the area tree is never deeper).
pub const MAX_LEVEL: u8 = 16;

/// When the ticket's next overdue escalation is due, if it has one: `A + R × (n + 1)` for the
/// `n` overdue escalations made so far.
pub fn next_overdue(t: &Acknowledged, config: &WorkflowConfig) -> Option<UnixMs> {
    let r = config
        .rectify_ms
        .get(&t.category)
        .copied()
        .filter(|r| *r > 0)?;
    if t.ticket >= TicketState::Rectified || t.escalation >= MAX_LEVEL {
        return None;
    }
    let made = u64::from(t.escalation.saturating_sub(t.acknowledged_level));
    Some(t.acknowledged_ms.saturating_add(r.saturating_mul(made + 1)))
}

/// The level to escalate to at `now`, if the rectify deadline has passed.
pub fn rectify_overdue(t: &Acknowledged, config: &WorkflowConfig, now: UnixMs) -> Option<u8> {
    next_overdue(t, config)
        .filter(|due| now >= *due)
        .map(|_| t.escalation + 1)
}

/// A ticket's deadlines, as the pages show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// Acknowledge by (start + the category's acknowledge deadline).
    pub acknowledge_by: Option<UnixMs>,
    /// Whether that passed without an acknowledgement.
    pub acknowledge_overdue: bool,
    /// Rectify by (acknowledgement + the category's rectify deadline; once acknowledged).
    pub rectify_by: Option<UnixMs>,
    /// Whether that passed without the ticket being rectified.
    pub rectify_overdue: bool,
}

/// The deadlines of a ticket of `category` that started at `started_ms`, acknowledged at
/// `acknowledged_ms` (if it was), in state `ticket`, at `now`.
pub fn deadlines(
    category: Category,
    started_ms: UnixMs,
    acknowledged_ms: Option<UnixMs>,
    ticket: TicketState,
    config: &WorkflowConfig,
    now: UnixMs,
) -> Deadlines {
    let acknowledge_by = config
        .acknowledge_ms
        .get(&category)
        .copied()
        .filter(|a| *a > 0)
        .map(|a| started_ms.saturating_add(a));
    let rectify_by = acknowledged_ms.and_then(|at| {
        config
            .rectify_ms
            .get(&category)
            .copied()
            .filter(|r| *r > 0)
            .map(|r| at.saturating_add(r))
    });
    Deadlines {
        acknowledge_by,
        acknowledge_overdue: ticket == TicketState::Raised
            && acknowledge_by.is_some_and(|by| now > by),
        rectify_by,
        rectify_overdue: ticket < TicketState::Rectified && rectify_by.is_some_and(|by| now > by),
    }
}

/// What the data says about a ticket's verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verification {
    /// It may be verified.
    Verified,
    /// The episode has not ended.
    NotEnded,
    /// It ended less than the hold ago; verifiable from `at_ms`.
    TooRecent {
        /// When it can be verified at the earliest.
        at_ms: UnixMs,
    },
    /// No reading of the channel since the hold began: nothing shows it is safe.
    NoReadings,
    /// A reading since the hold began was at or above the limit.
    AboveMargin {
        /// The highest reading (mA or deci-°C).
        max: i32,
        /// The limit: the set-point less the margin.
        limit: i32,
    },
}

/// What [`verification`] needs of the readings since `now - hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadingsSince {
    /// How many readings of the quantity.
    pub count: u64,
    /// The highest.
    pub max: Option<i32>,
}

/// Whether an alarm episode's ticket may be verified at `now`: ended at least the hold ago, and
/// every reading of `quantity` since `now - hold` below `set_point` less the margin. Episodes
/// without a measured quantity (smoke, faults...) need only to have ended.
pub fn verification(
    ended_ms: Option<UnixMs>,
    measured: Option<(Quantity, i32)>,
    readings: ReadingsSince,
    config: &WorkflowConfig,
    now: UnixMs,
) -> Verification {
    let Some(ended) = ended_ms else {
        return Verification::NotEnded;
    };
    let Some((_, set_point)) = measured else {
        return Verification::Verified;
    };
    let from = ended.saturating_add(config.verify_hold_ms);
    if now < from {
        return Verification::TooRecent { at_ms: from };
    }
    let limit = limit(set_point, config.verify_margin_pct);
    match readings.max {
        None => Verification::NoReadings,
        _ if readings.count == 0 => Verification::NoReadings,
        Some(max) if max >= limit => Verification::AboveMargin { max, limit },
        Some(_) => Verification::Verified,
    }
}

/// The set-point less `margin_pct` percent of it (integer, rounded down).
pub fn limit(set_point: i32, margin_pct: u8) -> i32 {
    let cut = i64::from(set_point) * i64::from(margin_pct.min(100)) / 100;
    i32::try_from(i64::from(set_point) - cut).unwrap_or(set_point)
}

#[cfg(test)]
mod tests;
