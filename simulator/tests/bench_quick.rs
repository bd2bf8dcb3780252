//! The benchmark's smoke mode (`firegrid-sim bench --quick`) against the debug `firegrid`
//! binary and a real Mosquitto: every number is there and plausible, and every alarm arrived.
//! The numbers themselves (a debug build, a busy test machine) are not judged.

use std::path::{Path, PathBuf};
use std::process::Command;

use firegrid_simulator::bench::{self, BenchArgs};

/// The debug `firegrid` next to this test's directory (`target/debug/`), which `cargo test
/// --workspace` builds; built into a directory of its own when missing (a plain `cargo test -p
/// firegrid-simulator`), so as not to wait on the running cargo's lock.
fn debug_gateway() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/debug/deps/<test>");
    let beside = debug.join("firegrid");
    if beside.is_file() {
        return beside;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = workspace.join("target").join("bench-smoke");
    eprintln!(
        "{} is missing: building it into {}",
        beside.display(),
        target.display()
    );
    let status = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "firegrid-gateway",
            "--bin",
            "firegrid",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building firegrid failed");
    target.join("debug").join("firegrid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_mode_measures_everything_and_loses_no_alarm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bench-results.json");
    let started = std::time::Instant::now();
    let mut results = bench::run(BenchArgs::quick(Some(debug_gateway()), out.clone()))
        .await
        .unwrap_or_else(|e| panic!("the quick benchmark failed: {e}"));
    results.finish();
    let table = results.table();
    println!("{table}\n(took {:?})", started.elapsed());
    results.write(&out).expect("results written");

    assert!(results.machine.cores >= 1);
    assert!(
        results.versions.mosquitto.contains("mosquitto"),
        "{:?}",
        results.versions
    );
    assert_eq!(results.sizes.len(), 1);
    let s = &results.sizes[0];
    assert_eq!(s.devices, 300);
    assert!(s.baseline_per_s > 1000.0, "baseline {}", s.baseline_per_s);
    assert_eq!(s.refused_unknown, 0, "every device reached the pipeline");
    assert!(s.registration.single_post_per_s > 0.0 && s.registration.import_per_s > 0.0);
    assert!(s.memory.idle.rss_kib > 0 && s.memory.active.rss_kib > 0);
    assert!(!s.ingest.steps.is_empty());
    assert!(
        s.ingest.steps[0].ingested_per_s > 0.0,
        "{:?}",
        s.ingest.steps
    );
    assert!(
        s.ingest.steps[0].stored_rows_per_s > 0.0,
        "{:?}",
        s.ingest.steps
    );
    assert_eq!(s.loads.len(), 2);
    for l in &s.loads {
        assert!(l.offered_per_s > 0.0 && l.ingested_per_s > 0.0, "{l:?}");
        assert_eq!(l.alarm.sent, 20);
        assert_eq!(
            l.alarm.received, l.alarm.sent,
            "every alarm's alert arrived: {l:?}"
        );
        assert!(
            l.alarm.p50_ms > 0.0 && l.alarm.p50_ms <= l.alarm.p99_ms,
            "{l:?}"
        );
        let b = l.baseline.as_ref().expect("a two-hop baseline");
        assert_eq!(b.received, b.sent, "every relayed alarm arrived: {b:?}");
        assert!(b.p99_ms > 0.0, "{b:?}");
    }
    assert!(results.goals.iter().any(|g| g.goal.contains("memory")));
    // Issue 12's latency goals are for 10k devices and more: the same numbers as a 10k fleet's,
    // then as one just over each bound, and under them.
    let goal = |r: &bench::BenchResults, what: &str| {
        r.goals
            .iter()
            .find(|g| g.goal.contains(what))
            .map(|g| g.met)
    };
    assert_eq!(goal(&results, "p50 <= 2 ms"), None, "{:?}", results.goals);
    let mut big = results.clone();
    big.sizes[0].devices = 10_000;
    for (l, p99) in big.sizes[0].loads.iter_mut().zip([5.0, 10.0]) {
        (l.alarm.p50_ms, l.alarm.p99_ms) = (2.0, p99);
    }
    big.finish();
    assert_eq!(
        goal(&big, "p99 <= 5 ms, p50 <= 2 ms at 50%"),
        Some(true),
        "{:?}",
        big.goals
    );
    assert_eq!(goal(&big, "p99 <= 10 ms, p50 <= 2 ms at 90%"), Some(true));
    big.sizes[0].loads[0].alarm.p99_ms = 5.01;
    big.sizes[0].loads[1].alarm.p50_ms = 2.01;
    big.finish();
    assert_eq!(goal(&big, "p99 <= 5 ms, p50 <= 2 ms at 50%"), Some(false));
    assert_eq!(goal(&big, "p99 <= 10 ms, p50 <= 2 ms at 90%"), Some(false));
    big.sizes[0].loads[1].alarm.p50_ms = 1.0;
    big.sizes[0].loads[1].alarm.received -= 1;
    big.finish();
    assert_eq!(
        goal(&big, "p99 <= 10 ms, p50 <= 2 ms at 90%"),
        Some(false),
        "an alert lost"
    );
    assert!(table.contains("| 300 |"), "{table}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("JSON written")).expect("JSON");
    assert_eq!(json["machine"]["cores"], results.machine.cores);
    assert!(json["command"].is_string());
    assert!(json["sizes"][0]["loads"][1]["alarm"]["p999_ms"].as_f64() > Some(0.0));
}
