//! Replays every input in `gateway/fuzz/regressions/<target>/` through its fuzz target's body
//! (`firegrid_gateway::fuzzing`).
//!
//! When `cargo fuzz` finds a crash, copy the input there (named after the bug), fix the bug,
//! and this test keeps it fixed — on stable, in the ordinary test run.

use std::fs;
use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = fs::read(&path).expect("readable regression input");
        body(&data);
        count += 1;
    }
    count
}

#[test]
fn ingest_regressions() {
    assert!(replay("ingest", firegrid_gateway::fuzzing::ingest) > 0);
}

#[test]
fn config_regressions() {
    assert!(replay("config", firegrid_gateway::fuzzing::config) > 0);
}
