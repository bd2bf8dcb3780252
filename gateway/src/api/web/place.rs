//! Hazards as the pages show them: an episode with where it is (site, address, room, owner),
//! read from the store within the caller's scope; the board's order; the value against its
//! set-point in its unit.

use std::collections::HashMap;

use firegrid_protocols::GridId;
use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::Level;

use crate::model::{Category, Episode, TicketState};
use crate::store::{EpisodeFilter, RoomFields, Site, SiteFields, Store, StoreError};
use crate::workflow::WorkflowConfig;

/// The most hazards a page lists.
const MAX_LISTED: u32 = 500;

/// An episode and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Hazard {
    pub(crate) episode: Episode,
    pub(crate) site: Option<Site>,
    pub(crate) room: Option<String>,
    /// The ticket's assignee, its notes and photos (api/evidence.rs).
    pub(crate) assignee: Option<crate::store::Assignee>,
    pub(crate) evidence: Vec<crate::store::Evidence>,
    /// Its deadlines ([`crate::workflow::deadlines`]) and, once rectified or ended, what the
    /// data says about verifying it.
    pub(crate) deadlines: crate::workflow::Deadlines,
    pub(crate) check: Option<crate::workflow::Verification>,
}

/// How urgent a category is: lower first.
const fn severity(c: Category) -> u8 {
    match c {
        Category::Smoke => 0,
        Category::Alarm => 1,
        Category::Fault => 2,
        Category::Tamper => 3,
        Category::Offline => 4,
        Category::BatteryLow => 5,
    }
}

/// The board's order: most severe first, then the most escalated, then newest.
pub(crate) fn board_order(a: &Episode, b: &Episode) -> std::cmp::Ordering {
    severity(a.key.category)
        .cmp(&severity(b.key.category))
        .then(b.escalation.cmp(&a.escalation))
        .then(b.started_ms.cmp(&a.started_ms))
        .then(b.id.cmp(&a.id))
}

/// Whether an episode still needs someone: its condition goes on, or its ticket is not yet
/// rectified.
pub(crate) fn needs_someone(e: &Episode) -> bool {
    e.ended_ms.is_none()
        || matches!(
            e.ticket,
            TicketState::Raised | TicketState::Acknowledged | TicketState::Dispatched
        )
}

/// The open hazards of `area`'s subtree (the caller's scope already checked), in board order.
///
/// # Errors
/// A store error.
pub(crate) fn open_hazards(
    store: &Store,
    area: Option<&GridId>,
    workflow: &WorkflowConfig,
) -> Result<Vec<Hazard>, StoreError> {
    let mut episodes: HashMap<u64, Episode> = HashMap::new();
    let base = EpisodeFilter {
        area: area.cloned(),
        limit: MAX_LISTED,
        ..EpisodeFilter::default()
    };
    let ongoing = EpisodeFilter {
        open_only: true,
        ..base.clone()
    };
    for e in store.episodes(&ongoing)? {
        episodes.insert(e.id, e);
    }
    for state in [
        TicketState::Raised,
        TicketState::Acknowledged,
        TicketState::Dispatched,
    ] {
        let f = EpisodeFilter {
            ticket: Some(state),
            ..base.clone()
        };
        for e in store.episodes(&f)? {
            episodes.insert(e.id, e);
        }
    }
    // A device being commissioned alarms for its installer's test (the install page shows
    // it), not for the people who watch hazards.
    let mut list: Vec<Episode> = episodes
        .into_values()
        .filter(needs_someone)
        .filter(|e| {
            store
                .device(&e.key.device)
                .ok()
                .flatten()
                .is_none_or(|d| d.fields.state != crate::model::DeviceState::Commissioned)
        })
        .collect();
    list.sort_by(board_order);
    let mut sites = HashMap::new();
    list.into_iter()
        .map(|e| locate(store, e, &mut sites, workflow))
        .collect()
}

/// Where episode `e` is.
///
/// # Errors
/// A store error.
pub(crate) fn locate(
    store: &Store,
    episode: Episode,
    sites: &mut HashMap<i64, Option<Site>>,
    workflow: &WorkflowConfig,
) -> Result<Hazard, StoreError> {
    let device = store.device(&episode.key.device)?;
    let (site_id, room_id) = device
        .map(|d| (d.fields.site_id, d.fields.room_id))
        .unwrap_or_default();
    let site = match site_id {
        Some(id) => match sites.get(&id) {
            Some(s) => s.clone(),
            None => {
                let s = store.get::<SiteFields>(&id)?;
                sites.insert(id, s.clone());
                s
            }
        },
        None => None,
    };
    let room = match room_id {
        Some(id) => store.get::<RoomFields>(&id)?.map(|r| r.fields.name),
        None => None,
    };
    let assignee = store.assignee_of(episode.id)?;
    let acknowledged_ms = store.acknowledged_at(episode.id)?;
    let evidence = store.evidence_of(episode.id)?;
    let now = crate::clock::now_ms();
    let deadlines = crate::workflow::deadlines(
        episode.key.category,
        episode.started_ms,
        acknowledged_ms,
        episode.ticket,
        workflow,
        now,
    );
    let check = if episode.ticket >= TicketState::Rectified || episode.ended_ms.is_some() {
        Some(crate::api::episodes::verify_by_data(
            store, &episode, workflow, now,
        )?)
    } else {
        None
    };
    Ok(Hazard {
        episode,
        site,
        room,
        assignee,
        evidence,
        deadlines,
        check,
    })
}

/// A value against its set-point in its unit: `35 mA / 30 mA`, `85.0 °C / 80.0 °C`.
pub(crate) fn level(l: &Level) -> String {
    match l.quantity {
        Quantity::ResidualCurrent => format!("{} mA / {} mA", l.value, l.threshold),
        Quantity::Temperature => format!(
            "{:.1} °C / {:.1} °C",
            f64::from(l.value) / 10.0,
            f64::from(l.threshold) / 10.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EpisodeKey, Source};
    use firegrid_protocols::DeviceId;

    fn ep(id: u64, c: Category, started_ms: u64, escalation: u8) -> Episode {
        Episode {
            id,
            key: EpisodeKey {
                device: DeviceId::new("hz-1").unwrap(),
                channel: None,
                category: c,
            },
            grid: GridId::new("cell-a").unwrap(),
            source: Source::Device,
            started_ms,
            ended_ms: None,
            peak: None,
            detail: None,
            ticket: TicketState::Raised,
            escalation,
        }
    }

    #[test]
    fn smoke_before_alarms_before_faults_then_escalated_then_newest() {
        let mut v = [
            ep(1, Category::Fault, 50, 0),
            ep(2, Category::Alarm, 10, 0),
            ep(3, Category::Alarm, 20, 0),
            ep(4, Category::Smoke, 5, 0),
            ep(5, Category::Alarm, 1, 2),
            ep(6, Category::BatteryLow, 99, 0),
        ];
        v.sort_by(board_order);
        let ids: Vec<u64> = v.iter().map(|e| e.id).collect();
        assert_eq!(ids, [4, 5, 3, 2, 1, 6]);
    }

    #[test]
    fn an_ended_episode_stays_until_rectified() {
        let mut e = ep(1, Category::Alarm, 0, 0);
        e.ended_ms = Some(5);
        assert!(needs_someone(&e));
        e.ticket = TicketState::Rectified;
        assert!(!needs_someone(&e));
        e.ended_ms = None;
        assert!(needs_someone(&e));
    }

    #[test]
    fn values_are_shown_in_their_unit() {
        let l = Level {
            quantity: Quantity::Temperature,
            value: 853,
            threshold: 800,
        };
        assert_eq!(level(&l), "85.3 °C / 80.0 °C");
    }
}
