use super::*;
use crate::tsdb::point::Tags;

fn point(i: u64) -> Point {
    Point {
        device: format!("hz-{:04}", i % 100),
        channel: u8::try_from(i % 16).unwrap(),
        ts_ns: 1_764_403_200_000_000_000 + i64::try_from(i).unwrap() * 1_000_000,
        residual_ma: Some(u32::try_from(i % 1000).unwrap()),
        temp_dc: i.is_multiple_of(3).then_some(312),
        voltage_dv: None,
        current_ma: None,
        tags: Tags {
            site: Some(3),
            circuit: i.is_multiple_of(2).then_some(12),
            grid: Some("grid-7".into()),
        },
    }
}

fn points(range: std::ops::Range<u64>) -> Vec<Point> {
    range.map(point).collect()
}

fn opts(max_bytes: u64, segment_bytes: u64) -> SpoolOptions {
    SpoolOptions {
        max_bytes,
        segment_bytes,
        fsync: Fsync::Never,
    }
}

/// Reads and commits everything, `batch` at a time.
fn drain(spool: &mut Spool, batch: usize) -> Vec<Point> {
    let mut out = Vec::new();
    while let Some(b) = spool.read_batch(batch).unwrap() {
        out.extend(b.points);
        spool.commit(b.end).unwrap();
    }
    out
}

#[test]
fn a_point_round_trips_through_its_binary_form() {
    for i in 0..50 {
        let p = point(i);
        let mut bytes = Vec::new();
        p.encode(&mut bytes);
        assert_eq!(Point::decode(&bytes), Some(p));
        assert_eq!(Point::decode(&bytes[..bytes.len() - 1]), None);
        bytes.push(0);
        assert_eq!(Point::decode(&bytes), None);
    }
}

#[test]
fn readings_come_out_in_order_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(1 << 30, 2048);
    let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
    assert_eq!(rec, Recovery::default());
    spool.append(&points(0..300)).unwrap();
    assert_eq!(spool.counts().pending, 300);
    assert!(
        spool.segments.len() > 3,
        "{} segments",
        spool.segments.len()
    );
    let first = spool.read_batch(120).unwrap().unwrap();
    assert_eq!(first.points, points(0..120));
    spool.commit(first.end).unwrap();
    // Read but not committed: comes again after a restart.
    let second = spool.read_batch(50).unwrap().unwrap();
    assert_eq!(second.points, points(120..170));
    drop(spool);

    let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
    assert_eq!(rec.pending, 180);
    assert!(!rec.cursor_lost);
    spool.append(&points(300..310)).unwrap();
    assert_eq!(drain(&mut spool, 64), points(120..310));
    assert_eq!(spool.counts().pending, 0);
    // Read segments are deleted: only the head is left.
    assert_eq!(spool.segments.len(), 1);
    drop(spool);
    let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
    assert_eq!(rec.pending, 0);
    assert!(spool.read_batch(10).unwrap().is_none());
}

/// A torn write after `kill -9`: every complete record is kept, the tail is cut, nothing comes
/// twice, and appends after the restart follow.
#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(1 << 30, 1 << 20);
    let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
    spool.append(&points(0..10)).unwrap();
    let head = segment_path(dir.path(), spool.head_segment().id);
    drop(spool);
    // Half a record more.
    let mut record = Vec::new();
    let mut payload = Vec::new();
    point(10).encode(&mut payload);
    codec::encode_record(&payload, &mut record);
    let mut f = OpenOptions::new().append(true).open(&head).unwrap();
    f.write_all(&record[..record.len() / 2]).unwrap();
    drop(f);

    let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
    assert_eq!(rec.pending, 10);
    assert_eq!(rec.repaired_segments, 1);
    assert!(rec.cursor_lost, "no batch was ever committed");
    spool.append(&points(11..13)).unwrap();
    let mut want = points(0..10);
    want.extend(points(11..13));
    assert_eq!(drain(&mut spool, 4), want);
}

#[test]
fn a_damaged_cursor_means_reading_from_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(1 << 30, 1 << 20);
    let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
    spool.append(&points(0..10)).unwrap();
    let b = spool.read_batch(4).unwrap().unwrap();
    spool.commit(b.end).unwrap();
    drop(spool);
    fs::write(dir.path().join("cursor"), "1 999 0\n").unwrap();
    let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
    assert!(rec.cursor_lost);
    // At least once: the committed four come again rather than anything being skipped.
    assert_eq!(drain(&mut spool, 100), points(0..10));
}

/// The bound drops the oldest readings, and the count is exact: what was appended is what was
/// read plus what was dropped, with the dropped ones the oldest.
#[test]
fn the_bound_drops_the_oldest_and_counts_them_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(16 * 1024, 2048);
    let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
    let mut dropped = 0;
    for i in 0..40 {
        dropped += spool.append(&points(i * 50..(i + 1) * 50)).unwrap();
        assert!(spool.counts().bytes <= o.max_bytes + o.segment_bytes);
    }
    assert!(dropped > 0);
    assert_eq!(spool.counts().dropped, dropped);
    assert_eq!(spool.counts().pending, 2000 - dropped);
    let got = drain(&mut spool, 77);
    assert_eq!(got.len() as u64 + dropped, 2000);
    // The oldest were dropped: what is left is the newest, in order, without a gap.
    assert_eq!(got, points(dropped..2000));
}

/// A batch being POSTed is not dropped under the writer; the bound catches up when it ends.
#[test]
fn a_batch_in_flight_is_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(8 * 1024, 2048);
    let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
    spool.append(&points(0..20)).unwrap();
    let b = spool.read_batch(20).unwrap().unwrap();
    assert_eq!(spool.append(&points(20..400)).unwrap(), 0);
    assert_eq!(spool.counts().pending, 400);
    let dropped = spool.commit(b.end).unwrap();
    assert!(dropped > 0);
    let rest = drain(&mut spool, 1000);
    assert_eq!(20 + rest.len() as u64 + dropped, 400);
    assert_eq!(rest, points(20 + dropped..400));

    // Released (not written): the bound drops, and the batch is read again from the new oldest.
    spool.append(&points(400..420)).unwrap();
    let _b = spool.read_batch(20).unwrap().unwrap();
    spool.append(&points(420..800)).unwrap();
    let dropped = spool.release();
    assert!(dropped > 0);
    let rest = drain(&mut spool, 1000);
    assert_eq!(rest, points(400 + dropped..800));
}

#[test]
fn a_record_damaged_after_open_loses_only_the_rest_of_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(1 << 30, 2048);
    let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
    spool.append(&points(0..100)).unwrap();
    let first = spool.segments[0];
    // Flip a byte inside the first segment's third record.
    let path = segment_path(dir.path(), first.id);
    let mut bytes = fs::read(&path).unwrap();
    let mut at = MAGIC_LEN as usize;
    for _ in 0..2 {
        match codec::decode_record(&bytes[at..]) {
            Decoded::Record { len, .. } => at += len,
            other => panic!("{other:?}"),
        }
    }
    bytes[at + RECORD_HEADER + 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let got = drain(&mut spool, 1000);
    let lost = first.records - 2;
    assert_eq!(spool.counts().dropped, lost);
    let mut want = points(0..2);
    want.extend(points(first.records..100));
    assert_eq!(got, want);
}

mod torn {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// A segment cut anywhere (a write torn by `kill -9`, or a partial page after a power
        /// loss): reopening never fails, and every complete record before the cut comes back,
        /// in order, once; appends after it follow without a gap.
        #[test]
        fn a_spool_torn_anywhere_recovers_every_complete_record(
            n in 1u64..60,
            cut in any::<prop::sample::Index>(),
            zeros in 0usize..40,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let o = opts(1 << 30, 1 << 20);
            let (mut spool, _) = Spool::open(dir.path(), o).unwrap();
            spool.append(&points(0..n)).unwrap();
            let head = segment_path(dir.path(), spool.head_segment().id);
            drop(spool);
            let mut ends = Vec::new();
            let mut at = MAGIC_LEN;
            for p in points(0..n) {
                let mut payload = Vec::new();
                p.encode(&mut payload);
                at += (RECORD_HEADER + payload.len()) as u64;
                ends.push(at);
            }
            let len = fs::metadata(&head).unwrap().len();
            prop_assert_eq!(len, at);
            let cut = cut.index(usize::try_from(len).unwrap() + 1) as u64;
            let f = OpenOptions::new().write(true).open(&head).unwrap();
            f.set_len(cut).unwrap();
            // What a filesystem may leave after a power loss: zeros past the cut.
            (&f).seek(SeekFrom::End(0)).unwrap();
            (&f).write_all(&vec![0; zeros]).unwrap();
            drop(f);
            let complete = ends.iter().filter(|&&e| e <= cut).count() as u64;

            let (mut spool, rec) = Spool::open(dir.path(), o).unwrap();
            prop_assert_eq!(rec.pending, complete);
            spool.append(&points(1000..1003)).unwrap();
            let mut want = points(0..complete);
            want.extend(points(1000..1003));
            prop_assert_eq!(drain(&mut spool, 7), want);
        }

        /// A point's binary form: any bytes decode to a point or nothing, never a panic; every
        /// point round-trips.
        #[test]
        fn points_decode_totally(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Some(p) = Point::decode(&bytes) {
                let mut again = Vec::new();
                p.encode(&mut again);
                prop_assert_eq!(Point::decode(&again), Some(p));
            }
        }

        #[test]
        fn points_round_trip(
            device in "[A-Za-z0-9_-]{1,32}",
            channel in 0u8..16,
            ts_ns in any::<i64>(),
            residual_ma in any::<Option<u32>>(),
            temp_dc in any::<Option<i16>>(),
            voltage_dv in any::<Option<u16>>(),
            current_ma in any::<Option<u32>>(),
            site in any::<Option<i64>>(),
            circuit in any::<Option<i64>>(),
            grid in proptest::option::of("[a-z0-9-]{1,20}"),
        ) {
            let p = Point {
                device, channel, ts_ns, residual_ma, temp_dc, voltage_dv, current_ma,
                tags: Tags { site, circuit, grid },
            };
            let mut bytes = Vec::new();
            p.encode(&mut bytes);
            prop_assert_eq!(Point::decode(&bytes), Some(p));
        }
    }
}
