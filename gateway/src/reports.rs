//! The rectification reports (docs/utility.md#reports): unresolved hazards by age and area,
//! repeat sites, grid cells' online rate and response times, devices that need a visit — each
//! filtered (`key_only`) and rolled up by key areas (重点区域).
//!
//! Pure: rows the store returns (`Store::report_*`) and the time in, the report out; the API
//! (`api/reports.rs`) and the report pages only read rows and render. [`csv`] writes each as
//! CSV. The tests compute a fixed data set by hand.

mod cells;
pub mod csv;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

pub use cells::{CellRow, Cells, Times, cells};

use crate::model::{Category, DeviceKind, DeviceState, TicketState, UnixMs};
use crate::store::{AreaId, AreaLevel};

/// A day, ms.
pub const DAY_MS: u64 = 86_400_000;

/// The age buckets of unresolved hazards: name and upper bound (exclusive), ms.
pub const AGE_BUCKETS: [(&str, u64); 5] = [
    ("lt_1d", DAY_MS),
    ("1d_3d", 3 * DAY_MS),
    ("3d_7d", 7 * DAY_MS),
    ("7d_30d", 30 * DAY_MS),
    ("ge_30d", u64::MAX),
];

/// An area as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaRow {
    /// Its id.
    pub id: AreaId,
    /// Its parent.
    pub parent: Option<AreaId>,
    /// Its name.
    pub name: String,
    /// Its level.
    pub level: AreaLevel,
    /// Whether it is flagged as a key area.
    pub key: bool,
}

/// An episode as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HazardRow {
    /// The episode.
    pub episode: i64,
    /// Its category.
    pub category: Category,
    /// Its device.
    pub device: String,
    /// Its grid cell.
    pub grid: AreaId,
    /// Its device's site, name and address (if the device is placed).
    pub site: Option<(i64, String, String)>,
    /// When it started.
    pub started_ms: UnixMs,
    /// Its ticket's state.
    pub ticket: TicketState,
    /// When its ticket was first acknowledged.
    pub acknowledged_ms: Option<UnixMs>,
    /// When its ticket was first rectified.
    pub rectified_ms: Option<UnixMs>,
}

/// A device as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Its id.
    pub id: String,
    /// Its grid cell.
    pub grid: Option<AreaId>,
    /// Its site.
    pub site_id: Option<i64>,
    /// Its lifecycle state.
    pub state: DeviceState,
    /// Since when it is offline (its open offline episode's start), if it is.
    pub offline_since_ms: Option<UnixMs>,
    /// Whether its battery is low (its own battery-low episode is open); `None` when not known.
    pub battery_low: Option<bool>,
    /// Its kind (which self-test schedule applies).
    pub kind: DeviceKind,
    /// When it was registered (a self-test schedule counts from here until its first result).
    pub created_ms: UnixMs,
    /// When its last self-test result arrived.
    pub last_self_test_ms: Option<UnixMs>,
    /// Whether its scheduled self-test is overdue ([`crate::commissioning::overdue`]); `None`:
    /// its kind has no schedule (`[commissioning] self_test_days`).
    pub self_test_overdue: Option<bool>,
}

/// The area tree, to name areas and find the key area an area lies in.
#[derive(Debug, Clone)]
pub struct Areas {
    by_id: BTreeMap<AreaId, AreaRow>,
}

impl Areas {
    /// The tree of `rows`.
    pub fn new(rows: Vec<AreaRow>) -> Self {
        Self {
            by_id: rows.into_iter().map(|a| (a.id.clone(), a)).collect(),
        }
    }

    /// An area's name (its id if unknown).
    pub fn name(&self, id: &AreaId) -> String {
        self.by_id
            .get(id)
            .map_or_else(|| id.to_string(), |a| a.name.clone())
    }

    /// The nearest key area at or above `id` (at most 16 levels up; a cycle ends the walk).
    pub fn key_of(&self, id: &AreaId) -> Option<&AreaRow> {
        let mut next = Some(id);
        for _ in 0..16 {
            let a = self.by_id.get(next?)?;
            if a.key {
                return Some(a);
            }
            next = a.parent.as_ref();
        }
        None
    }

    /// The key areas, by id.
    pub fn keys(&self) -> impl Iterator<Item = &AreaRow> {
        self.by_id.values().filter(|a| a.key)
    }
}

/// A key area a row rolls up to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(as = ReportKeyArea)]
pub struct KeyArea {
    /// Its id.
    #[schema(value_type = crate::api::ProtocolId)]
    pub id: AreaId,
    /// Its name.
    pub name: String,
}

pub(crate) fn key_of(areas: &Areas, id: &AreaId) -> Option<KeyArea> {
    areas.key_of(id).map(|a| KeyArea {
        id: a.id.clone(),
        name: a.name.clone(),
    })
}

/// Unresolved hazards of one area (a grid cell, a key area, or all), by age bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgeRow {
    /// The area (`None` in the total).
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    pub area_id: Option<AreaId>,
    /// Its name.
    pub area: String,
    /// The key area it lies in.
    pub key_area: Option<KeyArea>,
    /// Hazards per bucket of [`AGE_BUCKETS`].
    pub buckets: [u64; 5],
    /// Hazards in all.
    pub total: u64,
    /// The oldest hazard's start.
    pub oldest_ms: Option<UnixMs>,
}

impl AgeRow {
    fn new(area_id: Option<AreaId>, area: String, key_area: Option<KeyArea>) -> Self {
        Self {
            area_id,
            area,
            key_area,
            buckets: [0; 5],
            total: 0,
            oldest_ms: None,
        }
    }

    fn add(&mut self, bucket: usize, since_ms: UnixMs) {
        self.buckets[bucket] += 1;
        self.total += 1;
        self.oldest_ms = Some(self.oldest_ms.map_or(since_ms, |o| o.min(since_ms)));
    }
}

/// Unresolved hazards by age bucket and grid cell, rolled up by key area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Unresolved {
    /// The time ages are measured at.
    pub now_ms: UnixMs,
    /// The buckets' names ([`AGE_BUCKETS`]).
    pub buckets: [&'static str; 5],
    /// Per grid cell, the most hazards first.
    pub rows: Vec<AgeRow>,
    /// Per key area (by id).
    pub key_areas: Vec<AgeRow>,
    /// All of them.
    pub total: AgeRow,
}

/// The bucket of an age.
pub fn age_bucket(age_ms: u64) -> usize {
    AGE_BUCKETS
        .iter()
        .position(|(_, below)| age_ms < *below)
        .unwrap_or(AGE_BUCKETS.len() - 1)
}

/// Unresolved hazards (tickets neither `verified` nor `closed`) grouped per site — a site's
/// episodes are one hazard, as in `GET /api/v1/hazards`; an episode of a device without a site
/// is one on its own — aged from their earliest episode's start to `now`, counted per grid
/// cell (the earliest episode's) and bucket. `key_only`: only hazards in key areas.
pub fn unresolved(rows: &[HazardRow], areas: &Areas, now: UnixMs, key_only: bool) -> Unresolved {
    // One hazard per site (or per episode without one): (grid, since).
    let mut hazards: BTreeMap<(i64, i64), (AreaId, UnixMs)> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| !matches!(r.ticket, TicketState::Verified | TicketState::Closed))
    {
        let key = r.site.as_ref().map_or((1, r.episode), |s| (0, s.0));
        let e = hazards
            .entry(key)
            .or_insert_with(|| (r.grid.clone(), r.started_ms));
        if r.started_ms < e.1 {
            *e = (r.grid.clone(), r.started_ms);
        }
    }
    let mut cells: BTreeMap<AreaId, AgeRow> = BTreeMap::new();
    let mut keys: BTreeMap<AreaId, AgeRow> = BTreeMap::new();
    let mut total = AgeRow::new(None, String::new(), None);
    for (grid, since) in hazards.into_values() {
        let key = key_of(areas, &grid);
        if key_only && key.is_none() {
            continue;
        }
        let bucket = age_bucket(now.saturating_sub(since));
        cells
            .entry(grid.clone())
            .or_insert_with(|| AgeRow::new(Some(grid.clone()), areas.name(&grid), key.clone()))
            .add(bucket, since);
        if let Some(k) = key {
            keys.entry(k.id.clone())
                .or_insert_with(|| AgeRow::new(Some(k.id.clone()), k.name.clone(), Some(k)))
                .add(bucket, since);
        }
        total.add(bucket, since);
    }
    let mut rows: Vec<AgeRow> = cells.into_values().collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.area_id.cmp(&b.area_id)));
    Unresolved {
        now_ms: now,
        buckets: AGE_BUCKETS.map(|(n, _)| n),
        rows,
        key_areas: keys.into_values().collect(),
        total,
    }
}

/// A site with repeated hazards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepeatSite {
    /// The site.
    pub site_id: i64,
    /// Its name.
    pub site: String,
    /// Its address.
    pub address: String,
    /// Its grid cell (its latest hazard's).
    #[schema(value_type = crate::api::ProtocolId)]
    pub area_id: AreaId,
    /// The key area it lies in.
    pub key_area: Option<KeyArea>,
    /// Hazards (alarm and smoke episodes) that started in the window.
    pub hazards: u64,
    /// Of which electrical alarms.
    pub alarms: u64,
    /// Of which smoke.
    pub smoke: u64,
    /// The first one's start.
    pub first_ms: UnixMs,
    /// The latest one's start.
    pub last_ms: UnixMs,
}

/// Repeat sites of a key area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepeatRollup {
    /// The key area.
    pub key_area: KeyArea,
    /// Its repeat sites.
    pub sites: u64,
    /// Their hazards.
    pub hazards: u64,
}

/// The repeat sites ("blacklist") report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepeatSites {
    /// The window: `[from_ms, to_ms)`.
    pub from_ms: UnixMs,
    /// Its end.
    pub to_ms: UnixMs,
    /// The least hazards that make a repeat site.
    pub min_hazards: u64,
    /// The sites, the most hazards first (then the latest, then the site id).
    pub sites: Vec<RepeatSite>,
    /// Per key area.
    pub key_areas: Vec<RepeatRollup>,
}

/// Sites with at least `min` hazards — electrical alarm and smoke episodes, whatever their
/// ticket — that started in `[now − days, now)`, ranked.
pub fn repeat_sites(
    rows: &[HazardRow],
    areas: &Areas,
    now: UnixMs,
    days: u64,
    min: u64,
    key_only: bool,
) -> RepeatSites {
    let from = now.saturating_sub(days.saturating_mul(DAY_MS));
    let mut sites: BTreeMap<i64, RepeatSite> = BTreeMap::new();
    for r in rows {
        let Some((id, name, address)) = &r.site else {
            continue;
        };
        if !(from..now).contains(&r.started_ms)
            || !matches!(r.category, Category::Alarm | Category::Smoke)
        {
            continue;
        }
        let s = sites.entry(*id).or_insert_with(|| RepeatSite {
            site_id: *id,
            site: name.clone(),
            address: address.clone(),
            area_id: r.grid.clone(),
            key_area: None,
            hazards: 0,
            alarms: 0,
            smoke: 0,
            first_ms: r.started_ms,
            last_ms: r.started_ms,
        });
        s.hazards += 1;
        if r.category == Category::Alarm {
            s.alarms += 1;
        } else {
            s.smoke += 1;
        }
        s.first_ms = s.first_ms.min(r.started_ms);
        if r.started_ms >= s.last_ms {
            s.last_ms = r.started_ms;
            s.area_id = r.grid.clone();
        }
    }
    let mut out: Vec<RepeatSite> = sites
        .into_values()
        .filter(|s| s.hazards >= min)
        .map(|mut s| {
            s.key_area = key_of(areas, &s.area_id);
            s
        })
        .filter(|s| !key_only || s.key_area.is_some())
        .collect();
    out.sort_by(|a, b| {
        b.hazards
            .cmp(&a.hazards)
            .then(b.last_ms.cmp(&a.last_ms))
            .then(a.site_id.cmp(&b.site_id))
    });
    let mut keys: BTreeMap<KeyArea, (u64, u64)> = BTreeMap::new();
    for s in &out {
        if let Some(k) = &s.key_area {
            let e = keys.entry(k.clone()).or_default();
            e.0 += 1;
            e.1 += s.hazards;
        }
    }
    RepeatSites {
        from_ms: from,
        to_ms: now,
        min_hazards: min,
        sites: out,
        key_areas: keys
            .into_iter()
            .map(|(key_area, (sites, hazards))| RepeatRollup {
                key_area,
                sites,
                hazards,
            })
            .collect(),
    }
}

/// A device that needs a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VisitRow {
    /// The device.
    pub device: String,
    /// Its grid cell.
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    pub area_id: Option<AreaId>,
    /// The key area it lies in.
    pub key_area: Option<KeyArea>,
    /// Its site.
    pub site_id: Option<i64>,
    /// Since when it is offline, if it is (for at least the report's hours).
    pub offline_since_ms: Option<UnixMs>,
    /// Battery low (`None`: not known yet, see [`DeviceRow::battery_low`]).
    pub battery_low: Option<bool>,
    /// Self-test overdue (`None`: its kind has no self-test schedule).
    pub self_test_overdue: Option<bool>,
}

/// The devices report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Visits {
    /// The time of the report.
    pub now_ms: UnixMs,
    /// How long offline counts, ms.
    pub offline_ms: u64,
    /// The devices, the longest offline first.
    pub devices: Vec<VisitRow>,
    /// Per key area: how many.
    pub key_areas: Vec<(KeyArea, u64)>,
}

/// `devices` with whether each one's scheduled self-test is overdue at `now`
/// ([`crate::commissioning::overdue`] over its kind's period, `period_ms`; `None` for a kind
/// without a schedule).
pub fn with_self_tests(
    mut devices: Vec<DeviceRow>,
    period_ms: impl Fn(DeviceKind) -> Option<u64>,
    now: UnixMs,
) -> Vec<DeviceRow> {
    for d in &mut devices {
        d.self_test_overdue = period_ms(d.kind)
            .map(|p| crate::commissioning::overdue(p, d.last_self_test_ms, d.created_ms, now));
    }
    devices
}

/// The watched devices offline for at least `offline_ms` at `now`, or whose battery is low, or
/// whose scheduled self-test is overdue, the longest offline first.
pub fn visits(
    devices: &[DeviceRow],
    areas: &Areas,
    now: UnixMs,
    offline_ms: u64,
    key_only: bool,
) -> Visits {
    let mut out: Vec<VisitRow> = devices
        .iter()
        .filter(|d| matches!(d.state, DeviceState::Commissioned | DeviceState::InService))
        .filter_map(|d| {
            let offline = d
                .offline_since_ms
                .filter(|s| now.saturating_sub(*s) >= offline_ms);
            let flagged = offline.is_some()
                || d.battery_low == Some(true)
                || d.self_test_overdue == Some(true);
            let key_area = d.grid.as_ref().and_then(|g| key_of(areas, g));
            (flagged && (!key_only || key_area.is_some())).then(|| VisitRow {
                device: d.id.clone(),
                area_id: d.grid.clone(),
                key_area,
                site_id: d.site_id,
                offline_since_ms: offline,
                battery_low: d.battery_low,
                self_test_overdue: d.self_test_overdue,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.offline_since_ms
            .unwrap_or(u64::MAX)
            .cmp(&b.offline_since_ms.unwrap_or(u64::MAX))
            .then(a.device.cmp(&b.device))
    });
    let mut keys: BTreeMap<KeyArea, u64> = BTreeMap::new();
    for v in &out {
        if let Some(k) = &v.key_area {
            *keys.entry(k.clone()).or_default() += 1;
        }
    }
    Visits {
        now_ms: now,
        offline_ms,
        devices: out,
        key_areas: keys.into_iter().collect(),
    }
}
