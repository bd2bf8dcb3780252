//! What devices send, in priority order ([`Uplink`]), and messages from elsewhere joining it
//! ([`UplinkSender`]).

use super::state::Incoming;

use tokio::sync::mpsc;

/// What devices send, from the two subscribing links: events and statuses first.
#[derive(Debug)]
pub struct Uplink {
    /// Weak, so the queues close when the links stop (and every [`UplinkSender`] is gone).
    pub(super) senders: (mpsc::WeakSender<Incoming>, mpsc::WeakSender<Incoming>),
    pub(super) alarms: mpsc::Receiver<Incoming>,
    pub(super) telemetry: mpsc::Receiver<Incoming>,
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
        self.recv_paced(tokio::time::Instant::now()).await
    }

    /// Like [`recv`](Self::recv), but telemetry only from `telemetry_from` on: an event or
    /// status is taken at once meanwhile, telemetry waits in its queue (and, taken together
    /// then, costs its taker one wake-up instead of one per message).
    ///
    /// # Cancel safety
    /// Cancel-safe: it awaits `mpsc::Receiver::recv` and a sleep.
    pub async fn recv_paced(&mut self, telemetry_from: tokio::time::Instant) -> Option<Incoming> {
        let telemetry = async {
            if telemetry_from > tokio::time::Instant::now() {
                tokio::time::sleep_until(telemetry_from).await;
            }
            self.telemetry.recv().await
        };
        tokio::select! {
            biased;
            Some(m) = self.alarms.recv() => Some(m),
            Some(m) = telemetry => Some(m),
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
