//! Alarm latency: alarms published at measured instants, a grid worker's subscriber on
//! `firegrid/v1/alert/#`, and percentiles of the time between.
//!
//! Each sample is an `alarm_raised` event of a device (and channel) no other sample used, so
//! that each opens a new episode (the gateway raises one alert per episode). The instant is
//! taken just before the publish call of the alarm's own connection, the receipt when the
//! worker's client reads the alert; both on this process's monotonic clock.
//!
//! The alarm's two ends — the device's connection that raises it and the grid worker's that
//! receives it — stand for a device and a phone on machines of their own. So they run on a
//! thread of their own, not among the load generator's tasks, in the real-time class where
//! the machine allows it (`ENDS_PRIORITY`): on a machine of its own an end is run as soon
//! as its packet comes, and here it would otherwise wait for a CPU behind the gateway, the
//! broker and the load generator, a wait no deployment has. They use a few microseconds of
//! CPU per alarm. The same ends measure the two-hop baseline and the gateway.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use firegrid_gateway::alarm_path::{AlarmPath, Scheduling};
use rumqttc::QoS;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::{DeviceTime, Event as DeviceEvent, EventKind, Level, Message};

use super::load::{self, CHANNELS, Fleet, now_ms};
use super::{BenchError, Plan};

/// Where the plain relay of the two-hop baseline republishes an event of `device`.
pub const RELAY_PREFIX: &str = "firegrid/v1/alert/bench-relay/";

/// How long the last alert may take before its alarm counts as lost.
const ALERT_DEADLINE: Duration = Duration::from_secs(10);

/// Percentiles of one set of latency samples, ms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyStats {
    /// Alarms published.
    pub sent: usize,
    /// Alerts received for them.
    pub received: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms (with fewer than 1000 samples: the largest but one or the largest).
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl LatencyStats {
    /// Nearest-rank percentiles of `samples`, out of `sent` alarms.
    pub fn of(mut samples: Vec<Duration>, sent: usize) -> Self {
        samples.sort_unstable();
        let pct = |p: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Self {
            sent,
            received: samples.len(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            p999_ms: pct(0.999),
            max_ms: pct(1.0),
        }
    }
}

/// An alert as the worker saw it: device, channel (when the alert says), and when.
#[derive(Debug)]
struct Seen {
    device: String,
    channel: Option<u8>,
    at: Instant,
}

/// `SCHED_FIFO` priority of the alarm ends' thread (the lowest; the ordinary class when the
/// machine does not allow it).
const ENDS_PRIORITY: u8 = 1;

/// The grid worker's subscriber: every `opened` alarm alert, and every relayed event.
#[derive(Debug)]
pub struct Worker {
    seen: mpsc::UnboundedReceiver<Seen>,
    cancel: CancellationToken,
    ends: AlarmPath,
}

impl Worker {
    /// Connects and subscribes to `firegrid/v1/alert/#`, on the alarm ends' own thread.
    ///
    /// # Errors
    /// [`BenchError::Mqtt`].
    pub async fn start(port: u16) -> Result<Self, BenchError> {
        let ends = AlarmPath::start(ENDS_PRIORITY)?;
        if let Scheduling::Normal(Some(why)) = ends.scheduling() {
            super::progress(&format!("the alarm ends run in the ordinary class: {why}"));
        }
        let (tx, seen) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        ends.handle().spawn(async move {
            // Subscribed (the SUBACK waited for) before any alert can come.
            let (_client, eventloop) =
                match load::subscribed(port, "bench-worker", "firegrid/v1/alert/#").await {
                    Ok(link) => {
                        if ready_tx.send(Ok(())).is_err() {
                            return;
                        }
                        link
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
            load::each_publish(eventloop, stop, "worker", async move |p| {
                let at = Instant::now();
                parse(&p.topic, &p.payload, at).is_none_or(|seen| tx.send(seen).is_ok())
            })
            .await;
        });
        ready
            .await
            .map_err(|_| BenchError::Mqtt("worker: stopped while connecting".into()))??;
        Ok(Self { seen, cancel, ends })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A gateway alert (`opened`, category `alarm`) or a relayed event.
fn parse(topic: &str, payload: &[u8], at: Instant) -> Option<Seen> {
    if let Some(device) = topic.strip_prefix(RELAY_PREFIX) {
        return Some(Seen {
            device: device.to_string(),
            channel: None,
            at,
        });
    }
    let alert: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if alert["what"] != "opened" || alert["category"] != "alarm" {
        return None;
    }
    Some(Seen {
        device: alert["device"].as_str()?.to_string(),
        channel: alert["channel"].as_u64().and_then(|c| u8::try_from(c).ok()),
        at,
    })
}

/// The device index and channel of alarm sample `j` of a fleet: a new device for each while
/// there are devices, then the next channel.
fn target(fleet: &Fleet, j: usize) -> (usize, u8) {
    let n = fleet.len().max(1);
    (j % n, u8::try_from((j / n) % CHANNELS).unwrap_or(0))
}

/// An `alarm_raised` of device `i` on `channel`, encoded.
fn alarm(fleet: &Fleet, i: usize, channel: u8) -> Vec<u8> {
    let level = if channel == 0 {
        Level {
            quantity: Quantity::ResidualCurrent,
            value: 412,
            threshold: 300,
        }
    } else {
        Level {
            quantity: Quantity::Temperature,
            value: 873,
            threshold: 850,
        }
    };
    fleet.encode(&Message::Event(DeviceEvent {
        seq: fleet.next_seq(i),
        time: DeviceTime {
            uptime_ms: fleet.uptime_ms(),
            unix_ms: Some(now_ms()),
        },
        kind: EventKind::AlarmRaised { channel, level },
    }))
}

/// Publishes `plan.alarms` alarms (samples `first..first + plan.alarms` of the fleet), one
/// every `plan.alarm_spacing`, and waits for their alerts at `worker`.
///
/// # Errors
/// [`BenchError::Mqtt`] when the alarm connection fails.
pub async fn sample(
    port: u16,
    fleet: &Fleet,
    plan: &Plan,
    first: usize,
    worker: &mut Worker,
) -> Result<LatencyStats, BenchError> {
    // The device's connection on the alarm ends' thread, beside the worker's.
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let (connected, client) = tokio::sync::oneshot::channel();
    let poller = worker.ends.handle().spawn(async move {
        let (client, mut eventloop) = load::client(port, "bench-alarm");
        let up = load::connected(&mut eventloop, "alarm publisher").await;
        let failed = up.is_err();
        if connected.send(up.map(|()| client)).is_err() || failed {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                e = eventloop.poll() => if e.is_err() { break; },
            }
        }
    });
    let client = client
        .await
        .map_err(|_| BenchError::Mqtt("alarm publisher: stopped while connecting".into()))??;
    // Drain anything left from an earlier round.
    while worker.seen.try_recv().is_ok() {}

    let mut pending: HashMap<String, VecDeque<(u8, Instant)>> = HashMap::new();
    let mut samples = Vec::with_capacity(plan.alarms);
    let mut tick = tokio::time::interval(plan.alarm_spacing);
    let take = |seen: Seen,
                pending: &mut HashMap<String, VecDeque<(u8, Instant)>>,
                samples: &mut Vec<Duration>| {
        if let Some(q) = pending.get_mut(&seen.device) {
            let pos = match seen.channel {
                Some(ch) => q.iter().position(|(c, _)| *c == ch),
                None => (!q.is_empty()).then_some(0),
            };
            if let Some((_, sent)) = pos.and_then(|p| q.remove(p)) {
                samples.push(seen.at.duration_since(sent));
            }
        }
    };
    for j in first..first + plan.alarms {
        tick.tick().await;
        let (i, channel) = target(fleet, j);
        let payload = alarm(fleet, i, channel);
        let topic = format!("firegrid/v1/dev/{}/event", fleet.id(i));
        let sent = Instant::now();
        pending
            .entry(fleet.id(i).to_string())
            .or_default()
            .push_back((channel, sent));
        tokio::time::timeout(
            ALERT_DEADLINE,
            client.publish(topic, QoS::AtLeastOnce, false, payload),
        )
        .await
        .map_err(|_| BenchError::Mqtt("alarm publish: timed out".into()))?
        .map_err(|e| BenchError::Mqtt(format!("alarm publish: {e}")))?;
        while let Ok(seen) = worker.seen.try_recv() {
            take(seen, &mut pending, &mut samples);
        }
    }
    let deadline = tokio::time::Instant::now() + ALERT_DEADLINE;
    while samples.len() < plan.alarms {
        match tokio::time::timeout_at(deadline, worker.seen.recv()).await {
            Ok(Some(seen)) => take(seen, &mut pending, &mut samples),
            Ok(None) | Err(_) => break,
        }
    }
    cancel.cancel();
    let _ = poller.await;
    Ok(LatencyStats::of(samples, plan.alarms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        let s = LatencyStats::of(samples, 1000);
        assert_eq!(
            (s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms),
            (500.0, 990.0, 999.0, 1000.0)
        );
        let s = LatencyStats::of(vec![Duration::from_millis(3)], 2);
        assert_eq!((s.sent, s.received, s.p999_ms), (2, 1, 3.0));
        assert_eq!(LatencyStats::of(Vec::new(), 0).p99_ms, 0.0);
    }

    #[test]
    fn samples_take_new_devices_first_then_new_channels() {
        let fleet = Fleet::new("t", 3, firegrid_protocols::codec::Encoding::Json);
        let t: Vec<_> = (0..7).map(|j| target(&fleet, j)).collect();
        assert_eq!(t, [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2)]);
    }

    #[test]
    fn only_opened_alarm_alerts_and_relayed_events_count() {
        let at = Instant::now();
        let opened = br#"{"what":"opened","category":"alarm","device":"b-1","channel":0}"#;
        let seen = parse("firegrid/v1/alert/g", opened, at).unwrap();
        assert_eq!((seen.device.as_str(), seen.channel), ("b-1", Some(0)));
        let offline = br#"{"what":"opened","category":"offline","device":"b-1"}"#;
        assert!(parse("firegrid/v1/alert/g", offline, at).is_none());
        let ended = br#"{"what":"ended","category":"alarm","device":"b-1","channel":0}"#;
        assert!(parse("firegrid/v1/alert/g", ended, at).is_none());
        let relayed = parse(&format!("{RELAY_PREFIX}b-2"), b"\xfb\x01", at).unwrap();
        assert_eq!((relayed.device.as_str(), relayed.channel), ("b-2", None));
    }
}
