//! [`BrokerHandle`]: publishing on the two publish links, and observing the client.

use super::confirm::Confirm;
use super::confirm::Confirmations;
use super::error::BrokerError;
use super::state::BrokerState;
use super::state::CounterSnapshot;
use super::state::Counters;
use super::state::LinkState;
use super::state::Priority;
use super::state::Qos;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::AsyncClient;
use tokio::sync::{oneshot, watch};

/// Publishes, and observes the client's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    pub(super) normal: PublishLink,
    pub(super) urgent: PublishLink,
    pub(super) state: watch::Receiver<BrokerState>,
    pub(super) counters: Arc<Counters>,
    pub(super) publish_timeout: Duration,
    pub(super) max_packet_size: usize,
}

impl BrokerHandle {
    /// Queues a publish on the link of `priority`, waiting at most the configured
    /// `publish_timeout` for room in its queue; never blocks longer. `Ok` means queued (see the
    /// [module docs](super) for what happens to queued messages when the connection drops).
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
            matches!(
                s.publishing(priority),
                LinkState::Connected | LinkState::Stopped
            )
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
        self.queue_confirmed(priority, topic, payload.into(), retain, deadline, deadline)
            .await?
            .confirmed()
            .await
    }

    /// Queues a QoS 1 publish on the link of `priority` **at once**, without waiting: for the
    /// link to be connected ([`BrokerError::NotConfirmed`] if it is not) nor for room in its
    /// queue ([`BrokerError::Backpressure`] if it is full). The [`Confirmation`] resolves on the
    /// broker's PUBACK, within `timeout`. For a caller that must not stop for the broker's
    /// round trip (the pipeline's early alerts).
    ///
    /// # Errors
    /// As above, and [`BrokerError::InvalidTopic`], [`BrokerError::TooLarge`],
    /// [`BrokerError::Stopped`].
    pub async fn publish_unwaited(
        &self,
        priority: Priority,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        retain: bool,
        timeout: Duration,
    ) -> Result<Confirmation, BrokerError> {
        let topic = topic.into();
        let link = self.state.borrow().publishing(priority);
        if link != LinkState::Connected {
            return Err(BrokerError::NotConfirmed {
                priority,
                topic,
                reason: format!("the link is {link:?}, not connected"),
            });
        }
        let now = tokio::time::Instant::now();
        self.queue_confirmed(priority, topic, payload.into(), retain, now, now + timeout)
            .await
    }

    /// Queues a QoS 1 publish with a confirmation slot, waiting until `room` for room in the
    /// queue; the [`Confirmation`] waits until `deadline` for the PUBACK.
    async fn queue_confirmed(
        &self,
        priority: Priority,
        topic: String,
        payload: Bytes,
        retain: bool,
        room: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> Result<Confirmation, BrokerError> {
        let (tx, rx) = oneshot::channel();
        let message = Outbound {
            priority,
            topic: topic.clone(),
            payload,
            qos: Qos::AtLeastOnce,
            retain,
        };
        self.enqueue(message, room, Some(tx)).await?;
        Ok(Confirmation {
            rx,
            deadline,
            timeout: deadline.saturating_duration_since(tokio::time::Instant::now()),
            priority,
            topic,
        })
    }

    pub(super) async fn enqueue(
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
    pub(super) async fn check_and_send(
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
            if self.state.borrow().publishing(priority) == LinkState::Stopped {
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

/// A message to publish.
pub(super) struct Outbound {
    priority: Priority,
    topic: String,
    payload: Bytes,
    qos: Qos,
    retain: bool,
}

/// A publish link as the handle sees it: rumqttc's client and the link's confirmation slots.
#[derive(Debug, Clone)]
pub(super) struct PublishLink {
    pub(super) client: AsyncClient,
    pub(super) book: Arc<Confirmations>,
}

/// A confirmed publish, queued: [`confirmed`](Self::confirmed) once the broker has it.
#[derive(Debug)]
pub struct Confirmation {
    rx: oneshot::Receiver<Result<(), &'static str>>,
    deadline: tokio::time::Instant,
    /// How long it was given once queued (for the error).
    timeout: Duration,
    priority: Priority,
    topic: String,
}

impl Confirmation {
    /// `Ok` once the broker's PUBACK for it came; [`BrokerError::NotConfirmed`] if the link
    /// dropped first, the broker lost the session, the client stopped or the deadline passed.
    ///
    /// # Errors
    /// As above.
    pub async fn confirmed(self) -> Result<(), BrokerError> {
        let Self {
            rx,
            deadline,
            timeout,
            priority,
            topic,
        } = self;
        let not_confirmed = |reason: String| BrokerError::NotConfirmed {
            priority,
            topic,
            reason,
        };
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(not_confirmed(reason.to_string())),
            Ok(Err(_)) => Err(not_confirmed("the link stopped".into())),
            Err(_) => Err(not_confirmed(format!("no PUBACK within {timeout:?}"))),
        }
    }
}
