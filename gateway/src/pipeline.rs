//! The pipeline: device messages in, episodes journaled, acks and alerts out.
//!
//! An async shell around a pure core ([`Planner`], in `plan.rs`). For each batch of messages
//! taken from the broker the shell:
//! 1. classifies them ([`ingest::classify`], pure) and reads, in **one** read, which of the
//!    batch's events the journal already holds ([`Lookups`]);
//! 2. asks the planner for a [`Plan`] at `now`: refusals (unknown devices go to the pending list;
//!    registered-only and decommissioned ones are refused by name; resent events are acknowledged again, nothing raised), readings,
//!    the journal ops (events, episodes, the alerts to send) and the acks;
//! 3. offers the readings to the readings writer and the time-series database (never waited
//!    for), publishes the `opened` alerts of episodes that devices' events opened (the alarm
//!    path: [`Outgoing::early`]) on the urgent link **without waiting for any commit** (nor for
//!    the broker's PUBACK: that is awaited once the commit is done), and writes the journal ops
//!    in **one** journal transaction (group commit, durable);
//! 4. only once the commit has succeeded acknowledges the events end to end
//!    (`firegrid/v1/dev/{id}/ack`), hands the alerts to the notifiers ([`crate::notify`]: the
//!    early ones only to be marked delivered), and releases the broker's PUBACKs — so nothing
//!    acknowledged can be lost, and anything not journaled comes again from its sender.
//!
//! Commits are pipelined: while a commit is in flight, the next batches (and ticks, and API
//! changes) are planned, their readings go out and their alarms are published; their journal
//! ops are queued and committed together, in one transaction, only once the one in flight has
//! succeeded (so the journal never holds a plan made over one it refused; if it failed they are
//! dropped unacknowledged), and a plan with nothing to journal is done at once. A slow disk
//! delays acknowledgements, never the next alarm (nor the one after it).
//!
//! An early alert names what the journal will hold: its episode's id is derived from the
//! event that opened it, and its alert id from that event too, so the device's resend after a
//! crash (or a failed commit) opens the same episode and sends the same alert again, never a
//! second id (decision record 20).
//!
//! If the journal write fails (disk full, I/O), nothing is acknowledged, and a plan that
//! changed episodes is undone by building the planner again from the journal: the resent
//! event opens its episode again, under one alert id, acknowledged once.
//!
//! Telemetry never waits behind the journal's fsync and alerts never wait behind telemetry:
//! readings go to their own writer, alerts to their own broker link. No store call blocks a
//! runtime thread: reads go through `spawn_blocking`, writes through the writer threads.
//!
//! The gateway runs the pipeline on the alarm path's thread ([`crate::alarm_path`]), with the
//! alarms and urgent links, in the real-time scheduling class when allowed; telemetry reaches
//! it at most once per millisecond under load (`TELEMETRY_PACE`).

mod load;
mod plan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::DeviceId;
use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::message::{Ack, Command, MAX_ACK_SEQS, Message, Seq};
use firegrid_protocols::topic::{DeviceTopic, Topic};

use crate::broker::{AckToken, BrokerHandle, Incoming, Priority, Qos, Uplink};
use crate::clock::now_ms;
use crate::control::Control;
use crate::engine::{Engine, Input};
use crate::ingest::{self, Refusal, Refusals};
use crate::metrics::{IngestKind, Metrics};
use crate::model::{DeviceState, UnixMs};
use crate::notify::alert::Alert;
use crate::notify::{EarlyPublishes, Outgoing, publish_early};
use crate::store::{
    Committing, JournalOp, JournalResult, JournalWriter, NotifyChannel, PendingSighting,
    ReadingsWriter, Store, StoreError,
};

pub use load::load_engine;
use load::{planner_over, read_areas, watch_areas};
pub use plan::{Classified, Known, Lookups, Plan, Planner, Refused, derived_episode_id};

/// The most broker messages handled in one batch (one journal transaction).
const MAX_BATCH: usize = 512;

/// After a telemetry batch smaller than [`MAX_BATCH`], the pipeline takes telemetry again only
/// this much later (events and statuses at once meanwhile): under load, telemetry then comes
/// in batches of a millisecond's worth, one wake-up of the alarm path's thread each, instead
/// of one per message ([`crate::alarm_path`]). Measured at 10k devices with the pipeline in the
/// real-time class: 26–42 % of a core at 30–40k msg/s without it, 13–24 % with it.
const TELEMETRY_PACE: Duration = Duration::from_millis(1);

/// The most staged plans queued behind the commit in flight; one more waits for it. Bounded in
/// practice by the broker's in-flight windows (events are taken only as fast as they are
/// acknowledged); this bounds ticks and API changes during a stalled disk.
const MAX_QUEUED: usize = 64;

/// A staged plan: its journal ops, the events among them, and what follows their commit.
struct Staged {
    ops: Vec<JournalOp>,
    /// The (device, sequence number) of the events it journals.
    events: Vec<(DeviceId, Seq)>,
    after: AfterCommit,
}

/// Journal commits in order: one in flight, and the plans staged behind it, queued (they were
/// planned over it), which go to the journal together, in one transaction, once it has
/// succeeded — or are dropped if it failed.
#[derive(Default)]
struct Commits {
    in_flight: Option<InFlight>,
    queued: Vec<Staged>,
}

impl Commits {
    /// The events of every plan not yet durable: for the next batch's dedupe they count as
    /// journaled (if their commit fails, that batch is dropped too).
    fn events(&self) -> impl Iterator<Item = &(DeviceId, Seq)> {
        let flying = self.in_flight.iter().flat_map(|f| &f.events);
        flying.chain(self.queued.iter().flat_map(|s| &s.events))
    }
}

/// Plans whose journal commit is under way (one transaction).
struct InFlight {
    committing: Committing,
    events: Vec<(DeviceId, Seq)>,
    /// Each plan's follow-up and how many of the transaction's ops (in order) are its own.
    after: Vec<(AfterCommit, usize)>,
}

/// What a plan does once its journal ops are durable.
struct AfterCommit {
    alerts: Vec<Outgoing>,
    /// The alerts that went out before the commit, their PUBACKs under way.
    published: EarlyPublishes,
    acks: BTreeMap<DeviceId, Vec<Seq>>,
    tokens: Vec<AckToken>,
    opened: Vec<crate::model::Category>,
    changes_episodes: bool,
    now: UnixMs,
    started: std::time::Instant,
}

/// The pipeline task's parts.
pub struct Pipeline {
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
    /// The webhook notifier's queue (its own, so that a slow webhook never delays an MQTT
    /// alert).
    pub notify_webhooks: Option<mpsc::Sender<Outgoing>>,
    /// The time-series database's spool, when the TSDB writer is on (never waited for).
    pub tsdb: Option<crate::tsdb::Feed>,
    /// Devices polled over Modbus: their configuration goes to their poller, not to MQTT.
    pub modbus: crate::modbus::Router,
    /// Why the last journal commit failed, `None` once one succeeds (`/healthz` follows it).
    pub journal_error: watch::Sender<Option<String>>,
    planner: Planner,
    next_command: u32,
    commits: Commits,
}

impl Pipeline {
    /// A pipeline over an engine already loaded with the registry and the open episodes.
    /// Reads the registry's devices, the open episodes' rows and the area tree (blocking: call
    /// it at start-up).
    ///
    /// # Errors
    /// A database error.
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
        let planner = planner_over(engine, &store)?;
        metrics.set_devices_known(planner.engine().device_count() as u64);
        Ok(Self {
            store,
            journal,
            readings,
            broker,
            notify,
            live,
            metrics,
            refusals: Refusals::default(),
            notify_webhooks: None,
            tsdb: None,
            modbus: crate::modbus::Router::default(),
            journal_error: watch::channel(None).0,
            planner,
            commits: Commits::default(),
            // Command ids only need to differ per device across restarts: seconds since the epoch
            // advance faster than any device receives commands.
            next_command: u32::try_from(now_ms() / 1000).unwrap_or(1),
        })
    }

    /// Every alert is also POSTed to these webhooks (through `notify_webhooks`).
    pub fn set_webhooks(&mut self, urls: Vec<String>) {
        self.planner.set_webhooks(urls);
    }

    /// Runs until `cancel`: messages, API changes and engine deadlines.
    ///
    /// # Cancel safety
    /// Every branch of the `select!` is cancel-safe (`recv`, `changed`, `sleep` and the
    /// commit's answer); at `cancel` the commits under way are waited for and followed up
    /// (acks) before it returns.
    pub async fn run(
        mut self,
        mut incoming: Uplink,
        mut control: mpsc::Receiver<Control>,
        cancel: CancellationToken,
    ) {
        let mut areas = watch_areas(self.store.clone(), cancel.clone());
        let mut telemetry_from = tokio::time::Instant::now();
        loop {
            let deadline = self.planner.next_deadline();
            let wait = deadline.map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            });
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                result = async { (&mut self.commits.in_flight.as_mut()?.committing).await.into() }, if self.commits.in_flight.is_some() => {
                    if let (Some(f), Some(result)) = (self.commits.in_flight.take(), result) {
                        self.landed(f, result).await;
                    }
                }
                Some(c) = control.recv() => {
                    for plan in self.control(c).await {
                        self.pipelined(plan, Vec::new(), now_ms()).await;
                    }
                    self.metrics.set_devices_known(self.planner.engine().device_count() as u64);
                }
                Some(first) = incoming.recv_paced(telemetry_from) => {
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
                    let paced = !alarms_only && batch.len() < MAX_BATCH;
                    self.batch(batch).await;
                    if paced {
                        telemetry_from = tokio::time::Instant::now() + TELEMETRY_PACE;
                    }
                }
                Ok(()) = areas.changed() => {
                    let tree = areas.borrow_and_update().clone();
                    self.planner.set_areas(tree);
                }
                () = tokio::time::sleep(wait) => {
                    let now = now_ms();
                    let plan = self.planner.tick(now);
                    self.pipelined(plan, Vec::new(), now).await;
                }
                else => break,
            }
        }
        self.settle().await;
        if let Err(e) = self.readings.flush().await {
            tracing::warn!("readings not flushed at shutdown: {e}");
        }
    }

    /// Plans a batch and does it [`pipelined`](Self::pipelined).
    async fn batch(&mut self, batch: Vec<Incoming>) {
        let now = now_ms();
        let mut topics = Vec::with_capacity(batch.len());
        let mut tokens = Vec::with_capacity(batch.len());
        let mut classified = Vec::with_capacity(batch.len());
        for m in batch {
            match m.topic.rsplit('/').next() {
                Some("telemetry") => self.metrics.ingested(IngestKind::Telemetry),
                Some("event") => self.metrics.ingested(IngestKind::Event),
                Some("status") => self.metrics.ingested(IngestKind::Status),
                _ => {}
            }
            classified.push(ingest::classify(&m.topic, &m.payload));
            topics.push(m.topic);
            // A refused message is taken too: redelivering it would refuse it again.
            tokens.push(m.ack);
        }
        let mut lookups = self.lookups(&classified).await;
        // The events of the commits under way count as journaled: if one fails, this batch is
        // dropped anyway (see `pipelined`), so a resend of one of them is a duplicate here.
        lookups.journaled.extend(self.commits.events().cloned());
        let plan = self.planner.plan(classified, &lookups, now);
        // Unregistered devices' sightings, one per device per batch: a flood of messages from
        // invented ids costs one queued request per batch, never one per message.
        let mut pending: BTreeMap<&DeviceId, PendingSighting> = BTreeMap::new();
        for Refused {
            index,
            device,
            refusal,
        } in &plan.refusals
        {
            let topic = topics.get(*index).map_or("", String::as_str);
            self.refusals.count(topic, refusal);
            self.metrics.refused(refusal.reason());
            if let (Some(device), Refusal::UnknownDevice) = (device, refusal) {
                let s = pending.entry(device).or_insert_with(|| PendingSighting {
                    id: device.clone(),
                    topic: String::new(),
                    messages: 0,
                    now,
                });
                s.messages += 1;
                topic.clone_into(&mut s.topic);
            }
        }
        if !pending.is_empty()
            && let Err(e) = self
                .readings
                .try_record_pending(pending.into_values().collect())
        {
            tracing::debug!("pending devices not recorded: {e}");
        }
        self.pipelined(plan, tokens, now).await;
    }

    /// Does what `plan` says without waiting for any commit where it need not: readings out
    /// and alarms published at once; its journal ops committed at once if no commit is in
    /// flight, else queued behind it (the loop goes on: the next alarm never waits for a
    /// slow disk), and committed once it has succeeded. If it fails, the queued plans are
    /// dropped unacknowledged: they were made over what the journal did not take (the planner
    /// is rebuilt from the journal), and their messages come again from their senders.
    async fn pipelined(&mut self, plan: Plan, tokens: Vec<AckToken>, now: UnixMs) {
        let staged = self.stage(plan, tokens, now).await;
        if staged.ops.is_empty() {
            // Nothing to journal (telemetry, a command, resends already durable): done now,
            // whatever is under way.
            self.finish(staged.after, Vec::new()).await;
            return;
        }
        self.commits.queued.push(staged);
        if self.commits.queued.len() > MAX_QUEUED
            && let Some(mut f) = self.commits.in_flight.take()
        {
            let result = (&mut f.committing).await;
            self.landed(f, result).await;
        }
        if self.commits.in_flight.is_none() {
            self.commit_queued().await;
        }
    }

    /// Waits for the commits under way and does what follows them.
    async fn settle(&mut self) {
        while let Some(mut f) = self.commits.in_flight.take() {
            let result = (&mut f.committing).await;
            self.landed(f, result).await;
        }
    }

    /// What the journal holds of the batch's events, in one read off the runtime's threads.
    async fn lookups(&self, batch: &[Classified]) -> Lookups {
        let wanted = Lookups::wanted(batch);
        if wanted.is_empty() {
            return Lookups::default();
        }
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let journaled = store.journaled_events(&wanted)?;
            let taken_episodes = store.taken_episodes(&Lookups::episode_ids(&wanted))?;
            Ok::<_, StoreError>(Lookups {
                journaled,
                taken_episodes,
            })
        })
        .await;
        match read {
            Ok(Ok(lookups)) => lookups,
            // Taken as new: the journal's insert still finds a resend (`ON CONFLICT DO
            // NOTHING`), so at worst the engine hears an event twice (it merges).
            Ok(Err(e)) => {
                tracing::warn!("journaled events not read, taking the batch as new: {e}");
                Lookups::default()
            }
            Err(e) => {
                tracing::error!("journaled events not read: {e}");
                Lookups::default()
            }
        }
    }

    /// The part of a plan that waits for no commit: readings and statuses out (never waited
    /// for), and the early alerts published (the alarm path).
    async fn stage(&mut self, plan: Plan, tokens: Vec<AckToken>, now: UnixMs) -> Staged {
        let changes_episodes = plan.changes_episodes();
        let Plan {
            journal: ops,
            alerts,
            acks,
            samples,
            refusals: _,
            opened,
            dropped_telemetry,
            statuses,
        } = plan;
        // Devices' latest statuses, coalesced per batch, off the alarm path (the roster).
        if !statuses.is_empty()
            && let Err(e) = self
                .readings
                .try_record_statuses(statuses.into_values().collect())
        {
            tracing::debug!("device statuses not recorded: {e}");
        }
        self.metrics.device_dropped_telemetry(dropped_telemetry);
        if let Some(feed) = &self.tsdb {
            let planner = &self.planner;
            feed.offer(&samples, |d| {
                planner
                    .known(d)
                    .map(|k| crate::tsdb::Tags::clone(&k.tags))
                    .unwrap_or_default()
            });
        }
        let rows: usize = samples.iter().map(|s| s.readings.len()).sum();
        if !samples.is_empty() && self.readings.try_submit(samples).is_err() {
            self.metrics.readings_dropped(rows as u64);
        }
        let published = publish_early(&alerts, &self.broker, &self.metrics).await;
        if published.any() {
            // The urgent link's task was woken on this worker, into the slot other workers
            // cannot take: let it write the alert now, not after the next telemetry batches.
            tokio::task::yield_now().await;
        }
        let events = ops
            .iter()
            .filter_map(|op| match op {
                JournalOp::Event(e) => Some((e.device.clone(), e.event.seq)),
                _ => None,
            })
            .collect();
        Staged {
            ops,
            events,
            after: AfterCommit {
                alerts,
                published,
                acks,
                tokens,
                opened,
                changes_episodes,
                now,
                started: std::time::Instant::now(),
            },
        }
    }

    /// Starts the journal commit of the queued plans, in one transaction.
    async fn commit_queued(&mut self) {
        let queued = std::mem::take(&mut self.commits.queued);
        if queued.is_empty() {
            return;
        }
        let (mut ops, mut events, mut after) = (Vec::new(), Vec::new(), Vec::new());
        let started = std::time::Instant::now();
        for mut s in queued {
            s.after.started = started;
            after.push((s.after, s.ops.len()));
            ops.append(&mut s.ops);
            events.append(&mut s.events);
        }
        match self.journal.enqueue(ops).await {
            Ok(committing) => {
                self.commits.in_flight = Some(InFlight {
                    committing,
                    events,
                    after,
                });
            }
            Err(e) => self.failed(after.into_iter().map(|(a, _)| a), &e).await,
        }
    }

    /// What follows the commit in flight: on success each plan [finished](Self::finish) and
    /// the queued ones committed; on failure [`failed`](Self::failed), with the queued ones.
    async fn landed(&mut self, f: InFlight, result: Result<Vec<JournalResult>, StoreError>) {
        match result {
            Ok(results) => {
                if let Some((first, _)) = f.after.first() {
                    self.metrics.journal_commit(first.started.elapsed());
                }
                self.journal_error.send_if_modified(|e| e.take().is_some());
                let mut results = results.into_iter();
                for (after, ops) in f.after {
                    self.finish(after, results.by_ref().take(ops).collect())
                        .await;
                }
                self.commit_queued().await;
            }
            Err(e) => {
                let queued = std::mem::take(&mut self.commits.queued);
                let afters = f.after.into_iter().map(|(a, _)| a);
                self.failed(afters.chain(queued.into_iter().map(|s| s.after)), &e)
                    .await;
            }
        }
    }

    /// After a failed journal write: nothing of `plans` acknowledged (devices and the broker
    /// send it all again), and the planner rebuilt from the journal if one changed episodes.
    async fn failed(&mut self, plans: impl Iterator<Item = AfterCommit>, e: &StoreError) {
        tracing::error!("journal write failed, nothing acknowledged: {e}");
        self.journal_error.send_replace(Some(e.to_string()));
        let mut rebuild = None;
        for after in plans {
            if after.changes_episodes {
                rebuild = Some(after.now);
            }
        }
        if let Some(now) = rebuild {
            self.rebuild(now).await;
        }
    }

    /// What follows a plan's durable journal ops (`results`, one per op; none for a plan
    /// without): the alerts to the notifiers (the early ones only to be marked delivered), the
    /// acks and the PUBACKs.
    async fn finish(&mut self, after: AfterCommit, results: Vec<JournalResult>) {
        let AfterCommit {
            alerts,
            published,
            acks,
            tokens,
            opened,
            changes_episodes: _,
            now,
            started: _,
        } = after;
        let published = published.confirmed().await;
        // The notifications are the last ops, one per alert.
        let tail = results.len().saturating_sub(alerts.len());
        for ((mut o, sent), result) in alerts
            .into_iter()
            .zip(published)
            .zip(results.get(tail..).unwrap_or_default())
        {
            let JournalResult::Enqueued(id) = *result else {
                continue;
            };
            // Queued under another id than the one it went out with (a collision of the
            // derivation): it goes out again under the queued one.
            o.early = sent && u64::try_from(id).ok() == Some(o.alert.alert_id);
            o.id = id;
            o.alert.alert_id = u64::try_from(id).unwrap_or(0);
            self.hand_over(o);
        }
        for category in opened {
            self.metrics.episode_opened(category);
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

    /// Hands a journaled alert to its notifier (and live clients).
    fn hand_over(&self, o: Outgoing) {
        // The live stream reads the journal: woken once the alert is in it.
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

    /// After a failed journal write: the planner again from the journal, so that nothing the
    /// journal does not hold lives on in memory. Retried until the store answers.
    async fn rebuild(&mut self, now: UnixMs) {
        let config = self.planner.engine().config().clone();
        let webhooks = self.planner.webhooks().to_vec();
        let mut delay = Duration::from_millis(100);
        loop {
            let store = self.store.clone();
            let config = config.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let engine = load_engine(&store, config, now)?.0;
                planner_over(engine, &store)
            })
            .await;
            match loaded {
                Ok(Ok(mut planner)) => {
                    planner.set_webhooks(webhooks);
                    self.planner = planner;
                    tracing::warn!("episodes rebuilt from the journal after a failed write");
                    return;
                }
                Ok(Err(e)) => tracing::error!("episodes not rebuilt from the journal: {e}"),
                Err(e) => tracing::error!("episodes not rebuilt from the journal: {e}"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Publishes the end-to-end ack of journaled events.
    async fn ack_device(&self, device: &DeviceId, seqs: Vec<Seq>, now: UnixMs) {
        let encoding = self.encoding_of(device);
        for chunk in seqs.chunks(MAX_ACK_SEQS) {
            let ack = Message::Ack(Ack {
                seqs: chunk.iter().copied().collect(),
                time_ms: now,
            });
            self.publish_to(device, DeviceTopic::Ack, &ack, encoding, false)
                .await;
        }
    }

    fn encoding_of(&self, device: &DeviceId) -> Encoding {
        self.planner
            .known(device)
            .map_or(Encoding::Json, |k| k.encoding)
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

    /// The registry's current view of a device, read off the runtime's threads.
    async fn device(&self, id: &DeviceId) -> Result<Option<crate::store::Device>, StoreError> {
        let (store, id) = (self.store.clone(), id.clone());
        tokio::task::spawn_blocking(move || store.device(&id))
            .await
            .unwrap_or(Err(StoreError::Closed))
    }

    /// The plans an API change calls for, in order (the shell pipelines them).
    async fn control(&mut self, c: Control) -> Vec<Plan> {
        let now = now_ms();
        let mut plans = Vec::new();
        let plan = match c {
            Control::Acknowledged(id) => self.planner.input(Input::Acknowledged(id), now),
            Control::DeviceRemoved(id) => {
                // Decommissioned devices stay known, so their messages are refused as such;
                // deleted ones are forgotten.
                let d = self.device(&id).await.ok().flatten();
                self.planner.set_known(&id, d.as_ref());
                self.planner.input(Input::Remove(id), now)
            }
            Control::DeviceChanged(id) => {
                let Ok(Some(d)) = self.device(&id).await else {
                    return plans;
                };
                let was = self.planner.known(&id).map(|k| k.state);
                self.planner.set_known(&id, Some(&d));
                // Put in service after commissioning: what is still open goes to the workers.
                if was == Some(DeviceState::Commissioned)
                    && d.fields.state == DeviceState::InService
                {
                    plans.push(self.planner.announce_in_service(&id, now));
                }
                if let Some(grid) = &d.fields.grid_id
                    && !self.planner.knows_area(grid)
                {
                    // A new grid cell: its escalation path is needed before its first alarm.
                    if let Some(tree) = read_areas(self.store.clone()).await {
                        self.planner.set_areas(tree);
                    }
                }
                match d.fields.state {
                    DeviceState::Commissioned | DeviceState::InService => {
                        let plan = match d.spec() {
                            Some(spec) => self.planner.input(Input::Upsert(spec), now),
                            None => Plan::default(),
                        };
                        if self.modbus.polls(&id) {
                            // A legacy monitor: its poller writes the set-points.
                            if !self.modbus.configure(&id, d.fields.config.clone()) {
                                tracing::warn!(device = %id, "Modbus poller busy: config not queued");
                            }
                        } else {
                            let encoding = Known::of(&d).encoding;
                            let config = Message::Config(d.fields.config.clone());
                            self.publish_to(&id, DeviceTopic::Config, &config, encoding, true)
                                .await;
                        }
                        plan
                    }
                    DeviceState::Decommissioned => self.planner.input(Input::Remove(id), now),
                    DeviceState::Registered => Plan::default(),
                }
            }
            Control::Overdue { id, level } => {
                let store = self.store.clone();
                let episode = tokio::task::spawn_blocking(move || store.episode(id))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten();
                match episode {
                    Some(e) => self.planner.overdue(&e, level, now),
                    None => Plan::default(),
                }
            }
            Control::Command(id, action) => {
                self.next_command = self.next_command.wrapping_add(1);
                let cmd = Message::Command(Command {
                    id: self.next_command,
                    time_ms: now,
                    action,
                });
                let encoding = self.encoding_of(&id);
                self.publish_to(&id, DeviceTopic::Cmd, &cmd, encoding, false)
                    .await;
                Plan::default()
            }
        };
        plans.push(plan);
        plans
    }
}
