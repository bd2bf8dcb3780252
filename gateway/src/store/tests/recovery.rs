use std::io::{Seek, SeekFrom, Write};

use super::*;

#[test]
fn a_file_of_garbage_is_moved_aside_and_replaced() {
    let dir = tmp();
    let path = db(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let (store, health) = Store::open(&path).unwrap();
    let recovery = health.recovery.clone().expect("recovered");
    assert!(recovery.reason.contains("not a database"), "{recovery}");
    assert_eq!(
        std::fs::read(&recovery.moved_to).unwrap(),
        garbage,
        "kept as it was"
    );
    assert!(
        recovery
            .moved_to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("firegrid.db.damaged-")
    );
    assert_eq!(recovery.rows_salvaged(), 0);
    assert!(recovery.salvage_error.is_some());
    assert!(health.to_string().contains("RECOVERED"), "{health}");
    // A working, fresh store.
    tree(&store);
    assert_eq!(
        store.journal_batch(&[new_event("d-1", 1)]).unwrap(),
        [JournalResult::Inserted]
    );
    drop(store);
    let (_, health) = Store::open(&path).unwrap();
    assert!(health.is_clean(), "{health}");
}

#[test]
fn a_damaged_table_loses_only_what_cannot_be_read() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    registry_with_device(&store);
    let ops: Vec<JournalOp> = (1..=20).map(|seq| new_event("d-1", seq)).collect();
    store.journal_batch(&ops).unwrap();
    store
        .insert_readings(&[super::readings::sample("d-1", 1, T0)])
        .unwrap();
    drop(store);

    // Wreck the root page of the audit log.
    let (root, page_size): (u64, u64) = {
        let conn = raw(&path);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        (
            conn.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'audit'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
            conn.pragma_query_value(None, "page_size", |r| r.get(0))
                .unwrap(),
        )
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
    file.write_all(&vec![0xA5; page_size as usize]).unwrap();
    drop(file);

    let (store, health) = Store::open(&path).unwrap();
    let recovery = health.recovery.clone().expect("recovered");
    assert!(recovery.reason.starts_with("quick_check"), "{recovery}");
    let table = |name: &str| recovery.salvaged.iter().find(|t| t.table == name);
    assert!(
        table("areas").is_some_and(|t| t.complete && t.rows == 5),
        "{recovery:?}"
    );
    assert!(
        table("events").is_some_and(|t| t.complete && t.rows == 20),
        "{recovery:?}"
    );
    assert!(table("audit").is_some_and(|t| !t.complete), "{recovery:?}");
    assert!(
        recovery.to_string().contains("incomplete: audit"),
        "{recovery}"
    );
    // The readings are in a file of their own: untouched.
    assert_eq!(health.readings_recovery, None);

    // The registry, the journal and its dedupe survive.
    assert_eq!(store.device_specs().unwrap().len(), 1);
    assert_eq!(
        store
            .journal_batch(&[new_event("d-1", 20), new_event("d-1", 21)])
            .unwrap(),
        [JournalResult::Duplicate, JournalResult::Inserted]
    );
    assert_eq!(
        store
            .history(&did("d-1"), 0, T0, T0 + HOUR_MS, HOUR_MS)
            .unwrap()
            .len(),
        1
    );
    assert!(recovery.moved_to.exists());
}
