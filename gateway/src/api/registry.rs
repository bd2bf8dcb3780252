//! Registry routes: areas, workers, sites, rooms, circuits, devices (with their configuration,
//! lifecycle state and commands) and the pending list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::channel::{MAX_CHANNELS, Quantity};
use firegrid_protocols::message::{Action, ChannelConfig, Config, ConfigError};
use firegrid_protocols::thresholds::{
    ALARM_DELAY_DEFAULT_S, HEARTBEAT_INTERVAL_DEFAULT_S, Limits, REPORT_INTERVAL_DEFAULT_S,
    Threshold,
};
use firegrid_protocols::{DeviceId, GridId};

use super::access::Caller;
use super::error::{
    ApiError, Json, PathId, Subject, area_id, check_text, device_id, query_area, shorten,
};
use super::resource::{ApiResource, ApiResult, change};
use super::{ApiState, blocking, now_ms, tell_pipeline};
use crate::control::Control;
use crate::model::{DeviceKind, DeviceState, UnixMs};
use crate::store::{
    Area, AreaFields, AreaFilter, AreaLevel, Circuit, CircuitFields, CircuitFilter, CircuitId,
    Device, DeviceFields, DeviceFilter, Room, RoomFields, RoomFilter, Site, SiteFields, SiteFilter,
    SiteId, WireEncoding, Worker, WorkerFields, WorkerFilter,
};

/// The longest name, characters.
const MAX_NAME: usize = 200;
/// The longest free-text note, characters.
const MAX_NOTE: usize = 1000;
/// The most a list returns at once.
pub(super) const MAX_LIMIT: u32 = 10_000;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A list's page size: absent means the store's default.
pub(super) fn limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(0),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit {n} is out of range: 1-{MAX_LIMIT}"
        ))),
    }
}

fn optional_area(field: &str, s: Option<&str>) -> ApiResult<Option<GridId>> {
    s.map(|s| area_id(field, s)).transpose()
}

fn optional_text(field: &str, s: Option<&str>, max: usize) -> ApiResult<()> {
    s.map_or(Ok(()), |s| check_text(field, s, max, true))
}

// ---- areas ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AreaQuery {
    parent: Option<String>,
    level: Option<AreaLevel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AreaCreate {
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    level: AreaLevel,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AreaUpdate {
    #[serde(default)]
    parent_id: Option<String>,
    level: AreaLevel,
    name: String,
}

fn area_fields(parent_id: Option<&str>, level: AreaLevel, name: String) -> ApiResult<AreaFields> {
    check_text("name", &name, MAX_NAME, true)?;
    Ok(AreaFields {
        parent_id: optional_area("parent_id", parent_id)?,
        level,
        name,
    })
}

impl ApiResource for AreaFields {
    type Create = AreaCreate;
    type Update = AreaUpdate;
    type Query = AreaQuery;
    const PATH: &'static str = "areas";

    fn path_id(id: &PathId) -> ApiResult<GridId> {
        id.area()
    }
    fn create(body: AreaCreate, _: &ApiState) -> ApiResult<(GridId, Self)> {
        let id = area_id("id", &body.id)?;
        Ok((
            id,
            area_fields(body.parent_id.as_deref(), body.level, body.name)?,
        ))
    }
    fn update(body: AreaUpdate, _: &Self) -> ApiResult<Self> {
        area_fields(body.parent_id.as_deref(), body.level, body.name)
    }
    fn list_filter(q: AreaQuery) -> ApiResult<AreaFilter> {
        Ok(AreaFilter {
            parent_id: q
                .parent
                .as_deref()
                .map(|p| query_area("parent", p))
                .transpose()?,
            level: q.level,
        })
    }
    fn view(r: &Area) -> impl Serialize {
        r.clone()
    }
}

pub(super) async fn area_path(State(state): State<ApiState>, id: PathId) -> ApiResult {
    let id = id.area()?;
    let path = blocking(&state, Subject::new("area", &id), move |s| s.area_path(&id)).await?;
    Ok(Json(path).into_response())
}

// ---- workers ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkerQuery {
    area: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkerBody {
    name: String,
    area_id: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    mqtt_topic: Option<String>,
    #[serde(default)]
    webhook_url: Option<String>,
}

impl WorkerBody {
    fn fields(self) -> ApiResult<WorkerFields> {
        check_text("name", &self.name, MAX_NAME, true)?;
        optional_text("phone", self.phone.as_deref(), 32)?;
        if let Some(t) = &self.mqtt_topic {
            check_text("mqtt_topic", t, 256, true)?;
            if t.contains(['+', '#']) {
                return Err(ApiError::unprocessable(
                    "mqtt_topic must be a topic to publish on: no + or # wildcards",
                ));
            }
        }
        if let Some(u) = &self.webhook_url {
            check_text("webhook_url", u, 2048, true)?;
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(' ') {
                return Err(ApiError::unprocessable(format!(
                    "webhook_url {:?} must be an http:// or https:// URL",
                    shorten(u)
                )));
            }
        }
        Ok(WorkerFields {
            area_id: area_id("area_id", &self.area_id)?,
            name: self.name,
            phone: self.phone,
            mqtt_topic: self.mqtt_topic,
            webhook_url: self.webhook_url,
        })
    }
}

impl ApiResource for WorkerFields {
    type Create = WorkerBody;
    type Update = WorkerBody;
    type Query = WorkerQuery;
    const PATH: &'static str = "workers";

    fn path_id(id: &PathId) -> ApiResult<i64> {
        id.number("worker")
    }
    fn create(body: WorkerBody, _: &ApiState) -> ApiResult<((), Self)> {
        Ok(((), body.fields()?))
    }
    fn update(body: WorkerBody, _: &Self) -> ApiResult<Self> {
        body.fields()
    }
    fn list_filter(q: WorkerQuery) -> ApiResult<WorkerFilter> {
        Ok(WorkerFilter {
            area_id: q
                .area
                .as_deref()
                .map(|a| query_area("area", a))
                .transpose()?,
        })
    }
    fn view(r: &Worker) -> impl Serialize {
        r.clone()
    }
}

// ---- sites ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteQuery {
    area: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteBody {
    name: String,
    address: String,
    #[serde(default)]
    owner_name: Option<String>,
    #[serde(default)]
    owner_phone: Option<String>,
    area_id: String,
}

impl SiteBody {
    fn fields(self) -> ApiResult<SiteFields> {
        check_text("name", &self.name, MAX_NAME, true)?;
        check_text("address", &self.address, 500, true)?;
        optional_text("owner_name", self.owner_name.as_deref(), MAX_NAME)?;
        optional_text("owner_phone", self.owner_phone.as_deref(), 32)?;
        Ok(SiteFields {
            area_id: area_id("area_id", &self.area_id)?,
            name: self.name,
            address: self.address,
            owner_name: self.owner_name,
            owner_phone: self.owner_phone,
        })
    }
}

impl ApiResource for SiteFields {
    type Create = SiteBody;
    type Update = SiteBody;
    type Query = SiteQuery;
    const PATH: &'static str = "sites";

    fn path_id(id: &PathId) -> ApiResult<i64> {
        id.number("site")
    }
    fn create(body: SiteBody, _: &ApiState) -> ApiResult<((), Self)> {
        Ok(((), body.fields()?))
    }
    fn update(body: SiteBody, _: &Self) -> ApiResult<Self> {
        body.fields()
    }
    fn list_filter(q: SiteQuery) -> ApiResult<SiteFilter> {
        Ok(SiteFilter {
            area_id: q
                .area
                .as_deref()
                .map(|a| query_area("area", a))
                .transpose()?,
        })
    }
    fn view(r: &Site) -> impl Serialize {
        r.clone()
    }
}

// ---- rooms ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteChildQuery {
    site: Option<SiteId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomBody {
    site_id: SiteId,
    name: String,
}

impl RoomBody {
    fn fields(self) -> ApiResult<RoomFields> {
        check_text("name", &self.name, MAX_NAME, true)?;
        Ok(RoomFields {
            site_id: self.site_id,
            name: self.name,
        })
    }
}

impl ApiResource for RoomFields {
    type Create = RoomBody;
    type Update = RoomBody;
    type Query = SiteChildQuery;
    const PATH: &'static str = "rooms";

    fn path_id(id: &PathId) -> ApiResult<i64> {
        id.number("room")
    }
    fn create(body: RoomBody, _: &ApiState) -> ApiResult<((), Self)> {
        Ok(((), body.fields()?))
    }
    fn update(body: RoomBody, _: &Self) -> ApiResult<Self> {
        body.fields()
    }
    fn list_filter(q: SiteChildQuery) -> ApiResult<RoomFilter> {
        Ok(RoomFilter { site_id: q.site })
    }
    fn view(r: &Room) -> impl Serialize {
        r.clone()
    }
}

// ---- circuits ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CircuitBody {
    site_id: SiteId,
    #[serde(default)]
    parent_id: Option<CircuitId>,
    name: String,
}

impl CircuitBody {
    fn fields(self) -> ApiResult<CircuitFields> {
        check_text("name", &self.name, MAX_NAME, true)?;
        Ok(CircuitFields {
            site_id: self.site_id,
            parent_id: self.parent_id,
            name: self.name,
        })
    }
}

impl ApiResource for CircuitFields {
    type Create = CircuitBody;
    type Update = CircuitBody;
    type Query = SiteChildQuery;
    const PATH: &'static str = "circuits";

    fn path_id(id: &PathId) -> ApiResult<i64> {
        id.number("circuit")
    }
    fn create(body: CircuitBody, _: &ApiState) -> ApiResult<((), Self)> {
        Ok(((), body.fields()?))
    }
    fn update(body: CircuitBody, _: &Self) -> ApiResult<Self> {
        body.fields()
    }
    fn list_filter(q: SiteChildQuery) -> ApiResult<CircuitFilter> {
        Ok(CircuitFilter { site_id: q.site })
    }
    fn view(r: &Circuit) -> impl Serialize {
        r.clone()
    }
}

// ---- device configuration ---------------------------------------------------------------------

/// A device's configuration in the protocol's JSON shape (docs/protocol.md#config), as the API
/// shows and takes it. In a request, `version` is optional: when given, it must be the version
/// in force (the change is based on it); the gateway assigns the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(default)]
    report_interval_s: Option<u32>,
    #[serde(default)]
    heartbeat_interval_s: Option<u32>,
    #[serde(default)]
    buzzer: Option<bool>,
    #[serde(default)]
    relay_trip: Option<bool>,
    channels: Vec<ChannelBody>,
}

/// One channel of a [`ConfigBody`]: exactly one of `residual_ma` and `temp_dc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelBody {
    ch: u8,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residual_ma: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i64>,
    #[serde(default)]
    delay_s: Option<u16>,
}

impl From<&Config> for ConfigBody {
    fn from(c: &Config) -> Self {
        Self {
            version: Some(c.version),
            report_interval_s: Some(c.report_interval_s),
            heartbeat_interval_s: Some(c.heartbeat_interval_s),
            buzzer: Some(c.buzzer),
            relay_trip: Some(c.relay_trip),
            channels: c
                .channels
                .iter()
                .map(|ch| {
                    let (residual_ma, temp_dc) = match ch.threshold {
                        Threshold::ResidualMa(v) => (Some(i64::from(v)), None),
                        Threshold::TempDc(v) => (None, Some(i64::from(v))),
                    };
                    ChannelBody {
                        ch: ch.channel,
                        enabled: Some(ch.enabled),
                        residual_ma,
                        temp_dc,
                        delay_s: Some(ch.delay_s),
                    }
                })
                .collect(),
        }
    }
}

impl ConfigBody {
    /// The configuration with this version, checked against `limits` (422 with the GB text).
    pub(crate) fn to_config(&self, version: u32, limits: &Limits) -> ApiResult<Config> {
        let invalid = |e: &dyn std::fmt::Display| {
            ApiError::unprocessable(format!("invalid device configuration: {e}"))
        };
        if self.channels.len() > MAX_CHANNELS {
            return Err(invalid(&format_args!(
                "{} channels given, at most {MAX_CHANNELS}",
                self.channels.len()
            )));
        }
        let mut config = Config {
            version,
            report_interval_s: self.report_interval_s.unwrap_or(REPORT_INTERVAL_DEFAULT_S),
            heartbeat_interval_s: self
                .heartbeat_interval_s
                .unwrap_or(HEARTBEAT_INTERVAL_DEFAULT_S),
            buzzer: self.buzzer.unwrap_or(true),
            relay_trip: self.relay_trip.unwrap_or(false),
            channels: Default::default(),
        };
        for c in &self.channels {
            let (quantity, value) = match (c.residual_ma, c.temp_dc) {
                (Some(v), None) => (Quantity::ResidualCurrent, v),
                (None, Some(v)) => (Quantity::Temperature, v),
                _ => {
                    return Err(invalid(&format_args!(
                        "channel {}: give exactly one of residual_ma (mA) or temp_dc (deci-°C)",
                        c.ch
                    )));
                }
            };
            let value = i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX });
            let threshold = Threshold::new(quantity, value, limits).map_err(|error| {
                invalid(&ConfigError::Threshold {
                    channel: c.ch,
                    error,
                })
            })?;
            let channel = ChannelConfig {
                channel: c.ch,
                enabled: c.enabled.unwrap_or(true),
                threshold,
                delay_s: c.delay_s.unwrap_or(ALARM_DELAY_DEFAULT_S),
            };
            if config.channels.push(channel).is_err() {
                return Err(invalid(&format_args!("at most {MAX_CHANNELS} channels")));
            }
        }
        config.validate(limits).map_err(|e| invalid(&e))?;
        Ok(config)
    }
}

/// The configuration of a device registered without one: version 1, default intervals, no
/// channels (the device's own set-points stay in force until channels are set).
fn default_config() -> Config {
    Config {
        version: 1,
        report_interval_s: REPORT_INTERVAL_DEFAULT_S,
        heartbeat_interval_s: HEARTBEAT_INTERVAL_DEFAULT_S,
        buzzer: true,
        relay_trip: false,
        channels: Default::default(),
    }
}

// ---- devices ----------------------------------------------------------------------------------

/// A device as the API shows it (never its credential).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceView {
    id: DeviceId,
    kind: DeviceKind,
    state: DeviceState,
    site_id: Option<SiteId>,
    room_id: Option<i64>,
    circuit_id: Option<CircuitId>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceQuery {
    state: Option<DeviceState>,
    kind: Option<DeviceKind>,
    site: Option<SiteId>,
    area: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
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
    fn view(r: &Device) -> impl Serialize {
        DeviceView::from(r)
    }
    async fn changed(state: &ApiState, id: &DeviceId, removed: bool) -> ApiResult<()> {
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
#[derive(Debug, Serialize)]
struct Imported {
    created: usize,
    ids: Vec<DeviceId>,
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
    let mut errors = Vec::new();
    for (i, item) in body.iter().enumerate() {
        match new_device(item, &state.limits) {
            Ok(d) => devices.push(d),
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
    for id in &ids {
        tell_pipeline(&state, Control::DeviceChanged(id.clone())).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(Imported {
            created: ids.len(),
            ids,
        }),
    )
        .into_response())
}

pub(super) async fn set_device_config(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<ConfigBody>,
) -> ApiResult {
    let id = id.device()?;
    // Checked before touching the store, against the configured limits.
    body.to_config(1, &state.limits)?;
    let limits = state.limits;
    let (before, after) = change::<DeviceFields>(&state, &id, caller, move |d| {
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
        tell_pipeline(&state, Control::DeviceChanged(id)).await?;
    }
    Ok(view(&after))
}

#[derive(Debug, Deserialize)]
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
        Ok(Some(DeviceFields {
            state: to,
            ..d.clone()
        }))
    })
    .await?;
    let from = before.fields.state;
    if from == to {
        return Ok(view(&after));
    }
    let detail = serde_json::json!({
        "from": state_name(from),
        "to": state_name(to),
        "note": body.note,
    });
    let subject = format!("device/{id}");
    blocking(&state, Subject::NONE, move |s| {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum CommandName {
    SelfTest,
    Silence,
    ResetAlarm,
    Reboot,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandBody {
    cmd: CommandName,
    #[serde(default)]
    ch: Option<u8>,
}

#[derive(Debug, Serialize)]
struct CommandAccepted {
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

// ---- pending devices --------------------------------------------------------------------------

pub(super) async fn list_pending(State(state): State<ApiState>) -> ApiResult {
    let pending = blocking(&state, Subject::NONE, |s| s.list_pending()).await?;
    Ok(Json(pending).into_response())
}

pub(super) async fn forget_pending(State(state): State<ApiState>, id: PathId) -> ApiResult {
    let id = id.device()?;
    let found = blocking(&state, Subject::NONE, {
        let id = id.clone();
        move |s| s.forget_pending(&id)
    })
    .await?;
    if found {
        Ok(no_content())
    } else {
        Err(ApiError::not_found(format!("no pending device {id}")))
    }
}
