//! Commissioning through the API: a test asked of a commissioned device (the self-test command
//! to the pipeline, the caller its installer), its answer found in the journal with its times,
//! the signed record issued and verified (and refused once changed), device events, the roster
//! and overdue self-tests, each scoped to the caller's area.

use firegrid_protocols::message::{DeviceTime, Event, EventKind, SelfTestResult};

use super::*;
use crate::commissioning::outcome;
use crate::commissioning::record::verify;
use crate::store::{DeviceFields, NewEvent};

/// What the test watcher does for each open test (its loop is the shell around this).
fn finish_open_tests(store: &Store, delivered_after_ms: u64) {
    for t in store.open_tests().expect("open tests") {
        let events = store
            .events_for_tests(&t.device, t.requested_ms)
            .expect("events");
        if let Some(o) = outcome(&t, &events, t.requested_ms + 1) {
            let delivered = match &o {
                crate::commissioning::Outcome::Answered { received_ms, .. } => {
                    Some(received_ms + delivered_after_ms)
                }
                crate::commissioning::Outcome::TimedOut => None,
            };
            store
                .finish_test(t.id, &o, delivered, t.requested_ms + 1)
                .expect("finished");
        }
    }
}

#[tokio::test]
async fn a_commissioned_device_is_tested_and_certified_by_a_signed_record() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;

    // No answered test yet: no record.
    let a = h
        .call("POST", "/api/v1/devices/hz-1/commissioning-record", None)
        .await;
    assert_eq!(a.status, 409, "{}", a.text);

    let t = h
        .ok(
            "POST",
            "/api/v1/devices/hz-1/tests",
            Some(json!({"kind": "self_test"})),
            202,
        )
        .await;
    assert_eq!(h.control(), Control::Command(did("hz-1"), Action::SelfTest));
    assert_eq!(t["installer"], "admin-li");
    assert_eq!(t["result"], Value::Null);
    let requested = t["requested_ms"].as_u64().expect("requested");

    // The device answers: its self_test event is journaled 40 ms later (device clock 12 ms
    // before that); the installer's topic confirmed 25 ms after.
    h.state
        .store
        .journal_batch(&[JournalOp::Event(NewEvent {
            device: did("hz-1"),
            event: Event {
                seq: 9,
                time: DeviceTime {
                    uptime_ms: 1_000,
                    unix_ms: Some(requested + 28),
                },
                kind: EventKind::SelfTest {
                    result: SelfTestResult::Passed,
                },
            },
            received_ms: requested + 40,
        })])
        .expect("journaled");
    finish_open_tests(&h.state.store, 25);
    let done = h
        .ok(
            "GET",
            &format!("/api/v1/device-tests/{}", t["id"]),
            None,
            200,
        )
        .await;
    assert_eq!(done["result"], "passed", "{done}");
    assert_eq!(done["device_to_gateway_ms"], 12);
    assert_eq!(done["gateway_to_installer_ms"], 25);
    assert_eq!(done["total_ms"], 65);

    // The device's events, newest first, by kind.
    let events = h
        .ok(
            "GET",
            "/api/v1/devices/hz-1/events?kind=self_test",
            None,
            200,
        )
        .await;
    assert_eq!(events[0]["seq"], 9);
    assert_eq!(events[0]["kind"], "self_test");
    assert_eq!(
        h.call("GET", "/api/v1/devices/hz-1/events?kind=DROP%20TABLE", None)
            .await
            .status,
        400
    );
    // A time past what the store keeps is a clear 400, not a 500 (found by schemathesis).
    let a = h
        .call(
            "GET",
            "/api/v1/devices/hz-1/events?before=9223372036854775808",
            None,
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.text
            .contains("before 9223372036854775808 is out of range"),
        "{}",
        a.text
    );

    // The record: signed, verifiable with the served key, refused once changed.
    let a = h
        .call("POST", "/api/v1/devices/hz-1/commissioning-record", None)
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let location = a.headers[header::LOCATION]
        .to_str()
        .expect("a location")
        .to_owned();
    let key = h.ok("GET", "/api/v1/commissioning/key", None, 200).await;
    let key = key["public_key"].as_str().expect("a key");
    let record = verify(a.text.as_bytes(), key).expect("the record verifies");
    assert_eq!(record.device.id, "hz-1");
    assert_eq!(record.installer, "admin-li");
    assert_eq!(record.binding.grid_id.as_deref(), Some("g1"));
    assert_eq!(record.tests.len(), 1);
    assert_eq!(record.tests[0].total_ms, Some(65));
    let downloaded = h.call("GET", &location, None).await;
    assert_eq!(downloaded.text, a.text, "the download is the file issued");
    let changed = a.text.replacen("admin-li", "admin-lj", 1);
    assert!(verify(changed.as_bytes(), key).is_err());

    // A grid worker of another area sees none of it.
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g2", "parent_id": "d1", "level": "grid", "name": "Grid 2"})),
        201,
    )
    .await;
    let other = h.user("zhao", Role::GridWorker, Some("g2"));
    for uri in [
        "/api/v1/devices/hz-1/events",
        "/api/v1/devices/hz-1/tests",
        location.as_str(),
        "/api/v1/roster?area=g1",
    ] {
        let a = h.call_as(&other, "GET", uri, None).await;
        assert_eq!(a.status, 403, "{uri}: {}", a.text);
    }
    let roster = h.call_as(&other, "GET", "/api/v1/roster", None).await;
    assert_eq!(roster.json(), json!([]), "their roster is their area's");
    // Nor may they ask for a test (a grid worker's role does not).
    let a = h
        .call_as(
            &other,
            "POST",
            "/api/v1/devices/hz-1/tests",
            Some(json!({"kind": "button"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
}

#[tokio::test]
async fn the_roster_shows_statuses_and_overdue_self_tests_are_listed() {
    let mut h = harness();
    let site = h.tree().await;
    h.device("hz-1", site).await;
    // A device registered long ago (1970), never self-tested: overdue.
    let old = DeviceFields {
        kind: crate::model::DeviceKind::SmokeAlarm,
        state: crate::model::DeviceState::InService,
        site_id: Some(site),
        room_id: None,
        circuit_id: None,
        grid_id: Some(GridId::new("g1").expect("g1")),
        config: crate::api::device_config::default_config(),
        encoding: crate::store::WireEncoding::Json,
        credential_hash: None,
    };
    h.state
        .store
        .create::<DeviceFields>(did("hz-old"), &old, Actor::new("test", 1))
        .expect("created");
    h.state
        .store
        .record_statuses(&[crate::store::StatusUpdate {
            device: did("hz-1"),
            seen_ms: crate::clock::now_ms(),
            online: Some(true),
            heartbeat: Some(crate::store::HeartbeatFields {
                firmware: "0.2.0".into(),
                signal_dbm: Some(-70),
                battery_mv: Some(2900),
                config_version: 0,
            }),
        }])
        .expect("status");
    let roster = h.ok("GET", "/api/v1/roster?area=g1", None, 200).await;
    let one = roster
        .as_array()
        .and_then(|r| r.iter().find(|d| d["id"] == "hz-1"))
        .cloned()
        .expect("hz-1");
    assert_eq!(one["online"], true);
    assert_eq!(one["firmware"], "0.2.0");
    assert_eq!(one["battery_mv"], 2900);
    assert_eq!(one["signal_dbm"], -70);
    assert_eq!(one["config_in_force"], 0);
    assert_eq!(one["config_wanted"], 1);
    assert_eq!(one["config_current"], false);
    let overdue = h
        .ok("GET", "/api/v1/self-tests/overdue?area=g1", None, 200)
        .await;
    let ids: Vec<&str> = overdue
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["hz-old"], "hz-1 was registered just now: not overdue");
    assert_eq!(overdue[0]["period_days"], 30);
    h.no_control();
}
