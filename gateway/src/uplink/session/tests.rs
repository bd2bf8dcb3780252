//! The session core with explicit time: send/confirm, retransmission, link faults, denies, the
//! centre's commands and reads.

use firegrid_protocols::gb26875::adu::{self, Adu, Component, Object, Status, System, uitd};
use firegrid_protocols::gb26875::frame::{self, Address, Command, Header, MAX_FRAME, TimeTag};
use firegrid_protocols::gb26875::profile::STANDARD;

use super::*;

const T0: UnixMs = 1_764_979_200_000; // 2025-12-06 08:00:00 in China
const CENTRE: u64 = 0x0000_0001_5B38;
const OWN: u64 = 0x0000_0000_0379;

fn cfg() -> SessionConfig {
    SessionConfig {
        profile: STANDARD,
        own: Address::from_u64(OWN),
        centre: Address::from_u64(CENTRE),
        utc_offset_min: 480,
        confirm_timeout_ms: 10_000,
        tries: 3,
        heartbeat_ms: 30_000,
        system: System {
            kind: 1,
            address: 1,
        },
        version: (0, 1),
    }
}

fn alarm_adu(address: u32, status: u16) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = adu::encode(
        2,
        &[Object::ComponentStatus {
            system: System {
                kind: 1,
                address: 1,
            },
            component: Component { kind: 17, address },
            status: Status(status),
            description: adu::description(b"hz-1"),
            time: TimeTag::new(2025, 12, 6, 8, 0, 0),
        }],
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

fn journaled(s: &mut Session, id: i64, address: u32) -> Journaled {
    let serial = s.take_serial();
    Journaled {
        id,
        serial,
        bytes: s.send_frame(serial, &alarm_adu(address, 0x0003), T0),
    }
}

/// A frame from the centre.
fn from_centre(serial: u16, command: Command, adu: &[u8]) -> Vec<u8> {
    let h = Header {
        serial,
        version: [1, 1],
        time: TimeTag::new(2025, 12, 6, 8, 0, 0),
        source: Address::from_u64(CENTRE),
        destination: Address::from_u64(OWN),
        adu_len: 0,
        command,
    };
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode(&h, adu, &STANDARD, &mut out).unwrap();
    out[..n].to_vec()
}

fn sent(out: &[Output]) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn header_of(bytes: &[u8]) -> Header {
    frame::decode(bytes, &STANDARD).unwrap().header
}

#[test]
fn a_journaled_frame_is_sent_once_connected_and_done_when_confirmed() {
    let mut s = Session::new(cfg(), 7);
    let j = journaled(&mut s, 1, 0x0101);
    assert!(
        s.handle(Input::Journaled(j.clone()), T0).is_empty(),
        "not connected yet"
    );
    let out = s.handle(Input::Connected, T0 + 5);
    assert_eq!(sent(&out), vec![j.bytes.clone()]);
    assert_eq!(header_of(&j.bytes).serial, 7);
    assert_eq!(s.next_deadline(), Some(T0 + 5 + 10_000));
    let out = s.handle(Input::Bytes(&from_centre(7, Command::CONFIRM, &[])), T0 + 9);
    assert_eq!(out, vec![Output::Confirmed { id: 1, serial: 7 }]);
    assert_eq!(s.unconfirmed(), 0);
    // Then a keep-alive after 30 s of silence.
    assert!(s.handle(Input::Tick, T0 + 20_000).is_empty());
    let out = s.handle(Input::Tick, T0 + 30_009);
    let ka = sent(&out);
    assert_eq!(ka.len(), 1);
    let f = frame::decode(&ka[0], &STANDARD).unwrap();
    assert_eq!(
        (f.header.command, f.adu.len(), f.header.serial),
        (Command::SEND, 0, 8)
    );
}

#[test]
fn unconfirmed_frames_go_three_times_then_the_link_is_faulty_and_they_wait() {
    let mut s = Session::new(cfg(), 0);
    s.handle(Input::Connected, T0);
    let a = journaled(&mut s, 1, 0x0101);
    let b = journaled(&mut s, 2, 0x0201);
    let out = s.handle(Input::Journaled(a.clone()), T0);
    assert_eq!(sent(&out), vec![a.bytes.clone()]);
    s.handle(Input::Journaled(b.clone()), T0);
    // One frame outstanding at a time: b waits.
    assert!(sent(&s.handle(Input::Tick, T0 + 9_999)).is_empty());
    let out = s.handle(Input::Tick, T0 + 10_000);
    assert_eq!(sent(&out), vec![a.bytes.clone()], "the same bytes again");
    assert!(out.contains(&Output::Retransmitted {
        serial: 0,
        attempt: 2
    }));
    let out = s.handle(Input::Tick, T0 + 20_000);
    assert!(out.contains(&Output::Retransmitted {
        serial: 0,
        attempt: 3
    }));
    let out = s.handle(Input::Tick, T0 + 30_000);
    assert!(sent(&out).is_empty());
    assert_eq!(out, vec![Output::LinkFault(true), Output::Reconnect]);
    assert!(s.link_faulty());
    assert_eq!(s.unconfirmed(), 2, "nothing is dropped");
    assert_eq!(s.own_status() & uitd::LINK_FAULT, uitd::LINK_FAULT);
    // Reconnected: a first again, in order; confirmed: the fault is over and told.
    s.handle(Input::Disconnected, T0 + 30_001);
    let out = s.handle(Input::Connected, T0 + 31_000);
    assert_eq!(sent(&out), vec![a.bytes.clone()]);
    let out = s.handle(
        Input::Bytes(&from_centre(0, Command::CONFIRM, &[])),
        T0 + 31_002,
    );
    assert_eq!(out[0], Output::Confirmed { id: 1, serial: 0 });
    assert_eq!(out[1], Output::LinkFault(false));
    assert_eq!(
        sent(&out),
        vec![b.bytes.clone()],
        "b next, before the status frames"
    );
    let out = s.handle(
        Input::Bytes(&from_centre(1, Command::CONFIRM, &[])),
        T0 + 31_003,
    );
    // The link fault (as of when it began), then the status now.
    let statuses: Vec<u8> = sent(&out)
        .iter()
        .chain(
            sent(&s.handle(
                Input::Bytes(&from_centre(2, Command::CONFIRM, &[])),
                T0 + 31_004,
            ))
            .iter(),
        )
        .map(|f| {
            let f = frame::decode(f, &STANDARD).unwrap();
            match Adu::parse(f.adu).unwrap().objects().next().unwrap() {
                Object::UitdStatus { status, .. } => status,
                o => panic!("{o:?}"),
            }
        })
        .collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0] & uitd::LINK_FAULT, uitd::LINK_FAULT);
    assert_eq!(statuses[1] & uitd::LINK_FAULT, 0);
}

#[test]
fn a_deny_sends_again_and_counts_as_a_try() {
    let mut s = Session::new(cfg(), 0);
    s.handle(Input::Connected, T0);
    let a = journaled(&mut s, 1, 0x0101);
    s.handle(Input::Journaled(a.clone()), T0);
    let out = s.handle(Input::Bytes(&from_centre(0, Command::DENY, &[])), T0 + 3);
    assert_eq!(out[0], Output::Denied { serial: 0 });
    assert_eq!(sent(&out), vec![a.bytes.clone()]);
    // A deny for another serial number is stale.
    let out = s.handle(Input::Bytes(&from_centre(9, Command::DENY, &[])), T0 + 4);
    assert_eq!(out, vec![Output::Refused("stale_deny")]);
}

#[test]
fn a_bad_frame_from_the_centre_is_denied_and_counted() {
    let mut s = Session::new(cfg(), 0);
    s.handle(Input::Connected, T0);
    let mut bad = from_centre(41, Command::REQUEST, &[81, 1, 0]);
    let at = bad.len() - 3;
    bad[at] ^= 0xff;
    let out = s.handle(Input::Bytes(&bad), T0 + 1);
    assert_eq!(out[0], Output::Refused("checksum"));
    let deny = header_of(&sent(&out)[0]);
    assert_eq!((deny.command, deny.serial), (Command::DENY, 41));
    assert_eq!(deny.destination, Address::from_u64(CENTRE));
    // Garbage is counted, and a request for an unknown type is denied.
    let out = s.handle(Input::Bytes(b"xyz"), T0 + 2);
    assert_eq!(out, vec![Output::Refused("not_a_frame")]);
    let out = s.handle(
        Input::Bytes(&from_centre(42, Command::REQUEST, &[87, 1, 0])),
        T0 + 3,
    );
    assert_eq!(out[0], Output::Refused("unsupported"));
    assert_eq!(header_of(&sent(&out)[0]).command, Command::DENY);
}

#[test]
fn the_centres_commands_are_confirmed_and_the_clock_is_only_recorded() {
    let mut s = Session::new(cfg(), 0);
    s.handle(Input::Connected, T0);
    // Clock sync: the centre is 2 s ahead.
    let out = s.handle(
        Input::Bytes(&from_centre(
            5,
            Command::CONTROL,
            &[90, 1, 2, 0, 8, 6, 12, 25],
        )),
        T0,
    );
    assert_eq!(out[0], Output::ClockOffset(2_000));
    assert_eq!(header_of(&sent(&out)[0]).command, Command::CONFIRM);
    let out = s.handle(
        Input::Bytes(&from_centre(6, Command::CONTROL, &[91, 1, 10])),
        T0,
    );
    assert_eq!(out[0], Output::DutyCheck { timeout_min: 10 });
    let c = header_of(&sent(&out)[0]);
    assert_eq!((c.command, c.serial), (Command::CONFIRM, 6));
    let out = s.handle(
        Input::Bytes(&from_centre(7, Command::CONTROL, &[89, 1, 0])),
        T0,
    );
    assert_eq!(out[0], Output::Initialised);
    // Confirmed, then its status follows as a data frame.
    let frames = sent(&out);
    assert_eq!(header_of(&frames[0]).command, Command::CONFIRM);
    let f = frame::decode(&frames[1], &STANDARD).unwrap();
    assert_eq!(f.adu[0], adu::kind::UITD_STATUS);
}

#[test]
fn reads_are_answered_from_what_was_reported() {
    let mut s = Session::new(cfg(), 0);
    s.handle(Input::Connected, T0);
    let a = journaled(&mut s, 1, 0x0101);
    s.handle(Input::Journaled(a), T0);
    let respond = |s: &mut Session, serial: u16, adu: &[u8]| -> Vec<u8> {
        let out = s.handle(
            Input::Bytes(&from_centre(serial, Command::REQUEST, adu)),
            T0 + 1,
        );
        let r = sent(&out)
            .into_iter()
            .find(|f| header_of(f).serial == serial)
            .unwrap();
        let f = frame::decode(&r, &STANDARD).unwrap();
        assert_eq!(f.header.command, Command::RESPONSE);
        f.adu.to_vec()
    };
    // 62: the component's status.
    let r = respond(&mut s, 100, &[62, 1, 1, 1, 0x01, 0x01, 0, 0]);
    let a = Adu::parse(&r).unwrap();
    assert!(
        matches!(a.objects().next(), Some(Object::ComponentStatus { status: Status(3), component, .. }) if component.address == 0x0101)
    );
    // 61: the system has a fire.
    let r = respond(&mut s, 101, &[61, 1, 1, 1]);
    assert!(matches!(
        Adu::parse(&r).unwrap().objects().next(),
        Some(Object::SystemStatus {
            status: Status(3),
            ..
        })
    ));
    // 81: the device's own status has the fire bit.
    let r = respond(&mut s, 102, &[81, 1, 0]);
    assert!(matches!(
        Adu::parse(&r).unwrap().objects().next(),
        Some(Object::UitdStatus { status: 3, .. })
    ));
    // 88: its time; 85: its version; 84: no operation records.
    let r = respond(&mut s, 103, &[88, 1, 0]);
    assert_eq!(r, [28, 1, 0, 0, 8, 6, 12, 25]);
    assert_eq!(respond(&mut s, 104, &[85, 1, 0]), [25, 1, 0, 1]);
    assert_eq!(
        respond(&mut s, 105, &[84, 1, 10, 0, 0, 0, 1, 1, 25]),
        [24, 0]
    );
    // 63 for a component without readings: no objects.
    assert_eq!(
        respond(&mut s, 106, &[63, 1, 1, 1, 0x01, 0x01, 0, 0]),
        [3, 0]
    );
}
