//! What the heap-counting tests (`engine_memory.rs`, `planner_memory.rs`) share: a typical
//! monitor's channels, and the heap a counted region kept per device.

use firegrid_gateway::protocols::message::ChannelConfig;
use firegrid_gateway::protocols::thresholds::Threshold;
use stats_alloc::Stats;

/// Channels of the benchmark's monitor: residual current on channel 0 (300 mA), temperature on
/// the others (85.0 °C), all enabled, a 10 s alarm delay.
pub(crate) fn monitor_channels(count: u8) -> impl Iterator<Item = ChannelConfig> {
    (0..count).map(|channel| ChannelConfig {
        channel,
        enabled: true,
        threshold: if channel == 0 {
            Threshold::ResidualMa(300)
        } else {
            Threshold::TempDc(850)
        },
        delay_s: 10,
    })
}

/// The bytes a counted region kept per device: allocated, plus what reallocations added
/// (negative if they shrank), less what was freed, over `devices`.
///
/// # Panics
/// If the region counted nothing (the measurement is broken).
pub(crate) fn kept_per_device(change: &Stats, devices: usize) -> i128 {
    let live = i128::try_from(change.bytes_allocated).unwrap_or(i128::MAX)
        + i128::try_from(change.bytes_reallocated).unwrap_or(0)
        - i128::try_from(change.bytes_deallocated).unwrap_or(0);
    let per_device = live / i128::try_from(devices).unwrap_or(1);
    assert!(
        per_device > 0,
        "the allocator counted nothing: the measurement is broken"
    );
    per_device
}
