use firegrid_protocols::channel::Quantity;
use firegrid_protocols::message::Reading;

use super::*;

const MIN: u64 = 60_000;
const DAY: u64 = 24 * HOUR_MS;

/// Channel 0: residual current `seq` mA at 220.0 V; channel 1: 30.0 °C + `seq` deci-°C.
pub(super) fn sample(device: &str, seq: u32, ts_ms: u64) -> Sample {
    Sample {
        device: did(device),
        seq,
        ts_ms,
        readings: vec![
            Reading {
                channel: 0,
                residual_ma: Some(seq),
                voltage_dv: Some(2200),
                ..Reading::default()
            },
            Reading {
                channel: 1,
                temp_dc: Some(300 + i16::try_from(seq).unwrap()),
                ..Reading::default()
            },
        ],
    }
}

/// `n` samples, one a minute from `from`, seq 1..=n.
fn minutes(device: &str, from: u64, n: u32) -> Vec<Sample> {
    (1..=n)
        .map(|seq| sample(device, seq, from + u64::from(seq - 1) * MIN))
        .collect()
}

#[test]
fn redelivered_telemetry_is_stored_once_and_rolled_up_once() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    let batch = minutes("d-1", T0, 120);
    let r = store.insert_readings(&batch).unwrap();
    assert_eq!(
        r,
        InsertReport {
            inserted: 240,
            duplicates: 0,
            refused: 0
        }
    );
    let r = store.insert_readings(&batch[100..]).unwrap();
    assert_eq!(
        r,
        InsertReport {
            inserted: 0,
            duplicates: 40,
            refused: 0
        }
    );
    drop(store);
    let store = open(&path);
    let r = store.insert_readings(&batch).unwrap();
    assert_eq!(
        r,
        InsertReport {
            inserted: 0,
            duplicates: 240,
            refused: 0
        },
        "across restarts too"
    );

    let hours = store
        .history(&did("d-1"), 0, T0, T0 + 2 * HOUR_MS, HOUR_MS)
        .unwrap();
    assert_eq!(hours.iter().map(|p| p.count).collect::<Vec<_>>(), [60, 60]);
    assert_eq!(store.raw_readings_count().unwrap(), 240);
    // One row per message (two channels each), in the day's table.
    let messages: i64 = raw(&readings_path(&path))
        .query_row(&format!("SELECT count(*) FROM raw_{}", T0 / DAY), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(messages, 120);

    // Same seq from another device is another reading.
    let r = store.insert_readings(&[sample("d-2", 1, T0)]).unwrap();
    assert_eq!(r.inserted, 2);
    // From telemetry: the device's clock if it has one, else the receive time.
    let t = firegrid_protocols::message::Telemetry {
        seq: 9,
        time: firegrid_protocols::message::DeviceTime {
            uptime_ms: 5,
            unix_ms: None,
        },
        readings: batch[0].readings.iter().copied().collect(),
    };
    assert_eq!(Sample::from_telemetry(did("d-3"), &t, T0 + 1).ts_ms, T0 + 1);
}

#[test]
fn history_is_raw_when_fine_and_rolled_up_from_an_hour() {
    let dir = tmp();
    let store = open(&db(&dir));
    store.insert_readings(&minutes("d-1", T0, 120)).unwrap();
    let d = did("d-1");

    // Every raw reading.
    let points = store.history(&d, 0, T0, T0 + 10 * MIN, 0).unwrap();
    assert_eq!(points.len(), 10);
    let p = points[3];
    assert_eq!((p.t_ms, p.count), (T0 + 3 * MIN, 1));
    assert_eq!(
        p.residual_ma,
        Some(Agg {
            min: 4,
            max: 4,
            avg: 4.0
        })
    );
    assert_eq!(
        p.voltage_dv,
        Some(Agg {
            min: 2200,
            max: 2200,
            avg: 2200.0
        })
    );
    assert_eq!((p.temp_dc, p.current_ma), (None, None));

    // Raw readings in 10-minute buckets.
    let points = store
        .history(&d, 0, T0, T0 + 2 * HOUR_MS, 10 * MIN)
        .unwrap();
    assert_eq!(points.len(), 12);
    assert_eq!((points[0].t_ms, points[0].count), (T0, 10));
    assert_eq!(
        points[0].residual_ma,
        Some(Agg {
            min: 1,
            max: 10,
            avg: 5.5
        })
    );
    assert_eq!(points[11].t_ms, T0 + 110 * MIN);
    assert_eq!(
        points[11].residual_ma,
        Some(Agg {
            min: 111,
            max: 120,
            avg: 115.5
        })
    );

    // Hourly rollups.
    let points = store.history(&d, 1, T0, T0 + 2 * HOUR_MS, HOUR_MS).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!((points[1].t_ms, points[1].count), (T0 + HOUR_MS, 60));
    assert_eq!(
        points[1].temp_dc,
        Some(Agg {
            min: 361,
            max: 420,
            avg: 390.5
        })
    );
    assert_eq!(points[1].residual_ma, None);
    let points = store
        .history(&d, 0, T0, T0 + 2 * HOUR_MS, 2 * HOUR_MS)
        .unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 120);
    assert_eq!(
        points[0].residual_ma,
        Some(Agg {
            min: 1,
            max: 120,
            avg: 60.5
        })
    );
    // Rollups are hour-granular: an hour counts if it starts in the range.
    let points = store
        .history(&d, 0, T0 + 30 * MIN, T0 + 90 * MIN, HOUR_MS)
        .unwrap();
    assert_eq!(
        points.iter().map(|p| p.t_ms).collect::<Vec<_>>(),
        [T0 + HOUR_MS]
    );

    assert!(
        store
            .history(&d, 5, T0, T0 + HOUR_MS, 0)
            .unwrap()
            .is_empty()
    );
    let err = store
        .history(&d, 0, T0, T0 + 20_000 * MIN, MIN)
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidQuery(_)), "{err}");
}

#[test]
fn prune_drops_old_readings_and_keeps_rollups_longer() {
    let dir = tmp();
    let store = open(&db(&dir));
    let old = T0 - 40 * DAY;
    let mut batch = minutes("d-1", old, 10);
    batch.extend(minutes("d-1", T0, 10).into_iter().map(|s| Sample {
        seq: s.seq + 100,
        ..s
    }));
    batch.extend(minutes("d-2", old, 5));
    store.insert_readings(&batch).unwrap();

    let report = store.prune(T0).unwrap();
    assert_eq!(
        report,
        PruneReport {
            readings: 30,
            ..PruneReport::default()
        }
    );
    let d = did("d-1");
    assert!(
        store
            .history(&d, 0, old, old + HOUR_MS, 0)
            .unwrap()
            .is_empty()
    );
    let kept = store.history(&d, 0, old, old + HOUR_MS, HOUR_MS).unwrap();
    assert_eq!(kept.len(), 1, "the rollup outlives the raw readings");
    assert_eq!(kept[0].count, 10);
    assert_eq!(store.history(&d, 0, T0, T0 + HOUR_MS, 0).unwrap().len(), 10);
    assert_eq!(
        store.prune(T0).unwrap(),
        PruneReport::default(),
        "idempotent"
    );

    let later = T0 + 731 * DAY;
    let report = store.prune(later).unwrap();
    assert_eq!(
        report,
        PruneReport {
            readings: 20,
            // One rollup per device and hour: d-1's two hours and d-2's one.
            hourly: 3,
            ..PruneReport::default()
        }
    );
}

#[test]
fn with_rollups_only_the_history_answers_from_them_by_the_hour() {
    let dir = tmp();
    let (store, _) = Store::open_with(
        db(&dir),
        StoreOptions {
            raw_readings: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let r = store.insert_readings(&minutes("d-1", T0, 120)).unwrap();
    assert_eq!((r.inserted, r.duplicates), (240, 0));
    assert_eq!(store.raw_readings_count().unwrap(), 0, "no raw rows kept");
    assert_eq!(store.history_step(0), HOUR_MS);
    assert_eq!(store.history_step(10 * MIN), HOUR_MS);
    assert_eq!(store.history_step(2 * HOUR_MS), 2 * HOUR_MS);
    let d = did("d-1");
    for step in [0, 10 * MIN, HOUR_MS] {
        let points = store.history(&d, 0, T0, T0 + 2 * HOUR_MS, step).unwrap();
        assert_eq!(
            points.iter().map(|p| (p.t_ms, p.count)).collect::<Vec<_>>(),
            [(T0, 60), (T0 + HOUR_MS, 60)],
            "step {step}"
        );
    }
    // The ticket verification's count and peak come from the rollups too.
    let since = store
        .readings_since(&d, 0, Quantity::ResidualCurrent, T0, T0 + 2 * HOUR_MS)
        .unwrap();
    assert_eq!((since.count, since.max), (120, Some(120)));
}

#[test]
fn readings_timed_before_2020_or_a_day_ahead_are_refused_and_counted() {
    let dir = tmp();
    let store = open(&db(&dir));
    let now = T0;
    let r = store
        .insert_readings_at(
            &[
                sample("d-1", 1, 0),
                sample("d-1", 2, now + DAY + 1),
                sample("d-1", 3, now + DAY),
            ],
            now,
        )
        .unwrap();
    assert_eq!(
        r,
        InsertReport {
            inserted: 2,
            duplicates: 0,
            refused: 4
        }
    );
    let tables: i64 = raw(&readings_path(&db(&dir)))
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'raw\\_%' \
             ESCAPE '\\' AND name <> 'raw_days'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        tables, 1,
        "no table for 1970 nor for the day after tomorrow"
    );
}

/// The plan SQLite makes for a statement on the readings file, one line per step.
fn plan(store_db: &Path, sql: &str) -> String {
    let conn = raw(&readings_path(store_db));
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let details: Vec<String> = stmt
        .query_map(
            rusqlite::params_from_iter(std::iter::repeat_n(0, stmt.parameter_count())),
            |r| r.get(3),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    details.join("\n")
}

#[test]
fn a_new_day_is_keyed_by_the_second_first_and_its_reads_use_that_key() {
    let dir = tmp();
    let store = open(&db(&dir));
    store.insert_readings(&[sample("d-1", 1, T0)]).unwrap();
    let day = T0 / DAY;
    let index: String = raw(&readings_path(&db(&dir)))
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = ?1",
            [format!("raw_{day}_key")],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        index.contains("(ts_ms / 1000, device, ts_ms, seq)"),
        "{index}"
    );
    // The reads name the index's expression, so the index answers them: one lookup per
    // bucket, no scan of the day (which would read the whole day once per second asked), no
    // sort.
    for sql in [
        crate::store::readings::bucket_rows_sql(day, 1000),
        crate::store::readings::bucket_max_seq_sql(day, 1000),
    ] {
        let plan = plan(&db(&dir), &sql);
        assert!(
            plan.contains(&format!("INDEX raw_{day}_key (<expr>=? AND device=?")),
            "{sql}: {plan}"
        );
        assert!(
            !plan.contains("SCAN r") && !plan.contains("SCAN raw_") && !plan.contains("TEMP"),
            "{sql}: {plan}"
        );
    }
}

/// Readings of three devices over 40 s across a midnight, several in a second.
fn samples_around_midnight() -> impl proptest::strategy::Strategy<Value = Vec<Sample>> {
    use proptest::prelude::*;
    let midnight = (T0 / DAY + 1) * DAY;
    proptest::collection::vec((0..3usize, 0..40_000u64, 1..60u32), 1..80).prop_map(move |picks| {
        picks
            .into_iter()
            .map(|(d, at, seq)| sample(["d-1", "d-2", "d-3"][d], seq, midnight - 20_000 + at))
            .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(48))]

    /// Whatever the order and batches the readings come in, a device's raw history over any
    /// range is its distinct readings in the range in time order (then seq), across seconds
    /// and days; `max_seq` is the highest seq of its newest second.
    #[test]
    fn the_raw_history_of_bucketed_days_is_each_devices_readings_in_time_order(
        samples in samples_around_midnight(),
        split in 0usize..80,
        (from, len) in (0u64..42_000, 1u64..42_000),
    ) {
        let dir = tmp();
        let store = open(&db(&dir));
        let now = T0 + 2 * DAY;
        let split = split.min(samples.len());
        store.insert_readings_at(&samples[..split], now).unwrap();
        store.insert_readings_at(&samples[split..], now).unwrap();
        let midnight = (T0 / DAY + 1) * DAY;
        let (from, to) = (midnight - 21_000 + from, midnight - 21_000 + from + len);
        for device in ["d-1", "d-2", "d-3"] {
            let mut expected: Vec<(u64, u32)> = samples
                .iter()
                .filter(|s| s.device.as_str() == device)
                .map(|s| (s.ts_ms, s.seq))
                .collect();
            expected.sort_unstable();
            expected.dedup();
            let newest_second = expected.last().map(|(ts, _)| ts / 1000);
            let max_seq = expected
                .iter()
                .filter(|(ts, _)| Some(ts / 1000) == newest_second)
                .map(|(_, seq)| *seq)
                .max();
            expected.retain(|(ts, _)| (from..to).contains(ts));
            let got: Vec<(u64, u32)> = store
                .history(&did(device), 0, from, to, 0)
                .unwrap()
                .iter()
                .map(|p| (p.t_ms, u32::try_from(p.residual_ma.unwrap().min).unwrap()))
                .collect();
            proptest::prop_assert_eq!(got, expected, "{} in [{}, {})", device, from, to);
            proptest::prop_assert_eq!(store.max_seq(&did(device)).unwrap(), max_seq);
        }
    }
}
