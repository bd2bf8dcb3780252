//! The client's errors.

use super::state::BrokerState;
use super::state::Priority;
use std::time::Duration;

/// Errors of the MQTT client layer.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration cannot work.
    #[error("MQTT client: {0}")]
    Config(String),
    /// [`Broker::connect`](super::Broker::connect) was called outside a Tokio runtime.
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
    /// [`BrokerHandle::publish_confirmed`](super::BrokerHandle::publish_confirmed): the broker's PUBACK did not come (the link was down
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
    /// [`BrokerHandle::wait_connected`](super::BrokerHandle::wait_connected) ran out of time.
    #[error("MQTT client: not connected within {waited:?} (state: {state})")]
    NotConnected {
        /// How long it waited.
        waited: Duration,
        /// The links' state at the end.
        state: BrokerState,
    },
}
