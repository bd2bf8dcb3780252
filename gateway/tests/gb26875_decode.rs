//! `firegrid gb26875 decode HEX` on the real binary: a published frame as JSON, a bad one
//! refused with exit code 2 and the reason.

use std::process::Command;

/// F1 of protocols/tests/data/gb26875-frames.md (GitHub shootingfans/codec_gb26875_3_2011,
/// codec/codec_test.go).
const F1: &str = "40 40 00 00 01 01 18 0d 11 16 0a 14 00 00 00 00 00 00 06 05 04 03 02 01 30 00 02 \
    02 01 01 03 00 d9 00 06 00 02 00 a3 c1 c7 f8 a3 b1 b2 e3 df c8 b2 b8 d7 df c0 c8 \
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 30 12 13 01 08 14 68 23 23";

fn decode(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_firegrid"))
        .args(["gb26875", "decode"])
        .args(args)
        .output()
        .expect("firegrid runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_published_frame_prints_as_json() {
    let (code, out, err) = decode(&[F1]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["command_name"], "send");
    assert_eq!(v["adu"]["type_name"], "component_status");
    assert_eq!(v["adu"]["objects"][0]["description"], "Ａ区１层呷哺走廊");
    assert_eq!(v["adu"]["objects"][0]["status_bits"][0], "fire");
    // Hex split over several arguments is one frame too.
    let parts: Vec<&str> = F1.split_whitespace().collect();
    assert_eq!(decode(&parts).0, 0);
}

#[test]
fn bad_frames_exit_2_with_the_reason() {
    let bad = F1.replace("14 68 23 23", "14 63 23 23");
    let (code, out, err) = decode(&[&bad]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("checksum 0x63 does not match 0x68"), "{err}");
    let (code, _, err) = decode(&["40 40 zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("not hex"), "{err}");
    let (code, _, err) = decode(&["40 40 00 00"]);
    assert_eq!(code, 2);
    assert!(err.contains("too short"), "{err}");
    let (code, _, err) = decode(&["--profile", "nope", F1]);
    assert_eq!(code, 2);
    assert!(err.contains("standard"), "{err}");
}
