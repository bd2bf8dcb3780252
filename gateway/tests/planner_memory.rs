//! The planner's memory per device beside the engine's, measured on the heap: this binary's
//! global allocator counts the bytes allocated and freed (stats_alloc), and the only test in
//! it fills a planner with many devices, so nothing else allocates meanwhile.
//!
//! What the planner keeps per device is what alerts and acks need of the registry ([`Known`]:
//! life-cycle state, encoding, latest status sequence number, and a pointer to the device's
//! time-series tags, each distinct set held once). The issue 12 goal is ≤ 1 KiB of gateway
//! memory per active device at 100k devices; the planner's share must stay small: under 128 B
//! (its map's slot, 40 B of id and 24 B of `Known`, at the map's load).

mod heap;

use std::alloc::System;
use std::collections::HashMap;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use firegrid_gateway::engine::{Engine, EngineConfig};
use firegrid_gateway::model::{DeviceKind, DeviceState};
use firegrid_gateway::pipeline::Planner;
use firegrid_gateway::protocols::message::Config;
use firegrid_gateway::protocols::{DeviceId, GridId};
use firegrid_gateway::store::{Device, DeviceFields, WireEncoding};

/// The system allocator, counting what is allocated and freed.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DEVICES: usize = 20_000;
/// Devices per site (a block of flats, one circuit each floor): sites and grid cells are shared.
const PER_SITE: usize = 50;

fn device(i: usize) -> Device {
    let mut channels = heapless::Vec::new();
    for c in heap::monitor_channels(5) {
        let _ = channels.push(c);
    }
    let site = i64::try_from(i / PER_SITE).expect("a small number");
    Device {
        id: DeviceId::new(&format!("hz-{i:06}")).expect("a valid id"),
        fields: DeviceFields {
            kind: DeviceKind::ElectricalFireMonitor,
            state: DeviceState::InService,
            site_id: Some(site),
            room_id: None,
            circuit_id: None,
            grid_id: Some(GridId::new(&format!("grid-{}", site / 20)).expect("a valid grid")),
            config: Config {
                version: 1,
                report_interval_s: 60,
                heartbeat_interval_s: 60,
                buzzer: true,
                relay_trip: false,
                channels,
            },
            encoding: WireEncoding::Json,
            credential_hash: None,
        },
        created_ms: 0,
        updated_ms: 0,
    }
}

#[test]
fn planner_heap_per_device_is_under_128_bytes() {
    // The registry's rows are made before the count starts: they are the store's, not the
    // planner's.
    let devices: Vec<Device> = (0..DEVICES).map(device).collect();
    let mut planner = Planner::new(
        Engine::new(EngineConfig::default(), 1),
        HashMap::new(),
        Vec::new(),
        HashMap::new(),
    );

    let region = Region::new(GLOBAL);
    for d in &devices {
        planner.set_known(&d.id, Some(d));
    }
    let change = region.change();
    assert!(planner.known(&devices[DEVICES - 1].id).is_some());

    let per_device = heap::kept_per_device(&change, DEVICES);
    println!(
        "planner heap: {per_device} bytes per device ({DEVICES} devices, {PER_SITE} per site)"
    );
    assert!(
        per_device < 128,
        "{per_device} bytes per device on the heap (budget: under 128 B of the 1 KiB goal)"
    );
    drop(planner);
}
