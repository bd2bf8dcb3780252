//! The HTTP API: JSON under `/api/v1`, live alerts as server-sent events, `/healthz` and
//! `/metrics`; and the web UI's pages on the same listener (`web`, docs/ui.md).
//!
//! Every change goes through the [`Store`] (which checks references and writes the audit log
//! with who made the change), and then, for devices and tickets, a [`Control`] tells the
//! running pipeline. Store calls block, so they run on `spawn_blocking`.
//!
//! # Routes
//!
//! | Method and path | What |
//! | --- | --- |
//! | `GET /healthz` | `200` with uptime and the store's, broker's and journal's health, the data directory's disk (`disk`: level, free and total bytes; a low disk is listed in `warnings`), and the TSDB writer's state when it is on (`tsdb`: pending, dropped, last error, last success; never a reason for 503); `503` when not healthy (`problems` says why: the store does not answer, the broker is not connected or its listener does not answer, the last journal commit failed, the disk is full) |
//! | `GET /metrics` | Prometheus text ([`Metrics::render`]); without a token only as `[api] metrics` allows |
//! | `GET /api/v1/openapi.json` | the API described: an OpenAPI 3.1 document built from the route table (every route, its roles, query, body, answer and errors; decision 17) |
//! | `GET /api/v1/me` | whose token this is: `{"user","role","area_id","token_id"}` |
//! | `GET, POST /api/v1/users` | people (city-wide admin); create `{"name","role","area_id"}` → `201` with their first `token`, shown once |
//! | `POST /api/v1/users/{name}/tokens` | another token for them (`201` `{"token_id","token"}`) |
//! | `GET /api/v1/tokens` | `?user=`: tokens, newest first, never a secret |
//! | `DELETE /api/v1/tokens/{id}` | revoke a token (`200` with it) |
//! | `GET, POST /api/v1/areas` | list (`?parent=&level=`), create `{"id","parent_id","level","name"}` |
//! | `GET, PUT, DELETE /api/v1/areas/{id}` | one area; `PUT` `{"parent_id","level","name"}` |
//! | `GET /api/v1/areas/{id}/path` | the area and the areas above it (the escalation path) |
//! | `GET, POST /api/v1/workers` | list (`?area=`), create `{"name","area_id","phone","mqtt_topic","webhook_url","webhook_format","webhook_secret"}` (`json`, `dingtalk`, `wecom`; a DingTalk robot's signing secret, write-only; docs/alerts.md) |
//! | `GET, PUT, DELETE /api/v1/workers/{id}` | one worker |
//! | `GET, POST /api/v1/sites` | list (`?area=`, the area and below), create `{"name","address","owner_name","owner_phone","area_id"}` |
//! | `GET, PUT, DELETE /api/v1/sites/{id}` | one site |
//! | `GET, POST /api/v1/rooms` | list (`?site=`), create `{"site_id","name","tenant_name","tenant_phone"}` (the tenant is told like the owner: docs/alerts.md) |
//! | `GET, PUT, DELETE /api/v1/rooms/{id}` | one room |
//! | `GET, POST /api/v1/circuits` | list (`?site=`), create `{"site_id","parent_id","name"}` |
//! | `GET, PUT, DELETE /api/v1/circuits/{id}` | one circuit |
//! | `GET /api/v1/circuits/{id}/history` | readings of every channel of the devices on the circuit |
//! | `GET /api/v1/circuit-ranking` | `?area=&days=30&by=trend\|alarms&limit=100&format=csv`: the area's circuits ranked by their residual current's trend (mA/day) or alarm count |
//! | `GET /api/v1/circuits/{id}/leak-trace` | `?from=&to=&min_ma=`: where under the circuit the leak most likely sits, with the evidence (docs/utility.md) |
//! | `GET, POST /api/v1/devices` | list (`?state=&kind=&site=&area=&limit=&offset=`), register `{"id","kind","state","site_id","room_id","circuit_id","grid_id","encoding","config"}` (`state` defaults to `registered`: its messages are refused as `not_commissioned` until it is commissioned; the `201` shows the state) |
//! | `POST /api/v1/device-imports` | register many devices at once: a JSON array (1–5000) of the `POST /api/v1/devices` body, in **one** store transaction (one fsync), all or nothing; `201` `{"created","ids"}`; `422`/`409` name the refused items as `[index] "id": why`. (Not under `/devices/`, where any name is a device id.) |
//! | `GET, PUT, DELETE /api/v1/devices/{id}` | one device; `PUT` `{"kind","site_id","room_id","circuit_id","grid_id","encoding"}` (the binding; state and config have their own routes); `DELETE` only before it has history |
//! | `PUT /api/v1/devices/{id}/config` | set-points and intervals, in the protocol's config shape, checked against the configured [`Limits`]; the version is assigned |
//! | `POST /api/v1/devices/{id}/state` | `{"to","note"}`: registered → commissioned → in_service, back to commissioned for maintenance, → decommissioned, and decommissioned → registered |
//! | `POST /api/v1/devices/{id}/commands` | `{"cmd":"self_test"\|"silence"\|"reset_alarm"\|"reboot","ch":0}` → `202` |
//! | `GET /api/v1/devices/{id}/history` | `?ch=&from=&to=&step=&format=json\|csv` (or `Accept: text/csv`) |
//! | `GET /api/v1/pending` | devices that published without being registered, latest first |
//! | `DELETE /api/v1/pending/{id}` | forget a pending device |
//! | `GET /api/v1/episodes` | `?grid=&area=&device=&state=&category=&open=true&from=&to=&limit=&offset=`, newest first |
//! | `GET /api/v1/episodes/{id}` | one episode with its ticket steps |
//! | `POST /api/v1/episodes/{id}/ticket` | `{"to","note","override_reason"}`: move the ticket (forward only), as the caller; `verified` needs the data (409 says what fails) or an operator's `override_reason` (audited; 403 for other roles) |
//! | `GET /api/v1/audit` | `?who=&action=&subject=&from=&to=&limit=&offset=`, newest first |
//! | `PUT /api/v1/episodes/{id}/assignee` | `{"worker_id"}`: assign the ticket to a worker of its grid cell or an area above it (422 otherwise); `GET /api/v1/episodes/{id}` shows `assignee` `{"id","name"}` |
//! | `POST, GET /api/v1/episodes/{id}/evidence` | add a note and/or a photo (`multipart/form-data`: `note`, `photo` JPEG/PNG ≤ `[evidence] max_photo_bytes`; 413, 415, 422 refusals counted); list them (docs/alerts.md) |
//! | `GET /api/v1/evidence/{id}/photo` | a photo's bytes, within the caller's area |
//! | `GET /api/v1/hazards` | unresolved hazards grouped per site, oldest first (`?area=`; docs/alerts.md) |
//! | `GET /api/v1/live` | server-sent events from the journal: one per [`Alert`] (event name = its `what`) and per ticket move (`ticket`); id = the stream's cursor `{alerts}-{moves}`, resumed from `Last-Event-ID` or `?after=` without loss; `?area=` (subtree) `&device=` filter |
//!
//! Times are ms since the Unix epoch (`from`, `to`, every `*_ms`). A list's `limit` is 1–10 000.
//!
//! # Errors
//!
//! Every error is JSON `{"error": "..."}` saying what was wrong and what is expected:
//!
//! | Status | When |
//! | --- | --- |
//! | 400 | malformed JSON, a bad id in the path, a bad query parameter (unknown, wrong type, out of range) |
//! | 401 | no `Authorization: Bearer TOKEN`, or a token that is unknown, revoked or mistyped (checked before anything else of the request) |
//! | 403 | the token's role may not call this route (the message names the roles that may), or the thing lies outside the user's area (the message names both areas) |
//! | 404 | the resource named in the path does not exist; no such route |
//! | 405 | the route exists, the method does not |
//! | 409 | it exists already, it is still in use, an illegal ticket or device-state move, a stale config `version` |
//! | 413 | a body over 2 MB |
//! | 415 | a body without `Content-Type: application/json` |
//! | 422 | well-formed JSON that does not fit: unknown fields, wrong types, out-of-range set-points (the GB text), references to things that do not exist or do not fit together |
//! | 503 | the running pipeline could not be told (full or stopped): the change is stored and takes effect at the next start |
//! | 507 | the store's disk is full: nothing was written |
//! | 500 | anything else: logged with its cause, answered with a generic message |
//!
//! # Who
//!
//! Every `/api/v1` route needs `Authorization: Bearer TOKEN` and allows the roles of its line in
//! the route table (`api/routes.rs`), checked in one layer (`api/access.rs`); the user's area
//! scope limits what they see and change. The audit log's "who" is the token's user. The
//! matrix, the scopes and how tokens are made, listed, revoked and rotated: docs/security.md.

mod access;
mod channels;
mod circuits;
mod commissioning;
mod credentials;
mod device_config;
mod devices;
mod episodes;
mod error;
mod evidence;
mod hazards;
mod history;
mod live;
mod openapi;
mod registry;
mod reports;
mod resource;
mod routes;
pub mod tls;
mod users;
mod web;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::thresholds::Limits;

use crate::control::Control;
use crate::disk::{DiskLevel, DiskReport};
use crate::metrics::Metrics;
use crate::notify::alert::Alert;
use crate::store::{Store, StoreError, StoreHealth};

pub use error::ApiError;
use error::{Json, Subject};
pub(crate) use openapi::{Level, ProtocolId};

/// How long a change waits for room in the pipeline's control queue before giving up.
const CONTROL_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `/healthz` waits for the store to answer.
const HEALTH_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often an idle live stream sends a keep-alive comment.
const LIVE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What `/healthz` reports beyond the store's answer: set by the pipeline.
#[derive(Debug)]
pub struct Health {
    store_at_open: StoreHealth,
    broker_connected: AtomicBool,
    broker_listening: AtomicBool,
    journal_error: Mutex<Option<String>>,
    disk: Mutex<Option<DiskReport>>,
    /// The store's writer threads, by name: a stopped one is a problem.
    writers: Mutex<Vec<(&'static str, crate::store::WriterFate)>>,
}

impl Health {
    /// The health of a gateway whose store opened as `store_at_open`, not yet connected to its
    /// broker (so `/healthz` says 503 until [`set_broker_connected`](Self::set_broker_connected)).
    pub fn new(store_at_open: StoreHealth) -> Self {
        Self {
            store_at_open,
            broker_connected: AtomicBool::new(false),
            broker_listening: AtomicBool::new(true),
            journal_error: Mutex::new(None),
            disk: Mutex::new(None),
            writers: Mutex::new(Vec::new()),
        }
    }

    /// The latest sample of the data directory's disk.
    pub fn set_disk(&self, report: DiskReport) {
        *self.disk.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
    }

    /// The latest sample of the data directory's disk, if one was taken.
    pub fn disk(&self) -> Option<DiskReport> {
        self.disk
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the store's open found and did.
    pub fn store_at_open(&self) -> &StoreHealth {
        &self.store_at_open
    }

    /// Whether the gateway's broker connection is up.
    pub fn set_broker_connected(&self, connected: bool) {
        self.broker_connected.store(connected, Ordering::Relaxed);
    }

    /// Whether the gateway's broker connection is up.
    pub fn broker_connected(&self) -> bool {
        self.broker_connected.load(Ordering::Relaxed)
    }

    /// Whether the managed broker's listener answers devices (always true with an external
    /// broker, which the gateway does not watch).
    pub fn set_broker_listening(&self, listening: bool) {
        self.broker_listening.store(listening, Ordering::Relaxed);
    }

    /// Whether the managed broker's listener answers.
    pub fn broker_listening(&self) -> bool {
        self.broker_listening.load(Ordering::Relaxed)
    }

    /// Why the journal cannot be written (e.g. the disk is full: devices are not acknowledged),
    /// or `None` once it can again.
    pub fn set_journal_error(&self, error: Option<String>) {
        *self
            .journal_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Reports the store's `name` writer thread (`/healthz`: a problem once it has stopped).
    pub fn watch_writer(&self, name: &'static str, fate: crate::store::WriterFate) {
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, fate));
    }

    /// The store's writer threads that stopped, and why.
    pub fn stopped_writers(&self) -> Vec<String> {
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(name, fate)| {
                fate.get()
                    .map(|why| format!("{name} writer stopped: {why}"))
            })
            .collect()
    }

    /// Why the journal cannot be written, if it cannot.
    pub fn journal_error(&self) -> Option<String> {
        self.journal_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the API's handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// The gateway's metrics (rendered at `/metrics`).
    pub metrics: Arc<Metrics>,
    /// Changes the running pipeline must act on.
    pub control: mpsc::Sender<Control>,
    /// Alerts as they are published: each `/api/v1/live` client subscribes.
    pub live: broadcast::Sender<Arc<Alert>>,
    /// Wakes the live streams when a ticket moves (they read the move from the journal).
    pub ticket_moves: broadcast::Sender<crate::model::EpisodeId>,
    /// The set-point ranges device configurations are checked against.
    pub limits: Limits,
    /// The hazard workflow's settings (verification by data).
    pub workflow: crate::workflow::WorkflowConfig,
    /// When the gateway started (uptime in `/healthz`).
    pub started: Instant,
    /// Broker and journal health, set by the pipeline.
    pub health: Arc<Health>,
    /// Told when devices' credentials or people's tokens change, so the broker's accounts
    /// are reloaded.
    pub accounts: crate::broker::mosquitto::AccountsChanged,
    /// Cancelled when serving stops: live streams end, so a graceful shutdown is not held up
    /// by clients that never hang up. [`serve`] cancels it.
    pub closing: CancellationToken,
    /// Whether `/metrics` answers without a token (`[api] metrics`; default: only when the API
    /// listens on loopback). False here until set.
    pub metrics_open: bool,
    /// Whether the API is served over TLS (the web UI's cookies are then `Secure`).
    pub https: bool,
    /// The web UI's refused logins per address (its rate limit).
    pub(crate) web_logins: Arc<web::LoginLimiter>,
    /// Commissioning: the record-signing key, the test watcher's wake-up, the settings.
    pub commissioning: crate::commissioning::Desk,
    /// Where photo evidence is kept, and its size limit (`[evidence]`).
    pub evidence: crate::evidence::files::EvidenceDir,
}

impl ApiState {
    /// The state of an API over `store`, started now.
    pub fn new(
        store: Store,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        control: mpsc::Sender<Control>,
        live: broadcast::Sender<Arc<Alert>>,
        limits: Limits,
    ) -> Self {
        // Beside the store file, as `[evidence]` puts it in the data directory.
        let evidence = crate::evidence::files::EvidenceDir::new(
            store
                .path()
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("evidence"),
            crate::evidence::DEFAULT_MAX_PHOTO_BYTES,
        );
        Self {
            store,
            metrics,
            control,
            live,
            ticket_moves: broadcast::channel(64).0,
            limits,
            workflow: crate::workflow::WorkflowConfig::default(),
            started: Instant::now(),
            health,
            accounts: crate::broker::mosquitto::AccountsChanged::default(),
            closing: CancellationToken::new(),
            metrics_open: false,
            https: false,
            web_logins: Arc::default(),
            commissioning: crate::commissioning::Desk::ephemeral(),
            evidence,
        }
    }
}

/// The API's routes over `state`: `/healthz`, `/metrics`, and every `/api/v1` route of the
/// route table (`api/routes.rs`), each behind the access check of its line. See the
/// [module docs](self).
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new().route("/healthz", get(healthz));
    router = if state.metrics_open {
        router.route("/metrics", get(metrics))
    } else {
        router.route(
            "/metrics",
            get(metrics).route_layer(axum::middleware::from_fn_with_state(
                (
                    state.clone(),
                    access::Rule {
                        method: axum::http::Method::GET,
                        path: "/metrics",
                        roles: access::Roles::ANY,
                    },
                ),
                access::authorize,
            )),
        )
    };
    for r in routes::routes() {
        let layer = axum::middleware::from_fn_with_state(
            (state.clone(), r.rule.clone()),
            access::authorize,
        );
        router = router.route(r.rule.path, r.handler.route_layer(layer));
    }
    router
        .merge(web::router(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then stops taking connections,
/// ends the live streams and waits for requests in flight.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let closing = state.closing.clone();
    let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}

/// [`serve`] over TLS ([`tls::TlsListener`]).
///
/// # Errors
/// The listener's address cannot be read.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let closing = state.closing.clone();
    let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(tls::TlsListener::new(listener, config)?, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}

pub(crate) use crate::clock::now_ms;

/// The address of the client of a request (the web UI's login rate limit counts by it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Runs a store call on the blocking pool; its error is mapped with `subject` (the resource
/// named in the path, if any: unknown → 404 for it, 422 for any other reference).
pub(crate) async fn blocking<T, F>(state: &ApiState, subject: Subject, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(result) => result.map_err(|e| ApiError::from_store(e, &subject)),
        Err(join) => Err(ApiError::internal("a store task failed", &join)),
    }
}

/// Tells the running pipeline about a change that is already stored.
pub(crate) async fn tell_pipeline(state: &ApiState, control: Control) -> Result<(), ApiError> {
    use tokio::sync::mpsc::error::SendTimeoutError;
    let what = format!("{control:?}");
    match state
        .control
        .send_timeout(control, CONTROL_SEND_TIMEOUT)
        .await
    {
        Ok(()) => Ok(()),
        Err(SendTimeoutError::Timeout(_)) => {
            tracing::error!(control = %what, "the pipeline's control queue stayed full");
            Err(ApiError::unavailable(
                "the change is stored, but the running gateway is too busy to take it now: \
                 it takes effect at the next start, or retry the request",
            ))
        }
        Err(SendTimeoutError::Closed(_)) => {
            tracing::error!(control = %what, "the pipeline is not running");
            Err(ApiError::unavailable(
                "the change is stored, but the gateway's pipeline is not running: it takes \
                 effect at the next start",
            ))
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see the API's route list (/api/v1/...)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take this method",
    )
}

#[derive(Serialize)]
struct HealthReport {
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
    store: StoreReport,
    broker: BrokerReport,
    journal: JournalReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk: Option<DiskReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tsdb: Option<crate::tsdb::TsdbStatus>,
    problems: Vec<String>,
    /// What is not a problem yet (e.g. the disk is low).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StoreReport {
    ok: bool,
    path: String,
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered_at_open: Option<String>,
}

#[derive(Serialize)]
struct BrokerReport {
    connected: bool,
}

#[derive(Serialize)]
struct JournalReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn healthz(State(state): State<ApiState>) -> Response {
    let mut problems = Vec::new();
    let store = state.store.clone();
    let check = tokio::time::timeout(
        HEALTH_STORE_TIMEOUT,
        tokio::task::spawn_blocking(move || store.max_episode_id()),
    )
    .await;
    let store_ok = match check {
        Ok(Ok(Ok(_))) => true,
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            problems.push(format!("store: {e}"));
            false
        }
        Ok(Err(join)) => {
            tracing::error!(error = %join, "health check: the store task failed");
            problems.push("store: the check failed".to_string());
            false
        }
        Err(_) => {
            problems.push(format!(
                "store: no answer within {} s",
                HEALTH_STORE_TIMEOUT.as_secs()
            ));
            false
        }
    };
    let connected = state.health.broker_connected();
    if !connected {
        problems.push("broker: not connected".to_string());
    }
    if !state.health.broker_listening() {
        problems.push("broker: the managed broker's listener does not answer".to_string());
    }
    let journal_error = state.health.journal_error();
    if let Some(e) = &journal_error {
        problems.push(format!("journal: {e}"));
    }
    problems.extend(
        state
            .health
            .stopped_writers()
            .into_iter()
            .map(|w| format!("store: {w}")),
    );
    let mut warnings = Vec::new();
    let disk = state.health.disk();
    if let Some(d) = &disk {
        let free = format!(
            "{} MiB free of {} MiB on {}",
            d.free_bytes >> 20,
            d.total_bytes >> 20,
            d.path.display()
        );
        match d.level {
            DiskLevel::Full => problems.push(format!("disk: full, {free}")),
            DiskLevel::Low => warnings.push(format!("disk: low, {free}")),
            DiskLevel::Ok => {}
        }
        if let Some(e) = &d.error {
            warnings.push(format!("disk: {e}"));
        }
    }
    let at_open = state.health.store_at_open();
    let healthy = problems.is_empty();
    let report = HealthReport {
        status: if healthy { "ok" } else { "unhealthy" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
        store: StoreReport {
            ok: store_ok,
            path: at_open.path.display().to_string(),
            schema_version: at_open.schema_version,
            recovered_at_open: at_open.recovery.as_ref().map(ToString::to_string),
        },
        broker: BrokerReport { connected },
        journal: JournalReport {
            error: journal_error,
        },
        // The TSDB writer, when on: never a problem for /healthz (alarms do not depend on it).
        disk,
        tsdb: Some(state.metrics.tsdb().status()).filter(|t| t.enabled),
        problems,
        warnings,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
