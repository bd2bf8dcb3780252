//! Any register words for any register of the built-in Modbus profile: decoding must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_protocols::fuzzing::regmap(data));
