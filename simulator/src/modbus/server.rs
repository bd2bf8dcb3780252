//! Modbus TCP and RTU servers holding simulated monitors by slave id, with fault injection.
//!
//! One [`ModbusSim`] is one endpoint: a TCP listener (a monitor with an Ethernet port, or a
//! serial-to-Ethernet converter with several monitors behind it) or one serial line (RTU, e.g.
//! one end of a `socat` PTY pair). Each slave can be told to misbehave ([`Fault`]): not
//! answer, answer late, answer an exception, or answer garbage (TCP). Stopping is by drop or
//! [`ModbusSim::stop`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::regmap::RegisterKind;

use super::monitor::SimMonitor;

/// How a slave misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// It answers correctly.
    #[default]
    None,
    /// It never answers.
    NoReply,
    /// It answers correctly, after this long.
    Late(Duration),
    /// It answers this exception code to every request.
    Exception(u8),
    /// It answers a frame with a wrong protocol id and scrambled data (TCP only; on RTU it
    /// does not answer).
    Garbage,
}

/// One slave: a monitor, its fault, and how many requests it got.
#[derive(Debug, Clone)]
pub struct SimSlave {
    /// The monitor.
    pub monitor: SimMonitor,
    /// Its fault now.
    pub fault: Fault,
    /// Requests addressed to it so far.
    pub requests: u64,
}

/// The slaves of an endpoint, shared between the server and whoever drives the scenario.
#[derive(Debug, Clone, Default)]
pub struct Slaves(Arc<Mutex<BTreeMap<u8, SimSlave>>>);

impl Slaves {
    /// Slaves from `(slave id, monitor)` pairs.
    pub fn new(monitors: impl IntoIterator<Item = (u8, SimMonitor)>) -> Self {
        Self(Arc::new(Mutex::new(
            monitors
                .into_iter()
                .map(|(id, monitor)| {
                    (
                        id,
                        SimSlave {
                            monitor,
                            fault: Fault::None,
                            requests: 0,
                        },
                    )
                })
                .collect(),
        )))
    }

    /// Runs `f` on slave `id`, if it exists.
    pub fn with<R>(&self, id: u8, f: impl FnOnce(&mut SimSlave) -> R) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&id)
            .map(f)
    }

    /// Sets slave `id`'s fault.
    pub fn set_fault(&self, id: u8, fault: Fault) {
        self.with(id, |s| s.fault = fault);
    }
}

/// Model time: wall time since the server started, scaled.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    scale: f64,
}

impl Clock {
    fn model_ms(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() * 1000.0 * self.scale) as u64
    }
}

type Answer = Result<Option<Response>, ExceptionCode>;

#[derive(Clone)]
struct SimService {
    slaves: Slaves,
    clock: Clock,
    /// Set to make the connection's next frame garbage (TCP).
    garbage: Option<Arc<AtomicBool>>,
    /// Whether an unknown unit id gets exception 0x0B (a TCP gateway) or silence (RTU).
    tcp: bool,
}

impl tokio_modbus::server::Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let now = self.clock.model_ms();
        let found = self.slaves.with(req.slave, |s| {
            s.requests += 1;
            (s.fault, answer(&mut s.monitor, &req.request, now))
        });
        let Some((fault, result)) = found else {
            let r = if self.tcp {
                Err(ExceptionCode::GatewayTargetDevice)
            } else {
                Ok(None)
            };
            return Box::pin(std::future::ready(r));
        };
        match fault {
            Fault::None => Box::pin(std::future::ready(result)),
            Fault::NoReply => Box::pin(std::future::ready(Ok(None))),
            Fault::Late(d) => Box::pin(async move {
                tokio::time::sleep(d).await;
                result
            }),
            Fault::Exception(c) => Box::pin(std::future::ready(Err(ExceptionCode::new(c)))),
            Fault::Garbage => match &self.garbage {
                Some(flag) => {
                    flag.store(true, Ordering::SeqCst);
                    Box::pin(std::future::ready(result))
                }
                None => Box::pin(std::future::ready(Ok(None))),
            },
        }
    }
}

/// A monitor's answer to one request.
fn answer(m: &mut SimMonitor, req: &Request<'_>, now_ms: u64) -> Answer {
    let exc = ExceptionCode::new;
    match req {
        Request::ReadHoldingRegisters(a, n) => m
            .read(RegisterKind::Holding, *a, *n, now_ms)
            .map(|w| Some(Response::ReadHoldingRegisters(w)))
            .map_err(exc),
        Request::ReadInputRegisters(a, n) => m
            .read(RegisterKind::Input, *a, *n, now_ms)
            .map(|w| Some(Response::ReadInputRegisters(w)))
            .map_err(exc),
        Request::WriteSingleRegister(a, v) => m
            .write(*a, &[*v])
            .map(|()| Some(Response::WriteSingleRegister(*a, *v)))
            .map_err(exc),
        Request::WriteMultipleRegisters(a, words) => {
            let words: &Cow<'_, [u16]> = words;
            m.write(*a, words)
                .map(|()| {
                    Some(Response::WriteMultipleRegisters(
                        *a,
                        u16::try_from(words.len()).unwrap_or(u16::MAX),
                    ))
                })
                .map_err(exc)
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

/// A transport that scrambles the next frame written once its flag is set.
struct Corrupting<T> {
    inner: T,
    flag: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Corrupting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Corrupting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.flag.load(Ordering::SeqCst) {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        // MBAP: transaction id (2), protocol id (2, must be 0), length (2), unit id, PDU.
        let mut bad = buf.to_vec();
        for (i, b) in bad.iter_mut().enumerate() {
            if (2..4).contains(&i) || i >= 7 {
                *b ^= 0xA5;
            }
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, &bad);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.flag.store(false, Ordering::SeqCst);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A running simulated Modbus endpoint; stops when dropped.
#[derive(Debug)]
pub struct ModbusSim {
    addr: Option<SocketAddr>,
    slaves: Slaves,
    cancel: CancellationToken,
}

impl ModbusSim {
    /// Serves `slaves` over Modbus TCP on `bind` (port 0: any free port; see
    /// [`addr`](Self::addr)). Model time runs at `time_scale` × wall time.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn tcp(bind: SocketAddr, slaves: Slaves, time_scale: f64) -> io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let service = SimService {
            slaves: slaves.clone(),
            clock: Clock {
                start: Instant::now(),
                scale: time_scale,
            },
            garbage: None,
            tcp: true,
        };
        let stop = cancel.clone();
        tokio::spawn(async move {
            let server = tokio_modbus::server::tcp::Server::new(listener);
            let on_connected = |stream: TcpStream, _addr: SocketAddr| {
                let flag = Arc::new(AtomicBool::new(false));
                let svc = SimService {
                    garbage: Some(flag.clone()),
                    ..service.clone()
                };
                async move {
                    let _ = stream.set_nodelay(true);
                    Ok(Some((
                        svc,
                        Corrupting {
                            inner: stream,
                            flag,
                        },
                    )))
                }
            };
            let _ = server
                .serve_until(&on_connected, |_e| {}, stop.cancelled_owned())
                .await;
        });
        Ok(Self {
            addr: Some(addr),
            slaves,
            cancel,
        })
    }

    /// Serves `slaves` over Modbus RTU on the serial port at `path` (e.g. one end of a `socat`
    /// PTY pair). Slaves not in `slaves` get no answer, as on a real line.
    ///
    /// # Errors
    /// The port cannot be opened.
    pub fn rtu(path: &Path, baud: u32, slaves: Slaves, time_scale: f64) -> io::Result<Self> {
        let server = tokio_modbus::server::rtu::Server::new_from_path(path, baud)?;
        let cancel = CancellationToken::new();
        let service = SimService {
            slaves: slaves.clone(),
            clock: Clock {
                start: Instant::now(),
                scale: time_scale,
            },
            garbage: None,
            tcp: false,
        };
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = server.serve_until(service, stop.cancelled_owned()).await;
        });
        Ok(Self {
            addr: None,
            slaves,
            cancel,
        })
    }

    /// The TCP address (`None` for RTU).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The slaves, to change their world or their faults.
    pub fn slaves(&self) -> &Slaves {
        &self.slaves
    }

    /// Stops serving (open connections are dropped).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for ModbusSim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
