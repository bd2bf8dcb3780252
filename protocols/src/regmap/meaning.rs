//! [`Meaning`]: what a register's value is, and its canonical [`Unit`].

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelNo, Quantity};

/// The canonical unit of a [`Meaning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Milliampere (residual current).
    MilliAmpere,
    /// Tenth of a degree Celsius (temperature).
    DeciCelsius,
    /// Second (durations).
    Second,
    /// A code looked up in a table (state codes).
    Code,
    /// A bitmap, bit *n* for channel *n*.
    Bitmap,
    /// 0 = off, 1 = on.
    Flag,
    /// An unscaled number with no unit (addresses, versions, vendor-specific values).
    Number,
}

/// What a register means. The channel number is the device's own, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Meaning {
    /// Measured residual (leakage) current of a channel, mA.
    ResidualCurrent(ChannelNo),
    /// Measured temperature of a channel, deci-°C.
    Temperature(ChannelNo),
    /// State code of a channel, decoded with the map's [`StateCode`] table.
    ///
    /// [`StateCode`]: super::StateCode
    StateCode(ChannelNo),
    /// Residual-current alarm set-point of a channel, mA.
    ResidualSetPoint(ChannelNo),
    /// Temperature alarm set-point of a channel, deci-°C.
    TemperatureSetPoint(ChannelNo),
    /// How long a value must stay above its set-point before the alarm, s.
    AlarmDelay,
    /// Period of unsolicited value reports, s.
    ReportPeriod,
    /// Period of heartbeats, s.
    HeartbeatPeriod,
    /// Which channels are enabled, bit *n* = channel *n*.
    ChannelEnable,
    /// Whether the local buzzer sounds on alarm (0/1).
    BuzzerEnable,
    /// Whether the relay output trips on alarm (0/1).
    RelayEnable,
    /// Writing 1 resets latched alarms (a command, reads as 0 on most devices).
    AlarmReset,
    /// The device's Modbus slave address (1–247).
    DeviceAddress,
    /// Firmware version as the vendor encodes it (e.g. 0x0102 or 102 for 1.02).
    FirmwareVersion,
    /// A vendor-specific value, told apart by the number (unscaled semantics are the profile's).
    Other(u16),
}

impl Meaning {
    /// The channel the value belongs to, if it is a per-channel value.
    pub const fn channel(self) -> Option<ChannelNo> {
        match self {
            Self::ResidualCurrent(ch)
            | Self::Temperature(ch)
            | Self::StateCode(ch)
            | Self::ResidualSetPoint(ch)
            | Self::TemperatureSetPoint(ch) => Some(ch),
            _ => None,
        }
    }

    /// The quantity (and so the kind of channel) the value implies, if any. A state code says
    /// nothing by itself; its channel's quantity comes from the channel's other registers.
    pub const fn quantity(self) -> Option<Quantity> {
        match self {
            Self::ResidualCurrent(_) | Self::ResidualSetPoint(_) => Some(Quantity::ResidualCurrent),
            Self::Temperature(_) | Self::TemperatureSetPoint(_) => Some(Quantity::Temperature),
            _ => None,
        }
    }

    /// The canonical unit of the decoded value.
    pub const fn unit(self) -> Unit {
        match self {
            Self::ResidualCurrent(_) | Self::ResidualSetPoint(_) => Unit::MilliAmpere,
            Self::Temperature(_) | Self::TemperatureSetPoint(_) => Unit::DeciCelsius,
            Self::StateCode(_) => Unit::Code,
            Self::AlarmDelay | Self::ReportPeriod | Self::HeartbeatPeriod => Unit::Second,
            Self::ChannelEnable => Unit::Bitmap,
            Self::BuzzerEnable | Self::RelayEnable | Self::AlarmReset => Unit::Flag,
            Self::DeviceAddress | Self::FirmwareVersion | Self::Other(_) => Unit::Number,
        }
    }
}
