//! Any text through the configuration parser: a configuration or a `ConfigError`, never a
//! panic (`firegrid_gateway::fuzzing::config`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_gateway::fuzzing::config(data));
