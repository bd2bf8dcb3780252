//! The two writer threads: the journal's (group commit, replies) and the readings' (batched,
//! fire and forget, never blocking its caller).
//!
//! Both take requests from a bounded `tokio::sync::mpsc` queue, so async code sends with
//! `.await` (backpressure) and the thread receives with `blocking_recv` — no runtime thread is
//! ever blocked on SQLite. A writer thread ends when every handle ([`JournalWriter`],
//! [`ReadingsWriter`], both `Clone`) is dropped, after finishing what is queued; join the
//! returned `JoinHandle` to wait for that. A writer thread that stops before that (a panic: a
//! bug) says why in [`WriterFate`], which `/healthz` reports; its handles' calls then fail with
//! [`StoreError::Closed`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use firegrid_protocols::DeviceId;

use super::journal::{JournalOp, JournalResult};
use super::readings::Sample;
use super::{PendingSighting, Store, StoreError};

/// Why a writer thread stopped before its handles were dropped, once it has: set once, by
/// the thread itself, when its work panics (a bug; the panic's message). `/healthz` reports it
/// ([`crate::api::Health::watch_writer`]).
pub type WriterFate = Arc<OnceLock<String>>;

/// Runs `body` as the `name` writer thread's work; a panic in it ends the thread with its
/// message in `fate` and in the log, instead of ending it silently.
fn guarded(name: &'static str, fate: WriterFate, body: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let why = format!("panicked: {message}");
        tracing::error!("the {name} writer thread stopped: {why}");
        let _ = fate.set(why);
    }
}

/// Settings of a writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Requests queued at most (then: the journal's callers wait, readings are refused).
    pub queue: usize,
    /// The most ops (journal) or reading rows (readings) taken into one group.
    pub max_group: usize,
    /// Readings only: the most reading rows waiting in the queue (then readings are refused),
    /// whatever the number of requests they came in.
    pub queued_rows: u64,
    /// Readings only: how long a group of samples smaller than `max_group` waits for more
    /// before it is written (a flush writes it at once). Zero: written as soon as the queue is
    /// empty.
    pub linger: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            queue: 1024,
            max_group: 1000,
            queued_rows: 131_072,
            linger: Duration::ZERO,
        }
    }
}

impl WriterOptions {
    /// The readings writer's: groups of up to 65 536 reading rows (13 107 five-channel
    /// messages), gathered for up to 250 ms, each sorted by (day, device, time) and written in
    /// transactions of up to [`StoreOptions::readings_chunk_rows`](super::StoreOptions::readings_chunk_rows).
    /// Sorted, a group's transactions cover disjoint runs of devices, so each index and rollup
    /// page is written once per group: the larger the group, the fewer times — a group of 12 800
    /// messages costs the writer 2.6 / 4.3 / 7.8 µs of CPU per message at 1k / 10k / 100k
    /// devices where one of 1600 cost 9.6 / 11.4 / 12.5
    /// (`store::tests::perf::readings_writer_groups`). Waiting for a group costs nothing the
    /// readings are for: the alarm path never reads them, and the history sees them at most a
    /// quarter of a second later; a flush writes at once.
    ///
    /// What it may hold waiting is counted in reading rows, not requests: the pipeline hands
    /// over one request per batch, and its batches are small exactly when it keeps up, so 1024
    /// requests were a fraction of a second of telemetry — less than one of the readings file's
    /// checkpoints takes (35–170 ms each, longer with a large fleet), which then dropped
    /// readings though the writer kept up on average; at full load the same 1024 requests were
    /// up to half a million messages. 131 072 rows (26 214 five-channel messages, about 5 MiB at
    /// most) ride out a stall of well over a second at a large fleet's rate.
    pub fn readings() -> Self {
        Self {
            queue: 65_536,
            max_group: 65_536,
            queued_rows: 131_072,
            linger: Duration::from_millis(250),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<JournalResult>, StoreError>>;

/// The result of ops queued by [`JournalWriter::enqueue`], once their transaction is durable.
#[derive(Debug)]
pub struct Committing(oneshot::Receiver<Result<Vec<JournalResult>, StoreError>>);

impl std::future::Future for Committing {
    type Output = Result<Vec<JournalResult>, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

struct JournalRequest {
    ops: Vec<JournalOp>,
    reply: Reply,
}

/// Counters of a [`JournalWriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Transactions committed (one fsync each).
    pub transactions: u64,
    /// Requests served.
    pub requests: u64,
    /// Ops written.
    pub ops: u64,
    /// Requests in the largest group.
    pub largest_group: u64,
    /// Transactions that failed (every request in them got the error).
    pub failures: u64,
}

#[derive(Default)]
struct JournalCounters {
    transactions: AtomicU64,
    requests: AtomicU64,
    ops: AtomicU64,
    largest_group: AtomicU64,
    failures: AtomicU64,
}

/// A handle on the journal writer thread: group commit, see the [store docs](super#concurrency).
///
/// Requests go through a bounded `tokio::sync::mpsc` queue: async code sends with `.await`
/// (backpressure when the writer is behind), and the thread receives with `blocking_recv`, so
/// no runtime thread ever blocks on SQLite. The thread ends when every handle (clones
/// included) is dropped, after finishing what is queued; join the `JoinHandle` that
/// [`spawn`](Self::spawn) returned to wait for that.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<JournalRequest>,
    counters: Arc<JournalCounters>,
    fate: WriterFate,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Starts the journal writer thread on `store`.
    ///
    /// # Errors
    /// [`StoreError::Spawn`] if the thread cannot be started.
    pub fn spawn(
        store: Store,
        options: WriterOptions,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let (tx, mut rx) = mpsc::channel::<JournalRequest>(options.queue.max(1));
        let counters = Arc::new(JournalCounters::default());
        let c = counters.clone();
        let max_group = options.max_group.max(1);
        let fate = WriterFate::default();
        let f = fate.clone();
        let thread = std::thread::Builder::new()
            .name("store-journal".into())
            .spawn(move || {
                guarded("journal", f, move || {
                    while let Some(first) = rx.blocking_recv() {
                        let mut n = first.ops.len();
                        let mut group = vec![first];
                        // Group commit: whatever queued up during the previous fsync goes together.
                        while n < max_group {
                            match rx.try_recv() {
                                Ok(r) => {
                                    n += r.ops.len();
                                    group.push(r);
                                }
                                Err(_) => break,
                            }
                        }
                        let batches: Vec<&[JournalOp]> = group.iter().map(|r| &r.ops[..]).collect();
                        let results = store.journal_group(&batches);
                        c.requests.fetch_add(group.len() as u64, Ordering::Relaxed);
                        c.largest_group
                            .fetch_max(group.len() as u64, Ordering::Relaxed);
                        match results {
                            Ok(results) => {
                                c.transactions.fetch_add(1, Ordering::Relaxed);
                                c.ops.fetch_add(n as u64, Ordering::Relaxed);
                                for (request, result) in group.into_iter().zip(results) {
                                    // A caller that gave up does not get its answer; what it asked
                                    // for is written all the same (its device resends; dedupe).
                                    let _ = request.reply.send(result);
                                }
                            }
                            Err(e) => {
                                c.failures.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(
                                    requests = group.len(),
                                    "journal transaction failed: {e}"
                                );
                                for request in group {
                                    let _ = request.reply.send(Err(e.shared()));
                                }
                            }
                        }
                    }
                })
            })
            .map_err(StoreError::Spawn)?;
        Ok((Self { tx, counters, fate }, thread))
    }

    /// Why the thread stopped before its handles were dropped, if it did.
    pub fn fate(&self) -> WriterFate {
        self.fate.clone()
    }

    /// Journals `ops` in the next group commit and waits until they are durable. Then, and
    /// only then, acknowledge the device. Waits for queue space when the writer is behind.
    ///
    /// # Errors
    /// As [`Store::journal_batch`]; [`StoreError::Closed`] if the writer has stopped.
    pub async fn submit(&self, ops: Vec<JournalOp>) -> Result<Vec<JournalResult>, StoreError> {
        self.enqueue(ops).await?.await
    }

    /// Queues `ops` for the next group commit (after everything queued before them) and
    /// returns the wait for their result, so that the caller can do other work meanwhile.
    /// Waits for queue space when the writer is behind.
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the writer has stopped; the returned future, as
    /// [`submit`](Self::submit).
    pub async fn enqueue(&self, ops: Vec<JournalOp>) -> Result<Committing, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(JournalRequest { ops, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Committing(answer))
    }

    /// [`submit`](Self::submit) for threads outside the async runtime (panics if called
    /// from async code, as `tokio`'s blocking calls do).
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub fn submit_blocking(&self, ops: Vec<JournalOp>) -> Result<Vec<JournalResult>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .blocking_send(JournalRequest { ops, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Requests waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The counters so far.
    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        JournalStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            largest_group: c.largest_group.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }
}

/// How often the devices' latest statuses (the roster, `store/commissioning.rs`) that say
/// something are written: online or offline, a heartbeat.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// How often the statuses that only say a device was heard from again (its telemetry) are
/// written. Every 2 s, a fleet of 100 000 devices sending every few seconds made as many status
/// upserts on the main file as it made reading rows (ingest 37.9k msg/s with 2 s against 55.7k
/// with 30 s, `firegrid-sim bench --sizes 100000`); the roster's "last seen" of a device that
/// sends only telemetry is then up to 30 s old, well inside the offline verdict's three
/// heartbeat intervals, which heartbeats (written within [`STATUS_EVERY`]) keep.
const SEEN_EVERY: Duration = Duration::from_secs(30);

/// The devices' latest statuses taken since they were last written, one per device: those
/// that say something, written every [`STATUS_EVERY`], and those that only say a device was
/// heard from again, every [`SEEN_EVERY`].
struct Statuses {
    news: HashMap<DeviceId, super::StatusUpdate>,
    seen: HashMap<DeviceId, super::StatusUpdate>,
    news_written: Instant,
    seen_written: Instant,
}

impl Statuses {
    fn new(now: Instant) -> Self {
        Self {
            news: HashMap::new(),
            seen: HashMap::new(),
            news_written: now,
            seen_written: now,
        }
    }

    fn take_in(&mut self, u: super::StatusUpdate) {
        if let Some(known) = self.news.get_mut(&u.device) {
            known.merge(u);
        } else if u.online.is_some() || u.heartbeat.is_some() {
            let mut update = self.seen.remove(&u.device).unwrap_or_else(|| u.clone());
            update.merge(u);
            self.news.insert(update.device.clone(), update);
        } else if let Some(known) = self.seen.get_mut(&u.device) {
            known.merge(u);
        } else {
            self.seen.insert(u.device.clone(), u);
        }
    }

    /// What is due at `now` (everything if `all`), taken out.
    fn due(&mut self, now: Instant, all: bool) -> Vec<super::StatusUpdate> {
        let mut out = Vec::new();
        // Taken whole rather than drained: a drained map keeps its table (a slot per device
        // heard from since the last write, at the fleet's peak) for good.
        if all || now.duration_since(self.news_written) >= STATUS_EVERY {
            out.extend(std::mem::take(&mut self.news).into_values());
            self.news_written = now;
        }
        if all || now.duration_since(self.seen_written) >= SEEN_EVERY {
            out.extend(std::mem::take(&mut self.seen).into_values());
            self.seen_written = now;
        }
        out
    }
}

enum ReadingsRequest {
    Samples(Vec<Sample>),
    Pending(Vec<PendingSighting>),
    /// Devices' latest statuses (commissioning's roster), coalesced per batch.
    Statuses(Vec<super::StatusUpdate>),
    /// Wakes the thread to write statuses that are due ([`STATUS_EVERY`]).
    Tick,
    Flush(oneshot::Sender<()>),
}

/// Counters of a [`ReadingsWriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadingsStats {
    /// Reading rows stored.
    pub inserted: u64,
    /// Reading rows already stored (redelivered telemetry).
    pub duplicates: u64,
    /// Reading rows refused because the queue was full.
    pub dropped: u64,
    /// Reading rows lost to a failed write (disk full, I/O; logged).
    pub failed: u64,
    /// Reading rows refused for their time (before 2020, or more than a day ahead; logged).
    pub refused: u64,
    /// Unregistered devices dropped from the pending list, or never put on it, because it was
    /// full (the most recently seen are kept).
    pub pending_dropped: u64,
    /// Groups of samples written (each one sort, one or more transactions).
    pub groups: u64,
}

#[derive(Default)]
struct ReadingsCounters {
    /// Rows submitted and not yet taken by the writer thread.
    queued: AtomicU64,
    inserted: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    pending_dropped: AtomicU64,
    groups: AtomicU64,
}

/// A handle on the readings writer thread, see the [store docs](super#concurrency). Its
/// queue is bounded too, but a caller never waits on it: a full queue refuses
/// ([`StoreError::QueueFull`]) and counts the drop. It ends as [`JournalWriter`]'s does.
#[derive(Clone)]
pub struct ReadingsWriter {
    tx: mpsc::Sender<ReadingsRequest>,
    counters: Arc<ReadingsCounters>,
    max_queued_rows: u64,
    fate: WriterFate,
}

impl std::fmt::Debug for ReadingsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadingsWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn rows(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| s.readings.len() as u64).sum()
}

/// The samples the readings writer has taken and not yet written.
#[derive(Default)]
struct Group {
    samples: Vec<Sample>,
    /// Their reading rows.
    rows: u64,
    /// When the first of them was taken.
    since: Option<Instant>,
}

impl Group {
    fn add(&mut self, samples: Vec<Sample>, rows: u64) {
        self.samples.extend(samples);
        self.rows += rows;
        self.since.get_or_insert_with(Instant::now);
    }

    fn take(&mut self) -> Vec<Sample> {
        self.rows = 0;
        self.since = None;
        std::mem::take(&mut self.samples)
    }
}

impl ReadingsWriter {
    /// Starts the readings writer thread on `store`.
    ///
    /// # Errors
    /// [`StoreError::Spawn`] if the thread cannot be started.
    pub fn spawn(
        store: Store,
        options: WriterOptions,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let (tx, mut rx) = mpsc::channel::<ReadingsRequest>(options.queue.max(1));
        let counters = Arc::new(ReadingsCounters::default());
        let c = counters.clone();
        let max_rows = options.max_group.max(1) as u64;
        let linger = options.linger;
        // The timer of the linger: the thread waits on the queue with a deadline.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(StoreError::Spawn)?;
        let fate = WriterFate::default();
        let f = fate.clone();
        let thread = std::thread::Builder::new()
            .name("store-readings".into())
            .spawn(move || {
                guarded("readings", f, move || {
                    let write = |group: &mut Group| {
                        let n = group.rows;
                        let samples = group.take();
                        if samples.is_empty() {
                            return;
                        }
                        #[cfg(test)]
                        super::faults::readings_writer_panics(&store);
                        c.groups.fetch_add(1, Ordering::Relaxed);
                        match store.insert_readings(&samples) {
                            Ok(r) => {
                                c.inserted.fetch_add(r.inserted, Ordering::Relaxed);
                                c.duplicates.fetch_add(r.duplicates, Ordering::Relaxed);
                                c.refused.fetch_add(r.refused, Ordering::Relaxed);
                            }
                            Err(e) => {
                                c.failed.fetch_add(n, Ordering::Relaxed);
                                tracing::error!(rows = n, "readings not stored: {e}");
                            }
                        }
                    };
                    // The sightings taken so far, in one transaction.
                    let write_pending = |pending: &mut Vec<PendingSighting>| {
                        if pending.is_empty() {
                            return;
                        }
                        match store.record_pending_many(pending) {
                            Ok(o) if o.dropped > 0 => {
                                let before =
                                    c.pending_dropped.fetch_add(o.dropped, Ordering::Relaxed);
                                if before == 0 {
                                    tracing::warn!(
                                        "the pending-device list is full: the least recently seen \
                                     devices leave it (firegrid_pending_devices_dropped_total)"
                                    );
                                }
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(
                                devices = pending.len(),
                                "pending devices not recorded: {e}"
                            ),
                        }
                        pending.clear();
                    };
                    // The statuses due, one per device, in one transaction on the main file: at most
                    // every STATUS_EVERY (SEEN_EVERY), so a fleet's heartbeats never put a commit per
                    // batch beside the journal's.
                    let write_statuses = |statuses: &mut Statuses, all: bool| {
                        let updates = statuses.due(Instant::now(), all);
                        if updates.is_empty() {
                            return;
                        }
                        if let Err(e) = store.record_statuses(&updates) {
                            tracing::warn!(
                                devices = updates.len(),
                                "device statuses not recorded: {e}"
                            );
                        }
                    };
                    let mut group = Group::default();
                    let mut pending: Vec<PendingSighting> = Vec::new();
                    let mut statuses = Statuses::new(Instant::now());
                    while let Some(first) = rx.blocking_recv() {
                        let mut next = Some(first);
                        loop {
                            // Take what is queued, in order, writing samples in groups.
                            while let Some(request) = next.take() {
                                match request {
                                    ReadingsRequest::Samples(s) => {
                                        let n = rows(&s);
                                        c.queued.fetch_sub(n, Ordering::Relaxed);
                                        group.add(s, n);
                                        if group.rows >= max_rows {
                                            write(&mut group);
                                        }
                                    }
                                    ReadingsRequest::Pending(s) => pending.extend(s),
                                    ReadingsRequest::Statuses(s) => {
                                        for u in s {
                                            statuses.take_in(u);
                                        }
                                    }
                                    ReadingsRequest::Tick => {}
                                    ReadingsRequest::Flush(done) => {
                                        write(&mut group);
                                        write_pending(&mut pending);
                                        write_statuses(&mut statuses, true);
                                        let _ = done.send(());
                                    }
                                }
                                next = rx.try_recv().ok();
                            }
                            // The queue is empty: a group not yet full waits a moment for more.
                            let Some(deadline) = group.since.map(|t| t + linger) else {
                                break;
                            };
                            let wait =
                                async { tokio::time::timeout_at(deadline.into(), rx.recv()).await };
                            match clock.block_on(wait) {
                                Ok(Some(request)) => next = Some(request),
                                // Lingered long enough, or every sender is gone.
                                Ok(None) | Err(_) => break,
                            }
                        }
                        write(&mut group);
                        write_pending(&mut pending);
                        write_statuses(&mut statuses, false);
                    }
                    write_statuses(&mut statuses, true);
                })
            })
            .map_err(StoreError::Spawn)?;
        // Wakes the writer so that statuses taken while nothing else comes are written too;
        // stops once the writer's senders are gone.
        let weak = tx.downgrade();
        std::thread::Builder::new()
            .name("store-readings-tick".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(STATUS_EVERY);
                    let Some(tx) = weak.upgrade() else { break };
                    if tx.try_send(ReadingsRequest::Tick).is_err() && tx.is_closed() {
                        break;
                    }
                }
            })
            .map_err(StoreError::Spawn)?;
        Ok((
            Self {
                tx,
                counters,
                max_queued_rows: options.queued_rows,
                fate,
            },
            thread,
        ))
    }

    /// Why the thread stopped before its handles were dropped, if it did.
    pub fn fate(&self) -> WriterFate {
        self.fate.clone()
    }

    /// Queues readings without waiting.
    ///
    /// # Errors
    /// [`StoreError::QueueFull`] (counted in [`ReadingsStats::dropped`]: telemetry is not
    /// acknowledged end to end, so a full queue drops it); [`StoreError::Closed`].
    pub fn try_submit(&self, samples: Vec<Sample>) -> Result<(), StoreError> {
        let n = rows(&samples);
        let c = &self.counters;
        let refuse = |e| {
            c.queued.fetch_sub(n, Ordering::Relaxed);
            if matches!(e, StoreError::QueueFull) {
                c.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(e)
        };
        if c.queued.fetch_add(n, Ordering::Relaxed) + n > self.max_queued_rows {
            return refuse(StoreError::QueueFull);
        }
        match self.tx.try_send(ReadingsRequest::Samples(samples)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => refuse(StoreError::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => refuse(StoreError::Closed),
        }
    }

    /// Reading rows waiting in the queue now.
    pub fn queued_rows(&self) -> u64 {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Queues sightings of unregistered devices ([`Store::record_pending_many`]) without
    /// waiting.
    ///
    /// # Errors
    /// [`StoreError::QueueFull`]; [`StoreError::Closed`].
    pub fn try_record_pending(&self, sightings: Vec<PendingSighting>) -> Result<(), StoreError> {
        self.tx
            .try_send(ReadingsRequest::Pending(sightings))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
    }

    /// Queues devices' latest statuses ([`Store::record_statuses`]) without waiting.
    ///
    /// # Errors
    /// [`StoreError::QueueFull`]; [`StoreError::Closed`].
    pub fn try_record_statuses(&self, updates: Vec<super::StatusUpdate>) -> Result<(), StoreError> {
        self.tx
            .try_send(ReadingsRequest::Statuses(updates))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
    }

    /// Waits until everything queued before this call is written.
    ///
    /// # Errors
    /// [`StoreError::Closed`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(ReadingsRequest::Flush(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)
    }

    /// [`flush`](Self::flush) for threads outside the async runtime.
    ///
    /// # Errors
    /// [`StoreError::Closed`].
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .blocking_send(ReadingsRequest::Flush(done))
            .map_err(|_| StoreError::Closed)?;
        wait.blocking_recv().map_err(|_| StoreError::Closed)
    }

    /// The counters so far.
    pub fn stats(&self) -> ReadingsStats {
        let c = &self.counters;
        ReadingsStats {
            inserted: c.inserted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            pending_dropped: c.pending_dropped.load(Ordering::Relaxed),
            groups: c.groups.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HeartbeatFields, StatusUpdate};
    use super::*;

    fn update(device: &str, seen_ms: u64, online: Option<bool>) -> StatusUpdate {
        StatusUpdate {
            device: DeviceId::new(device).unwrap(),
            seen_ms,
            online,
            heartbeat: None,
        }
    }

    /// Statuses that say something are written within STATUS_EVERY; those that only say a
    /// device was heard from again wait for SEEN_EVERY, unless news of the device comes first.
    #[test]
    fn news_is_written_within_two_seconds_and_mere_sightings_every_thirty() {
        let t0 = Instant::now();
        let mut s = Statuses::new(t0);
        s.take_in(update("d-1", 1_000, None));
        s.take_in(update("d-2", 1_000, None));
        s.take_in(update("d-3", 1_000, Some(true)));
        // d-2 is heard from again, then its heartbeat comes: news, with the latest time.
        s.take_in(update("d-2", 2_000, None));
        s.take_in(StatusUpdate {
            heartbeat: Some(HeartbeatFields {
                firmware: "1.2.0".into(),
                signal_dbm: Some(-70),
                battery_mv: None,
                config_version: 3,
            }),
            ..update("d-2", 1_500, Some(true))
        });
        // Telemetry after news merges into the news.
        s.take_in(update("d-3", 3_000, None));
        assert!(s.due(t0 + Duration::from_secs(1), false).is_empty());
        let mut news = s.due(t0 + STATUS_EVERY, false);
        news.sort_by(|a, b| a.device.cmp(&b.device));
        assert_eq!(
            news.iter()
                .map(|u| (
                    u.device.as_str(),
                    u.seen_ms,
                    u.online,
                    u.heartbeat.is_some()
                ))
                .collect::<Vec<_>>(),
            [
                ("d-2", 2_000, Some(true), true),
                ("d-3", 3_000, Some(true), false)
            ]
        );
        assert!(
            s.due(t0 + SEEN_EVERY - Duration::from_secs(1), false)
                .is_empty()
        );
        let seen = s.due(t0 + SEEN_EVERY, false);
        assert_eq!(
            seen.iter()
                .map(|u| (u.device.as_str(), u.seen_ms))
                .collect::<Vec<_>>(),
            [("d-1", 1_000)]
        );
        // A flush takes everything at once.
        s.take_in(update("d-1", 4_000, None));
        assert_eq!(s.due(t0 + SEEN_EVERY, true).len(), 1);
        assert!(s.due(t0 + 10 * SEEN_EVERY, false).is_empty());
    }
}
