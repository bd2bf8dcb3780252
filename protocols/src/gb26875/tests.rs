//! Property tests of the GB/T 26875.3 codec: round trips of frames and typed objects, total
//! decoding, and the splitter against random cuts and garbage.

use proptest::prelude::*;
use std::vec::Vec;

use super::adu::{self, Adu, Component, DESCRIPTION_LEN, Object, Status, System};
use super::frame::{self, Address, Command, Header, MAX_ADU, MAX_FRAME, TimeTag};
use super::profile::{ALL, STANDARD};
use super::split::{Piece, Splitter};

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u16>(),
        any::<[u8; 2]>(),
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        any::<u8>(),
    )
        .prop_map(|(serial, version, t, s, d, c)| Header {
            serial,
            version,
            time: TimeTag(t),
            source: Address(s),
            destination: Address(d),
            adu_len: 0,
            command: Command(c),
        })
}

fn encoded(h: &Header, adu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode(h, adu, &STANDARD, &mut out).unwrap();
    out[..n].to_vec()
}

fn system() -> impl Strategy<Value = System> {
    any::<[u8; 2]>().prop_map(|[kind, address]| System { kind, address })
}

fn component() -> impl Strategy<Value = Component> {
    (any::<u8>(), any::<u32>()).prop_map(|(kind, address)| Component { kind, address })
}

/// A type-2 or type-3 ADU's objects (what the uplink sends).
fn uplink_objects() -> impl Strategy<Value = (u8, Vec<Object<'static>>)> {
    let status = (
        system(),
        component(),
        any::<u16>(),
        any::<[u8; DESCRIPTION_LEN]>(),
        any::<[u8; 6]>(),
    )
        .prop_map(
            |(system, component, s, description, t)| Object::ComponentStatus {
                system,
                component,
                status: Status(s),
                description,
                time: TimeTag(t),
            },
        );
    let analog = (
        system(),
        component(),
        any::<u8>(),
        any::<i16>(),
        any::<[u8; 6]>(),
    )
        .prop_map(
            |(system, component, analog, value, t)| Object::AnalogValue {
                system,
                component,
                analog,
                value,
                time: TimeTag(t),
            },
        );
    prop_oneof![
        prop::collection::vec(status, 0..=22).prop_map(|v| (2, v)),
        prop::collection::vec(analog, 0..=63).prop_map(|v| (3, v)),
    ]
}

proptest! {
    #[test]
    fn any_frame_round_trips(h in header(), adu in prop::collection::vec(any::<u8>(), 0..=MAX_ADU)) {
        for p in ALL {
            let mut out = [0u8; MAX_FRAME];
            let n = frame::encode(&h, &adu, &p, &mut out).unwrap();
            let f = frame::decode(&out[..n], &p).unwrap();
            prop_assert_eq!(f.adu, &adu[..]);
            prop_assert_eq!(f.header, Header { adu_len: u16::try_from(adu.len()).unwrap(), ..h });
        }
    }

    #[test]
    fn a_flipped_byte_is_never_a_silent_change(h in header(), adu in prop::collection::vec(any::<u8>(), 0..64), at in any::<prop::sample::Index>(), flip in 1u8..) {
        let mut f = encoded(&h, &adu);
        let i = at.index(f.len());
        f[i] ^= flip;
        // One changed byte anywhere: a framing or checksum error, never a different frame.
        prop_assert!(frame::decode(&f, &STANDARD).is_err());
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        for p in ALL {
            let _ = frame::decode(&bytes, &p);
        }
        if let Ok(a) = Adu::parse(&bytes) {
            let objects: Vec<_> = a.objects().collect();
            let mut out = [0u8; MAX_ADU];
            let n = adu::encode(a.kind, &objects, &mut out).unwrap();
            prop_assert_eq!(&out[..n], &bytes[..]);
        }
    }

    #[test]
    fn typed_objects_round_trip((kind, objects) in uplink_objects()) {
        let mut out = [0u8; MAX_ADU];
        let n = adu::encode(kind, &objects, &mut out).unwrap();
        let a = Adu::parse(&out[..n]).unwrap();
        prop_assert_eq!(a.objects().collect::<Vec<_>>(), objects);
    }

    #[test]
    fn the_splitter_finds_every_frame_through_garbage_and_any_cuts(
        frames in prop::collection::vec((header(), prop::collection::vec(any::<u8>(), 0..200)), 1..6),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no @", |b| *b != b'@'), 0..40), 6),
        cuts in prop::collection::vec(1usize..300, 1..20),
    ) {
        let expected: Vec<Vec<u8>> = frames.iter().map(|(h, a)| encoded(h, a)).collect();
        let mut stream = Vec::new();
        for (f, g) in expected.iter().zip(&garbage) {
            stream.extend(g);
            stream.extend(f);
        }
        let mut s = Splitter::new(STANDARD);
        let mut out = [0u8; MAX_FRAME];
        let mut got = Vec::new();
        let mut rest = &stream[..];
        for c in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let take = (*c).min(rest.len());
            let n = s.push(&rest[..take]);
            rest = &rest[n..];
            while let Some(p) = s.next(&mut out) {
                if let Piece::Frame { len } = p {
                    got.push(out[..len].to_vec());
                }
            }
        }
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn time_tags_say_whether_they_are_dates() {
    let t = TimeTag::new(2026, 12, 5, 23, 59, 58);
    assert_eq!(t.0, [58, 59, 23, 5, 12, 26]);
    assert!(t.is_valid());
    assert_eq!(std::format!("{t}"), "2026-12-05 23:59:58");
    assert!(!TimeTag([0; 6]).is_valid());
    assert!(
        !TimeTag([0x59, 0x59, 0x23, 0x31, 0x12, 0x26]).is_valid(),
        "BCD"
    );
}

#[test]
fn addresses_are_little_endian() {
    let a = Address::from_u64(0x0102_0304_0506);
    assert_eq!(a.0, [6, 5, 4, 3, 2, 1]);
    assert_eq!(a.to_u64(), 0x0102_0304_0506);
}

#[test]
fn limits_are_enforced() {
    // 23 type-2 objects: the standard allows 22.
    let mut bytes = std::vec![2u8, 23];
    bytes.extend(std::iter::repeat_n(0u8, 23 * 46));
    assert!(matches!(
        Adu::parse(&bytes),
        Err(adu::AduError::TooManyObjects { max: 22, .. })
    ));
    // A type-3 object one byte short.
    assert!(matches!(
        Adu::parse(&[3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(adu::AduError::ObjectSize { .. })
    ));
    // A 1025-byte ADU does not encode.
    let h = Header {
        serial: 0,
        version: [1, 1],
        time: TimeTag::default(),
        source: Address::default(),
        destination: Address::default(),
        adu_len: 0,
        command: Command::SEND,
    };
    let mut out = [0u8; MAX_FRAME + 1];
    assert!(frame::encode(&h, &[0u8; MAX_ADU + 1], &STANDARD, &mut out).is_err());
}

#[test]
fn type_21_objects_of_13_bytes_keep_their_extra_bytes() {
    let bytes = [21u8, 1, 0x21, 1, 2, 3, 4, 5, 6, 4, 0, 9, 2, 7, 21];
    let a = Adu::parse(&bytes).unwrap();
    let objects: Vec<_> = a.objects().collect();
    assert_eq!(
        objects,
        [Object::UitdStatus {
            status: 0x21,
            extra: &[1, 2, 3, 4, 5, 6],
            time: TimeTag([4, 0, 9, 2, 7, 21]),
        }]
    );
    // Shorter than status and time tag.
    assert!(matches!(
        Adu::parse(&bytes[..8]),
        Err(adu::AduError::ObjectSize { .. })
    ));
}

#[test]
fn xor_and_lenient_profiles() {
    use super::profile::{ChecksumRule, Profile, SUM_OR_XOR};
    let xor = Profile {
        name: "xor",
        checksum: ChecksumRule::Xor,
        ..STANDARD
    };
    let h = Header {
        serial: 9,
        version: [1, 0],
        time: TimeTag::new(2026, 1, 1, 0, 0, 0),
        source: Address::from_u64(1),
        destination: Address::from_u64(2),
        adu_len: 0,
        command: Command::SEND,
    };
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode(&h, &[21, 1, 1, 0, 0, 0, 1, 1, 26], &xor, &mut out).unwrap();
    assert!(frame::decode(&out[..n], &STANDARD).is_err());
    assert!(frame::decode(&out[..n], &SUM_OR_XOR).is_ok());
    assert_eq!(Profile::by_name("sum-or-xor"), Ok(SUM_OR_XOR));
    assert!(Profile::by_name("nope").is_err());
}
