//! A one-shot MQTT probe: TCP connect, CONNECT, wait for CONNACK, close.
//!
//! Used to tell when a broker (the embedded one, or Mosquitto in tests) really answers MQTT on an
//! address, rather than sleeping and hoping. It speaks just enough MQTT 3.1.1 and 5 for that and
//! needs no client library, so it cannot be confused by a client's reconnect logic.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which MQTT protocol version a probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5 (protocol level 5).
    V5,
}

impl MqttVersion {
    fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
}

impl std::fmt::Display for MqttVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311 => "MQTT 3.1.1",
            Self::V5 => "MQTT 5",
        })
    }
}

/// Why a probe did not get a CONNACK that accepts the connection.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing accepted the TCP connection.
    #[error("TCP connect failed: {0}")]
    Connect(#[source] io::Error),
    /// The connection broke during the handshake (often: the peer does not speak this version).
    #[error("connection broke during the MQTT handshake: {0}")]
    Io(#[source] io::Error),
    /// No CONNACK within the probe's time.
    #[error("no CONNACK within {0:?}")]
    Timeout(Duration),
    /// A CONNACK came, refusing the connection.
    #[error("the broker refused the connection (return/reason code {0:#04x})")]
    Refused(u8),
    /// Something that is not a CONNACK came back.
    #[error("the answer is not an MQTT CONNACK (first byte {0:#04x})")]
    NotConnAck(u8),
}

/// Probes `addr` once: connects, sends a clean-session CONNECT without credentials, and waits
/// for a CONNACK that accepts it, all within `timeout`; then closes the connection. A broker
/// that refuses anonymous clients answers [`ProbeError::Refused`]: it is up, but says no.
pub async fn probe(
    addr: SocketAddr,
    version: MqttVersion,
    timeout: Duration,
) -> Result<(), ProbeError> {
    probe_as(addr, version, timeout, None).await
}

/// [`probe`] with a username and password; the client id is the username (as the managed
/// broker requires).
pub async fn probe_as(
    addr: SocketAddr,
    version: MqttVersion,
    timeout: Duration,
    login: Option<(&str, &str)>,
) -> Result<(), ProbeError> {
    match tokio::time::timeout(timeout, probe_inner(addr, version, login)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

async fn probe_inner(
    addr: SocketAddr,
    version: MqttVersion,
    login: Option<(&str, &str)>,
) -> Result<(), ProbeError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(ProbeError::Connect)?;
    stream.set_nodelay(true).map_err(ProbeError::Io)?;
    let packet = match login {
        Some((user, password)) => connect_packet(version, user, Some((user, password))),
        None => connect_packet(version, &probe_client_id(), None),
    };
    stream.write_all(&packet).await.map_err(ProbeError::Io)?;

    let mut first = [0u8; 1];
    stream
        .read_exact(&mut first)
        .await
        .map_err(ProbeError::Io)?;
    if first[0] != 0x20 {
        return Err(ProbeError::NotConnAck(first[0]));
    }
    let len = read_remaining_length(&mut stream).await?;
    if !(2..=256).contains(&len) {
        return Err(ProbeError::NotConnAck(first[0]));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.map_err(ProbeError::Io)?;
    // Byte 0: acknowledge flags; byte 1: return code (3.1.1) or reason code (5); 0 = accepted.
    if body[1] != 0 {
        return Err(ProbeError::Refused(body[1]));
    }
    // A clean goodbye, so the broker's log shows no socket error for a probe.
    let _ = stream.write_all(&[0xE0, 0x00]).await;
    drop(stream);
    Ok(())
}

async fn read_remaining_length(stream: &mut TcpStream) -> Result<usize, ProbeError> {
    let mut value = 0usize;
    for i in 0..4 {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.map_err(ProbeError::Io)?;
        value |= usize::from(byte[0] & 0x7F) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProbeError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        "malformed remaining length",
    )))
}

/// A client id no real client uses, unique within this process, of `[A-Za-z0-9-]` only.
fn probe_client_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "firegrid-probe-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// CONNECT: clean session, keep-alive 10 s, no will, optionally a username and password.
fn connect_packet(version: MqttVersion, client_id: &str, login: Option<(&str, &str)>) -> Vec<u8> {
    fn string(body: &mut Vec<u8>, s: &str) {
        // Probe strings are ids and secrets of a few dozen bytes; longer ones are cut rather
        // than panicking (the broker then refuses the login, which the caller sees).
        let s = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(s);
    }
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    let mut body = Vec::with_capacity(64 + client_id.len());
    body.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', version.level(), flags]);
    body.extend_from_slice(&10u16.to_be_bytes());
    if version == MqttVersion::V5 {
        body.push(0x00); // no properties
    }
    string(&mut body, client_id);
    if let Some((user, password)) = login {
        string(&mut body, user);
        string(&mut body, password);
    }

    let mut packet = Vec::with_capacity(body.len() + 4);
    packet.push(0x10);
    // The remaining length, 7 bits a byte.
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets_are_well_formed() {
        let p = connect_packet(MqttVersion::V311, "abc", None);
        assert_eq!(
            p,
            [
                0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 3, b'a', b'b', b'c'
            ]
        );
        let p = connect_packet(MqttVersion::V5, "abc", None);
        assert_eq!(p[1], 16);
        assert_eq!(p[8], 5);
        assert_eq!(p[12], 0, "empty property list");
        let p = connect_packet(MqttVersion::V311, "u", Some(("u", &"p".repeat(200))));
        assert_eq!(p[10], 0xC2, "username and password flags");
        assert_eq!(p[1] & 0x80, 0x80, "a two-byte remaining length");
        let len = usize::from(p[1] & 0x7F) + 128 * usize::from(p[2]);
        assert_eq!(len, p.len() - 3);
    }

    #[tokio::test]
    async fn probe_of_a_closed_port_fails_fast() {
        let port = firegrid_testkit::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let err = probe(addr, MqttVersion::V311, Duration::from_secs(2))
            .await
            .expect_err("nothing listens there");
        assert!(matches!(err, ProbeError::Connect(_)), "{err}");
    }
}
