//! The device's identity from the STM32's 96-bit unique id (UID, RM0090 §39.1, at
//! `0x1FFF_7A10`): its firegrid device id and its Ethernet MAC address. Pure, so the host tests
//! check both rules.
//!
//! - **Device id**: `fg-` and the 12 UID bytes in hex, lower case, in the order they lie in
//!   memory: 3 + 24 = 27 characters of `[0-9a-f-]`, inside the protocol's 1–32 characters of
//!   `[A-Za-z0-9_-]`. Nothing is cut: the whole UID is unique per chip, any cut part might not
//!   be.
//! - **MAC**: locally administered, unicast (first byte `0x02`), the other five bytes from a
//!   64-bit FNV-1a hash of the UID. Two boards collide with a chance of about 2⁻⁴⁰ per pair; a
//!   production device takes a MAC from its maker's OUI block instead.

use core::fmt::Write;

use firegrid_protocols::id::{DeviceId, IdError, MAX_ID_LEN};

/// What every board device id starts with.
pub const ID_PREFIX: &str = "fg-";

/// The device id of the chip with unique id `uid`.
///
/// # Errors
/// None in practice (the id is always 27 valid characters); kept as a `Result` rather than
/// trusted, since [`DeviceId::new`] checks the rule.
pub fn device_id(uid: &[u8; 12]) -> Result<DeviceId, IdError> {
    let mut s = heapless::String::<MAX_ID_LEN>::new();
    let mut ok = s.push_str(ID_PREFIX).is_ok();
    for b in uid {
        ok &= write!(s, "{b:02x}").is_ok();
    }
    if !ok {
        return Err(IdError::TooLong {
            len: ID_PREFIX.len().saturating_add(24),
        });
    }
    DeviceId::new(&s)
}

/// The Ethernet MAC address of the chip with unique id `uid`: locally administered, unicast.
pub fn mac_address(uid: &[u8; 12]) -> [u8; 6] {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = uid.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    let [h0, h1, h2, h3, h4, ..] = hash.to_le_bytes();
    [0x02, h0, h1, h2, h3, h4]
}

#[cfg(test)]
mod tests {
    use super::*;
    use firegrid_protocols::id::validate_id;

    const UID: [u8; 12] = [
        0x2f, 0x00, 0x3a, 0x00, 0x0b, 0x51, 0x37, 0x34, 0x33, 0x35, 0x38, 0x31,
    ];

    #[test]
    fn device_id_is_prefix_and_whole_uid_in_hex() {
        let id = device_id(&UID).unwrap();
        assert_eq!(id.as_str(), "fg-2f003a000b51373433353831");
        assert_eq!(id.as_str().len(), 27);
        assert!(validate_id(id.as_str()).is_ok());
    }

    #[test]
    fn every_uid_gives_a_valid_distinct_id() {
        let ff = device_id(&[0xff; 12]).unwrap();
        let zero = device_id(&[0; 12]).unwrap();
        assert_eq!(ff.as_str(), "fg-ffffffffffffffffffffffff");
        assert_ne!(ff, zero);
        for i in 0..12 {
            let mut uid = UID;
            uid[i] ^= 1;
            assert_ne!(device_id(&uid).unwrap(), device_id(&UID).unwrap());
        }
    }

    #[test]
    fn mac_is_local_unicast_and_depends_on_every_byte() {
        let mac = mac_address(&UID);
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered, unicast");
        assert_eq!(mac, mac_address(&UID), "deterministic");
        for i in 0..12 {
            let mut uid = UID;
            uid[i] ^= 0x80;
            assert_ne!(mac_address(&uid), mac);
        }
    }
}
