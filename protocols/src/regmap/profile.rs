//! The built-in profile [`TYPICAL_RCM_TEMP`] (`typical-rcm-4t`).

use super::{Meaning, Register, RegisterKind, RegisterMap, StateCode, ValueType};
use crate::channel::{ChannelState, FaultCause, Quantity};

const fn holding_u16(address: u16, meaning: Meaning) -> Register {
    Register::new(address, RegisterKind::Holding, ValueType::U16, meaning)
}

/// Raw/10 − 50 °C, i.e. deci-°C = raw − 500.
const TEMP_OFFSET: i32 = -500;

pub(super) static TYPICAL_REGISTERS: [Register; 21] = [
    holding_u16(0x0000, Meaning::ResidualCurrent(0)).with_scale(1, 10, 0),
    holding_u16(0x0001, Meaning::Temperature(1)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0002, Meaning::Temperature(2)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0003, Meaning::Temperature(3)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0004, Meaning::Temperature(4)).with_scale(1, 1, TEMP_OFFSET),
    holding_u16(0x0010, Meaning::StateCode(0)),
    holding_u16(0x0011, Meaning::StateCode(1)),
    holding_u16(0x0012, Meaning::StateCode(2)),
    holding_u16(0x0013, Meaning::StateCode(3)),
    holding_u16(0x0014, Meaning::StateCode(4)),
    holding_u16(0x0020, Meaning::ResidualSetPoint(0)).read_write(),
    holding_u16(0x0021, Meaning::TemperatureSetPoint(1))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0022, Meaning::TemperatureSetPoint(2))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0023, Meaning::TemperatureSetPoint(3))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0024, Meaning::TemperatureSetPoint(4))
        .with_scale(1, 1, TEMP_OFFSET)
        .read_write(),
    holding_u16(0x0030, Meaning::AlarmDelay).read_write(),
    holding_u16(0x0031, Meaning::ReportPeriod).read_write(),
    holding_u16(0x0032, Meaning::HeartbeatPeriod).read_write(),
    holding_u16(0x0033, Meaning::ChannelEnable).read_write(),
    holding_u16(0x0034, Meaning::BuzzerEnable).read_write(),
    holding_u16(0x0035, Meaning::RelayEnable).read_write(),
];

pub(super) static TYPICAL_STATE_CODES: [StateCode; 8] = {
    use ChannelState::{Alarm, Fault, Normal};
    use FaultCause::{LeadOpen, LeadShort};
    use Quantity::{ResidualCurrent, Temperature};
    [
        StateCode::new(0, ResidualCurrent, Normal),
        StateCode::new(1, ResidualCurrent, Alarm),
        StateCode::new(2, ResidualCurrent, Fault(LeadOpen)),
        StateCode::new(3, ResidualCurrent, Fault(LeadShort)),
        StateCode::new(0, Temperature, Normal),
        StateCode::new(4, Temperature, Alarm),
        StateCode::new(5, Temperature, Fault(LeadOpen)),
        StateCode::new(6, Temperature, Fault(LeadShort)),
    ]
};

/// Built-in profile `"typical-rcm-4t"`: a typical commercial residual-current / temperature
/// monitor with 1 residual-current channel (0) and 4 temperature channels (1–4), Modbus RTU at
/// 9600 baud, slave address 1–247, holding registers only (functions 03/06/16).
///
/// This is a composite of public vendor data — leakage current in 0.1 mA, temperature as
/// raw/10 − 50 °C, state codes 0 normal / 1 alarm / 2 CT open / 3 CT short for leakage and
/// 0 normal / 4 over-temperature / 5 probe open / 6 probe short for temperature — not one
/// vendor's map. The full register table is in the [module documentation](super).
pub static TYPICAL_RCM_TEMP: RegisterMap<'static> =
    RegisterMap::new("typical-rcm-4t", &TYPICAL_REGISTERS, &TYPICAL_STATE_CODES);
