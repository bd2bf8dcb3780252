//! Any bytes after the binary header on any device topic: decoding must not panic, and what
//! decodes must re-encode and decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| firegrid_protocols::fuzzing::binary(data));
