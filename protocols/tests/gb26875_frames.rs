//! The real frames other open implementations publish (`tests/data/gb26875-frames.md`, with
//! their sources) decode, re-encode byte for byte, the bad-checksum one is refused and answered
//! with a deny, and a stream of them split at every byte boundary gives exactly the frames.

use firegrid_protocols::gb26875::adu::{self, Adu, Object, Status, kind_name};
use firegrid_protocols::gb26875::frame::{
    self, Address, Command, FrameError, Header, MAX_FRAME, TimeTag,
};
use firegrid_protocols::gb26875::profile::{self, STANDARD};
use firegrid_protocols::gb26875::split::{Piece, Splitter};

struct Vector {
    fence: String,
    name: String,
    expect: String,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/gb26875-frames.md");
    let mut out = Vec::new();
    let mut current: Option<Vector> = None;
    for line in text.lines() {
        if let Some(v) = current.as_mut() {
            if line.starts_with("```") {
                out.push(current.take().expect("inside a block"));
            } else {
                for h in line.split_whitespace() {
                    v.bytes
                        .push(u8::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{h}: {e}")));
                }
            }
        } else if let Some(head) = line.strip_prefix("```") {
            let mut parts = head.split_whitespace();
            if let (Some(fence), Some(name), Some(expect)) =
                (parts.next(), parts.next(), parts.next())
            {
                current = Some(Vector {
                    fence: fence.into(),
                    name: name.into(),
                    expect: expect.into(),
                    bytes: Vec::new(),
                });
            }
        }
    }
    assert!(current.is_none(), "an unclosed block");
    out
}

fn frames(expect: &str) -> Vec<(String, Vec<u8>)> {
    vectors()
        .into_iter()
        .filter(|v| v.fence == "hex" && v.expect == expect)
        .map(|v| (v.name, v.bytes))
        .collect()
}

fn by_name(name: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} in the data file"))
        .bytes
}

#[test]
fn every_good_frame_decodes_and_reencodes_byte_for_byte() {
    let good = frames("ok");
    assert_eq!(good.len(), 4, "F1, F2, F3, F4");
    for (name, bytes) in good {
        let f = frame::decode(&bytes, &STANDARD).unwrap_or_else(|e| panic!("{name}: {e}"));
        if !f.adu.is_empty() {
            let a = Adu::parse(f.adu).unwrap_or_else(|e| panic!("{name}: {e}"));
            // The typed objects encode back to the same ADU.
            let objects: Vec<Object<'_>> = a.objects().collect();
            assert_eq!(objects.len(), usize::from(a.count), "{name}");
            let mut buf = [0u8; 1024];
            let n =
                adu::encode(a.kind, &objects, &mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&buf[..n], f.adu, "{name}: ADU re-encoded");
        }
        let mut out = [0u8; MAX_FRAME];
        let n = frame::encode(&f.header, f.adu, &STANDARD, &mut out).expect("fits");
        assert_eq!(&out[..n], &bytes[..], "{name}: re-encoded");
    }
}

#[test]
fn f1_is_a_fire_alarm_with_its_gb18030_description() {
    let bytes = by_name("F1");
    let f = frame::decode(&bytes, &STANDARD).expect("F1 decodes");
    assert_eq!(f.header.serial, 0);
    assert_eq!(f.header.version, [1, 1]);
    assert_eq!(f.header.time, TimeTag::new(2020, 10, 22, 17, 13, 24));
    assert_eq!(f.header.source, Address::from_u64(0));
    assert_eq!(f.header.destination, Address::from_u64(0x0102_0304_0506));
    assert_eq!(f.header.adu_len, 48);
    assert_eq!(f.header.command, Command::SEND);
    let a = Adu::parse(f.adu).expect("the ADU parses");
    assert_eq!((a.kind, a.count), (2, 1));
    let Some(Object::ComponentStatus {
        system,
        component,
        status,
        description,
        time,
    }) = a.objects().next()
    else {
        panic!("a component status")
    };
    assert_eq!((system.kind, system.address), (1, 3));
    assert_eq!((component.kind, component.address), (0, 0x0006_00D9));
    assert_eq!(status, Status(0x0002));
    assert!(status.has(Status::FIRE) && !status.has(Status::NORMAL));
    assert_eq!(
        adu::trim_description(&description),
        // "Ａ区１层呷哺走廊" in GB18030.
        &[
            0xa3, 0xc1, 0xc7, 0xf8, 0xa3, 0xb1, 0xb2, 0xe3, 0xdf, 0xc8, 0xb2, 0xb8, 0xd7, 0xdf,
            0xc0, 0xc8
        ][..]
    );
    assert_eq!(time, TimeTag::new(2020, 8, 1, 19, 18, 48));
    assert_eq!(kind_name(a.kind), "component_status");
}

#[test]
fn f2_is_an_initialise_request_with_version_00_01() {
    let bytes = by_name("F2");
    let f = frame::decode(&bytes, &STANDARD).expect("F2 decodes");
    assert_eq!(f.header.serial, 1);
    assert_eq!(f.header.version, [0, 1]);
    assert_eq!(f.header.time, TimeTag::new(2021, 7, 2, 9, 0, 5));
    assert_eq!(f.header.source, Address::from_u64(0x0001_0203_0405));
    assert_eq!(f.header.destination, Address::from_u64(0x0607_0809_0A0B));
    assert_eq!(f.header.command, Command::REQUEST);
    let a = Adu::parse(f.adu).expect("the ADU parses");
    assert_eq!(kind_name(a.kind), "init_uitd");
    assert_eq!(
        a.objects().collect::<Vec<_>>(),
        [Object::Reserved { byte: 0 }]
    );
}

#[test]
fn the_bad_checksum_frame_is_refused_and_answered_with_a_deny() {
    let bytes = by_name("F1-bad");
    let err = frame::decode(&bytes, &STANDARD).expect_err("a wrong checksum");
    assert_eq!(
        err,
        FrameError::Checksum {
            header: frame::decode(&by_name("F1"), &STANDARD).expect("F1").header,
            computed: 0x68,
            found: 0x63
        }
    );
    assert_eq!(err.reason(), "checksum");
    // The deny: same serial, addresses swapped, command 6, no ADU.
    let h = err.header().expect("the control unit was readable");
    let deny = h.reply(
        Command::DENY,
        STANDARD.version,
        TimeTag::new(2026, 1, 2, 3, 4, 5),
    );
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode(&deny, &[], &STANDARD, &mut out).expect("fits");
    let d = frame::decode(&out[..n], &STANDARD).expect("the deny decodes");
    assert_eq!(d.header.serial, 0);
    assert_eq!(d.header.command, Command::DENY);
    assert_eq!(d.header.source, Address::from_u64(0x0102_0304_0506));
    assert_eq!(d.header.destination, Address::from_u64(0));
    assert_eq!((n, d.header.adu_len), (30, 0));
    // Not even a lenient profile takes it.
    assert!(frame::decode(&bytes, &profile::SUM_OR_XOR).is_err());
}

#[test]
fn a_confirm_for_f1_keeps_the_serial_and_swaps_the_addresses() {
    let f1 = by_name("F1");
    let h = frame::decode(&f1, &STANDARD).expect("F1").header;
    let c: Header = h.reply(Command::CONFIRM, [1, 1], h.time);
    assert_eq!(c.serial, h.serial);
    assert_eq!((c.source, c.destination), (h.destination, h.source));
    assert_eq!((c.command, c.adu_len), (Command::CONFIRM, 0));
}

#[test]
fn adu_vectors_parse_to_their_values() {
    for v in vectors().into_iter().filter(|v| v.fence == "adu") {
        let a = Adu::parse(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(kind_name(a.kind), v.expect, "{}", v.name);
        let objects: Vec<_> = a.objects().collect();
        let mut buf = [0u8; 1024];
        let n = adu::encode(a.kind, &objects, &mut buf).expect("re-encodes");
        assert_eq!(&buf[..n], &v.bytes[..], "{}", v.name);
        let first = objects[0];
        let t = TimeTag::new(2021, 7, 2, 9, 0, 4);
        match v.name.as_str() {
            "A1" => assert!(
                matches!(first, Object::SystemStatus { system, status: Status(0x0204), time }
                if system.kind == 1 && system.address == 2 && time == t)
            ),
            "A3" => assert!(
                matches!(first, Object::AnalogValue { component, analog: 3, value: 800, time, .. }
                if component.kind == 40 && component.address == 0x0403_0201 && time == t)
            ),
            "A21" => assert!(
                matches!(first, Object::UitdStatus { status: 0x08, extra: &[], time } if time == t)
            ),
            "A24" => assert!(
                matches!(first, Object::UitdOperation { flags: 0x31, operator: 0xfa, time } if time == t)
            ),
            other => panic!("unexpected vector {other}"),
        }
    }
}

/// F1 + F2 + garbage (with a lone `@` and a `##`) + V5's private frame + F3 + F1-bad.
fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
    let expected = vec![
        by_name("F1"),
        by_name("F2"),
        by_name("F3"),
        by_name("F1-bad"),
    ];
    let mut s = Vec::new();
    s.extend(&expected[0]);
    s.extend(&expected[1]);
    s.extend(b"garbage\x23\x23 @ more");
    s.extend(by_name("V5"));
    s.extend(&expected[2]);
    s.extend(&expected[3]);
    (s, expected)
}

fn split(parts: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    let mut sp = Splitter::new(STANDARD);
    let mut out = [0u8; MAX_FRAME];
    let (mut frames, mut skipped) = (Vec::new(), 0);
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let n = sp.push(rest);
            rest = &rest[n..];
            while let Some(p) = sp.next(&mut out) {
                match p {
                    Piece::Frame { len } => frames.push(out[..len].to_vec()),
                    Piece::Skipped { bytes } => skipped += bytes,
                }
            }
        }
    }
    (frames, skipped)
}

#[test]
fn a_stream_cut_at_every_byte_boundary_gives_exactly_the_frames() {
    let (s, expected) = stream();
    let garbage = s.len() - expected.iter().map(Vec::len).sum::<usize>();
    for cut in 0..=s.len() {
        let (frames, skipped) = split(&[&s[..cut], &s[cut..]]);
        assert_eq!(frames, expected, "cut at {cut}");
        assert_eq!(skipped, garbage, "cut at {cut}");
    }
    // Every byte its own read, and everything in one read.
    let singles: Vec<&[u8]> = s.chunks(1).collect();
    assert_eq!(split(&singles).0, expected);
    assert_eq!(split(&[&s]).0, expected);
    // The frames judged: three good, one refused by its checksum.
    let verdicts: Vec<bool> = expected
        .iter()
        .map(|f| frame::decode(f, &STANDARD).is_ok())
        .collect();
    assert_eq!(verdicts, [true, true, true, false]);
}

#[test]
fn a_private_frame_reusing_the_markers_is_not_taken_for_one() {
    let v5 = by_name("V5");
    assert!(frame::decode(&v5, &STANDARD).is_err());
    // Alone, it never becomes a frame; followed by a real one, it is skipped.
    let (frames, _) = split(&[&v5]);
    assert!(frames.is_empty());
    let mut s = v5.clone();
    s.extend(by_name("F2"));
    let (frames, skipped) = split(&[&s]);
    assert_eq!(frames, [by_name("F2")]);
    assert_eq!(skipped, v5.len());
}
