//! Evidence on tickets ([`crate::evidence`]): notes and photos kept with an episode, who sent
//! them and when, audited as `evidence.added`.

use rusqlite::params;

use super::{Store, StoreError, sql};
use crate::evidence::MediaType;
use crate::model::{EpisodeId, UnixMs};

/// A photo kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Photo {
    /// Its checked type.
    #[serde(rename = "type")]
    pub media: MediaType,
    /// Its SHA-256 (hex), the file's name.
    pub sha256: String,
    /// Its size, bytes.
    pub bytes: u64,
    /// Where it is served: `/api/v1/evidence/{id}/photo`.
    pub url: String,
}

/// One piece of evidence: a note, a photo, or both, sent together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// Its id.
    pub id: i64,
    /// The episode.
    pub episode: EpisodeId,
    /// Who sent it (the user).
    pub who: String,
    /// When.
    pub at_ms: UnixMs,
    /// The note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The photo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<Photo>,
}

/// What is added: the note, and the photo already kept on disk (type, digest, size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    /// The note.
    pub note: Option<String>,
    /// The photo.
    pub photo: Option<(MediaType, String, u64)>,
}

const COLUMNS: &str = "id, episode_id, who, at_ms, note, photo_type, photo_sha, photo_size";

fn row(r: &rusqlite::Row<'_>) -> Result<Evidence, StoreError> {
    let id: i64 = r.get(0)?;
    let media: Option<String> = r.get(5)?;
    let sha: Option<String> = r.get(6)?;
    let size: Option<i64> = r.get(7)?;
    let photo = match (media.as_deref().and_then(MediaType::from_mime), sha) {
        (Some(media), Some(sha256)) => Some(Photo {
            media,
            sha256,
            bytes: u64::try_from(size.unwrap_or(0)).unwrap_or(0),
            url: format!("/api/v1/evidence/{id}/photo"),
        }),
        _ => None,
    };
    Ok(Evidence {
        id,
        episode: r.get(1)?,
        who: r.get(2)?,
        at_ms: r.get(3)?,
        note: r.get(4)?,
        photo,
    })
}

impl Store {
    /// Adds evidence to episode `id` as `who` (durably, with its audit entry).
    ///
    /// # Errors
    /// [`StoreError::UnknownEpisode`]; a database error; [`StoreError::DiskFull`].
    pub fn add_evidence(
        &self,
        id: EpisodeId,
        who: &str,
        new: &NewEvidence,
        now: UnixMs,
    ) -> Result<Evidence, StoreError> {
        let episode = sql::int(id)?;
        self.write_journal(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let known: i64 = tx.query_row(
                "SELECT count(*) FROM episodes WHERE id = ?1",
                [episode],
                |r| r.get(0),
            )?;
            if known == 0 {
                return Err(StoreError::UnknownEpisode(id));
            }
            let (media, sha, size) = match &new.photo {
                Some((m, sha, size)) => (
                    Some(m.mime()),
                    Some(sha.as_str()),
                    Some(i64::try_from(*size).unwrap_or(i64::MAX)),
                ),
                None => (None, None, None),
            };
            tx.execute(
                "INSERT INTO evidence (episode_id, who, at_ms, note, photo_type, photo_sha, \
                 photo_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![episode, who, sql::int(now)?, new.note, media, sha, size],
            )?;
            let eid = tx.last_insert_rowid();
            super::journal::insert_audit(
                &tx,
                now,
                who,
                "evidence.added",
                &format!("episode/{id}"),
                &serde_json::json!({
                    "evidence": eid,
                    "note": new.note.is_some(),
                    "photo_sha256": sha,
                    "photo_bytes": size,
                })
                .to_string(),
            )?;
            let e = tx.query_row(
                &format!("SELECT {COLUMNS} FROM evidence WHERE id = ?1"),
                [eid],
                |r| Ok(row(r)),
            )??;
            tx.commit()?;
            Ok(e)
        })
    }

    /// An episode's evidence, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn evidence_of(&self, id: EpisodeId) -> Result<Vec<Evidence>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM evidence WHERE episode_id = ?1 ORDER BY at_ms, id"
            ))?;
            let mut rows = stmt.query([sql::int(id)?])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row(r)?);
            }
            Ok(out)
        })
    }

    /// When an episode's ticket was acknowledged, if it was (its rectify deadline counts from
    /// there).
    ///
    /// # Errors
    /// A database error.
    pub fn acknowledged_at(&self, id: EpisodeId) -> Result<Option<UnixMs>, StoreError> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.query_row(
                "SELECT acknowledged_ms FROM episodes WHERE id = ?1",
                [sql::int(id)?],
                |r| r.get::<_, Option<UnixMs>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    /// One piece of evidence.
    ///
    /// # Errors
    /// A database error.
    pub fn evidence(&self, evidence_id: i64) -> Result<Option<Evidence>, StoreError> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM evidence WHERE id = ?1"),
                [evidence_id],
                |r| Ok(row(r)),
            )
            .optional()?
            .transpose()
        })
    }
}
