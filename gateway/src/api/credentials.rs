//! Devices' MQTT credentials: issued at registration (the `201` body's `mqtt_password`),
//! rotated by `POST /api/v1/devices/{id}/credentials`, revoked by
//! `DELETE /api/v1/devices/{id}/credentials` and by decommissioning. A password is shown once;
//! only its hash is stored. Every change reloads the broker's accounts at once, so a rotated or
//! revoked credential stops working and a connected device using it is disconnected.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use firegrid_protocols::DeviceId;

use super::access::Caller;
use super::error::{ApiError, PathId, Subject};
use super::{ApiState, blocking, now_ms};
use crate::secret::{Secret, SecretHash};
use crate::store::StoreError;

type ApiResult<T = Response> = Result<T, ApiError>;

/// A body with the MQTT password issued with it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeviceRegistered)]
pub(super) struct WithPassword<'a, T: Serialize> {
    /// What was made.
    #[serde(flatten)]
    pub(super) device: T,
    /// The device's MQTT password (username and client id: the device id). Shown once.
    pub(super) mqtt_password: &'a str,
}

/// A credential issued for a device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Issued {
    /// The device (its MQTT username and client id).
    #[schema(value_type = crate::api::ProtocolId)]
    pub(super) id: DeviceId,
    /// Its password, shown once.
    pub(super) mqtt_password: String,
}

/// A new secret and its hash.
pub(super) fn new_secret() -> ApiResult<(Secret, SecretHash)> {
    let secret = Secret::generate().map_err(|e| ApiError::internal("no randomness", &e))?;
    let hash = secret
        .hash()
        .map_err(|e| ApiError::internal("no randomness", &e))?;
    Ok((secret, hash))
}

/// The device, if it is in the caller's area (else: unknown to them).
fn in_scope(s: &crate::store::Store, id: &DeviceId, caller: &Caller) -> Result<(), StoreError> {
    s.get_scoped::<crate::store::DeviceFields>(id, caller.scope())?
        .map(|_| ())
        .ok_or_else(|| StoreError::Unknown {
            what: crate::store::Noun::Device,
            id: id.to_string(),
        })
}

/// `POST /devices/{id}/credentials`: a new MQTT password; the old one stops working at once.
pub(super) async fn rotate(State(state): State<ApiState>, caller: Caller, id: PathId) -> ApiResult {
    let id = id.device()?;
    let subject = Subject::new("device", &id);
    let secret = blocking(&state, subject, {
        let id = id.clone();
        move |s| {
            in_scope(s, &id, &caller)?;
            s.issue_device_credential(&id, caller.user(), now_ms())
        }
    })
    .await?;
    state.accounts.notify();
    Ok((
        StatusCode::CREATED,
        axum::Json(Issued {
            id,
            mqtt_password: secret.expose().to_owned(),
        }),
    )
        .into_response())
}

/// `DELETE /devices/{id}/credentials`: the device can no longer log in; if it is connected, it
/// is disconnected.
pub(super) async fn revoke(State(state): State<ApiState>, caller: Caller, id: PathId) -> ApiResult {
    let id = id.device()?;
    let subject = Subject::new("device", &id);
    blocking(&state, subject, move |s| {
        in_scope(s, &id, &caller)?;
        s.revoke_device_credential(&id, caller.user(), now_ms())
    })
    .await?;
    state.accounts.notify();
    Ok(StatusCode::NO_CONTENT.into_response())
}
