//! Starting and stopping the whole gateway: store, broker, engine, pipeline, notifier, API.
//!
//! [`run`] takes the configuration and a [`CancellationToken`]; cancelling it stops the edges
//! (broker client, HTTP) and lets the inside drain (pipeline → journal → readings flush). Tests
//! run it in-process on port 0 and learn the addresses from the `ready` channel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Role;
use crate::alarm_path::{AlarmPath, Scheduling};
use crate::api::{self, ApiState, Health};
use crate::broker::mosquitto::{Account, AccountSource, AccountsChanged, Grant};
use crate::broker::settings::BrokerMode;
use crate::clock::now_ms;
use crate::config::Config;
use crate::metrics::{Metrics, Queue};
use crate::notify::notifier;
use crate::notify::webhook::{Webhook, Webhooks, redact_url};
use crate::pipeline::{self, Pipeline};
use crate::store::{
    JournalWriter, NotifyChannel, ReadingsWriter, Store, StoreOptions, WriterOptions,
};

/// How often the queue gauges of `/metrics` are sampled.
const QUEUE_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// How often the data directory's free space is sampled.
const DISK_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Where a running gateway can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The HTTP API.
    pub api: SocketAddr,
    /// The broker devices connect to, `host:port`.
    pub mqtt: String,
    /// The store file.
    pub store: PathBuf,
}

/// Why the gateway could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The data directory cannot be made.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The alarm path's thread cannot start.
    #[error("alarm path thread: {0}")]
    AlarmPath(std::io::Error),
    /// The store cannot be opened.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The broker side cannot start.
    #[error("broker: {0}")]
    BrokerSetup(#[from] crate::broker::setup::SetupError),
    /// The broker client cannot be set up.
    #[error("broker: {0}")]
    Broker(#[from] crate::broker::BrokerError),
    /// The API's TLS certificate or key cannot be used.
    #[error("[api] TLS: {0}")]
    ApiTls(#[from] crate::tls::TlsError),
    /// The webhook client cannot be set up.
    #[error("webhooks: {0}")]
    Webhooks(reqwest::Error),
    /// A Modbus profile or device entry is wrong.
    #[error("modbus: {0}")]
    Modbus(#[from] crate::modbus::ModbusError),
    /// The record-signing key cannot be read or made.
    #[error("commissioning: {0}")]
    Commissioning(String),
    /// The GB/T 26875.3 uplink cannot start.
    #[error("uplink: {0}")]
    Uplink(#[from] crate::uplink::shell::UplinkError),
    /// The HTTP listener cannot be bound.
    #[error("HTTP API on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Installs the log subscriber: `RUST_LOG` if set, else `info`.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(base).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (what `kill`, systemd and container runtimes send) and
/// says which came: both stop the gateway the same clean way.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        },
        Err(e) => {
            tracing::warn!("cannot watch for SIGTERM ({e}); Ctrl-C still stops the gateway");
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs the gateway until `cancel`. Sends where it can be reached on `ready` once everything
/// is up.
///
/// # Errors
/// [`AppError`] if a part cannot start, or the embedded broker died.
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    ready: Option<oneshot::Sender<Running>>,
) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let store_path = config.data_dir.join("firegrid.db");
    let options = StoreOptions {
        readings_retention_ms: u64::from(config.store.readings_retention_days) * 86_400_000,
        pending_devices_max: config.store.pending_devices_max,
        raw_readings: config.store.local_readings == crate::config::LocalReadings::Raw,
        ..StoreOptions::default()
    };
    let (store, store_health) =
        tokio::task::block_in_place(|| Store::open_with(&store_path, options))?;
    if let Some(r) = &store_health.recovery {
        tracing::error!("the store was damaged and has been recovered: {r:?}");
    }
    let (journal, journal_thread) = JournalWriter::spawn(store.clone(), WriterOptions::default())?;
    let (readings, readings_thread) =
        ReadingsWriter::spawn(store.clone(), WriterOptions::readings())?;

    let tasks = TaskTracker::new();

    let metrics = Arc::new(Metrics::new());
    // The alarm path's thread: the alarms and urgent links and the pipeline.
    let alarm_path =
        AlarmPath::start(config.alarm_path.realtime_priority).map_err(AppError::AlarmPath)?;
    metrics.set_alarm_path_realtime(matches!(alarm_path.scheduling(), Scheduling::Realtime(_)));
    // The broker: the managed Mosquitto (default) or an external one, and the client.
    let accounts = AccountsChanged::default();
    let source: Arc<dyn AccountSource> = Arc::new(broker_accounts(store.clone()));
    let connected = crate::broker::setup::connect(
        &config.broker,
        &config.data_dir,
        source,
        accounts.clone(),
        metrics.managed_broker.clone(),
        &cancel,
        &tasks,
        Some(alarm_path.handle()),
    )
    .await?;
    let (broker, incoming, managed) = (connected.broker, connected.incoming, connected.managed);

    // The engine: the registry, then the episodes that were open when the gateway stopped.
    let (engine, open) = pipeline::load_engine(&store, config.engine_config(), now_ms())?;
    tracing::info!(
        devices = engine.device_count(),
        open_episodes = open.len(),
        "engine loaded"
    );

    let health = Arc::new(Health::new(store_health));
    health.watch_writer("journal", journal.fate());
    health.watch_writer("readings", readings.fate());
    {
        // /healthz follows the broker connection.
        let (health, mut state) = (health.clone(), broker.state());
        tasks.spawn(async move {
            loop {
                health.set_broker_connected(state.borrow_and_update().is_connected());
                if state.changed().await.is_err() {
                    break;
                }
            }
        });
    }
    if let Some(m) = &managed {
        // ... and the managed broker's listener.
        let (health, mut listening, cancel) = (health.clone(), m.listening(), cancel.clone());
        tasks.spawn(async move {
            loop {
                health.set_broker_listening(*listening.borrow_and_update());
                tokio::select! {
                    () = cancel.cancelled() => break,
                    changed = listening.changed() => if changed.is_err() { break },
                }
            }
        });
    }
    {
        // The data directory's disk: a warning when low, a system alarm when full.
        let first = crate::disk::DiskReport {
            level: crate::disk::DiskLevel::Ok,
            free_bytes: 0,
            total_bytes: 0,
            path: config.data_dir.clone(),
            error: None,
        };
        let (tx, rx) = tokio::sync::watch::channel(first);
        tasks.spawn(crate::disk::watch(
            config.data_dir.clone(),
            config.disk_limits(),
            DISK_SAMPLE_INTERVAL,
            tx,
            cancel.clone(),
        ));
        tasks.spawn(crate::disk::follow(
            rx,
            health.clone(),
            metrics.clone(),
            broker.clone(),
        ));
    }
    let (control_tx, control_rx) = mpsc::channel(1024);
    let (notify_tx, notify_rx) = mpsc::channel(4096);
    {
        // The queue gauges and the writers' and broker client's counts of /metrics, sampled.
        let (metrics, journal, readings) = (metrics.clone(), journal.clone(), readings.clone());
        let (notify, broker, cancel) = (notify_tx.clone(), broker.clone(), cancel.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(QUEUE_SAMPLE_INTERVAL);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = every.tick() => {}
                }
                // Received from the broker and not yet taken by the pipeline.
                let waiting = broker
                    .counters()
                    .received
                    .saturating_sub(metrics.ingested_total());
                metrics.set_queue_depth(
                    Queue::Ingest,
                    usize::try_from(waiting).unwrap_or(usize::MAX),
                );
                metrics.set_queue_depth(Queue::Journal, journal.queue_depth());
                // In reading rows, what the queue is bounded by (not requests, whose size varies).
                metrics.set_queue_depth(
                    Queue::Readings,
                    usize::try_from(readings.queued_rows()).unwrap_or(usize::MAX),
                );
                metrics.set_queue_depth(Queue::Notify, notify.max_capacity() - notify.capacity());
                let counters = broker.counters();
                metrics.set_broker_counters(counters.reconnects, counters.oversize);
                let stats = readings.stats();
                metrics.set_readings_stored(stats.inserted);
                metrics.set_pending_dropped(stats.pending_dropped);
            }
        });
    }
    let (live, _) = broadcast::channel(1024);

    let pipeline = Pipeline::new(
        engine,
        store.clone(),
        journal.clone(),
        readings.clone(),
        broker.clone(),
        notify_tx,
        live.clone(),
        metrics.clone(),
    )?;
    let mut pipeline = pipeline;
    {
        // /healthz says why the journal cannot be written, until it can.
        let (health, mut errors) = (health.clone(), pipeline.journal_error.subscribe());
        tasks.spawn(async move {
            while errors.changed().await.is_ok() {
                health.set_journal_error(errors.borrow_and_update().clone());
            }
        });
    }
    pipeline.set_webhooks(config.webhooks.iter().map(|w| w.url.clone()).collect());
    let webhooks = Webhooks::new(config.webhooks.iter().map(|w| {
        let secret = (!w.secret_env.is_empty())
            .then(|| std::env::var(&w.secret_env).ok())
            .flatten()
            .map(String::into_bytes);
        if secret.is_none() && !w.secret_env.is_empty() {
            tracing::warn!(url = %redact_url(&w.url), var = %w.secret_env, "webhook secret variable is not set: alerts to it are unsigned");
        }
        Webhook {
            url: w.url.clone(),
            secret,
            policy: w.address_policy(),
        }
    }))
    .map_err(AppError::Webhooks)?;
    let inner = CancellationToken::new();
    if !config.webhooks.is_empty() {
        let (tx, rx) = mpsc::channel(4096);
        pipeline.notify_webhooks = Some(tx);
        tasks.spawn(notifier(
            NotifyChannel::Webhook,
            store.clone(),
            journal.clone(),
            broker.clone(),
            webhooks.clone(),
            metrics.clone(),
            rx,
            inner.clone(),
        ));
    }
    tasks.spawn(notifier(
        NotifyChannel::Mqtt,
        store.clone(),
        journal.clone(),
        broker.clone(),
        webhooks,
        metrics.clone(),
        notify_rx,
        inner.clone(),
    ));
    // Readings to the time-series database, through the disk spool (never waited for).
    // A writer that cannot start (token unreadable, spool unopenable) never keeps the alarms
    // from running: it is logged and shown in /healthz (`firegrid check-config` finds it first).
    let mut tsdb = None;
    if config.tsdb.is_active() {
        let stats = metrics.tsdb().clone();
        match crate::tsdb::Tsdb::start(&config.tsdb, &config.data_dir, stats, inner.clone()) {
            Ok((t, feed)) => {
                pipeline.tsdb = Some(feed);
                tsdb = Some(t);
            }
            Err(e) => {
                tracing::error!("the TSDB writer did not start (alarms are not affected): {e}");
                metrics.tsdb().set_enabled();
                metrics.tsdb().set_error(format!("not started: {e}"));
            }
        }
    }
    // Legacy Modbus monitors: their messages join the MQTT ones in the pipeline's queues,
    // events ahead of telemetry.
    if !config.modbus.is_empty() {
        let sink =
            incoming
                .sender()
                .ok_or(AppError::Broker(crate::broker::BrokerError::Config(
                    "the broker client stopped at start-up".into(),
                )))?;
        let restored = |d: &firegrid_protocols::DeviceId| crate::modbus::Restored {
            used_seq: tokio::task::block_in_place(|| store.max_seq(d))
                .ok()
                .flatten()
                .unwrap_or(0),
            states: crate::modbus::open_states(d, &open),
        };
        pipeline.modbus = crate::modbus::spawn(
            &config.modbus,
            restored,
            sink,
            metrics.modbus.clone(),
            &tasks,
            &cancel,
        )?;
    }
    // The GB/T 26875.3 uplink: follows the outbox (woken by the live alerts), its own journal.
    if config.uplink.gb26875.enabled {
        let uplink = crate::uplink::shell::start(
            &config.uplink.gb26875,
            &config.data_dir,
            store.clone(),
            &live,
            metrics.uplink.clone(),
            inner.clone(),
        )?;
        tasks.spawn(uplink);
    }
    // Alerts to people: follows the outbox (woken by the live alerts), off the alarm path.
    {
        let secret = (!config.people.secret_env.is_empty())
            .then(|| std::env::var(&config.people.secret_env).ok())
            .flatten()
            .map(String::into_bytes);
        if secret.is_none() && !config.people.secret_env.is_empty() {
            tracing::warn!(var = %config.people.secret_env, "[people] secret variable is not set: person alerts are unsigned");
        }
        let people = crate::notify::dispatch::People::new(
            config.people.settings(),
            config.people.address_policy(),
            secret,
        )
        .map_err(AppError::Webhooks)?;
        tasks.spawn(crate::notify::dispatch::run(
            store.clone(),
            broker.clone(),
            people,
            metrics.people.clone(),
            live.subscribe(),
            inner.clone(),
        ));
    }
    // Unrectified tickets escalate again at their deadlines (crate::workflow).
    tasks.spawn(crate::workflow::watch::run(
        store.clone(),
        config.tickets.workflow(),
        control_tx.clone(),
        inner.clone(),
    ));
    let pipeline_task = tasks.track_future(alarm_path.handle().spawn(pipeline.run(
        incoming,
        control_rx,
        inner.clone(),
    )));
    // Retention and checkpoints, on a schedule, off the alarm path.
    tasks.spawn(crate::maintenance::run(
        store.clone(),
        crate::maintenance::Schedule::default(),
        now_ms,
        inner.clone(),
        None,
    ));

    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| AppError::Http {
            addr: config.api.listen,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| AppError::Http {
        addr: config.api.listen,
        source,
    })?;
    let mut state = ApiState::new(
        store.clone(),
        health.clone(),
        metrics.clone(),
        control_tx,
        live,
        config.limits(),
    );
    state.accounts = accounts;
    // Commissioning: the record-signing key (made on first start), the test watcher.
    {
        let key = crate::commissioning::key::load_or_create(&config.data_dir)
            .map_err(|e| AppError::Commissioning(e.to_string()))?;
        state.commissioning = crate::commissioning::Desk::new(key, config.commissioning.clone());
        tasks.spawn(crate::commissioning::watch::run(
            crate::commissioning::watch::Watch {
                store: store.clone(),
                broker: broker.clone(),
                control: state.control.clone(),
                section: config.commissioning.clone(),
                wake: state.commissioning.wake.clone(),
            },
            inner.clone(),
        ));
    }
    state.workflow = config.tickets.workflow();
    // The pages show each category's acknowledge deadline: the engine's first step of it.
    let engine = config.engine_config();
    state.workflow.acknowledge_ms = crate::model::Category::ALL
        .into_iter()
        .filter_map(|c| Some((c, engine.escalation_after(c, 0)?)))
        .collect();
    state.evidence = config.evidence.dir(&config.data_dir);
    state.metrics_open = config.api.metrics_open();
    let api_stop = cancel.clone();
    let api_tls = config
        .api
        .tls()
        .map(|(cert, key)| crate::tls::server_config(cert, key))
        .transpose()?;
    state.https = api_tls.is_some();
    tasks.spawn(async move {
        let served = match api_tls {
            Some(tls) => api::serve_tls(listener, tls, state, api_stop.cancelled_owned()).await,
            None => api::serve(listener, state, api_stop.cancelled_owned()).await,
        };
        if let Err(e) = served {
            tracing::error!("HTTP API stopped: {e}");
        }
    });

    let running = Running {
        api: api_addr,
        mqtt: connected.device_addr,
        store: store_path.clone(),
    };
    announce(&running, &config);
    if let Some(ready) = ready {
        let _ = ready.send(running);
    }

    cancel.cancelled().await;
    // Edges are stopped by `cancel`; now let the inside drain.
    inner.cancel();
    let _ = pipeline_task.await;
    tasks.close();
    tasks.wait().await;
    if let Some(t) = tsdb {
        t.stopped().await;
    }
    drop(journal);
    drop(readings);
    let _ = tokio::task::spawn_blocking(move || {
        alarm_path.join();
        let _ = journal_thread.join();
        let _ = readings_thread.join();
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// The broker accounts from the store: every device's credential, and every person's token
/// whose role reads MQTT (docs/security.md): an admin reads everything, an operator, grid
/// worker or installer the alerts of their area subtree (a city-wide operator or grid worker:
/// all alerts; a city-wide installer: their own test alerts and the commissioned devices'); the
/// other roles have no MQTT account.
fn broker_accounts(store: Store) -> impl Fn() -> Result<Vec<Account>, String> + Send + Sync {
    move || {
        let err = |e: crate::store::StoreError| e.to_string();
        let mut accounts: Vec<Account> = store
            .device_credentials()
            .map_err(err)?
            .into_iter()
            .map(|(id, hash)| Account {
                username: id.to_string(),
                hash,
                grant: Grant::Device,
            })
            .collect();
        let mut subtrees = std::collections::HashMap::new();
        for t in store.active_tokens().map_err(err)? {
            let grant = match (t.role, &t.area_id) {
                (Role::Admin, _) => Grant::Monitor,
                (Role::Operator | Role::GridWorker, None) => Grant::AllAlerts,
                (Role::Installer, None) => Grant::Installer {
                    user: t.user.clone(),
                },
                // Installers too: a commissioned device's test alarms come on their topic
                // under the cell's people topics (crate::commissioning).
                (Role::Operator | Role::GridWorker | Role::Installer, Some(area)) => {
                    if !subtrees.contains_key(area) {
                        let ids = store.subtree(area).map_err(err)?;
                        subtrees.insert(area.clone(), ids);
                    }
                    let ids = subtrees.get(area).map(Vec::as_slice).unwrap_or_default();
                    Grant::Alerts {
                        areas: ids.iter().map(ToString::to_string).collect(),
                        // An area gone since the token was issued: its own id (no tree).
                        path: area_topic_path(&store, area).unwrap_or_else(|_| area.to_string()),
                    }
                }
                _ => continue,
            };
            accounts.push(Account {
                username: format!("token.{}", t.token_id),
                hash: t.hash,
                grant,
            });
        }
        Ok(accounts)
    }
}

/// The ids from the root of the area tree down to `area`, `/`-separated: where its alerts are
/// published under `firegrid/v1/area/` ([`crate::notify::people::tree_topic`]).
fn area_topic_path(
    store: &Store,
    area: &crate::store::AreaId,
) -> Result<String, crate::store::StoreError> {
    let path = store.area_path(area)?;
    Ok(path
        .iter()
        .rev()
        .map(|a| a.id.as_str())
        .collect::<Vec<_>>()
        .join("/"))
}

fn announce(r: &Running, config: &Config) {
    let mqtt = match config.broker.mode {
        BrokerMode::Managed => format!(
            "broker:    Mosquitto (managed) on {}: every client logs in (docs/security.md)",
            r.mqtt
        ),
        BrokerMode::External => format!("broker:    external, {}", r.mqtt),
    };
    tracing::info!(
        "firegrid is running\n  {mqtt}\n  HTTP API:  http://{api}/api/v1  (live alarms: /api/v1/live, metrics: /metrics)\n  alerts:    MQTT topic firegrid/v1/alert/#\n  store:     {store}",
        api = r.api,
        store = r.store.display(),
    );
}
