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

/// The message stream of a fleet of `devices` monitors, in arrival order (many publishers
/// interleaved), `messages` in all: each device's messages one second apart, five channels
/// each (residual current on channel 0, temperature on 1–4: the benchmark's monitor).
fn fleet_stream(devices: u32, messages: u32) -> Vec<Sample> {
    use firegrid_protocols::message::Reading;
    (0..messages)
        .map(|i| {
            let d = (i * 7919) % devices;
            let round = i / devices;
            let mut readings = vec![Reading {
                channel: 0,
                residual_ma: Some(20 + i % 50),
                ..Reading::default()
            }];
            readings.extend((1..=4).map(|ch| Reading {
                channel: ch,
                temp_dc: Some(250 + i16::try_from(i % 97).unwrap_or(0)),
                ..Reading::default()
            }));
            Sample {
                device: did(&format!("fleet-{d:06}")),
                seq: round + 1,
                ts_ms: T0 + u64::from(round) * 1000,
                readings,
            }
        })
        .collect()
}

/// The readings layout of readings file version 1 (the release before issue 12 part 3), as its
/// writer wrote it: one row per (message, channel) keyed by `(device, channel, seq)`, the index
/// `(device, channel, ts_ms)`, rollups upserted per 256-row transaction; rows of a batch in key
/// order. Kept here, and only here, to measure the new layout against it.
fn old_layout_insert(conn: &mut Connection, batch: &[Sample]) -> u64 {
    use std::collections::HashMap;
    let mut rows: Vec<(&Sample, &firegrid_protocols::message::Reading)> = batch
        .iter()
        .flat_map(|s| s.readings.iter().map(move |r| (s, r)))
        .collect();
    rows.sort_unstable_by(|(a, x), (b, y)| {
        (a.device.as_str(), x.channel, a.seq).cmp(&(b.device.as_str(), y.channel, b.seq))
    });
    let mut inserted = 0;
    for chunk in rows.chunks(256) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        // (count, residual n/min/max/sum, temp n/min/max/sum) per (device, channel, hour).
        let mut hours: HashMap<(&str, u8, u64), [i64; 9]> = HashMap::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO readings (device, channel, seq, ts_ms, residual_ma, \
                     temp_dc, voltage_dv, current_ma) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .unwrap();
            for (s, r) in chunk {
                let n = insert
                    .execute(rusqlite::params![
                        s.device.as_str(),
                        r.channel,
                        s.seq,
                        s.ts_ms,
                        r.residual_ma,
                        r.temp_dc,
                        r.voltage_dv,
                        r.current_ma
                    ])
                    .unwrap();
                if n == 0 {
                    continue;
                }
                inserted += 1;
                let h = hours
                    .entry((s.device.as_str(), r.channel, s.ts_ms / HOUR_MS * HOUR_MS))
                    .or_insert([0, 0, i64::MAX, i64::MIN, 0, 0, i64::MAX, i64::MIN, 0]);
                h[0] += 1;
                for (at, v) in [
                    (1, r.residual_ma.map(i64::from)),
                    (5, r.temp_dc.map(i64::from)),
                ] {
                    if let Some(v) = v {
                        h[at] += 1;
                        h[at + 1] = h[at + 1].min(v);
                        h[at + 2] = h[at + 2].max(v);
                        h[at + 3] += v;
                    }
                }
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO readings_hourly (device, channel, hour_ms, count, residual_n, \
                     residual_min, residual_max, residual_sum, temp_n, temp_min, temp_max, \
                     temp_sum) VALUES (?1, ?2, ?3, ?4, ?5, nullif(?6, 9223372036854775807), \
                     nullif(?7, -9223372036854775808), ?8, ?9, \
                     nullif(?10, 9223372036854775807), nullif(?11, -9223372036854775808), ?12) \
                     ON CONFLICT(device, channel, hour_ms) DO UPDATE SET \
                     count = count + excluded.count, \
                     residual_n = residual_n + excluded.residual_n, \
                     residual_min = min(coalesce(residual_min, excluded.residual_min), \
                                        coalesce(excluded.residual_min, residual_min)), \
                     residual_max = max(coalesce(residual_max, excluded.residual_max), \
                                        coalesce(excluded.residual_max, residual_max)), \
                     residual_sum = residual_sum + excluded.residual_sum, \
                     temp_n = temp_n + excluded.temp_n, \
                     temp_min = min(coalesce(temp_min, excluded.temp_min), \
                                    coalesce(excluded.temp_min, temp_min)), \
                     temp_max = max(coalesce(temp_max, excluded.temp_max), \
                                    coalesce(excluded.temp_max, temp_max)), \
                     temp_sum = temp_sum + excluded.temp_sum",
                )
                .unwrap();
            for ((device, channel, hour), h) in &hours {
                upsert
                    .execute(rusqlite::params![
                        device, channel, hour, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    inserted
}

/// The same message stream written through the old layout and the new one, in the same run,
/// for a small fleet (1000 devices: each sends often) and a large one (20 000): reading rows
/// per second each, and the readings file's size. Batches as the readings writer takes them:
/// 200 messages (its group of 1000 rows, before) and 1600 (8192 rows, now).
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn readings_layout_old_and_new_on_the_same_stream() {
    let messages = 200_000u32;
    println!(
        "readings layouts, {messages} messages of 5 channels ({} rows), same stream:",
        messages * 5
    );
    for devices in [1000u32, 20_000] {
        let stream = fleet_stream(devices, messages);
        let size = |p: &Path| -> f64 {
            let mut total = 0;
            for suffix in ["", "-wal"] {
                let mut f = p.to_path_buf().into_os_string();
                f.push(suffix);
                total += std::fs::metadata(&f).map_or(0, |m| m.len());
            }
            total as f64 / 1_048_576.0
        };
        // Old: a readings file of version 1, configured as the readings connection is.
        let dir = tmp();
        let path = dir.path().join("old-readings.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        configure(&conn, Role::Readings).unwrap();
        conn.execute_batch(crate::store::schema::READINGS_MIGRATIONS[0])
            .unwrap();
        let started = Instant::now();
        let mut rows = 0;
        for batch in stream.chunks(200) {
            rows += old_layout_insert(&mut conn, batch);
        }
        let old = rows as f64 / started.elapsed().as_secs_f64();
        let old_mb = size(&path);
        drop(conn);
        // New, at the old writer's group and at the new one.
        let mut new = Vec::new();
        for group in [200, 1600] {
            let dir = tmp();
            let store = open(&db(&dir));
            let started = Instant::now();
            let mut rows = 0;
            for batch in stream.chunks(group) {
                rows += store.insert_readings(batch).unwrap().inserted;
            }
            new.push((
                group,
                rows as f64 / started.elapsed().as_secs_f64(),
                size(store.readings_path()),
            ));
        }
        println!(
            "  {devices:>6} devices: old layout {old:>8.0} rows/s ({old_mb:.0} MiB); new layout \
             {}",
            new.iter()
                .map(|(g, r, mb)| format!(
                    "{r:>8.0} rows/s in {g}-message batches ({:.1}x, {mb:.0} MiB)",
                    r / old
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The readings writer's CPU per message by the size of the group it takes at once (each group
/// sorted, then written in transactions of `readings_chunk_rows`): the same stream of 300 000
/// five-channel messages in arrival order, in groups of 1600 messages (the writer's group before
/// it lingered: 8192 rows) and larger, at the benchmark's fleet sizes. CPU time of the writing
/// thread (user and kernel, from `/proc/thread-self/schedstat`) and wall time.
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn readings_writer_groups() {
    fn cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
    let messages = 300_000u32;
    println!("readings writer, {messages} messages of 5 channels, CPU (wall) per message:");
    for devices in [1000u32, 10_000, 100_000] {
        let stream = fleet_stream(devices, messages);
        let mut line = format!("  {devices:>6} devices:");
        for group in [1600, 6400, 12_800] {
            let dir = tmp();
            let store = open(&db(&dir));
            let (started, cpu) = (Instant::now(), cpu_ns());
            for batch in stream.chunks(group) {
                store.insert_readings(batch).unwrap();
            }
            let wall = started.elapsed().as_secs_f64();
            let cpu = cpu_ns().saturating_sub(cpu) as f64 / 1e9;
            let per = |s: f64| s * 1e6 / f64::from(messages);
            line += &format!(
                "  {group:>5}-message groups {:.1} us ({:.1} us)",
                per(cpu),
                per(wall)
            );
        }
        println!("{line}");
    }
}

/// Bytes this process has had written to the disk so far (`/proc/self/io`).
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `messages` telemetry messages of `devices` devices in arrival order at `rate` a second (a
/// device after another, each message timed at its arrival), five channels each.
fn timed_stream(devices: u32, messages: u32, rate: u32) -> Vec<Sample> {
    let mut seqs = vec![0u32; devices as usize];
    fleet_stream(devices, messages)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let d = (i as u32 * 7919) % devices;
            seqs[d as usize] += 1;
            s.seq = seqs[d as usize];
            s.ts_ms = T0 + i as u64 * 1000 / u64::from(rate);
            s
        })
        .collect()
}

/// The day tables' two keys (decision record 24): `(device, ts_ms, seq)` and `(ts_ms / 1000,
/// device, ts_ms, seq)`. Writing: 30 s of a fleet sending 40 000 messages a second, in groups
/// of 10 000 (the writer's at that rate), wall time, CPU and bytes written to the disk per
/// message. Reading: one device's day of raw readings, one every 10 s, grouped by 10 minutes.
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn readings_keyed_by_device_or_by_the_second() {
    use crate::store::readings::{DayKey, create_day};
    fn keyed(key: DayKey, days: impl IntoIterator<Item = u64>) -> (TempDir, Store) {
        let dir = tmp();
        let store = open(&db(&dir));
        for day in days {
            store.write_readings(|c| create_day(c, day, key)).unwrap();
        }
        (dir, store)
    }
    fn cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
    let keys = [
        ("device first", DayKey::Device),
        ("second first", DayKey::NEW),
    ];
    let rate = 40_000u32;
    println!(
        "readings at {rate} messages/s, groups of 10 000, per message: wall (CPU), disk written"
    );
    for devices in [1000u32, 10_000, 100_000] {
        let stream = timed_stream(devices, 30 * rate, rate);
        let mut line = format!("  {devices:>6} devices:");
        for (name, key) in keys {
            let (_dir, store) = keyed(key, [T0 / DAY_MS]);
            let (started, cpu, written) = (Instant::now(), cpu_ns(), written_bytes());
            for batch in stream.chunks(10_000) {
                store.insert_readings_at(batch, T0 + DAY_MS).unwrap();
            }
            let per = |x: f64| x / f64::from(30 * rate);
            line += &format!(
                "  {name}: {:.1} us ({:.1} us), {:.0} B",
                per(started.elapsed().as_secs_f64() * 1e6),
                per(cpu_ns().saturating_sub(cpu) as f64 / 1e3),
                per((written_bytes() - written) as f64)
            );
        }
        println!("{line}");
    }
    let (devices, every_ms) = (100u32, 10_000u64);
    println!(
        "one device's day ({} readings among {devices} devices), 144 points of 10 min:",
        DAY_MS / every_ms
    );
    let day0 = T0 / DAY_MS * DAY_MS;
    let stream: Vec<Sample> = (0..DAY_MS / every_ms)
        .flat_map(|i| {
            (0..devices).map(move |d| {
                let mut s = super::readings::sample(&format!("fleet-{d:06}"), i as u32 + 1, 0);
                s.ts_ms = day0 + i * every_ms + u64::from(d);
                s
            })
        })
        .collect();
    for (name, key) in keys {
        let (_dir, store) = keyed(key, [T0 / DAY_MS]);
        for batch in stream.chunks(10_000) {
            store.insert_readings_at(batch, T0 + DAY_MS).unwrap();
        }
        let device = did("fleet-000042");
        let mut took = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let points = store
                .history(&device, 0, day0, day0 + DAY_MS, 600_000)
                .unwrap();
            took.push(started.elapsed());
            assert_eq!(points.len(), 144);
        }
        println!("  {name}: {}", summary(took));
    }
}

/// What an alarm's commit costs while a large fleet's readings are written as fast as they go
/// (100 000 devices, 30 s of 40 000 messages a second, groups of 10 000): single-event journal
/// commits every 10 ms meanwhile, beside the readings file's commits (decision 25).
#[test]
#[ignore = "a measurement: scripts/measure runs it"]
fn journal_latency_beside_a_large_fleets_readings() {
    let stream = timed_stream(100_000, 1_200_000, 40_000);
    let dir = tmp();
    let store = open(&db(&dir));
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let latencies = std::thread::scope(|s| {
        let journal = s.spawn(|| {
            let mut out = Vec::new();
            let mut seq = 1;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                store.journal_batch(&[new_event("d-1", seq)]).unwrap();
                out.push(t.elapsed());
                seq += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            out
        });
        for batch in stream.chunks(10_000) {
            store.insert_readings_at(batch, T0 + DAY_MS).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        journal.join().unwrap()
    });
    println!(
        "readings of 100 000 devices at {:.0} messages/s; journal commits meanwhile: {}",
        stream.len() as f64 / started.elapsed().as_secs_f64(),
        summary(latencies)
    );
}
