//! The channels of one telemetry message packed into one blob: the `channels` column of the
//! readings file's day tables (one row per message, [`super::readings`]).
//!
//! Per channel, in the message's order: the channel number (1 byte), a mask of the quantities
//! present (1 byte: bit 0 residual current, 1 temperature, 2 voltage, 3 load current), then each
//! present quantity little-endian in its protocol width (residual `u32`, temperature `i16`,
//! voltage `u16`, load current `u32`). A five-channel monitor's message (residual on channel 0,
//! temperature on 1–4) is 22 bytes, against five rows of eight columns before.
//!
//! The bytes come from our own file, but a damaged or hand-edited file must not panic the
//! gateway: [`unpack`] returns an error for anything that is not exactly this format
//! (property-tested below).

use firegrid_protocols::channel::MAX_CHANNELS;
use firegrid_protocols::message::Reading;

const RESIDUAL: u8 = 1;
const TEMP: u8 = 2;
const VOLTAGE: u8 = 4;
const CURRENT: u8 = 8;

/// Why a blob is not a packed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packed readings: {0}")]
pub(crate) struct PackError(pub(super) &'static str);

/// The blob of `readings`.
pub(crate) fn pack(readings: &[Reading]) -> Vec<u8> {
    let mut out = Vec::with_capacity(readings.len() * 6);
    for r in readings {
        let bit = |present: bool, flag: u8| if present { flag } else { 0 };
        let mask = bit(r.residual_ma.is_some(), RESIDUAL)
            | bit(r.temp_dc.is_some(), TEMP)
            | bit(r.voltage_dv.is_some(), VOLTAGE)
            | bit(r.current_ma.is_some(), CURRENT);
        out.push(r.channel);
        out.push(mask);
        if let Some(v) = r.residual_ma {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = r.temp_dc {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = r.voltage_dv {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = r.current_ma {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Takes `N` bytes from the front of `bytes`.
fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], PackError> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or(PackError("truncated"))?;
    *bytes = rest;
    Ok(*head)
}

/// The readings of a blob written by [`pack`].
///
/// # Errors
/// [`PackError`] if the blob is truncated, names a channel beyond `MAX_CHANNELS` or a
/// quantity this build does not know.
pub(crate) fn unpack(mut bytes: &[u8]) -> Result<Vec<Reading>, PackError> {
    let mut out = Vec::with_capacity(bytes.len() / 6);
    while !bytes.is_empty() {
        let [channel, mask] = take::<2>(&mut bytes)?;
        if usize::from(channel) >= MAX_CHANNELS {
            return Err(PackError("channel out of range"));
        }
        if mask & !(RESIDUAL | TEMP | VOLTAGE | CURRENT) != 0 {
            return Err(PackError("unknown quantity"));
        }
        let mut r = Reading {
            channel,
            ..Reading::default()
        };
        if mask & RESIDUAL != 0 {
            r.residual_ma = Some(u32::from_le_bytes(take(&mut bytes)?));
        }
        if mask & TEMP != 0 {
            r.temp_dc = Some(i16::from_le_bytes(take(&mut bytes)?));
        }
        if mask & VOLTAGE != 0 {
            r.voltage_dv = Some(u16::from_le_bytes(take(&mut bytes)?));
        }
        if mask & CURRENT != 0 {
            r.current_ma = Some(u32::from_le_bytes(take(&mut bytes)?));
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reading() -> impl Strategy<Value = Reading> {
        (
            0..MAX_CHANNELS as u8,
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<i16>()),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(
                |(channel, residual_ma, temp_dc, voltage_dv, current_ma)| Reading {
                    channel,
                    residual_ma,
                    temp_dc,
                    voltage_dv,
                    current_ma,
                },
            )
    }

    proptest! {
        #[test]
        fn what_is_packed_unpacks_the_same(readings in proptest::collection::vec(reading(), 0..16)) {
            prop_assert_eq!(unpack(&pack(&readings)).unwrap(), readings);
        }

        #[test]
        fn any_bytes_unpack_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(readings) = unpack(&bytes) {
                // What unpacks is exactly what packs back to the same bytes.
                prop_assert_eq!(pack(&readings), bytes);
            }
        }
    }

    #[test]
    fn a_monitors_message_is_22_bytes_and_damage_is_refused() {
        let readings = vec![
            Reading {
                channel: 0,
                residual_ma: Some(120),
                ..Reading::default()
            },
            Reading {
                channel: 1,
                temp_dc: Some(-45),
                ..Reading::default()
            },
            Reading {
                channel: 2,
                temp_dc: Some(310),
                ..Reading::default()
            },
            Reading {
                channel: 3,
                temp_dc: Some(311),
                ..Reading::default()
            },
            Reading {
                channel: 4,
                temp_dc: Some(312),
                ..Reading::default()
            },
        ];
        let blob = pack(&readings);
        assert_eq!(blob.len(), 22);
        assert_eq!(
            unpack(&blob[..21]).unwrap_err(),
            PackError("truncated"),
            "a cut blob"
        );
        assert_eq!(
            unpack(&[16, 0]).unwrap_err(),
            PackError("channel out of range")
        );
        assert_eq!(unpack(&[0, 16]).unwrap_err(), PackError("unknown quantity"));
        assert_eq!(unpack(&[]).unwrap(), Vec::new());
    }
}
