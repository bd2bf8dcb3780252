//! The API's errors, written once: how store errors and extractor rejections become statuses
//! and `{"error": "..."}` bodies; and the extractors that make sure of it.

use std::fmt;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use firegrid_protocols::{DeviceId, GridId};

use crate::model::TicketState;
use crate::store::StoreError;

/// An error answer: a status and a message for the person or program that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The resource a route names in its path, for mapping "unknown" store errors: the path's own
/// resource is 404, any other unknown reference (in the body) is 422.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Subject(Option<(&'static str, String)>);

impl Subject {
    /// No resource in the path (a list or a create).
    pub(crate) const NONE: Self = Self(None);

    /// The path names `what` with this id.
    pub(crate) fn new(what: &'static str, id: impl fmt::Display) -> Self {
        Self(Some((what, id.to_string())))
    }
}

/// Which resource an unknown-reference error is about, and its id.
fn unknown(e: &StoreError) -> Option<(&'static str, String)> {
    Some(match e {
        StoreError::Unknown { what, id } => (what.as_str(), id.clone()),
        StoreError::UnknownEpisode(id) => ("episode", id.to_string()),
        StoreError::UnknownUser(id) => ("user", id.clone()),
        StoreError::UnknownToken(id) => ("token", id.clone()),
        StoreError::UnknownNotification(id) => ("notification", id.to_string()),
        _ => return None,
    })
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The same error with `prefix` before its message (e.g. which item of a list).
    pub(crate) fn with_prefix(mut self, prefix: &str) -> Self {
        self.message.insert_str(0, prefix);
        self
    }

    /// 400: the request itself is malformed (query, path, header, JSON syntax).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request conflicts with the state of the resource.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 422: well-formed, but the values do not fit.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: logs `context` and `cause`, answers a generic message (no internals leak out).
    pub fn internal(context: &str, cause: &dyn fmt::Display) -> Self {
        tracing::error!(%cause, "API: {context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the gateway could not do this; the cause is in its log",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The one mapping of store errors: see the module docs of [`crate::api`].
    pub(crate) fn from_store(e: StoreError, subject: &Subject) -> Self {
        if let Some((what, id)) = unknown(&e) {
            return match &subject.0 {
                Some((w, i)) if *w == what && *i == id => {
                    Self::not_found(format!("no {what} {id}"))
                }
                _ => Self::unprocessable(format!(
                    "{e}: the {what} referred to does not exist (create it first, or check the id)"
                )),
            };
        }
        match e {
            StoreError::AlreadyExists { .. } => Self::conflict(e.to_string()),
            StoreError::InUse { .. } => Self::conflict(format!(
                "{e}: remove or move what uses it first (a device with history is \
                 decommissioned, not deleted)"
            )),
            StoreError::IllegalTransition { .. } => Self::conflict(format!(
                "{e}: a ticket moves forward only ({}), may skip steps, may be closed from any \
                 state, and nothing moves after closed",
                TicketState::ALL.map(TicketState::as_str).join(" → ")
            )),
            StoreError::Mismatch(_)
            | StoreError::NotAGrid(_)
            | StoreError::Incomplete { .. }
            | StoreError::InvalidConfig(_) => Self::unprocessable(e.to_string()),
            StoreError::InvalidQuery(_) => Self::bad_request(e.to_string()),
            StoreError::OutOfScope { .. } => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            StoreError::DiskFull => {
                tracing::error!("API: the store's disk is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the gateway's disk is full: nothing was written; free space and retry",
                )
            }
            StoreError::QueueFull => {
                Self::unavailable("the gateway's store is busy: retry in a moment")
            }
            StoreError::Closed => Self::unavailable("the gateway's store is shutting down"),
            other => Self::internal("store error", &other),
        }
    }
}

/// A JSON body (request) or answer (response) whose rejections are [`ApiError`]s with a JSON
/// body: 400 malformed, 415 not JSON, 413 too large, 422 the wrong shape (unknown fields,
/// wrong types, missing fields).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters whose rejections are 400 [`ApiError`]s saying which parameter is wrong.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// The path's `{id}`, as text (parsed by the handler into the id type it names, so that a bad
/// id gets a message naming the rule).
#[derive(Debug, Clone)]
pub(crate) struct PathId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Self(id)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

impl PathId {
    /// A device id (the protocol's id rule).
    pub(crate) fn device(&self) -> Result<DeviceId, ApiError> {
        device_id("device id in the path", &self.0).map_err(|e| ApiError::bad_request(e.message))
    }

    /// An area id (the protocol's id rule).
    pub(crate) fn area(&self) -> Result<GridId, ApiError> {
        area_id("area id in the path", &self.0).map_err(|e| ApiError::bad_request(e.message))
    }

    /// A number assigned by the store (workers, sites, rooms, circuits).
    pub(crate) fn number(&self, what: &str) -> Result<i64, ApiError> {
        self.0.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "{what} id {:?} in the path is not a number: {what} ids are integers assigned \
                 by the gateway",
                shorten(&self.0)
            ))
        })
    }

    /// An episode id.
    pub(crate) fn episode(&self) -> Result<u64, ApiError> {
        self.0.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "episode id {:?} in the path is not a number: episode ids are positive integers",
                shorten(&self.0)
            ))
        })
    }
}

/// At most 64 characters of what a client sent, for echoing it in a message.
pub(crate) fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A device id from a body or query field (422 when it breaks the rule).
pub(crate) fn device_id(field: &str, s: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(s).map_err(|e| ApiError::unprocessable(format!("{field} {:?}: {e}", shorten(s))))
}

/// An area id from a body or query field (422 when it breaks the rule).
pub(crate) fn area_id(field: &str, s: &str) -> Result<GridId, ApiError> {
    GridId::new(s).map_err(|e| ApiError::unprocessable(format!("{field} {:?}: {e}", shorten(s))))
}

/// Like [`area_id`], for a query parameter (400).
pub(crate) fn query_area(field: &str, s: &str) -> Result<GridId, ApiError> {
    area_id(field, s).map_err(|e| ApiError::bad_request(e.message))
}

/// Like [`device_id`], for a query parameter (400).
pub(crate) fn query_device(field: &str, s: &str) -> Result<DeviceId, ApiError> {
    device_id(field, s).map_err(|e| ApiError::bad_request(e.message))
}

/// Checks a free-text field: at most `max` characters, no control characters but line breaks
/// and tabs; `required` ones not blank.
pub(crate) fn check_text(field: &str, s: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && s.trim().is_empty() {
        return Err(ApiError::unprocessable(format!(
            "{field} must not be empty"
        )));
    }
    if s.chars().count() > max {
        return Err(ApiError::unprocessable(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::unprocessable(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// A time in a query (ms since the Unix epoch): 400 past what the store keeps (`i64::MAX`).
pub(crate) fn query_ms(field: &str, ms: Option<u64>) -> Result<Option<u64>, ApiError> {
    match ms {
        Some(v) if i64::try_from(v).is_err() => Err(ApiError::bad_request(format!(
            "{field} {v} is out of range: ms since the Unix epoch, at most {}",
            i64::MAX
        ))),
        _ => Ok(ms),
    }
}
