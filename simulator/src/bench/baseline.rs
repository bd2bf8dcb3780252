//! The baseline: what the machine and Mosquitto do without the gateway.
//!
//! A plain **relay** client stands where the gateway stands: one connection subscribed (QoS 1)
//! to the same uplink topics (`firegrid/v1/dev/+/telemetry` and `.../event`), PUBACKing at once
//! and doing nothing with telemetry but count it; every event it republishes (QoS 1, on a
//! second connection, as the gateway sends alerts on a link of their own) to
//! `firegrid/v1/alert/bench-relay/{device}`. So:
//!
//! - [`max_rate`]: the publishers flat out; the rate the relay receives is the most this
//!   machine moves through this broker to one subscriber;
//! - [`two_hop`]: the same background load the gateway had, and alarms through the relay to
//!   the worker: device → broker → relay → broker → worker, the gateway's path without the
//!   gateway's work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use firegrid_testkit::Mosquitto;
use rumqttc::{Event, Packet, QoS, SubscribeFilter};
use tokio_util::sync::CancellationToken;

use super::cpu::{Meter, Usage};
use super::latency::{self, LatencyStats, RELAY_PREFIX, Worker};
use super::load::{self, FLAT_OUT, Fleet, Load};
use super::{BenchError, Plan};

/// The plain relay. Stopped on drop.
#[derive(Debug)]
pub struct Relay {
    telemetry: Arc<AtomicU64>,
    cancel: CancellationToken,
}

impl Relay {
    /// Connects both links and subscribes (waiting for the SUBACK).
    ///
    /// # Errors
    /// [`BenchError::Mqtt`].
    pub async fn start(port: u16) -> Result<Self, BenchError> {
        let (sub, mut sub_loop) = load::client(port, "bench-relay");
        load::connected(&mut sub_loop, "relay").await?;
        let (out, mut out_loop) = load::client(port, "bench-relay-out");
        load::connected(&mut out_loop, "relay").await?;
        sub.subscribe_many([
            SubscribeFilter::new("firegrid/v1/dev/+/telemetry".into(), QoS::AtLeastOnce),
            SubscribeFilter::new("firegrid/v1/dev/+/event".into(), QoS::AtLeastOnce),
        ])
        .await
        .map_err(|e| BenchError::Mqtt(format!("relay subscribe: {e}")))?;
        let suback = async {
            loop {
                match sub_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(BenchError::Mqtt(format!("relay: {e}"))),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), suback)
            .await
            .map_err(|_| BenchError::Mqtt("relay: no SUBACK".into()))??;

        let telemetry = Arc::new(AtomicU64::new(0));
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    e = out_loop.poll() => if e.is_err() { break; },
                }
            }
        });
        let (count, stop) = (telemetry.clone(), cancel.clone());
        tokio::spawn(async move {
            let _sub = sub;
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => break,
                    e = sub_loop.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic.ends_with("/telemetry") {
                            count.fetch_add(1, Ordering::Relaxed);
                        } else if let Some(device) = p
                            .topic
                            .strip_prefix("firegrid/v1/dev/")
                            .and_then(|t| t.strip_suffix("/event"))
                        {
                            let topic = format!("{RELAY_PREFIX}{device}");
                            if out
                                .publish(topic, QoS::AtLeastOnce, false, p.payload.to_vec())
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        super::progress(&format!("relay connection: {e}"));
                        break;
                    }
                }
            }
        });
        Ok(Self { telemetry, cancel })
    }

    /// Telemetry messages received so far.
    pub fn telemetry(&self) -> u64 {
        self.telemetry.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The rate the relay receives with the publishers flat out, messages per second, over one
/// window after a short warm-up, and the CPU the broker and this process used in it.
///
/// # Errors
/// [`BenchError::Mqtt`].
pub async fn max_rate(
    broker: &Mosquitto,
    fleet: &Fleet,
    plan: &Plan,
) -> Result<(f64, Usage), BenchError> {
    let relay = Relay::start(broker.port()).await?;
    let load = Load::start(broker.port(), fleet, plan.publishers).await?;
    load.set_rate(FLAT_OUT);
    tokio::time::sleep(plan.window / 2).await;
    let (c0, t0, meter) = (
        relay.telemetry(),
        Instant::now(),
        Meter::start(None, broker.pid()),
    );
    tokio::time::sleep(plan.window).await;
    let (c1, t1, cpu) = (relay.telemetry(), Instant::now(), meter.usage());
    load.stop().await;
    Ok(((c1 - c0) as f64 / t1.duration_since(t0).as_secs_f64(), cpu))
}

/// Alarm latency through the relay at a background load of `per_s` telemetry messages per
/// second.
///
/// # Errors
/// [`BenchError::Mqtt`].
pub async fn two_hop(
    broker: &Mosquitto,
    fleet: &Fleet,
    plan: &Plan,
    per_s: f64,
) -> Result<LatencyStats, BenchError> {
    let _relay = Relay::start(broker.port()).await?;
    let mut worker = Worker::start(broker.port()).await?;
    let load = Load::start(broker.port(), fleet, plan.publishers).await?;
    load.set_rate(per_s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = latency::sample(broker.port(), fleet, plan, 0, &mut worker).await?;
    load.stop().await;
    Ok(stats)
}
