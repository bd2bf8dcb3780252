//! The reports, key areas and channel-level circuit binding through the API.

use super::*;

/// Journals an open episode `id` of `device`'s channel 0 raised to `grid`, started at `at_ms`.
fn open_episode(h: &Harness, id: u64, device: &str, grid: &str, at_ms: u64) {
    let output = Output::Opened {
        id,
        key: EpisodeKey {
            device: did(device),
            channel: Some(0),
            category: Category::Alarm,
        },
        grid: GridId::new(grid).expect("grid"),
        source: Source::Device,
        level: None,
        detail: None,
    };
    h.state
        .store
        .journal_batch(&[JournalOp::Engine { output, at_ms }])
        .expect("journal");
}

/// Two cells under d1 (g1 with its key flag, g2), a device and an open alarm in each: the
/// reports count them per cell, `key=1` keeps g1's, a grid worker of g2 sees g2's and gets 403
/// for g1; CSV has the same rows; bad parameters are 400, an unknown report 404.
#[tokio::test]
async fn reports_are_scoped_filtered_by_key_areas_and_exported() {
    let mut h = harness();
    let site1 = h.tree().await;
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g2", "parent_id": "d1", "level": "grid", "name": "Grid 2"})),
        201,
    )
    .await;
    let site2 = h
        .ok(
            "POST",
            "/api/v1/sites",
            Some(json!({"name": "Block 9", "address": "9 Wulin Rd", "area_id": "g2"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    h.device("hz-1", site1).await;
    h.device("hz-2", site2).await;
    h.ok(
        "PUT",
        "/api/v1/devices/hz-2",
        Some(json!({"kind": "electrical_fire_monitor",
                    "site_id": site2, "grid_id": "g2"})),
        200,
    )
    .await;
    let _ = h.control();
    let now = crate::clock::now_ms();
    const DAY: u64 = 86_400_000;
    // g1's alarm is 2 days old, g2's 40 days.
    open_episode(&h, 1, "hz-1", "g1", now - 2 * DAY);
    open_episode(&h, 2, "hz-2", "g2", now - 40 * DAY);
    h.ok("PUT", "/api/v1/areas/g1/key", None, 204).await;
    let keys = h.ok("GET", "/api/v1/key-areas", None, 200).await;
    assert_eq!(
        keys,
        json!([{"id": "g1", "name": "Grid 1", "level": "grid"}])
    );

    let r = h.ok("GET", "/api/v1/reports/unresolved", None, 200).await;
    assert_eq!(r["total"]["buckets"], json!([0, 1, 0, 0, 1]), "{r}");
    assert_eq!(r["rows"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["key_areas"][0]["area_id"], "g1");
    assert_eq!(r["key_areas"][0]["buckets"], json!([0, 1, 0, 0, 0]));
    let k = h
        .ok("GET", "/api/v1/reports/unresolved?key=1", None, 200)
        .await;
    assert_eq!(k["total"]["total"], 1, "{k}");
    assert_eq!(k["rows"][0]["area_id"], "g1");

    // Grid cells: one watched device each, online; each alarm unacknowledged.
    let c = h
        .ok("GET", "/api/v1/reports/grid-cells?days=30", None, 200)
        .await;
    assert_eq!(c["rows"][0]["area_id"], "g1", "{c}");
    assert_eq!(c["rows"][0]["devices"], 1);
    assert_eq!(c["rows"][0]["online_rate"], 1.0);
    assert_eq!(c["rows"][0]["unacknowledged"], 1);
    assert_eq!(
        c["total"]["episodes"], 1,
        "g2's alarm is older than 30 days: {c}"
    );
    let v = h.ok("GET", "/api/v1/reports/devices", None, 200).await;
    assert_eq!(v["devices"], json!([]), "{v}");
    let rs = h
        .ok(
            "GET",
            "/api/v1/reports/repeat-sites?min=1&days=3",
            None,
            200,
        )
        .await;
    assert_eq!(rs["sites"][0]["site_id"], site1, "{rs}");
    assert_eq!(rs["sites"].as_array().map(Vec::len), Some(1));

    // A grid worker of g2: their cell only; g1 is 403.
    let w = h.user("worker-g2", Role::GridWorker, Some("g2"));
    let a = h
        .call_as(&w, "GET", "/api/v1/reports/unresolved", None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["total"]["total"], 1);
    assert_eq!(a.json()["rows"][0]["area_id"], "g2");
    let a = h
        .call_as(&w, "GET", "/api/v1/reports/unresolved?area=g1", None)
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = h.call_as(&w, "PUT", "/api/v1/areas/g2/key", None).await;
    assert_eq!(a.status, 403, "only an admin flags key areas: {}", a.text);

    // CSV: the same rows.
    let a = h.get("/api/v1/reports/unresolved?format=csv&key=1").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/csv; charset=utf-8"[..])
    );
    let lines: Vec<&str> = a.text.split("\r\n").collect();
    assert!(
        lines[0].starts_with("scope,area_id,area,key_area,lt_1d"),
        "{}",
        a.text
    );
    assert!(
        lines[1].starts_with("cell,g1,\"Grid 1\",g1,0,1,0,0,0,1,"),
        "{}",
        a.text
    );

    // Unflagged: key=1 keeps nothing.
    h.ok("DELETE", "/api/v1/areas/g1/key", None, 204).await;
    let k = h
        .ok("GET", "/api/v1/reports/unresolved?key=1", None, 200)
        .await;
    assert_eq!(k["total"]["total"], 0, "{k}");

    for (uri, status) in [
        ("/api/v1/reports/unresolved?days=3", 400),
        ("/api/v1/reports/grid-cells?days=0", 400),
        ("/api/v1/reports/unresolved?key=maybe", 400),
        ("/api/v1/reports/unresolved?format=xml", 400),
        ("/api/v1/reports/unresolved?bogus=1", 400),
        ("/api/v1/reports/nope", 404),
        ("/api/v1/areas/nowhere/key", 404),
    ] {
        let method = if uri.ends_with("/key") { "PUT" } else { "GET" };
        let a = h.call(method, uri, None).await;
        assert_eq!(a.status, status, "{uri}: {}", a.text);
    }

    // A device whose own battery-low episode is open is on the devices report, though online.
    let output = Output::Opened {
        id: 3,
        key: EpisodeKey {
            device: did("hz-1"),
            channel: None,
            category: Category::BatteryLow,
        },
        grid: GridId::new("g1").expect("grid"),
        source: Source::Device,
        level: None,
        detail: None,
    };
    h.state
        .store
        .journal_batch(&[JournalOp::Engine { output, at_ms: now }])
        .expect("journal");
    let v = h.ok("GET", "/api/v1/reports/devices", None, 200).await;
    let listed = v["devices"].as_array().expect("devices");
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["device"], "hz-1", "{v}");
    assert_eq!(listed[0]["battery_low"], true, "{v}");
    assert!(listed[0]["offline_since_ms"].is_null(), "{v}");
    // Monitors have a 30-day self-test schedule by default: registered now, not overdue.
    assert_eq!(listed[0]["self_test_overdue"], false, "{v}");
}

/// A device on circuit A whose temperature channel is bound to circuit B: each circuit's
/// history holds its own channel; B cannot be deleted nor the device moved while bound; unbound,
/// the channel measures A again.
#[tokio::test]
async fn a_channel_bound_to_a_circuit_of_its_own() {
    let mut h = harness();
    let site = h.tree().await;
    let circuit = |name: &str| {
        let body = json!({"site_id": site, "name": name});
        let h = &h;
        async move {
            h.ok("POST", "/api/v1/circuits", Some(body), 201).await["id"]
                .as_i64()
                .expect("id")
        }
    };
    let a = circuit("A").await;
    let b = circuit("B").await;
    h.device("hz-1", site).await;
    h.ok(
        "PUT",
        "/api/v1/devices/hz-1",
        Some(json!({"kind": "electrical_fire_monitor", "site_id": site,
                    "circuit_id": a, "grid_id": "g1"})),
        200,
    )
    .await;
    let _ = h.control();
    // Before any binding of its own, every channel measures the device's circuit.
    let chs = h
        .ok("GET", "/api/v1/devices/hz-1/channels", None, 200)
        .await;
    assert_eq!(chs[0]["circuit_id"], a, "{chs}");
    assert_eq!(chs[1]["circuit_id"], a);
    assert_eq!(chs[1]["own"], false);
    let chs = h
        .ok(
            "PUT",
            "/api/v1/devices/hz-1/channels/1/circuit",
            Some(json!({"circuit_id": b})),
            200,
        )
        .await;
    assert_eq!(chs[1]["circuit_id"], b, "{chs}");
    assert_eq!(chs[1]["own"], true);
    assert_eq!(chs[1]["measures"], "temperature");
    let series = |v: &Value| -> Vec<(String, u64)> {
        v["series"]
            .as_array()
            .expect("series")
            .iter()
            .map(|s| {
                (
                    s["device"].as_str().unwrap_or("").into(),
                    s["ch"].as_u64().unwrap_or(99),
                )
            })
            .collect()
    };
    let ha = h
        .ok("GET", &format!("/api/v1/circuits/{a}/history"), None, 200)
        .await;
    assert_eq!(series(&ha), [("hz-1".to_string(), 0)]);
    let hb = h
        .ok("GET", &format!("/api/v1/circuits/{b}/history"), None, 200)
        .await;
    assert_eq!(series(&hb), [("hz-1".to_string(), 1)]);
    // Bound: B stays, the device stays at its site.
    let r = h
        .call("DELETE", &format!("/api/v1/circuits/{b}"), None)
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("device channels"), "{}", r.text);
    let other = h
        .ok(
            "POST",
            "/api/v1/sites",
            Some(json!({"name": "Other", "address": "1 Other Rd", "area_id": "g1"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let r = h
        .call(
            "PUT",
            "/api/v1/devices/hz-1",
            Some(json!({"kind": "electrical_fire_monitor",
                        "site_id": other, "grid_id": "g1"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("unbind"), "{}", r.text);
    // Refused: a channel the device lacks, a circuit of another site, a utility user of
    // another area.
    let c_other = h
        .ok(
            "POST",
            "/api/v1/circuits",
            Some(json!({"site_id": other, "name": "X"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    for (uri, body, status) in [
        (
            "/api/v1/devices/hz-1/channels/5/circuit",
            json!({"circuit_id": b}),
            422,
        ),
        (
            "/api/v1/devices/hz-1/channels/1/circuit",
            json!({"circuit_id": c_other}),
            422,
        ),
        (
            "/api/v1/devices/hz-1/channels/x/circuit",
            json!({"circuit_id": b}),
            400,
        ),
        (
            "/api/v1/devices/hz-1/channels/1/circuit",
            json!({"circuit": b}),
            422,
        ),
        ("/api/v1/devices/hz-1/channels/1/circuit", json!({}), 422),
        (
            "/api/v1/devices/hz-1/channels/1/circuit",
            json!({"circuit_id": "7"}),
            422,
        ),
        (
            "/api/v1/devices/hz-9/channels/1/circuit",
            json!({"circuit_id": b}),
            404,
        ),
    ] {
        let r = h.call("PUT", uri, Some(body)).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text);
    }
    h.ok(
        "POST",
        "/api/v1/areas",
        Some(json!({"id": "g9", "parent_id": "d1", "level": "grid", "name": "Grid 9"})),
        201,
    )
    .await;
    let u = h.user("utility-wu", Role::Utility, Some("g9"));
    let r = h
        .call_as(
            &u,
            "PUT",
            "/api/v1/devices/hz-1/channels/1/circuit",
            Some(json!({"circuit_id": null})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Unbound: channel 1 measures A again.
    let chs = h
        .ok(
            "PUT",
            "/api/v1/devices/hz-1/channels/1/circuit",
            Some(json!({"circuit_id": null})),
            200,
        )
        .await;
    assert_eq!(
        (chs[1]["circuit_id"].as_i64(), chs[1]["own"].as_bool()),
        (Some(a), Some(false))
    );
    h.ok("DELETE", &format!("/api/v1/circuits/{b}"), None, 204)
        .await;
}
