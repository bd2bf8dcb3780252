//! The client's settings ([`ClientConfig`], [`Credentials`]) and how each link is made from them.

use super::error::BrokerError;
use std::time::Duration;

use firegrid_protocols::codec::MAX_PAYLOAD;
use firegrid_protocols::topic::DEVICE_UPLINK_FILTERS;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, NetworkOptions};

/// Settings of the gateway's MQTT client.
#[derive(Clone)]
pub struct ClientConfig {
    /// Broker host name or IP address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Stable client id of this gateway instance (1-48 of `[A-Za-z0-9_.-]`); the links use it
    /// and it with `-out` and `-urgent` appended. Stable, so the broker keeps the session across
    /// reconnects and gateway restarts. Two instances must not share one.
    pub client_id: String,
    /// Username and password, if the broker wants them.
    pub credentials: Option<Credentials>,
    /// Shared-subscription group: subscribe as `$share/{group}/{filter}` so that several gateway
    /// instances (each with its own client id) split the devices' messages between them.
    pub share_group: Option<String>,
    /// Filters the ingest link subscribes to, at QoS 1. Default
    /// [`DEVICE_UPLINK_FILTERS`]. Empty: no ingest link traffic (a publish-only client).
    pub filters: Vec<String>,
    /// MQTT keep-alive (whole seconds, at least 1 s). Default 30 s.
    pub keep_alive: Duration,
    /// Time for TCP connect plus CONNECT/CONNACK, and for each socket flush (rumqttc takes whole
    /// seconds; rounded up). Default 5 s.
    pub connect_timeout: Duration,
    /// How long [`BrokerHandle::publish`](super::BrokerHandle::publish) waits for room in its link's queue. Default 1 s.
    pub publish_timeout: Duration,
    /// Capacity of the [`Incoming`](super::Incoming) channel to ingest. Default 1024.
    pub ingest_capacity: usize,
    /// How long the ingest link waits when ingest's channel is full before it gives up on a
    /// message (QoS 0: dropped and counted; QoS 1: not acked, so redelivered after a reconnect).
    /// Keep it well under the keep-alive: the link does not serve the connection meanwhile.
    /// Default 10 s.
    pub ingest_stall_timeout: Duration,
    /// Queue capacity of the normal-priority publish link. Default 1024.
    pub queue_capacity: usize,
    /// Queue capacity of the urgent publish link. Default 256.
    pub urgent_queue_capacity: usize,
    /// Most outgoing QoS 1 publishes in flight (awaiting PUBACK) per link. Default 100.
    pub max_inflight: u16,
    /// Largest MQTT packet sent or accepted, in bytes. Default 8192 (twice the protocol's
    /// [`MAX_PAYLOAD`]).
    pub max_packet_size: usize,
    /// First reconnect delay; it doubles per failed attempt up to `backoff_max`, and each delay
    /// is drawn between half and all of that (jitter). Default 100 ms.
    pub backoff_min: Duration,
    /// Longest reconnect delay. Default 10 s.
    pub backoff_max: Duration,
    /// TLS to the broker (every link), verifying its certificate against these roots; `None`:
    /// plain TCP.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The runtime the alarms and urgent links run on ([`crate::alarm_path`]); `None`: the
    /// caller's, like the other two.
    pub alarm_path: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("credentials", &self.credentials)
            .field("share_group", &self.share_group)
            .field("filters", &self.filters)
            .field("keep_alive", &self.keep_alive)
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("ingest_capacity", &self.ingest_capacity)
            .field("ingest_stall_timeout", &self.ingest_stall_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .field("urgent_queue_capacity", &self.urgent_queue_capacity)
            .field("max_inflight", &self.max_inflight)
            .field("max_packet_size", &self.max_packet_size)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("tls", &self.tls.is_some())
            .field("alarm_path", &self.alarm_path.is_some())
            .finish()
    }
}

/// A username and password. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Username; `None`: each link logs in as its own client id (the managed broker's gateway
    /// accounts are named so, because Mosquitto there takes the username as the client id).
    pub username: Option<String>,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl ClientConfig {
    /// The defaults, for a broker at `host:port` and a client id.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: client_id.into(),
            credentials: None,
            share_group: None,
            filters: DEVICE_UPLINK_FILTERS
                .iter()
                .map(|f| f.to_string())
                .collect(),
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(1),
            ingest_capacity: 1024,
            ingest_stall_timeout: Duration::from_secs(10),
            queue_capacity: 1024,
            urgent_queue_capacity: 256,
            max_inflight: 100,
            max_packet_size: 2 * MAX_PAYLOAD,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            tls: None,
            alarm_path: None,
        }
    }

    pub(super) fn validate(&self) -> Result<(), BrokerError> {
        let bad = |reason: String| Err(BrokerError::Config(reason));
        let id_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        if !id_ok(&self.client_id, 48) {
            return bad(format!(
                "client_id {:?} must be 1-48 characters of [A-Za-z0-9_.-]",
                self.client_id
            ));
        }
        if let Some(group) = &self.share_group
            && !id_ok(group, 64)
        {
            return bad(format!(
                "share_group {group:?} must be 1-64 characters of [A-Za-z0-9_.-]"
            ));
        }
        if let Some(f) = self.filters.iter().find(|f| !rumqttc::valid_filter(f)) {
            return bad(format!("{f:?} is not a valid MQTT subscription filter"));
        }
        if self.host.is_empty() {
            return bad("host is empty".into());
        }
        if self.keep_alive < Duration::from_secs(1) {
            return bad(format!("keep_alive {:?} is under 1 s", self.keep_alive));
        }
        if self.connect_timeout.is_zero()
            || self.publish_timeout.is_zero()
            || self.ingest_stall_timeout.is_zero()
        {
            return bad(
                "connect_timeout, publish_timeout and ingest_stall_timeout must not be 0".into(),
            );
        }
        if self.ingest_capacity == 0
            || self.queue_capacity == 0
            || self.urgent_queue_capacity == 0
            || self.max_inflight == 0
        {
            return bad("capacities and max_inflight must be at least 1".into());
        }
        if self.max_packet_size < MAX_PAYLOAD + 256 {
            return bad(format!(
                "max_packet_size {} is below {} (the protocol's largest message plus headers)",
                self.max_packet_size,
                MAX_PAYLOAD + 256
            ));
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return bad("backoff_min must be above 0 and at most backoff_max".into());
        }
        Ok(())
    }

    /// The filters as subscribed: with the `$share/{group}/` prefix when shared.
    pub(super) fn subscription_filters(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|f| match &self.share_group {
                Some(group) => format!("$share/{group}/{f}"),
                None => f.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Ingest,
    Alarms,
    Normal,
    Urgent,
}

impl Role {
    /// Subscribes and hands messages to ingest (rather than publishing).
    pub(super) fn subscribes(self) -> bool {
        matches!(self, Self::Ingest | Self::Alarms)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Alarms => "alarms",
            Self::Normal => "normal",
            Self::Urgent => "urgent",
        }
    }
}

impl ClientConfig {
    /// The client ids of the four links, in the order ingest, alarms, normal, urgent.
    #[must_use]
    pub fn link_client_ids(&self) -> [String; 4] {
        [Role::Ingest, Role::Alarms, Role::Normal, Role::Urgent].map(|r| self.link_client_id(r))
    }

    pub(super) fn link_client_id(&self, role: Role) -> String {
        match role {
            Role::Ingest => self.client_id.clone(),
            Role::Alarms => format!("{}-alarms", self.client_id),
            Role::Normal => format!("{}-out", self.client_id),
            Role::Urgent => format!("{}-urgent", self.client_id),
        }
    }
}

pub(super) fn new_client(config: &ClientConfig, role: Role) -> (AsyncClient, EventLoop) {
    let capacity = match role {
        // The ingest link's queue only carries PUBACKs and SUBSCRIBEs: room for one PUBACK per
        // message ingest can hold plus the broker's window, so acking never finds it full.
        Role::Ingest | Role::Alarms => {
            config.ingest_capacity + usize::from(config.max_inflight) + 16
        }
        Role::Normal => config.queue_capacity,
        Role::Urgent => config.urgent_queue_capacity,
    };
    let client_id = config.link_client_id(role);
    let mut options = MqttOptions::new(client_id.clone(), config.host.clone(), config.port);
    options
        .set_keep_alive(Duration::from_secs(config.keep_alive.as_secs().max(1)))
        .set_clean_session(false)
        .set_manual_acks(role.subscribes())
        .set_max_packet_size(config.max_packet_size, config.max_packet_size)
        .set_inflight(config.max_inflight);
    if let Some(c) = &config.credentials {
        let username = c.username.clone().unwrap_or(client_id);
        options.set_credentials(username, c.password.clone());
    }
    if let Some(tls) = &config.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(config.connect_timeout.as_secs_f64().ceil().max(1.0) as u64);
    eventloop.set_network_options(network);
    (client, eventloop)
}
