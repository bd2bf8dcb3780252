//! What the client says about itself and what it hands over: quality of service, priority,
//! messages for ingest, link states, counters.

use super::ack::AckToken;
use super::config::Role;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use rumqttc::QoS;

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

/// The state of the client's four links; observe changes with [`BrokerHandle::state`](super::BrokerHandle::state).
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

    pub(super) fn links(&self) -> [LinkState; 4] {
        [self.ingest, self.alarms, self.normal, self.urgent]
    }

    /// The state of the publish link of `priority`.
    pub(super) fn publishing(&self, priority: Priority) -> LinkState {
        match priority {
            Priority::Normal => self.normal,
            Priority::Urgent => self.urgent,
        }
    }

    pub(super) fn get_mut(&mut self, role: Role) -> &mut LinkState {
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
    pub(crate) oversize: AtomicU64,
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
    /// Packets larger than `max_packet_size` the broker sent (an external broker without a
    /// packet limit): each dropped its connection and the session holding it.
    pub oversize: u64,
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
    pub(super) fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            session_losses: get(&self.session_losses),
            resubscribes: get(&self.resubscribes),
            connection_errors: get(&self.connection_errors),
            forced_reconnects: get(&self.forced_reconnects),
            oversize: get(&self.oversize),
            received: get(&self.received),
            acked: get(&self.acked),
            acks_stale: get(&self.acks_stale),
            ingest_dropped: get(&self.ingest_dropped),
            publishes: get(&self.publishes),
            publish_rejected: get(&self.publish_rejected),
        }
    }

    pub(super) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}
