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
fn the_journal_connection_is_durable_and_leaves_checkpoints_to_readings() {
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
    drop(journal);
    let bulk = lock(&store.inner.bulk);
    let sync: i64 = bulk
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "NORMAL");
}

#[test]
fn the_store_and_its_writers_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Store>();
    shared::<JournalWriter>();
    shared::<ReadingsWriter>();
}
