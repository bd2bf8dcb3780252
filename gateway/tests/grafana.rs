//! The provisioned Grafana dashboard (`deploy/grafana/`) against a real VictoriaMetrics: its
//! structure (unique panel ids, every query on the provisioned data source) and every panel's
//! and variable's query, run on data the real `firegrid` binary wrote — readings through its
//! TSDB writer, its own `/metrics` scraped and imported the way vmagent or Prometheus
//! would. A query with a typo, a renamed metric or a label the gateway does not write fails.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use firegrid_testkit::{Broker, GatewayConfig, Mosquitto, VictoriaMetrics, free_port};
use serde_json::{Value, json};

use support::{Binary, Mqtt, now_ms};

const WAIT: Duration = Duration::from_secs(30);

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana")
}

fn dashboard() -> Value {
    let path = grafana_dir().join("dashboards/firegrid.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The uid the provisioning file gives the data source.
fn provisioned_uid() -> String {
    let text =
        std::fs::read_to_string(grafana_dir().join("provisioning/datasources/firegrid.yaml"))
            .unwrap();
    let uids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uid:"))
        .map(str::trim)
        .collect();
    assert_eq!(uids.len(), 1, "one data source: {uids:?}");
    uids[0].to_string()
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// A panel query as Grafana sends it, its variables filled in: every grid cell and circuit
/// (the variables' "All", `.*`), a 5-minute interval.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "5m")
        .replace("$__range", "1h")
        .replace("$grid", ".*")
        .replace("$circuit", ".*")
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    let uid = provisioned_uid();
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        let id = p["id"].as_u64().expect("a panel id");
        assert!(ids.insert(id), "panel id {id} used twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(x + w <= 24 && g["h"].as_u64() > Some(0), "panel {id}: {g}");
        if p["type"] == "row" {
            continue;
        }
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "panel {id}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {id} queries something");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], uid.as_str(), "panel {id}: {t}");
            assert!(t["expr"].as_str().is_some_and(|e| e.contains("firegrid_")));
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        assert_eq!(
            v["datasource"]["uid"],
            uid.as_str(),
            "variable {}",
            v["name"]
        );
    }
}

/// One telemetry message of `hz-0001`: residual current on channel 0, temperature on 1.
fn telemetry(seq: u64, ts: u64) -> String {
    json!({"seq": seq, "ts": ts, "up_ms": 1000, "readings": [
        {"ch": 0, "residual_ma": 40 + seq},
        {"ch": 1, "temp_dc": 300 + seq}
    ]})
    .to_string()
}

/// `/metrics` text with every sample stamped `at_ms` (Prometheus text with timestamps, what
/// VictoriaMetrics' `/api/v1/import/prometheus` takes).
fn stamped(metrics: &str, at_ms: u64) -> String {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{l} {at_ms}\n"))
        .collect()
}

async fn query(http: &reqwest::Client, vm: &str, expr: &str, at_s: u64) -> Value {
    let r = http
        .get(format!("{vm}/api/v1/query"))
        .query(&[("query", expr), ("time", &at_s.to_string())])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        status.is_success() && body["status"] == "success",
        "{expr}: {status} {body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_and_variable_query_runs_on_what_the_gateway_writes() {
    support::init_logs();
    let vm = VictoriaMetrics::start()
        .await
        .expect("victoria-metrics starts");
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        GatewayConfig::new(&dir.path().join("data"), Broker::External(mosquitto.addr()));
    config
        .set("broker.client_id", "firegrid-e2e-grafana")
        .set("api.listen", format!("127.0.0.1:{}", free_port()))
        .set("tsdb.enabled", true)
        .set("tsdb.url", vm.url())
        .set("tsdb.flush_interval_ms", 20);
    let mut gw = Binary::launch(config, dir.path()).await;
    let site = gw.api.create_district().await;
    let circuit = gw
        .api
        .post(
            "/api/v1/circuits",
            json!({"site_id": site, "name": "Room 101 sockets"}),
        )
        .await;
    gw.api.install_device("hz-0001", site).await;
    gw.api
        .put(
            "/api/v1/devices/hz-0001",
            json!({"kind": "electrical_fire_monitor", "site_id": site, "grid_id": "grid-7",
                   "circuit_id": circuit["id"]}),
        )
        .await;

    // Readings through the gateway's TSDB writer, and its metrics scraped four times, 15 s
    // apart in sample time, as a scraper would (VictoriaMetrics' rate wants more than two).
    let device = Mqtt::connect(mosquitto.addr(), "e2e-hz-0001").await;
    let now = now_ms();
    for s in 0..20 {
        device
            .publish(
                "firegrid/v1/dev/hz-0001/telemetry",
                telemetry(s, now - 20_000 + s * 1000),
            )
            .await;
    }
    vm.export_until("firegrid_(residual_ma|temp_dc)", WAIT, |s| {
        firegrid_testkit::point_count(s) >= 40
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let mut scrapes = Vec::new();
    for at in [now - 45_000, now - 30_000, now - 15_000, now] {
        scrapes.push((gw.api.metrics().await, at));
    }
    for (text, at) in scrapes {
        let r = http
            .post(format!("{}/api/v1/import/prometheus", vm.url()))
            .query(&[("extra_label", "job=firegrid")])
            .body(stamped(&text, at))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "import: {}", r.status());
    }
    http.get(format!("{}/internal/force_flush", vm.url()))
        .send()
        .await
        .unwrap();

    let d = dashboard();
    // Just after the second scrape (a query at a second truncated below it would miss it).
    let at_s = now / 1000 + 1;
    // The variables: Grafana's label_values(SELECTOR, LABEL), as the label API answers it.
    for v in d["templating"]["list"].as_array().unwrap() {
        let q = v["query"]["query"].as_str().unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("a label_values query: {q}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let text = http
            .get(format!("{}/api/v1/label/{}/values", vm.url(), label.trim()))
            .query(&[("match[]", expand(selector.trim()))])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        let values = body["data"].as_array().cloned().unwrap_or_default();
        assert!(
            !values.is_empty(),
            "variable {}: {q} gives nothing",
            v["name"]
        );
    }
    // Every panel query runs; those over data this run certainly wrote return some.
    let must_have_data = [
        "Residual current",
        "Conductor temperature",
        "Devices reporting",
        "Messages in",
        "Queues",
        "Disk free",
        "Devices known",
        "TSDB spool",
    ];
    let mut ran = 0;
    for p in panels(&d).into_iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        let mut results = 0;
        for t in p["targets"].as_array().unwrap() {
            let expr = expand(t["expr"].as_str().unwrap());
            let body = query(&http, &vm.url(), &expr, at_s).await;
            results += body["data"]["result"].as_array().map_or(0, Vec::len);
            ran += 1;
        }
        if must_have_data.iter().any(|m| title.contains(m)) {
            assert!(results > 0, "panel {title:?} shows nothing");
        }
    }
    assert!(ran >= 20, "{ran} queries");
    // The circuit's readings carry its id: the circuit variable can select it.
    let by_circuit = query(
        &http,
        &vm.url(),
        &format!("firegrid_residual_ma{{circuit=\"{}\"}}", circuit["id"]),
        at_s,
    )
    .await;
    assert!(
        !by_circuit["data"]["result"].as_array().unwrap().is_empty(),
        "{by_circuit}"
    );
    gw.interrupt().await;
}
