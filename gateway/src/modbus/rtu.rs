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

/// Opens the serial port at `baud`, 8N1, as a Modbus RTU client.
///
/// A port is opened again after a timeout or a bad frame: what a late reply left in the input
/// buffer is discarded first, so it cannot be read as the answer to the next request. A reply
/// later still (after the port was reopened) fails its CRC/length checks or the poller's size
/// check, and costs one more reopen.
///
/// # Errors
/// The port does not exist or cannot be configured.
pub fn open(path: &Path, baud: u32) -> io::Result<Context> {
    use tokio_serial::SerialPort as _;
    let port = tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .open_native_async()
        .map_err(io::Error::other)?;
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
