//! Replays every input in `protocols/fuzz/regressions/<target>/` through its fuzz target's body.
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
fn decode_json_regressions() {
    assert!(replay("decode_json", firegrid_protocols::fuzzing::json) > 0);
}

#[test]
fn decode_binary_regressions() {
    assert!(replay("decode_binary", firegrid_protocols::fuzzing::binary) > 0);
}

#[test]
fn topic_regressions() {
    assert!(replay("topic", firegrid_protocols::fuzzing::topic) > 0);
}

#[test]
fn regmap_regressions() {
    assert!(replay("regmap", firegrid_protocols::fuzzing::regmap) > 0);
}

#[test]
fn gb26875_regressions() {
    assert!(replay("gb26875", firegrid_protocols::fuzzing::gb26875) > 0);
}
