//! Any bytes as a GB/T 26875.3 frame, an ADU, and a TCP stream through the splitter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_protocols::fuzzing::gb26875(data));
