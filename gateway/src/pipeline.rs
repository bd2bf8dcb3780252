//! The pipeline: device messages in, episodes journaled, acks and alerts out.
//!
//! One task owns the [`Engine`]. For each batch of messages taken from the broker it:
//! 1. classifies them ([`ingest::classify`]), refusing unknown or decommissioned devices (into
//!    the pending list) and resent events (already journaled: acknowledged again, nothing raised);
//! 2. feeds the engine and queues readings for the readings writer (never waited for);
//! 3. writes events, episodes and the alerts to send in **one** journal transaction (group
//!    commit, durable);
//! 4. only then acknowledges the events end to end (`firegrid/v1/dev/{id}/ack`), hands the
//!    alerts to the notifier, and releases the broker's PUBACKs — so nothing acknowledged can be
//!    lost, and anything not journaled comes again from its sender.
//!
//! Telemetry never waits behind the journal's fsync and alerts never wait behind telemetry:
//! readings go to their own writer, alerts to their own broker link.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::DeviceId;
use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::message::{Ack, Command, MAX_ACK_SEQS, Message, Seq, Status};
use firegrid_protocols::topic::{DeviceTopic, Topic};

use crate::broker::{BrokerHandle, Incoming, Priority, Qos, Uplink};
use crate::control::Control;
use crate::engine::{Engine, Input, Output};
use crate::ingest::{self, Refusal, Refusals};
use crate::metrics::{AlertChannel, AlertResult, IngestKind, Metrics};
use crate::model::{DeviceState, TicketState, UnixMs};
use crate::notify::alert::{Alert, AlertKind};
use crate::notify::webhook::{self, AfterFailure, Webhooks};
use crate::store::{
    Device, JournalOp, JournalResult, JournalWriter, NewEvent, NewNotification, NotificationKind,
    NotifyChannel, ReadingsWriter, Sample, Store, StoreError, WireEncoding,
};

/// How long the notifier waits for the broker to confirm an alert before retrying it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// The most broker messages handled in one batch (one journal transaction).
const MAX_BATCH: usize = 512;

/// The wall clock, ms since the Unix epoch.
pub fn now_ms() -> UnixMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the pipeline needs of the device registry, cached.
#[derive(Debug, Clone)]
struct Known {
    state: DeviceState,
    encoding: Encoding,
    /// Its readings' tags in the time-series database.
    tags: crate::tsdb::Tags,
}

/// An alert that was journaled and must now go out on one channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
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

/// The pipeline task's parts.
pub struct Pipeline {
    /// The engine, owned here only.
    pub engine: Engine,
    /// The store (reads).
    pub store: Store,
    /// The journal writer (durable group commits).
    pub journal: JournalWriter,
    /// The readings writer (batched, never waited for).
    pub readings: ReadingsWriter,
    /// Publishing to devices and grid workers.
    pub broker: BrokerHandle,
    /// Journaled alerts to deliver.
    pub notify: mpsc::Sender<Outgoing>,
    /// Live alerts for server-sent events.
    pub live: broadcast::Sender<Arc<Alert>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Refusals by reason.
    pub refusals: Refusals,
    /// Webhook URLs every alert is also POSTed to, and the queue of their own notifier (so
    /// that a slow webhook never delays an MQTT alert).
    pub webhooks: Vec<String>,
    /// The webhook notifier's queue.
    pub notify_webhooks: Option<mpsc::Sender<Outgoing>>,
    /// The time-series database's spool, when the TSDB writer is on (never waited for).
    pub tsdb: Option<crate::tsdb::Feed>,
    /// Devices polled over Modbus: their configuration goes to their poller, not to MQTT.
    pub modbus: crate::modbus::Router,
    known: HashMap<DeviceId, Known>,
    next_command: u32,
}

/// Results of one batch, to act on after the journal commit.
#[derive(Default)]
struct After {
    acks: HashMap<DeviceId, Vec<Seq>>,
    tokens: Vec<crate::broker::AckToken>,
    samples: Vec<Sample>,
}

impl Pipeline {
    /// A pipeline over an engine already loaded with the registry and the open episodes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        store: Store,
        journal: JournalWriter,
        readings: ReadingsWriter,
        broker: BrokerHandle,
        notify: mpsc::Sender<Outgoing>,
        live: broadcast::Sender<Arc<Alert>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let known = store
            .all_devices()?
            .iter()
            .map(|d| (d.id.clone(), known_of(d)))
            .collect();
        metrics.set_devices_known(engine.device_count() as u64);
        Ok(Self {
            engine,
            store,
            journal,
            readings,
            broker,
            notify,
            live,
            metrics,
            refusals: Refusals::default(),
            webhooks: Vec::new(),
            notify_webhooks: None,
            tsdb: None,
            modbus: crate::modbus::Router::default(),
            known,
            // Command ids only need to differ per device across restarts: seconds since the epoch
            // advance faster than any device receives commands.
            next_command: u32::try_from(now_ms() / 1000).unwrap_or(1),
        })
    }

    /// Runs until `cancel`: messages, API changes and engine deadlines.
    ///
    /// # Cancel safety
    /// Every branch of the `select!` is cancel-safe (`recv` and `sleep`); a batch is handled to
    /// its end (journal commit, acks) before the loop looks at `cancel` again.
    pub async fn run(
        mut self,
        mut incoming: Uplink,
        mut control: mpsc::Receiver<Control>,
        cancel: CancellationToken,
    ) {
        loop {
            let deadline = self.engine.next_deadline();
            let wait = deadline.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            });
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(c) = control.recv() => {
                    self.control(c).await;
                    self.metrics.set_devices_known(self.engine.device_count() as u64);
                }
                Some(first) = incoming.recv() => {
                    // A batch of events and statuses takes no telemetry along: its journal
                    // commit (and its alerts) would wait for that telemetry's processing.
                    let alarms_only = !first.topic.ends_with("/telemetry");
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        let next = if alarms_only {
                            incoming.try_recv_alarm()
                        } else {
                            incoming.try_recv().ok()
                        };
                        match next {
                            Some(m) => batch.push(m),
                            None => break,
                        }
                    }
                    self.batch(batch).await;
                }
                () = tokio::time::sleep(wait) => {
                    let now = now_ms();
                    let out = self.engine.handle(Input::Tick, now);
                    self.commit(Vec::new(), out, now, After::default()).await;
                }
                else => break,
            }
        }
        if let Err(e) = self.readings.flush().await {
            tracing::warn!("readings not flushed at shutdown: {e}");
        }
    }

    async fn batch(&mut self, batch: Vec<Incoming>) {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut outputs = Vec::new();
        let mut after = After::default();
        for m in batch {
            match m.topic.rsplit('/').next() {
                Some("telemetry") => self.metrics.ingested(IngestKind::Telemetry),
                Some("event") => self.metrics.ingested(IngestKind::Event),
                Some("status") => self.metrics.ingested(IngestKind::Status),
                _ => {}
            }
            match self.take(&m, now, &mut ops, &mut outputs, &mut after) {
                Ok(()) => {}
                Err((device, refusal)) => {
                    self.refusals.count(&m.topic, &refusal);
                    self.metrics.refused(refusal.reason());
                    if let (Some(device), Refusal::UnknownDevice) = (device, &refusal)
                        && let Err(e) = self.readings.try_record_pending(device, &m.topic, now)
                    {
                        tracing::debug!("pending device not recorded: {e}");
                    }
                }
            }
            // A refused message is taken too: redelivering it would refuse it again.
            after.tokens.push(m.ack);
        }
        self.commit(ops, outputs, now, after).await;
    }

    /// Takes one message into the batch.
    fn take(
        &mut self,
        m: &Incoming,
        now: UnixMs,
        ops: &mut Vec<JournalOp>,
        outputs: &mut Vec<Output>,
        after: &mut After,
    ) -> Result<(), (Option<DeviceId>, Refusal)> {
        let (device, msg) = ingest::classify(&m.topic, &m.payload)?;
        match self.known.get(&device).map(|k| k.state) {
            Some(DeviceState::Commissioned | DeviceState::InService) => {}
            Some(DeviceState::Decommissioned) => {
                return Err((Some(device), Refusal::Decommissioned));
            }
            // Unknown, or registered but not yet installed: listed as pending.
            None | Some(DeviceState::Registered) => {
                return Err((Some(device), Refusal::UnknownDevice));
            }
        }
        match msg {
            Message::Telemetry(t) => {
                after
                    .samples
                    .push(Sample::from_telemetry(device.clone(), &t, now));
                outputs.extend(self.engine.handle(
                    Input::Telemetry {
                        device,
                        readings: t.readings.iter().copied().collect(),
                    },
                    now,
                ));
            }
            Message::Event(e) => {
                let duplicate = ops.iter().any(|op| {
                    matches!(op, JournalOp::Event(n) if n.device == device && n.event.seq == e.seq)
                }) || tokio::task::block_in_place(|| self.store.event_exists(&device, e.seq))
                    .unwrap_or(false);
                after.acks.entry(device.clone()).or_default().push(e.seq);
                if duplicate {
                    return Err((Some(device), Refusal::Duplicate));
                }
                outputs.extend(self.engine.handle(
                    Input::Event {
                        device: device.clone(),
                        kind: e.kind.clone(),
                    },
                    now,
                ));
                ops.push(JournalOp::Event(NewEvent {
                    device,
                    event: e,
                    received_ms: now,
                }));
            }
            Message::Status(Status::Online(_)) => {
                outputs.extend(self.engine.handle(Input::Online(device), now));
            }
            Message::Status(Status::Offline) => {
                outputs.extend(self.engine.handle(Input::Offline(device), now));
            }
            // classify only passes uplink messages.
            Message::Config(_) | Message::Command(_) | Message::Ack(_) => {}
        }
        Ok(())
    }

    /// Journals events, engine outputs and their alerts in one transaction, then acts.
    async fn commit(
        &mut self,
        mut ops: Vec<JournalOp>,
        outputs: Vec<Output>,
        now: UnixMs,
        after: After,
    ) {
        let After {
            acks,
            tokens,
            samples,
        } = after;
        if let Some(feed) = &self.tsdb {
            feed.offer(&samples, |d| {
                self.known
                    .get(d)
                    .map(|k| k.tags.clone())
                    .unwrap_or_default()
            });
        }
        let rows: usize = samples.iter().map(|s| s.readings.len()).sum();
        if !samples.is_empty() && self.readings.try_submit(samples).is_err() {
            self.metrics.readings_dropped(rows as u64);
        }
        let mut outgoing = Vec::new();
        let mut notify_ops = Vec::new();
        // Episodes opened in this batch are not in the store yet: their later alerts (ended,
        // escalated) are built from the opening one.
        let mut opened_here: HashMap<u64, Alert> = HashMap::new();
        for o in &outputs {
            if let Some((alert, topic)) = self.alert_for(o, now, &opened_here) {
                if alert.what == AlertKind::Opened {
                    opened_here.insert(alert.episode, alert.clone());
                }
                let targets = std::iter::once((NotifyChannel::Mqtt, topic)).chain(
                    self.webhooks
                        .iter()
                        .map(|url| (NotifyChannel::Webhook, url.clone())),
                );
                for (channel, target) in targets {
                    notify_ops.push(JournalOp::Notify(NewNotification {
                        episode_id: alert.episode,
                        kind: match alert.what {
                            AlertKind::Opened => NotificationKind::Opened,
                            AlertKind::Escalated => NotificationKind::Escalated,
                            AlertKind::Ended => NotificationKind::Ended,
                        },
                        level: alert.level,
                        channel,
                        target: target.clone(),
                        payload: serde_json::to_value(&alert).unwrap_or_default(),
                        next_attempt_ms: now,
                    }));
                    outgoing.push(Outgoing {
                        id: 0,
                        channel,
                        target,
                        alert: alert.clone(),
                        attempts: 0,
                    });
                }
            }
            if let Output::Opened { key, .. } = o {
                self.metrics.episode_opened(key.category);
            }
        }
        // Episodes first: a notification refers to its episode.
        ops.extend(JournalOp::from_outputs(outputs, now));
        ops.extend(notify_ops);
        if !ops.is_empty() {
            let started = std::time::Instant::now();
            match self.journal.submit(ops).await {
                Ok(results) => {
                    self.metrics.journal_commit(started.elapsed());
                    let ids = results.iter().filter_map(|r| match r {
                        JournalResult::Enqueued(id) => Some(*id),
                        _ => None,
                    });
                    for (mut o, id) in outgoing.into_iter().zip(ids) {
                        o.id = id;
                        o.alert.alert_id = u64::try_from(id).unwrap_or(0);
                        if o.channel == NotifyChannel::Mqtt {
                            let _ = self.live.send(Arc::new(o.alert.clone()));
                        }
                        let queue = match o.channel {
                            NotifyChannel::Webhook => self.notify_webhooks.as_ref(),
                            NotifyChannel::Mqtt | NotifyChannel::Sse => Some(&self.notify),
                        };
                        if queue.is_none_or(|q| q.try_send(o).is_err()) {
                            // The outbox keeps it; the notifier's sweep sends it.
                            tracing::warn!("notifier queue full; alert left to the outbox sweep");
                        }
                    }
                }
                Err(e) => {
                    // Nothing is acknowledged: devices and the broker send it all again.
                    tracing::error!("journal write failed, nothing acknowledged: {e}");
                    return;
                }
            }
        }
        for (device, seqs) in acks {
            // A polled (Modbus) device has no MQTT session to ack to.
            if !self.modbus.polls(&device) {
                self.ack_device(&device, seqs, now).await;
            }
        }
        for t in tokens {
            let _ = t.ack();
        }
    }

    /// The alert an engine output calls for, with its topic.
    fn alert_for(
        &self,
        o: &Output,
        now: UnixMs,
        opened_here: &HashMap<u64, Alert>,
    ) -> Option<(Alert, String)> {
        let (id, what, level) = match o {
            Output::Opened { id, .. } => (*id, AlertKind::Opened, 0),
            Output::Escalated { id, level } => (*id, AlertKind::Escalated, *level),
            Output::Ended { id } => (*id, AlertKind::Ended, 0),
            Output::Peak { .. } => return None,
        };
        let alert = match o {
            Output::Opened {
                key,
                grid,
                source,
                level: value,
                detail,
                ..
            } => Alert {
                alert_id: 0,
                episode: id,
                what,
                category: key.category,
                device: key.device.to_string(),
                channel: key.channel,
                area: grid.clone(),
                level: 0,
                source: *source,
                started_ms: now,
                quantity: value.map(|l| l.quantity),
                value: value.map(|l| l.value),
                threshold: value.map(|l| l.threshold),
                detail: detail.map(str::to_owned),
                sent_ms: now,
            },
            _ if opened_here.contains_key(&id) => {
                let first = opened_here.get(&id)?;
                let area = if level == 0 {
                    first.area.clone()
                } else {
                    self.area_at(&first.area, level)
                };
                Alert {
                    what,
                    level,
                    area,
                    sent_ms: now,
                    ..first.clone()
                }
            }
            _ => {
                let e = tokio::task::block_in_place(|| self.store.episode(id)).ok()??;
                let area = if level == 0 {
                    e.grid.clone()
                } else {
                    self.area_at(&e.grid, level)
                };
                Alert {
                    alert_id: 0,
                    episode: id,
                    what,
                    category: e.key.category,
                    device: e.key.device.to_string(),
                    channel: e.key.channel,
                    area,
                    level,
                    source: e.source,
                    started_ms: e.started_ms,
                    quantity: e.peak.map(|l| l.quantity),
                    value: e.peak.map(|l| l.value),
                    threshold: e.peak.map(|l| l.threshold),
                    detail: e.detail.clone(),
                    sent_ms: now,
                }
            }
        };
        let topic = alert.topic();
        Some((alert, topic))
    }

    /// The area `level` steps above `grid` (the top of the hierarchy when it has fewer levels).
    fn area_at(&self, grid: &firegrid_protocols::GridId, level: u8) -> firegrid_protocols::GridId {
        tokio::task::block_in_place(|| self.store.area_path(grid))
            .ok()
            .and_then(|path| {
                path.get(usize::from(level))
                    .or(path.last())
                    .map(|a| a.id.clone())
            })
            .unwrap_or_else(|| grid.clone())
    }

    /// Publishes the end-to-end ack of journaled events.
    async fn ack_device(&self, device: &DeviceId, seqs: Vec<Seq>, now: UnixMs) {
        let encoding = self
            .known
            .get(device)
            .map_or(Encoding::Json, |k| k.encoding);
        for chunk in seqs.chunks(MAX_ACK_SEQS) {
            let ack = Message::Ack(Ack {
                seqs: chunk.iter().copied().collect(),
                time_ms: now,
            });
            self.publish_to(device, DeviceTopic::Ack, &ack, encoding, false)
                .await;
        }
    }

    async fn publish_to(
        &self,
        device: &DeviceId,
        kind: DeviceTopic,
        msg: &Message,
        encoding: Encoding,
        retain: bool,
    ) {
        let mut buf = vec![0u8; codec::MAX_PAYLOAD];
        let Ok(n) = codec::encode(msg, encoding, &mut buf) else {
            tracing::error!(%device, ?kind, "message too large to encode");
            return;
        };
        buf.truncate(n);
        let topic = Topic::device(device, kind).to_string();
        if let Err(e) = self
            .broker
            .publish(Priority::Normal, topic, buf, Qos::AtLeastOnce, retain)
            .await
        {
            // An ack lost here is resent: the device sends the event again and it is acked as
            // a duplicate.
            tracing::warn!(%device, ?kind, "publish to device failed: {e}");
        }
    }

    async fn control(&mut self, c: Control) {
        let now = now_ms();
        let outputs = match c {
            Control::Acknowledged(id) => self.engine.handle(Input::Acknowledged(id), now),
            Control::DeviceRemoved(id) => {
                // Decommissioned devices stay known, so their messages are refused as such;
                // deleted ones are forgotten.
                match tokio::task::block_in_place(|| self.store.device(&id)) {
                    Ok(Some(d)) => {
                        self.known.insert(id.clone(), known_of(&d));
                    }
                    _ => {
                        self.known.remove(&id);
                    }
                }
                self.engine.handle(Input::Remove(id), now)
            }
            Control::DeviceChanged(id) => {
                let Ok(Some(d)) = tokio::task::block_in_place(|| self.store.device(&id)) else {
                    return;
                };
                self.known.insert(id.clone(), known_of(&d));
                let mut out = Vec::new();
                match d.fields.state {
                    DeviceState::Commissioned | DeviceState::InService => {
                        if let Some(spec) = d.spec() {
                            out = self.engine.handle(Input::Upsert(spec), now);
                        }
                        if self.modbus.polls(&id) {
                            // A legacy monitor: its poller writes the set-points.
                            if !self.modbus.configure(&id, d.fields.config.clone()) {
                                tracing::warn!(device = %id, "Modbus poller busy: config not queued");
                            }
                        } else {
                            let encoding = known_of(&d).encoding;
                            let config = Message::Config(d.fields.config.clone());
                            self.publish_to(&id, DeviceTopic::Config, &config, encoding, true)
                                .await;
                        }
                    }
                    DeviceState::Decommissioned => out = self.engine.handle(Input::Remove(id), now),
                    DeviceState::Registered => {}
                }
                out
            }
            Control::Command(id, action) => {
                self.next_command = self.next_command.wrapping_add(1);
                let cmd = Message::Command(Command {
                    id: self.next_command,
                    time_ms: now,
                    action,
                });
                let encoding = self.known.get(&id).map_or(Encoding::Json, |k| k.encoding);
                self.publish_to(&id, DeviceTopic::Cmd, &cmd, encoding, false)
                    .await;
                Vec::new()
            }
        };
        self.commit(Vec::new(), outputs, now, After::default())
            .await;
    }
}

fn known_of(d: &Device) -> Known {
    Known {
        state: d.fields.state,
        encoding: match d.fields.encoding {
            WireEncoding::Json => Encoding::Json,
            WireEncoding::Binary => Encoding::Binary,
        },
        tags: crate::tsdb::Tags {
            site: d.fields.site_id,
            circuit: d.fields.circuit_id,
            grid: d.fields.grid_id.as_ref().map(ToString::to_string),
        },
    }
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
pub async fn notifier(
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
    loop {
        let batch: Vec<Outgoing> = tokio::select! {
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
                let due = tokio::task::block_in_place(|| store.due_notifications(now_ms(), 256));
                let webhooks_only = kind == NotifyChannel::Webhook;
                due.unwrap_or_default()
                    .into_iter()
                    .filter(|n| (n.fields.channel == NotifyChannel::Webhook) == webhooks_only)
                    .filter_map(|n| {
                        let mut alert: Alert = serde_json::from_value(n.fields.payload).ok()?;
                        alert.alert_id = u64::try_from(n.id).unwrap_or(0);
                        Some(Outgoing {
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
        // Webhook retries stop once a person has acknowledged the episode's ticket.
        let tickets = webhook_tickets(&store, &batch);
        let sent =
            futures_util::future::join_all(batch.iter().zip(&tickets).map(|(o, ticket)| async {
                webhook::retry_wanted(o.attempts, *ticket)
                    .then_some(deliver(o, &broker, &webhooks).await)
            }))
            .await;
        let ops: Vec<JournalOp> = batch
            .iter()
            .zip(sent)
            .zip(tickets)
            .map(|((o, sent), ticket)| match sent {
                None => stop_webhook(o, ticket, &metrics),
                Some((channel, result)) => match result {
                Ok(()) => {
                    metrics.alert(channel, AlertResult::Ok);
                    if o.alert.what == AlertKind::Opened && o.channel == NotifyChannel::Mqtt {
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
                Err(e) => match webhook::after_failure(o.attempts, ticket, now_ms()) {
                    AfterFailure::Stop(_) => stop_webhook(o, ticket, &metrics),
                    AfterFailure::RetryAt(next_attempt_ms) => {
                        tracing::warn!(episode = o.alert.episode, target = %shown_target(o), attempts = o.attempts, "alert not delivered, will retry: {e}");
                        metrics.alert(channel, AlertResult::Retry);
                        JournalOp::Failed {
                            id: o.id,
                            next_attempt_ms,
                        }
                    }
                },
                },
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

/// The tickets of the webhook alerts' episodes (`None` for other channels, or unreadable).
fn webhook_tickets(store: &Store, batch: &[Outgoing]) -> Vec<Option<TicketState>> {
    tokio::task::block_in_place(|| {
        batch
            .iter()
            .map(|o| {
                (o.channel == NotifyChannel::Webhook)
                    .then(|| store.episode(o.alert.episode).ok().flatten())
                    .flatten()
                    .map(|e| e.ticket)
            })
            .collect()
    })
}

/// A webhook alert not tried again (its ticket is acknowledged): logged, counted, journaled.
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

/// Where an alert goes, as logs may show it (a webhook URL redacted).
fn shown_target(o: &Outgoing) -> String {
    match o.channel {
        NotifyChannel::Webhook => webhook::redact_url(&o.target),
        NotifyChannel::Mqtt | NotifyChannel::Sse => o.target.clone(),
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
        NotifyChannel::Mqtt | NotifyChannel::Sse => (
            AlertChannel::Mqtt,
            broker
                .publish_confirmed(
                    Priority::Urgent,
                    o.target.clone(),
                    body,
                    false,
                    CONFIRM_TIMEOUT,
                )
                .await
                .map_err(|e| e.to_string()),
        ),
    }
}
