//! The notifiers: journaled alerts out to grid workers, at least once.
//!
//! One task per kind of channel — MQTT on the urgent broker link, or webhooks by signed POST —
//! so that a slow webhook never delays an MQTT alert. The pipeline hands each alert over once
//! its notification is journaled; a periodic sweep of the outbox picks up whatever is still
//! due (after a restart, a failure, or when the queue was full). An alarm's `opened` alert on
//! MQTT is published by the pipeline itself ([`publish_early`]) before its notification is
//! journaled, and handed over only to be marked delivered (decision record 20).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerHandle, Priority};
use crate::clock::now_ms;
use crate::metrics::{AlertChannel, AlertResult, Metrics};
use crate::model::TicketState;
use crate::notify::alert::{Alert, AlertKind};
use crate::notify::webhook::{self, AfterFailure, Webhooks};
use crate::store::{JournalOp, JournalWriter, NotifyChannel, Store};

/// How long the notifier waits for the broker to confirm an alert before retrying it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// An alert on one channel: journaled and to go out, or (an [`early`](Self::early) one) gone
/// out before it was journaled and only to be marked delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Published on the urgent link before its journal commit (an episode a device's event
    /// opened, on MQTT: the alarm path, [`publish_early`]): the notifier only journals its
    /// delivery.
    pub early: bool,
    /// The notification's id in the outbox.
    pub id: i64,
    /// MQTT or a webhook.
    pub channel: NotifyChannel,
    /// The topic or the URL.
    pub target: String,
    /// The alert.
    pub alert: Alert,
    /// Delivery attempts so far.
    pub attempts: u32,
}

/// Delivers journaled alerts of one kind of channel — MQTT on the urgent link, or webhooks by
/// signed POST (one task each, so that a slow webhook never delays an MQTT alert); each is
/// marked delivered in the outbox, or failed and retried with backoff. A periodic sweep picks
/// up whatever the outbox still holds of its kind (after a restart, a failure, or when the
/// queue was full).
///
/// Alerts waiting together are sent together (concurrently, queued in order), and their
/// delivery marks are journaled in one commit **behind** them, never in front of the next
/// alert: an alert waits for no fsync but its own episode's. A mark lost to a crash only means
/// the sweep sends that alert again under the same `alert_id` (receivers deduplicate by it).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    kind: NotifyChannel,
    store: Store,
    journal: JournalWriter,
    broker: BrokerHandle,
    webhooks: Webhooks,
    metrics: Arc<Metrics>,
    mut queue: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    // Delivery marks being journaled; waited for before exiting.
    let mut marks = tokio::task::JoinSet::new();
    let mut recent = Recent::default();
    loop {
        let mut batch: Vec<Outgoing> = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(o) = queue.recv() => {
                let mut batch = vec![o];
                while batch.len() < NOTIFY_BATCH
                    && let Ok(o) = queue.try_recv()
                {
                    batch.push(o);
                }
                batch
            }
            _ = sweep.tick() => {
                // Off the runtime's threads: the outbox read never stalls an alarm's task.
                let store = store.clone();
                let due = tokio::task::spawn_blocking(move || store.due_notifications(now_ms(), 256))
                    .await;
                let due = match due {
                    Ok(Ok(due)) => due,
                    Ok(Err(e)) => {
                        tracing::warn!("outbox not read, swept again in a second: {e}");
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::error!("outbox sweep failed: {e}");
                        Vec::new()
                    }
                };
                recent.forget_before(now_ms().saturating_sub(RECENT_MS));
                let webhooks_only = kind == NotifyChannel::Webhook;
                due
                    .into_iter()
                    .filter(|n| (n.fields.channel == NotifyChannel::Webhook) == webhooks_only)
                    .filter_map(|n| {
                        let mut alert: Alert = serde_json::from_value(n.fields.payload).ok()?;
                        alert.alert_id = u64::try_from(n.id).unwrap_or(0);
                        Some(Outgoing {
                            early: false,
                            id: n.id,
                            channel: n.fields.channel,
                            target: n.fields.target,
                            alert,
                            attempts: n.attempts,
                        })
                    })
                    .collect()
            }
            Some(_) = marks.join_next() => continue,
        };
        // The same notification from the hand-off and the sweep (its delivery mark not yet
        // committed when the sweep read the outbox) goes out once.
        batch.retain(|o| !recent.sent(o.id));
        if batch.is_empty() {
            continue;
        }
        // Webhook retries stop once a person has acknowledged the episode's ticket.
        let tickets = webhook_tickets(&store, &batch).await;
        let sent =
            futures_util::future::join_all(batch.iter().zip(&tickets).map(|(o, ticket)| async {
                match (o.early, webhook::retry_wanted(o.attempts, *ticket)) {
                    (true, _) => Some((AlertChannel::Mqtt, Ok(()))),
                    (false, true) => Some(deliver(o, &broker, &webhooks).await),
                    (false, false) => None,
                }
            }))
            .await;
        let ops: Vec<JournalOp> = batch
            .iter()
            .zip(sent)
            .zip(tickets)
            .map(|((o, sent), ticket)| match sent {
                None => stop_webhook(o, ticket, &metrics),
                Some((channel, Ok(()))) => {
                    recent.delivered(o.id, now_ms());
                    metrics.alert(channel, AlertResult::Ok);
                    // An early alert's latency was counted when it was published.
                    if o.alert.what == AlertKind::Opened
                        && o.channel == NotifyChannel::Mqtt
                        && !o.early
                    {
                        // From the message's arrival (the episode's start) to the alert's send.
                        metrics.alarm_latency(Duration::from_millis(
                            now_ms().saturating_sub(o.alert.started_ms),
                        ));
                    }
                    JournalOp::Delivered {
                        id: o.id,
                        at_ms: now_ms(),
                    }
                }
                Some((channel, Err(e))) => {
                    match webhook::after_failure(o.attempts, ticket, now_ms()) {
                        AfterFailure::Stop(_) => stop_webhook(o, ticket, &metrics),
                        AfterFailure::RetryAt(next_attempt_ms) => {
                            tracing::warn!(episode = o.alert.episode, target = %shown_target(o), attempts = o.attempts, "alert not delivered, will retry: {e}");
                            metrics.alert(channel, AlertResult::Retry);
                            JournalOp::Failed {
                                id: o.id,
                                next_attempt_ms,
                            }
                        }
                    }
                }
            })
            .collect();
        if !ops.is_empty() {
            let journal = journal.clone();
            marks.spawn(async move {
                if let Err(e) = journal.submit(ops).await {
                    tracing::warn!("delivery state not journaled: {e}");
                }
            });
        }
    }
    while marks.join_next().await.is_some() {}
}

/// The tickets of the webhook alerts' episodes (`None` for other channels, or unreadable),
/// read off the async threads; no read at all for a batch without webhooks.
async fn webhook_tickets(store: &Store, batch: &[Outgoing]) -> Vec<Option<TicketState>> {
    let episodes: Vec<Option<crate::model::EpisodeId>> = batch
        .iter()
        .map(|o| (o.channel == NotifyChannel::Webhook).then_some(o.alert.episode))
        .collect();
    if episodes.iter().all(Option::is_none) {
        return vec![None; batch.len()];
    }
    let store = store.clone();
    let n = batch.len();
    tokio::task::spawn_blocking(move || {
        episodes
            .into_iter()
            .map(|e| e.and_then(|id| store.episode(id).ok().flatten().map(|e| e.ticket)))
            .collect()
    })
    .await
    .unwrap_or_else(|_| vec![None; n])
}

/// A webhook alert no longer retried: its ticket was acknowledged (or moved on).
fn stop_webhook(o: &Outgoing, ticket: Option<TicketState>, metrics: &Metrics) -> JournalOp {
    let reason = format!(
        "ticket {}: webhook retries stop",
        ticket.map_or("acknowledged", TicketState::as_str)
    );
    tracing::info!(episode = o.alert.episode, target = %shown_target(o), attempts = o.attempts, "alert not retried: {reason}");
    metrics.alert(AlertChannel::Webhook, AlertResult::Stopped);
    JournalOp::Stopped {
        id: o.id,
        at_ms: now_ms(),
        reason,
    }
}

/// The target as logs may show it (a webhook URL's path and query may hold a secret).
fn shown_target(o: &Outgoing) -> String {
    match o.channel {
        NotifyChannel::Webhook => webhook::redact_url(&o.target),
        NotifyChannel::Mqtt | NotifyChannel::Sse => o.target.clone(),
    }
}

/// How long a notifier remembers an alert it delivered: far longer than its delivery mark takes
/// to commit, so neither the sweep nor a late hand-off sends it a second time. (A mark lost to
/// a crash or a failed commit still means one more send, by design: at least once.)
const RECENT_MS: u64 = 60_000;

/// The notifications a notifier delivered lately, by outbox id, with when.
#[derive(Debug, Default)]
struct Recent(std::collections::HashMap<i64, u64>);

impl Recent {
    /// Whether `id` was delivered lately.
    fn sent(&self, id: i64) -> bool {
        self.0.contains_key(&id)
    }

    /// `id` was delivered at `at_ms`.
    fn delivered(&mut self, id: i64, at_ms: u64) {
        self.0.insert(id, at_ms);
    }

    /// Forgets what was delivered before `cutoff_ms`.
    fn forget_before(&mut self, cutoff_ms: u64) {
        self.0.retain(|_, at| *at >= cutoff_ms);
    }
}

/// Alerts a notifier sends together at most.
const NOTIFY_BATCH: usize = 256;

/// Sends one alert: on the urgent MQTT link (delivered = the broker's PUBACK came), or by
/// webhook.
async fn deliver(
    o: &Outgoing,
    broker: &BrokerHandle,
    webhooks: &Webhooks,
) -> (AlertChannel, Result<(), String>) {
    let body = serde_json::to_vec(&o.alert).unwrap_or_default();
    match o.channel {
        NotifyChannel::Webhook => (
            AlertChannel::Webhook,
            webhooks
                .post(&o.target, body)
                .await
                .map_err(|e| e.to_string()),
        ),
        NotifyChannel::Mqtt | NotifyChannel::Sse => {
            (AlertChannel::Mqtt, publish_mqtt(o, body, broker).await)
        }
    }
}

async fn publish_mqtt(o: &Outgoing, body: Vec<u8>, broker: &BrokerHandle) -> Result<(), String> {
    broker
        .publish_confirmed(
            Priority::Urgent,
            o.target.clone(),
            body,
            false,
            CONFIRM_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())
}

/// Queues the [`early`](Outgoing::early) ones of `alerts` on the urgent link, all at once,
/// before their journal commit (the pipeline's alarm path), **without waiting for the
/// broker**: their PUBACKs are awaited by tasks of their own, so the pipeline goes on to the
/// next message while the broker answers. The alarm latency of each `opened` one confirmed is
/// counted when its PUBACK comes.
pub async fn publish_early(
    alerts: &[Outgoing],
    broker: &BrokerHandle,
    metrics: &Arc<Metrics>,
) -> EarlyPublishes {
    let mut confirming = Vec::with_capacity(alerts.len());
    for o in alerts {
        if !o.early {
            confirming.push(None);
            continue;
        }
        let body = serde_json::to_vec(&o.alert).unwrap_or_default();
        let episode = o.alert.episode;
        let queued = broker
            .publish_unwaited(
                Priority::Urgent,
                o.target.clone(),
                body,
                false,
                CONFIRM_TIMEOUT,
            )
            .await;
        let confirmation = match queued {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    episode,
                    "alert not published before its commit, sent after it: {e}"
                );
                confirming.push(None);
                continue;
            }
        };
        let metrics = Arc::clone(metrics);
        let opened = (o.alert.what == AlertKind::Opened).then_some(o.alert.started_ms);
        confirming.push(Some(tokio::spawn(async move {
            match confirmation.confirmed().await {
                Ok(()) => {
                    if let Some(started_ms) = opened {
                        metrics.alarm_latency(Duration::from_millis(
                            now_ms().saturating_sub(started_ms),
                        ));
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(
                        episode,
                        "alert not confirmed before its commit, sent after it: {e}"
                    );
                    false
                }
            }
        })));
    }
    EarlyPublishes(confirming)
}

/// The early publishes of a plan's alerts ([`publish_early`]), one per alert, their PUBACKs
/// under way.
#[derive(Debug, Default)]
pub struct EarlyPublishes(Vec<Option<tokio::task::JoinHandle<bool>>>);

impl EarlyPublishes {
    /// Whether any alert was queued.
    pub fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    /// Whether the broker confirmed each alert, in the order of the alerts (`false` for
    /// those not early or not queued). Waits for the PUBACKs still under way (each bounded by
    /// its deadline); by the time the journal commit is done they have usually come.
    pub async fn confirmed(self) -> Vec<bool> {
        futures_util::future::join_all(self.0.into_iter().map(|c| async move {
            match c {
                Some(handle) => handle.await.unwrap_or(false),
                None => false,
            }
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_notification_is_skipped_until_forgotten() {
        let mut r = Recent::default();
        assert!(!r.sent(7));
        r.delivered(7, 1_000);
        r.delivered(8, 5_000);
        assert!(r.sent(7) && r.sent(8));
        r.forget_before(2_000);
        assert!(!r.sent(7), "forgotten after the window");
        assert!(r.sent(8));
    }
}
