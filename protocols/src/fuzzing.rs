//! The bodies of the fuzz targets in `protocols/fuzz`, kept here so that the inputs the fuzzer
//! found are replayed by an ordinary test (`tests/fuzz_regressions.rs`) without nightly.
//!
//! Each body checks the invariants with `assert!`: a panic here is a finding.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use crate::codec::{self, BINARY_MARKER, BINARY_VERSION, Encoding, MAX_PAYLOAD};
use crate::topic::{DeviceTopic, Topic};

/// The first byte picks the topic kind, the rest is a JSON payload.
pub fn json(data: &[u8]) {
    let Some((&k, payload)) = data.split_first() else {
        return;
    };
    decode_reencode(kind(k), payload);
}

/// The first byte picks the topic kind, the rest follows the binary header.
pub fn binary(data: &[u8]) {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let mut payload = [0u8; MAX_PAYLOAD];
    let n = body.len().min(MAX_PAYLOAD - 2);
    payload[0] = BINARY_MARKER;
    payload[1] = BINARY_VERSION;
    payload[2..2 + n].copy_from_slice(&body[..n]);
    decode_reencode(kind(k), &payload[..2 + n]);
}

/// Any bytes as a topic name.
pub fn topic(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Topic::parse(s) {
        assert_eq!(
            t.to_heapless().as_str(),
            s,
            "a parsed topic formats back to itself"
        );
    }
}

fn kind(k: u8) -> DeviceTopic {
    DeviceTopic::ALL[usize::from(k) % DeviceTopic::ALL.len()]
}

fn decode_reencode(kind: DeviceTopic, payload: &[u8]) {
    let Ok(msg) = codec::decode(kind, payload) else {
        return;
    };
    for enc in [Encoding::Json, Encoding::Binary] {
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = codec::encode(&msg, enc, &mut buf).expect("a decoded message re-encodes");
        let again = codec::decode(kind, &buf[..n]).expect("a re-encoded message decodes");
        assert_eq!(again, msg, "{enc:?} round trip");
    }
}

/// The first byte picks a register of the built-in Modbus profile, the rest are its words
/// (big-endian pairs): decoding must not panic, and a decoded value re-encodes to the same
/// words whenever the scale is exact.
pub fn regmap(data: &[u8]) {
    use crate::regmap::TYPICAL_RCM_TEMP;
    let Some((&r, rest)) = data.split_first() else {
        return;
    };
    let registers = TYPICAL_RCM_TEMP.registers;
    let reg = &registers[usize::from(r) % registers.len()];
    let mut words = [0u16; 4];
    let n = (rest.len() / 2).min(words.len());
    for (w, pair) in words.iter_mut().zip(rest.chunks_exact(2)).take(n) {
        *w = u16::from_be_bytes([pair[0], pair[1]]);
    }
    if let Ok(value) = reg.decode(&words[..n])
        && reg.scale.div == 1
        && reg.scale.mul == 1
    {
        let raw = reg.encode(value).expect("a decoded value re-encodes");
        assert_eq!(
            raw.as_slice(),
            &words[..raw.len()],
            "register 0x{:04x}",
            reg.address
        );
    }
}
