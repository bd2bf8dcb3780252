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

/// Any bytes as a GB/T 26875.3 frame, and as a TCP stream through the splitter (the first byte
/// picks the read size): nothing panics, a decoded frame re-encodes to the same bytes, a parsed
/// ADU re-encodes from its objects to the same bytes, and every piece the splitter gives out
/// has the framing right.
pub fn gb26875(data: &[u8]) {
    use crate::gb26875::adu::{self, Adu};
    use crate::gb26875::frame::{self, END, MAX_FRAME, MIN_FRAME, START};
    use crate::gb26875::profile::{ALL, STANDARD};
    use crate::gb26875::split::{Piece, Splitter};

    for p in ALL {
        let _ = frame::decode(data, &p);
    }
    if let Ok(f) = frame::decode(data, &STANDARD) {
        let mut out = [0u8; MAX_FRAME];
        let n = frame::encode(&f.header, f.adu, &STANDARD, &mut out).expect("a frame re-encodes");
        assert_eq!(&out[..n], data, "frame round trip");
    }
    // The bytes as an ADU too (the fuzzer finds ADUs faster without a frame around them).
    for candidate in [
        data,
        data.get(27..data.len().saturating_sub(3))
            .unwrap_or_default(),
    ] {
        if let Ok(a) = Adu::parse(candidate) {
            let objects: heapless::Vec<_, 256> = a.objects().collect();
            let mut out = [0u8; 1024];
            let n = adu::encode(a.kind, &objects, &mut out).expect("a parsed ADU re-encodes");
            assert_eq!(&out[..n], candidate, "ADU round trip");
        }
    }
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let mut s = Splitter::new(STANDARD);
    let mut out = [0u8; MAX_FRAME];
    let mut given = 0usize;
    for chunk in stream.chunks(usize::from(step).max(1)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = s.push(rest);
            rest = &rest[n..];
            let mut drained = false;
            while let Some(p) = s.next(&mut out) {
                drained = true;
                match p {
                    Piece::Frame { len } => {
                        let f = &out[..len];
                        assert!(len >= MIN_FRAME && f.starts_with(&START) && f.ends_with(&END));
                        assert_eq!(usize::from(u16::from_le_bytes([f[24], f[25]])) + 30, len);
                        given += len;
                    }
                    Piece::Skipped { bytes } => given += bytes,
                }
            }
            assert!(n > 0 || drained, "a full splitter gives something out");
        }
    }
    assert_eq!(
        given + s.buffered(),
        stream.len(),
        "every byte accounted for"
    );
}
