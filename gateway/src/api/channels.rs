//! Channel-level circuit binding (docs/utility.md#channel-binding): which circuit each channel
//! of a device measures.
//!
//! - `GET /api/v1/devices/{id}/channels`: every configured channel with what it measures, its
//!   circuit and whether the binding is the channel's own (`own`) or its device's
//!   (`circuit_id` of the device: every channel without one of its own).
//! - `PUT /api/v1/devices/{id}/channels/{ch}/circuit` with `{"circuit_id": 7}` binds channel
//!   `ch` to a circuit of the device's site; `{"circuit_id": null}` unbinds it (it measures the
//!   device's circuit again). Audited; answers the device's channels.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use firegrid_protocols::channel::ChannelNo;

use super::access::Caller;
use super::error::{ApiError, Json, PathId, Subject};
use super::{ApiState, blocking, now_ms};
use crate::store::{Actor, CircuitId, DeviceFields, Noun, StoreError};

/// The path's `{id}` and `{ch}`.
#[derive(Debug)]
pub(super) struct DeviceChannel(String, String);

impl<S: Send + Sync> FromRequestParts<S> for DeviceChannel {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path((id, ch))) => Ok(Self(id, ch)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Binding {
    /// A circuit id, or `null` to unbind: required, so that an empty body binds nothing.
    circuit_id: serde_json::Value,
}

/// `GET /api/v1/devices/{id}/channels`.
pub(super) async fn channels(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let subject = Subject::new("device", &id);
    let found = blocking(&state, subject, move |s| {
        let d = s
            .get_scoped::<DeviceFields>(&id, caller.scope())?
            .ok_or_else(|| StoreError::Unknown {
                what: Noun::Device,
                id: id.to_string(),
            })?;
        s.device_channels(&d)
    })
    .await?;
    Ok(Json(found).into_response())
}

/// `PUT /api/v1/devices/{id}/channels/{ch}/circuit`.
pub(super) async fn bind(
    State(state): State<ApiState>,
    caller: Caller,
    path: DeviceChannel,
    Json(b): Json<Binding>,
) -> Result<Response, ApiError> {
    let id = PathId(path.0).device()?;
    let ch: ChannelNo = path.1.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "channel {:?} in the path is not a channel number (0-15)",
            super::error::shorten(&path.1)
        ))
    })?;
    let circuit: Option<CircuitId> = match &b.circuit_id {
        serde_json::Value::Null => None,
        v => Some(v.as_i64().ok_or_else(|| {
            ApiError::unprocessable(format!(
                "circuit_id {v}: a circuit's id, or null to unbind the channel"
            ))
        })?),
    };
    let subject = Subject::new("device", &id);
    let found = blocking(&state, subject, move |s| {
        s.bind_channel(
            &id,
            ch,
            circuit,
            Actor::scoped(caller.user(), now_ms(), caller.scope()),
        )
    })
    .await?;
    Ok(Json(found).into_response())
}
