//! The grid cells report: each cell's online rate now and its response times (to acknowledge,
//! to rectify) over a window, rolled up by key area.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Areas, DAY_MS, DeviceRow, HazardRow, KeyArea, key_of};
use crate::model::{Category, DeviceState, TicketState, UnixMs};
use crate::store::AreaId;

/// Durations' summary: count, median, 90th percentile and maximum (nearest rank), ms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Times {
    /// How many.
    pub n: u64,
    /// The median.
    pub p50_ms: Option<u64>,
    /// The 90th percentile.
    pub p90_ms: Option<u64>,
    /// The longest.
    pub max_ms: Option<u64>,
}

impl Times {
    /// The summary of `xs` (nearest rank: the ⌈q·n⌉-th smallest).
    pub fn of(mut xs: Vec<u64>) -> Self {
        xs.sort_unstable();
        let n = xs.len();
        let rank = |q: f64| {
            // ⌈q·n⌉ in 1..=n, as an index.
            let r = (q * n as f64).ceil() as usize;
            xs.get(r.clamp(1, n.max(1)) - 1).copied()
        };
        Self {
            n: n as u64,
            p50_ms: rank(0.5),
            p90_ms: rank(0.9),
            max_ms: xs.last().copied(),
        }
    }
}

/// A grid cell's (or key area's, or everyone's) online rate and response times.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CellRow {
    /// The area (`None` in the total).
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    pub area_id: Option<AreaId>,
    /// Its name.
    pub area: String,
    /// The key area it lies in.
    pub key_area: Option<KeyArea>,
    /// Devices watched (commissioned or in service).
    pub devices: u64,
    /// Of which online now.
    pub online: u64,
    /// `online / devices` (`None` without devices).
    pub online_rate: Option<f64>,
    /// Episodes (all but offline ones) that started in the window.
    pub episodes: u64,
    /// From start to the ticket's first acknowledgement.
    pub acknowledge: Times,
    /// Of those episodes, how many are not acknowledged yet.
    pub unacknowledged: u64,
    /// From start to the ticket's first `rectified`.
    pub rectify: Times,
    /// Of those episodes, how many are not rectified yet (nor verified or closed).
    pub unrectified: u64,
}

/// The grid cells report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Cells {
    /// The window of the response times: `[from_ms, to_ms)`.
    pub from_ms: UnixMs,
    /// Its end (and the time of the online rate).
    pub to_ms: UnixMs,
    /// Per grid cell, by id.
    pub rows: Vec<CellRow>,
    /// Per key area.
    pub key_areas: Vec<CellRow>,
    /// Everyone.
    pub total: CellRow,
}

#[derive(Default)]
struct CellAcc {
    devices: u64,
    online: u64,
    episodes: u64,
    ack: Vec<u64>,
    unack: u64,
    rect: Vec<u64>,
    unrect: u64,
}

impl CellAcc {
    fn merge(&mut self, a: &Self) {
        self.devices += a.devices;
        self.online += a.online;
        self.episodes += a.episodes;
        self.ack.extend(&a.ack);
        self.unack += a.unack;
        self.rect.extend(&a.rect);
        self.unrect += a.unrect;
    }

    fn row(self, area_id: Option<AreaId>, area: String, key_area: Option<KeyArea>) -> CellRow {
        CellRow {
            area_id,
            area,
            key_area,
            devices: self.devices,
            online: self.online,
            online_rate: (self.devices > 0).then(|| self.online as f64 / self.devices as f64),
            episodes: self.episodes,
            acknowledge: Times::of(self.ack),
            unacknowledged: self.unack,
            rectify: Times::of(self.rect),
            unrectified: self.unrect,
        }
    }
}

/// Per grid cell: the devices watched and online now (no open offline episode), and the
/// response times of the episodes (all but offline ones, which the online rate counts) that
/// started in `[now − days, now)`: to acknowledge and to rectify, from the episode's start.
pub fn cells(
    devices: &[DeviceRow],
    episodes: &[HazardRow],
    areas: &Areas,
    now: UnixMs,
    days: u64,
    key_only: bool,
) -> Cells {
    let from = now.saturating_sub(days.saturating_mul(DAY_MS));
    let mut acc: BTreeMap<AreaId, CellAcc> = BTreeMap::new();
    for d in devices {
        let Some(grid) = &d.grid else { continue };
        if !matches!(d.state, DeviceState::Commissioned | DeviceState::InService) {
            continue;
        }
        let a = acc.entry(grid.clone()).or_default();
        a.devices += 1;
        a.online += u64::from(d.offline_since_ms.is_none());
    }
    for e in episodes {
        if e.category == Category::Offline || !(from..now).contains(&e.started_ms) {
            continue;
        }
        let a = acc.entry(e.grid.clone()).or_default();
        a.episodes += 1;
        match e.acknowledged_ms {
            Some(t) => a.ack.push(t.saturating_sub(e.started_ms)),
            None => a.unack += 1,
        }
        match e.rectified_ms {
            Some(t) => a.rect.push(t.saturating_sub(e.started_ms)),
            None if e.ticket < TicketState::Rectified => a.unrect += 1,
            None => {}
        }
    }
    let mut rows = Vec::new();
    let mut keys: BTreeMap<KeyArea, CellAcc> = BTreeMap::new();
    let mut total = CellAcc::default();
    for (grid, a) in acc {
        let key = key_of(areas, &grid);
        if key_only && key.is_none() {
            continue;
        }
        if let Some(k) = &key {
            keys.entry(k.clone()).or_default().merge(&a);
        }
        total.merge(&a);
        rows.push(a.row(Some(grid.clone()), areas.name(&grid), key));
    }
    Cells {
        from_ms: from,
        to_ms: now,
        rows,
        key_areas: keys
            .into_iter()
            .map(|(k, a)| a.row(Some(k.id.clone()), k.name.clone(), Some(k)))
            .collect(),
        total: total.row(None, String::new(), None),
    }
}
