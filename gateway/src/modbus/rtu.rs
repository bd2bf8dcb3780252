//! Modbus RTU over a serial line (RS-485): opening the port, and the line's timing.
//!
//! Modbus over serial line (V1.02 §2.5.1.1) ends a frame with at least 3.5 character times of
//! silence; a master must leave that gap between frames. One character is 11 bits (start, 8
//! data, parity or a second stop, stop); above 19200 baud the gap is fixed at 1.75 ms.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio_modbus::client::Context;
use tokio_serial::SerialPortBuilderExt;

/// The silence between two frames at `baud`: 3.5 characters of 11 bits, 1.75 ms above 19200.
pub fn inter_frame_gap(baud: u32) -> Duration {
    if baud == 0 || baud > 19_200 {
        return Duration::from_micros(1750);
    }
    // 3.5 × 11 bits = 38.5 bit times.
    Duration::from_micros(38_500_000u64.div_ceil(u64::from(baud)))
}

/// Opens the serial port at `baud`, 8N1, as a Modbus RTU client, after `quiet` of listening.
///
/// An RTU frame carries no transaction id: a late reply to a timed-out request looks like the
/// answer to the next one of the same function. So a port opened again after a timeout or a
/// bad frame first waits `quiet` (the request timeout: a reply that late is let arrive) and
/// then discards its input buffer. A reply later still fails the CRC or the poller's size
/// check and costs one more reopen; between two blocks of equal size of one device it could
/// be misread, which is why `quiet` should exceed the slowest device's turnaround.
///
/// # Errors
/// The port does not exist or cannot be configured.
pub async fn open(path: &Path, baud: u32, quiet: Duration) -> io::Result<Context> {
    use tokio_serial::SerialPort as _;
    let port = tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .open_native_async()
        .map_err(io::Error::other)?;
    if !quiet.is_zero() {
        tokio::time::sleep(quiet).await;
    }
    port.clear(tokio_serial::ClearBuffer::Input)
        .map_err(io::Error::other)?;
    Ok(tokio_modbus::client::rtu::attach(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_three_and_a_half_characters() {
        assert_eq!(inter_frame_gap(9600), Duration::from_micros(4011));
        assert_eq!(inter_frame_gap(19_200), Duration::from_micros(2006));
        assert_eq!(inter_frame_gap(115_200), Duration::from_micros(1750));
    }
}
