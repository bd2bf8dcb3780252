//! The uplink's I/O: the TCP connection to the centre, the outbox follower, the uplink
//! journal, the clock; all decisions are the [`Session`]'s.
//!
//! The follower reads the gateway's outbox in id order from its mark (one MQTT row per alert,
//! so every alert once): woken by the live-alert broadcast the pipeline sends after each
//! journal commit, and by a 1 s sweep (a missed wake-up, a restart). Each alert the centre
//! must hear of becomes a frame journaled with its serial number in `uplink.db` before it is
//! sent; it leaves that journal only when the centre confirms it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use firegrid_protocols::gb26875::adu::{self, System};
use firegrid_protocols::gb26875::frame::Address;

use super::config::Gb26875Config;
use super::reports;
use super::session::{Input, Output, Session, SessionConfig};
use super::stats::{FrameEvent, UplinkStats};
use super::store::{NewFrame, UplinkStore, UplinkStoreError};
use crate::clock::now_ms;
use crate::notify::alert::Alert;
use crate::store::{NotifyChannel, Store};

/// How long one write to the centre may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Alerts read from the outbox at a time.
const FOLLOW_BATCH: u32 = 256;
/// The first wait before connecting again, ms (doubling to `reconnect_max_ms`).
const RECONNECT_MIN_MS: u64 = 200;

/// Why the uplink could not start.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// A setting is wrong.
    #[error("[uplink.gb26875]: {0}")]
    Config(String),
    /// Its journal cannot be opened.
    #[error(transparent)]
    Store(#[from] UplinkStoreError),
    /// The gateway's store cannot be read.
    #[error("store: {0}")]
    Main(#[from] crate::store::StoreError),
}

/// The running uplink's parts.
struct Shell {
    cfg: Gb26875Config,
    session: Session,
    db: UplinkStore,
    store: Store,
    stats: Arc<UplinkStats>,
    writer: Option<OwnedWriteHalf>,
    /// The connection failed; the loop drops its reading half.
    dead: bool,
    saved_serial: u16,
}

/// Opens the uplink's journal and returns the task that runs it until `cancel`.
///
/// # Errors
/// [`UplinkError`]: a bad setting, or a journal that cannot be opened.
pub fn start(
    cfg: &Gb26875Config,
    data_dir: &Path,
    store: Store,
    live: &broadcast::Sender<Arc<Alert>>,
    stats: Arc<UplinkStats>,
    cancel: CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, UplinkError> {
    cfg.check().map_err(UplinkError::Config)?;
    let profile = cfg.profile().map_err(UplinkError::Config)?;
    let db = tokio::task::block_in_place(|| UplinkStore::open(&data_dir.join("uplink.db")))?;
    if db.mark()?.is_none() {
        // First use: report from now on, not the history of the outbox.
        db.set_mark(store.max_notification_seq()?)?;
    }
    let version = (
        env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
    );
    let saved_serial = db.next_serial()?;
    let mut session = Session::new(
        SessionConfig {
            profile,
            own: Address::from_u64(cfg.own_address),
            centre: Address::from_u64(cfg.centre_address),
            utc_offset_min: cfg.utc_offset_min,
            confirm_timeout_ms: cfg.confirm_timeout_ms,
            tries: cfg.tries,
            heartbeat_ms: cfg.heartbeat_s.saturating_mul(1000),
            system: System {
                kind: cfg.mapping.system_type,
                address: cfg.mapping.system_address,
            },
            version,
        },
        saved_serial,
    );
    let pending = db.unconfirmed()?;
    if !pending.is_empty() {
        tracing::info!(
            frames = pending.len(),
            "uplink: unconfirmed frames from before the restart will be sent first"
        );
    }
    let now = now_ms();
    for j in pending {
        session.handle(Input::Journaled(j), now);
    }
    stats.set_enabled();
    stats.set_unconfirmed(session.unconfirmed());
    let shell = Shell {
        cfg: cfg.clone(),
        session,
        db,
        store,
        stats,
        writer: None,
        dead: false,
        saved_serial,
    };
    Ok(shell.run(live.subscribe(), cancel))
}

impl Shell {
    /// # Cancel safety
    /// Every branch of the `select!` is cancel-safe: `recv`, `tick`, `sleep_until`, and
    /// `read` on a TCP half (no bytes are lost when another branch wins).
    async fn run(mut self, mut live: broadcast::Receiver<Arc<Alert>>, cancel: CancellationToken) {
        let mut reader: Option<OwnedReadHalf> = None;
        let mut backoff_ms = RECONNECT_MIN_MS;
        let mut connect_at = tokio::time::Instant::now();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let analog_every = Duration::from_secs(self.cfg.analog_interval_s.max(1));
        let mut analogs =
            tokio::time::interval_at(tokio::time::Instant::now() + analog_every, analog_every);
        let mut buf = vec![0u8; 4096];
        tracing::info!(centre = %self.cfg.address, profile = %self.cfg.profile, "uplink: GB/T 26875.3 reporting on");
        loop {
            if self.dead {
                // The connection failed (a write, the centre, a link fault): drop it and
                // connect again after the backoff.
                self.dead = false;
                reader = None;
                connect_at =
                    tokio::time::Instant::now() + Duration::from_millis(jitter(backoff_ms));
            }
            let deadline = self.session.next_deadline().map(|t| {
                tokio::time::Instant::now() + Duration::from_millis(t.saturating_sub(now_ms()))
            });
            let input_bytes: Option<usize>;
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                r = live.recv() => {
                    if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    self.follow().await;
                    continue;
                }
                r = async { reader.as_mut()?.read(&mut buf).await.ok() }, if reader.is_some() => {
                    input_bytes = Some(r.unwrap_or(0));
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.apply(Input::Tick).await;
                    continue;
                }
                () = tokio::time::sleep_until(connect_at), if reader.is_none() => {
                    match self.connect().await {
                        Some((r, w)) => {
                            self.dead = false;
                            reader = Some(r);
                            self.writer = Some(w);
                            backoff_ms = RECONNECT_MIN_MS;
                            self.stats.set_connected(true);
                            tracing::info!(centre = %self.cfg.address, "uplink: connected to the centre");
                            self.apply(Input::Connected).await;
                        }
                        None => {
                            self.apply(Input::Disconnected).await;
                            backoff_ms = (backoff_ms * 2).min(self.cfg.reconnect_max_ms.max(RECONNECT_MIN_MS));
                        }
                    }
                    connect_at = tokio::time::Instant::now() + Duration::from_millis(jitter(backoff_ms));
                    continue;
                }
                _ = sweep.tick() => {
                    self.follow().await;
                    continue;
                }
                _ = analogs.tick(), if self.cfg.analog_interval_s > 0 => {
                    self.analogs().await;
                    continue;
                }
            }
            match input_bytes {
                Some(0) | None => {
                    tracing::warn!(centre = %self.cfg.address, "uplink: the centre closed the connection");
                    self.disconnect();
                    self.apply(Input::Disconnected).await;
                }
                Some(n) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    self.apply(Input::Bytes(&data)).await;
                }
            }
        }
        self.persist_serial();
    }

    async fn connect(&self) -> Option<(OwnedReadHalf, OwnedWriteHalf)> {
        let timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        match tokio::time::timeout(timeout, TcpStream::connect(&self.cfg.address)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Some(s.into_split())
            }
            Ok(Err(e)) => {
                tracing::warn!(centre = %self.cfg.address, "uplink: cannot connect to the centre: {e}");
                None
            }
            Err(_) => {
                tracing::warn!(centre = %self.cfg.address, "uplink: connecting to the centre timed out after {timeout:?}");
                None
            }
        }
    }

    /// Drops the connection (the loop lets go of its reading half).
    fn disconnect(&mut self) {
        self.writer = None;
        self.dead = true;
        self.stats.set_connected(false);
    }

    /// Feeds the session and carries out what it says.
    async fn apply(&mut self, input: Input<'_>) {
        let now = now_ms();
        let outputs = self.session.handle(input, now);
        for o in outputs {
            match o {
                Output::Send(bytes) => {
                    let Some(w) = self.writer.as_mut() else {
                        continue;
                    };
                    match tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&bytes)).await {
                        Ok(Ok(())) => self.stats.frame(FrameEvent::Sent),
                        Ok(Err(e)) => {
                            tracing::warn!("uplink: write to the centre failed: {e}");
                            self.disconnect();
                            let _ = self.session.handle(Input::Disconnected, now);
                        }
                        Err(_) => {
                            tracing::warn!("uplink: write to the centre timed out");
                            self.disconnect();
                            let _ = self.session.handle(Input::Disconnected, now);
                        }
                    }
                }
                Output::Confirmed { id, serial } => {
                    self.stats.frame(FrameEvent::Confirmed);
                    tracing::info!(serial, "uplink: frame confirmed by the centre");
                    if let Err(e) = tokio::task::block_in_place(|| self.db.confirm(id, now)) {
                        // Unmarked: sent again after a restart, with the same serial number.
                        tracing::warn!("uplink: confirmation not journaled: {e}");
                    }
                }
                Output::Retransmitted { serial, attempt } => {
                    self.stats.frame(FrameEvent::Retransmitted);
                    tracing::warn!(
                        serial,
                        attempt,
                        "uplink: no confirmation from the centre, frame sent again"
                    );
                }
                Output::Denied { serial } => {
                    self.stats.frame(FrameEvent::Denied);
                    tracing::warn!(serial, "uplink: the centre denied a frame");
                }
                Output::LinkFault(true) => {
                    self.stats.set_link_fault(true);
                    tracing::error!(centre = %self.cfg.address, "uplink: LINK TO THE CENTRE FAULTY: frames are kept and sent when it works again");
                }
                Output::LinkFault(false) => {
                    self.stats.set_link_fault(false);
                    tracing::info!(centre = %self.cfg.address, "uplink: link to the centre works again");
                }
                Output::Reconnect => {
                    self.disconnect();
                }
                Output::Refused(reason) => {
                    self.stats.refused(reason);
                    tracing::debug!(reason, "uplink: refused a frame from the centre");
                }
                Output::ClockOffset(ms) => {
                    self.stats.set_clock_offset_ms(ms);
                    tracing::info!(
                        offset_ms = ms,
                        "uplink: clock sync from the centre (recorded; the gateway's clock is not moved)"
                    );
                }
                Output::DutyCheck { timeout_min } => {
                    self.stats.duty_check();
                    tracing::warn!(
                        timeout_min,
                        "uplink: duty check (查岗) from the centre: confirmed"
                    );
                }
                Output::Initialised => {
                    tracing::info!("uplink: the centre initialised the transmission device");
                }
            }
        }
        self.stats.set_unconfirmed(self.session.unconfirmed());
        self.persist_serial();
    }

    fn persist_serial(&mut self) {
        let next = self.session.next_serial();
        if next != self.saved_serial {
            match tokio::task::block_in_place(|| self.db.set_next_serial(next)) {
                Ok(()) => self.saved_serial = next,
                Err(e) => tracing::warn!("uplink: serial counter not kept: {e}"),
            }
        }
    }

    /// Reads the outbox from the mark: each new alert the centre must hear of becomes a
    /// journaled frame, then goes to the session.
    async fn follow(&mut self) {
        loop {
            let Ok(Some(mark)) = tokio::task::block_in_place(|| self.db.mark()) else {
                return;
            };
            let rows = match tokio::task::block_in_place(|| {
                self.store
                    .notifications_after(mark, NotifyChannel::Mqtt, FOLLOW_BATCH)
            }) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("uplink: outbox not readable: {e}");
                    return;
                }
            };
            let Some(last) = rows.last().map(|(seq, _)| *seq) else {
                return;
            };
            let now = now_ms();
            let mut frames = Vec::new();
            for (_, n) in &rows {
                let Ok(alert) = serde_json::from_value::<Alert>(n.fields.payload.clone()) else {
                    tracing::warn!(
                        notification = n.id,
                        "uplink: an outbox alert that does not parse, skipped"
                    );
                    continue;
                };
                match tokio::task::block_in_place(|| {
                    reports::alert_adu(&self.store, &self.db, &self.cfg, &alert)
                }) {
                    Ok(Some(adu)) => {
                        let serial = self.session.take_serial();
                        let bytes = self.session.send_frame(serial, &adu, now);
                        frames.push(NewFrame {
                            notification_id: n.id,
                            serial,
                            bytes,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Without its journal entry the alert would be lost for the centre:
                        // stop here and try again from the same mark.
                        tracing::warn!("uplink: {e}; will retry");
                        return;
                    }
                }
            }
            let next_serial = self.session.next_serial();
            match tokio::task::block_in_place(|| self.db.append(&frames, last, next_serial, now)) {
                Ok(rows) => {
                    self.saved_serial = next_serial;
                    for j in rows {
                        tracing::info!(serial = j.serial, "uplink: frame journaled for the centre");
                        self.apply(Input::Journaled(j)).await;
                    }
                }
                Err(e) => {
                    tracing::error!("uplink: frames not journaled (will retry): {e}");
                    return;
                }
            }
            if rows.len() < FOLLOW_BATCH as usize {
                return;
            }
        }
    }

    /// The latest readings of every watched device as type-3 analog values (not journaled:
    /// a reading that cannot go now is stale by the next round).
    async fn analogs(&mut self) {
        if self.writer.is_none() {
            return;
        }
        let now = now_ms();
        // The latest reading of the last interval (at least a minute: devices report slower
        // than a short interval).
        let window = self.cfg.analog_interval_s.saturating_mul(1000).max(60_000);
        let objects = tokio::task::block_in_place(|| {
            reports::latest_readings(&self.store, &self.db, &self.cfg, now, window)
        });
        for chunk in objects.chunks(63) {
            let mut buf = [0u8; 1024];
            if let Ok(n) = adu::encode(adu::kind::ANALOG_VALUE, chunk, &mut buf) {
                let data = buf.get(..n).unwrap_or_default().to_vec();
                self.apply(Input::Transient(data)).await;
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Full jitter on a backoff, at least half of it.
fn jitter(ms: u64) -> u64 {
    ms / 2 + fastrand::u64(0..=ms / 2)
}
