//! The gateway's broker connection: the embedded MQTT broker and the MQTT client.
//!
//! - [`embedded`]: rumqttd 0.20 in this process ([`EmbeddedBroker`]), an MQTT 5 listener for
//!   devices and an MQTT 3.1.1 listener for the gateway's client and tools. The binary must add
//!   [`embedded::TRACING_DIRECTIVES`] to its log filter.
//! - [`client`]: the gateway's client over rumqttc 0.25 ([`Broker::connect`]), against the
//!   embedded broker or an external one: persistent session, manual in-order acknowledgement
//!   ([`AckToken`]), resubscription after a lost session, jittered reconnect back-off, publishes
//!   that never block for ever, publishes confirmed by the broker's PUBACK
//!   ([`BrokerHandle::publish_confirmed`]), a separate subscribing link for events and statuses
//!   (they come out of [`Uplink::recv`] before telemetry), and a separate link for urgent
//!   publishes.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use firegrid_gateway::broker::{Broker, ClientConfig, EmbeddedBroker, EmbeddedConfig, Priority, Qos};
//! use tokio_util::sync::CancellationToken;
//!
//! let embedded = EmbeddedBroker::start(EmbeddedConfig::default()).await?;
//! let addr = embedded.listen_v311();
//! let cancel = CancellationToken::new();
//! let config = ClientConfig::new(addr.ip().to_string(), addr.port(), "firegrid-gateway");
//! let (broker, mut incoming) = Broker::connect(config, cancel.clone())?;
//! while let Some(message) = incoming.recv().await {
//!     // ... journal it, then:
//!     message.ack.ack().ok(); // an Err means it comes again; ingest deduplicates
//! }
//! broker
//!     .publish(Priority::Urgent, "firegrid/v1/alert/hz-07", &b"{}"[..], Qos::AtLeastOnce, false)
//!     .await?;
//! # Ok(()) }
//! ```

mod ack;
pub mod client;
pub mod embedded;
pub mod probe;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use ack::{AckError, AckToken};
pub use client::{
    Broker, BrokerError, BrokerHandle, BrokerState, ClientConfig, CounterSnapshot, Credentials,
    Incoming, LinkState, Priority, Qos, Uplink, UplinkSender,
};
pub use embedded::{EmbeddedBroker, EmbeddedConfig, EmbeddedError, TRACING_DIRECTIVES};
