//! Any text as a topic name: parsing must not panic, and what parses must format back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_protocols::fuzzing::topic(data));
