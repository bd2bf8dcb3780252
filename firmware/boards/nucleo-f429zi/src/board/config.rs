//! What an installer or a developer changes for their site and build: the broker, the
//! credential, the relay, the outbox sizes. Everything else follows the hardware.

use core::net::Ipv4Addr;

use firegrid_firmware::drivers::outputs::RelayMode;
use firegrid_firmware::monitor::Layout;

/// The MQTT broker (the gateway's embedded broker by default listens on 1883). Change it here
/// and rebuild; the device finds its own address by DHCP.
pub(crate) const BROKER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
/// The broker's port.
pub(crate) const BROKER_PORT: u16 = 1883;

/// The device's own MQTT password (docs/protocol.md: one credential per device, never a
/// fleet-wide secret). An example board has no provisioning store yet: set it here for a
/// bench test, or leave `None` for a broker that lets devices in by client id.
pub(crate) const MQTT_PASSWORD: Option<&[u8]> = None;

/// The trip relay on D7 (PF13). Off and disabled by default: a monitor alarms, it does not cut
/// the supply (GB 50116 / GB 14287.5 §5.3.2). With `TripEnabled` the layout declares a relay
/// and a config with `relay_trip: true` may trip it; with `Disabled` the monitor refuses such a
/// config and the driver never energises the coil.
pub(crate) const RELAY_MODE: RelayMode = RelayMode::Disabled;

/// Outbox event slots: every alarm, fault, smoke and tamper edge of this board's 5 channels
/// and lines can be raised and cleared once with room to spare while the link is down (see
/// `firegrid_firmware::outbox`, "When the event area is full of critical events").
pub(crate) const OUTBOX_EVENTS: usize = 32;
/// Outbox telemetry slots: 128 reports, over two hours at the default 60 s interval, ride out
/// a broker or gateway restart or a switch reboot without a gap.
pub(crate) const OUTBOX_TELEMETRY: usize = 128;
/// Bytes per outbox slot: the typical monitor's telemetry is 180 bytes in JSON, every event
/// but a long `config_refused` fits (the device shortens that one's reason).
pub(crate) const PAYLOAD_BYTES: usize = 256;

/// The MQTT runner's receive buffer: twice the 2 KiB maximum inbound packet, so a connection
/// takes about 60 acks before its planned refresh (see `firegrid_firmware::mqtt`, "Memory").
pub(crate) const MQTT_RX_BYTES: usize = 8 * 1024;
/// TCP socket buffers, bytes.
pub(crate) const TCP_TX_BYTES: usize = 2 * 1024;
/// TCP socket receive buffer, bytes.
pub(crate) const TCP_RX_BYTES: usize = 2 * 1024;

/// This board: the typical electrical-fire monitor (channel 0 residual current, 1–4
/// temperature, a backup cell on VBAT), with the independent smoke alarm's lines attached and
/// the relay as [`RELAY_MODE`] says.
pub(crate) fn layout() -> Layout {
    Layout {
        smoke: true,
        relay: matches!(RELAY_MODE, RelayMode::TripEnabled),
        ..Layout::typical_monitor()
    }
}
