//! The engine's memory per device, measured on the heap: this binary's global allocator counts
//! the bytes allocated and freed (stats_alloc), and the only test in it builds an engine of many
//! devices, so nothing else allocates meanwhile.
//!
//! The goal is ≤ 1 KiB of gateway memory per active device at 100k devices (issue 12); the
//! engine's share (its maps, per-channel evaluation state, timers) must stay well inside it:
//! under 512 B (334 B measured: a device keeps only what its decisions read, 32 B per channel,
//! about one timer entry per device, its grid cell shared).

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use firegrid_gateway::engine::{Engine, EngineConfig, Input};
use firegrid_gateway::model::DeviceSpec;
use firegrid_gateway::protocols::message::{ChannelConfig, Reading};
use firegrid_gateway::protocols::thresholds::Threshold;
use firegrid_gateway::protocols::{DeviceId, GridId};

/// The system allocator, counting what is allocated and freed.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const T0: u64 = 1_764_403_200_000;
const DEVICES: usize = 20_000;
const CHANNELS: u8 = 5;

fn spec(i: usize) -> DeviceSpec {
    DeviceSpec {
        id: DeviceId::new(&format!("hz-{i:06}")).expect("a valid id"),
        grid: GridId::new("grid-7").expect("a valid grid"),
        channels: (0..CHANNELS)
            .map(|channel| ChannelConfig {
                channel,
                enabled: true,
                threshold: if channel == 0 {
                    Threshold::ResidualMa(300)
                } else {
                    Threshold::TempDc(850)
                },
                delay_s: 10,
            })
            .collect(),
        heartbeat_interval_s: 60,
    }
}

#[test]
fn engine_heap_per_active_5_channel_device_is_under_512_bytes() {
    // Inputs are made before the count starts: they are the caller's, not the engine's.
    let specs: Vec<DeviceSpec> = (0..DEVICES).map(spec).collect();
    let readings: Vec<Input> = specs
        .iter()
        .map(|s| Input::Telemetry {
            device: s.id.clone(),
            readings: (0..CHANNELS)
                .map(|channel| Reading {
                    channel,
                    residual_ma: Some(120),
                    temp_dc: Some(300),
                    voltage_dv: Some(2300),
                    current_ma: Some(5000),
                })
                .collect(),
        })
        .collect();

    let region = Region::new(GLOBAL);
    let mut engine = Engine::new(EngineConfig::default(), 1);
    for (n, s) in specs.into_iter().enumerate() {
        engine.handle(Input::Upsert(s), T0 + n as u64);
    }
    // Every device active: readings on every channel, then time passes.
    for (n, r) in readings.into_iter().enumerate() {
        engine.handle(r, T0 + 1_000 + n as u64);
    }
    engine.handle(Input::Tick, T0 + 30_000);
    let change = region.change();
    assert_eq!(engine.device_count(), DEVICES);

    // Allocated, plus what reallocations added (negative if they shrank), less what was freed.
    let live = i128::try_from(change.bytes_allocated).unwrap_or(i128::MAX)
        + i128::try_from(change.bytes_reallocated).unwrap_or(0)
        - i128::try_from(change.bytes_deallocated).unwrap_or(0);
    let per_device = live / i128::try_from(DEVICES).unwrap_or(1);
    println!(
        "engine heap: {per_device} bytes per active {CHANNELS}-channel device ({DEVICES} devices)"
    );
    assert!(
        per_device > 0,
        "the allocator counted nothing: the measurement is broken"
    );
    assert!(
        per_device < 512,
        "{per_device} bytes per device on the heap (budget: under 512 B of the 1 KiB goal)"
    );
    drop(engine);
}
