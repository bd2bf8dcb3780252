//! Confirmed publishes: which PUBACK answers which [`BrokerHandle::publish_confirmed`](super::BrokerHandle::publish_confirmed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use rumqttc::{Event, EventLoop, Outgoing, Packet, Request};
use tokio::sync::{Notify, oneshot};

/// Resolves one [`BrokerHandle::publish_confirmed`]: `Ok` on its PUBACK, else why not.
pub(super) type Confirm = oneshot::Sender<Result<(), &'static str>>;

/// Shared between a publish link's handle side and its event-loop task.
#[derive(Debug, Default)]
pub(super) struct Confirmations {
    /// One slot per publish request in rumqttc's request queue (or moved from there to its
    /// pending list), in queue order: the sender of a confirmed publish, `None` for the others.
    slots: Mutex<VecDeque<Option<Confirm>>>,
    /// Notified when rumqttc may have made room in the request queue (it took a request, or
    /// moved them all to its pending list) and when the link stops.
    pub(super) room: Notify,
}

impl Confirmations {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Option<Confirm>>> {
        // The critical sections only push and pop; a panic in one leaves the queue usable.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What is at the front of rumqttc's pending list (`EventLoop::pending`) before a poll: the
/// next request it sends comes from there if the list is not empty.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingPeek {
    len: usize,
    /// The front is a publish rumqttc had sent before (it carries its packet id): a resend,
    /// with no slot of its own.
    front_is_resend: bool,
    /// Publishes in the list that were never sent (moved there from the request queue by
    /// `EventLoop::clean`); each has its slot at the front of [`Confirmations::slots`].
    unsent: usize,
}

impl PendingPeek {
    pub(super) fn of(pending: &VecDeque<Request>) -> Self {
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
pub(super) struct Tracker {
    book: Arc<Confirmations>,
    /// Confirmed publishes sent on this connection, by packet id, awaiting their PUBACK.
    sent: HashMap<u16, Confirm>,
    /// A publish rumqttc holds back because its packet id is still in flight (a "collision":
    /// `Outgoing::AwaitAck`, then `Outgoing::Publish` once that id is acked).
    collided: Option<(u16, Option<Confirm>)>,
}

impl Tracker {
    pub(super) fn new(book: Arc<Confirmations>) -> Self {
        Self {
            book,
            sent: HashMap::new(),
            collided: None,
        }
    }

    /// The next slot of the request queue (rumqttc took that request).
    pub(super) fn next_slot(&self) -> Option<Confirm> {
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
    pub(super) fn on_event(
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
    pub(super) fn connection_lost(&mut self) {
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
    pub(super) fn stop(&mut self) {
        self.connection_lost();
        let queued: Vec<_> = self.book.lock().drain(..).collect();
        for tx in queued.into_iter().flatten() {
            let _ = tx.send(Err("the client stopped"));
        }
        self.book.room.notify_waiters();
    }
}
