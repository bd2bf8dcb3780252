//! Notes and photo evidence on an episode's ticket (docs/alerts.md, decision 14).
//!
//! A grid worker who rectifies a hazard leaves a note and a photo of the repair. Photos are
//! checked by their content, never by their name or declared type: a JPEG starts `FF D8 FF`, a
//! PNG with its 8-byte signature ([`sniff`]); anything else, an empty file, or more than
//! `[evidence] max_photo_bytes` is refused with a clear error and counted
//! (`firegrid_evidence_refused_total{reason}`). Accepted photos are kept in the data directory
//! under `evidence/` ([`files`]), named by their SHA-256 (the same photo twice is one file), and
//! the store keeps who sent what when (`store/evidence.rs`).
//!
//! Pure here: the checks and the counters; the disk is in [`files`], the routes in
//! `api/evidence.rs`.

pub mod files;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::collect;

/// The default largest photo, bytes (5 MiB: a phone camera's JPEG at full size).
pub const DEFAULT_MAX_PHOTO_BYTES: u64 = 5 * 1024 * 1024;

/// The longest note, characters.
pub const MAX_NOTE_CHARS: usize = 1000;

/// A photo's kind, as its bytes show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub enum MediaType {
    /// JPEG (`FF D8 FF`).
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`).
    #[serde(rename = "image/png")]
    Png,
}

impl MediaType {
    /// Its MIME type.
    pub const fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// Its file extension.
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// From its MIME type (as stored).
    pub fn from_mime(s: &str) -> Option<Self> {
        match s {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            _ => None,
        }
    }
}

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// What the first bytes of a file say it is: JPEG, PNG, or neither.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    if bytes.starts_with(JPEG_MAGIC) {
        Some(MediaType::Jpeg)
    } else if bytes.starts_with(PNG_MAGIC) {
        Some(MediaType::Png)
    } else {
        None
    }
}

/// Why an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Larger than `[evidence] max_photo_bytes`.
    #[error("the photo is larger than the {max_bytes} bytes allowed")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// Not a JPEG or PNG by its content.
    #[error("the photo is not a JPEG or PNG image (checked by its content)")]
    NotImage,
    /// An empty file, or a form with neither a note nor a photo.
    #[error("nothing to keep: send a note, a photo, or both")]
    Empty,
    /// A note longer than [`MAX_NOTE_CHARS`], or not text.
    #[error("the note is longer than 1000 characters or not UTF-8 text")]
    BadNote,
    /// A multipart body that cannot be read, or a field that is not `note`, `photo` or `csrf`.
    #[error("the form cannot be read: {0}")]
    BadForm(&'static str),
}

impl Refusal {
    /// Its `reason` label.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotImage => "not_image",
            Self::Empty => "empty",
            Self::BadNote => "bad_note",
            Self::BadForm(_) => "bad_form",
        }
    }

    /// Every reason, in the order of the metrics page.
    pub const REASONS: [&'static str; 5] =
        ["too_large", "not_image", "empty", "bad_note", "bad_form"];
}

/// Checks a complete photo against the limit and its content.
///
/// # Errors
/// [`Refusal::Empty`], [`Refusal::TooLarge`], [`Refusal::NotImage`].
pub fn check_photo(bytes: &[u8], max_bytes: u64) -> Result<MediaType, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
        return Err(Refusal::TooLarge { max_bytes });
    }
    sniff(bytes).ok_or(Refusal::NotImage)
}

/// Checks a note: at most [`MAX_NOTE_CHARS`] characters, no control characters but newlines and
/// tabs. An empty or blank note is no note.
///
/// # Errors
/// [`Refusal::BadNote`].
pub fn check_note(note: &str) -> Result<Option<String>, Refusal> {
    let trimmed = note.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > MAX_NOTE_CHARS
        || trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Refusal::BadNote);
    }
    Ok(Some(trimmed.to_owned()))
}

/// The evidence counters for `/metrics`.
///
/// | Metric | Type | Labels |
/// | --- | --- | --- |
/// | `firegrid_evidence_accepted_total` | counter | `kind` = `note`, `photo` |
/// | `firegrid_evidence_refused_total` | counter | `reason` = `too_large`, `not_image`, `empty`, `bad_note`, `bad_form` |
#[derive(Debug, Default)]
pub struct EvidenceStats {
    notes: AtomicU64,
    photos: AtomicU64,
    refused: [AtomicU64; 5],
}

impl EvidenceStats {
    /// Counts an accepted submission.
    pub fn accepted(&self, note: bool, photo: bool) {
        if note {
            self.notes.fetch_add(1, Ordering::Relaxed);
        }
        if photo {
            self.photos.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refusal.
    pub fn refused(&self, why: Refusal) {
        let i = Refusal::REASONS
            .iter()
            .position(|r| *r == why.reason())
            .unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far for a reason label.
    pub fn refusals(&self, reason: &str) -> u64 {
        Refusal::REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.refused[i].load(Ordering::Relaxed))
    }
}

impl prometheus_client::collector::Collector for EvidenceStats {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        collect::counters(
            &mut encoder,
            "evidence_accepted_total",
            "Notes and photos kept as evidence on tickets.",
            [
                ([("kind", "note")], self.notes.load(Ordering::Relaxed)),
                ([("kind", "photo")], self.photos.load(Ordering::Relaxed)),
            ],
        )?;
        collect::counters(
            &mut encoder,
            "evidence_refused_total",
            "Evidence uploads refused, by reason.",
            Refusal::REASONS
                .iter()
                .zip(&self.refused)
                .map(|(reason, n)| ([("reason", *reason)], n.load(Ordering::Relaxed))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jpeg_and_png_are_known_by_their_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some(MediaType::Jpeg));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(MediaType::Png)
        );
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None, "too short for JPEG");
        assert_eq!(sniff(b"\x89PNG\r\n"), None, "a cut PNG signature");
    }

    #[test]
    fn photos_are_refused_empty_too_large_or_not_images() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 3, 4];
        assert_eq!(check_photo(&jpeg, 8), Ok(MediaType::Jpeg));
        assert_eq!(
            check_photo(&jpeg, 7),
            Err(Refusal::TooLarge { max_bytes: 7 })
        );
        assert_eq!(check_photo(b"", 8), Err(Refusal::Empty));
        assert_eq!(check_photo(b"%PDF-1.7", 100), Err(Refusal::NotImage));
    }

    #[test]
    fn notes_are_trimmed_bounded_and_plain_text() {
        assert_eq!(check_note("  "), Ok(None));
        assert_eq!(
            check_note(" 已断电更换插座\n"),
            Ok(Some("已断电更换插座".into()))
        );
        assert_eq!(
            check_note(&"字".repeat(1000)).map(|n| n.is_some()),
            Ok(true)
        );
        assert_eq!(check_note(&"字".repeat(1001)), Err(Refusal::BadNote));
        assert_eq!(check_note("a\u{7}b"), Err(Refusal::BadNote));
    }

    #[test]
    fn refusals_are_counted_by_reason_and_rendered() {
        let s = EvidenceStats::default();
        s.refused(Refusal::TooLarge { max_bytes: 1 });
        s.refused(Refusal::NotImage);
        s.refused(Refusal::NotImage);
        s.accepted(true, true);
        assert_eq!(s.refusals("too_large"), 1);
        assert_eq!(s.refusals("not_image"), 2);
        let out = crate::metrics::collect::exposition(s);
        assert!(out.contains("firegrid_evidence_refused_total{reason=\"not_image\"} 2"));
        assert!(out.contains("firegrid_evidence_accepted_total{kind=\"photo\"} 1"));
    }

    proptest! {
        /// Whatever the bytes, the check answers without panicking, and accepts only what
        /// starts with a known signature and fits.
        #[test]
        fn any_bytes_are_checked_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0u64..80) {
            match check_photo(&bytes, max) {
                Ok(t) => {
                    prop_assert!(bytes.len() as u64 <= max);
                    prop_assert_eq!(Some(t), sniff(&bytes));
                }
                Err(Refusal::TooLarge { .. }) => prop_assert!(bytes.len() as u64 > max),
                Err(Refusal::NotImage) => prop_assert!(sniff(&bytes).is_none()),
                Err(Refusal::Empty) => prop_assert!(bytes.is_empty()),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn any_note_is_checked_without_panic(s in "\\PC{0,1200}") {
            if let Ok(Some(n)) = check_note(&s) {
                prop_assert!(n.chars().count() <= MAX_NOTE_CHARS);
            }
        }
    }
}
