//! What a monitor channel measures and what state it is in.
//!
//! A *channel* is one sensing point of a device: the residual-current transformer on a circuit,
//! or one temperature probe on a terminal. Channels are numbered from 0 within a device.

use serde::{Deserialize, Serialize};

/// The most channels one device reports (the typical commercial monitor has 1 residual-current
/// and 4 temperature channels; bigger multi-circuit monitors have up to 16).
pub const MAX_CHANNELS: usize = 16;

/// A channel number within one device, `0..MAX_CHANNELS`.
pub type ChannelNo = u8;

/// The physical quantity a channel's alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Residual (leakage) current, in mA (GB 14287.2).
    ResidualCurrent,
    /// Conductor or terminal temperature, in deci-°C (GB 14287.3).
    Temperature,
}

/// Why a channel cannot measure: a fault, shown distinctly from an alarm (GB 14287.5-2025 §5.3.5,
/// GB 14287.3 §6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultCause {
    /// The sensor lead (CT secondary or temperature probe) is open.
    LeadOpen,
    /// The sensor lead is shorted.
    LeadShort,
    /// The measuring chip itself does not answer or reports an internal error.
    SensorError,
}

/// The state of one channel as a device reports it (e.g. a Modbus state-code register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChannelState {
    /// Measuring, below the alarm set-point.
    Normal,
    /// At or above the alarm set-point.
    Alarm,
    /// Cannot measure.
    Fault(FaultCause),
}
