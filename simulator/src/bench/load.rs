//! The load: a fleet of device ids, and publisher connections that send their telemetry at a
//! set rate (or flat out).
//!
//! A publisher connection carries many device ids: the gateway knows a device by the topic it
//! publishes on (`firegrid/v1/dev/{id}/telemetry`), never by the MQTT connection, so the
//! gateway's work and memory per device are the same whether 100 000 devices share eight
//! connections or each has its own. What this leaves out is the broker's cost of 100 000
//! connections (about 1 KiB each in Mosquitto, measured), which is not the gateway's.
//!
//! Every message is encoded with the project's codec ([`firegrid_protocols::codec`]): the
//! typical monitor's telemetry (residual current on channel 0, temperature on 1–4), with a
//! sequence number per device that keeps increasing across every load of a run (the gateway
//! stores readings under (device, channel, seq), so a repeated number would not be stored).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::message::{DeviceTime, Message, Reading, Telemetry};

use super::BenchError;

/// Channels in every telemetry message (the typical monitor: 1 residual, 4 temperatures).
pub const CHANNELS: usize = 5;

/// How long a client waits for the broker's CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The wall clock, ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The simulated devices of one fleet size: their ids and sequence counters.
#[derive(Debug, Clone)]
pub struct Fleet {
    ids: Arc<Vec<String>>,
    seqs: Arc<Vec<AtomicU32>>,
    encoding: Encoding,
    booted: Instant,
}

impl Fleet {
    /// `n` devices `{prefix}-{i}`.
    pub fn new(prefix: &str, n: usize, encoding: Encoding) -> Self {
        Self {
            ids: Arc::new((0..n).map(|i| format!("{prefix}-{i}")).collect()),
            seqs: Arc::new((0..n).map(|_| AtomicU32::new(0)).collect()),
            encoding,
            booted: Instant::now(),
        }
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Device `i`'s id.
    pub fn id(&self, i: usize) -> &str {
        self.ids.get(i).map_or("", String::as_str)
    }

    /// The payload encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Device `i`'s next sequence number (shared by its telemetry and events).
    pub fn next_seq(&self, i: usize) -> u32 {
        self.seqs
            .get(i)
            .map_or(0, |s| s.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Milliseconds since the fleet "booted".
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.booted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Encodes `msg` in the fleet's encoding.
    pub fn encode(&self, msg: &Message) -> Vec<u8> {
        let mut buf = vec![0u8; codec::MAX_PAYLOAD];
        // Every message the benchmark makes is far under MAX_PAYLOAD.
        let n = codec::encode(msg, self.encoding, &mut buf).unwrap_or(0);
        buf.truncate(n);
        buf
    }

    /// Device `i`'s next telemetry message, encoded.
    pub fn telemetry(&self, i: usize) -> Vec<u8> {
        let seq = self.next_seq(i);
        let mut readings = heapless::Vec::new();
        let wobble = i32::try_from(seq % 7).unwrap_or(0);
        for ch in 0..CHANNELS as u8 {
            let r = if ch == 0 {
                Reading {
                    channel: ch,
                    residual_ma: Some(u32::try_from(100 + wobble).unwrap_or(100)),
                    ..Reading::default()
                }
            } else {
                Reading {
                    channel: ch,
                    temp_dc: Some(i16::try_from(300 + wobble).unwrap_or(300)),
                    ..Reading::default()
                }
            };
            let _ = readings.push(r);
        }
        self.encode(&Message::Telemetry(Telemetry {
            seq,
            time: DeviceTime {
                uptime_ms: self.uptime_ms(),
                unix_ms: Some(now_ms()),
            },
            readings,
        }))
    }
}

/// The MQTT options of a benchmark client: clean session, TCP_NODELAY, room for many
/// QoS 1 publishes in flight.
pub(crate) fn client(port: u16, client_id: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_inflight(100)
        .set_max_packet_size(2 * codec::MAX_PAYLOAD, 2 * codec::MAX_PAYLOAD);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(CONNECT_TIMEOUT.as_secs());
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Polls `eventloop` until the broker sends the packet `name`d (`is` tells it).
async fn until_packet(
    eventloop: &mut EventLoop,
    who: &str,
    name: &str,
    is: fn(&Packet) -> bool,
) -> Result<(), BenchError> {
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) if is(&p) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(BenchError::Mqtt(format!("{who}: {e}"))),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, wait)
        .await
        .map_err(|_| BenchError::Mqtt(format!("{who}: no {name} within {CONNECT_TIMEOUT:?}")))?
}

/// Polls `eventloop` until the broker's CONNACK.
///
/// # Errors
/// [`BenchError::Mqtt`] when the connection fails or no CONNACK comes in time.
pub(crate) async fn connected(eventloop: &mut EventLoop, who: &str) -> Result<(), BenchError> {
    until_packet(eventloop, who, "CONNACK", |p| {
        matches!(p, Packet::ConnAck(_))
    })
    .await
}

/// A connection named `id`, connected and subscribed (QoS 1) to `filter`: returned once the
/// broker's SUBACK came, so that nothing published after can miss the subscription.
///
/// # Errors
/// [`BenchError::Mqtt`] when the connection fails or no CONNACK or SUBACK comes in time.
pub(crate) async fn subscribed(
    port: u16,
    id: &str,
    filter: &str,
) -> Result<(AsyncClient, EventLoop), BenchError> {
    let (client, mut eventloop) = client(port, id);
    connected(&mut eventloop, id).await?;
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .map_err(|e| BenchError::Mqtt(format!("{id} subscribe: {e}")))?;
    until_packet(&mut eventloop, id, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_))
    })
    .await?;
    Ok((client, eventloop))
}

/// Polls `eventloop` until `stop`, handing every PUBLISH to `each` (false: stop); a
/// connection error ends it, said on the progress lines as `who`'s.
pub(crate) async fn each_publish(
    mut eventloop: EventLoop,
    stop: CancellationToken,
    who: &str,
    mut each: impl AsyncFnMut(rumqttc::Publish) -> bool,
) {
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if !each(p).await {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                super::progress(&format!("{who} connection: {e}"));
                break;
            }
        }
    }
}

/// Rate meaning "as fast as the connections go".
pub const FLAT_OUT: f64 = f64::INFINITY;

/// Publishers sending the fleet's telemetry, round robin over its devices, at a rate that can
/// be changed while they run. Stopped on drop.
#[derive(Debug)]
pub struct Load {
    rate: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Load {
    /// Connects `publishers` clients to the broker on `port`, paused (rate 0).
    ///
    /// # Errors
    /// [`BenchError::Mqtt`] when a client cannot connect.
    pub async fn start(port: u16, fleet: &Fleet, publishers: usize) -> Result<Self, BenchError> {
        let rate = Arc::new(AtomicU64::new(0f64.to_bits()));
        let acked = Arc::new(AtomicU64::new(0));
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for p in 0..publishers {
            let (client, mut eventloop) = client(port, &format!("bench-pub-{p}"));
            connected(&mut eventloop, "publisher").await?;
            let (acked, stop) = (acked.clone(), cancel.clone());
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        e = eventloop.poll() => match e {
                            Ok(Event::Incoming(Packet::PubAck(_))) => {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                super::progress(&format!("publisher connection: {e}"));
                                break;
                            }
                        }
                    }
                }
            });
            let devices: Vec<usize> = (p..fleet.len()).step_by(publishers).collect();
            tasks.spawn(publish(
                client,
                fleet.clone(),
                devices,
                publishers,
                rate.clone(),
                cancel.clone(),
            ));
        }
        Ok(Self {
            rate,
            acked,
            cancel,
            tasks,
        })
    }

    /// Sets the total rate, messages per second (0: pause; [`FLAT_OUT`]).
    pub fn set_rate(&self, per_s: f64) {
        self.rate.store(per_s.to_bits(), Ordering::Relaxed);
    }

    /// Messages the broker has acknowledged (PUBACK) so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the publishers and waits for them.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One publisher: its share of the rate, paced every millisecond, over its devices in turn.
async fn publish(
    client: AsyncClient,
    fleet: Fleet,
    devices: Vec<usize>,
    publishers: usize,
    rate: Arc<AtomicU64>,
    cancel: CancellationToken,
) {
    if devices.is_empty() {
        return;
    }
    let topics: Vec<String> = devices
        .iter()
        .map(|&i| format!("firegrid/v1/dev/{}/telemetry", fleet.id(i)))
        .collect();
    let mut next = 0usize;
    let mut credit = 0f64;
    let mut last = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let share = publishers as f64;
    loop {
        let total = f64::from_bits(rate.load(Ordering::Relaxed));
        let due = if total.is_infinite() {
            // Flat out: as many as the client's queue takes; publish() waits when it is full.
            64
        } else {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let per_s = total / share;
            credit += per_s * now.duration_since(last).as_secs_f64();
            last = now;
            // A stall does not turn into a burst: at most 20 ms of backlog is kept.
            credit = credit.min(per_s * 0.02 + 1.0);
            let due = credit.floor();
            credit -= due;
            due as usize
        };
        for _ in 0..due {
            let k = next % devices.len();
            next = next.wrapping_add(1);
            let payload = fleet.telemetry(devices[k]);
            let send = client.publish(topics[k].clone(), QoS::AtLeastOnce, false, payload);
            tokio::select! {
                () = cancel.cancelled() => return,
                r = send => if r.is_err() { return; },
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        if total.is_infinite() {
            tokio::task::yield_now().await;
        }
    }
}
