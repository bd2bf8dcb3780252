//! One simulated legacy monitor as Modbus registers of the built-in profile.
//!
//! Values come from the physical models ([`Models`]: the circuit's leakage on channel 0, the
//! terminals' temperatures on channels 1–4, lead faults), converted with the profile's own
//! scaling ([`Register::encode`]). The monitor alarms by itself like a real one: a channel at
//! or above its set-point for the alarm delay shows state code "alarm"; it returns to normal
//! once the value is below the hysteresis ([`Threshold::clear_below`]) — an auto-resetting
//! monitor. Settings registers are writable and change what it does.

use firegrid_protocols::channel::{ChannelState, FaultCause, Quantity};
use firegrid_protocols::regmap::{Meaning, Register, RegisterKind, RegisterMap, TYPICAL_RCM_TEMP};
use firegrid_protocols::thresholds::Threshold;

use crate::device::Models;
use crate::physics::{LeadState, LeakageModel};

/// Exception 02: illegal data address.
pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// Exception 03: illegal data value.
pub const ILLEGAL_DATA_VALUE: u8 = 0x03;

/// Channels of the built-in profile: 0 residual current, 1–4 temperature.
const CHANNELS: usize = 5;

/// A simulated monitor.
#[derive(Debug, Clone)]
pub struct SimMonitor {
    /// The physical world it measures.
    pub models: Models,
    map: RegisterMap<'static>,
    /// Alarm set-point per channel (mA or deci-°C).
    pub setpoints: [i32; CHANNELS],
    /// Alarm delay, s.
    pub alarm_delay_s: i32,
    /// Report period, s (kept, not used: Modbus devices are polled).
    pub report_period_s: i32,
    /// Heartbeat period, s (kept).
    pub heartbeat_period_s: i32,
    /// Channel-enable bitmap.
    pub channel_enable: i32,
    /// Buzzer enable.
    pub buzzer: i32,
    /// Relay enable.
    pub relay: i32,
    states: [ChannelState; CHANNELS],
    above_since: [Option<u64>; CHANNELS],
    last_ms: u64,
}

impl SimMonitor {
    /// A monitor with a healthy circuit leaking `leakage_ma` steadily, sound terminals, the GB
    /// default set-points, and a 0 s alarm delay (so a test sees an alarm on the next poll;
    /// write register `0x0030` for a real delay).
    pub fn new(leakage_ma: f64) -> Self {
        Self {
            models: Models::typical(LeakageModel::steady(leakage_ma)),
            map: TYPICAL_RCM_TEMP,
            setpoints: [
                Threshold::default_for(Quantity::ResidualCurrent).value(),
                Threshold::default_for(Quantity::Temperature).value(),
                Threshold::default_for(Quantity::Temperature).value(),
                Threshold::default_for(Quantity::Temperature).value(),
                Threshold::default_for(Quantity::Temperature).value(),
            ],
            alarm_delay_s: 0,
            report_period_s: 60,
            heartbeat_period_s: 300,
            channel_enable: 0b1_1111,
            buzzer: 1,
            relay: 0,
            states: [ChannelState::Normal; CHANNELS],
            above_since: [None; CHANNELS],
            last_ms: 0,
        }
    }

    /// The profile it speaks.
    pub fn map(&self) -> RegisterMap<'static> {
        self.map
    }

    /// The leakage to show from now on, mA (steady).
    pub fn set_leakage_ma(&mut self, ma: f64) {
        self.models.circuit.leakage = LeakageModel::steady(ma);
    }

    /// A channel's state as the monitor itself decided it at the last [`sense`](Self::sense).
    pub fn state(&self, channel: usize) -> Option<ChannelState> {
        self.states.get(channel).copied()
    }

    /// The measured value of `channel` at model time `now_ms`: mA or deci-°C; `None` in fault.
    fn value(&mut self, channel: usize, now_ms: u64) -> Option<i32> {
        let load = self.models.circuit.load_a;
        if channel == 0 {
            (self.models.circuit.ct_state(now_ms) == LeadState::Ok)
                .then(|| self.models.circuit.leakage_ma(now_ms).round() as i32)
        } else {
            let t = self.models.terminals.get_mut(channel - 1)?;
            let c = t.advance(now_ms, load);
            (t.probe_state(now_ms) == LeadState::Ok).then(|| (c * 10.0).round() as i32)
        }
    }

    fn lead(&self, channel: usize, now_ms: u64) -> LeadState {
        if channel == 0 {
            self.models.circuit.ct_state(now_ms)
        } else {
            self.models
                .terminals
                .get(channel - 1)
                .map_or(LeadState::Ok, |t| t.probe_state(now_ms))
        }
    }

    /// Measures and runs the alarm logic at model time `now_ms`.
    pub fn sense(&mut self, now_ms: u64) {
        let now_ms = now_ms.max(self.last_ms);
        self.last_ms = now_ms;
        for ch in 0..CHANNELS {
            let enabled = self.channel_enable & (1 << ch) != 0;
            let lead = self.lead(ch, now_ms);
            let value = self.value(ch, now_ms);
            let state = match (lead, value) {
                (LeadState::Open, _) => ChannelState::Fault(FaultCause::LeadOpen),
                (LeadState::Short, _) => ChannelState::Fault(FaultCause::LeadShort),
                (LeadState::Ok, None) => ChannelState::Fault(FaultCause::SensorError),
                (LeadState::Ok, Some(_)) if !enabled => ChannelState::Normal,
                (LeadState::Ok, Some(v)) => {
                    let sp = self.setpoints[ch];
                    let threshold = if ch == 0 {
                        Threshold::ResidualMa(u16::try_from(sp.max(0)).unwrap_or(u16::MAX))
                    } else {
                        Threshold::TempDc(i16::try_from(sp).unwrap_or(i16::MAX))
                    };
                    let prev = self.states[ch];
                    if threshold.is_exceeded_by(v) {
                        let since = *self.above_since[ch].get_or_insert(now_ms);
                        let delay_ms = u64::try_from(self.alarm_delay_s.max(0)).unwrap_or(0) * 1000;
                        if now_ms.saturating_sub(since) >= delay_ms || prev == ChannelState::Alarm {
                            ChannelState::Alarm
                        } else {
                            ChannelState::Normal
                        }
                    } else {
                        self.above_since[ch] = None;
                        if prev == ChannelState::Alarm && v >= threshold.clear_below() {
                            ChannelState::Alarm
                        } else {
                            ChannelState::Normal
                        }
                    }
                }
            };
            self.states[ch] = state;
        }
    }

    /// The canonical value of a register at model time `now_ms` (after [`sense`](Self::sense)).
    fn canonical(&mut self, meaning: Meaning, now_ms: u64) -> Option<i32> {
        let ch = meaning.channel().map(usize::from);
        Some(match meaning {
            Meaning::ResidualCurrent(_) | Meaning::Temperature(_) => {
                // A channel in fault reads 0 raw-ish: the state code says why.
                self.value(ch?, now_ms).unwrap_or(0)
            }
            Meaning::StateCode(c) => {
                let q = self.map.channel_quantity(c)?;
                i32::from(self.map.code_of(q, *self.states.get(ch?)?).ok()?)
            }
            Meaning::ResidualSetPoint(_) | Meaning::TemperatureSetPoint(_) => {
                *self.setpoints.get(ch?)?
            }
            Meaning::AlarmDelay => self.alarm_delay_s,
            Meaning::ReportPeriod => self.report_period_s,
            Meaning::HeartbeatPeriod => self.heartbeat_period_s,
            Meaning::ChannelEnable => self.channel_enable,
            Meaning::BuzzerEnable => self.buzzer,
            Meaning::RelayEnable => self.relay,
            _ => return None,
        })
    }

    /// Reads `count` words of `kind` from `start` at model time `now_ms`.
    ///
    /// # Errors
    /// An exception code: 02 for an address the profile does not map (as many real monitors
    /// answer), 01-style kinds it does not have.
    pub fn read(
        &mut self,
        kind: RegisterKind,
        start: u16,
        count: u16,
        now_ms: u64,
    ) -> Result<Vec<u16>, u8> {
        self.sense(now_ms);
        let mut out = Vec::with_capacity(usize::from(count));
        let end = u32::from(start) + u32::from(count);
        let mut a = u32::from(start);
        while a < end {
            let addr = u16::try_from(a).map_err(|_| ILLEGAL_DATA_ADDRESS)?;
            let reg: Register = *self.map.at(kind, addr).ok_or(ILLEGAL_DATA_ADDRESS)?;
            let value = self
                .canonical(reg.meaning, now_ms)
                .ok_or(ILLEGAL_DATA_ADDRESS)?;
            // A value the type cannot hold (a probe far below −50 °C) saturates.
            let words = reg
                .encode(value)
                .or_else(|_| {
                    reg.value_range()
                        .map(|r| value.clamp(*r.start(), *r.end()))
                        .map_or(Err(()), |v| reg.encode(v).map_err(|_| ()))
                })
                .map_err(|()| ILLEGAL_DATA_VALUE)?;
            out.extend_from_slice(words.as_slice());
            a += u32::from(reg.width());
        }
        out.truncate(usize::from(count));
        Ok(out)
    }

    /// Writes `words` from `start` (holding registers).
    ///
    /// # Errors
    /// 02 for an unmapped or read-only address, 03 for a value out of range.
    pub fn write(&mut self, start: u16, words: &[u16]) -> Result<(), u8> {
        let mut i = 0usize;
        while i < words.len() {
            let addr = u16::try_from(usize::from(start) + i).map_err(|_| ILLEGAL_DATA_ADDRESS)?;
            let reg = *self
                .map
                .at(RegisterKind::Holding, addr)
                .filter(|r| r.writable)
                .ok_or(ILLEGAL_DATA_ADDRESS)?;
            let w = usize::from(reg.width());
            let raw = words.get(i..i + w).ok_or(ILLEGAL_DATA_VALUE)?;
            let v = reg.decode(raw).map_err(|_| ILLEGAL_DATA_VALUE)?;
            let ch = reg.meaning.channel().map(usize::from);
            match reg.meaning {
                Meaning::ResidualSetPoint(_) | Meaning::TemperatureSetPoint(_) => {
                    *ch.and_then(|c| self.setpoints.get_mut(c))
                        .ok_or(ILLEGAL_DATA_ADDRESS)? = v;
                }
                Meaning::AlarmDelay => self.alarm_delay_s = v,
                Meaning::ReportPeriod => self.report_period_s = v,
                Meaning::HeartbeatPeriod => self.heartbeat_period_s = v,
                Meaning::ChannelEnable => self.channel_enable = v,
                Meaning::BuzzerEnable => self.buzzer = v,
                Meaning::RelayEnable => self.relay = v,
                _ => return Err(ILLEGAL_DATA_ADDRESS),
            }
            i += w;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_follow_the_models_and_the_profile_scaling() {
        let mut m = SimMonitor::new(41.0);
        assert_eq!(
            m.read(RegisterKind::Holding, 0, 5, 0).unwrap(),
            [410, 750, 750, 750, 750]
        );
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 5, 0).unwrap(), [0; 5]);
        assert_eq!(m.read(RegisterKind::Holding, 0x20, 1, 0).unwrap(), [300]);
        assert_eq!(
            m.read(RegisterKind::Holding, 0x05, 1, 0),
            Err(ILLEGAL_DATA_ADDRESS)
        );
        m.set_leakage_ma(412.0);
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 1000).unwrap(), [1]);
        m.set_leakage_ma(280.0); // above the 270 mA hysteresis of 300 mA: still in alarm
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 2000).unwrap(), [1]);
        m.set_leakage_ma(100.0);
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 3000).unwrap(), [0]);
    }

    #[test]
    fn the_alarm_waits_for_the_delay_written_to_it() {
        let mut m = SimMonitor::new(500.0);
        m.write(0x30, &[10]).unwrap();
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 0).unwrap(), [0]);
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 9_999).unwrap(), [0]);
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 10_000).unwrap(), [1]);
        assert_eq!(m.write(0x00, &[1]), Err(ILLEGAL_DATA_ADDRESS), "read-only");
    }

    #[test]
    fn a_ct_fault_shows_as_its_state_code() {
        let mut m = SimMonitor::new(10.0);
        m.models
            .circuit
            .ct_faults
            .push(crate::physics::FaultWindow::from(LeadState::Open, 0));
        assert_eq!(m.read(RegisterKind::Holding, 0x10, 1, 0).unwrap(), [2]);
    }
}
