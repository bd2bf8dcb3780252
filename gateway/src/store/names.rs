//! How enumerations and ids are written in the database (the names of the API and the
//! protocol, snake_case), and read back.

use std::str::FromStr;

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::{EventKind, Level};
use firegrid_protocols::{DeviceId, GridId};

use super::StoreError;
use crate::model::{Category, DeviceKind, DeviceState, Source, TicketState};

pub(super) fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{what} {:?}",
        value.chars().take(64).collect::<String>()
    ))
}

pub(super) fn device_id(s: &str) -> Result<DeviceId, StoreError> {
    DeviceId::new(s).map_err(|_| invalid("device id", s))
}

pub(super) fn grid_id(s: &str) -> Result<GridId, StoreError> {
    GridId::new(s).map_err(|_| invalid("area id", s))
}

pub(super) fn category(s: &str) -> Result<Category, StoreError> {
    Category::from_str(s).map_err(|_| invalid("category", s))
}

pub(super) fn ticket(s: &str) -> Result<TicketState, StoreError> {
    TicketState::from_str(s).map_err(|_| invalid("ticket state", s))
}

pub(super) const fn source_str(s: Source) -> &'static str {
    match s {
        Source::Device => "device",
        Source::Gateway => "gateway",
    }
}

pub(super) fn source(s: &str) -> Result<Source, StoreError> {
    match s {
        "device" => Ok(Source::Device),
        "gateway" => Ok(Source::Gateway),
        _ => Err(invalid("source", s)),
    }
}

pub(super) const fn quantity_str(q: Quantity) -> &'static str {
    match q {
        Quantity::ResidualCurrent => "residual_current",
        Quantity::Temperature => "temperature",
    }
}

pub(super) fn quantity(s: &str) -> Result<Quantity, StoreError> {
    match s {
        "residual_current" => Ok(Quantity::ResidualCurrent),
        "temperature" => Ok(Quantity::Temperature),
        _ => Err(invalid("quantity", s)),
    }
}

/// A peak from its three columns (all set or none).
pub(super) fn level(
    quantity_col: Option<String>,
    value: Option<i64>,
    threshold: Option<i64>,
) -> Result<Option<Level>, StoreError> {
    match (quantity_col, value, threshold) {
        (Some(q), Some(v), Some(t)) => Ok(Some(Level {
            quantity: quantity(&q)?,
            value: i32::try_from(v).map_err(|_| invalid("peak value", &v.to_string()))?,
            threshold: i32::try_from(t).map_err(|_| invalid("peak threshold", &t.to_string()))?,
        })),
        _ => Ok(None),
    }
}

pub(super) const fn device_kind_str(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::ElectricalFireMonitor => "electrical_fire_monitor",
        DeviceKind::SmokeAlarm => "smoke_alarm",
        DeviceKind::LegacyModbus => "legacy_modbus",
    }
}

pub(super) fn device_kind(s: &str) -> Result<DeviceKind, StoreError> {
    match s {
        "electrical_fire_monitor" => Ok(DeviceKind::ElectricalFireMonitor),
        "smoke_alarm" => Ok(DeviceKind::SmokeAlarm),
        "legacy_modbus" => Ok(DeviceKind::LegacyModbus),
        _ => Err(invalid("device kind", s)),
    }
}

pub(super) const fn device_state_str(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Registered => "registered",
        DeviceState::Commissioned => "commissioned",
        DeviceState::InService => "in_service",
        DeviceState::Decommissioned => "decommissioned",
    }
}

pub(super) fn device_state(s: &str) -> Result<DeviceState, StoreError> {
    match s {
        "registered" => Ok(DeviceState::Registered),
        "commissioned" => Ok(DeviceState::Commissioned),
        "in_service" => Ok(DeviceState::InService),
        "decommissioned" => Ok(DeviceState::Decommissioned),
        _ => Err(invalid("device state", s)),
    }
}

/// The protocol's name of an event kind (the `kind` field of docs/protocol.md#event).
pub(super) const fn event_kind_str(k: &EventKind) -> &'static str {
    match k {
        EventKind::AlarmRaised { .. } => "alarm_raised",
        EventKind::AlarmCleared { .. } => "alarm_cleared",
        EventKind::Fault { .. } => "fault",
        EventKind::FaultCleared { .. } => "fault_cleared",
        EventKind::Smoke => "smoke",
        EventKind::SmokeCleared => "smoke_cleared",
        EventKind::BatteryLow { .. } => "battery_low",
        EventKind::BatteryOk { .. } => "battery_ok",
        EventKind::SelfTest { .. } => "self_test",
        EventKind::Silenced { .. } => "silenced",
        EventKind::Tamper => "tamper",
        EventKind::TamperCleared => "tamper_cleared",
        EventKind::CommandResult { .. } => "command_result",
        EventKind::ConfigApplied { .. } => "config_applied",
        EventKind::ConfigRefused { .. } => "config_refused",
    }
}
