//! The spool's cursor file: `segment offset crc` of the next unread record, replaced atomically
//! (write `cursor.tmp`, rename), and where it points among the segments found at open.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::super::codec::{self, Decoded};
use super::{MAGIC_LEN, Position, Segment, segment_path};

fn cursor_text(segment: u64, offset: u64) -> String {
    let body = format!("{segment} {offset}");
    format!("{body} {}\n", crc32fast::hash(body.as_bytes()))
}

pub(super) fn write_cursor(dir: &Path, p: Position, sync: bool) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(cursor_text(p.segment, p.offset).as_bytes())?;
    if sync {
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join("cursor"))
}

/// The cursor file's (segment, offset), if it is there and intact.
pub(super) fn read_cursor(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let (segment, offset) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    (cursor_text(segment, offset) == text).then_some((segment, offset))
}

/// The position of the cursor among the segments found: at a record boundary of its segment,
/// else the start of the first segment after it.
pub(super) fn resolve_cursor(
    dir: &Path,
    segments: &VecDeque<Segment>,
    cursor: Option<(u64, u64)>,
) -> io::Result<Position> {
    let first = segments.front().map_or(1, |s| s.id);
    let Some((segment, offset)) = cursor else {
        return Ok(Position::start(first));
    };
    let Some(seg) = segments.iter().find(|s| s.id >= segment) else {
        return Ok(Position::start(segment));
    };
    if seg.id != segment {
        return Ok(Position::start(seg.id));
    }
    let bytes = fs::read(segment_path(dir, segment))?;
    let body = bytes.get(MAGIC_LEN as usize..).unwrap_or(&[]);
    let mut at = 0usize;
    let mut index = 0;
    while MAGIC_LEN + (at as u64) < offset {
        match codec::decode_record(&body[at..]) {
            Decoded::Record { len, .. } => {
                at += len;
                index += 1;
            }
            _ => break,
        }
    }
    if MAGIC_LEN + at as u64 == offset {
        Ok(Position {
            segment,
            offset,
            index,
        })
    } else {
        tracing::error!(
            segment,
            offset,
            "tsdb spool: the cursor is not at a record; re-reading its segment"
        );
        Ok(Position::start(segment))
    }
}
