//! The gateway's MQTT client: one typed API over rumqttc 0.25 for the embedded broker or an
//! external one (Mosquitto, EMQX).
//!
//! [`Broker::connect`] opens four MQTT 3.1.1 connections, each with its own rumqttc event loop
//! task, request queue, in-flight window and TCP socket:
//!
//! | link | client id | does |
//! | --- | --- | --- |
//! | ingest | `{client_id}` | subscribes to the telemetry filters (QoS 1), hands each message to ingest as an [`Incoming`], sends PUBACKs only when ingest [acks](AckToken::ack) |
//! | alarms | `{client_id}-alarms` | the same for every other uplink filter: events (alarms, faults, smoke) and statuses |
//! | normal | `{client_id}-out` | [`Priority::Normal`] publishes: acks, configs, commands, anything bulk |
//! | urgent | `{client_id}-urgent` | [`Priority::Urgent`] publishes: alerts |
//!
//! Why a link of its own for events: the broker keeps one queue per connection and drops from it
//! when it is full (Mosquitto silently, past `max_queued_messages`), and a gateway slower than
//! its devices' telemetry fills it. An event behind that queue waits for it or is dropped and
//! resent by its device 10 s later, again and again: the end-to-end test
//! `smoke_does_not_wait_behind_a_telemetry_flood` saw a smoke alarm take a minute. On its own
//! connection an event only ever queues behind other events and statuses, and [`Uplink::recv`]
//! hands them to ingest before any telemetry. The price: a device's telemetry and its events
//! are no longer in one order (its statuses and events still are); nothing depends on it except
//! that telemetry delayed past the device's last will postpones the will's offline verdict to
//! the heartbeat timeout.
//!
//! Why separate publish links: an urgent publish can never wait behind a full queue or a full in-flight window of
//! normal publishes (the two are independent all the way to the broker's socket), and PUBACKs of
//! ingest never wait behind either. A priority channel in front of one connection would still
//! put an alert behind up to an in-flight window of bulk publishes, and rumqttc's request queue
//! would hold acks behind publishes. The cost is two more connections to the broker.
//!
//! Every link: TCP_NODELAY on (without it alerts get a 20-45 ms tail), a persistent session
//! (clean session false) under a stable client id, a keep-alive, every network step under a
//! timeout (rumqttc's connection timeout covers TCP connect + CONNECT/CONNACK, its flush timeout
//! every write, the keep-alive a silent broker), and a jittered exponential back-off between
//! reconnects (rumqttc has none of its own). The ingest link subscribes again whenever the broker
//! has lost its session (CONNACK session-present = 0, e.g. a broker restart without persistence;
//! rumqtt#250) and at its first connection in this process.
//!
//! Why MQTT 3.1.1 and not 5: every broker speaks it, rumqttc's and rumqttd's 3.1.1 paths are the
//! mature ones, and what 5 would add here (session expiry, receive maximum, reason codes) is
//! either covered (persistent session, in-order manual acks bound what is outstanding) or not
//! honoured by rumqttd 0.20 (its in-flight window is a fixed 100).
//!
//! What a successful [`BrokerHandle::publish`] means: the message is in that link's queue. It
//! goes out when the link is connected; QoS 1 messages not yet acknowledged by the broker are
//! resent after a reconnect *if the broker kept the session*; if the session was lost they are
//! dropped (rumqttc clears its pending queue). Delivery to devices is covered end to end by the
//! protocol; alerts by the notifier's escalation.
//!
//! What a successful [`BrokerHandle::publish_confirmed`] means: the broker has acknowledged
//! (PUBACK) that very publish, so it holds the message. Its error means *not confirmed*, not
//! *not delivered*: the message may still arrive (a resend after a reconnect), so a caller that
//! retries may deliver it twice (receivers deduplicate). How: each publish link keeps a FIFO of
//! one slot per publish in rumqttc's request queue (taken under one lock with the queueing, so
//! the two orders agree; plain publishes get an empty slot); its event-loop task takes the next
//! slot on each `Outgoing::Publish` rumqttc reports for a queued request, files it under the
//! packet id, and resolves it on the PUBACK of that id. A connection error fails every filed
//! slot: rumqttc resends those after a reconnect, but the resends are not confirmed (their
//! PUBACKs are ignored). Resends are told apart from queued requests by watching rumqttc's
//! pending list (resends carry their packet id; queued requests it moved there have none).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use firegrid_protocols::codec::MAX_PAYLOAD;
use firegrid_protocols::topic::DEVICE_UPLINK_FILTERS;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Outgoing, Packet, Publish, QoS,
    Request, SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::ack::{AckBook, AckToken};

/// Settings of the gateway's MQTT client.
#[derive(Clone, PartialEq, Eq)]
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
    /// How long [`BrokerHandle::publish`] waits for room in its link's queue. Default 1 s.
    pub publish_timeout: Duration,
    /// Capacity of the [`Incoming`] channel to ingest. Default 1024.
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
        }
    }

    fn validate(&self) -> Result<(), BrokerError> {
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
    fn subscription_filters(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|f| match &self.share_group {
                Some(group) => format!("$share/{group}/{f}"),
                None => f.clone(),
            })
            .collect()
    }
}

/// Errors of the MQTT client layer.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration cannot work.
    #[error("MQTT client: {0}")]
    Config(String),
    /// [`Broker::connect`] was called outside a Tokio runtime.
    #[error("MQTT client: Broker::connect must be called within a Tokio runtime")]
    NoRuntime,
    /// The link's queue stayed full for the whole wait (the broker is unreachable or slower than
    /// the publishes). The message was not queued.
    #[error(
        "MQTT {priority:?} publish to {topic}: queue full for {waited:?} (broker down or too slow)"
    )]
    Backpressure {
        /// The link.
        priority: Priority,
        /// The message's topic.
        topic: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The topic is not a valid MQTT topic name (empty, or has `+` or `#`).
    #[error("MQTT publish: {0:?} is not a valid topic name")]
    InvalidTopic(String),
    /// The message would exceed the configured maximum packet size.
    #[error("MQTT publish to {topic}: {size} bytes exceed max_packet_size {max}")]
    TooLarge {
        /// The message's topic.
        topic: String,
        /// Topic plus payload plus headers, in bytes.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The client has stopped (cancelled).
    #[error("MQTT client has stopped")]
    Stopped,
    /// [`BrokerHandle::publish_confirmed`]: the broker's PUBACK did not come (the link was down
    /// or dropped before it, the broker lost the session, the client stopped, or the timeout
    /// passed). The message may still reach the broker later (rumqttc resends what it had sent
    /// after a reconnect); retry, and let the receivers deduplicate.
    #[error("MQTT {priority:?} publish to {topic}: not confirmed by the broker: {reason}")]
    NotConfirmed {
        /// The link.
        priority: Priority,
        /// The message's topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// [`BrokerHandle::wait_connected`] ran out of time.
    #[error("MQTT client: not connected within {waited:?} (state: {state})")]
    NotConnected {
        /// How long it waited.
        waited: Duration,
        /// The links' state at the end.
        state: BrokerState,
    },
}

/// MQTT quality of service of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// QoS 0, at most once.
    AtMostOnce,
    /// QoS 1, at least once.
    AtLeastOnce,
}

impl From<Qos> for QoS {
    fn from(q: Qos) -> Self {
        match q {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
        }
    }
}

/// Which publish link a message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Acks, configs, commands: the normal link.
    Normal,
    /// Alerts: the urgent link, never behind normal publishes.
    Urgent,
}

/// A message from a device, for ingest.
#[derive(Debug)]
pub struct Incoming {
    /// The topic it came on.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// When the client read it from the socket.
    pub received_at: Instant,
    /// It is a retained message sent because we subscribed (e.g. a device's last status).
    pub retained: bool,
    /// The broker marked it as a redelivery (DUP): it may have come before.
    pub redelivered: bool,
    /// Acknowledge once ingest has taken it; dropping it makes the broker redeliver it.
    pub ack: AckToken,
}

impl Incoming {
    /// A message made by the gateway itself for a device it polls (Modbus): nothing to
    /// acknowledge to a broker, taken like any other.
    pub(crate) fn polled(topic: String, payload: Bytes) -> Self {
        Self {
            topic,
            payload,
            received_at: Instant::now(),
            retained: false,
            redelivered: false,
            ack: AckToken::none(),
        }
    }
}

/// The state of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Not connected yet since the client started.
    Connecting,
    /// Connected; for the ingest link, subscribed too.
    Connected,
    /// Connected, the broker had lost the session (or this is the first connection), and the
    /// link has subscribed again and awaits the SUBACK.
    Resubscribing,
    /// The connection is lost; reconnecting with back-off.
    Disconnected,
    /// The client has stopped.
    Stopped,
}

/// The state of the client's four links; observe changes with [`BrokerHandle::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrokerState {
    /// The subscribing link for telemetry.
    pub ingest: LinkState,
    /// The subscribing link for events and statuses.
    pub alarms: LinkState,
    /// The normal-priority publish link.
    pub normal: LinkState,
    /// The urgent publish link.
    pub urgent: LinkState,
}

impl BrokerState {
    /// All four links are connected (and the subscribing ones subscribed).
    pub fn is_connected(&self) -> bool {
        self.links().iter().all(|s| *s == LinkState::Connected)
    }

    /// All four links have stopped.
    pub fn is_stopped(&self) -> bool {
        self.links().iter().all(|s| *s == LinkState::Stopped)
    }

    fn links(&self) -> [LinkState; 4] {
        [self.ingest, self.alarms, self.normal, self.urgent]
    }

    fn get_mut(&mut self, role: Role) -> &mut LinkState {
        match role {
            Role::Ingest => &mut self.ingest,
            Role::Alarms => &mut self.alarms,
            Role::Normal => &mut self.normal,
            Role::Urgent => &mut self.urgent,
        }
    }
}

impl std::fmt::Display for BrokerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ingest {:?}, alarms {:?}, normal {:?}, urgent {:?}",
            self.ingest, self.alarms, self.normal, self.urgent
        )
    }
}

/// Counters for metrics (monotonic since the client started).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) session_losses: AtomicU64,
    pub(crate) resubscribes: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
    pub(crate) forced_reconnects: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) acks_stale: AtomicU64,
    pub(crate) ingest_dropped: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) publish_rejected: AtomicU64,
}

/// A snapshot of the client's counters, monotonic since it started (all links together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Successful connections (CONNACK accepted), first ones included.
    pub connects: u64,
    /// Connections after a link's first.
    pub reconnects: u64,
    /// Reconnections where the broker had lost the session.
    pub session_losses: u64,
    /// Subscriptions sent by the ingest link (first connection and after session losses).
    pub resubscribes: u64,
    /// Connection attempts that failed and connections that broke.
    pub connection_errors: u64,
    /// Reconnections the ingest link forced so the broker redelivers a message ingest did not
    /// take (an [`AckToken`] dropped, or ingest's channel full past the stall timeout).
    pub forced_reconnects: u64,
    /// Messages received by the ingest link.
    pub received: u64,
    /// PUBACKs released.
    pub acked: u64,
    /// [`AckToken::ack`] calls for a message of an earlier connection (it is redelivered).
    pub acks_stale: u64,
    /// Messages ingest's full channel did not take in time (QoS 0 lost, QoS 1 redelivered).
    pub ingest_dropped: u64,
    /// Publishes queued.
    pub publishes: u64,
    /// Publishes refused: queue full past the timeout, invalid, too large, or stopped.
    pub publish_rejected: u64,
}

impl Counters {
    fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            session_losses: get(&self.session_losses),
            resubscribes: get(&self.resubscribes),
            connection_errors: get(&self.connection_errors),
            forced_reconnects: get(&self.forced_reconnects),
            received: get(&self.received),
            acked: get(&self.acked),
            acks_stale: get(&self.acks_stale),
            ingest_dropped: get(&self.ingest_dropped),
            publishes: get(&self.publishes),
            publish_rejected: get(&self.publish_rejected),
        }
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The client's entry point.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Starts the client's four links (see the [module docs](self)) and returns at once; the
    /// links connect in the background, and reconnect until `cancel` is cancelled. Then they
    /// send DISCONNECT (the broker keeps the sessions), the [`Uplink`] ends and the state
    /// becomes [`LinkState::Stopped`].
    ///
    /// Must be called within a Tokio runtime.
    pub fn connect(
        config: ClientConfig,
        cancel: CancellationToken,
    ) -> Result<(BrokerHandle, Uplink), BrokerError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BrokerError::NoRuntime)?;
        let counters = Arc::new(Counters::default());
        let (state_tx, state_rx) = watch::channel(BrokerState {
            ingest: LinkState::Connecting,
            alarms: LinkState::Connecting,
            normal: LinkState::Connecting,
            urgent: LinkState::Connecting,
        });
        let state_tx = Arc::new(state_tx);
        let (telemetry_tx, telemetry_rx) = mpsc::channel(config.ingest_capacity);
        let (alarms_tx, alarms_rx) = mpsc::channel(config.ingest_capacity);
        let (telemetry_filters, alarm_filters): (Vec<String>, Vec<String>) = config
            .subscription_filters()
            .into_iter()
            .partition(|f| f.ends_with("/telemetry"));

        let mut clients = Vec::with_capacity(2);
        for role in [Role::Ingest, Role::Alarms, Role::Normal, Role::Urgent] {
            let (client, eventloop) = new_client(&config, role);
            let acks = role
                .subscribes()
                .then(|| Arc::new(AckBook::new(client.clone(), counters.clone())));
            let book = Arc::new(Confirmations::default());
            let link = Link {
                role,
                eventloop,
                client: client.clone(),
                acks,
                incoming: match role {
                    Role::Ingest => Some(telemetry_tx.clone()),
                    Role::Alarms => Some(alarms_tx.clone()),
                    Role::Normal | Role::Urgent => None,
                },
                filters: match role {
                    Role::Ingest => telemetry_filters.clone(),
                    Role::Alarms => alarm_filters.clone(),
                    Role::Normal | Role::Urgent => Vec::new(),
                },
                state: state_tx.clone(),
                counters: counters.clone(),
                cancel: cancel.clone(),
                backoff_min: config.backoff_min,
                backoff_max: config.backoff_max,
                stall_timeout: config.ingest_stall_timeout,
                disconnect_timeout: config.connect_timeout,
                acks_written: 0,
                confirms: (!role.subscribes()).then(|| Tracker::new(book.clone())),
            };
            runtime.spawn(link.run());
            if !role.subscribes() {
                clients.push(PublishLink { client, book });
            }
        }
        let senders = (alarms_tx.downgrade(), telemetry_tx.downgrade());
        drop((telemetry_tx, alarms_tx));
        let urgent = clients.pop().expect("two publish links were made");
        let normal = clients.pop().expect("two publish links were made");
        Ok((
            BrokerHandle {
                normal,
                urgent,
                state: state_rx,
                counters,
                publish_timeout: config.publish_timeout,
                max_packet_size: config.max_packet_size,
            },
            Uplink {
                senders,
                alarms: alarms_rx,
                telemetry: telemetry_rx,
            },
        ))
    }
}

/// What devices send, from the two subscribing links: events and statuses first.
#[derive(Debug)]
pub struct Uplink {
    /// Weak, so the queues close when the links stop (and every [`UplinkSender`] is gone).
    senders: (mpsc::WeakSender<Incoming>, mpsc::WeakSender<Incoming>),
    alarms: mpsc::Receiver<Incoming>,
    telemetry: mpsc::Receiver<Incoming>,
}

/// Hands messages that did not come through the broker (e.g. from polled Modbus monitors) to
/// the same queues, with the same priority: telemetry to the telemetry queue, the rest ahead.
#[derive(Debug, Clone)]
pub struct UplinkSender {
    alarms: mpsc::Sender<Incoming>,
    telemetry: mpsc::Sender<Incoming>,
}

impl UplinkSender {
    /// Queues `m` (by its topic), waiting for room.
    ///
    /// # Errors
    /// The pipeline is gone; the message is handed back.
    pub async fn send(&self, m: Incoming) -> Result<(), mpsc::error::SendError<Incoming>> {
        if m.topic.ends_with("/telemetry") {
            self.telemetry.send(m).await
        } else {
            self.alarms.send(m).await
        }
    }
}

impl Uplink {
    /// A sender into these queues, while the links run (`None` once they stopped).
    pub fn sender(&self) -> Option<UplinkSender> {
        Some(UplinkSender {
            alarms: self.senders.0.upgrade()?,
            telemetry: self.senders.1.upgrade()?,
        })
    }

    /// The next message: an event or status if one is waiting, else telemetry. `None` once
    /// both links have stopped and everything was taken.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only awaits `mpsc::Receiver::recv`, which is.
    pub async fn recv(&mut self) -> Option<Incoming> {
        tokio::select! {
            biased;
            Some(m) = self.alarms.recv() => Some(m),
            Some(m) = self.telemetry.recv() => Some(m),
            else => None,
        }
    }

    /// The next message if one is waiting, events and statuses first.
    ///
    /// # Errors
    /// `Empty` if nothing waits, `Disconnected` once both links have stopped.
    pub fn try_recv(&mut self) -> Result<Incoming, mpsc::error::TryRecvError> {
        use mpsc::error::TryRecvError;
        match self.alarms.try_recv() {
            Ok(m) => Ok(m),
            Err(alarms) => match (self.telemetry.try_recv(), alarms) {
                (Ok(m), _) => Ok(m),
                (Err(TryRecvError::Disconnected), TryRecvError::Disconnected) => {
                    Err(TryRecvError::Disconnected)
                }
                (Err(_), _) => Err(TryRecvError::Empty),
            },
        }
    }

    /// The next event or status if one is waiting (never telemetry).
    pub fn try_recv_alarm(&mut self) -> Option<Incoming> {
        self.alarms.try_recv().ok()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.alarms.len() + self.telemetry.len()
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Publishes, and observes the client's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    normal: PublishLink,
    urgent: PublishLink,
    state: watch::Receiver<BrokerState>,
    counters: Arc<Counters>,
    publish_timeout: Duration,
    max_packet_size: usize,
}

impl BrokerHandle {
    /// Queues a publish on the link of `priority`, waiting at most the configured
    /// `publish_timeout` for room in its queue; never blocks longer. `Ok` means queued (see the
    /// [module docs](self) for what happens to queued messages when the connection drops).
    pub async fn publish(
        &self,
        priority: Priority,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
    ) -> Result<(), BrokerError> {
        let message = Outbound {
            priority,
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        };
        self.enqueue(
            message,
            tokio::time::Instant::now() + self.publish_timeout,
            None,
        )
        .await
    }

    /// Like [`BrokerHandle::publish`], but fails at once when the queue is full.
    pub async fn try_publish(
        &self,
        priority: Priority,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
    ) -> Result<(), BrokerError> {
        let message = Outbound {
            priority,
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        };
        self.enqueue(message, tokio::time::Instant::now(), None)
            .await
    }

    /// Publishes at QoS 1 on the link of `priority` and returns `Ok` only once the broker has
    /// acknowledged (PUBACK) this publish: the broker then holds the message.
    ///
    /// Everything is bounded by `timeout`: waiting for the link to be connected (a publish is
    /// not queued while the link is down, so retries during an outage do not pile up copies),
    /// for room in its queue, and for the PUBACK. Errors: [`BrokerError::NotConfirmed`] when the
    /// link is down for the whole timeout, drops before the PUBACK, the broker lost the session,
    /// the client stops, or the timeout passes; [`BrokerError::Backpressure`] when the queue
    /// stayed full; [`BrokerError::InvalidTopic`], [`BrokerError::TooLarge`],
    /// [`BrokerError::Stopped`]. After an error the message may still reach the broker (it was
    /// sent, or is queued and goes out after a reconnect): retry, receivers deduplicate.
    pub async fn publish_confirmed(
        &self,
        priority: Priority,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        retain: bool,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let topic = topic.into();
        let deadline = tokio::time::Instant::now() + timeout;
        let not_confirmed = |topic: String, reason: String| BrokerError::NotConfirmed {
            priority,
            topic,
            reason,
        };
        // Do not queue into a link that is down: the message would wait there (and go out,
        // unconfirmed, after the reconnect) while the caller retries.
        let mut state = self.state.clone();
        let up = state.wait_for(|s| {
            let link = match priority {
                Priority::Normal => s.normal,
                Priority::Urgent => s.urgent,
            };
            matches!(link, LinkState::Connected | LinkState::Stopped)
        });
        match tokio::time::timeout_at(deadline, up).await {
            Ok(Ok(_)) => {} // Stopped: the publish below says so
            Ok(Err(_)) => return Err(BrokerError::Stopped),
            Err(_) => {
                return Err(not_confirmed(
                    topic,
                    format!("the link was not connected within {timeout:?}"),
                ));
            }
        }
        let (tx, rx) = oneshot::channel();
        let message = Outbound {
            priority,
            topic: topic.clone(),
            payload: payload.into(),
            qos: Qos::AtLeastOnce,
            retain,
        };
        self.enqueue(message, deadline, Some(tx)).await?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(not_confirmed(topic, reason.to_string())),
            Ok(Err(_)) => Err(not_confirmed(topic, "the link stopped".into())),
            Err(_) => Err(not_confirmed(
                topic,
                format!("no PUBACK within {timeout:?}"),
            )),
        }
    }

    async fn enqueue(
        &self,
        message: Outbound,
        deadline: tokio::time::Instant,
        confirm: Option<Confirm>,
    ) -> Result<(), BrokerError> {
        let result = self.check_and_send(message, deadline, confirm).await;
        Counters::bump(match result {
            Ok(()) => &self.counters.publishes,
            Err(_) => &self.counters.publish_rejected,
        });
        result
    }

    /// Queues `message` on its link, waiting until `deadline` for room; with `confirm`, that
    /// sender takes the message's confirmation slot.
    async fn check_and_send(
        &self,
        message: Outbound,
        deadline: tokio::time::Instant,
        mut confirm: Option<Confirm>,
    ) -> Result<(), BrokerError> {
        let Outbound {
            priority,
            topic,
            payload,
            qos,
            retain,
        } = message;
        if !rumqttc::valid_topic(&topic) || topic.starts_with('$') {
            return Err(BrokerError::InvalidTopic(topic));
        }
        // Fixed header (at most 5) + topic length (2) + topic + packet id (2) + payload.
        let size = 9 + topic.len() + payload.len();
        if size > self.max_packet_size {
            // rumqttc would fail the whole connection on it, and resend it after every reconnect.
            return Err(BrokerError::TooLarge {
                topic,
                size,
                max: self.max_packet_size,
            });
        }
        let link = match priority {
            Priority::Normal => &self.normal,
            Priority::Urgent => &self.urgent,
        };
        let started = tokio::time::Instant::now();
        loop {
            // Registered before the attempt, so room made in between is not missed.
            let room = link.book.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                // Queue and take the slot under one lock: slots and queue stay in one order.
                let mut slots = link.book.lock();
                let sent =
                    link.client
                        .try_publish(topic.clone(), qos.into(), retain, payload.to_vec());
                if sent.is_ok() {
                    slots.push_back(confirm.take());
                    return Ok(());
                }
            }
            // Full, or the link's event loop is gone.
            let stopped = match priority {
                Priority::Normal => self.state.borrow().normal,
                Priority::Urgent => self.state.borrow().urgent,
            } == LinkState::Stopped;
            if stopped {
                return Err(BrokerError::Stopped);
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(BrokerError::Backpressure {
                    priority,
                    topic,
                    waited: deadline.saturating_duration_since(started),
                });
            }
        }
    }

    /// The links' state, to watch for changes.
    pub fn state(&self) -> watch::Receiver<BrokerState> {
        self.state.clone()
    }

    /// The counters, for metrics.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// Waits until all four links are connected (and the subscribing ones subscribed), at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), BrokerError> {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| s.is_connected() || s.is_stopped());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if s.is_connected() => Ok(()),
            Ok(_) => Err(BrokerError::Stopped),
            Err(_) => Err(BrokerError::NotConnected {
                waited: timeout,
                state: *self.state.borrow(),
            }),
        }
    }

    /// Waits until all four links have stopped (after the cancellation token was cancelled).
    pub async fn stopped(&self) {
        let mut state = self.state.clone();
        // An error means every sender is gone, i.e. every link task has ended.
        let _ = state.wait_for(BrokerState::is_stopped).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ingest,
    Alarms,
    Normal,
    Urgent,
}

impl Role {
    /// Subscribes and hands messages to ingest (rather than publishing).
    fn subscribes(self) -> bool {
        matches!(self, Self::Ingest | Self::Alarms)
    }

    fn name(self) -> &'static str {
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

    fn link_client_id(&self, role: Role) -> String {
        match role {
            Role::Ingest => self.client_id.clone(),
            Role::Alarms => format!("{}-alarms", self.client_id),
            Role::Normal => format!("{}-out", self.client_id),
            Role::Urgent => format!("{}-urgent", self.client_id),
        }
    }
}

fn new_client(config: &ClientConfig, role: Role) -> (AsyncClient, EventLoop) {
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
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(config.connect_timeout.as_secs_f64().ceil().max(1.0) as u64);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// A message to publish.
struct Outbound {
    priority: Priority,
    topic: String,
    payload: Bytes,
    qos: Qos,
    retain: bool,
}

/// A publish link as the handle sees it: rumqttc's client and the link's confirmation slots.
#[derive(Debug, Clone)]
struct PublishLink {
    client: AsyncClient,
    book: Arc<Confirmations>,
}

/// Resolves one [`BrokerHandle::publish_confirmed`]: `Ok` on its PUBACK, else why not.
type Confirm = oneshot::Sender<Result<(), &'static str>>;

/// Shared between a publish link's handle side and its event-loop task.
#[derive(Debug, Default)]
struct Confirmations {
    /// One slot per publish request in rumqttc's request queue (or moved from there to its
    /// pending list), in queue order: the sender of a confirmed publish, `None` for the others.
    slots: Mutex<VecDeque<Option<Confirm>>>,
    /// Notified when rumqttc may have made room in the request queue (it took a request, or
    /// moved them all to its pending list) and when the link stops.
    room: Notify,
}

impl Confirmations {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Option<Confirm>>> {
        // The critical sections only push and pop; a panic in one leaves the queue usable.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What is at the front of rumqttc's pending list (`EventLoop::pending`) before a poll: the
/// next request it sends comes from there if the list is not empty.
#[derive(Debug, Clone, Copy)]
struct PendingPeek {
    len: usize,
    /// The front is a publish rumqttc had sent before (it carries its packet id): a resend,
    /// with no slot of its own.
    front_is_resend: bool,
    /// Publishes in the list that were never sent (moved there from the request queue by
    /// `EventLoop::clean`); each has its slot at the front of [`Confirmations::slots`].
    unsent: usize,
}

impl PendingPeek {
    fn of(pending: &VecDeque<Request>) -> Self {
        let is_resend = |r: &Request| matches!(r, Request::Publish(p) if p.pkid != 0);
        let is_unsent = |r: &Request| matches!(r, Request::Publish(p) if p.pkid == 0);
        Self {
            len: pending.len(),
            front_is_resend: pending.front().is_some_and(is_resend),
            unsent: if pending.is_empty() {
                0
            } else {
                pending.iter().filter(|r| is_unsent(r)).count()
            },
        }
    }
}

/// The event-loop side of a publish link's confirmations.
#[derive(Debug)]
struct Tracker {
    book: Arc<Confirmations>,
    /// Confirmed publishes sent on this connection, by packet id, awaiting their PUBACK.
    sent: HashMap<u16, Confirm>,
    /// A publish rumqttc holds back because its packet id is still in flight (a "collision":
    /// `Outgoing::AwaitAck`, then `Outgoing::Publish` once that id is acked).
    collided: Option<(u16, Option<Confirm>)>,
}

impl Tracker {
    fn new(book: Arc<Confirmations>) -> Self {
        Self {
            book,
            sent: HashMap::new(),
            collided: None,
        }
    }

    /// The next slot of the request queue (rumqttc took that request).
    fn next_slot(&self) -> Option<Confirm> {
        match self.book.lock().pop_front() {
            Some(slot) => slot,
            None => {
                // Cannot happen: every queued publish pushed a slot before rumqttc could see it.
                tracing::error!("MQTT confirmations: a publish without a slot");
                None
            }
        }
    }

    /// Books what `poll` returned; `before` is rumqttc's pending list before that poll.
    fn on_event(
        &mut self,
        event: &Result<Event, rumqttc::ConnectionError>,
        before: PendingPeek,
        eventloop: &EventLoop,
    ) {
        match event {
            Ok(Event::Outgoing(out @ (Outgoing::Publish(pkid) | Outgoing::AwaitAck(pkid)))) => {
                let pkid = *pkid;
                let from_pending = eventloop.pending.len() + 1 == before.len;
                let slot = if from_pending && before.front_is_resend {
                    None
                } else if !from_pending
                    && matches!(out, Outgoing::Publish(_))
                    && self.collided.as_ref().is_some_and(|(id, _)| *id == pkid)
                {
                    self.collided.take().and_then(|(_, slot)| slot)
                } else {
                    self.next_slot()
                };
                self.book.room.notify_waiters();
                if matches!(out, Outgoing::AwaitAck(_)) {
                    self.collided = Some((pkid, slot));
                    return;
                }
                // A packet id is reused only after its PUBACK: anything still filed under it is
                // stale (a resend's id, or an ack that never came).
                if let Some(stale) = self.sent.remove(&pkid) {
                    let _ = stale.send(Err("its packet id was reused before its PUBACK came"));
                }
                if let Some(tx) = slot {
                    if pkid == 0 {
                        let _ = tx.send(Err("sent at QoS 0"));
                    } else {
                        self.sent.insert(pkid, tx);
                    }
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(tx) = self.sent.remove(&ack.pkid) {
                    let _ = tx.send(Ok(()));
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                // rumqttc dropped its pending list, and with it the never-sent publishes that
                // `clean` had moved there: their slots are at the front.
                let dropped: Vec<_> = {
                    let mut slots = self.book.lock();
                    let n = before.unsent.min(slots.len());
                    slots.drain(..n).collect()
                };
                for tx in dropped.into_iter().flatten() {
                    let _ = tx.send(Err("the broker lost the session before it was sent"));
                }
                if let Some((_, slot)) = &mut self.collided
                    && let Some(tx) = slot.take()
                {
                    let _ = tx.send(Err("the broker lost the session before it was sent"));
                }
            }
            Ok(_) => {}
            Err(_) => self.connection_lost(),
        }
    }

    /// Fails every publish sent on the connection that just ended: rumqttc resends them on the
    /// next one if the broker kept the session, but those resends are not confirmed.
    fn connection_lost(&mut self) {
        for (_, tx) in self.sent.drain() {
            let _ = tx.send(Err("the connection dropped before its PUBACK"));
        }
        if let Some((_, slot)) = &mut self.collided
            && let Some(tx) = slot.take()
        {
            let _ = tx.send(Err("the connection dropped before it was sent"));
        }
        // `clean` emptied the request queue into the pending list.
        self.book.room.notify_waiters();
    }

    /// The link stops: fails everything, queued or sent, and wakes publishes waiting for room
    /// (they find the link stopped). Call it once rumqttc's queue is gone, so nothing is added.
    fn stop(&mut self) {
        self.connection_lost();
        let queued: Vec<_> = self.book.lock().drain(..).collect();
        for tx in queued.into_iter().flatten() {
            let _ = tx.send(Err("the client stopped"));
        }
        self.book.room.notify_waiters();
    }
}

/// One connection's event loop task.
struct Link {
    role: Role,
    eventloop: EventLoop,
    client: AsyncClient,
    acks: Option<Arc<AckBook>>,
    incoming: Option<mpsc::Sender<Incoming>>,
    filters: Vec<String>,
    state: Arc<watch::Sender<BrokerState>>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    backoff_min: Duration,
    backoff_max: Duration,
    stall_timeout: Duration,
    disconnect_timeout: Duration,
    /// PUBACKs rumqttc reported written on this connection.
    acks_written: u64,
    /// Confirmed publishes (publish links only).
    confirms: Option<Tracker>,
}

/// What the loop does next after an event.
enum Next {
    Continue,
    /// Drop the connection (a message was not taken) and reconnect after a back-off.
    Reconnect,
    /// Ingest is gone: stop.
    Stop,
}

impl Link {
    async fn run(mut self) {
        let name = self.role.name();
        let mut attempt: u32 = 0;
        let mut connected = false;
        let mut ever_connected = false;
        let mut subscribed = false;
        // Logged once per outage, not per attempt.
        let mut outage_logged = false;
        let mut stalled = false;

        loop {
            let acks = self.acks.clone();
            let before = PendingPeek::of(&self.eventloop.pending);
            let event = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                () = abandoned(acks.as_deref()), if connected => None,
                event = self.eventloop.poll() => Some(event),
            };
            if let (Some(event), Some(confirms)) = (&event, &mut self.confirms) {
                confirms.on_event(event, before, &self.eventloop);
            }
            let Some(event) = event else {
                tracing::info!(
                    link = name,
                    "MQTT: ingest did not take a message; reconnecting so the broker redelivers it"
                );
                self.hang_up().await;
                connected = false;
                self.backoff_sleep(&mut attempt).await;
                continue;
            };
            let next = match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    // rumqttc turns a refusing CONNACK into an error: this one accepted.
                    attempt = 0;
                    connected = true;
                    outage_logged = false;
                    Counters::bump(&self.counters.connects);
                    if ever_connected {
                        Counters::bump(&self.counters.reconnects);
                        if !ack.session_present {
                            Counters::bump(&self.counters.session_losses);
                            tracing::warn!(
                                link = name,
                                "MQTT broker had lost the session (restarted without persistence?)"
                            );
                        }
                    }
                    tracing::info!(
                        link = name,
                        session_present = ack.session_present,
                        reconnect = ever_connected,
                        "MQTT connected"
                    );
                    ever_connected = true;
                    let subscribe =
                        !self.filters.is_empty() && (!ack.session_present || !subscribed);
                    if subscribe {
                        self.subscribe()
                    } else {
                        self.set_state(LinkState::Connected);
                        Next::Continue
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(suback))) => {
                    let refused = suback
                        .return_codes
                        .iter()
                        .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                        .count();
                    if refused > 0 {
                        tracing::error!(
                            link = name,
                            refused,
                            filters = ?self.filters,
                            "MQTT broker refused subscriptions (ACL?); those messages will not come"
                        );
                    }
                    subscribed = true;
                    self.set_state(LinkState::Connected);
                    Next::Continue
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    self.deliver(publish, &mut stalled).await
                }
                Ok(Event::Outgoing(Outgoing::PubAck(_))) => {
                    self.acks_written += 1;
                    Next::Continue
                }
                Ok(_) => Next::Continue,
                Err(error) => {
                    if connected || !outage_logged {
                        tracing::warn!(
                            link = name,
                            error = %error,
                            "MQTT connection {}; reconnecting with back-off",
                            if connected { "lost" } else { "failed" }
                        );
                        outage_logged = true;
                    } else {
                        tracing::debug!(link = name, error = %error, attempt, "MQTT connect failed");
                    }
                    self.connection_lost(false);
                    connected = false;
                    Next::Reconnect
                }
            };
            if let Some(acks) = &self.acks {
                acks.flush();
            }
            match next {
                Next::Continue => {}
                Next::Stop => break,
                Next::Reconnect => {
                    if connected {
                        // A reconnect forced by deliver() or subscribe().
                        self.hang_up().await;
                        connected = false;
                    }
                    self.backoff_sleep(&mut attempt).await;
                }
            }
        }
        self.shutdown(connected).await;
        // Stopped only once the event loop (and so its request queue) is gone: a publish after
        // that fails with BrokerError::Stopped.
        let (state, role) = (self.state.clone(), self.role);
        let confirms = self.confirms.take();
        drop(self);
        set_state(&state, role, LinkState::Stopped);
        if let Some(mut confirms) = confirms {
            confirms.stop();
        }
    }

    /// Sleeps the back-off delay of `attempt` (and counts the attempt); returns early when
    /// cancelled (the loop then sees the cancellation).
    async fn backoff_sleep(&mut self, attempt: &mut u32) {
        let delay = backoff(*attempt, self.backoff_min, self.backoff_max);
        *attempt = attempt.saturating_add(1);
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }

    /// Drops a working connection on purpose, so the broker redelivers what ingest did not take.
    ///
    /// First the PUBACKs already released are written (polled until rumqttc reports as many
    /// written as were released, within the connect timeout), so only what was not taken comes
    /// again. Then the socket is closed *without* DISCONNECT: rumqttd 0.20 handles a DISCONNECT
    /// packet and the socket's close as two disconnections of the same connection id, and if
    /// the reconnect has already been given that id, the second one kills it (and may leave
    /// rumqttd's will bookkeeping for this client id broken, see [`super::embedded`]).
    async fn hang_up(&mut self) {
        if let Some(acks) = self.acks.clone() {
            let eventloop = &mut self.eventloop;
            let written = &mut self.acks_written;
            let drain = async {
                while *written < acks.released() {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::PubAck(_))) => *written += 1,
                        Err(_) => break,
                        // Messages arriving meanwhile are not delivered: they come again.
                        Ok(_) => {}
                    }
                }
            };
            let _ = tokio::time::timeout(self.disconnect_timeout, drain).await;
        }
        self.connection_lost(true);
    }

    /// Sends SUBSCRIBE for every filter (QoS 1). The request queue of the ingest link has room
    /// (it only carries acks); if not, the connection is dropped and the next one subscribes.
    fn subscribe(&mut self) -> Next {
        let filters = self
            .filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        match self.client.try_subscribe_many(filters) {
            Ok(()) => {
                Counters::bump(&self.counters.resubscribes);
                self.set_state(LinkState::Resubscribing);
                Next::Continue
            }
            Err(_) => {
                tracing::warn!(
                    link = self.role.name(),
                    "MQTT: cannot queue SUBSCRIBE; reconnecting"
                );
                Next::Reconnect
            }
        }
    }

    async fn deliver(&mut self, publish: Publish, stalled: &mut bool) -> Next {
        let received_at = Instant::now();
        let (Some(tx), Some(acks)) = (&self.incoming, &self.acks) else {
            return Next::Continue; // publish links subscribe to nothing
        };
        Counters::bump(&self.counters.received);
        let ack = match publish.qos {
            QoS::AtMostOnce => AckToken::none(),
            QoS::AtLeastOnce | QoS::ExactlyOnce => acks.register(publish.pkid),
        };
        let incoming = Incoming {
            topic: publish.topic,
            payload: publish.payload,
            received_at,
            retained: publish.retain,
            redelivered: publish.dup,
            ack,
        };
        let incoming = match tx.try_send(incoming) {
            Ok(()) => {
                if std::mem::take(stalled) {
                    tracing::info!("MQTT ingest channel has room again");
                }
                return Next::Continue;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return ingest_gone(),
            Err(mpsc::error::TrySendError::Full(incoming)) => incoming,
        };
        if !*stalled {
            tracing::warn!(
                wait = ?self.stall_timeout,
                "MQTT ingest channel full: ingest is slower than the devices; waiting"
            );
            *stalled = true;
        }
        let needs_ack = incoming.ack.needs_ack();
        let send = tokio::time::timeout(self.stall_timeout, tx.send(incoming));
        let result = tokio::select! {
            () = self.cancel.cancelled() => return Next::Continue, // the loop sees the cancel
            result = send => result,
        };
        match result {
            Ok(Ok(())) => Next::Continue,
            Ok(Err(_)) => ingest_gone(),
            Err(_) => {
                // The message was dropped with the send (its token too).
                Counters::bump(&self.counters.ingest_dropped);
                if needs_ack {
                    tracing::warn!(
                        "MQTT ingest took no message for {:?}: reconnecting so the broker \
                         redelivers the QoS 1 ones",
                        self.stall_timeout
                    );
                    Next::Reconnect
                } else {
                    Next::Continue
                }
            }
        }
    }

    /// Bookkeeping when a connection is gone (or dropped on purpose).
    fn connection_lost(&mut self, forced: bool) {
        if forced {
            Counters::bump(&self.counters.forced_reconnects);
        } else {
            Counters::bump(&self.counters.connection_errors);
        }
        self.acks_written = 0;
        if let Some(confirms) = &mut self.confirms {
            confirms.connection_lost();
        }
        match &self.acks {
            Some(acks) => acks.new_epoch(&mut self.eventloop),
            None if forced => self.eventloop.clean(),
            None => {} // rumqttc has cleaned up already
        }
        self.set_state(LinkState::Disconnected);
    }

    /// Says DISCONNECT (so the broker keeps the session and fires no will) within the connect
    /// timeout.
    async fn shutdown(&mut self, connected: bool) {
        if let Some(acks) = &self.acks {
            acks.stop();
        }
        self.incoming = None;
        if connected && self.client.try_disconnect().is_ok() {
            let eventloop = &mut self.eventloop;
            let drain = async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            let _ = tokio::time::timeout(self.disconnect_timeout, drain).await;
        }
        tracing::debug!(link = self.role.name(), "MQTT link stopped");
    }

    fn set_state(&self, new: LinkState) {
        set_state(&self.state, self.role, new);
    }
}

fn set_state(state: &watch::Sender<BrokerState>, role: Role, new: LinkState) {
    state.send_if_modified(|s| {
        let slot = s.get_mut(role);
        let changed = *slot != new;
        *slot = new;
        changed
    });
}

fn ingest_gone() -> Next {
    tracing::info!("MQTT ingest channel closed: the ingest link stops");
    Next::Stop
}

/// Waits for an abandoned ack token of the current connection; never, without an ack book.
async fn abandoned(acks: Option<&AckBook>) {
    match acks {
        Some(acks) => acks.abandoned().await,
        None => std::future::pending().await,
    }
}

/// The delay before reconnect attempt `attempt` (0-based): `min * 2^attempt` capped at `max`,
/// drawn uniformly between half and all of it.
fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let base = min
        .checked_mul(1u32 << attempt.min(20))
        .unwrap_or(max)
        .min(max);
    let half = base / 2;
    let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=jitter_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..100 {
            let d0 = backoff(0, min, max);
            assert!(d0 >= Duration::from_millis(50) && d0 <= min, "{d0:?}");
            let d3 = backoff(3, min, max);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d40 = backoff(40, min, max);
            assert!(d40 >= max / 2 && d40 <= max, "{d40:?}");
        }
    }

    #[test]
    fn config_validation() {
        let ok = ClientConfig::new("127.0.0.1", 1883, "firegrid-gw1");
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.client_id = "has/slash".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.filters = vec!["a/#/b".into()];
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.max_packet_size = 1024;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.share_group = Some("gw".into());
        assert_eq!(
            c.subscription_filters()[0],
            "$share/gw/firegrid/v1/dev/+/telemetry"
        );
        let c = ClientConfig {
            credentials: Some(Credentials {
                username: Some("u".into()),
                password: "secret".into(),
            }),
            ..ok
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
