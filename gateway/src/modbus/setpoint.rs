//! Set-points to registers: a device [`Config`] (validated by the API like any device's) turned
//! into the register writes a legacy monitor's profile allows.

use firegrid_protocols::message::Config;
use firegrid_protocols::regmap::{Meaning, RegisterKind, RegisterMap};

/// One register write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Holding register or coil.
    pub kind: RegisterKind,
    /// 0-based address.
    pub address: u16,
    /// The raw words (one word 0/1 for a coil).
    pub words: Vec<u16>,
}

/// The writes that apply `config` through `map`, or why it cannot be applied.
///
/// Every value the config sets that the profile maps must be writable; a value the profile does
/// not map at all is skipped (the device has no such setting). A channel's set-point whose
/// register is missing or read-only refuses the whole config: the device would otherwise keep a
/// set-point the operator believes changed.
///
/// # Errors
/// A sentence naming the register or channel.
pub fn writes_for(config: &Config, map: &RegisterMap<'_>) -> Result<Vec<Write>, String> {
    let mut out = Vec::new();
    let mut push = |meaning: Meaning, value: i32, required: bool| -> Result<(), String> {
        let Some(reg) = map.find(meaning) else {
            return if required {
                Err(format!(
                    "profile {} has no register for {meaning:?}",
                    map.name
                ))
            } else {
                Ok(())
            };
        };
        if !reg.writable {
            return Err(format!(
                "profile {}: {meaning:?} at {:#06x} is read-only",
                map.name, reg.address
            ));
        }
        let words = if reg.kind.is_bit() {
            vec![u16::from(
                reg.encode_write_bit(value).map_err(|e| e.to_string())?,
            )]
        } else {
            reg.encode_write(value)
                .map_err(|e| format!("{meaning:?} = {value}: {e}"))?
                .as_slice()
                .to_vec()
        };
        out.push(Write {
            kind: reg.kind,
            address: reg.address,
            words,
        });
        Ok(())
    };
    let mut enabled = 0i32;
    let mut delay_s = None::<u16>;
    for c in &config.channels {
        let meaning = match c.threshold.quantity() {
            firegrid_protocols::channel::Quantity::ResidualCurrent => {
                Meaning::ResidualSetPoint(c.channel)
            }
            firegrid_protocols::channel::Quantity::Temperature => {
                Meaning::TemperatureSetPoint(c.channel)
            }
        };
        push(meaning, c.threshold.value(), true)?;
        if c.enabled && c.channel < 31 {
            enabled |= 1 << c.channel;
        }
        // One alarm delay per device: the longest asked for, so no channel alarms early.
        delay_s = Some(delay_s.map_or(c.delay_s, |d| d.max(c.delay_s)));
    }
    if let Some(d) = delay_s {
        push(Meaning::AlarmDelay, i32::from(d), false)?;
    }
    let secs = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
    push(Meaning::ReportPeriod, secs(config.report_interval_s), false)?;
    push(
        Meaning::HeartbeatPeriod,
        secs(config.heartbeat_interval_s),
        false,
    )?;
    if !config.channels.is_empty() {
        push(Meaning::ChannelEnable, enabled, false)?;
    }
    push(Meaning::BuzzerEnable, i32::from(config.buzzer), false)?;
    push(Meaning::RelayEnable, i32::from(config.relay_trip), false)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firegrid_protocols::message::ChannelConfig;
    use firegrid_protocols::regmap::TYPICAL_RCM_TEMP;
    use firegrid_protocols::thresholds::Threshold;

    fn config() -> Config {
        Config {
            version: 7,
            report_interval_s: 60,
            heartbeat_interval_s: 300,
            buzzer: true,
            relay_trip: false,
            channels: [
                ChannelConfig {
                    channel: 0,
                    enabled: true,
                    threshold: Threshold::ResidualMa(300),
                    delay_s: 10,
                },
                ChannelConfig {
                    channel: 1,
                    enabled: true,
                    threshold: Threshold::TempDc(850),
                    delay_s: 5,
                },
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn the_builtin_profile_takes_every_setting() {
        let w = writes_for(&config(), &TYPICAL_RCM_TEMP).unwrap();
        let pairs: Vec<(u16, u16)> = w.iter().map(|w| (w.address, w.words[0])).collect();
        assert_eq!(
            pairs,
            [
                (0x20, 300),
                (0x21, 1350), // 85.0 °C = raw 1350
                (0x30, 10),
                (0x31, 60),
                (0x32, 300),
                (0x33, 0b11),
                (0x34, 1),
                (0x35, 0),
            ]
        );
    }

    #[test]
    fn a_set_point_the_profile_cannot_write_refuses_the_config() {
        let mut c = config();
        c.channels[1].channel = 9;
        let err = writes_for(&c, &TYPICAL_RCM_TEMP).unwrap_err();
        assert_eq!(
            err,
            "profile typical-rcm-4t has no register for TemperatureSetPoint(9)"
        );
    }
}
