//! The people dispatcher: alerts out to the workers of their areas, off the alarm path.
//!
//! One task follows the journal's outbox in its queue order from a mark of its own (woken by
//! the live alerts, swept every half second), and for each alert queues the deliveries
//! [`people::fan_out`] decides, with the mark, in one transaction
//! ([`Store::queue_deliveries`]). The alarm path (journal → MQTT alert) never waits for it: it
//! reads what the journal already committed. Due deliveries are sent concurrently, each under
//! a timeout: MQTT on the normal broker link (delivered on the broker's PUBACK), HTTP to the
//! worker's webhook or the SMS gateway (2xx; an IM robot also needs `errcode` 0). A failure is
//! counted and retried with the webhooks' backoff (1 s doubling to 5 min), across restarts,
//! until delivered or until a person acknowledges the ticket ([`webhook::retry_wanted`]: the
//! first attempt is always made); a stop is audited (`delivery.stopped`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::broker::{BrokerHandle, Priority};
use crate::clock::now_ms;
use crate::metrics::collect;
use crate::notify::alert::{Alert, SIGNATURE_HEADER};
use crate::notify::people::{self, PeopleSettings, PersonChannel, Place};
use crate::notify::webhook::address::{AddressPolicy, GuardedResolver, url_allowed};
use crate::notify::webhook::signature::{TIMESTAMP_HEADER, sign_request};
use crate::notify::webhook::{self, TIMEOUT, redact_url};
use crate::store::{Delivery, NotifyChannel, Store, WebhookFormat};

/// How often due deliveries and the outbox are swept when nothing wakes the dispatcher.
const SWEEP: Duration = Duration::from_millis(500);
/// How long the broker has to confirm a person's MQTT message.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);
/// Alerts fanned out per store transaction at most.
const FOLLOW_BATCH: u32 = 256;

/// What the dispatcher sends with: the settings, the HTTP client, the signing secret.
#[derive(Clone)]
pub struct People {
    settings: PeopleSettings,
    client: reqwest::Client,
    policy: AddressPolicy,
    secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for People {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("People")
            .field("public_url", &self.settings.public_url)
            .field("sms", &redact_url(&self.settings.sms_url))
            .field("policy", &self.policy)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl People {
    /// The dispatcher's sender: HTTP with the webhooks' rules (timeout, no redirect, no proxy,
    /// the address policy checked at connect time).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        settings: PeopleSettings,
        policy: AddressPolicy,
        secret: Option<Vec<u8>>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver::new(policy))
            .build()?;
        Ok(Self {
            settings,
            client,
            policy,
            secret,
        })
    }

    /// POSTs a delivery's body; `Ok` once the receiver took it. A DingTalk robot's URL is
    /// signed with `robot_secret` at this attempt's time ([`crate::notify::robot`]).
    pub async fn post(&self, d: &Delivery, robot_secret: Option<&str>) -> Result<(), String> {
        let mut url = reqwest::Url::parse(&d.target)
            .map_err(|_| format!("{} is not a valid URL", redact_url(&d.target)))?;
        if d.format == WebhookFormat::Dingtalk
            && let Some(secret) = robot_secret
        {
            url = crate::notify::robot::signed_url(&url, secret, crate::clock::now_ms());
        }
        url_allowed(&url, self.policy)
            .map_err(|r| format!("{} refused: {r}", redact_url(&d.target)))?;
        let body = d.body.clone().into_bytes();
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if d.format == WebhookFormat::Json {
            let ts = crate::clock::now_ms();
            req = req.header(TIMESTAMP_HEADER, ts.to_string());
            if let Some(secret) = &self.secret {
                req = req.header(SIGNATURE_HEADER, sign_request(secret, ts, &body));
            }
        }
        let answer = req
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{}: {}", redact_url(&d.target), e.without_url()))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("{} answered {status}", redact_url(&d.target)));
        }
        if d.format == WebhookFormat::Json {
            return Ok(());
        }
        // IM robots answer 200 with {"errcode":0,"errmsg":"ok"}, or an errcode.
        let text = answer
            .text()
            .await
            .map_err(|e| format!("{}: {}", redact_url(&d.target), e.without_url()))?;
        robot_answer(&text)
    }
}

/// Whether an IM robot's answer means delivered (`errcode` 0).
fn robot_answer(body: &str) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "robot answer is not JSON".to_owned())?;
    match v.get("errcode").and_then(serde_json::Value::as_i64) {
        Some(0) => Ok(()),
        Some(code) => Err(format!(
            "robot answered errcode {code}: {}",
            v.get("errmsg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        )),
        None => Err("robot answer has no errcode".to_owned()),
    }
}

/// The dispatcher's counters for `/metrics`.
///
/// | Metric | Type | Labels |
/// | --- | --- | --- |
/// | `firegrid_person_deliveries_total` | counter | `channel` = `mqtt`, `webhook`, `sms`; `result` = `ok`, `retry`, `stopped` |
/// | `firegrid_person_alerts_total` | counter | alerts fanned out to people |
/// | `firegrid_person_dispatch_errors_total` | counter | store reads or writes of the dispatcher that failed (retried) |
#[derive(Debug, Default)]
pub struct PeopleStats {
    deliveries: [[AtomicU64; 3]; 3],
    alerts: AtomicU64,
    errors: AtomicU64,
}

/// A delivery attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Ok,
    /// Failed; retried later.
    Retry,
    /// Not tried again: the ticket was acknowledged.
    Stopped,
}

impl PeopleStats {
    /// Counts an attempt's outcome.
    pub fn count(&self, channel: PersonChannel, outcome: Outcome) {
        self.deliveries[channel as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts so far with this outcome on this channel.
    pub fn get(&self, channel: PersonChannel, outcome: Outcome) -> u64 {
        self.deliveries[channel as usize][outcome as usize].load(Ordering::Relaxed)
    }
}

impl prometheus_client::collector::Collector for PeopleStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        let outcomes = [
            (Outcome::Ok, "ok"),
            (Outcome::Retry, "retry"),
            (Outcome::Stopped, "stopped"),
        ];
        collect::counters(
            &mut encoder,
            "person_deliveries_total",
            "Alert deliveries to workers' own channels, by channel and result.",
            PersonChannel::ALL.into_iter().flat_map(|channel| {
                outcomes.map(|(outcome, name)| {
                    (
                        [("channel", channel.as_str()), ("result", name)],
                        self.get(channel, outcome),
                    )
                })
            }),
        )?;
        collect::counter(
            &mut encoder,
            "person_alerts_total",
            "Alerts fanned out to the workers of their areas.",
            self.alerts.load(Ordering::Relaxed),
        )?;
        collect::counter(
            &mut encoder,
            "person_dispatch_errors_total",
            "Store reads or writes of the people dispatcher that failed (retried).",
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Runs the dispatcher until `cancel`: follows the outbox, fans alerts out, sends what is due.
pub async fn run(
    store: Store,
    broker: BrokerHandle,
    people: People,
    stats: Arc<PeopleStats>,
    mut live: broadcast::Receiver<Arc<Alert>>,
    cancel: CancellationToken,
) {
    let mut sweep = tokio::time::interval(SWEEP);
    let mut sending = tokio::task::JoinSet::new();
    let mut in_flight: HashSet<i64> = HashSet::new();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(done) = sending.join_next() => {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                }
                continue;
            }
            _ = live.recv() => {}
            _ = sweep.tick() => {}
        }
        let (s, p, st) = (store.clone(), people.settings.clone(), stats.clone());
        let due = tokio::task::spawn_blocking(move || {
            // Whole batches mean more is waiting (an alarm storm): follow on at once.
            loop {
                match follow(&s, &p, &st) {
                    Ok(n) if n == FOLLOW_BATCH as usize => continue,
                    Ok(_) => break,
                    Err(e) => {
                        st.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("alerts to people not queued, tried again shortly: {e}");
                        break;
                    }
                }
            }
            s.due_deliveries(now_ms(), 256)
        })
        .await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("person deliveries not read: {e}");
                continue;
            }
            Err(e) => {
                tracing::error!("people dispatcher task failed: {e}");
                continue;
            }
        };
        for d in due {
            if !in_flight.insert(d.id) {
                continue;
            }
            let (store, broker, people, stats) =
                (store.clone(), broker.clone(), people.clone(), stats.clone());
            sending.spawn(async move {
                let id = d.id;
                attempt(d, &store, &broker, &people, &stats).await;
                id
            });
        }
    }
    sending.shutdown().await;
}

/// Fans out the alerts queued after the mark (a batch at most): the deliveries and the new
/// mark, in one transaction. Returns how many alerts it read.
fn follow(store: &Store, settings: &PeopleSettings, stats: &PeopleStats) -> Result<usize, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let mark = store.people_mark().map_err(err)?.unwrap_or(0);
    let alerts = store
        .notifications_after(mark, NotifyChannel::Mqtt, FOLLOW_BATCH)
        .map_err(err)?;
    let Some(last) = alerts.last().map(|(seq, _)| *seq) else {
        return Ok(0);
    };
    let now = now_ms();
    let mut places: HashMap<String, Place> = HashMap::new();
    let mut deliveries = Vec::new();
    for (_, n) in &alerts {
        let Ok(mut alert) = serde_json::from_value::<Alert>(n.fields.payload.clone()) else {
            tracing::warn!(
                notification = n.id,
                "an outbox alert does not parse: not sent to people"
            );
            continue;
        };
        alert.alert_id = u64::try_from(n.id).unwrap_or(0);
        if !places.contains_key(&alert.device) {
            let place = match firegrid_protocols::DeviceId::new(&alert.device) {
                Ok(id) => store.place_of(&id).map_err(err)?,
                Err(_) => Place::default(),
            };
            places.insert(alert.device.clone(), place);
        }
        if alert.test {
            // A commissioning test: its installer alone (crate::commissioning).
            let place = places.get(&alert.device).cloned().unwrap_or_default();
            let installer = store.installer_of(&alert.device).map_err(err)?;
            deliveries.extend(crate::notify::installer::to_installer(
                n.id,
                &alert,
                &place,
                installer.as_ref().map(|(u, _)| u.as_str()),
                Some(alert.area.as_str()),
                now,
            ));
            continue;
        }
        let workers = store.workers_of(&alert.area).map_err(err)?;
        let place = places.get(&alert.device).cloned().unwrap_or_default();
        let tree = match store.area_path(&alert.area) {
            Ok(path) => Some(people::tree_topic(path.iter().rev().map(|a| a.id.as_str()))),
            // An area deleted since: no tree topic, the workers still get it.
            Err(crate::store::StoreError::Unknown { .. }) => None,
            Err(e) => return Err(err(e)),
        };
        // The ticket's assignee hears of it too, wherever their area.
        let assignee = match store.assignee_of(alert.episode).map_err(err)? {
            Some(a) => store
                .get::<crate::store::WorkerFields>(&a.id)
                .map_err(err)?,
            None => None,
        };
        deliveries.extend(people::fan_out_with_assignee(
            n.id,
            &alert,
            &place,
            &workers,
            assignee.as_ref(),
            tree.as_deref(),
            settings,
            now,
        ));
    }
    store
        .queue_deliveries(last, &deliveries, now)
        .map_err(err)?;
    stats
        .alerts
        .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    Ok(alerts.len())
}

/// One attempt at a delivery (unless its retries stopped), recorded in the store.
async fn attempt(
    d: Delivery,
    store: &Store,
    broker: &BrokerHandle,
    people: &People,
    stats: &PeopleStats,
) {
    let ticket = {
        let (s, e) = (store.clone(), d.episode_id);
        tokio::task::spawn_blocking(move || s.episode(e).ok().flatten().map(|e| e.ticket))
            .await
            .ok()
            .flatten()
    };
    let record = |outcome: Result<u64, (u64, String)>| {
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.delivery_attempted(d.id, outcome))
    };
    if !webhook::retry_wanted(d.attempts, ticket) {
        stats.count(d.channel, Outcome::Stopped);
        let (s, id, t) = (
            store.clone(),
            d.id,
            ticket.unwrap_or(crate::model::TicketState::Acknowledged),
        );
        tracing::info!(
            delivery = d.id,
            episode = d.episode_id,
            "person delivery not retried: ticket {t}"
        );
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || s.delivery_stopped(id, t, now_ms())).await
        {
            tracing::warn!(delivery = d.id, "delivery stop not recorded: {e}");
        }
        return;
    }
    let sent = match d.channel {
        PersonChannel::Mqtt => broker
            .publish_confirmed(
                Priority::Normal,
                d.target.clone(),
                d.body.clone().into_bytes(),
                false,
                CONFIRM_TIMEOUT,
            )
            .await
            .map_err(|e| e.to_string()),
        PersonChannel::Webhook | PersonChannel::Sms => {
            // A DingTalk robot's signing secret is read at each attempt (never copied into
            // the delivery): the worker's current one.
            let secret = if d.format == WebhookFormat::Dingtalk {
                let (s, w) = (store.clone(), d.worker_id);
                tokio::task::spawn_blocking(move || {
                    s.get::<crate::store::WorkerFields>(&w)
                        .ok()
                        .flatten()
                        .and_then(|w| w.fields.webhook_secret)
                })
                .await
                .ok()
                .flatten()
            } else {
                None
            };
            people.post(&d, secret.as_deref()).await
        }
    };
    let outcome = match sent {
        Ok(()) => {
            stats.count(d.channel, Outcome::Ok);
            Ok(now_ms())
        }
        Err(e) => {
            stats.count(d.channel, Outcome::Retry);
            tracing::warn!(
                delivery = d.id,
                episode = d.episode_id,
                worker = d.worker_id,
                channel = d.channel.as_str(),
                attempts = d.attempts,
                "person delivery failed, will retry: {e}"
            );
            let next = now_ms().saturating_add(webhook::retry_delay_ms(d.attempts));
            Err((next, e))
        }
    };
    if let Ok(Err(e)) = record(outcome).await {
        tracing::warn!(
            delivery = d.id,
            "delivery outcome not recorded (sent again later): {e}"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn robot_answers() {
        assert!(super::robot_answer(r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let e = super::robot_answer(r#"{"errcode":310000,"errmsg":"keywords not in content"}"#)
            .unwrap_err();
        assert!(e.contains("310000") && e.contains("keywords"), "{e}");
        assert!(super::robot_answer("<html>").is_err());
        assert!(super::robot_answer("{}").is_err());
    }
}
