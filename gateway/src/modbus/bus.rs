//! The I/O shell of one bus: runs a [`Poller`] over one connection, one request at a time,
//! each under a timeout, and hands what the poller makes to the pipeline.
//!
//! tokio-modbus has no request timeout of its own and a reply that comes after one would be
//! read as the answer to the next request on the same context, so every request is wrapped
//! in [`tokio::time::timeout`] and any timeout, transport error or stale reply drops the
//! context: the next request opens a new connection (TCP) or port (RTU, discarding stray
//! bytes).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::slave::{Slave, SlaveContext};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::DeviceId;
use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::message::{Config as DeviceConfig, Message};
use firegrid_protocols::regmap::RegisterKind;
use firegrid_protocols::topic::{DeviceTopic, Topic};

use super::poller::{DeviceSchedule, Input, Op, Outcome, Output, Poller, PollerConfig, Request};
use super::stats::{ModbusStats, RequestResult};
use crate::broker::Incoming;
use crate::clock::now_ms;

/// Where a bus is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Modbus TCP at `host:port`.
    Tcp(String),
    /// Modbus RTU on a serial port.
    Rtu {
        /// The port.
        path: PathBuf,
        /// Baud rate.
        baud: u32,
    },
}

impl Link {
    /// The bus's name in metrics and logs: `tcp:HOST:PORT` or `rtu:PATH`.
    pub fn name(&self) -> String {
        match self {
            Self::Tcp(a) => format!("tcp:{a}"),
            Self::Rtu { path, .. } => format!("rtu:{}", path.display()),
        }
    }

    /// Opens the connection; `again` after a failure (RTU then lets a late reply arrive and
    /// discards it, see [`super::rtu::open`]).
    ///
    /// # Errors
    /// It cannot be opened within `timeout`.
    pub async fn open(&self, timeout: Duration, again: bool) -> io::Result<Context> {
        match self {
            Self::Tcp(a) => super::tcp::connect(a, timeout).await,
            Self::Rtu { path, baud } => {
                let quiet = if again { timeout } else { Duration::ZERO };
                super::rtu::open(path, *baud, quiet).await
            }
        }
    }

    /// The silence to leave before each request (RTU's 3.5 characters; none on TCP).
    pub fn gap(&self) -> Duration {
        match self {
            Self::Tcp(_) => Duration::ZERO,
            Self::Rtu { baud, .. } => super::rtu::inter_frame_gap(*baud),
        }
    }
}

/// One bus to poll.
#[derive(Debug, Clone)]
pub struct Bus {
    /// Where.
    pub link: Link,
    /// The devices on it.
    pub devices: Vec<DeviceSchedule>,
    /// Offline and heartbeat rules.
    pub poller: PollerConfig,
    /// Deadline of one request.
    pub timeout: Duration,
}

/// Where a bus hands its messages: the pipeline's [`UplinkSender`](crate::broker::UplinkSender)
/// (events ahead of telemetry, as for MQTT devices), or a plain channel in tests.
pub trait Sink: Send + Sync + 'static {
    /// Queues `m`, waiting for room; `false` once the receiver is gone.
    fn send(&self, m: Incoming) -> impl Future<Output = bool> + Send;
}

impl Sink for mpsc::Sender<Incoming> {
    async fn send(&self, m: Incoming) -> bool {
        mpsc::Sender::send(self, m).await.is_ok()
    }
}

impl Sink for crate::broker::UplinkSender {
    async fn send(&self, m: Incoming) -> bool {
        crate::broker::UplinkSender::send(self, m).await.is_ok()
    }
}

/// Polls `bus` until `cancel`, handing messages to `sink` and applying configurations from
/// `configs`.
///
/// # Cancel safety
/// The loop's `select!`s wait on `cancel`, a configuration, a sleep, or one request; a request
/// cancelled mid-way drops its connection with it, which is what a timeout does too.
pub async fn run(
    bus: Bus,
    sink: impl Sink,
    mut configs: mpsc::Receiver<(DeviceId, DeviceConfig)>,
    stats: Arc<ModbusStats>,
    cancel: CancellationToken,
) {
    let name = bus.link.name();
    let counters = stats.bus(&name);
    let mut poller = Poller::new(bus.devices.clone(), bus.poller, now_ms());
    let mut ctx: Option<Context> = None;
    let gap = bus.link.gap();
    let mut last_frame = Instant::now();
    let mut opened_before = false;
    tracing::info!(bus = %name, devices = bus.devices.len(), "polling Modbus bus");
    loop {
        if let Some(req) = poller.next_request(now_ms()) {
            if ctx.is_none() {
                counters.reconnected();
                let again = std::mem::replace(&mut opened_before, true);
                ctx = match bus.link.open(bus.timeout, again).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::debug!(bus = %name, "cannot connect: {e}");
                        None
                    }
                };
            }
            let outcome = match ctx.as_mut() {
                None => Outcome::Transport,
                Some(c) => {
                    let since = last_frame.elapsed();
                    if since < gap {
                        tokio::time::sleep(gap.saturating_sub(since)).await;
                    }
                    let started = Instant::now();
                    let outcome = tokio::select! {
                        () = cancel.cancelled() => break,
                        o = execute(c, &req, bus.timeout) => o,
                    };
                    last_frame = Instant::now();
                    stats.latency(started.elapsed());
                    outcome
                }
            };
            if ctx.is_some() {
                counters.request(match outcome {
                    Outcome::Words(_) | Outcome::Written => RequestResult::Ok,
                    Outcome::Exception(_) => RequestResult::Exception,
                    Outcome::Timeout => RequestResult::Timeout,
                    Outcome::Transport => RequestResult::Garbage,
                });
            }
            tracing::trace!(bus = %name, ?req, ?outcome, "request done");
            let out = poller.handle(
                Input::Done {
                    id: req.id,
                    outcome,
                },
                now_ms(),
            );
            if !act(out, &mut ctx, &sink, &name).await {
                break;
            }
            continue;
        }
        let wait = poller
            .next_deadline()
            .map_or(Duration::from_secs(3600), |t| {
                Duration::from_millis(t.saturating_sub(now_ms()))
            });
        tokio::select! {
            () = cancel.cancelled() => break,
            Some((device, config)) = configs.recv() => {
                tracing::debug!(bus = %name, %device, version = config.version, "writing set-points");
                let out = poller.handle(Input::Configure { device, config }, now_ms());
                if !act(out, &mut ctx, &sink, &name).await {
                    break;
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(bus = %name, "Modbus bus stopped");
}

/// Carries out the poller's outputs; `false` once the pipeline is gone.
async fn act(out: Vec<Output>, ctx: &mut Option<Context>, sink: &impl Sink, bus: &str) -> bool {
    for o in out {
        match o {
            Output::Reconnect => *ctx = None,
            Output::Uplink { device, message } => {
                if let Message::Event(e) = &message
                    && let firegrid_protocols::message::EventKind::ConfigRefused { version, reason } =
                        &e.kind
                {
                    tracing::warn!(bus, %device, version, %reason, "set-points not written");
                }
                let Some(m) = to_incoming(&device, &message) else {
                    continue;
                };
                // Bounded: a slow pipeline slows polling, nothing is dropped.
                if !sink.send(m).await {
                    return false;
                }
            }
            Output::Exception { device, code } => {
                tracing::warn!(bus, %device, code, "Modbus exception");
            }
            Output::UnknownStateCode {
                device,
                channel,
                code,
            } => {
                tracing::warn!(bus, %device, channel, code, "state code not in the profile");
            }
        }
    }
    true
}

/// A message from a polled device as the pipeline takes MQTT messages.
pub fn to_incoming(device: &DeviceId, message: &Message) -> Option<Incoming> {
    let kind = match message {
        Message::Telemetry(_) => DeviceTopic::Telemetry,
        Message::Event(_) => DeviceTopic::Event,
        Message::Status(_) => DeviceTopic::Status,
        _ => return None,
    };
    let mut buf = vec![0u8; codec::MAX_PAYLOAD];
    let n = codec::encode(message, Encoding::Binary, &mut buf).ok()?;
    buf.truncate(n);
    Some(Incoming::polled(
        Topic::device(device, kind).to_string(),
        buf.into(),
    ))
}

/// Sends one request and waits for its outcome, at most `timeout` (for [`super::probe`]).
pub(crate) async fn execute_once(c: &mut Context, req: &Request, timeout: Duration) -> Outcome {
    execute(c, req, timeout).await
}

/// Sends one request and waits for its outcome, at most `timeout`.
async fn execute(c: &mut Context, req: &Request, timeout: Duration) -> Outcome {
    c.set_slave(Slave(req.slave));
    let result = tokio::time::timeout(timeout, async {
        match &req.op {
            Op::Read(b) => match b.kind {
                RegisterKind::Holding => c
                    .read_holding_registers(b.start, b.count)
                    .await
                    .map(|r| r.map(Outcome::Words)),
                RegisterKind::Input => c
                    .read_input_registers(b.start, b.count)
                    .await
                    .map(|r| r.map(Outcome::Words)),
                RegisterKind::Coil => c
                    .read_coils(b.start, b.count)
                    .await
                    .map(|r| r.map(|bits| bits_to_words(&bits, b.count))),
                RegisterKind::DiscreteInput => c
                    .read_discrete_inputs(b.start, b.count)
                    .await
                    .map(|r| r.map(|bits| bits_to_words(&bits, b.count))),
            },
            Op::Write(w) => {
                let r = if w.kind == RegisterKind::Coil {
                    c.write_single_coil(w.address, w.words.first().is_some_and(|v| *v != 0))
                        .await
                } else if let [one] = w.words.as_slice() {
                    c.write_single_register(w.address, *one).await
                } else {
                    c.write_multiple_registers(w.address, &w.words).await
                };
                r.map(|r| r.map(|()| Outcome::Written))
            }
        }
    })
    .await;
    match result {
        Err(_) => Outcome::Timeout,
        Ok(Err(_)) => Outcome::Transport,
        Ok(Ok(Err(code))) => Outcome::Exception(u8::from(code)),
        Ok(Ok(Ok(o))) => o,
    }
}

fn bits_to_words(bits: &[bool], count: u16) -> Outcome {
    Outcome::Words(
        bits.iter()
            .take(usize::from(count))
            .map(|b| u16::from(*b))
            .collect(),
    )
}
