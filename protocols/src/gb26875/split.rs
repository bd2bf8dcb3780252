//! A streaming frame splitter for TCP: bytes in as they arrive, whole frames out.
//!
//! It survives garbage between frames, frames split over reads and several frames in one read,
//! and private protocols that reuse `@@ … ##`: a candidate is a frame only when its length
//! field (30 + L bytes) lands on `##`. A candidate still waiting for bytes is given up as soon
//! as a complete frame (length, end marker and checksum right) starts inside it, so a stray
//! `@@` cannot hold back the frames behind it. Nothing here allocates: the buffer is
//! [`BUFFER`] bytes, one largest frame and a read's worth more.
//!
//! ```
//! use firegrid_protocols::gb26875::{frame::MAX_FRAME, profile::STANDARD, split::{Piece, Splitter}};
//!
//! let keep_alive = [
//!     0x40, 0x40, 0x00, 0x00, 0x01, 0x01, 0x0c, 0x3b, 0x0c, 0x1b, 0x0c, 0x11, 0x67, 0x2b,
//!     0x00, 0x00, 0x00, 0x00, 0x38, 0x5b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xb5,
//!     0x23, 0x23,
//! ];
//! let mut s = Splitter::new(STANDARD);
//! let mut frame = [0u8; MAX_FRAME];
//! assert_eq!(s.push(b"noise"), 5);
//! assert_eq!(s.push(&keep_alive[..10]), 10);
//! assert_eq!(s.next(&mut frame), Some(Piece::Skipped { bytes: 5 }));
//! assert_eq!(s.next(&mut frame), None); // needs more bytes
//! s.push(&keep_alive[10..]);
//! assert_eq!(s.next(&mut frame), Some(Piece::Frame { len: 30 }));
//! assert_eq!(&frame[..30], &keep_alive[..]);
//! ```

use super::frame::{END, HEADER_LEN, MAX_ADU, MAX_FRAME, MIN_FRAME, START, peek_header};
use super::profile::Profile;

/// The splitter's buffer, bytes: a largest frame and 1 KiB more.
pub const BUFFER: usize = MAX_FRAME + 1024;

/// What the splitter found at the front of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A frame of `len` bytes, copied to the caller's buffer. Its framing (start, length, end)
    /// is right; its checksum and content are for [`super::frame::decode`] to judge, so that a
    /// bad one can be answered with a deny.
    Frame {
        /// Its length, bytes.
        len: usize,
    },
    /// Bytes that are not a GB/T 26875.3 frame were dropped (count them).
    Skipped {
        /// How many.
        bytes: usize,
    },
}

/// The splitter. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Splitter {
    buf: [u8; BUFFER],
    len: usize,
    profile: Profile,
}

impl Splitter {
    /// An empty splitter; `profile` decides which checksums make a frame complete when looking
    /// past a doubtful candidate.
    pub const fn new(profile: Profile) -> Self {
        Self {
            buf: [0; BUFFER],
            len: 0,
            profile,
        }
    }

    /// Appends as many of `data`'s bytes as fit; returns how many. Call [`Splitter::next`]
    /// until it gives `None`, then push the rest.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let free = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = free.len().min(data.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = self.len.saturating_add(n);
        n
    }

    /// How many more bytes [`Splitter::push`] takes now.
    pub fn free(&self) -> usize {
        BUFFER.saturating_sub(self.len)
    }

    /// Bytes held, not yet given out.
    pub fn buffered(&self) -> usize {
        self.len
    }

    /// The next frame (copied into `out`) or dropped run of bytes; `None` when more bytes are
    /// needed.
    pub fn next(&mut self, out: &mut [u8; MAX_FRAME]) -> Option<Piece> {
        let data = self.buf.get(..self.len).unwrap_or_default();
        if data.is_empty() {
            return None;
        }
        // Garbage before the first possible start.
        let start = find_start(data);
        if start > 0 {
            self.consume(start);
            return Some(Piece::Skipped { bytes: start });
        }
        if data.len() < HEADER_LEN {
            return None;
        }
        match candidate(data) {
            Candidate::Frame(len) => {
                if let (Some(src), Some(dst)) = (data.get(..len), out.get_mut(..len)) {
                    dst.copy_from_slice(src);
                }
                self.consume(len);
                Some(Piece::Frame { len })
            }
            Candidate::Not => {
                // Drop the first byte only: a real frame may start at the second `@`.
                self.consume(1);
                Some(Piece::Skipped { bytes: 1 })
            }
            Candidate::Incomplete => {
                // A complete frame starting inside this candidate means the candidate is not one.
                let later = (1..data.len()).find(|&i| {
                    data.get(i..).is_some_and(|rest| {
                        rest.starts_with(&START) && self.complete_and_valid(rest)
                    })
                })?;
                self.consume(later);
                Some(Piece::Skipped { bytes: later })
            }
        }
    }

    fn complete_and_valid(&self, data: &[u8]) -> bool {
        match candidate(data) {
            Candidate::Frame(len) => data.get(..len).is_some_and(|f| {
                let covered = f.get(2..len.saturating_sub(3)).unwrap_or_default();
                let found = f.get(len.saturating_sub(3)).copied().unwrap_or_default();
                self.profile.checksum.accepts(covered, found)
            }),
            Candidate::Not | Candidate::Incomplete => false,
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len = self.len.saturating_sub(n);
    }
}

enum Candidate {
    /// A frame of this length (framing right).
    Frame(usize),
    /// Not a frame at this position.
    Not,
    /// Maybe a frame; more bytes needed.
    Incomplete,
}

/// Judges the candidate frame at the front of `data` (which starts with `@@` or is shorter).
fn candidate(data: &[u8]) -> Candidate {
    let Some(header) = peek_header(data) else {
        return if data.len() < HEADER_LEN {
            Candidate::Incomplete
        } else {
            Candidate::Not
        };
    };
    let adu = usize::from(header.adu_len);
    if adu > MAX_ADU {
        return Candidate::Not;
    }
    let len = MIN_FRAME.saturating_add(adu);
    match data.get(len.saturating_sub(2)..len) {
        None => Candidate::Incomplete,
        Some(end) if end == END => Candidate::Frame(len),
        Some(_) => Candidate::Not,
    }
}

/// Where the first `@@` (or a last lone `@`) is; `data.len()` if nowhere.
fn find_start(data: &[u8]) -> usize {
    data.windows(2).position(|w| w == START).unwrap_or_else(|| {
        if data.last() == Some(&START[0]) {
            data.len().saturating_sub(1)
        } else {
            data.len()
        }
    })
}
