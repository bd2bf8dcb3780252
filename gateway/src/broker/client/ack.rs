//! Manual acknowledgement of received QoS 1 messages, released in the order received.
//!
//! MQTT requires a client to send PUBACKs in the order the PUBLISH packets arrived
//! (MQTT 3.1.1 §4.6, [MQTT-4.6.0-2]); rumqttd even disconnects a client that acks out of order.
//! Ingest may finish messages out of order (e.g. an event waits for the journal while telemetry
//! is done at once), so [`AckToken::ack`] only marks its message taken, and the PUBACKs of the
//! longest run of taken messages at the head of the queue go out.
//!
//! Each connection is an *epoch*. A token from an earlier connection acks nothing: the broker
//! redelivers its message on the new connection (with a new packet id and a new token), and
//! ingest deduplicates. A token dropped without [`AckToken::ack`] means "not taken": the link
//! reconnects (with back-off) so the broker redelivers it, rather than leaving it and every
//! message after it unacknowledged until the broker's in-flight window fills.

use super::state::Counters;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rumqttc::{AsyncClient, EventLoop, Publish, QoS};
use tokio::sync::Notify;

/// Why [`AckToken::ack`] released nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The connection the message came on is gone; the broker redelivers the message on the
    /// new connection (ingest sees it again and deduplicates).
    #[error("the connection this message came on is gone; the broker redelivers it")]
    Stale,
    /// The client has stopped.
    #[error("the MQTT client has stopped")]
    Stopped,
}

/// The right to acknowledge one received QoS 1 message (a no-op for QoS 0).
///
/// [`AckToken::ack`] marks the message taken; PUBACKs go out in the order the messages arrived,
/// as MQTT requires (rumqttd even disconnects a client acking out of order), so a message taken
/// early waits for those before it. A token of an earlier connection acks nothing
/// ([`AckError::Stale`]): the broker redelivers that message on the new connection with a new
/// token, and ingest deduplicates. Dropping a token without `ack` means "not taken": the client
/// drops the connection and reconnects (with back-off) so the broker redelivers the message.
#[must_use = "dropping an AckToken without ack() makes the broker redeliver the message"]
#[derive(Debug)]
pub struct AckToken {
    inner: Option<Pending>,
}

#[derive(Debug)]
pub(super) struct Pending {
    book: Arc<AckBook>,
    epoch: u64,
    slot: u64,
}

impl AckToken {
    /// A token with nothing to acknowledge (QoS 0 messages).
    pub(crate) fn none() -> Self {
        Self { inner: None }
    }

    /// Whether acking this token sends a PUBACK (QoS 1), as opposed to doing nothing (QoS 0).
    pub fn needs_ack(&self) -> bool {
        self.inner.is_some()
    }

    /// Ingest has taken the message: release its PUBACK (after those of every message received
    /// before it on the same connection).
    pub fn ack(mut self) -> Result<(), AckError> {
        match self.inner.take() {
            None => Ok(()),
            Some(p) => p.book.take(p.epoch, p.slot),
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let Some(p) = self.inner.take() {
            p.book.abandon(p.epoch);
        }
    }
}

/// The ingest link's queue of received, not yet acknowledged QoS 1 messages.
#[derive(Debug)]
pub(crate) struct AckBook {
    inner: Mutex<Inner>,
    client: AsyncClient,
    counters: Arc<Counters>,
    /// Woken when a token of the current connection is dropped without ack.
    abandoned: Notify,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    epoch: u64,
    /// Slot number of `queue[0]`.
    first_slot: u64,
    /// (packet id, taken) in the order received.
    queue: VecDeque<(u16, bool)>,
    /// PUBACKs of this connection handed to the request queue.
    released: u64,
    /// A token of this connection was dropped without ack.
    abandoned: bool,
    stopped: bool,
}

impl AckBook {
    pub(crate) fn new(client: AsyncClient, counters: Arc<Counters>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            client,
            counters,
            abandoned: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across a panic that leaves Inner half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a received QoS 1 message and returns its token.
    pub(crate) fn register(self: &Arc<Self>, pkid: u16) -> AckToken {
        let mut inner = self.lock();
        let slot = inner.first_slot + inner.queue.len() as u64;
        inner.queue.push_back((pkid, false));
        AckToken {
            inner: Some(Pending {
                book: self.clone(),
                epoch: inner.epoch,
                slot,
            }),
        }
    }

    pub(super) fn take(&self, epoch: u64, slot: u64) -> Result<(), AckError> {
        let mut inner = self.lock();
        if inner.stopped {
            return Err(AckError::Stopped);
        }
        if inner.epoch != epoch {
            self.counters.acks_stale.fetch_add(1, Ordering::Relaxed);
            return Err(AckError::Stale);
        }
        // A slot of this epoch is still queued: it leaves the queue only once taken, and a
        // token takes once.
        let index = slot
            .checked_sub(inner.first_slot)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(entry) = index.and_then(|i| inner.queue.get_mut(i)) {
            entry.1 = true;
        }
        self.release(&mut inner);
        Ok(())
    }

    /// Sends the PUBACKs of the taken messages at the head of the queue. A full request channel
    /// leaves them queued; [`AckBook::flush`] retries after the link's next event.
    pub(super) fn release(&self, inner: &mut Inner) {
        while let Some(&(pkid, true)) = inner.queue.front() {
            let mut publish = Publish::new("", QoS::AtLeastOnce, Vec::new());
            publish.pkid = pkid;
            if self.client.try_ack(&publish).is_err() {
                return;
            }
            inner.queue.pop_front();
            inner.first_slot += 1;
            inner.released += 1;
            self.counters.acked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many PUBACKs of this connection were handed to the request queue.
    pub(crate) fn released(&self) -> u64 {
        self.lock().released
    }

    /// Retries PUBACKs that a full request channel held back.
    pub(crate) fn flush(&self) {
        let mut inner = self.lock();
        self.release(&mut inner);
    }

    pub(super) fn abandon(&self, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch && !inner.stopped && !inner.abandoned {
            inner.abandoned = true;
            self.abandoned.notify_one();
        }
    }

    /// Waits until a token of the current connection is dropped without ack; returns at once if
    /// one was. Clears the mark.
    pub(crate) async fn abandoned(&self) {
        loop {
            {
                let mut inner = self.lock();
                if inner.abandoned {
                    inner.abandoned = false;
                    return;
                }
            }
            self.abandoned.notified().await;
        }
    }

    /// The connection is gone (or is being dropped): starts a new epoch, forgets the queue, and
    /// drains PUBACKs of the old connection still in the request channel, all under the lock so
    /// no old-epoch PUBACK can reach the next connection.
    pub(crate) fn new_epoch(&self, eventloop: &mut EventLoop) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.first_slot += inner.queue.len() as u64;
        inner.queue.clear();
        inner.released = 0;
        inner.abandoned = false;
        // Drops the network (if any) and the PUBACKs queued in the request channel.
        eventloop.clean();
    }

    /// The link has stopped: every token acks nothing from now on.
    pub(crate) fn stop(&self) {
        let mut inner = self.lock();
        inner.stopped = true;
        inner.queue.clear();
    }
}
