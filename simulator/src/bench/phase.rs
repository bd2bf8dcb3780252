//! The gateway's part of one fleet size: memory idle, registration, every device active,
//! memory again, the ingest search, alarm latency at two background loads.

use std::time::Duration;

use firegrid_testkit::Mosquitto;

use super::cpu::Usage;
use super::gateway::Gateway;
use super::latency::{self, Worker};
use super::load::{Fleet, Load};
use super::memory;
use super::report::{LoadResult, Memory, SizeResult};
use super::{BenchError, Plan, ingest, progress};

/// The background loads of the latency measurements, as shares of the sustained rate.
pub const LOADS: [f64; 2] = [0.5, 0.9];

/// How long the gateway idles after start-up before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// The rate of the memory step's telemetry, msg/s: a tenth of the baseline rate (the ingest
/// search's first step), at least 1000, and at least one message per device a minute.
fn active_rate(devices: usize, baseline_per_s: f64) -> f64 {
    (0.1 * baseline_per_s)
        .max(1000.0)
        .max(devices as f64 / 60.0)
}

/// How long the memory step waits for the gateway to take in what the broker queued: a
/// minute, or a millisecond per device (a city's backlog takes minutes on a small machine).
fn active_drain_limit(devices: usize) -> Duration {
    Duration::from_secs(60).max(Duration::from_millis(devices as u64))
}

/// Measures the gateway `gw` (connected to `broker`) with `fleet`.
///
/// # Errors
/// [`BenchError`] when the gateway fails or a client cannot connect.
pub async fn measure(
    plan: &Plan,
    fleet: &Fleet,
    broker: &Mosquitto,
    gw: &mut Gateway,
    baseline_per_s: f64,
) -> Result<SizeResult, BenchError> {
    let n = fleet.len();
    tokio::time::sleep(SETTLE).await;
    let idle = gw.rss()?;

    let site = gw.create_site().await?;
    let ids: Vec<&str> = (0..n).map(|i| fleet.id(i)).collect();
    let registration = gw.register(&ids, site, plan.single_posts).await?;

    // Every device sends at least once, at the search's first (low) rate or once a minute,
    // whichever is faster (a city's million devices: ~17k msg/s, more than the gateway may
    // take in on a small machine — the broker queues the rest); then the queues drain.
    let load = Load::start(broker.port(), fleet, plan.publishers).await?;
    let rate = active_rate(n, baseline_per_s);
    let active_for = plan
        .window
        .max(Duration::from_secs_f64(1.2 * n as f64 / rate));
    load.set_rate(rate);
    tokio::time::sleep(active_for).await;
    load.set_rate(0.0);
    let drained = ingest::drain_within(gw, &load, active_drain_limit(n)).await?;
    let active = gw.rss()?;
    let per_device_bytes = memory::per_device_bytes(idle, active, n);
    progress(&format!(
        "memory: {} KiB idle, {} KiB with {n} active (anon {} KiB, file {} KiB, shmem {} KiB; \
         {:.0} B per device; {rate:.0} msg/s for {:.0} s, drained in {:.2} s)",
        idle.rss_kib,
        active.rss_kib,
        active.anon_kib,
        active.file_kib,
        active.shmem_kib,
        per_device_bytes,
        active_for.as_secs_f64(),
        drained.as_secs_f64()
    ));

    let ingest = ingest::search(gw, &load, plan, baseline_per_s, broker.pid()).await?;

    let mut worker = Worker::start(broker.port()).await?;
    let mut loads = Vec::new();
    // Without a sustained rate, the loads are shares of the lowest rate tried.
    let reference = if ingest.sustained_per_s > 0.0 {
        ingest.sustained_per_s
    } else {
        ingest.steps.first().map_or(1000.0, |s| s.offered_per_s)
    };
    for (k, fraction) in LOADS.into_iter().enumerate() {
        let offered = fraction * reference;
        load.set_rate(offered);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (m0, t0) = (gw.metrics().await?, std::time::Instant::now());
        let alarm =
            latency::sample(broker.port(), fleet, plan, k * plan.alarms, &mut worker).await?;
        let m1 = gw.metrics().await?;
        load.set_rate(0.0);
        let ingested_per_s =
            m1.telemetry().saturating_sub(m0.telemetry()) as f64 / t0.elapsed().as_secs_f64();
        progress(&format!(
            "alarms at {:.0}% ({offered:.0}/s offered, {ingested_per_s:.0}/s taken in): \
             p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms; {}/{} alerts",
            fraction * 100.0,
            alarm.p50_ms,
            alarm.p99_ms,
            alarm.p999_ms,
            alarm.received,
            alarm.sent
        ));
        ingest::drain(gw, &load).await?;
        loads.push(LoadResult {
            fraction,
            offered_per_s: offered,
            ingested_per_s,
            alarm,
            baseline: None,
        });
    }
    load.stop().await;
    let end = gw.rss()?;
    let m = gw.metrics().await?;
    Ok(SizeResult {
        devices: n,
        baseline_per_s,
        baseline_cpu: Usage::default(),
        ingest_ratio: 0.0,
        registration,
        memory: Memory {
            idle,
            active,
            end,
            per_device_bytes,
        },
        ingest,
        loads,
        journal_commit_mean_ms: m.mean_ms("firegrid_journal_commit_seconds"),
        gateway_alarm_mean_ms: m.mean_ms("firegrid_alarm_latency_seconds"),
        refused_unknown: m.refused("unknown_device"),
        offline_episodes: m.episodes("offline"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_sends_once_a_minute_in_the_memory_step() {
        assert_eq!(active_rate(1000, 70_000.0), 7000.0);
        assert_eq!(active_rate(1000, 5000.0), 1000.0);
        let city = active_rate(1_000_000, 70_000.0);
        assert!((city - 16_666.7).abs() < 1.0, "{city}");
        assert_eq!(active_drain_limit(100_000), Duration::from_secs(100));
        assert_eq!(active_drain_limit(1000), Duration::from_secs(60));
    }
}
