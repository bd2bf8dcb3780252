//! Free loopback ports.
//!
//! A port is free when picked and taken by the caller a moment later; another process can
//! take it in between. So the harnesses that start a server on a picked port look at how the
//! server failed: when its log says the address was in use, they pick another port and start
//! it again ([`ATTEMPTS`] times). Servers in the test's own process bind port 0 instead, and
//! hold the socket.

use std::net::TcpListener;

/// How many ports a harness tries before it gives up.
pub const ATTEMPTS: usize = 5;

/// A loopback port nothing listened on a moment ago (bound to port 0, read, released).
///
/// # Panics
/// If the loopback interface cannot bind port 0 (no usable network stack).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface can bind port 0")
}

/// Whether a server's log says it could not bind because the address was taken: the clash
/// [`free_port`] cannot rule out.
pub fn clashed(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("address in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_recognised_in_the_logs_of_the_servers() {
        // Mosquitto, VictoriaMetrics (Go), the gateway (Rust's io::Error).
        assert!(clashed("Error: Address already in use"));
        assert!(clashed(
            "listen tcp 127.0.0.1:1: bind: address already in use"
        ));
        assert!(clashed("Address in use (os error 98)"));
        assert!(!clashed("Opening ipv4 listen socket on port 1883."));
    }

    #[test]
    fn a_free_port_can_be_bound_by_the_caller() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("free a moment ago");
    }
}
