//! What the HTTP API tells the running pipeline: changes that the engine and the devices must
//! learn about. Sent on a bounded channel; the pipeline applies them in order.

use firegrid_protocols::DeviceId;

use crate::model::EpisodeId;

/// A change made through the API that the pipeline must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A ticket reached `acknowledged` or beyond: stop escalating the episode.
    Acknowledged(EpisodeId),
    /// A device was registered, commissioned, re-bound or got new set-points: reload its spec
    /// into the engine and publish its config (retained) if it changed.
    DeviceChanged(DeviceId),
    /// A device was decommissioned or deleted: its open episodes end.
    DeviceRemoved(DeviceId),
    /// Send a command to a device (self-test, silence, reset, reboot); the pipeline assigns
    /// the command id and time.
    Command(DeviceId, firegrid_protocols::message::Action),
    /// An acknowledged ticket was not rectified by its deadline: escalate it to `level`
    /// ([`crate::workflow`]).
    Overdue {
        /// The episode.
        id: EpisodeId,
        /// The level to escalate to.
        level: u8,
    },
}
