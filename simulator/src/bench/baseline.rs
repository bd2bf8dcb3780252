//! The baseline: what the machine and Mosquitto do without the gateway.
//!
//! A plain **relay** stands where the gateway stands, in the gateway's shape without its work:
//! one connection subscribed (QoS 1) to the telemetry (`firegrid/v1/dev/+/telemetry`), PUBACKing
//! at once and doing nothing with it but count it; and, as the gateway's alarm path, a link of
//! its own subscribed to the events (`.../event`) and another that republishes every event
//! (QoS 1) to `firegrid/v1/alert/bench-relay/{device}`, both on a thread of their own scheduled
//! as the gateway's alarm path is ([`AlarmPath`] at the gateway's default priority: the
//! real-time class where the machine allows it). So:
//!
//! - [`max_rate`]: the publishers flat out; the rate the relay receives is the most this
//!   machine moves through this broker to one subscriber;
//! - [`two_hop`]: the same background load the gateway had, and alarms through the relay to
//!   the worker: device → broker → relay → broker → worker, the gateway's path without the
//!   gateway's work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use firegrid_gateway::alarm_path::{AlarmPath, Scheduling};
use firegrid_gateway::config::AlarmPathSection;
use firegrid_testkit::Mosquitto;
use rumqttc::QoS;
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
    /// The events' thread (dropped last: its tasks are cancelled first).
    _events: AlarmPath,
}

impl Relay {
    /// Connects its three links and subscribes (waiting for the SUBACKs).
    ///
    /// # Errors
    /// [`BenchError::Mqtt`]; [`BenchError::Io`] when the events' thread cannot start.
    pub async fn start(port: u16) -> Result<Self, BenchError> {
        let cancel = CancellationToken::new();
        let events = AlarmPath::start(AlarmPathSection::default().realtime_priority)?;
        if let Scheduling::Normal(Some(why)) = events.scheduling() {
            super::progress(&format!(
                "the relay's events run in the ordinary class: {why}"
            ));
        }
        let stop = cancel.clone();
        let relaying = events.handle().spawn(async move {
            let (sub, sub_loop) =
                load::subscribed(port, "bench-relay-events", "firegrid/v1/dev/+/event").await?;
            let (out, mut out_loop) = load::client(port, "bench-relay-out");
            load::connected(&mut out_loop, "relay").await?;
            let out_stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = out_stop.cancelled() => break,
                        e = out_loop.poll() => if e.is_err() { break; },
                    }
                }
            });
            tokio::spawn(load::each_publish(
                sub_loop,
                stop,
                "relay",
                async move |p| {
                    // The subscription's client lives as long as its loop.
                    let _sub = &sub;
                    let Some(device) = p
                        .topic
                        .strip_prefix("firegrid/v1/dev/")
                        .and_then(|t| t.strip_suffix("/event"))
                    else {
                        return true;
                    };
                    out.publish(
                        format!("{RELAY_PREFIX}{device}"),
                        QoS::AtLeastOnce,
                        false,
                        p.payload.to_vec(),
                    )
                    .await
                    .is_ok()
                },
            ));
            Ok::<_, BenchError>(())
        });
        relaying
            .await
            .map_err(|_| BenchError::Mqtt("relay: the events' thread stopped".into()))??;

        let (sub, sub_loop) =
            load::subscribed(port, "bench-relay", "firegrid/v1/dev/+/telemetry").await?;
        let telemetry = Arc::new(AtomicU64::new(0));
        let count = telemetry.clone();
        tokio::spawn(load::each_publish(
            sub_loop,
            cancel.clone(),
            "relay",
            async move |_| {
                // The subscription's client lives as long as its loop.
                let _sub = &sub;
                count.fetch_add(1, Ordering::Relaxed);
                true
            },
        ));
        Ok(Self {
            telemetry,
            cancel,
            _events: events,
        })
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
