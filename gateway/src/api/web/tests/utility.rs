//! The utility and report pages over the router: a utility user of cell g1 sees g1's circuit
//! tree (with the channels on each circuit), the ranking, a circuit's plot source and leak
//! trace, the reports; another cell's pages are 403; the exports are the API's CSV.

use super::*;
use crate::store::{AreaFields, AreaLevel, CircuitFields, DeviceFields, SiteFields};
use firegrid_protocols::GridId;
use firegrid_protocols::message::Reading;

fn gid(s: &str) -> GridId {
    GridId::new(s).expect("an id")
}

/// d1 > g1, g2; a site in each; at g1's site a feeder with a branch, device hz-1 on the
/// feeder (channel 0 residual current, channel 1 temperature bound to the branch), readings;
/// at g2's site a circuit with device hz-2. Returns (feeder, branch, g2's circuit).
fn district(w: &Web) -> (i64, i64, i64) {
    let s = &w.state.store;
    let actor = Actor::new("test", 1);
    for (id, parent, level) in [
        ("d1", None, AreaLevel::District),
        ("g1", Some("d1"), AreaLevel::Grid),
        ("g2", Some("d1"), AreaLevel::Grid),
    ] {
        let f = AreaFields {
            parent_id: parent.map(gid),
            level,
            name: format!("Area {id}"),
        };
        s.create::<AreaFields>(gid(id), &f, actor).expect("area");
    }
    let site = |area: &str| {
        let f = SiteFields {
            name: format!("Site in {area}"),
            address: "1 Test Rd".into(),
            owner_name: None,
            owner_phone: None,
            area_id: gid(area),
        };
        s.create::<SiteFields>((), &f, actor).expect("site").id
    };
    let (site1, site2) = (site("g1"), site("g2"));
    let circuit = |site_id: i64, parent: Option<i64>, name: &str| {
        let f = CircuitFields {
            site_id,
            parent_id: parent,
            name: name.into(),
        };
        s.create::<CircuitFields>((), &f, actor)
            .expect("circuit")
            .id
    };
    let feeder = circuit(site1, None, "总进线 feeder");
    let branch = circuit(site1, Some(feeder), "厨房 kitchen");
    let other = circuit(site2, None, "other feeder");
    let device = |id: &str, site: i64, circuit: i64, grid: &str| {
        use firegrid_protocols::message::{ChannelConfig, Config};
        use firegrid_protocols::thresholds::Threshold;
        let mut config = Config {
            version: 1,
            report_interval_s: 60,
            heartbeat_interval_s: 60,
            buzzer: true,
            relay_trip: false,
            channels: Default::default(),
        };
        for (channel, threshold) in [(0, Threshold::ResidualMa(300)), (1, Threshold::TempDc(850))] {
            config
                .channels
                .push(ChannelConfig {
                    channel,
                    enabled: true,
                    threshold,
                    delay_s: 0,
                })
                .expect("room for two channels");
        }
        let f = DeviceFields {
            kind: crate::model::DeviceKind::ElectricalFireMonitor,
            state: crate::model::DeviceState::InService,
            site_id: Some(site),
            room_id: None,
            circuit_id: Some(circuit),
            grid_id: Some(gid(grid)),
            config,
            encoding: crate::store::WireEncoding::Json,
            credential_hash: None,
        };
        let id = firegrid_protocols::DeviceId::new(id).expect("id");
        s.create::<DeviceFields>(id, &f, actor).expect("device");
    };
    device("hz-1", site1, feeder, "g1");
    device("hz-2", site2, other, "g2");
    let hz1 = firegrid_protocols::DeviceId::new("hz-1").expect("id");
    s.bind_channel(&hz1, 1, Some(branch), actor).expect("bound");
    let now = crate::clock::now_ms();
    let samples: Vec<crate::store::Sample> = (0..5u16)
        .map(|i| crate::store::Sample {
            device: hz1.clone(),
            seq: u32::from(i),
            ts_ms: now - 600_000 + u64::from(i) * 60_000,
            readings: vec![Reading {
                channel: 0,
                residual_ma: Some(100 + u32::from(i)),
                ..Reading::default()
            }],
        })
        .collect();
    s.insert_readings(&samples).expect("readings");
    (feeder, branch, other)
}

#[tokio::test]
async fn a_utility_user_sees_their_circuits_and_reports_and_not_another_cells() {
    let w = web();
    let (feeder, branch, other) = district(&w);
    let (_, t) = w
        .state
        .store
        .add_user(
            "utility-wu",
            Role::Utility,
            Some(&gid("g1")),
            Actor::new("test", 1),
        )
        .expect("user");
    let session = w.login(t.token.expose()).await.expect("logged in");

    let page = w.get("/utility", &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("回路树"), "zh-CN first");
    assert!(page.text.contains("总进线 feeder") && page.text.contains("厨房 kitchen"));
    assert!(
        !page.text.contains("other feeder"),
        "g2's circuit is not shown"
    );
    // Channel 0 measures the feeder (the device's binding), channel 1 the kitchen (its own).
    assert!(
        page.text.contains("/devices/hz-1/trend?ch=0"),
        "{}",
        page.text
    );
    assert!(page.text.contains("/devices/hz-1/trend?ch=1"));
    assert!(page.text.contains(&format!("data-circuit=\"{feeder}\"")));
    assert!(
        page.text
            .contains("/circuit-ranking?area=g1&amp;days=30&amp;format=csv")
    );

    let page = w.get(&format!("/circuits/{feeder}"), &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text
            .contains(&format!("data-src=\"/circuits/{feeder}/history?from="))
    );
    assert!(page.text.contains("id=\"leak-trace\""));
    // 100..104 mA on the feeder, nothing measures the kitchen's residual current: the feeder's
    // own segment (102 mA unexplained) above the 30 mA floor.
    assert!(page.text.contains("p class=\"suspect\""), "{}", page.text);
    assert!(page.text.contains("102.0"), "{}", page.text);
    let page = w.get(&format!("/circuits/{branch}"), &session).await;
    assert!(
        page.text.contains("无法追踪"),
        "the kitchen is not measured: {}",
        page.text
    );

    let csv = w
        .get(
            &format!("/circuits/{feeder}/history?step=raw&format=csv"),
            &session,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text.starts_with("device,ch,t_ms"), "{}", csv.text);
    assert_eq!(csv.text.matches("\r\nhz-1,0,").count(), 5, "{}", csv.text);
    let ranking = w.get("/circuit-ranking?area=g1&format=csv", &session).await;
    assert_eq!(ranking.status, StatusCode::OK, "{}", ranking.text);
    assert!(ranking.text.contains("总进线 feeder"));

    let page = w.get("/reports", &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for id in [
        "report-unresolved",
        "report-repeat-sites",
        "report-grid-cells",
        "report-devices",
    ] {
        assert!(page.text.contains(id), "{id}");
    }
    assert!(page.text.contains("/reports/unresolved?format=csv"));
    let csv = w.get("/reports/grid-cells?format=csv", &session).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text.contains("\r\ncell,g1,\"Area g1\",,1,1,1.0000,"),
        "{}",
        csv.text
    );
    assert!(!csv.text.contains("g2"), "{}", csv.text);

    // Another cell's pages.
    for uri in [
        "/utility?area=g2".to_string(),
        format!("/circuits/{other}"),
        format!("/circuits/{other}/history"),
        "/reports?area=g2".to_string(),
        "/reports/unresolved?area=g2&format=csv".to_string(),
    ] {
        let a = w.get(&uri, &session).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{uri}: {}", a.text);
    }
}
