//! Modbus TCP: connecting to a monitor or a serial-to-Ethernet converter.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_modbus::client::Context;

/// Connects to `address` (`host:port`) within `timeout`, with Nagle off (one small request
/// waits for one small reply: delayed ACKs would add tens of ms to each).
///
/// # Errors
/// The connection failed or took longer than `timeout`.
pub async fn connect(address: &str, timeout: Duration) -> io::Result<Context> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(tokio_modbus::client::tcp::attach(stream))
}
