//! firegrid's model → GB/T 26875.3's components, statuses and analog values. Pure functions;
//! the table is in docs/gb26875.md.
//!
//! | firegrid | component type | component address |
//! | --- | --- | --- |
//! | a residual-current channel of a monitor | 17 residual-current electrical-fire detector | n × 256 + 1 + channel |
//! | a temperature channel of a monitor | 18 temperature electrical-fire detector | n × 256 + 1 + channel |
//! | a monitor itself (offline, battery, tamper) | 16 electrical-fire monitoring unit | n × 256 |
//! | a smoke alarm | 40 smoke detector | n × 256 |
//!
//! `n` is the device's number ([`super::store::UplinkStore::number_of`]).

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::gb26875::adu::{Component, Status};

use crate::model::{Category, DeviceKind};
use crate::notify::alert::AlertKind;

/// Component type 16: electrical fire monitoring alarm unit (table 6).
pub const ELECTRICAL_FIRE_MONITOR: u8 = 16;
/// Component type 17: residual-current electrical fire detector.
pub const RESIDUAL_CURRENT_DETECTOR: u8 = 17;
/// Component type 18: temperature electrical fire detector.
pub const TEMPERATURE_DETECTOR: u8 = 18;
/// Component type 40: smoke fire detector.
pub const SMOKE_DETECTOR: u8 = 40;

/// Analog type 3: temperature, 0.1 °C (table 7) — firegrid's deci-°C exactly.
pub const ANALOG_TEMPERATURE: u8 = 3;
/// Analog type 128 (user-defined): residual current, mA. The standard's current (type 9) counts
/// 0.1 A, too coarse for leakage set at 300 mA.
pub const ANALOG_RESIDUAL_MA: u8 = 128;

/// The component a device (and channel) is reported as.
pub fn component(
    number: u32,
    kind: DeviceKind,
    channel: Option<u8>,
    quantity: Option<Quantity>,
) -> Component {
    let base = number.saturating_mul(256);
    match (kind, channel) {
        (DeviceKind::SmokeAlarm, _) => Component {
            kind: SMOKE_DETECTOR,
            address: base,
        },
        (_, Some(ch)) => Component {
            kind: match quantity {
                Some(Quantity::Temperature) => TEMPERATURE_DETECTOR,
                _ => RESIDUAL_CURRENT_DETECTOR,
            },
            address: base | u32::from(ch.saturating_add(1)),
        },
        (_, None) => Component {
            kind: ELECTRICAL_FIRE_MONITOR,
            address: base,
        },
    }
}

/// The status word an alert reports, or `None` when it is not reported (escalations, which
/// are firegrid's business; tamper, which the standard has no bit for).
pub fn status(category: Category, what: AlertKind) -> Option<Status> {
    let condition = match category {
        Category::Alarm | Category::Smoke => Status::FIRE,
        Category::Fault | Category::Offline => Status::FAULT,
        Category::BatteryLow => Status::POWER_FAULT,
        Category::Tamper => return None,
    };
    match what {
        AlertKind::Opened => Some(Status(Status::NORMAL | condition)),
        AlertKind::Ended => Some(Status(Status::NORMAL)),
        AlertKind::Escalated => None,
    }
}

/// The description (GB18030 on the wire, cut to 31 bytes): device, what, channel.
pub fn description(
    device: &str,
    category: Category,
    what: AlertKind,
    channel: Option<u8>,
    quantity: Option<Quantity>,
) -> String {
    let condition = match (category, quantity) {
        (Category::Alarm, Some(Quantity::Temperature)) => "超温报警",
        (Category::Alarm, _) => "漏电报警",
        (Category::Smoke, _) => "烟雾报警",
        (Category::Fault, _) => "故障",
        (Category::Offline, _) => "离线",
        (Category::BatteryLow, _) => "电池欠压",
        (Category::Tamper, _) => "防拆",
    };
    let ended = if what == AlertKind::Ended {
        "恢复"
    } else {
        ""
    };
    match channel {
        Some(ch) => format!("{device} {condition}{ended} {}路", u16::from(ch) + 1),
        None => format!("{device} {condition}{ended}"),
    }
}

/// A reading as an analog value: (analog type, value).
pub fn analog(quantity: Quantity, value: i64) -> (u8, i16) {
    let v =
        i16::try_from(value.clamp(i64::from(i16::MIN), i64::from(i16::MAX))).unwrap_or(i16::MAX);
    match quantity {
        Quantity::ResidualCurrent => (ANALOG_RESIDUAL_MA, v),
        Quantity::Temperature => (ANALOG_TEMPERATURE, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_table() {
        let m = DeviceKind::ElectricalFireMonitor;
        assert_eq!(
            component(7, m, Some(0), Some(Quantity::ResidualCurrent)),
            Component {
                kind: 17,
                address: 7 * 256 + 1
            }
        );
        assert_eq!(
            component(7, m, Some(3), Some(Quantity::Temperature)),
            Component {
                kind: 18,
                address: 7 * 256 + 4
            }
        );
        assert_eq!(
            component(7, m, None, None),
            Component {
                kind: 16,
                address: 1792
            }
        );
        assert_eq!(
            component(9, DeviceKind::SmokeAlarm, None, None),
            Component {
                kind: 40,
                address: 2304
            }
        );
        assert_eq!(
            status(Category::Alarm, AlertKind::Opened),
            Some(Status(0x0003))
        );
        assert_eq!(
            status(Category::Smoke, AlertKind::Opened),
            Some(Status(0x0003))
        );
        assert_eq!(
            status(Category::Fault, AlertKind::Opened),
            Some(Status(0x0005))
        );
        assert_eq!(
            status(Category::BatteryLow, AlertKind::Opened),
            Some(Status(0x0101))
        );
        assert_eq!(
            status(Category::Alarm, AlertKind::Ended),
            Some(Status(0x0001))
        );
        assert_eq!(status(Category::Alarm, AlertKind::Escalated), None);
        assert_eq!(status(Category::Tamper, AlertKind::Opened), None);
        assert_eq!(analog(Quantity::ResidualCurrent, 412), (128, 412));
        assert_eq!(analog(Quantity::Temperature, 100_000), (3, i16::MAX));
        assert_eq!(
            description("hz-1", Category::Alarm, AlertKind::Opened, Some(0), None),
            "hz-1 漏电报警 1路"
        );
    }
}
