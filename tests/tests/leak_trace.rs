//! Leak tracing on the real binaries (docs/utility.md): a site whose supply has a feeder
//! monitor above its rooms' monitors (the simulator's `feeders`), devices running the real
//! firmware and sensing through the real residual-current driver, insulation failing in one
//! room. `GET /api/v1/circuits/{feeder}/leak-trace` names that room's circuit.

use std::time::Instant;

use firegrid_e2e::{BrokerSetup, Gateway, Sim, WAIT};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_tracing_names_the_leaking_branch_of_a_simulated_feeder() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gateway = Gateway::start(dir.path(), BrokerSetup::Managed, "").await;
    let scenario = r#"name = "leak tracing"

[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 5
base_leakage_ma = [3, 8]

[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 3
smoke_alarms = false
feeders = true

# Room 2's insulation fails: 150 mA from the start (below the 300 mA set-point: no alarm,
# only a leak to find).
[[incident]]
what = "leakage_creep"
at_s = 0
room = "a-1-1-2"
ma_per_min = 1e6
max_ma = 150
"#;
    let mut sim = Sim::start(dir.path(), scenario, &gateway, &[]);
    sim.until_connected(4, WAIT).await;

    let circuits = gateway.get("circuits").await;
    let id_of = |name: &str| {
        circuits
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .unwrap_or_else(|| panic!("circuit {name:?} in {circuits}"))
    };
    let feeder = id_of("Feeder a-1-1");
    let leaking = id_of("Circuit a-1-1-2");

    // Polled until every circuit has readings (the trace's evidence lists each measured one).
    let started = Instant::now();
    let trace = loop {
        let answer = gateway.get(&format!("circuits/{feeder}/leak-trace")).await;
        let t = answer["trace"].clone();
        if t["evidence"].as_array().map_or(0, Vec::len) == 4 {
            break t;
        }
        assert!(
            started.elapsed() < WAIT,
            "every circuit measured within {WAIT:?}: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let suspect = &trace["suspect"];
    assert_eq!(suspect["circuit_id"], leaking, "{trace}");
    assert_eq!(suspect["place"], "branch", "{trace}");
    let unexplained = suspect["unexplained_ma"].as_f64().unwrap_or(0.0);
    assert!(
        (130.0..=175.0).contains(&unexplained),
        "about 150 mA plus the room's own background: {trace}"
    );
    let feeder_row: &Value = trace["evidence"]
        .as_array()
        .and_then(|e| e.iter().find(|r| r["circuit_id"] == feeder))
        .expect("the feeder's row");
    assert!(
        feeder_row["unexplained_ma"].as_f64().unwrap_or(f64::MAX) < 30.0,
        "the feeder's own wiring leaks only its background: {feeder_row}"
    );
    assert!(
        sim.process.interrupt().await,
        "firegrid-sim stops on Ctrl-C"
    );
}
