//! The spool's segment format: a header, then framed records. Pure: byte slices in, records out.
//!
//! ```text
//! segment = "FGSPOOL1" record*
//! record  = len u32 LE | crc u32 LE | payload (len bytes)
//! crc     = CRC-32 (IEEE) of the 4 length bytes followed by the payload
//! ```
//!
//! After a crash (`kill -9`, power loss) a segment may end in a torn record, or in zeros. The
//! decoder never panics on any bytes: it yields every complete record with a good checksum
//! from the start, and stops at the first that is incomplete ([`Decoded::Incomplete`]) or
//! damaged ([`Decoded::Corrupt`]) — it never skips ahead, so it never yields a record twice
//! nor a record from the middle of garbage.

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"FGSPOOL1";

/// Bytes before a record's payload: length and checksum.
pub const RECORD_HEADER: usize = 8;

/// The largest payload a record may have; a longer length field is damage. (A point is at most
/// ~330 bytes.)
pub const MAX_PAYLOAD: usize = 4096;

/// What the bytes at the start of a slice are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record with a good checksum, taking `len` bytes of the slice.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Bytes taken, header included.
        len: usize,
    },
    /// The slice ends inside a record (or is empty): more bytes may complete it.
    Incomplete,
    /// Not a record: a zero or oversized length, or a checksum that does not match.
    Corrupt,
}

/// Appends one record with `payload` to `out`.
///
/// # Panics
/// Never for payloads up to [`MAX_PAYLOAD`] bytes (the only ones the spool writes); a longer
/// one is a bug and is refused with a debug assertion.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD);
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record at the start of `bytes`.
pub fn decode_record(bytes: &[u8]) -> Decoded<'_> {
    let Some((header, rest)) = bytes.split_first_chunk::<RECORD_HEADER>() else {
        return Decoded::Incomplete;
    };
    let (len, crc) = header.split_at(4);
    let len_bytes = [len[0], len[1], len[2], len[3]];
    let n = u32::from_le_bytes(len_bytes) as usize;
    if n == 0 || n > MAX_PAYLOAD {
        return Decoded::Corrupt;
    }
    let Some(payload) = rest.get(..n) else {
        return Decoded::Incomplete;
    };
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if checksum(&len_bytes, payload) != want {
        return Decoded::Corrupt;
    }
    Decoded::Record {
        payload,
        len: RECORD_HEADER + n,
    }
}

/// Every record of a segment's body (after the magic) from its start, and how many bytes they
/// take: the rest (a torn or damaged tail) is not a record.
pub fn decode_all(body: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Decoded::Record { payload, len } = decode_record(&body[at..]) {
        records.push(payload);
        at += len;
    }
    (records, at)
}

fn checksum(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_record_in_literal_bytes() {
        let mut out = Vec::new();
        encode_record(b"abc", &mut out);
        // len 3, CRC-32 of 03 00 00 00 61 62 63, payload.
        let crc = crc32fast::hash(&[3, 0, 0, 0, b'a', b'b', b'c']).to_le_bytes();
        let mut want = vec![3, 0, 0, 0];
        want.extend_from_slice(&crc);
        want.extend_from_slice(b"abc");
        assert_eq!(out, want);
        assert_eq!(
            decode_record(&out),
            Decoded::Record {
                payload: b"abc",
                len: 11
            }
        );
        assert_eq!(decode_record(&out[..10]), Decoded::Incomplete);
        assert_eq!(decode_record(&out[..3]), Decoded::Incomplete);
        assert_eq!(decode_record(&[]), Decoded::Incomplete);
        let mut flipped = out.clone();
        flipped[9] ^= 1;
        assert_eq!(decode_record(&flipped), Decoded::Corrupt);
        // Zeros (what a filesystem may leave after a power loss) are damage, not a record.
        assert_eq!(decode_record(&[0; 16]), Decoded::Corrupt);
        // An absurd length is damage, not a request to wait for 4 GB.
        assert_eq!(
            decode_record(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            Decoded::Corrupt
        );
    }

    fn encode_all(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for p in payloads {
            encode_record(p, &mut out);
            ends.push(out.len());
        }
        (out, ends)
    }

    fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 0..20)
    }

    proptest! {
        #[test]
        fn round_trip(payloads in payloads()) {
            let (bytes, _) = encode_all(&payloads);
            let (records, used) = decode_all(&bytes);
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(records, payloads.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        /// A torn write: every record that ended before the tear comes back, in order, once.
        #[test]
        fn truncation_keeps_every_complete_record(payloads in payloads(), cut in any::<prop::sample::Index>()) {
            let (bytes, ends) = encode_all(&payloads);
            let cut = cut.index(bytes.len() + 1);
            let (records, used) = decode_all(&bytes[..cut]);
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            prop_assert_eq!(records.len(), complete);
            prop_assert_eq!(used, if complete == 0 { 0 } else { ends[complete - 1] });
            for (r, p) in records.iter().zip(&payloads) {
                prop_assert_eq!(*r, p.as_slice());
            }
        }

        /// Damage anywhere: never a panic, only records from the start (a prefix of what was
        /// written, each at most once), and every record that ended before the damage.
        #[test]
        fn corruption_yields_a_prefix(payloads in payloads(), at in any::<prop::sample::Index>(), xor in 1u8..) {
            let (mut bytes, ends) = encode_all(&payloads);
            if bytes.is_empty() { return Ok(()); }
            let at = at.index(bytes.len());
            bytes[at] ^= xor;
            let (records, _) = decode_all(&bytes);
            prop_assert!(records.len() <= payloads.len());
            for (r, p) in records.iter().zip(&payloads) {
                prop_assert_eq!(*r, p.as_slice());
            }
            let intact = ends.iter().filter(|&&e| e <= at).count();
            prop_assert!(records.len() >= intact);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (records, used) = decode_all(&bytes);
            prop_assert!(used <= bytes.len());
            prop_assert!(records.iter().all(|r| !r.is_empty() && r.len() <= MAX_PAYLOAD));
        }
    }
}
