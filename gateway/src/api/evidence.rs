//! Notes and photo evidence on an episode's ticket ([`crate::evidence`], docs/alerts.md).
//!
//! - `POST /api/v1/episodes/{id}/evidence`, `multipart/form-data` with `note` (text) and/or
//!   `photo` (a JPEG or PNG, at most `[evidence] max_photo_bytes`): `201` with the evidence.
//!   Refused, and counted by reason: larger than the limit `413`; not a JPEG/PNG by content
//!   `415`; nothing sent or a bad note `422`; an unreadable form `400`. The episode's area is
//!   checked before the body is read.
//! - `GET /api/v1/episodes/{id}/evidence`: the episode's evidence, oldest first.
//! - `GET /api/v1/evidence/{id}/photo`: the photo's bytes, for callers whose scope covers the
//!   episode's grid cell (`403` otherwise).
//!
//! The web UI's rectify form posts the same form (plus `to`) through [`read_form`] and
//! [`keep`].

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::{Caller, check_area};
use super::error::{ApiError, Json, PathId, Subject};
use super::{ApiState, blocking, now_ms};
use crate::evidence::{Refusal, check_note, check_photo};
use crate::model::{EpisodeId, TicketState};
use crate::store::{Evidence, NewEvidence, StoreError};

/// What a multipart form may hold besides the photo: the note and the form's own fields.
const FORM_SLACK_BYTES: u64 = 64 * 1024;

/// A read evidence form.
#[derive(Debug, Default)]
pub(crate) struct EvidenceForm {
    /// The note, checked.
    pub(crate) note: Option<String>,
    /// The photo's bytes (not yet checked).
    pub(crate) photo: Option<Vec<u8>>,
    /// The web form's ticket move (`to`), if any.
    pub(crate) to: Option<TicketState>,
}

/// The status a refusal answers with.
pub(crate) fn status_of(r: Refusal) -> StatusCode {
    match r {
        Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::NotImage => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Refusal::Empty | Refusal::BadNote => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::BadForm(_) => StatusCode::BAD_REQUEST,
    }
}

/// Counts a refusal and makes it an API error.
pub(crate) fn refuse(state: &ApiState, r: Refusal) -> ApiError {
    state.metrics.evidence.refused(r);
    ApiError::new(status_of(r), r.to_string())
}

/// Reads a `multipart/form-data` evidence form, never holding more than the photo limit plus a
/// little: `note`, `photo`, and (from the web form) `to`, `csrf`, `view`.
///
/// # Errors
/// A [`Refusal`] (not yet counted).
pub(crate) async fn read_form(state: &ApiState, request: Request) -> Result<EvidenceForm, Refusal> {
    let max = state.evidence.max_photo_bytes();
    let too_large = Refusal::TooLarge { max_bytes: max };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(FORM_SLACK_BYTES)) {
        return Err(too_large);
    }
    let mut form = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|_| Refusal::BadForm("not multipart/form-data"))?;
    let mut out = EvidenceForm::default();
    let mut total: u64 = 0;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(Refusal::BadForm("a part cannot be read")),
        };
        let name = field.name().unwrap_or("").to_owned();
        let limit = if name == "photo" {
            max
        } else {
            FORM_SLACK_BYTES
        };
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    total = total.saturating_add(n);
                    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) + n > limit
                        || total > max.saturating_add(FORM_SLACK_BYTES)
                    {
                        return Err(if name == "photo" {
                            too_large
                        } else {
                            Refusal::BadForm("a field is too long")
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return Err(Refusal::BadForm("a part cannot be read")),
            }
        }
        let text = || String::from_utf8(bytes.clone()).map_err(|_| Refusal::BadNote);
        match name.as_str() {
            // A file input left empty sends an empty part: no photo.
            "photo" if bytes.is_empty() => {}
            "photo" => out.photo = Some(bytes),
            "note" => out.note = check_note(&text()?)?,
            "to" => {
                let to = String::from_utf8(bytes)
                    .ok()
                    .and_then(|t| serde_json::from_value(serde_json::Value::String(t)).ok())
                    .ok_or(Refusal::BadForm("`to` is not a ticket state"))?;
                out.to = Some(to);
            }
            "csrf" | "view" => {}
            _ => {
                return Err(Refusal::BadForm(
                    "only note, photo, to, csrf and view are read",
                ));
            }
        }
    }
    Ok(out)
}

/// Checks the episode is within the caller's area (404 unknown, 403 outside).
pub(crate) async fn check_episode(
    state: &ApiState,
    caller: &Caller,
    id: EpisodeId,
) -> Result<(), ApiError> {
    let c = caller.clone();
    blocking(state, Subject::new("episode", id), move |s| {
        let episode = s.episode(id)?.ok_or(StoreError::UnknownEpisode(id))?;
        Ok(check_area(
            s,
            &c,
            &format!("episode {id}"),
            Some(&episode.grid),
        ))
    })
    .await?
}

/// Checks the form's photo, keeps it on disk, and records the evidence as `caller`.
///
/// # Errors
/// A refusal (counted), a disk or store error.
pub(crate) async fn keep(
    state: &ApiState,
    caller: &Caller,
    id: EpisodeId,
    form: EvidenceForm,
) -> Result<Evidence, ApiError> {
    let photo = match form.photo {
        Some(bytes) => {
            let media = check_photo(&bytes, state.evidence.max_photo_bytes())
                .map_err(|r| refuse(state, r))?;
            Some((bytes, media))
        }
        None => None,
    };
    if form.note.is_none() && photo.is_none() {
        return Err(refuse(state, Refusal::Empty));
    }
    let kept = match photo {
        Some((bytes, media)) => {
            let dir = state.evidence.clone();
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            let sha = tokio::task::spawn_blocking(move || dir.keep(&bytes, media))
                .await
                .map_err(|e| ApiError::internal("a disk task failed", &e))?
                .map_err(|e| {
                    tracing::error!(error = %e, "photo evidence not written");
                    ApiError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "the photo cannot be kept (the data directory is not writable or full)",
                    )
                })?;
            Some((media, sha, size))
        }
        None => None,
    };
    let new = NewEvidence {
        note: form.note,
        photo: kept,
    };
    let who = caller.user().to_owned();
    let (note, photo) = (new.note.is_some(), new.photo.is_some());
    let e = blocking(state, Subject::new("episode", id), move |s| {
        s.add_evidence(id, &who, &new, now_ms())
    })
    .await?;
    state.metrics.evidence.accepted(note, photo);
    Ok(e)
}

/// `POST /api/v1/episodes/{id}/evidence`.
pub(super) async fn add(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    let id = id.episode()?;
    check_episode(&state, &caller, id).await?;
    let form = read_form(&state, request)
        .await
        .map_err(|r| refuse(&state, r))?;
    if form.to.is_some() {
        return Err(refuse(
            &state,
            Refusal::BadForm("move the ticket with POST /api/v1/episodes/{id}/ticket"),
        ));
    }
    let e = keep(&state, &caller, id, form).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

/// `GET /api/v1/episodes/{id}/evidence`.
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let id = id.episode()?;
    check_episode(&state, &caller, id).await?;
    let found = blocking(&state, Subject::new("episode", id), move |s| {
        s.evidence_of(id)
    })
    .await?;
    Ok(Json(found).into_response())
}

/// `GET /api/v1/evidence/{id}/photo`.
pub(super) async fn photo(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let eid = id.number("evidence id")?;
    let c = caller.clone();
    let found = blocking(&state, Subject::new("evidence", eid), move |s| {
        let Some(e) = s.evidence(eid)? else {
            return Ok(Err(ApiError::not_found(format!("no evidence {eid}"))));
        };
        let Some(episode) = s.episode(e.episode)? else {
            return Ok(Err(ApiError::not_found(format!("no evidence {eid}"))));
        };
        if let Err(err) = check_area(s, &c, &format!("evidence {eid}"), Some(&episode.grid)) {
            return Ok(Err(err));
        }
        Ok(Ok(e))
    })
    .await??;
    let Some(p) = found.photo else {
        return Err(ApiError::not_found(format!("evidence {eid} has no photo")));
    };
    let dir = state.evidence.clone();
    let (sha, media) = (p.sha256.clone(), p.media);
    let bytes = tokio::task::spawn_blocking(move || dir.read(&sha, media))
        .await
        .map_err(|e| ApiError::internal("a disk task failed", &e))?
        .map_err(|e| {
            tracing::error!(error = %e, evidence = eid, "photo evidence not readable");
            ApiError::not_found(format!(
                "evidence {eid}'s photo is missing from the data directory"
            ))
        })?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(p.media.mime()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(r)
}

/// The parts of `POST /api/v1/episodes/{id}/evidence` (`multipart/form-data`), for the API's
/// document: a note, a photo, or both.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // described, read part by part by `add`
pub(super) struct EvidenceParts {
    /// A note, at most [`MAX_NOTE`] characters.
    note: Option<String>,
    /// A JPEG or PNG photo.
    #[schema(value_type = Option<String>, format = Binary)]
    photo: Option<Vec<u8>>,
}
