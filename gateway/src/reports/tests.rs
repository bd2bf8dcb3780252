//! The reports on one fixed data set, every answer computed by hand (in the comments).
//!
//! Areas: street s1 (a key area) with cells g1 and g2; street s2 with cell g3.
//! Episodes (T is "now"):
//!
//! | ep | category | site | cell | started | ticket | acknowledged | rectified |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 1 | alarm | 10 | g1 | T−2 h | raised | | |
//! | 2 | smoke | 10 | g1 | T−5 d | acknowledged | +10 min | |
//! | 3 | alarm | 11 | g2 | T−40 d | dispatched | +2 min | |
//! | 4 | alarm | 12 | g3 | T−10 h | raised | | |
//! | 5 | alarm | 12 | g3 | T−8 d | verified | +5 min | +2 h |
//! | 6 | fault | — | g3 | T−2 d | raised | | |
//! | 7 | offline | 13 | g3 | T−3 d | closed | | |
//! | 8 | alarm | 10 | g1 | T−20 d | closed | +1 min | +1 h |
//! | 9 | alarm | 10 | g1 | T−25 d | verified | +3 min | +30 min |
//!
//! Devices: a (g1, in service, online), b (g1, in service, offline since T−30 h), c (g2, in
//! service, offline since T−2 h), d (g3, commissioned, online), e (g3, registered, offline),
//! f (g3, in service, offline since T−3 d), g (g3, decommissioned).

use super::*;
use crate::store::AreaLevel;

const T: u64 = 1_800_000_000_000;
const H: u64 = 3_600_000;
const MIN: u64 = 60_000;

fn id(s: &str) -> AreaId {
    AreaId::new(s).expect("a valid id")
}

fn areas() -> Areas {
    let a = |i: &str, p: Option<&str>, name: &str, level, key| AreaRow {
        id: id(i),
        parent: p.map(id),
        name: name.into(),
        level,
        key,
    };
    Areas::new(vec![
        a("d", None, "District", AreaLevel::District, false),
        a("s1", Some("d"), "Street 1", AreaLevel::Street, true),
        a("s2", Some("d"), "Street 2", AreaLevel::Street, false),
        a("g1", Some("s1"), "Grid 1", AreaLevel::Grid, false),
        a("g2", Some("s1"), "Grid 2", AreaLevel::Grid, false),
        a("g3", Some("s2"), "Grid 3", AreaLevel::Grid, false),
    ])
}

#[allow(clippy::too_many_arguments)] // one row of the table above
fn ep(
    episode: i64,
    category: Category,
    site: Option<i64>,
    grid: &str,
    started_ms: u64,
    ticket: TicketState,
    ack_after: Option<u64>,
    rect_after: Option<u64>,
) -> HazardRow {
    HazardRow {
        episode,
        category,
        device: format!("dev-{episode}"),
        grid: id(grid),
        site: site.map(|s| (s, format!("Site {s}"), format!("{s} Main Rd"))),
        started_ms,
        ticket,
        acknowledged_ms: ack_after.map(|a| started_ms + a),
        rectified_ms: rect_after.map(|r| started_ms + r),
    }
}

fn episodes() -> Vec<HazardRow> {
    use Category::*;
    use TicketState::*;
    vec![
        ep(1, Alarm, Some(10), "g1", T - 2 * H, Raised, None, None),
        ep(
            2,
            Smoke,
            Some(10),
            "g1",
            T - 5 * DAY_MS,
            Acknowledged,
            Some(10 * MIN),
            None,
        ),
        ep(
            3,
            Alarm,
            Some(11),
            "g2",
            T - 40 * DAY_MS,
            Dispatched,
            Some(2 * MIN),
            None,
        ),
        ep(4, Alarm, Some(12), "g3", T - 10 * H, Raised, None, None),
        ep(
            5,
            Alarm,
            Some(12),
            "g3",
            T - 8 * DAY_MS,
            Verified,
            Some(5 * MIN),
            Some(2 * H),
        ),
        ep(6, Fault, None, "g3", T - 2 * DAY_MS, Raised, None, None),
        ep(
            7,
            Offline,
            Some(13),
            "g3",
            T - 3 * DAY_MS,
            Closed,
            None,
            None,
        ),
        ep(
            8,
            Alarm,
            Some(10),
            "g1",
            T - 20 * DAY_MS,
            Closed,
            Some(MIN),
            Some(H),
        ),
        ep(
            9,
            Alarm,
            Some(10),
            "g1",
            T - 25 * DAY_MS,
            Verified,
            Some(3 * MIN),
            Some(30 * MIN),
        ),
    ]
}

fn devices() -> Vec<DeviceRow> {
    let d = |i: &str, grid: &str, state, offline: Option<u64>| DeviceRow {
        id: i.into(),
        grid: Some(id(grid)),
        site_id: Some(10),
        state,
        offline_since_ms: offline,
        battery_low: None,
        kind: DeviceKind::ElectricalFireMonitor,
        created_ms: 0,
        last_self_test_ms: None,
        self_test_overdue: None,
    };
    use DeviceState::*;
    vec![
        d("a", "g1", InService, None),
        d("b", "g1", InService, Some(T - 30 * H)),
        d("c", "g2", InService, Some(T - 2 * H)),
        d("d", "g3", Commissioned, None),
        d("e", "g3", Registered, Some(T - 9 * DAY_MS)),
        d("f", "g3", InService, Some(T - 3 * DAY_MS)),
        d("g", "g3", Decommissioned, None),
    ]
}

#[test]
fn ages_fall_in_their_buckets() {
    assert_eq!(age_bucket(0), 0);
    assert_eq!(age_bucket(DAY_MS - 1), 0);
    assert_eq!(age_bucket(DAY_MS), 1);
    assert_eq!(age_bucket(7 * DAY_MS), 3);
    assert_eq!(age_bucket(30 * DAY_MS), 4);
    assert_eq!(age_bucket(u64::MAX), 4);
}

#[test]
fn unresolved_hazards_by_age_and_cell() {
    let r = unresolved(&episodes(), &areas(), T, false);
    // Site 10: episodes 1 and 2, one hazard since T−5 d (g1, 3–7 d); site 11: T−40 d (g2,
    // ≥30 d); site 12: episode 4 only (5 is verified), T−10 h (g3, <1 d); episode 6 without a
    // site: T−2 d (g3, 1–3 d). Most hazards first, then by id.
    let rows: Vec<(&str, [u64; 5], u64)> = r
        .rows
        .iter()
        .map(|a| (a.area_id.as_ref().unwrap().as_str(), a.buckets, a.total))
        .collect();
    assert_eq!(
        rows,
        [
            ("g3", [1, 1, 0, 0, 0], 2),
            ("g1", [0, 0, 1, 0, 0], 1),
            ("g2", [0, 0, 0, 0, 1], 1),
        ]
    );
    assert_eq!(r.rows[0].oldest_ms, Some(T - 2 * DAY_MS));
    assert_eq!(r.rows[0].area, "Grid 3");
    assert_eq!(r.rows[1].key_area.as_ref().unwrap().id.as_str(), "s1");
    assert_eq!(r.rows[0].key_area, None);
    // Key area s1: g1 and g2.
    assert_eq!(r.key_areas.len(), 1);
    assert_eq!(r.key_areas[0].buckets, [0, 0, 1, 0, 1]);
    assert_eq!(r.key_areas[0].oldest_ms, Some(T - 40 * DAY_MS));
    assert_eq!((r.total.buckets, r.total.total), ([1, 1, 1, 0, 1], 4));
    // Only key areas: g1 and g2.
    let k = unresolved(&episodes(), &areas(), T, true);
    assert_eq!(k.rows.len(), 2);
    assert_eq!((k.total.buckets, k.total.total), ([0, 0, 1, 0, 1], 2));
}

#[test]
fn repeat_sites_are_ranked() {
    // In [T−30 d, T): site 10 has alarms 1, 8, 9 and smoke 2 (4); site 12 has alarms 4 and 5
    // (2); site 11's alarm is 40 days old; 6 and 7 are not alarm or smoke.
    let r = repeat_sites(&episodes(), &areas(), T, 30, 2, false);
    let got: Vec<(i64, u64, u64, u64)> = r
        .sites
        .iter()
        .map(|s| (s.site_id, s.hazards, s.alarms, s.smoke))
        .collect();
    assert_eq!(got, [(10, 4, 3, 1), (12, 2, 2, 0)]);
    assert_eq!(
        (r.sites[0].first_ms, r.sites[0].last_ms),
        (T - 25 * DAY_MS, T - 2 * H)
    );
    assert_eq!(r.sites[0].area_id.as_str(), "g1");
    assert_eq!(r.key_areas.len(), 1);
    assert_eq!((r.key_areas[0].sites, r.key_areas[0].hazards), (1, 4));
    assert_eq!(r.from_ms, T - 30 * DAY_MS);
    // At least 3: site 10 only; only key areas: site 10 only.
    let ids = |r: RepeatSites| r.sites.iter().map(|s| s.site_id).collect::<Vec<_>>();
    assert_eq!(
        ids(repeat_sites(&episodes(), &areas(), T, 30, 3, false)),
        [10]
    );
    assert_eq!(
        ids(repeat_sites(&episodes(), &areas(), T, 30, 2, true)),
        [10]
    );
    // In 7 days: site 10 has 1 and 2; site 12 only 4.
    assert_eq!(
        ids(repeat_sites(&episodes(), &areas(), T, 7, 2, false)),
        [10]
    );
}

#[test]
fn nearest_rank_percentiles() {
    assert_eq!(Times::of(vec![]), Times::default());
    let t = Times::of(vec![600, 60, 180]);
    assert_eq!(
        (t.n, t.p50_ms, t.p90_ms, t.max_ms),
        (3, Some(180), Some(600), Some(600))
    );
    let t = Times::of((1..=10).collect());
    assert_eq!((t.p50_ms, t.p90_ms, t.max_ms), (Some(5), Some(9), Some(10)));
}

#[test]
fn cells_online_rate_and_response_times() {
    let r = cells(&devices(), &episodes(), &areas(), T, 30, false);
    let ids: Vec<&str> = r
        .rows
        .iter()
        .map(|c| c.area_id.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(ids, ["g1", "g2", "g3"]);
    // g1: devices a, b (b offline); episodes 1, 2, 8, 9: acknowledged after 10, 1, 3 min (1
    // not); rectified after 1 h and 30 min (1 and 2 not).
    let g1 = &r.rows[0];
    assert_eq!((g1.devices, g1.online, g1.online_rate), (2, 1, Some(0.5)));
    assert_eq!(g1.episodes, 4);
    assert_eq!(
        g1.acknowledge,
        Times {
            n: 3,
            p50_ms: Some(3 * MIN),
            p90_ms: Some(10 * MIN),
            max_ms: Some(10 * MIN)
        }
    );
    assert_eq!(g1.unacknowledged, 1);
    assert_eq!(
        g1.rectify,
        Times {
            n: 2,
            p50_ms: Some(30 * MIN),
            p90_ms: Some(H),
            max_ms: Some(H)
        }
    );
    assert_eq!(g1.unrectified, 2);
    // g2: device c, offline; its episode is 40 days old.
    let g2 = &r.rows[1];
    assert_eq!(
        (g2.devices, g2.online, g2.online_rate, g2.episodes),
        (1, 0, Some(0.0), 0)
    );
    // g3: d and f watched (e registered, g decommissioned), f offline; episodes 4, 5, 6 (7 is
    // offline): 5 acknowledged after 5 min and rectified after 2 h.
    let g3 = &r.rows[2];
    assert_eq!((g3.devices, g3.online, g3.episodes), (2, 1, 3));
    assert_eq!(
        (g3.acknowledge.n, g3.acknowledge.p50_ms),
        (1, Some(5 * MIN))
    );
    assert_eq!(
        (g3.unacknowledged, g3.rectify.max_ms, g3.unrectified),
        (2, Some(2 * H), 2)
    );
    // Key area s1 = g1 + g2.
    assert_eq!(r.key_areas.len(), 1);
    let s1 = &r.key_areas[0];
    assert_eq!((s1.devices, s1.online, s1.episodes), (3, 1, 4));
    assert_eq!(s1.acknowledge, g1.acknowledge);
    // Everyone: 5 devices, 2 online; acknowledged after 1, 3, 5, 10 min; rectified after
    // 30 min, 1 h, 2 h.
    let t = &r.total;
    assert_eq!((t.devices, t.online, t.online_rate), (5, 2, Some(0.4)));
    assert_eq!(
        t.acknowledge,
        Times {
            n: 4,
            p50_ms: Some(3 * MIN),
            p90_ms: Some(10 * MIN),
            max_ms: Some(10 * MIN)
        }
    );
    assert_eq!(
        t.rectify,
        Times {
            n: 3,
            p50_ms: Some(H),
            p90_ms: Some(2 * H),
            max_ms: Some(2 * H)
        }
    );
    assert_eq!((t.episodes, t.unacknowledged, t.unrectified), (7, 3, 4));
    // Only key areas: g1 and g2.
    let k = cells(&devices(), &episodes(), &areas(), T, 30, true);
    assert_eq!(k.rows.len(), 2);
    assert_eq!(k.total.devices, 3);
}

#[test]
fn devices_offline_a_day_or_more() {
    // b (30 h) and f (3 d); c only 2 h; e is not watched. The longest offline first.
    let r = visits(&devices(), &areas(), T, DAY_MS, false);
    let got: Vec<(&str, Option<u64>)> = r
        .devices
        .iter()
        .map(|v| (v.device.as_str(), v.offline_since_ms))
        .collect();
    assert_eq!(got, [("f", Some(T - 3 * DAY_MS)), ("b", Some(T - 30 * H))]);
    assert_eq!(r.key_areas.len(), 1);
    assert_eq!(r.key_areas[0].1, 1);
    let k = visits(&devices(), &areas(), T, DAY_MS, true);
    assert_eq!(k.devices.len(), 1);
    assert_eq!(k.devices[0].device, "b");
    // A low battery (once known) needs a visit too, online or not.
    let mut with_battery = devices();
    with_battery[0].battery_low = Some(true);
    let r = visits(&with_battery, &areas(), T, DAY_MS, false);
    assert_eq!(r.devices.last().map(|v| v.device.as_str()), Some("a"));
}

#[test]
fn a_self_test_is_overdue_a_period_and_a_day_after_the_last_result() {
    // Monitors every 30 days, smoke alarms never. a: registered 40 days ago, never tested;
    // b: tested 30 days ago (within the day's grace); d: tested 32 days ago; c: a smoke alarm.
    let mut rows = devices();
    for r in &mut rows {
        r.created_ms = T - 40 * DAY_MS;
    }
    rows[1].last_self_test_ms = Some(T - 30 * DAY_MS);
    rows[3].last_self_test_ms = Some(T - 32 * DAY_MS);
    rows[2].kind = DeviceKind::SmokeAlarm;
    let period = |k| (k == DeviceKind::ElectricalFireMonitor).then_some(30 * DAY_MS);
    let rows = with_self_tests(rows, period, T);
    let got: Vec<(&str, Option<bool>)> = rows
        .iter()
        .take(4)
        .map(|d| (d.id.as_str(), d.self_test_overdue))
        .collect();
    assert_eq!(
        got,
        [
            ("a", Some(true)),
            ("b", Some(false)),
            ("c", None),
            ("d", Some(true))
        ]
    );
    // Overdue needs a visit: d (commissioned, online) is on the devices report for it alone.
    let r = visits(&rows, &areas(), T, DAY_MS, false);
    let d = r
        .devices
        .iter()
        .find(|v| v.device == "d")
        .expect("d listed");
    assert_eq!(
        (d.offline_since_ms, d.self_test_overdue),
        (None, Some(true))
    );
}

#[test]
fn csv_rows_carry_the_same_numbers() {
    let u = csv::unresolved(&unresolved(&episodes(), &areas(), T, false));
    let lines: Vec<&str> = u.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "scope,area_id,area,key_area,lt_1d,1d_3d,3d_7d,7d_30d,ge_30d,total,oldest_ms"
    );
    assert_eq!(
        lines[1],
        format!("cell,g3,\"Grid 3\",,1,1,0,0,0,2,{}", T - 2 * DAY_MS)
    );
    assert_eq!(
        lines[4],
        format!(
            "key_area,s1,\"Street 1\",s1,0,0,1,0,1,2,{}",
            T - 40 * DAY_MS
        )
    );
    assert_eq!(
        lines[5],
        format!("total,,\"\",,1,1,1,0,1,4,{}", T - 40 * DAY_MS)
    );
    let c = csv::cells(&cells(&devices(), &episodes(), &areas(), T, 30, false));
    let g1 = c.split("\r\n").nth(1).unwrap();
    assert_eq!(
        g1,
        "cell,g1,\"Grid 1\",s1,2,1,0.5000,4,3,180000,600000,600000,1,2,1800000,3600000,3600000,2"
    );
    let r = csv::repeat_sites(&repeat_sites(&episodes(), &areas(), T, 30, 2, false));
    assert!(
        r.contains("site,10,\"Site 10\",\"10 Main Rd\",g1,s1,4,3,1,"),
        "{r}"
    );
    let v = csv::visits(&visits(&devices(), &areas(), T, DAY_MS, false));
    assert!(
        v.contains(&format!("device,f,g3,,10,{},,,1\r\n", T - 3 * DAY_MS)),
        "{v}"
    );
    // Every row has as many cells as the header.
    for text in [u, c, r, v] {
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let n = lines.next().unwrap().split(',').count();
        for l in lines {
            assert_eq!(l.split(',').count(), n, "{l}");
        }
    }
}
