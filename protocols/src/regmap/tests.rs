use std::string::ToString;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::channel::FaultCause::{LeadOpen, LeadShort, SensorError};
use crate::channel::Quantity::{ResidualCurrent, Temperature};

const HI: WordOrder = WordOrder::HighWordFirst;
const LO: WordOrder = WordOrder::LowWordFirst;

fn typical(meaning: Meaning) -> &'static Register {
    TYPICAL_RCM_TEMP.find(meaning).unwrap()
}

fn holding(address: u16, value_type: ValueType) -> Register {
    Register::new(
        address,
        RegisterKind::Holding,
        value_type,
        Meaning::Other(address),
    )
}

fn words(reg: &Register, value: i32) -> Vec<u16> {
    reg.encode(value).unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Literal decoding / encoding examples

#[test]
fn regmap_residual_current_raw_tenths_of_ma() {
    let reg = typical(Meaning::ResidualCurrent(0));
    assert_eq!(reg.decode(&[1234]), Ok(123));
    assert_eq!(reg.decode(&[1235]), Ok(124), "halves round away from zero");
    assert_eq!(reg.decode(&[1225]), Ok(123));
    assert_eq!(reg.decode(&[0]), Ok(0));
    assert_eq!(reg.decode(&[65535]), Ok(6554));
    // Extra words (a larger block) are ignored.
    assert_eq!(reg.decode(&[300, 1, 2]), Ok(30));
}

#[test]
fn regmap_temperature_raw_tenths_minus_50() {
    let reg = typical(Meaning::Temperature(1));
    assert_eq!(reg.decode(&[1350]), Ok(850), "85.0 °C");
    assert_eq!(reg.decode(&[0]), Ok(-500), "-50.0 °C");
    assert_eq!(reg.decode(&[500]), Ok(0));
    assert_eq!(reg.decode(&[65535]), Ok(65035));
}

#[test]
fn regmap_u32_both_word_orders() {
    let high = holding(0, ValueType::U32(HI));
    let low = holding(0, ValueType::U32(LO));
    assert_eq!(high.decode(&[0x0001, 0x0002]), Ok(0x0001_0002));
    assert_eq!(low.decode(&[0x0001, 0x0002]), Ok(0x0002_0001));
    assert_eq!(words(&high, 0x0001_0002), [0x0001, 0x0002]);
    assert_eq!(words(&low, 0x0001_0002), [0x0002, 0x0001]);
    assert_eq!(high.decode(&[0x7FFF, 0xFFFF]), Ok(i32::MAX));
}

#[test]
fn regmap_i32_negative_both_word_orders() {
    let high = holding(0, ValueType::I32(HI));
    let low = holding(0, ValueType::I32(LO));
    assert_eq!(high.decode(&[0xFFFF, 0xFFFE]), Ok(-2));
    assert_eq!(low.decode(&[0xFFFE, 0xFFFF]), Ok(-2));
    assert_eq!(words(&high, -2), [0xFFFF, 0xFFFE]);
    assert_eq!(words(&low, -2), [0xFFFE, 0xFFFF]);
    assert_eq!(high.decode(&[0x8000, 0x0000]), Ok(i32::MIN));
    assert_eq!(words(&low, i32::MIN), [0x0000, 0x8000]);
}

#[test]
fn regmap_negative_i16() {
    let reg = holding(0, ValueType::I16);
    assert_eq!(reg.decode(&[0xFFF6]), Ok(-10));
    assert_eq!(reg.decode(&[0x8000]), Ok(-32768));
    assert_eq!(words(&reg, -10), [0xFFF6]);
    let tenths = reg.with_scale(1, 10, 0);
    assert_eq!(tenths.decode(&[0xFFF6]), Ok(-1));
    assert_eq!(
        tenths.decode(&[0xFFFB]),
        Ok(-1),
        "-0.5 rounds away from zero"
    );
    assert_eq!(tenths.decode(&[0xFFFC]), Ok(0), "-0.4 rounds to 0");
    assert_eq!(words(&tenths, -1), [0xFFF6]);
}

#[test]
fn regmap_negative_scale() {
    let reg = holding(0, ValueType::I16).with_scale(-3, 2, 7);
    assert_eq!(reg.decode(&[5]), Ok(-8 + 7), "5 × -3/2 = -7.5 → -8");
    assert_eq!(reg.value_range(), Some(-49144..=49159));
}

#[test]
fn regmap_encode_writable_set_points() {
    let residual = typical(Meaning::ResidualSetPoint(0));
    assert_eq!(residual.encode_write(300).unwrap().as_slice(), &[300]);
    let temp = typical(Meaning::TemperatureSetPoint(3));
    assert_eq!(temp.encode_write(700).unwrap().as_slice(), &[1200]);
    assert_eq!(temp.encode_write(-500).unwrap().as_slice(), &[0]);
    assert_eq!(&*temp.encode_write(65035).unwrap(), &[65535]);
}

#[test]
fn regmap_encode_refuses_values_that_do_not_fit() {
    let residual = typical(Meaning::ResidualSetPoint(0));
    let err = residual.encode_write(-1).unwrap_err();
    assert_eq!(
        err,
        EncodeError::OutOfRange {
            address: 0x0020,
            value_type: ValueType::U16,
            value: -1,
            min: 0,
            max: 65535,
        }
    );
    assert_eq!(
        err.to_string(),
        "register 0x0020 (U16): value -1 outside 0..=65535"
    );
    let temp = typical(Meaning::TemperatureSetPoint(1));
    assert_eq!(
        temp.encode_write(-501),
        Err(EncodeError::OutOfRange {
            address: 0x0021,
            value_type: ValueType::U16,
            value: -501,
            min: -500,
            max: 65035,
        })
    );
    assert!(matches!(
        temp.encode_write(65036),
        Err(EncodeError::OutOfRange { max: 65035, .. })
    ));
    assert!(matches!(
        holding(0, ValueType::I16).encode(40000),
        Err(EncodeError::OutOfRange {
            min: -32768,
            max: 32767,
            ..
        })
    ));
}

#[test]
fn regmap_encode_i64_overflow_is_out_of_range() {
    // (i32::MAX - i32::MIN) × u32::MAX does not fit an i64.
    let reg = holding(0, ValueType::U32(HI)).with_scale(1, u32::MAX, i32::MIN);
    assert!(matches!(
        reg.encode(i32::MAX),
        Err(EncodeError::OutOfRange {
            value: i32::MAX,
            ..
        })
    ));
}

#[test]
fn regmap_encode_read_only_for_server_but_not_client() {
    let reg = typical(Meaning::ResidualCurrent(0));
    assert_eq!(words(reg, 123), [1230]);
    assert_eq!(
        reg.encode_write(123),
        Err(EncodeError::NotWritable {
            address: 0,
            kind: RegisterKind::Holding
        })
    );
    assert_eq!(reg.value_range(), Some(0..=6553));
    assert!(reg.encode(6554).is_err());
}

#[test]
fn regmap_decode_errors() {
    let u32_reg = holding(0x40, ValueType::U32(HI));
    assert_eq!(
        u32_reg.decode(&[1]),
        Err(DecodeError::TooFewWords {
            address: 0x40,
            needed: 2,
            got: 1
        })
    );
    assert_eq!(
        holding(0x41, ValueType::U16).decode(&[]),
        Err(DecodeError::TooFewWords {
            address: 0x41,
            needed: 1,
            got: 0
        })
    );
    assert_eq!(
        u32_reg.decode(&[0xFFFF, 0xFFFF]),
        Err(DecodeError::Overflow {
            address: 0x40,
            raw: 0xFFFF_FFFF
        })
    );
    let coil = Register::new(
        7,
        RegisterKind::Coil,
        ValueType::Bool,
        Meaning::BuzzerEnable,
    );
    assert_eq!(
        coil.decode(&[1]),
        Err(DecodeError::BitRegisterAsWords { address: 7 })
    );
    assert_eq!(
        typical(Meaning::BuzzerEnable).decode_bit(true),
        Err(DecodeError::WordRegisterAsBit { address: 0x34 })
    );
    assert_eq!(
        holding(3, ValueType::U16).with_scale(1, 0, 0).decode(&[1]),
        Err(DecodeError::InvalidScale { address: 3 })
    );
    assert_eq!(
        holding(3, ValueType::U16).with_scale(0, 1, 0).encode(1),
        Err(EncodeError::InvalidScale { address: 3 })
    );
}

#[test]
fn regmap_bits() {
    let coil = Register::new(7, RegisterKind::Coil, ValueType::Bool, Meaning::RelayEnable);
    assert_eq!(coil.decode_bit(true), Ok(1));
    assert_eq!(coil.decode_bit(false), Ok(0));
    assert_eq!(coil.encode_bit(1), Ok(true));
    assert_eq!(
        coil.encode_write_bit(1),
        Err(EncodeError::NotWritable {
            address: 7,
            kind: RegisterKind::Coil
        })
    );
    let coil = coil.read_write();
    assert_eq!(coil.encode_write_bit(1), Ok(true));
    assert_eq!(coil.encode_write_bit(0), Ok(false));
    assert_eq!(
        coil.encode_write_bit(2),
        Err(EncodeError::OutOfRange {
            address: 7,
            value_type: ValueType::Bool,
            value: 2,
            min: 0,
            max: 1
        })
    );
    assert_eq!(
        coil.encode(1),
        Err(EncodeError::BitRegisterAsWords { address: 7 })
    );
    assert_eq!(
        holding(8, ValueType::U16).encode_bit(1),
        Err(EncodeError::WordRegisterAsBit { address: 8 })
    );
    // A discrete input can never be written, even if (invalidly) marked writable.
    let input = Register::new(
        9,
        RegisterKind::DiscreteInput,
        ValueType::Bool,
        Meaning::Other(9),
    )
    .read_write();
    assert!(matches!(
        input.encode_write_bit(1),
        Err(EncodeError::NotWritable { .. })
    ));
}

#[test]
fn regmap_div_round_examples() {
    assert_eq!(div_round(5, 2), Some(3));
    assert_eq!(div_round(-5, 2), Some(-3));
    assert_eq!(div_round(5, -2), Some(-3));
    assert_eq!(div_round(-5, -2), Some(3));
    assert_eq!(div_round(4, 3), Some(1));
    assert_eq!(div_round(5, 3), Some(2));
    assert_eq!(div_round(-4, 3), Some(-1));
    assert_eq!(div_round(1, 0), None);
    assert_eq!(div_round(i64::MIN, -1), None);
    assert_eq!(div_round(i64::MAX, 1), Some(i64::MAX));
}

// ---------------------------------------------------------------------------------------------
// State codes

#[test]
fn regmap_every_state_code_of_the_typical_profile() {
    let m = &TYPICAL_RCM_TEMP;
    let residual = [
        (0, ChannelState::Normal),
        (1, ChannelState::Alarm),
        (2, ChannelState::Fault(LeadOpen)),
        (3, ChannelState::Fault(LeadShort)),
    ];
    let temperature = [
        (0, ChannelState::Normal),
        (4, ChannelState::Alarm),
        (5, ChannelState::Fault(LeadOpen)),
        (6, ChannelState::Fault(LeadShort)),
    ];
    assert_eq!(m.state_codes.len(), residual.len() + temperature.len());
    for (code, state) in residual {
        assert_eq!(m.channel_state(0, code), Ok(state));
        assert_eq!(m.state_of(ResidualCurrent, code), Ok(state));
        assert_eq!(m.code_of(ResidualCurrent, state), Ok(code));
    }
    for channel in 1..=4 {
        for (code, state) in temperature {
            assert_eq!(m.channel_state(channel, code), Ok(state));
            assert_eq!(m.code_of(Temperature, state), Ok(code));
        }
    }
    // The state register decodes to the code.
    let reg = typical(Meaning::StateCode(2));
    let code = u16::try_from(reg.decode(&[5]).unwrap()).unwrap();
    assert_eq!(m.channel_state(2, code), Ok(ChannelState::Fault(LeadOpen)));
}

#[test]
fn regmap_unknown_state_code_is_an_error() {
    let m = &TYPICAL_RCM_TEMP;
    for code in [4, 5, 6, 7, 0xFFFF] {
        assert_eq!(
            m.channel_state(0, code),
            Err(StateCodeError::UnknownCode {
                code,
                quantity: ResidualCurrent
            })
        );
    }
    for code in [1, 2, 3, 7, 0xFFFF] {
        assert_eq!(
            m.channel_state(1, code),
            Err(StateCodeError::UnknownCode {
                code,
                quantity: Temperature
            })
        );
    }
    assert_eq!(
        m.channel_state(5, 0),
        Err(StateCodeError::UnknownChannel { channel: 5 })
    );
    assert_eq!(
        m.code_of(Temperature, ChannelState::Fault(SensorError)),
        Err(StateCodeError::NoCode {
            quantity: Temperature,
            state: ChannelState::Fault(SensorError)
        })
    );
    assert_eq!(
        StateCodeError::UnknownCode {
            code: 9,
            quantity: Temperature
        }
        .to_string(),
        "unknown state code 9 for a Temperature channel"
    );
}

#[test]
fn regmap_channel_quantities() {
    let m = &TYPICAL_RCM_TEMP;
    assert_eq!(m.channel_quantity(0), Some(ResidualCurrent));
    for ch in 1..=4 {
        assert_eq!(m.channel_quantity(ch), Some(Temperature));
    }
    assert_eq!(m.channel_quantity(5), None);
}

// ---------------------------------------------------------------------------------------------
// The built-in profile

#[test]
fn regmap_typical_profile_validates() {
    assert_eq!(TYPICAL_RCM_TEMP.validate(), Ok(()));
    assert_eq!(TYPICAL_RCM_TEMP.name, "typical-rcm-4t");
}

#[test]
fn regmap_typical_profile_matches_the_documented_table() {
    use Meaning::*;
    // (address, meaning, mul, div, offset, writable)
    let expected: [(u16, Meaning, i32, u32, i32, bool); 21] = [
        (0x0000, ResidualCurrent(0), 1, 10, 0, false),
        (0x0001, Temperature(1), 1, 1, -500, false),
        (0x0002, Temperature(2), 1, 1, -500, false),
        (0x0003, Temperature(3), 1, 1, -500, false),
        (0x0004, Temperature(4), 1, 1, -500, false),
        (0x0010, StateCode(0), 1, 1, 0, false),
        (0x0011, StateCode(1), 1, 1, 0, false),
        (0x0012, StateCode(2), 1, 1, 0, false),
        (0x0013, StateCode(3), 1, 1, 0, false),
        (0x0014, StateCode(4), 1, 1, 0, false),
        (0x0020, ResidualSetPoint(0), 1, 1, 0, true),
        (0x0021, TemperatureSetPoint(1), 1, 1, -500, true),
        (0x0022, TemperatureSetPoint(2), 1, 1, -500, true),
        (0x0023, TemperatureSetPoint(3), 1, 1, -500, true),
        (0x0024, TemperatureSetPoint(4), 1, 1, -500, true),
        (0x0030, AlarmDelay, 1, 1, 0, true),
        (0x0031, ReportPeriod, 1, 1, 0, true),
        (0x0032, HeartbeatPeriod, 1, 1, 0, true),
        (0x0033, ChannelEnable, 1, 1, 0, true),
        (0x0034, BuzzerEnable, 1, 1, 0, true),
        (0x0035, RelayEnable, 1, 1, 0, true),
    ];
    assert_eq!(TYPICAL_RCM_TEMP.registers.len(), expected.len());
    for (reg, (address, meaning, mul, div, offset, writable)) in
        TYPICAL_RCM_TEMP.registers.iter().zip(expected)
    {
        assert_eq!(
            *reg,
            Register {
                address,
                kind: RegisterKind::Holding,
                value_type: ValueType::U16,
                scale: Scale { mul, div, offset },
                writable,
                meaning,
            }
        );
        assert_eq!(
            TYPICAL_RCM_TEMP.at(RegisterKind::Holding, address),
            Some(reg)
        );
    }
    assert_eq!(TYPICAL_RCM_TEMP.at(RegisterKind::Input, 0), None);
    assert_eq!(TYPICAL_RCM_TEMP.at(RegisterKind::Holding, 0x0005), None);
}

#[test]
fn regmap_meaning_units() {
    assert_eq!(Meaning::ResidualSetPoint(0).unit(), Unit::MilliAmpere);
    assert_eq!(Meaning::Temperature(1).unit(), Unit::DeciCelsius);
    assert_eq!(Meaning::HeartbeatPeriod.unit(), Unit::Second);
    assert_eq!(Meaning::StateCode(1).unit(), Unit::Code);
    assert_eq!(Meaning::ChannelEnable.unit(), Unit::Bitmap);
    assert_eq!(Meaning::RelayEnable.unit(), Unit::Flag);
    assert_eq!(Meaning::FirmwareVersion.unit(), Unit::Number);
    assert_eq!(Meaning::StateCode(3).channel(), Some(3));
    assert_eq!(Meaning::StateCode(3).quantity(), None);
    assert_eq!(Meaning::AlarmDelay.channel(), None);
}

#[test]
fn regmap_serde_json_round_trip_and_defaults() {
    let mut buf = [0u8; 256];
    for reg in TYPICAL_RCM_TEMP.registers {
        let n = serde_json_core::to_slice(reg, &mut buf).unwrap();
        let (back, _): (Register, _) = serde_json_core::from_slice(&buf[..n]).unwrap();
        assert_eq!(back, *reg);
    }
    let u32_reg = holding(2, ValueType::I32(LO));
    let n = serde_json_core::to_slice(&u32_reg, &mut buf).unwrap();
    let (back, _): (Register, _) = serde_json_core::from_slice(&buf[..n]).unwrap();
    assert_eq!(back, u32_reg);

    // Scale and writable may be omitted.
    let json = br#"{"address":1,"kind":"Input","value_type":{"U32":"LowWordFirst"},"meaning":{"Temperature":1}}"#;
    let (reg, _): (Register, _) = serde_json_core::from_slice(json).unwrap();
    assert_eq!(
        reg,
        Register::new(
            1,
            RegisterKind::Input,
            ValueType::U32(LO),
            Meaning::Temperature(1)
        )
    );
    let json = br#"{"address":1,"kind":"Holding","value_type":"U16","scale":{"div":10},"writable":true,"meaning":"AlarmDelay"}"#;
    let (reg, _): (Register, _) = serde_json_core::from_slice(json).unwrap();
    assert_eq!(reg.scale, Scale::new(1, 10, 0));
    assert!(reg.writable);

    for row in TYPICAL_RCM_TEMP.state_codes {
        let n = serde_json_core::to_slice(row, &mut buf).unwrap();
        let (back, _): (StateCode, _) = serde_json_core::from_slice(&buf[..n]).unwrap();
        assert_eq!(back, *row);
    }
    let mut big = [0u8; 8192];
    let n = serde_json_core::to_slice(&TYPICAL_RCM_TEMP, &mut big).unwrap();
    assert!(big[..n].starts_with(br#"{"name":"typical-rcm-4t","registers":[{"address":0,"#));
}

// ---------------------------------------------------------------------------------------------
// Validation: one test per `MapError` variant

fn validate_with(extra: &[Register]) -> Result<(), MapError> {
    let mut regs = TYPICAL_REGISTERS.to_vec();
    regs.extend_from_slice(extra);
    RegisterMap::new("test", &regs, &TYPICAL_STATE_CODES).validate()
}

#[test]
fn regmap_validate_duplicate_address() {
    assert_eq!(
        validate_with(&[holding(0x0030, ValueType::U16)]),
        Err(MapError::DuplicateAddress {
            kind: RegisterKind::Holding,
            address: 0x0030
        })
    );
    // The same address in another address space is fine.
    let coil = Register::new(
        0x0030,
        RegisterKind::Coil,
        ValueType::Bool,
        Meaning::Other(1),
    );
    assert_eq!(validate_with(&[coil]), Ok(()));
}

#[test]
fn regmap_validate_overlap() {
    let wide = holding(0x0040, ValueType::U32(HI));
    let inside = holding(0x0041, ValueType::U16);
    assert_eq!(
        validate_with(&[wide, inside]),
        Err(MapError::Overlap {
            kind: RegisterKind::Holding,
            address: 0x0041,
            other: 0x0040
        })
    );
    assert_eq!(
        validate_with(&[inside, wide]),
        Err(MapError::Overlap {
            kind: RegisterKind::Holding,
            address: 0x0040,
            other: 0x0041
        })
    );
    // A 32-bit register running into the built-in's 0x0010.
    assert_eq!(
        validate_with(&[holding(0x000F, ValueType::I32(LO))]),
        Err(MapError::Overlap {
            kind: RegisterKind::Holding,
            address: 0x000F,
            other: 0x0010
        })
    );
    // Adjacent is fine.
    assert_eq!(
        validate_with(&[wide, holding(0x0042, ValueType::U16)]),
        Ok(())
    );
}

#[test]
fn regmap_validate_zero_divisor() {
    assert_eq!(
        validate_with(&[holding(0x0040, ValueType::U16).with_scale(1, 0, 0)]),
        Err(MapError::ZeroDivisor { address: 0x0040 })
    );
}

#[test]
fn regmap_validate_zero_multiplier() {
    assert_eq!(
        validate_with(&[holding(0x0040, ValueType::U16).with_scale(0, 1, 0)]),
        Err(MapError::ZeroMultiplier { address: 0x0040 })
    );
}

#[test]
fn regmap_validate_bool_on_word_kind() {
    let reg = Register::new(
        0x40,
        RegisterKind::Input,
        ValueType::Bool,
        Meaning::Other(1),
    );
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::BoolOnWordKind {
            kind: RegisterKind::Input,
            address: 0x40
        })
    );
}

#[test]
fn regmap_validate_word_type_on_bit_kind() {
    let reg = Register::new(0x40, RegisterKind::Coil, ValueType::U16, Meaning::Other(1));
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::WordTypeOnBitKind {
            kind: RegisterKind::Coil,
            address: 0x40
        })
    );
}

#[test]
fn regmap_validate_writable_read_only_kind() {
    let input = Register::new(0x40, RegisterKind::Input, ValueType::U16, Meaning::Other(1));
    assert_eq!(
        validate_with(&[input.read_write()]),
        Err(MapError::WritableReadOnlyKind {
            kind: RegisterKind::Input,
            address: 0x40
        })
    );
    let discrete = Register::new(
        0x41,
        RegisterKind::DiscreteInput,
        ValueType::Bool,
        Meaning::Other(2),
    );
    assert_eq!(validate_with(&[input, discrete]), Ok(()));
    assert_eq!(
        validate_with(&[discrete.read_write()]),
        Err(MapError::WritableReadOnlyKind {
            kind: RegisterKind::DiscreteInput,
            address: 0x41
        })
    );
}

#[test]
fn regmap_validate_duplicate_meaning() {
    let reg = Register::new(
        0x40,
        RegisterKind::Holding,
        ValueType::U16,
        Meaning::AlarmDelay,
    );
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::DuplicateMeaning {
            meaning: Meaning::AlarmDelay,
            address: 0x40,
            first: 0x30
        })
    );
}

#[test]
fn regmap_validate_past_address_space() {
    assert_eq!(
        validate_with(&[holding(0xFFFF, ValueType::U32(HI))]),
        Err(MapError::PastAddressSpace { address: 0xFFFF })
    );
    assert_eq!(
        validate_with(&[holding(0xFFFE, ValueType::U32(HI))]),
        Ok(())
    );
}

#[test]
fn regmap_validate_channel_out_of_range() {
    let reg = Register::new(
        0x40,
        RegisterKind::Input,
        ValueType::U16,
        Meaning::Temperature(16),
    );
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::ChannelOutOfRange {
            address: 0x40,
            channel: 16
        })
    );
}

#[test]
fn regmap_validate_state_without_quantity() {
    let reg = Register::new(
        0x40,
        RegisterKind::Holding,
        ValueType::U16,
        Meaning::StateCode(5),
    );
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::StateWithoutQuantity {
            address: 0x40,
            channel: 5
        })
    );
}

#[test]
fn regmap_validate_conflicting_quantity() {
    let reg = Register::new(
        0x40,
        RegisterKind::Holding,
        ValueType::U16,
        Meaning::ResidualCurrent(1),
    );
    assert_eq!(
        validate_with(&[reg]),
        Err(MapError::ConflictingQuantity {
            address: 0x40,
            channel: 1
        })
    );
}

#[test]
fn regmap_validate_duplicate_state_code() {
    let mut codes = TYPICAL_STATE_CODES.to_vec();
    codes.push(StateCode::new(5, Temperature, ChannelState::Alarm));
    assert_eq!(
        RegisterMap::new("test", &TYPICAL_REGISTERS, &codes).validate(),
        Err(MapError::DuplicateStateCode {
            code: 5,
            quantity: Temperature
        })
    );
    // The same code for the other quantity is fine.
    codes.pop();
    codes.push(StateCode::new(5, ResidualCurrent, ChannelState::Alarm));
    assert_eq!(
        RegisterMap::new("test", &TYPICAL_REGISTERS, &codes).validate(),
        Ok(())
    );
}

#[test]
fn regmap_error_messages_name_the_address() {
    let errors = [
        MapError::DuplicateAddress {
            kind: RegisterKind::Holding,
            address: 0x1234,
        },
        MapError::Overlap {
            kind: RegisterKind::Input,
            address: 0x1234,
            other: 0x1233,
        },
        MapError::ZeroDivisor { address: 0x1234 },
        MapError::ZeroMultiplier { address: 0x1234 },
        MapError::BoolOnWordKind {
            kind: RegisterKind::Holding,
            address: 0x1234,
        },
        MapError::WordTypeOnBitKind {
            kind: RegisterKind::Coil,
            address: 0x1234,
        },
        MapError::WritableReadOnlyKind {
            kind: RegisterKind::Input,
            address: 0x1234,
        },
        MapError::DuplicateMeaning {
            meaning: Meaning::AlarmDelay,
            address: 0x1234,
            first: 0x30,
        },
        MapError::PastAddressSpace { address: 0x1234 },
        MapError::ChannelOutOfRange {
            address: 0x1234,
            channel: 20,
        },
        MapError::StateWithoutQuantity {
            address: 0x1234,
            channel: 5,
        },
        MapError::ConflictingQuantity {
            address: 0x1234,
            channel: 1,
        },
    ];
    for e in errors {
        assert!(e.to_string().contains("0x1234"), "{e}");
    }
    assert_eq!(
        MapError::Overlap {
            kind: RegisterKind::Input,
            address: 0x1234,
            other: 0x1233,
        }
        .to_string(),
        "input register at 0x1234 overlaps the multi-word one at 0x1233"
    );
}

// ---------------------------------------------------------------------------------------------
// Read-block planning

fn blocks(map: &RegisterMap<'_>, kind: RegisterKind, max_gap: u16) -> Vec<(u16, u16)> {
    map.read_blocks(kind, max_gap)
        .map(|b| {
            assert_eq!(b.kind, kind);
            (b.start, b.count)
        })
        .collect()
}

#[test]
fn regmap_read_blocks_typical_profile() {
    let m = &TYPICAL_RCM_TEMP;
    let four = [(0x0000, 5), (0x0010, 5), (0x0020, 5), (0x0030, 6)];
    assert_eq!(blocks(m, RegisterKind::Holding, 0), four);
    assert_eq!(blocks(m, RegisterKind::Holding, 10), four);
    assert_eq!(blocks(m, RegisterKind::Holding, 11), [(0x0000, 54)]);
    assert_eq!(blocks(m, RegisterKind::Holding, u16::MAX), [(0x0000, 54)]);
    for kind in [
        RegisterKind::Input,
        RegisterKind::Coil,
        RegisterKind::DiscreteInput,
    ] {
        assert!(blocks(m, kind, 100).is_empty());
    }
}

#[test]
fn regmap_read_blocks_then_decode_the_whole_profile() {
    let m = &TYPICAL_RCM_TEMP;
    let block = m.read_blocks(RegisterKind::Holding, 11).next().unwrap();
    // Word i of the response holds the raw value 1000 + i.
    let response: Vec<u16> = (0..block.count).map(|i| 1000 + i).collect();
    for reg in m.registers {
        assert!(block.contains(reg));
        let w = block.words_for(reg, &response).unwrap();
        assert_eq!(w, [1000 + reg.address]);
        assert!(reg.decode(w).is_ok());
    }
    let temp2 = typical(Meaning::Temperature(2));
    assert_eq!(
        temp2.decode(block.words_for(temp2, &response).unwrap()),
        Ok(502)
    );
    assert_eq!(block.words_for(temp2, &response[..2]), None);

    let first = m.read_blocks(RegisterKind::Holding, 0).next().unwrap();
    let set_point = typical(Meaning::ResidualSetPoint(0));
    assert!(!first.contains(set_point));
    assert_eq!(first.offset_of(set_point), None);
    assert_eq!(first.offset_of(temp2), Some(2));
}

#[test]
fn regmap_read_blocks_respect_the_modbus_limit() {
    let regs: Vec<Register> = (0..200).map(|a| holding(a, ValueType::U16)).collect();
    let m = RegisterMap::new("t", &regs, &[]);
    assert_eq!(blocks(&m, RegisterKind::Holding, 0), [(0, 125), (125, 75)]);

    // A 32-bit register straddling the limit is not split.
    let mut regs: Vec<Register> = (0..124).map(|a| holding(a, ValueType::U16)).collect();
    regs.push(holding(124, ValueType::U32(HI)));
    let m = RegisterMap::new("t", &regs, &[]);
    assert_eq!(blocks(&m, RegisterKind::Holding, 0), [(0, 124), (124, 2)]);

    // Bits allow 2000 per read; registers at the top of the address space work.
    let mut regs: Vec<Register> = (0..2500)
        .map(|a| Register::new(a, RegisterKind::Coil, ValueType::Bool, Meaning::Other(a)))
        .collect();
    regs.push(holding(0xFFFE, ValueType::I32(HI)));
    let m = RegisterMap::new("t", &regs, &[]);
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(blocks(&m, RegisterKind::Coil, 0), [(0, 2000), (2000, 500)]);
    assert_eq!(blocks(&m, RegisterKind::Holding, 0), [(0xFFFE, 2)]);
}

#[test]
fn regmap_read_blocks_survive_an_invalid_map() {
    // Duplicates and overlaps: still terminates and covers everything.
    let regs = [
        holding(5, ValueType::U32(HI)),
        holding(5, ValueType::U16),
        holding(6, ValueType::U32(LO)),
        holding(3, ValueType::U16),
    ];
    let m = RegisterMap::new("bad", &regs, &[]);
    assert!(m.validate().is_err());
    assert_eq!(blocks(&m, RegisterKind::Holding, 0), [(3, 1), (5, 3)]);
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn word_order() -> impl Strategy<Value = WordOrder> {
    prop_oneof![Just(HI), Just(LO)]
}

fn word_type() -> impl Strategy<Value = ValueType> {
    prop_oneof![
        Just(ValueType::U16),
        Just(ValueType::I16),
        word_order().prop_map(ValueType::U32),
        word_order().prop_map(ValueType::I32),
    ]
}

fn any_type() -> impl Strategy<Value = ValueType> {
    prop_oneof![word_type(), Just(ValueType::Bool)]
}

fn any_kind() -> impl Strategy<Value = RegisterKind> {
    prop_oneof![
        Just(RegisterKind::Holding),
        Just(RegisterKind::Input),
        Just(RegisterKind::Coil),
        Just(RegisterKind::DiscreteInput),
    ]
}

fn valid_scale() -> impl Strategy<Value = Scale> {
    (
        any::<i32>().prop_filter("mul != 0", |m| *m != 0),
        1..=u32::MAX,
        any::<i32>(),
    )
        .prop_map(|(mul, div, offset)| Scale::new(mul, div, offset))
}

fn small_scale() -> impl Strategy<Value = Scale> {
    (
        prop_oneof![-1000..=-1i32, 1..=1000i32],
        1..=1000u32,
        -100_000..=100_000i32,
    )
        .prop_map(|(mul, div, offset)| Scale::new(mul, div, offset))
}

fn any_register() -> impl Strategy<Value = Register> {
    (
        any::<u16>(),
        any_kind(),
        any_type(),
        (any::<i32>(), any::<u32>(), any::<i32>()),
        any::<bool>(),
    )
        .prop_map(
            |(address, kind, value_type, (mul, div, offset), writable)| Register {
                address,
                kind,
                value_type,
                scale: Scale::new(mul, div, offset),
                writable,
                meaning: Meaning::Other(address),
            },
        )
}

/// Reference: round-half-away-from-zero division in i128.
fn reference_div_round(n: i64, d: i64) -> Option<i64> {
    let (n, d) = (i128::from(n), i128::from(d));
    let q = (2 * n.abs() + d.abs()) / (2 * d.abs());
    i64::try_from(if (n < 0) != (d < 0) { -q } else { q }).ok()
}

proptest! {
    #[test]
    fn regmap_prop_decode_never_panics_on_typical_profile(
        index in 0..TYPICAL_REGISTERS.len(),
        words in proptest::collection::vec(any::<u16>(), 0..4),
        value in any::<i32>(),
        bit in any::<bool>(),
    ) {
        let reg = &TYPICAL_REGISTERS[index];
        let decoded = reg.decode(&words);
        // All built-in registers are U16: any one word decodes.
        prop_assert_eq!(decoded.is_ok(), !words.is_empty());
        prop_assert!(reg.decode_bit(bit).is_err());
        let _ = reg.encode(value);
        let _ = reg.encode_write(value);
        let _ = reg.encode_bit(value);
        if let Ok(code) = decoded
            && let Meaning::StateCode(ch) = reg.meaning
        {
            let _ = TYPICAL_RCM_TEMP.channel_state(ch, u16::try_from(code).unwrap());
        }
    }

    #[test]
    fn regmap_prop_nothing_panics_on_arbitrary_registers(
        reg in any_register(),
        words in proptest::collection::vec(any::<u16>(), 0..4),
        value in any::<i32>(),
        bit in any::<bool>(),
    ) {
        let _ = reg.decode(&words);
        let _ = reg.decode_bit(bit);
        let _ = reg.encode(value);
        let _ = reg.encode_write(value);
        let _ = reg.encode_bit(value);
        let _ = reg.encode_write_bit(value);
        let _ = reg.value_range();
        let regs = [reg];
        let m = RegisterMap::new("p", &regs, &[]);
        let _ = m.validate();
        prop_assert!(m.read_blocks(reg.kind, 0).count() <= 1);
    }

    #[test]
    fn regmap_prop_div_round_matches_reference(n in any::<i64>(), d in any::<i64>()) {
        prop_assume!(d != 0);
        prop_assert_eq!(div_round(n, d), reference_div_round(n, d));
    }

    #[test]
    fn regmap_prop_typical_writable_round_trip(index in 0..TYPICAL_REGISTERS.len(), value in any::<i32>()) {
        let reg = &TYPICAL_REGISTERS[index];
        let range = reg.value_range().unwrap();
        match reg.encode_write(value) {
            Ok(raw) => {
                prop_assert!(reg.writable);
                prop_assert!(range.contains(&value));
                prop_assert_eq!(reg.decode(&raw), Ok(value));
            }
            Err(EncodeError::NotWritable { .. }) => prop_assert!(!reg.writable),
            Err(EncodeError::OutOfRange { min, max, .. }) => {
                prop_assert!(!range.contains(&value));
                prop_assert_eq!((min, max), (*range.start(), *range.end()));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn regmap_prop_typical_raw_round_trip(index in 0..TYPICAL_REGISTERS.len(), raw in any::<u16>()) {
        let reg = &TYPICAL_REGISTERS[index];
        let value = reg.decode(&[raw]).unwrap();
        if reg.scale.div == 1 {
            prop_assert_eq!(words(reg, value), [raw]);
        } else {
            // Residual current in 0.1 mA → mA: the server's re-encoding is within 0.5 mA (or,
            // for the top raw values that round up to 6554 mA, out of range).
            match reg.encode(value) {
                Ok(back) => prop_assert!((i32::from(back[0]) - i32::from(raw)).abs() <= 5),
                Err(e) => prop_assert!(raw > 65530, "{e}"),
            }
        }
    }

    #[test]
    fn regmap_prop_words_round_trip_identity(value_type in word_type(), w in any::<[u16; 2]>()) {
        let reg = holding(0, value_type);
        let width = usize::from(reg.width());
        match reg.decode(&w) {
            Ok(value) => prop_assert_eq!(words(&reg, value), &w[..width]),
            Err(DecodeError::Overflow { raw, .. }) => {
                prop_assert!(matches!(value_type, ValueType::U32(_)));
                prop_assert!(raw > i64::from(i32::MAX));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn regmap_prop_raw_round_trip_when_div_is_one(
        value_type in word_type(),
        mul in any::<i32>(),
        offset in any::<i32>(),
        w in any::<[u16; 2]>(),
    ) {
        prop_assume!(mul != 0);
        let reg = holding(0, value_type).with_scale(mul, 1, offset);
        if let Ok(value) = reg.decode(&w) {
            prop_assert_eq!(words(&reg, value), &w[..usize::from(reg.width())]);
        }
    }

    #[test]
    fn regmap_prop_value_round_trip_within_half_a_step(
        value_type in word_type(),
        scale in prop_oneof![small_scale(), valid_scale()],
        value in any::<i32>(),
    ) {
        let reg = holding(0, value_type).with_scale(scale.mul, scale.div, scale.offset);
        if let Ok(raw) = reg.encode(value) {
            // |decode(encode(v)) − v| <= |mul| / (2·div) + 1/2
            if let Ok(back) = reg.decode(&raw) {
                let err = (i128::from(back) - i128::from(value)).abs();
                let div = i128::from(scale.div);
                prop_assert!(2 * div * err <= i128::from(scale.mul).abs() + div);
            }
        }
        if scale.mul.unsigned_abs() == 1
            && scale.div == 1
            && let Ok(raw) = reg.encode(value)
        {
            prop_assert_eq!(reg.decode(&raw), Ok(value));
        }
    }

    #[test]
    fn regmap_prop_value_range_is_exact(
        value_type in any_type(),
        scale in prop_oneof![small_scale(), valid_scale()],
    ) {
        let reg = holding(0, value_type).with_scale(scale.mul, scale.div, scale.offset);
        let encodes = |v: i32| {
            if value_type.is_bool() {
                reg.encode_bit(v).is_ok()
            } else {
                reg.encode(v).is_ok()
            }
        };
        let range = reg.value_range().unwrap();
        let (lo, hi) = (*range.start(), *range.end());
        prop_assert!(lo <= scale.offset && scale.offset <= hi);
        prop_assert!(encodes(lo));
        prop_assert!(encodes(hi));
        if let Some(below) = lo.checked_sub(1) {
            prop_assert!(!encodes(below));
        }
        if let Some(above) = hi.checked_add(1) {
            prop_assert!(!encodes(above));
        }
    }

    #[test]
    fn regmap_prop_read_blocks_cover_each_register_once(
        addresses in proptest::collection::btree_set(0..2000u16, 0..300),
        wide in proptest::collection::vec(any::<bool>(), 300),
        max_gap in prop_oneof![Just(0u16), 0..200u16],
        reverse in any::<bool>(),
    ) {
        let addresses: Vec<u16> = addresses.into_iter().collect();
        let mut regs: Vec<Register> = addresses
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let room = addresses.get(i + 1).is_none_or(|&next| next > a + 1);
                let value_type = if room && wide[i] { ValueType::U32(HI) } else { ValueType::U16 };
                holding(a, value_type)
            })
            .collect();
        if reverse {
            regs.reverse();
        }
        let m = RegisterMap::new("p", &regs, &[]);
        prop_assert_eq!(m.validate(), Ok(()));
        let plan: Vec<ReadBlock> = m.read_blocks(RegisterKind::Holding, max_gap).collect();
        let mut previous_end = 0u32;
        for (i, block) in plan.iter().enumerate() {
            prop_assert!(block.count >= 1 && block.count <= MAX_READ_REGISTERS);
            prop_assert!(i == 0 || u32::from(block.start) >= previous_end);
            // Blocks start and end on registers.
            prop_assert!(regs.iter().any(|r| r.address == block.start));
            prop_assert!(regs.iter().any(|r| r.end() == block.end()));
            previous_end = block.end();
        }
        for reg in &regs {
            prop_assert_eq!(plan.iter().filter(|b| b.contains(reg)).count(), 1);
        }
        // Inside a block, no gap is longer than max_gap.
        for block in &plan {
            let mut inside: Vec<&Register> = regs.iter().filter(|r| block.contains(r)).collect();
            inside.sort_by_key(|r| r.address);
            for pair in inside.windows(2) {
                prop_assert!(u32::from(pair[1].address) - pair[0].end() <= u32::from(max_gap));
            }
        }
        // With no gap allowed, the plan is minimal: consecutive blocks are not mergeable.
        if max_gap == 0 {
            for pair in plan.windows(2) {
                prop_assert!(
                    pair[1].start as u32 > pair[0].end()
                        || pair[1].end() - u32::from(pair[0].start) > u32::from(MAX_READ_REGISTERS)
                );
            }
        }
    }
}
