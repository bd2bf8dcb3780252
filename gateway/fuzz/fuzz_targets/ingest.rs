//! Any topic and payload through ingest classification: a typed refusal or a message of the
//! topic's device that round-trips, never a panic (`firegrid_gateway::fuzzing::ingest`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_gateway::fuzzing::ingest(data));
