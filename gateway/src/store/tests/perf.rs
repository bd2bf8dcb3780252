//! Measurements of the store, printed and never asserted: ignored in test runs (they assert
//! nothing, and their insert loops would load the machine under the timing-sensitive tests of
//! the same binary), run by `scripts/measure` (release build, one at a time, output shown).
//! docs/performance.md quotes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;

fn summary(mut latencies: Vec<Duration>) -> String {
    firegrid_testkit::summary(&mut latencies)
}

#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn journal_throughput_with_synchronous_full() {
    let dir = tmp();
    let store = open(&db(&dir));
    let mut seq = 0u32;
    let mut next = |n: usize| -> Vec<JournalOp> {
        (0..n)
            .map(|_| {
                seq += 1;
                new_event("d-1", seq)
            })
            .collect()
    };
    println!("journal, synchronous=FULL, one transaction per batch:");
    for (batch, batches) in [(1, 200), (10, 60), (100, 20)] {
        let started = Instant::now();
        for _ in 0..batches {
            store.journal_batch(&next(batch)).unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  batch {batch:>3}: {:>8.0} events/s, {:.2} ms per commit",
            (batch * batches) as f64 / secs,
            secs * 1e3 / batches as f64
        );
    }

    // Group commit: 16 callers, one event each per request, through the writer thread.
    let (writer, thread) = JournalWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..16 {
            let writer = writer.clone();
            s.spawn(move || {
                for seq in 1..=40 {
                    writer
                        .submit_blocking(vec![new_event(&format!("w-{t}"), seq)])
                        .unwrap();
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let stats = writer.stats();
    println!(
        "  writer, 16 callers x 40 single-event requests: {:.0} events/s, {} transactions \
         for {} requests (largest group {})",
        stats.ops as f64 / secs,
        stats.transactions,
        stats.requests,
        stats.largest_group
    );
    drop(writer);
    thread.join().unwrap();
}

#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn journal_latency_under_a_readings_load() {
    let dir = tmp();
    let store = open(&db(&dir));
    let measure = |from: u32| -> Vec<Duration> {
        (from..from + 300)
            .map(|seq| {
                let started = Instant::now();
                store.journal_batch(&[new_event("d-1", seq)]).unwrap();
                started.elapsed()
            })
            .collect()
    };
    let idle = measure(1);

    let alone: Vec<Sample> = (0..10_000)
        .map(|seq| super::readings::sample(&format!("a-{}", seq % 500), seq, T0))
        .collect();
    let started = Instant::now();
    let rows = store.insert_readings(&alone).unwrap().inserted;
    println!(
        "readings alone: {:.0} rows/s ({rows} rows, with hourly rollups)",
        rows as f64 / started.elapsed().as_secs_f64()
    );

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (loaded, rows) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut rows = 0;
            let mut seq = 0;
            // 500 devices' telemetry per batch, until the measurement is done (bounded).
            for _ in 0..1000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let batch: Vec<Sample> = (0..500)
                    .map(|d| {
                        seq += 1;
                        super::readings::sample(&format!("r-{d}"), seq, T0 + u64::from(seq))
                    })
                    .collect();
                rows += store.insert_readings(&batch).unwrap().inserted;
            }
            rows
        });
        let loaded = measure(1000);
        stop.store(true, Ordering::Relaxed);
        (loaded, load.join().unwrap())
    });
    let secs = started.elapsed().as_secs_f64();
    println!("journal latency, single-event commits (synchronous=FULL):");
    println!("  idle:                {}", summary(idle));
    println!(
        "  with readings load:  {} (meanwhile {rows} reading rows, {:.0} rows/s, in {}-row \
         transactions)",
        summary(loaded),
        rows as f64 / secs,
        store.options().readings_chunk_rows
    );
}

/// Readings of a large fleet: every batch (as the pipeline hands them over, up to 512
/// messages) holds distinct devices, each message five channels.
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn readings_of_a_large_fleet() {
    let dir = tmp();
    let store = open(&db(&dir));
    let devices = 20_000u32;
    let mut seq = 0u32;
    let started = Instant::now();
    let mut rows = 0;
    for round in 0..4u32 {
        for first in (0..devices).step_by(512) {
            // Arrival order: many publishers, interleaved.
            let batch: Vec<Sample> = (first..(first + 512).min(devices))
                .map(|i| (i * 7919) % devices)
                .map(|d| {
                    seq += 1;
                    let mut s = super::readings::sample(&format!("fleet-{d:06}"), round, T0);
                    s.ts_ms = T0 + u64::from(round) * 60_000;
                    s
                })
                .collect();
            rows += store.insert_readings(&batch).unwrap().inserted;
        }
    }
    println!(
        "readings of {devices} devices x 4 messages: {:.0} rows/s ({rows} rows, {seq} messages)",
        rows as f64 / started.elapsed().as_secs_f64()
    );
}

/// Why the journal's commits slow down under a heavy readings load: both write one WAL, and a
/// journal fsync flushes the readings' unsynced frames too. Measured against the same load on
/// a second store file (a WAL of its own). Printed, not asserted.
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn journal_latency_beside_heavy_readings_in_the_same_file_or_another() {
    let run = |readings_elsewhere: bool| -> (String, u64) {
        let dir = tmp();
        let store = open(&db(&dir));
        let other_dir = tmp();
        let other = open(&db(&other_dir));
        let target = if readings_elsewhere { &other } else { &store };
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let load = s.spawn(|| {
                let mut rows = 0;
                // Batch b: 512 of 20 000 devices in arrival order, each with seq b.
                for b in 0..30_000u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let batch: Vec<Sample> = (0..512u32)
                        .map(|i| {
                            let d = ((b * 512 + i) * 7919) % 20_000;
                            super::readings::sample(&format!("fleet-{d:06}"), b, T0)
                        })
                        .collect();
                    rows += target.insert_readings(&batch).unwrap().inserted;
                }
                rows
            });
            let latencies: Vec<Duration> = (1..=200)
                .map(|seq| {
                    let started = Instant::now();
                    store.journal_batch(&[new_event("d-1", seq)]).unwrap();
                    let took = started.elapsed();
                    std::thread::sleep(Duration::from_millis(5));
                    took
                })
                .collect();
            stop.store(true, Ordering::Relaxed);
            (summary(latencies), load.join().unwrap())
        })
    };
    let (same, rows_same) = run(false);
    let (apart, rows_apart) = run(true);
    println!("journal commits beside a heavy readings load:");
    println!("  readings in the same file:   {same} ({rows_same} rows meanwhile)");
    println!("  readings in another file:    {apart} ({rows_apart} rows meanwhile)");
}
