//! Devices in the API: the generic resource's hooks (registration checks the configuration, a
//! change tells the running pipeline), imports, configuration, lifecycle state and commands.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::channel::MAX_CHANNELS;
use firegrid_protocols::message::Action;
use firegrid_protocols::thresholds::Limits;
use firegrid_protocols::{DeviceId, GridId};

use super::access::Caller;
use super::credentials::{Issued, WithPassword, new_secret};
pub(super) use super::device_config::ConfigBody;
use super::device_config::default_config;
use super::error::{ApiError, Json, PathId, Subject, check_text, device_id, query_area};
use super::registry::{limit, optional_area};
use super::resource::{ApiResource, ApiResult, change, created};
use super::{ApiState, blocking, now_ms, tell_pipeline};
use crate::control::Control;
use crate::model::{DeviceKind, DeviceState, UnixMs};
use crate::secret::Secret;
use crate::store::{CircuitId, Device, DeviceFields, DeviceFilter, SiteId, WireEncoding};

/// The longest free-text note, characters.
const MAX_NOTE: usize = 1000;

// ---- devices ----------------------------------------------------------------------------------

/// A device as the API shows it (never its credential).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceView {
    #[schema(value_type = crate::api::ProtocolId)]
    id: DeviceId,
    kind: DeviceKind,
    state: DeviceState,
    site_id: Option<SiteId>,
    room_id: Option<i64>,
    circuit_id: Option<CircuitId>,
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    grid_id: Option<GridId>,
    encoding: WireEncoding,
    config: ConfigBody,
    created_ms: UnixMs,
    updated_ms: UnixMs,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        let f = &d.fields;
        Self {
            id: d.id.clone(),
            kind: f.kind,
            state: f.state,
            site_id: f.site_id,
            room_id: f.room_id,
            circuit_id: f.circuit_id,
            grid_id: f.grid_id.clone(),
            encoding: f.encoding,
            config: ConfigBody::from(&f.config),
            created_ms: d.created_ms,
            updated_ms: d.updated_ms,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceQuery {
    #[param(inline)]
    state: Option<DeviceState>,
    #[param(inline)]
    kind: Option<DeviceKind>,
    site: Option<SiteId>,
    area: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceCreate {
    id: String,
    kind: DeviceKind,
    #[serde(default)]
    state: Option<DeviceState>,
    #[serde(default)]
    site_id: Option<SiteId>,
    #[serde(default)]
    room_id: Option<i64>,
    #[serde(default)]
    circuit_id: Option<CircuitId>,
    #[serde(default)]
    grid_id: Option<String>,
    #[serde(default)]
    encoding: Option<WireEncoding>,
    #[serde(default)]
    config: Option<ConfigBody>,
}

/// A device's binding (`PUT /devices/{id}`): every field is replaced, an absent one is
/// cleared. Its state and configuration have their own routes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceUpdate {
    kind: DeviceKind,
    #[serde(default)]
    site_id: Option<SiteId>,
    #[serde(default)]
    room_id: Option<i64>,
    #[serde(default)]
    circuit_id: Option<CircuitId>,
    #[serde(default)]
    grid_id: Option<String>,
    #[serde(default)]
    encoding: Option<WireEncoding>,
}

fn view(d: &Device) -> Response {
    Json(DeviceView::from(d)).into_response()
}

impl ApiResource for DeviceFields {
    type Create = DeviceCreate;
    type Update = DeviceUpdate;
    type Query = DeviceQuery;
    const PATH: &'static str = "devices";

    fn path_id(id: &PathId) -> ApiResult<DeviceId> {
        id.device()
    }
    fn create(body: DeviceCreate, state: &ApiState) -> ApiResult<(DeviceId, Self)> {
        new_device(&body, &state.limits)
    }
    /// The binding: state and configuration have their own routes.
    fn update(body: DeviceUpdate, before: &Self) -> ApiResult<Self> {
        Ok(DeviceFields {
            kind: body.kind,
            site_id: body.site_id,
            room_id: body.room_id,
            circuit_id: body.circuit_id,
            grid_id: optional_area("grid_id", body.grid_id.as_deref())?,
            encoding: body.encoding.unwrap_or_default(),
            ..before.clone()
        })
    }
    fn list_filter(q: DeviceQuery) -> ApiResult<DeviceFilter> {
        Ok(DeviceFilter {
            state: q.state,
            kind: q.kind,
            site_id: q.site,
            area_id: q
                .area
                .as_deref()
                .map(|a| query_area("area", a))
                .transpose()?,
            limit: limit(q.limit)?,
            offset: q.offset.unwrap_or(0),
        })
    }
    type View = DeviceView;
    fn view(r: &Device) -> DeviceView {
        DeviceView::from(r)
    }
    async fn changed(state: &ApiState, id: &DeviceId, removed: bool) -> ApiResult<()> {
        // Registered or removed: the broker's accounts follow.
        state.accounts.notify();
        let id = id.clone();
        let control = if removed {
            Control::DeviceRemoved(id)
        } else {
            Control::DeviceChanged(id)
        };
        tell_pipeline(state, control).await
    }
}

/// The id and fields of a device to register, checked (config against the configured limits).
fn new_device(body: &DeviceCreate, limits: &Limits) -> ApiResult<(DeviceId, DeviceFields)> {
    let id = device_id("id", &body.id)?;
    let config = match &body.config {
        Some(c) => c.to_config(c.version.unwrap_or(1), limits)?,
        None => default_config(),
    };
    let fields = DeviceFields {
        kind: body.kind,
        state: body.state.unwrap_or(DeviceState::Registered),
        site_id: body.site_id,
        room_id: body.room_id,
        circuit_id: body.circuit_id,
        grid_id: optional_area("grid_id", body.grid_id.as_deref())?,
        config,
        encoding: body.encoding.unwrap_or_default(),
        credential_hash: None,
    };
    Ok((id, fields))
}

/// The most devices one `POST /device-imports` takes (its body stays under the 2 MB limit
/// with a typical configuration).
pub(super) const MAX_IMPORT: usize = 5000;

/// How many item errors an import's refusal lists at most.
const MAX_IMPORT_ERRORS: usize = 20;

/// What an import answers: how many were registered, and their ids in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Imported {
    created: usize,
    #[schema(value_type = Vec<crate::api::ProtocolId>)]
    ids: Vec<DeviceId>,
    /// Each device's MQTT password, shown this once.
    credentials: Vec<Issued>,
}

/// `POST /device-imports`: a JSON array of [`DeviceCreate`] registered in one store
/// transaction, all or nothing. Every item is checked first; a refusal lists each bad item as
/// `[index] id: why` (at most [`MAX_IMPORT_ERRORS`]). The pipeline is told of each device,
/// as for a single registration.
pub(super) async fn import_devices(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<Vec<DeviceCreate>>,
) -> ApiResult {
    if body.is_empty() || body.len() > MAX_IMPORT {
        return Err(ApiError::unprocessable(format!(
            "{} devices given: an import takes 1-{MAX_IMPORT}; split larger lists",
            body.len()
        )));
    }
    let mut devices = Vec::with_capacity(body.len());
    let mut credentials = Vec::with_capacity(body.len());
    let mut errors = Vec::new();
    for (i, item) in body.iter().enumerate() {
        match new_device(item, &state.limits).and_then(|(id, fields)| {
            let (fields, secret) = with_credential(fields)?;
            Ok((id, fields, secret))
        }) {
            Ok((id, fields, secret)) => {
                credentials.push(Issued {
                    id: id.clone(),
                    mqtt_password: secret.expose().to_owned(),
                });
                devices.push((id, fields));
            }
            Err(e) => errors.push(format!("[{i}] {:?}: {}", item.id, e.message())),
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        errors.truncate(MAX_IMPORT_ERRORS);
        return Err(ApiError::unprocessable(format!(
            "{n} of {} devices refused, none registered: {}{}",
            body.len(),
            errors.join("; "),
            if n > MAX_IMPORT_ERRORS { "; ..." } else { "" }
        )));
    }
    let ids: Vec<DeviceId> = devices.iter().map(|(id, _)| id.clone()).collect();
    let result = blocking(&state, Subject::NONE, move |s| {
        s.create_devices(&devices, caller.actor(now_ms()))
    })
    .await?;
    if let Err((i, e)) = result {
        let e = ApiError::from_store(e, &Subject::NONE);
        let id = ids.get(i).map(ToString::to_string).unwrap_or_default();
        return Err(e.with_prefix(&format!("none registered: [{i}] {id:?}: ")));
    }
    state.accounts.notify();
    for id in &ids {
        tell_pipeline(&state, Control::DeviceChanged(id.clone())).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(Imported {
            created: ids.len(),
            ids,
            credentials,
        }),
    )
        .into_response())
}

/// `POST /devices`' answer: the device and its MQTT password.
pub(super) type DeviceRegistered<'a> = WithPassword<'a, DeviceView>;

/// `POST /devices`: the generic create, plus the device's MQTT password in the `201` body
/// (`mqtt_password`, shown this once; only its hash is stored).
pub(super) async fn create_device(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<DeviceCreate>,
) -> ApiResult {
    let (id, fields) = DeviceFields::create(body, &state)?;
    let (fields, secret) = with_credential(fields)?;
    let record = blocking(&state, Subject::NONE, move |s| {
        s.create::<DeviceFields>(id, &fields, caller.actor(now_ms()))
    })
    .await?;
    DeviceFields::changed(&state, &record.id, false).await?;
    Ok(created(
        format!("/api/v1/devices/{}", record.id),
        WithPassword {
            device: DeviceView::from(&record),
            mqtt_password: secret.expose(),
        },
    ))
}

/// The fields with a new credential's hash, and the credential.
fn with_credential(fields: DeviceFields) -> ApiResult<(DeviceFields, Secret)> {
    let (secret, hash) = new_secret()?;
    Ok((
        DeviceFields {
            credential_hash: Some(hash.as_str().to_owned()),
            ..fields
        },
        secret,
    ))
}

pub(super) async fn set_device_config(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<ConfigBody>,
) -> ApiResult {
    let id = id.device()?;
    let after = config_change(&state, caller, id, body).await?;
    Ok(view(&after))
}

/// Sets device `id`'s configuration as `caller` (within their area), checked against the
/// configured limits (422 with the GB text), then tells the pipeline: the one way a
/// configuration changes, from the API and the web UI.
///
/// # Errors
/// 422 out of range, 404 unknown device, 403 outside the area, 409 a stale `version`.
pub(crate) async fn config_change(
    state: &ApiState,
    caller: Caller,
    id: DeviceId,
    body: ConfigBody,
) -> ApiResult<Device> {
    // Checked before touching the store, against the configured limits.
    body.to_config(1, &state.limits)?;
    let limits = state.limits;
    let (before, after) = change::<DeviceFields>(state, &id, caller, move |d| {
        let current = d.config.version;
        if let Some(v) = body.version
            && v != current
        {
            return Err(ApiError::conflict(format!(
                "the configuration changed meanwhile: it is version {current} now, the change \
                 is based on version {v}; read it again and apply the change to it"
            )));
        }
        let mut config = body.to_config(current, &limits)?;
        if config == d.config {
            return Ok(None);
        }
        config.version = current.checked_add(1).ok_or_else(|| {
            ApiError::conflict("the configuration version cannot increase any further")
        })?;
        Ok(Some(DeviceFields {
            config,
            ..d.clone()
        }))
    })
    .await?;
    if before.fields.config != after.fields.config {
        tell_pipeline(state, Control::DeviceChanged(id)).await?;
    }
    Ok(after)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StateBody {
    to: DeviceState,
    #[serde(default)]
    note: Option<String>,
}

const fn state_name(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Registered => "registered",
        DeviceState::Commissioned => "commissioned",
        DeviceState::InService => "in_service",
        DeviceState::Decommissioned => "decommissioned",
    }
}

/// Whether a device may go from `from` to `to`: registered → commissioned → in_service, back
/// to commissioned (maintenance) or to registered (uninstalled), any → decommissioned, and a
/// decommissioned device may be registered again (re-used).
pub(crate) fn device_may_become(from: DeviceState, to: DeviceState) -> bool {
    use DeviceState::{Commissioned, Decommissioned, InService, Registered};
    matches!(
        (from, to),
        (Registered, Commissioned)
            | (Commissioned, InService | Registered)
            | (InService, Commissioned)
            | (Registered | Commissioned | InService, Decommissioned)
            | (Decommissioned, Registered)
    )
}

pub(super) async fn set_device_state(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<StateBody>,
) -> ApiResult {
    let id = id.device()?;
    if let Some(n) = &body.note {
        check_text("note", n, MAX_NOTE, false)?;
    }
    let to = body.to;
    let device = id.clone();
    let (before, after) = change::<DeviceFields>(&state, &id, caller.clone(), move |d| {
        let from = d.state;
        if from == to {
            return Ok(None);
        }
        if !device_may_become(from, to) {
            return Err(ApiError::conflict(format!(
                "device {}: cannot go from {} to {}: registered → commissioned → in_service, \
                 in_service → commissioned (maintenance), commissioned → registered, any → \
                 decommissioned, decommissioned → registered",
                device,
                state_name(from),
                state_name(to)
            )));
        }
        // Decommissioned: its credential is revoked (a connected device is disconnected).
        let credential_hash = if to == DeviceState::Decommissioned {
            None
        } else {
            d.credential_hash.clone()
        };
        Ok(Some(DeviceFields {
            state: to,
            credential_hash,
            ..d.clone()
        }))
    })
    .await?;
    let from = before.fields.state;
    if from == to {
        return Ok(view(&after));
    }
    if to == DeviceState::Decommissioned {
        state.accounts.notify();
    }
    let detail = serde_json::json!({
        "from": state_name(from),
        "to": state_name(to),
        "note": body.note,
    });
    let subject = format!("device/{id}");
    let commissioned = (to == DeviceState::Commissioned).then(|| id.clone());
    blocking(&state, Subject::NONE, move |s| {
        // Who puts a device in commissioned is its installer (crate::commissioning).
        if let Some(d) = &commissioned {
            s.set_installer(d, caller.user(), now_ms())?;
        }
        s.audit(caller.user(), "device.state", &subject, &detail, now_ms())
    })
    .await?;
    let control = if to == DeviceState::Decommissioned {
        Control::DeviceRemoved(id)
    } else {
        Control::DeviceChanged(id)
    };
    tell_pipeline(&state, control).await?;
    Ok(view(&after))
}

// ---- commands ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum CommandName {
    SelfTest,
    Silence,
    ResetAlarm,
    Reboot,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandBody {
    cmd: CommandName,
    #[serde(default)]
    ch: Option<u8>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CommandAccepted {
    #[schema(value_type = crate::api::ProtocolId)]
    device: DeviceId,
    cmd: CommandName,
    #[serde(skip_serializing_if = "Option::is_none")]
    ch: Option<u8>,
    status: &'static str,
}

pub(super) async fn device_command(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<CommandBody>,
) -> ApiResult {
    let id = id.device()?;
    let action = match (body.cmd, body.ch) {
        (CommandName::ResetAlarm, ch) => {
            if let Some(c) = ch
                && usize::from(c) >= MAX_CHANNELS
            {
                return Err(ApiError::unprocessable(format!(
                    "ch {c} does not exist: channels are 0-{}",
                    MAX_CHANNELS - 1
                )));
            }
            Action::ResetAlarm { channel: ch }
        }
        (_, Some(_)) => {
            return Err(ApiError::unprocessable(
                "ch applies only to reset_alarm (left out: every channel)",
            ));
        }
        (CommandName::SelfTest, None) => Action::SelfTest,
        (CommandName::Silence, None) => Action::Silence,
        (CommandName::Reboot, None) => Action::Reboot,
    };
    let detail = serde_json::json!({ "cmd": body.cmd, "ch": body.ch });
    blocking(&state, Subject::new("device", &id), {
        let id = id.clone();
        move |s| {
            let device = s
                .get_scoped::<DeviceFields>(&id, caller.scope())?
                .ok_or_else(|| crate::store::StoreError::Unknown {
                    what: crate::store::Noun::Device,
                    id: id.to_string(),
                })?;
            if device.fields.state == DeviceState::Decommissioned {
                return Ok(Err(ApiError::conflict(format!(
                    "device {id} is decommissioned: it takes no commands"
                ))));
            }
            s.audit(
                caller.user(),
                "device.command",
                &format!("device/{id}"),
                &detail,
                now_ms(),
            )?;
            Ok(Ok(()))
        }
    })
    .await??;
    tell_pipeline(&state, Control::Command(id.clone(), action))
        .await
        .map_err(|_| {
            ApiError::unavailable("the gateway's pipeline cannot take commands now: not sent")
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandAccepted {
            device: id,
            cmd: body.cmd,
            ch: body.ch,
            status: "queued",
        }),
    )
        .into_response())
}
