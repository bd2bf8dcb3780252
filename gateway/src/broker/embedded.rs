//! The embedded MQTT broker: rumqttd 0.20 in this process, so one command runs everything.
//!
//! [`EmbeddedBroker::start`] checks that the listen addresses are free, starts rumqttd on its own
//! OS thread and returns once both listeners answer an MQTT CONNECT with a CONNACK.
//!
//! What to know about rumqttd 0.20 (measured, and read in its source):
//!
//! - **It cannot be stopped.** `rumqttd::Broker::start` blocks for ever; the broker runs a router
//!   thread and one thread per listener, each with its own Tokio runtime, beside the gateway's
//!   runtime. It ends when the process exits. [`EmbeddedBroker`] has no stop and its drop does
//!   nothing; tests that start many brokers leak their threads until the test binary exits.
//! - **It keeps nothing on disk**: sessions, queued and retained messages die with the process
//!   (and the gateway with it; the end-to-end acknowledgement makes that safe for events: devices
//!   resend what the gateway has not journaled).
//! - **No topic ACLs**: any client may publish on any topic. Username/password checks exist in
//!   rumqttd but are not wired here yet; bind to loopback or a trusted network.
//! - **One protocol per listener.** The MQTT 5 listener ([`EmbeddedConfig::listen`], for devices,
//!   whose firmware speaks MQTT 5 only) closes a 3.1.1 CONNECT without a CONNACK, and the
//!   3.1.1 listener ([`EmbeddedConfig::listen_v311`], for the gateway's own client and
//!   third-party tools) closes an MQTT 5 CONNECT. Messages cross between them.
//! - **A taken port is only logged** and the broker keeps "running" without that listener, so
//!   [`EmbeddedBroker::start`] binds each address itself first and fails with
//!   [`EmbeddedError::PortInUse`]. Between that check and rumqttd's bind another process could
//!   still take the port; the readiness probe then usually fails (or, if that process speaks
//!   MQTT, talks to it).
//! - **Port 0 cannot be read back from rumqttd**, so `start` resolves port 0 itself (binds port 0,
//!   reads the port the kernel gave, releases it) before handing the concrete port to rumqttd.
//! - **It logs at ERROR for ordinary events** (a client disconnecting, a probe, a client id taking
//!   over another connection). The binary must install [`TRACING_DIRECTIVES`] in its filter.
//! - **A packet over its maximum drops the connection**, so [`EmbeddedConfig::max_payload`] is
//!   checked to exceed the protocol's [`MAX_PAYLOAD`] with room for topic and headers.
//! - **Out-of-order PUBACKs disconnect the subscriber** ("Unsolicited/ooo ack"); MQTT requires
//!   in-order acknowledgement anyway, and [`super::client`] releases acks in order.
//! - **Retained messages on subscribe are capped** at the subscriber's free in-flight slots (100
//!   for QoS 1): a wildcard subscription to `status` gets at most ~100 of the retained statuses.
//!   The gateway must not rebuild device state from retained messages of the embedded broker.
//! - **Every subscription filter has an in-memory log** of the messages on it. A subscriber that
//!   falls further behind than the log holds loses the oldest messages (rumqttd logs a warning
//!   "jumping to head"). The device uplink filters get a large log
//!   ([`EmbeddedConfig::uplink_log_bytes`], made when the broker starts, so a device publishing
//!   before the gateway subscribes does not grow a per-topic log of its own); every other
//!   filter (a device's `config`, `cmd`, `ack`) a small one ([`EmbeddedConfig::topic_log_bytes`]).
//! - Sessions of disconnected persistent clients are kept for ever (no session expiry).
//! - **Known bug: a listener can die for good** (rumqtt#1062, fix in the unreleased PR #1066).
//!   When a connection fails after its CONNECT was read (e.g. a client id containing `/`, `+`,
//!   `#` or `$`, the connection limit, or the race below), rumqttd leaves a stale entry for that
//!   client id; the next CONNECT with the same client id panics while holding a mutex, and from
//!   then on every connection to that listener panics: the listener accepts and closes at once.
//!   Two CONNECTs with client id `a/b` are enough (tested). A race makes it happen by itself:
//!   rumqttd handles a client's DISCONNECT packet and the socket's close as two disconnections
//!   of one connection id, so when a new connection was given that id in between, the second one
//!   kills it. This module's probe and [`super::client`] never send DISCONNECT before
//!   reconnecting, but devices and tools may. [`EmbeddedBroker::watch`] notices a dead
//!   listener; the process must then exit and be restarted (the end-to-end acknowledgement
//!   makes that safe). The real fix is a patched rumqttd.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use firegrid_protocols::codec::MAX_PAYLOAD;
use firegrid_protocols::topic::{ALERT_FILTER, DEVICE_UPLINK_FILTERS};

use super::probe::{MqttVersion, ProbeError, probe};

/// The `tracing` filter directives the binary must add for the embedded broker.
///
/// rumqttd logs ordinary events at ERROR: every client disconnect ("disconnected",
/// "connection-stop") and readiness probe, a CONNECT of the wrong protocol version (all from
/// `rumqttd::server`), a client saying DISCONNECT ("no-connection id N is already gone"), a client
/// id taking over an older connection (both from `rumqttd::router::routing`). Those targets are
/// switched off; that also hides the router's real errors ("no space for new connection",
/// "Failed to append to commitlog"), which the client's side sees as refused connections. The
/// message logs (`rumqttd::segments`: "jumping to head", a subscriber lost messages) and the
/// rest keep WARN and above.
///
/// Use it as e.g. `EnvFilter::new(format!("info,{TRACING_DIRECTIVES}"))`.
pub const TRACING_DIRECTIVES: &str =
    "rumqttd=warn,rumqttd::server=off,rumqttd::router::routing=off";

/// The smallest [`EmbeddedConfig::max_payload`]: the protocol's largest message plus room for the
/// topic (at most 58 bytes) and the MQTT headers.
pub const MIN_MAX_PAYLOAD: usize = MAX_PAYLOAD + 256;

/// Settings of the embedded broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// The MQTT 5 listener, for devices. Default `127.0.0.1:1883`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The MQTT 3.1.1 listener, for the gateway's own client and third-party tools. Default
    /// `127.0.0.1:1884`. Port 0 picks a free port.
    pub listen_v311: SocketAddr,
    /// Most simultaneous connections; more are refused. Default 10 000.
    pub max_connections: usize,
    /// Largest MQTT packet accepted from a client, in bytes (a bigger one drops the connection).
    /// Default 8192; at least [`MIN_MAX_PAYLOAD`].
    pub max_payload: usize,
    /// How many packets one connection's reader batches before handing them to the router (the
    /// rumqttd `max_inflight_count`). Default 100.
    pub max_inflight: usize,
    /// How long a new TCP connection may take to send its CONNECT. Default 10 s, at most 65 s.
    pub connect_timeout: Duration,
    /// How long [`EmbeddedBroker::start`] waits for both listeners to answer. Default 10 s.
    pub ready_timeout: Duration,
    /// Memory kept for each device uplink filter's message log (`firegrid/v1/dev/+/telemetry`,
    /// `.../event`, `.../status`), in bytes: how far the gateway's subscription may fall behind
    /// before the broker drops the oldest messages. Default 8 MiB (kept in 8 segments).
    pub uplink_log_bytes: usize,
    /// Memory kept for the log of the alert filters every grid worker's app or a monitoring
    /// centre subscribes to (`firegrid/v1/alert/#`, `firegrid/v1/alert/+`), in bytes: how big a
    /// burst of alerts a subscriber may fall behind by without losing any. Default 1 MiB (about
    /// 3000 alerts, kept in 4 segments). A subscription to one grid cell's topic has the default
    /// of other filters ([`Self::topic_log_bytes`]).
    pub alert_log_bytes: usize,
    /// Memory kept for any other filter's log (e.g. one device's `ack`), in bytes. Default 8 KiB
    /// (2 segments; at least 2 KiB).
    pub topic_log_bytes: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            listen_v311: SocketAddr::from(([127, 0, 0, 1], 1884)),
            max_connections: 10_000,
            max_payload: 2 * MAX_PAYLOAD,
            max_inflight: 100,
            connect_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(10),
            uplink_log_bytes: 8 << 20,
            alert_log_bytes: 1 << 20,
            topic_log_bytes: 8 << 10,
        }
    }
}

impl EmbeddedConfig {
    /// A configuration on loopback with both listeners on free ports (port 0), for tests.
    pub fn loopback_free_ports() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            listen_v311: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), EmbeddedError> {
        let bad = |reason: String| Err(EmbeddedError::Config(reason));
        if self.listen == self.listen_v311 && self.listen.port() != 0 {
            return bad(format!(
                "listen and listen_v311 are both {}: the MQTT 5 and MQTT 3.1.1 listeners need \
                 different ports",
                self.listen
            ));
        }
        if self.max_payload < MIN_MAX_PAYLOAD {
            return bad(format!(
                "max_payload {} is below {MIN_MAX_PAYLOAD} (the protocol's {MAX_PAYLOAD}-byte \
                 messages plus topic and headers); the broker would drop devices sending them",
                self.max_payload
            ));
        }
        if self.max_connections == 0 || self.max_inflight == 0 {
            return bad("max_connections and max_inflight must be at least 1".into());
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > Duration::from_millis(65_535) {
            return bad(format!(
                "connect_timeout {:?} must be between 1 ms and 65.535 s",
                self.connect_timeout
            ));
        }
        if self.uplink_log_bytes < 8 << 10 || self.topic_log_bytes < 2 << 10 {
            return bad(format!(
                "uplink_log_bytes {} must be at least 8 KiB and topic_log_bytes {} at least 2 KiB",
                self.uplink_log_bytes, self.topic_log_bytes
            ));
        }
        Ok(())
    }
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The configuration cannot work.
    #[error("embedded MQTT broker: {0}")]
    Config(String),
    /// Something already listens on a configured address.
    #[error(
        "embedded MQTT broker: port {port} on {ip} is in use: {source}; stop what uses it or set \
         [broker] {key} = \"IP:PORT\" to a free address",
        port = addr.port(),
        ip = addr.ip()
    )]
    PortInUse {
        /// The address.
        addr: SocketAddr,
        /// The configuration key that names it (`listen` or `listen_v311`).
        key: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// A configured address cannot be bound for another reason (not an address of this host,
    /// a privileged port, ...).
    #[error("embedded MQTT broker: cannot listen on {addr} ([broker] {key}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The configuration key that names it.
        key: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// The broker's thread could not be started.
    #[error("embedded MQTT broker: cannot start its thread: {0}")]
    Thread(#[source] io::Error),
    /// The broker's thread ended during start-up (see the log for rumqttd's reason).
    #[error("embedded MQTT broker: it stopped while starting (see the log)")]
    Exited,
    /// A listener did not answer an MQTT CONNECT in time.
    #[error(
        "embedded MQTT broker: the {version} listener on {addr} did not answer within \
         {waited:?}: {last}"
    )]
    NotReady {
        /// The listener's address.
        addr: SocketAddr,
        /// The protocol it speaks.
        version: MqttVersion,
        /// How long start waited.
        waited: Duration,
        /// The last probe's failure.
        last: ProbeError,
    },
}

/// The running embedded broker. It runs until the process exits (rumqttd has no stop).
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    listen: SocketAddr,
    listen_v311: SocketAddr,
    exited: Arc<AtomicBool>,
}

impl EmbeddedBroker {
    /// Checks the addresses are free, starts rumqttd on its own thread, and returns once both
    /// listeners answer an MQTT CONNECT (polled every 10 ms up to
    /// [`EmbeddedConfig::ready_timeout`]).
    pub async fn start(config: EmbeddedConfig) -> Result<Self, EmbeddedError> {
        config.validate()?;
        let listen = resolve_free(config.listen, "listen")?;
        let listen_v311 = resolve_free(config.listen_v311, "listen_v311")?;
        if listen == listen_v311 {
            return Err(EmbeddedError::Config(format!(
                "listen and listen_v311 resolved to the same address {listen}"
            )));
        }
        let rumqttd_config = rumqttd_config(&config, listen, listen_v311);

        let exited = Arc::new(AtomicBool::new(false));
        let flag = ExitFlag(exited.clone());
        std::thread::Builder::new()
            .name("firegrid-mqttd".into())
            .spawn(move || {
                let _flag = flag; // set when this thread ends, even by a panic
                let mut broker = rumqttd::Broker::new(rumqttd_config);
                match broker.start() {
                    Ok(()) => tracing::error!("embedded MQTT broker: its listeners stopped"),
                    Err(e) => tracing::error!(error = %e, "embedded MQTT broker stopped"),
                }
            })
            .map_err(EmbeddedError::Thread)?;

        let broker = Self {
            listen,
            listen_v311,
            exited,
        };
        let started = Instant::now();
        broker.wait_ready(config.ready_timeout).await?;
        tracing::info!(
            mqtt5 = %listen,
            mqtt311 = %listen_v311,
            ready_ms = started.elapsed().as_millis() as u64,
            "embedded MQTT broker listening"
        );
        Ok(broker)
    }

    /// The MQTT 5 listener's address (devices).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The MQTT 3.1.1 listener's address (the gateway's client, third-party tools).
    pub fn listen_v311(&self) -> SocketAddr {
        self.listen_v311
    }

    /// Whether the broker's thread is still there. (rumqttd's own threads can die without it
    /// noticing; [`EmbeddedBroker::check`] asks the listeners.)
    pub fn is_running(&self) -> bool {
        !self.exited.load(Ordering::Acquire)
    }

    /// A health check: both listeners answer an MQTT CONNECT within `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<(), EmbeddedError> {
        for (addr, version) in self.listeners() {
            if let Err(last) = probe(addr, version, timeout).await {
                return Err(EmbeddedError::NotReady {
                    addr,
                    version,
                    waited: timeout,
                    last,
                });
            }
        }
        Ok(())
    }

    /// Watches the broker: probes both listeners every `interval` and returns (with the last
    /// failure) once `failures` checks in a row have failed. Never returns while the broker
    /// answers. The binary should treat its return as fatal and exit so that its supervisor
    /// restarts it: rumqttd cannot be restarted in process (see the [module docs](self) for the
    /// known rumqttd 0.20 bug that kills a listener).
    pub async fn watch(&self, interval: Duration, failures: u32) -> EmbeddedError {
        let mut failed = 0;
        loop {
            tokio::time::sleep(interval).await;
            let timeout = interval.clamp(Duration::from_millis(100), Duration::from_secs(2));
            match self.check(timeout).await {
                Ok(()) => failed = 0,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(error = %e, failed, "embedded MQTT broker does not answer");
                    if failed >= failures.max(1) {
                        return e;
                    }
                }
            }
        }
    }

    fn listeners(&self) -> [(SocketAddr, MqttVersion); 2] {
        [
            (self.listen, MqttVersion::V5),
            (self.listen_v311, MqttVersion::V311),
        ]
    }

    async fn wait_ready(&self, ready_timeout: Duration) -> Result<(), EmbeddedError> {
        const INTERVAL: Duration = Duration::from_millis(10);
        const ATTEMPT: Duration = Duration::from_millis(500);
        let started = Instant::now();
        let deadline = started + ready_timeout;
        for (addr, version) in self.listeners() {
            loop {
                if !self.is_running() {
                    return Err(EmbeddedError::Exited);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match probe(addr, version, ATTEMPT.min(left)).await {
                    Ok(()) => break,
                    Err(last) if Instant::now() + INTERVAL >= deadline => {
                        return Err(EmbeddedError::NotReady {
                            addr,
                            version,
                            waited: started.elapsed(),
                            last,
                        });
                    }
                    Err(_) => tokio::time::sleep(INTERVAL).await,
                }
            }
        }
        Ok(())
    }
}

/// Sets the flag when dropped: the broker thread has ended.
struct ExitFlag(Arc<AtomicBool>);

impl Drop for ExitFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Binds `addr` to check it is free (and to learn the port when it is 0), then releases it.
fn resolve_free(addr: SocketAddr, key: &'static str) -> Result<SocketAddr, EmbeddedError> {
    match TcpListener::bind(addr) {
        Ok(listener) => {
            listener
                .local_addr()
                .map_err(|source| EmbeddedError::Bind { addr, key, source })
        }
        Err(source) if source.kind() == io::ErrorKind::AddrInUse => {
            Err(EmbeddedError::PortInUse { addr, key, source })
        }
        Err(source) => Err(EmbeddedError::Bind { addr, key, source }),
    }
}

fn rumqttd_config(
    config: &EmbeddedConfig,
    listen: SocketAddr,
    listen_v311: SocketAddr,
) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: u16::try_from(config.connect_timeout.as_millis())
            .expect("validate() keeps connect_timeout within 65 535 ms"),
        max_payload_size: config.max_payload,
        max_inflight_count: config.max_inflight,
        auth: None,
        external_auth: None,
        // Without dynamic filters rumqttd *disconnects* a client publishing on a topic nobody
        // subscribes to (e.g. a device before the gateway has subscribed, or an alert topic).
        dynamic_filters: true,
    };
    let server = |name: &str, listen: SocketAddr| {
        HashMap::from([(
            "1".to_string(),
            rumqttd::ServerSettings {
                name: name.to_string(),
                listen,
                tls: None,
                // rumqttd sleeps this long after each accept; 0 lets a reconnect storm in fast.
                next_connection_delay_ms: 0,
                connections: connections.clone(),
            },
        )])
    };
    let uplink_segment = (config.uplink_log_bytes / 8).max(1024);
    let topic_segment = (config.topic_log_bytes / 2).max(1024);
    let uplink_filters: Vec<String> = DEVICE_UPLINK_FILTERS
        .iter()
        .map(|f| f.to_string())
        .collect();
    let alert_segment = (config.alert_log_bytes / 4).max(1024);
    let custom_segment = uplink_filters
        .iter()
        .map(|f| {
            (
                f.clone(),
                rumqttd::SegmentConfig {
                    max_segment_size: uplink_segment,
                    max_segment_count: 8,
                },
            )
        })
        .chain([ALERT_FILTER, "firegrid/v1/alert/+"].map(|f| {
            (
                f.to_string(),
                rumqttd::SegmentConfig {
                    max_segment_size: alert_segment,
                    max_segment_count: 4,
                },
            )
        }))
        .collect();
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: config.max_connections,
            // QoS 0 messages read from a filter's log per pass.
            max_outgoing_packet_count: 200,
            max_segment_size: topic_segment,
            max_segment_count: 2,
            custom_segment: Some(custom_segment),
            initialized_filters: Some(uplink_filters),
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(server("firegrid-mqtt311", listen_v311)),
        v5: Some(server("firegrid-mqtt5", listen)),
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}
