//! The gateway's MQTT client: one typed API over rumqttc 0.25 for the managed Mosquitto or an
//! external broker (Mosquitto, EMQX).
//!
//! # Layout
//! - `config`: [`ClientConfig`], [`Credentials`], and how each link's rumqttc client is made;
//! - `state`: what the client hands over and says about itself ([`Incoming`], [`Qos`],
//!   [`Priority`], [`BrokerState`], counters);
//! - `uplink`: [`Uplink`], the received messages in priority order;
//! - `handle`: [`BrokerHandle`], publishing and observing;
//! - `confirm`: which PUBACK confirms which publish;
//! - `ack`: in-order manual acknowledgement of received messages ([`AckToken`]);
//! - `link`: one connection's event loop;
//! - this file: [`Broker::connect`], which wires them together.
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
//! Why MQTT 3.1.1 and not 5: every broker speaks it, rumqttc's 3.1.1 path is the mature one, and
//! what 5 would add here (session expiry, receive maximum, reason codes) is covered (persistent
//! session, in-order manual acks bound what is outstanding).
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
//! [`BrokerHandle::publish_unwaited`] is the same publish split in two: queued at once (or
//! refused at once when the link is down or its queue full), its [`Confirmation`] awaited
//! later — for the pipeline, which must not stop for the broker's round trip.

mod ack;
mod config;
mod confirm;
mod error;
mod handle;
mod link;
mod state;
#[cfg(test)]
mod tests;
mod uplink;

pub use ack::{AckError, AckToken};
pub use config::{ClientConfig, Credentials};
pub use error::BrokerError;
pub use handle::{BrokerHandle, Confirmation};
pub use state::{BrokerState, CounterSnapshot, Incoming, LinkState, Priority, Qos};
pub use uplink::{Uplink, UplinkSender};

use ack::AckBook;
use config::Role;
use config::new_client;
use confirm::Confirmations;
use confirm::Tracker;
use handle::PublishLink;
use link::Link;
use state::Counters;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

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
            // The links of the alarm path run on its thread, when it has one.
            match (&config.alarm_path, role) {
                (Some(alarm_path), Role::Alarms | Role::Urgent) => alarm_path.spawn(link.run()),
                _ => runtime.spawn(link.run()),
            };
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
