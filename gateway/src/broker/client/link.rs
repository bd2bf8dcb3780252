//! One connection's event loop: connect, subscribe, receive, acknowledge in order, reconnect
//! with back-off.

use super::ack::AckBook;
use super::ack::AckToken;
use super::config::Role;
use super::confirm::PendingPeek;
use super::confirm::Tracker;
use super::state::BrokerState;
use super::state::Counters;
use super::state::Incoming;
use super::state::LinkState;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, EventLoop, Outgoing, Packet, Publish, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The size of a packet too large for the client, if that is why the connection broke.
fn oversize(error: &rumqttc::ConnectionError) -> Option<usize> {
    match error {
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size),
        )) => Some(*size),
        _ => None,
    }
}

/// One connection's event loop task.
pub(super) struct Link {
    pub(super) role: Role,
    pub(super) eventloop: EventLoop,
    pub(super) client: AsyncClient,
    pub(super) acks: Option<Arc<AckBook>>,
    pub(super) incoming: Option<mpsc::Sender<Incoming>>,
    pub(super) filters: Vec<String>,
    pub(super) state: Arc<watch::Sender<BrokerState>>,
    pub(super) counters: Arc<Counters>,
    pub(super) cancel: CancellationToken,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) stall_timeout: Duration,
    pub(super) disconnect_timeout: Duration,
    /// PUBACKs rumqttc reported written on this connection.
    pub(super) acks_written: u64,
    /// Confirmed publishes (publish links only).
    pub(super) confirms: Option<Tracker>,
}

/// What the loop does next after an event.
pub(super) enum Next {
    Continue,
    /// Drop the connection (a message was not taken) and reconnect after a back-off.
    Reconnect,
    /// Ingest is gone: stop.
    Stop,
}

impl Link {
    pub(super) async fn run(mut self) {
        let name = self.role.name();
        let mut attempt: u32 = 0;
        let mut connected = false;
        let mut ever_connected = false;
        let mut subscribed = false;
        // Logged once per outage, not per attempt.
        let mut outage_logged = false;
        let mut stalled = false;
        // The next connection starts a clean session (the last one held a packet too large to
        // take, which the broker would otherwise redeliver forever).
        let mut discarding = false;

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
                    let discarded = std::mem::take(&mut discarding);
                    if discarded {
                        // Persistent again from the next connection on.
                        self.eventloop.mqtt_options.set_clean_session(false);
                    }
                    if ever_connected {
                        Counters::bump(&self.counters.reconnects);
                        if !ack.session_present && !discarded {
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
                Err(error) if oversize(&error).is_some() => {
                    Counters::bump(&self.counters.oversize);
                    tracing::error!(
                        link = name,
                        error = %error,
                        max_packet_size = ?self.eventloop.mqtt_options.max_packet_size(),
                        "MQTT broker sent a packet larger than the client takes: dropping the \
                         connection and the session that holds it (set the broker's \
                         max_packet_size; devices resend unacknowledged events)"
                    );
                    discarding = true;
                    self.eventloop.mqtt_options.set_clean_session(true);
                    self.connection_lost(false);
                    connected = false;
                    outage_logged = true;
                    Next::Reconnect
                }
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
    pub(super) async fn backoff_sleep(&mut self, attempt: &mut u32) {
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
    pub(super) async fn hang_up(&mut self) {
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
    pub(super) fn subscribe(&mut self) -> Next {
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

    pub(super) async fn deliver(&mut self, publish: Publish, stalled: &mut bool) -> Next {
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
    pub(super) fn connection_lost(&mut self, forced: bool) {
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
    pub(super) async fn shutdown(&mut self, connected: bool) {
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

    pub(super) fn set_state(&self, new: LinkState) {
        set_state(&self.state, self.role, new);
    }
}

pub(super) fn set_state(state: &watch::Sender<BrokerState>, role: Role, new: LinkState) {
    state.send_if_modified(|s| {
        let slot = s.get_mut(role);
        let changed = *slot != new;
        *slot = new;
        changed
    });
}

pub(super) fn ingest_gone() -> Next {
    tracing::info!("MQTT ingest channel closed: the ingest link stops");
    Next::Stop
}

/// Waits for an abandoned ack token of the current connection; never, without an ack book.
pub(super) async fn abandoned(acks: Option<&AckBook>) {
    match acks {
        Some(acks) => acks.abandoned().await,
        None => std::future::pending().await,
    }
}

/// The delay before reconnect attempt `attempt` (0-based): `min * 2^attempt` capped at `max`,
/// drawn uniformly between half and all of it.
pub(super) fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let base = min
        .checked_mul(1u32 << attempt.min(20))
        .unwrap_or(max)
        .min(max);
    let half = base / 2;
    let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=jitter_ns))
}
