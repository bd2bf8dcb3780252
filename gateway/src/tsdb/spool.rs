//! The disk spool between the pipeline and the writer: append-only segment files of
//! checksummed records (the `super::codec` format), a read cursor committed only after the
//! server confirmed a batch, and a size bound that drops the oldest readings — counted.
//!
//! Files in its directory: `{id:020}.seg` (segments, oldest first) and `cursor` (the next
//! unread record: `segment offset crc`, replaced atomically by write-then-rename).
//!
//! - **Crash (`kill -9`):** appended bytes are in the page cache and survive; at open every
//!   segment is scanned, a torn tail is cut off, and reading resumes at the cursor. A batch the
//!   server confirmed but whose cursor was not yet written is sent again (the same points with
//!   the same timestamps: an idempotent overwrite).
//! - **Power loss:** what was fsynced survives ([`Fsync`]).
//! - **Bound:** after an append, while the segments exceed `max_bytes`, the oldest segment is
//!   deleted and its unread records are counted as dropped. A batch being POSTed is never
//!   dropped under the writer (so the count is exact: a dropped reading was never sent); the
//!   bound is enforced again when that POST ends.
//!
//! One `Spool` is shared by the spool thread (appends) and the writer (reads, commits) behind a
//! mutex; every method does blocking file I/O.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

mod cursor;

use super::codec::{self, Decoded, MAX_PAYLOAD, RECORD_HEADER, SEGMENT_MAGIC};
use super::point::Point;
use cursor::{read_cursor, resolve_cursor, write_cursor};

const MAGIC_LEN: u64 = SEGMENT_MAGIC.len() as u64;

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// After every append (each batch the pipeline hands over): survives power loss.
    Always,
    /// By the spool thread every `fsync_interval_ms`: loses at most that much on power loss.
    Interval,
    /// Never explicitly (the OS writes back): survives a crash of the gateway, not of the OS.
    Never,
}

/// The spool's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The most bytes its segments may take; past it the oldest readings are dropped.
    pub max_bytes: u64,
    /// A segment is closed and a new one begun past this size (the unit of dropping).
    pub segment_bytes: u64,
    /// When appends are forced to disk.
    pub fsync: Fsync,
}

impl SpoolOptions {
    /// Segments of 1/16 of the bound, between 4 KiB and 64 MiB.
    pub fn with_bound(max_bytes: u64, fsync: Fsync) -> Self {
        Self {
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(4096, 64 << 20),
            fsync,
        }
    }
}

/// A place in the spool: segment, byte offset, and how many records precede it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    segment: u64,
    offset: u64,
    index: u64,
}

impl Position {
    const fn start(segment: u64) -> Self {
        Self {
            segment,
            offset: MAGIC_LEN,
            index: 0,
        }
    }
}

/// Readings read for one POST, and where the spool's cursor goes once they are written.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The readings, oldest first.
    pub points: Vec<Point>,
    /// The cursor after them.
    pub end: Position,
}

/// What [`Spool::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Readings waiting to be written.
    pub pending: u64,
    /// Segments whose tail was torn or damaged and cut off.
    pub repaired_segments: u64,
    /// Whether the cursor file was missing or unreadable (reading starts at the oldest
    /// segment).
    pub cursor_lost: bool,
}

/// Counts for metrics and the status endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolCounts {
    /// Bytes of all segments.
    pub bytes: u64,
    /// Readings not yet confirmed by the server.
    pub pending: u64,
    /// Readings dropped by the bound (or lost to damage found while reading) since open.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    bytes: u64,
    records: u64,
}

/// The spool. See the [module docs](self).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    opts: SpoolOptions,
    /// Oldest first; the last is the head, appended to.
    segments: VecDeque<Segment>,
    head: File,
    read: Position,
    pending: u64,
    dropped: u64,
    in_flight: bool,
    unsynced: bool,
    scratch: Vec<u8>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, repairing torn tails; appends go to a new segment.
    ///
    /// # Errors
    /// The directory or a file cannot be read or written.
    pub fn open(dir: &Path, opts: SpoolOptions) -> io::Result<(Self, Recovery)> {
        fs::create_dir_all(dir)?;
        let mut recovery = Recovery::default();
        let mut ids: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut segments = VecDeque::new();
        for id in ids {
            let path = segment_path(dir, id);
            let bytes = fs::read(&path)?;
            let body = bytes.strip_prefix(SEGMENT_MAGIC.as_slice()).unwrap_or(&[]);
            let (records, used) = codec::decode_all(body);
            let valid = MAGIC_LEN + used as u64;
            if valid != bytes.len() as u64 {
                recovery.repaired_segments += 1;
                let f = OpenOptions::new().write(true).open(&path)?;
                if bytes.starts_with(SEGMENT_MAGIC) {
                    f.set_len(valid)?;
                } else {
                    f.set_len(0)?;
                    (&f).write_all(SEGMENT_MAGIC)?;
                }
                f.sync_all()?;
            }
            segments.push_back(Segment {
                id,
                bytes: valid,
                records: records.len() as u64,
            });
        }
        let cursor = read_cursor(dir);
        recovery.cursor_lost = cursor.is_none() && !segments.is_empty();
        let read = resolve_cursor(dir, &segments, cursor)?;
        // Segments before the cursor were written but not yet deleted.
        while segments.front().is_some_and(|s| s.id < read.segment) {
            if let Some(s) = segments.pop_front() {
                remove(&segment_path(dir, s.id))?;
            }
        }
        let head_id = segments.back().map_or(1, |s| s.id + 1);
        let head = new_segment(dir, head_id)?;
        segments.push_back(Segment {
            id: head_id,
            bytes: MAGIC_LEN,
            records: 0,
        });
        let read = if segments.iter().any(|s| s.id == read.segment) {
            read
        } else {
            Position::start(segments.front().map_or(head_id, |s| s.id))
        };
        let pending = segments
            .iter()
            .filter(|s| s.id >= read.segment)
            .map(|s| s.records)
            .sum::<u64>()
            - read.index;
        recovery.pending = pending;
        let mut me = Self {
            dir: dir.to_owned(),
            opts,
            segments,
            head,
            read,
            pending,
            dropped: 0,
            in_flight: false,
            unsynced: false,
            scratch: Vec::new(),
        };
        me.advance_past_ends();
        Ok((me, recovery))
    }

    /// Its counts now.
    pub fn counts(&self) -> SpoolCounts {
        SpoolCounts {
            bytes: self.segments.iter().map(|s| s.bytes).sum(),
            pending: self.pending,
            dropped: self.dropped,
        }
    }

    /// Appends `points` (durably per the [`Fsync`] policy), then enforces the bound; returns
    /// how many readings the bound dropped.
    ///
    /// # Errors
    /// A write fails (e.g. the disk is full): none of `points` is kept.
    pub fn append(&mut self, points: &[Point]) -> io::Result<u64> {
        let mut payload = Vec::with_capacity(128);
        let mut records = 0u64;
        self.scratch.clear();
        for p in points {
            payload.clear();
            p.encode(&mut payload);
            if payload.len() > MAX_PAYLOAD {
                continue;
            }
            let size = (RECORD_HEADER + payload.len()) as u64;
            let head = self.head_segment();
            if head.records + records > 0
                && head.bytes + self.scratch.len() as u64 + size > self.opts.segment_bytes
            {
                self.write_scratch(records)?;
                records = 0;
                self.roll()?;
            }
            codec::encode_record(&payload, &mut self.scratch);
            records += 1;
        }
        self.write_scratch(records)?;
        if self.opts.fsync == Fsync::Always {
            self.sync()?;
        }
        Ok(self.enforce_bound())
    }

    /// Forces appended records to disk.
    ///
    /// # Errors
    /// fsync fails.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.head.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Reads up to `max` readings from the cursor for one POST; `None` if none is pending.
    /// Until [`commit`](Self::commit) or [`release`](Self::release), the bound drops nothing
    /// (the batch is in flight).
    ///
    /// # Errors
    /// A segment cannot be read.
    pub fn read_batch(&mut self, max: usize) -> io::Result<Option<Batch>> {
        self.advance_past_ends();
        if self.pending == 0 || max == 0 {
            return Ok(None);
        }
        let mut points = Vec::new();
        let mut at = self.read;
        let mut buf = Vec::with_capacity(256);
        'segments: while points.len() < max {
            let Some(seg) = self.segment(at.segment) else {
                break;
            };
            let mut file = File::open(segment_path(&self.dir, seg.id))?;
            file.seek(SeekFrom::Start(at.offset))?;
            let mut r = BufReader::with_capacity(64 * 1024, file.take(seg.bytes - at.offset));
            while points.len() < max && at.offset < seg.bytes {
                buf.resize(RECORD_HEADER, 0);
                r.read_exact(&mut buf)?;
                let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                buf.resize(RECORD_HEADER + len.min(MAX_PAYLOAD), 0);
                let read_ok = r.read_exact(&mut buf[RECORD_HEADER..]).is_ok();
                let point = match (read_ok, codec::decode_record(&buf)) {
                    (true, Decoded::Record { payload, .. }) => Point::decode(payload),
                    _ => None,
                };
                let Some(point) = point else {
                    if !points.is_empty() {
                        // Send what came before; the next batch starts at the damage.
                        break 'segments;
                    }
                    // Damaged since it was checked at open: the rest of the segment is lost.
                    let lost = seg.records - at.index;
                    tracing::error!(
                        segment = seg.id,
                        lost,
                        "tsdb spool: a damaged record; the rest of its segment is dropped"
                    );
                    self.lose(seg.id, lost);
                    at = self.read;
                    continue 'segments;
                };
                points.push(point);
                at.offset += buf.len() as u64;
                at.index += 1;
            }
            if at.offset >= seg.bytes {
                match self.segments.iter().find(|s| s.id > seg.id) {
                    Some(next) => at = Position::start(next.id),
                    None => break,
                }
            }
        }
        if points.is_empty() {
            return Ok(None);
        }
        self.in_flight = true;
        Ok(Some(Batch { points, end: at }))
    }

    /// The server confirmed the batch that ends at `end`: moves the cursor there (persisted
    /// atomically), deletes segments read to their end, and enforces the bound; returns how
    /// many readings the bound dropped.
    ///
    /// # Errors
    /// The cursor cannot be written.
    pub fn commit(&mut self, end: Position) -> io::Result<u64> {
        let done = self.records_between(self.read, end);
        self.pending = self.pending.saturating_sub(done);
        self.read = end;
        self.in_flight = false;
        self.advance_past_ends();
        write_cursor(&self.dir, self.read, self.opts.fsync != Fsync::Never)?;
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| s.id < self.read.segment)
        {
            if let Some(s) = self.segments.pop_front() {
                remove(&segment_path(&self.dir, s.id))?;
            }
        }
        Ok(self.enforce_bound())
    }

    /// The batch in flight was not written (it will be read again); enforces the bound; returns
    /// how many readings it dropped.
    pub fn release(&mut self) -> u64 {
        self.in_flight = false;
        self.enforce_bound()
    }

    fn head_segment(&self) -> Segment {
        self.segments.back().copied().unwrap_or(Segment {
            id: 0,
            bytes: MAGIC_LEN,
            records: 0,
        })
    }

    fn segment(&self, id: u64) -> Option<Segment> {
        self.segments.iter().find(|s| s.id == id).copied()
    }

    fn write_scratch(&mut self, records: u64) -> io::Result<()> {
        if self.scratch.is_empty() {
            return Ok(());
        }
        let head = self.head_segment();
        if let Err(e) = self.head.write_all(&self.scratch) {
            // Cut a partial write off so that the segment stays what we count.
            let _ = self.head.set_len(head.bytes);
            let _ = self.head.seek(SeekFrom::End(0));
            self.scratch.clear();
            return Err(e);
        }
        if let Some(h) = self.segments.back_mut() {
            h.bytes += self.scratch.len() as u64;
            h.records += records;
        }
        self.pending += records;
        self.unsynced = true;
        self.scratch.clear();
        Ok(())
    }

    fn roll(&mut self) -> io::Result<()> {
        if self.opts.fsync != Fsync::Never {
            self.sync()?;
        }
        let id = self.head_segment().id + 1;
        self.head = new_segment(&self.dir, id)?;
        self.unsynced = false;
        self.segments.push_back(Segment {
            id,
            bytes: MAGIC_LEN,
            records: 0,
        });
        Ok(())
    }

    /// Drops the oldest segments while over the bound (never the head, never under a batch in
    /// flight); returns the unread readings dropped.
    fn enforce_bound(&mut self) -> u64 {
        let mut dropped = 0;
        while !self.in_flight
            && self.segments.len() > 1
            && self.counts().bytes > self.opts.max_bytes
        {
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            let unread = match oldest.id.cmp(&self.read.segment) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => oldest.records - self.read.index,
                std::cmp::Ordering::Greater => oldest.records,
            };
            if let Err(e) = remove(&segment_path(&self.dir, oldest.id)) {
                tracing::error!("tsdb spool: cannot delete segment {}: {e}", oldest.id);
            }
            dropped += unread;
            self.pending = self.pending.saturating_sub(unread);
            if self.read.segment <= oldest.id
                && let Some(next) = self.segments.front()
            {
                self.read = Position::start(next.id);
            }
        }
        self.dropped += dropped;
        dropped
    }

    /// Marks the rest of segment `id` from the cursor as lost (damage found while reading).
    fn lose(&mut self, id: u64, lost: u64) {
        self.pending = self.pending.saturating_sub(lost);
        self.dropped += lost;
        if let Some(s) = self.segments.iter_mut().find(|s| s.id == id) {
            s.records = self.read.index;
            s.bytes = self.read.offset;
        }
        if id == self.head_segment().id
            && let Err(e) = self.roll()
        {
            tracing::error!("tsdb spool: cannot begin a new segment: {e}");
        }
        if let Some(next) = self.segments.iter().find(|s| s.id > id) {
            self.read = Position::start(next.id);
        }
    }

    /// Moves the cursor from the end of a closed segment to the start of the next.
    fn advance_past_ends(&mut self) {
        while let Some(seg) = self.segment(self.read.segment) {
            let next = self.segments.iter().find(|s| s.id > seg.id).map(|s| s.id);
            match next {
                Some(next) if self.read.offset >= seg.bytes => self.read = Position::start(next),
                _ => break,
            }
        }
    }

    fn records_between(&self, from: Position, to: Position) -> u64 {
        if from.segment == to.segment {
            return to.index.saturating_sub(from.index);
        }
        self.segments
            .iter()
            .filter(|s| s.id >= from.segment && s.id < to.segment)
            .map(|s| {
                if s.id == from.segment {
                    s.records - from.index
                } else {
                    s.records
                }
            })
            .sum::<u64>()
            + to.index
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn new_segment(dir: &Path, id: u64) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(segment_path(dir, id))?;
    f.write_all(SEGMENT_MAGIC)?;
    Ok(f)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
