//! The gateway's broker connection: the devices' broker (a Mosquitto the gateway manages, or an
//! external one) and the gateway's MQTT client.
//!
//! - [`mosquitto`]: the managed Mosquitto ([`mosquitto::ManagedBroker`]): its configuration,
//!   password file and ACL written from the registry (a device logs in with its own credential
//!   and uses only its own topics), reloaded when accounts change, watched and restarted; and
//!   the same account files for an external Mosquitto. [`settings`] is `[broker]`, [`setup`]
//!   brings it all up.
//! - [`client`]: the gateway's client over rumqttc 0.25 ([`Broker::connect`]): persistent
//!   session, manual in-order acknowledgement ([`AckToken`]), resubscription after a lost
//!   session, jittered reconnect back-off, publishes that never block for ever, publishes
//!   confirmed by the broker's PUBACK ([`BrokerHandle::publish_confirmed`]), a separate
//!   subscribing link for events and statuses (they come out of [`Uplink::recv`] before
//!   telemetry), and a separate link for urgent publishes.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use firegrid_gateway::broker::{Broker, ClientConfig, Credentials, Priority, Qos};
//! use tokio_util::sync::CancellationToken;
//!
//! let cancel = CancellationToken::new();
//! let mut config = ClientConfig::new("127.0.0.1", 1883, "firegrid.gateway");
//! config.credentials = Some(Credentials { username: None, password: "…".into() });
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

pub mod client;
pub mod mosquitto;
pub mod probe;
pub mod settings;
pub mod setup;
#[cfg(test)]
mod tests;

pub use client::{
    AckError, AckToken, Broker, BrokerError, BrokerHandle, BrokerState, ClientConfig, Confirmation,
    CounterSnapshot, Credentials, Incoming, LinkState, Priority, Qos, Uplink, UplinkSender,
};
