use super::*;

/// A readings writer with `options` on a fresh store: its folder (keep it), the store, the
/// writer and its thread.
fn readings_writer(
    options: WriterOptions,
) -> (
    tempfile::TempDir,
    Store,
    ReadingsWriter,
    std::thread::JoinHandle<()>,
) {
    let dir = tmp();
    let store = open(&db(&dir));
    let (writer, thread) = ReadingsWriter::spawn(store.clone(), options).unwrap();
    (dir, store, writer, thread)
}

#[test]
fn the_journal_writer_serves_concurrent_callers() {
    let dir = tmp();
    let store = open(&db(&dir));
    let (writer, thread) = JournalWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let writer = writer.clone();
            s.spawn(move || {
                let device = format!("d-{t}");
                for seq in 1..=25 {
                    let results = writer
                        .submit_blocking(vec![new_event(&device, seq)])
                        .unwrap();
                    assert_eq!(results, [JournalResult::Inserted]);
                }
                // A resend is acknowledged again as a duplicate.
                let results = writer.submit_blocking(vec![new_event(&device, 1)]).unwrap();
                assert_eq!(results, [JournalResult::Duplicate]);
            });
        }
    });
    let stats = writer.stats();
    assert_eq!((stats.requests, stats.ops, stats.failures), (208, 208, 0));
    assert!(stats.transactions <= stats.requests);
    println!("journal writer: {stats:?}");
    for t in 0..8 {
        let events = store
            .device_events(&did(&format!("d-{t}")), None, 100)
            .unwrap();
        assert_eq!(events.len(), 25);
    }
    drop(writer);
    thread.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_writer_answers_async_callers() {
    let dir = tmp();
    let store = open(&db(&dir));
    let (writer, _thread) = JournalWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    let tasks: Vec<_> = (1..=20)
        .map(|seq| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.submit(vec![new_event("d-1", seq)]).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), [JournalResult::Inserted]);
    }
    let (readings, _thread) =
        ReadingsWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    readings
        .try_submit(vec![super::readings::sample("d-1", 1, T0)])
        .unwrap();
    readings.flush().await.unwrap();
    assert_eq!(readings.stats().inserted, 2);
}

#[test]
fn the_readings_writer_batches_flushes_and_never_blocks() {
    let (_dir, store, writer, thread) = readings_writer(WriterOptions {
        queue: 1,
        max_group: 1,
        queued_rows: 1000,
        linger: Duration::ZERO,
    });

    // Hold the readings connection: the writer thread blocks on its first write, the queue
    // fills, and the next submit is refused at once instead of waiting.
    let mut accepted = 0u32;
    store
        .write_bulk(|_| {
            for seq in 1..=3 {
                match writer.try_submit(vec![super::readings::sample("d-1", seq, T0)]) {
                    Ok(()) => accepted += 1,
                    Err(StoreError::QueueFull) => return Ok(()),
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("the queue never filled");
        })
        .unwrap();
    assert!(accepted >= 1);
    writer.flush_blocking().unwrap();
    writer
        .try_record_pending(vec![crate::store::PendingSighting {
            id: did("stranger"),
            topic: "firegrid/v1/dev/stranger/status".into(),
            messages: 1,
            now: T0,
        }])
        .unwrap();
    writer.flush_blocking().unwrap();
    let stats = writer.stats();
    assert_eq!(stats.inserted, u64::from(accepted) * 2);
    assert_eq!(
        stats.dropped, 2,
        "the refused sample's two rows are counted"
    );
    assert_eq!(store.list_pending().unwrap()[0].id, did("stranger"));

    // Redelivery through the writer.
    writer
        .try_submit(vec![super::readings::sample("d-1", 1, T0)])
        .unwrap();
    writer.flush_blocking().unwrap();
    assert_eq!(writer.stats().duplicates, 2);
    drop(writer);
    thread.join().unwrap();
}

/// A group of samples smaller than `max_group` waits up to `linger` for more: a group is
/// written as soon as it is full, a flush writes one at once, and the thread writes what it
/// holds when its last sender is gone — never an hour later.
#[test]
fn the_readings_writer_gathers_a_group_before_writing() {
    let (_dir, store, writer, thread) = readings_writer(WriterOptions {
        queue: 100,
        max_group: 6,
        queued_rows: 1000,
        linger: Duration::from_secs(3600),
    });
    // Three requests of two rows fill a group: written without a flush.
    for seq in 1..=3 {
        writer
            .try_submit(vec![super::readings::sample("d-1", seq, T0)])
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().inserted < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "a full group waits: {:?}",
            writer.stats()
        );
        std::thread::yield_now();
    }
    // A group not full waits (here an hour) for a flush ...
    writer
        .try_submit(vec![super::readings::sample("d-1", 4, T0)])
        .unwrap();
    writer.flush_blocking().unwrap();
    let s = writer.stats();
    assert_eq!(s.inserted, 8, "{s:?}");
    assert!(s.groups >= 2, "{s:?}");
    // ... or for the end.
    writer
        .try_submit(vec![super::readings::sample("d-1", 5, T0)])
        .unwrap();
    drop(writer);
    thread.join().unwrap();
    assert_eq!(store.raw_readings_count().unwrap(), 10);
}

/// The readings queue holds a number of rows, however they are split into requests: a full
/// budget refuses (and counts) what does not fit, and taking rows frees it.
#[test]
fn the_readings_queue_is_bounded_by_rows_not_requests() {
    let (_dir, store, writer, thread) = readings_writer(WriterOptions {
        queue: 100,
        max_group: 1000,
        queued_rows: 5,
        linger: Duration::ZERO,
    });
    // The writer thread blocks on its first write while the readings connection is held.
    let mut outcomes = Vec::new();
    store
        .write_readings(|_| {
            for seq in 1..=4 {
                // Two rows each: the first may be taken at once (then the budget is free
                // again), the next two wait, the fourth does not fit in 5 rows.
                outcomes.push(
                    writer
                        .try_submit(vec![super::readings::sample("d-1", seq, T0)])
                        .is_ok(),
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(
        outcomes == [true, true, false, false] || outcomes == [true, true, true, false],
        "{outcomes:?}"
    );
    let refused = outcomes.iter().filter(|ok| !**ok).count() as u64;
    writer.flush_blocking().unwrap();
    assert_eq!(writer.queued_rows(), 0);
    let stats = writer.stats();
    assert_eq!(
        (stats.dropped, stats.inserted),
        (refused * 2, (4 - refused) * 2)
    );
    // Taken rows free the budget.
    writer
        .try_submit(vec![super::readings::sample("d-1", 9, T0)])
        .unwrap();
    drop(writer);
    thread.join().unwrap();
}

/// A readings writer thread that panics (a bug) says so: its fate holds the panic's message
/// (what `/healthz` reports), later readings are refused as `Closed` rather than queued for a
/// thread that is gone, and the journal writer beside it goes on.
#[test]
fn a_readings_writer_that_panics_says_why_and_refuses_what_comes_after() {
    let (dir, store, writer, thread) = readings_writer(WriterOptions::default());
    let (journal, _journal_thread) =
        JournalWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    assert_eq!(writer.fate().get(), None);
    crate::store::faults::panic_readings_writer(&db(&dir));
    writer
        .try_submit(vec![super::readings::sample("d-1", 1, T0)])
        .unwrap();
    // The thread ends by itself (its handle is still held).
    thread
        .join()
        .expect("the panic is caught inside the thread");
    assert_eq!(
        writer.fate().get().map(String::as_str),
        Some("panicked: a readings writer panic made on purpose")
    );
    assert!(matches!(
        writer.try_submit(vec![super::readings::sample("d-1", 2, T0)]),
        Err(StoreError::Closed)
    ));
    assert_eq!(journal.fate().get(), None);
    assert_eq!(
        journal.submit_blocking(vec![new_event("d-1", 1)]).unwrap(),
        [JournalResult::Inserted]
    );
}
