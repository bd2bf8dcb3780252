//! Decoding one poll: the words of a device's read blocks through its profile into values per
//! channel ([`decode`]), readings for telemetry ([`readings`]), and the events a change of a
//! channel's state code means ([`edges`]). Pure and total: any words, any profile.

use firegrid_protocols::channel::{ChannelState, MAX_CHANNELS, Quantity};
use firegrid_protocols::message::{EventKind, Level, Reading};
use firegrid_protocols::regmap::{Meaning, ReadBlock, RegisterMap};

use super::profile::Profile;

/// Values of one poll, per channel.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Measured value (mA or deci-°C) per channel.
    pub values: [Option<i32>; MAX_CHANNELS],
    /// Raw state code per channel.
    pub codes: [Option<u16>; MAX_CHANNELS],
    /// Alarm set-point per channel.
    pub setpoints: [Option<i32>; MAX_CHANNELS],
    /// Other values by meaning (delays, periods, flags), canonical.
    pub other: Vec<(Meaning, i32)>,
    /// Registers that did not decode (out of range for their scale), by address.
    pub errors: Vec<u16>,
}

/// Decodes the words read for `blocks` (one `Vec` per block, in order) through the profile.
/// Total: a short or missing block leaves its registers out.
pub fn decode(profile: &Profile, blocks: &[ReadBlock], words: &[Vec<u16>]) -> Decoded {
    let mut d = Decoded::default();
    for reg in profile.map().registers {
        let Some((block, w)) = blocks
            .iter()
            .zip(words)
            .find(|(b, _)| b.kind == reg.kind && b.contains(reg))
        else {
            continue;
        };
        let Some(raw) = block.words_for(reg, w) else {
            d.errors.push(reg.address);
            continue;
        };
        let value = if reg.kind.is_bit() {
            raw.first().map(|b| reg.decode_bit(*b != 0))
        } else {
            Some(reg.decode(raw))
        };
        let ch = reg.meaning.channel().map(usize::from);
        match (reg.meaning, value) {
            (Meaning::StateCode(_), _) => {
                if let (Some(slot), Some(code)) = (ch.and_then(|c| d.codes.get_mut(c)), raw.first())
                {
                    *slot = Some(*code);
                }
            }
            (_, Some(Ok(v))) => {
                let slot = match reg.meaning {
                    Meaning::ResidualCurrent(_) | Meaning::Temperature(_) => {
                        ch.and_then(|c| d.values.get_mut(c))
                    }
                    Meaning::ResidualSetPoint(_) | Meaning::TemperatureSetPoint(_) => {
                        ch.and_then(|c| d.setpoints.get_mut(c))
                    }
                    m => {
                        d.other.push((m, v));
                        None
                    }
                };
                if let Some(slot) = slot {
                    *slot = Some(v);
                }
            }
            (_, _) => d.errors.push(reg.address),
        }
    }
    d
}

/// The events a change of a channel's state from `prev` (`None`: not known since the poller
/// started) to `now` means: a clear of what ended, then what began.
pub fn edges(
    ch: u8,
    prev: Option<ChannelState>,
    now: ChannelState,
    level: Level,
) -> Vec<EventKind> {
    use ChannelState::{Alarm, Fault, Normal};
    let mut v = Vec::new();
    if prev == Some(now) {
        return v;
    }
    match prev {
        Some(Alarm) => v.push(EventKind::AlarmCleared { channel: ch, level }),
        Some(Fault(cause)) => v.push(EventKind::FaultCleared { channel: ch, cause }),
        Some(Normal) | None => {}
    }
    match now {
        Alarm => v.push(EventKind::AlarmRaised { channel: ch, level }),
        Fault(cause) => v.push(EventKind::Fault { channel: ch, cause }),
        Normal => {}
    }
    v
}

/// The telemetry readings of a poll: every channel with a measured value, except channels in
/// fault (a fault is an event, and its value means nothing). Values outside the message's
/// types saturate.
pub fn readings(
    map: &RegisterMap<'_>,
    decoded: &Decoded,
    states: &[Option<ChannelState>; MAX_CHANNELS],
) -> heapless::Vec<Reading, MAX_CHANNELS> {
    (0..MAX_CHANNELS)
        .filter_map(|ch| {
            let value = decoded.values.get(ch).copied().flatten()?;
            if matches!(
                states.get(ch).copied().flatten(),
                Some(ChannelState::Fault(_))
            ) {
                return None;
            }
            let channel = u8::try_from(ch).ok()?;
            let mut r = Reading {
                channel,
                ..Reading::default()
            };
            match map.channel_quantity(channel)? {
                Quantity::ResidualCurrent => {
                    r.residual_ma = Some(u32::try_from(value.max(0)).unwrap_or(0));
                }
                Quantity::Temperature => {
                    let clamped = value.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
                    r.temp_dc = Some(i16::try_from(clamped).unwrap_or(0));
                }
            }
            Some(r)
        })
        .collect()
}
