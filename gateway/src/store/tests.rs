//! Tests of the store: real files in temporary folders, explicit time, no sleeps.

mod journal;
mod people;
mod perf;
mod readings;
mod recovery;
mod registry;
mod schema;
mod users;
mod writer;

use std::path::{Path, PathBuf};

use firegrid_protocols::message::{ChannelConfig, Config, DeviceTime, Event, EventKind, Level};
use firegrid_protocols::thresholds::Threshold;
use firegrid_protocols::{DeviceId, GridId};
use tempfile::TempDir;

use super::*;
use crate::model::{DeviceKind, DeviceState};

/// 2025-11-29 08:00 UTC.
pub(super) const T0: u64 = 1_764_403_200_000;

pub(super) fn tmp() -> TempDir {
    tempfile::tempdir().expect("temporary folder")
}

pub(super) fn db(dir: &TempDir) -> PathBuf {
    dir.path().join("store").join("firegrid.db")
}

/// Opens a store that must open clean.
pub(super) fn open(path: &Path) -> Store {
    let (store, health) = Store::open(path).expect("open");
    assert!(health.is_clean(), "{health}");
    store
}

pub(super) fn actor() -> Actor<'static> {
    Actor::new("tester", T0)
}

pub(super) fn gid(s: &str) -> GridId {
    GridId::new(s).expect("grid id")
}

pub(super) fn did(s: &str) -> DeviceId {
    DeviceId::new(s).expect("device id")
}

pub(super) fn config(version: u32) -> Config {
    let channels = [
        ChannelConfig {
            channel: 0,
            enabled: true,
            threshold: Threshold::ResidualMa(300),
            delay_s: 10,
        },
        ChannelConfig {
            channel: 1,
            enabled: true,
            threshold: Threshold::TempDc(850),
            delay_s: 0,
        },
    ]
    .into_iter()
    .collect();
    Config {
        version,
        report_interval_s: 60,
        heartbeat_interval_s: 60,
        buzzer: true,
        relay_trip: false,
        channels,
    }
}

pub(super) fn area(store: &Store, id: &str, parent: Option<&str>, level: AreaLevel) -> Area {
    store
        .create(
            gid(id),
            &AreaFields {
                parent_id: parent.map(gid),
                level,
                name: format!("area {id}"),
            },
            actor(),
        )
        .expect("create area")
}

/// district d1 → street s1 → community c1 → grid cells g1, g2.
pub(super) fn tree(store: &Store) {
    area(store, "d1", None, AreaLevel::District);
    area(store, "s1", Some("d1"), AreaLevel::Street);
    area(store, "c1", Some("s1"), AreaLevel::Community);
    area(store, "g1", Some("c1"), AreaLevel::Grid);
    area(store, "g2", Some("c1"), AreaLevel::Grid);
}

pub(super) fn site(store: &Store, area_id: &str) -> Site {
    store
        .create(
            (),
            &SiteFields {
                name: "Building 7".into(),
                address: "12 Wenyi Rd".into(),
                owner_name: Some("Wang".into()),
                owner_phone: Some("+86 571 0000 0000".into()),
                area_id: gid(area_id),
            },
            actor(),
        )
        .expect("create site")
}

pub(super) fn fields(site: Option<SiteId>, grid: Option<&str>, state: DeviceState) -> DeviceFields {
    DeviceFields {
        kind: DeviceKind::ElectricalFireMonitor,
        state,
        site_id: site,
        room_id: None,
        circuit_id: None,
        grid_id: grid.map(gid),
        config: config(1),
        encoding: WireEncoding::Json,
        credential_hash: Some("hash:abc".into()),
    }
}

/// A registry with one in-service device `d-1` in grid cell g1; returns the site.
pub(super) fn registry_with_device(store: &Store) -> Site {
    tree(store);
    let s = site(store, "g1");
    store
        .create(
            did("d-1"),
            &fields(Some(s.id), Some("g1"), DeviceState::InService),
            actor(),
        )
        .expect("create device");
    s
}

pub(super) fn event(seq: u32, kind: EventKind) -> Event {
    Event {
        seq,
        time: DeviceTime {
            uptime_ms: u64::from(seq) * 1000,
            unix_ms: seq.is_multiple_of(2).then_some(T0 + u64::from(seq)),
        },
        kind,
    }
}

pub(super) fn alarm(value: i32) -> EventKind {
    EventKind::AlarmRaised {
        channel: 0,
        level: Level {
            quantity: firegrid_protocols::channel::Quantity::ResidualCurrent,
            value,
            threshold: 300,
        },
    }
}

pub(super) fn new_event(device: &str, seq: u32) -> JournalOp {
    JournalOp::Event(NewEvent {
        device: did(device),
        event: event(seq, alarm(400)),
        received_ms: T0 + u64::from(seq),
    })
}

/// Raw SQL on the file, beside the store.
pub(super) fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw connection")
}
