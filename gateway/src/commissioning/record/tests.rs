use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

use super::*;

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("a key");
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("the key just made")
}

fn record() -> Record {
    let (d2g, g2i, total) = latencies(1_000, Some(1_050), Some(1_080), Some(1_095));
    Record {
        format: FORMAT.to_owned(),
        id: 3,
        device: RecordDevice {
            id: "hz-0001".to_owned(),
            kind: "smoke_alarm".to_owned(),
            firmware: Some("0.1.0".to_owned()),
            signal_dbm: Some(-71),
            battery_mv: Some(2950),
            config_in_force: Some(2),
            config_wanted: 2,
            config: serde_json::json!({"version": 2, "channels": [], "buzzer": true}),
        },
        binding: Binding {
            site_id: Some(1),
            site: Some("Block 3".to_owned()),
            address: Some("3 Wulin Rd".to_owned()),
            room_id: Some(4),
            room: Some("3-302 房间".to_owned()),
            circuit_id: None,
            circuit: None,
            grid_id: Some("grid-7".to_owned()),
        },
        tests: vec![TestEntry {
            id: 1,
            kind: "button".to_owned(),
            result: "alarm".to_owned(),
            requested_ms: 1_000,
            device_ms: Some(1_050),
            received_ms: Some(1_080),
            delivered_ms: Some(1_095),
            device_to_gateway_ms: d2g,
            gateway_to_installer_ms: g2i,
            total_ms: total,
        }],
        installer: "wang.inst".to_owned(),
        issued_ms: 2_000,
    }
}

#[test]
fn latencies_are_differences_of_the_known_times() {
    assert_eq!(
        latencies(1_000, Some(1_050), Some(1_080), Some(1_095)),
        (Some(30), Some(15), Some(95))
    );
    assert_eq!(
        latencies(1_000, None, Some(1_080), None),
        (None, None, None)
    );
    // A device clock ahead of the gateway's gives a negative first leg, not a wrap.
    assert_eq!(
        latencies(1_000, Some(1_100), Some(1_080), None).0,
        Some(-20)
    );
}

#[test]
fn a_signed_record_verifies_with_its_key() {
    let k = key();
    let file = sign(record(), &k).to_file();
    assert_eq!(verify(&file, &public_key_b64(&k)), Ok(record()));
}

#[test]
fn every_changed_byte_fails_verification() {
    let k = key();
    let public = public_key_b64(&k);
    let file = sign(record(), &k).to_file();
    for i in 0..file.len() {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut bad = file.clone();
            bad[i] ^= flip;
            assert!(
                verify(&bad, &public).is_err(),
                "byte {i} ({:?}) ^ {flip:#x} still verifies",
                char::from(file[i])
            );
        }
    }
    // Removing or adding a byte too.
    assert!(verify(&file[..file.len() - 1], &public).is_err());
    let mut longer = file.clone();
    longer.push(b' ');
    assert!(verify(&longer, &public).is_err());
}

#[test]
fn another_key_is_refused_by_name() {
    let (k, other) = (key(), key());
    let file = sign(record(), &k).to_file();
    assert!(matches!(
        verify(&file, &public_key_b64(&other)),
        Err(VerifyError::OtherKey { .. })
    ));
    assert_eq!(verify(&file, "not base64!"), Err(VerifyError::BadKey));
}

#[test]
fn a_record_re_signed_by_an_attacker_under_the_gateway_key_name_fails() {
    // Changing the record and re-signing with another key, keeping the gateway's public key in
    // the file: the signature check fails.
    let (k, attacker) = (key(), key());
    let mut forged = sign(
        Record {
            installer: "someone".to_owned(),
            ..record()
        },
        &attacker,
    );
    forged.signature.public_key = public_key_b64(&k);
    assert_eq!(
        verify(&forged.to_file(), &public_key_b64(&k)),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn a_reformatted_record_is_refused_as_changed() {
    let k = key();
    let signed = sign(record(), &k);
    let compact = serde_json::to_vec(&signed).expect("json");
    assert_eq!(
        verify(&compact, &public_key_b64(&k)),
        Err(VerifyError::NotCanonical)
    );
}
