use super::*;
use crate::store::schema as sch;

fn tables(path: &Path) -> Vec<String> {
    let conn = raw(path);
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn migrates_an_empty_file_and_reopens_idempotently() {
    let dir = tmp();
    let path = db(&dir);
    let (store, health) = Store::open(&path).unwrap();
    assert!(health.created && health.is_clean(), "{health}");
    assert_eq!(health.schema_version, sch::LATEST);
    assert_eq!(health.migrated_from, None);
    assert!(matches!(health.check, Check::Passed { .. }));
    store.set_meta("session", "abc").unwrap();
    drop(store);

    let mut expected: Vec<String> = sch::TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(tables(&path), expected);
    let mut expected: Vec<String> = sch::READINGS_TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    let readings = readings_path(&path);
    assert_eq!(
        readings.file_name().unwrap().to_string_lossy(),
        "firegrid-readings.db"
    );
    assert_eq!(tables(&readings), expected);
    assert_eq!(sch::version(&raw(&readings)).unwrap(), sch::READINGS_LATEST);
    let conn = raw(&path);
    assert_eq!(sch::version(&conn).unwrap(), sch::LATEST);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);

    for _ in 0..2 {
        let (store, health) = Store::open(&path).unwrap();
        assert!(!health.created && health.is_clean(), "{health}");
        assert_eq!(health.migrated_from, None);
        assert_eq!(store.meta("session").unwrap().as_deref(), Some("abc"));
        assert_eq!(store.meta("nothing").unwrap(), None);
    }
}

#[test]
fn migrates_from_every_older_version() {
    // A file at version 0 that already exists (empty schema): migrated, not "created".
    let dir = tmp();
    let path = db(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    raw(&path)
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE scratch (x); DROP TABLE scratch;")
        .unwrap();
    let (_store, health) = Store::open(&path).unwrap();
    assert!(!health.created);
    assert_eq!(health.migrated_from, Some(0));
    assert_eq!(health.schema_version, sch::LATEST);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tmp();
    let path = db(&dir);
    drop(open(&path));
    raw(&path)
        .pragma_update(None, "user_version", sch::LATEST + 1)
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found, supported } if found == sch::LATEST + 1 && supported == sch::LATEST),
        "{err}"
    );
    assert_eq!(
        sch::version(&raw(&path)).unwrap(),
        sch::LATEST + 1,
        "untouched"
    );
    assert!(path.exists());
}

#[test]
fn the_journal_connection_is_durable_and_alone_in_its_file() {
    let dir = tmp();
    let store = open(&db(&dir));
    let journal = lock(&store.inner.journal);
    let sync: i64 = journal
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
    let auto: i64 = journal
        .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
        .unwrap();
    assert_eq!(auto, i64::from(JOURNAL_CHECKPOINT_PAGES));
    let fk: i64 = journal
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    // The journal's connection sees one file: readings never share its WAL or its locks.
    let files: i64 = journal
        .query_row(
            "SELECT count(*) FROM pragma_database_list WHERE name <> 'temp'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(files, 1);
    drop(journal);
    let sync = |conn: &Mutex<rusqlite::Connection>| -> i64 {
        lock(conn)
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(sync(&store.inner.bulk), 1, "NORMAL");
    assert_eq!(
        sync(&store.inner.readings),
        2,
        "FULL: its writes reach the disk commit by commit (decision 25)"
    );
    let readings_file: String = lock(&store.inner.readings)
        .query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        readings_file.ends_with("firegrid-readings.db"),
        "{readings_file}"
    );
}

#[test]
fn the_store_and_its_writers_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Store>();
    shared::<JournalWriter>();
    shared::<ReadingsWriter>();
}

/// A store as the release before the split wrote it: schema version 1 (its migration is never
/// edited), readings and rollups in the main file beside the journal, written with the
/// release's statements. The readings file is also there already with one of its rows, as a
/// migration interrupted after the readings file committed leaves it.
fn release_v1_store(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = raw(path);
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch(sch::MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO readings (device, channel, seq, ts_ms, residual_ma, temp_dc, voltage_dv, \
         current_ma) VALUES ('d-1', 0, 1, 1764403200000, 120, NULL, 2200, NULL), \
         ('d-1', 0, 2, 1764403260000, 140, NULL, 2200, NULL), \
         ('d-1', 1, 1, 1764403200000, NULL, 310, NULL, NULL);
         INSERT INTO readings_hourly (device, channel, hour_ms, count, residual_n, \
         residual_min, residual_max, residual_sum, voltage_n, voltage_min, voltage_max, \
         voltage_sum) VALUES ('d-1', 0, 1764403200000, 2, 2, 120, 140, 260, 2, 2200, 2200, 4400);
         INSERT INTO events (device, seq, received_ms, device_time_ms, uptime_ms, kind, \
         channel, body) VALUES ('d-1', 7, 1764403200000, NULL, 1000, 'smoke', NULL, \
         '{\"seq\":7,\"up_ms\":1000,\"kind\":\"smoke\"}');",
    )
    .unwrap();
    drop(conn);
    let readings = raw(&readings_path(path));
    readings
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    readings.execute_batch(sch::READINGS_MIGRATIONS[0]).unwrap();
    readings.pragma_update(None, "user_version", 1).unwrap();
    readings
        .execute_batch(
            "INSERT INTO readings (device, channel, seq, ts_ms, residual_ma, temp_dc, \
             voltage_dv, current_ma) VALUES ('d-1', 0, 1, 1764403200000, 120, NULL, 2200, NULL)",
        )
        .unwrap();
}

#[test]
fn a_store_of_the_release_before_moves_its_readings_to_their_own_file_on_first_start() {
    let dir = tmp();
    let path = db(&dir);
    release_v1_store(&path);

    let (store, health) = Store::open(&path).unwrap();
    assert!(health.is_clean(), "{health}");
    assert_eq!(health.migrated_from, Some(1));
    assert_eq!(health.schema_version, sch::LATEST);
    // The main file keeps the journal and the registry only; every reading moved, once, and
    // then into the readings file's day tables.
    assert!(!tables(&path).contains(&"readings".to_string()));
    assert!(!tables(&readings_path(&path)).contains(&"readings".to_string()));
    let readings = raw(&readings_path(&path));
    let count = |table: &str| -> i64 {
        readings
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        (store.raw_readings_count().unwrap(), count("rollups")),
        (3, 1)
    );
    // The history API reads them where they are now, raw and rolled up.
    let raw_points = store.history(&did("d-1"), 0, T0, T0 + HOUR_MS, 0).unwrap();
    assert_eq!(raw_points.len(), 2);
    let hourly = store
        .history(&did("d-1"), 0, T0, T0 + HOUR_MS, HOUR_MS)
        .unwrap();
    assert_eq!(hourly.len(), 1);
    // The journal's dedupe survived the migration.
    assert!(store.event_exists(&did("d-1"), 7).unwrap());
    // New readings go to the readings file.
    store
        .insert_readings(&[super::readings::sample("d-1", 3, T0 + 120_000)])
        .unwrap();
    assert_eq!(store.raw_readings_count().unwrap(), 5);
    drop(store);
    let (_, again) = Store::open(&path).unwrap();
    assert!(again.is_clean() && again.migrated_from.is_none(), "{again}");
}

#[test]
fn a_damaged_readings_file_is_replaced_and_the_journal_is_untouched() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    registry_with_device(&store);
    store.journal_batch(&[new_event("d-1", 1)]).unwrap();
    store
        .insert_readings(&[super::readings::sample("d-1", 1, T0)])
        .unwrap();
    drop(store);
    let readings = readings_path(&path);
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&readings, &garbage).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut p = readings.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }

    let (store, health) = Store::open(&path).unwrap();
    assert!(health.recovery.is_none(), "{health}");
    let why = health.readings_recovery.clone().expect("replaced");
    assert!(why.contains("not a database"), "{why}");
    assert!(!health.is_clean());
    assert_eq!(
        store.journal_batch(&[new_event("d-1", 1)]).unwrap(),
        [JournalResult::Duplicate],
        "the journal as it was"
    );
    assert!(
        store
            .history(&did("d-1"), 0, T0, T0 + HOUR_MS, 0)
            .unwrap()
            .is_empty()
    );
    store
        .insert_readings(&[super::readings::sample("d-1", 2, T0)])
        .unwrap();
    assert_eq!(
        store
            .history(&did("d-1"), 0, T0, T0 + HOUR_MS, 0)
            .unwrap()
            .len(),
        1
    );
}

/// A store at `path` whose readings file is empty (no schema), in WAL mode, open.
fn empty_readings_file(path: &Path) -> rusqlite::Connection {
    drop(open(path));
    let readings = readings_path(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = readings.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let conn = raw(&readings);
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn
}

/// A readings file as the release before this one wrote it (readings file version 1: one row
/// per message and channel, keyed by `(device, channel, seq)`), written with its statements:
/// device `d-1` sends 5000 messages a minute apart from `T0` (more than one window of the
/// move), residual current on channel 0 and temperature on channel 1; `d-2` one message on
/// channel 3 only, with every quantity; the hourly rollups as that release kept them.
fn release_readings_v1(path: &Path) {
    let conn = empty_readings_file(path);
    conn.execute_batch(sch::READINGS_MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO readings (device, channel, seq, ts_ms, residual_ma, temp_dc, voltage_dv,
             current_ma)
         SELECT 'd-1', 0, i, {T0} + (i - 1) * 60000, i, NULL, 2200, NULL FROM n
         UNION ALL
         SELECT 'd-1', 1, i, {T0} + (i - 1) * 60000, NULL, 300 + i % 100, NULL, NULL FROM n;
         INSERT INTO readings VALUES ('d-2', 3, 7, {T0}, 5, -12, 2301, 4000000000);
         INSERT INTO readings_hourly (device, channel, hour_ms, count, residual_n, residual_min,
             residual_max, residual_sum, voltage_n, voltage_min, voltage_max, voltage_sum)
         VALUES ('d-1', 0, {T0}, 60, 60, 1, 60, 1830, 60, 2200, 2200, 132000);
         INSERT INTO readings_hourly (device, channel, hour_ms, count, temp_n, temp_min,
             temp_max, temp_sum)
         VALUES ('d-1', 1, {T0}, 60, 60, -5, 359, 10000),
             ('d-1', 1, {T0} + 3600000, 1, 1, 300, 300, 300),
             ('d-2', 3, {T0}, 1, 1, -12, -12, -12);"
    ))
    .unwrap();
}

#[test]
fn a_readings_file_of_the_release_before_moves_to_rows_per_message_in_day_tables_on_first_start() {
    let dir = tmp();
    let path = db(&dir);
    release_readings_v1(&path);

    let (store, health) = Store::open(&path).unwrap();
    assert!(health.is_clean(), "{health}");
    let mut expected: Vec<String> = sch::READINGS_TABLES.iter().map(|t| t.to_string()).collect();
    // 5000 minutes from T0 (08:00) reach into the fifth day.
    for day in T0 / DAY_MS..=(T0 + 4999 * 60_000) / DAY_MS {
        expected.push(format!("raw_{day}"));
    }
    expected.sort();
    assert_eq!(
        tables(&readings_path(&path)),
        expected,
        "version 1's table is gone"
    );
    assert_eq!(
        sch::version(&raw(&readings_path(&path))).unwrap(),
        sch::READINGS_LATEST
    );
    // Every row moved, once: 10 001 reading rows in 5001 messages.
    assert_eq!(store.raw_readings_count().unwrap(), 10_001);
    let messages: i64 = (T0 / DAY_MS..=(T0 + 4999 * 60_000) / DAY_MS)
        .map(|day| -> i64 {
            raw(&readings_path(&path))
                .query_row(&format!("SELECT count(*) FROM raw_{day}"), [], |r| r.get(0))
                .unwrap()
        })
        .sum();
    assert_eq!(messages, 5001);

    // The history reads the same values as before the move, raw and grouped.
    let d1 = did("d-1");
    let points = store.history(&d1, 0, T0, T0 + 5000 * 60_000, 0).unwrap();
    assert_eq!(points.len(), 5000);
    assert_eq!(
        (
            points[4999].t_ms,
            points[4999].residual_ma,
            points[4999].voltage_dv
        ),
        (
            T0 + 4999 * 60_000,
            Some(Agg {
                min: 5000,
                max: 5000,
                avg: 5000.0
            }),
            Some(Agg {
                min: 2200,
                max: 2200,
                avg: 2200.0
            })
        )
    );
    let temps = store
        .history(&d1, 1, T0, T0 + 10 * 60_000, 10 * 60_000)
        .unwrap();
    assert_eq!(temps.len(), 1);
    assert_eq!(
        (temps[0].count, temps[0].temp_dc, temps[0].residual_ma),
        (
            10,
            Some(Agg {
                min: 301,
                max: 310,
                avg: 305.5
            }),
            None
        )
    );
    let d2 = store.history(&did("d-2"), 3, T0, T0 + 1, 0).unwrap();
    assert_eq!(
        d2.iter()
            .map(|p| (p.residual_ma, p.temp_dc, p.voltage_dv, p.current_ma))
            .collect::<Vec<_>>(),
        [(
            Some(Agg {
                min: 5,
                max: 5,
                avg: 5.0
            }),
            Some(Agg {
                min: -12,
                max: -12,
                avg: -12.0
            }),
            Some(Agg {
                min: 2301,
                max: 2301,
                avg: 2301.0
            }),
            Some(Agg {
                min: 4_000_000_000,
                max: 4_000_000_000,
                avg: 4e9
            })
        )]
    );
    // The rollups are those the release kept (not added to again), now one row per device
    // and hour with the channels packed.
    let hourly = store.history(&d1, 0, T0, T0 + HOUR_MS, HOUR_MS).unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly[0].count, 60);
    assert_eq!(
        (
            hourly[0].residual_ma,
            hourly[0].voltage_dv,
            hourly[0].temp_dc
        ),
        (
            Some(Agg {
                min: 1,
                max: 60,
                avg: 30.5
            }),
            Some(Agg {
                min: 2200,
                max: 2200,
                avg: 2200.0
            }),
            None
        )
    );
    let temp = store
        .history(&d1, 1, T0, T0 + 2 * HOUR_MS, HOUR_MS)
        .unwrap();
    assert_eq!(
        temp.iter()
            .map(|p| (p.t_ms, p.count, p.temp_dc))
            .collect::<Vec<_>>(),
        [
            (
                T0,
                60,
                Some(Agg {
                    min: -5,
                    max: 359,
                    avg: 10000.0 / 60.0
                })
            ),
            (
                T0 + HOUR_MS,
                1,
                Some(Agg {
                    min: 300,
                    max: 300,
                    avg: 300.0
                })
            )
        ]
    );
    let d2_hour = store
        .history(&did("d-2"), 3, T0, T0 + HOUR_MS, HOUR_MS)
        .unwrap();
    assert_eq!(d2_hour.len(), 1);
    assert_eq!(d2_hour[0].temp_dc.map(|a| a.min), Some(-12));
    let rollups: i64 = raw(&readings_path(&path))
        .query_row("SELECT count(*) FROM rollups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rollups, 3, "(T0, d-1), (T0 + 1 h, d-1), (T0, d-2)");
    // What moved still deduplicates a redelivered message, and max_seq sees it.
    let r = store
        .insert_readings(&[super::readings::sample("d-1", 5000, T0 + 4999 * 60_000)])
        .unwrap();
    assert_eq!((r.inserted, r.duplicates), (0, 2));
    assert_eq!(store.max_seq(&d1).unwrap(), Some(5000));
    drop(store);
    let (store, again) = Store::open(&path).unwrap();
    assert!(again.is_clean() && again.migrated_from.is_none(), "{again}");
    assert_eq!(store.raw_readings_count().unwrap(), 10_001);
}

/// A readings file as the release before this one wrote it (readings file version 3): day
/// `T0`'s table keyed `(device, ts_ms, seq)`, with `d-1`'s messages 1–10 a minute apart from
/// `T0` and `d-2`'s message 7, written with that release's statements.
fn release_readings_v3(path: &Path) {
    let conn = empty_readings_file(path);
    for sql in &sch::READINGS_MIGRATIONS[..3] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    let day = T0 / DAY_MS;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS raw_{day} (device TEXT NOT NULL, seq INTEGER NOT NULL, \
         ts_ms INTEGER NOT NULL, channels BLOB NOT NULL) STRICT; \
         CREATE UNIQUE INDEX IF NOT EXISTS raw_{day}_key ON raw_{day}(device, ts_ms, seq); \
         INSERT OR IGNORE INTO raw_days (day, readings) VALUES ({day}, 22);"
    ))
    .unwrap();
    let rows = (1..=10u32)
        .map(|seq| ("d-1", seq, T0 + u64::from(seq - 1) * 60_000))
        .chain([("d-2", 7, T0)]);
    for (device, seq, ts) in rows {
        let s = super::readings::sample(device, seq, ts);
        conn.execute(
            &format!(
                "INSERT OR IGNORE INTO raw_{day} (device, seq, ts_ms, channels) \
                 VALUES (?1, ?2, ?3, ?4)"
            ),
            rusqlite::params![
                device,
                seq,
                ts as i64,
                crate::store::packed::pack(&s.readings)
            ],
        )
        .unwrap();
    }
}

#[test]
fn a_readings_file_of_the_release_before_keeps_its_days_keyed_by_device_and_keys_new_days_by_the_second()
 {
    let dir = tmp();
    let path = db(&dir);
    release_readings_v3(&path);
    let (store, health) = Store::open(&path).unwrap();
    assert!(health.is_clean(), "{health}");
    let file = readings_path(&path);
    assert_eq!(sch::version(&raw(&file)).unwrap(), sch::READINGS_LATEST);
    let (day, next) = (T0 / DAY_MS, T0 / DAY_MS + 1);
    let key = |day: u64| -> (i64, String) {
        let c = raw(&file);
        let width = c
            .query_row(
                "SELECT key_bucket_ms FROM raw_days WHERE day = ?1",
                [day as i64],
                |r| r.get(0),
            )
            .unwrap();
        let sql = c
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = ?1",
                [format!("raw_{day}_key")],
                |r| r.get(0),
            )
            .unwrap();
        (width, sql)
    };
    let (width, sql) = key(day);
    assert_eq!(width, 0, "the release's day stays keyed by device");
    assert!(sql.ends_with("(device, ts_ms, seq)"), "{sql}");

    // The release's day still deduplicates and takes new messages; the next day is new.
    let d1 = did("d-1");
    let next_midnight = next * DAY_MS;
    let r = store
        .insert_readings_at(
            &[
                super::readings::sample("d-1", 10, T0 + 9 * 60_000),
                super::readings::sample("d-1", 11, T0 + 10 * 60_000),
                super::readings::sample("d-1", 12, next_midnight + 1500),
            ],
            next_midnight + 3_600_000,
        )
        .unwrap();
    assert_eq!((r.inserted, r.duplicates), (4, 2));
    assert_eq!(key(day).0, 0);
    let (width, sql) = key(next);
    assert_eq!(width, 1000);
    assert!(sql.ends_with("(ts_ms / 1000, device, ts_ms, seq)"), "{sql}");

    // The history reads both keys, in time order, across the midnight.
    let seqs = |device: &DeviceId| -> Vec<i64> {
        store
            .history(device, 0, T0, next_midnight + 3_600_000, 0)
            .unwrap()
            .iter()
            .map(|p| p.residual_ma.unwrap().min)
            .collect()
    };
    assert_eq!(seqs(&d1), (1..=12).collect::<Vec<_>>());
    assert_eq!(seqs(&did("d-2")), [7]);
    // The highest seq: in the new day for d-1, in the release's day for d-2.
    assert_eq!(store.max_seq(&d1).unwrap(), Some(12));
    assert_eq!(store.max_seq(&did("d-2")).unwrap(), Some(7));
    assert_eq!(store.max_seq(&did("d-3")).unwrap(), None);
    assert_eq!(store.raw_readings_count().unwrap(), 22 + 4);
    drop(store);
    let (_, again) = Store::open(&path).unwrap();
    assert!(again.is_clean() && again.migrated_from.is_none(), "{again}");
}
