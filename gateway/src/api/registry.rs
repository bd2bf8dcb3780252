//! Registry nouns as API resources (areas, workers, sites, rooms, circuits: their bodies,
//! queries and checks; the routes themselves are the generic ones of [`super::resource`]), the
//! area path and the pending list. Devices: [`super::devices`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use firegrid_protocols::GridId;

use super::access::{Caller, check_area};
use super::error::{ApiError, Json, PathId, Subject, area_id, check_text, query_area, shorten};
use super::resource::{ApiResource, ApiResult};
use super::{ApiState, blocking};
use crate::store::{
    Area, AreaFields, AreaFilter, AreaLevel, Circuit, CircuitFields, CircuitFilter, CircuitId,
    Room, RoomFields, RoomFilter, Site, SiteFields, SiteFilter, SiteId, Worker, WorkerFields,
    WorkerFilter,
};

/// The longest name, characters.
const MAX_NAME: usize = 200;
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

pub(super) fn optional_area(field: &str, s: Option<&str>) -> ApiResult<Option<GridId>> {
    s.map(|s| area_id(field, s)).transpose()
}

fn optional_text(field: &str, s: Option<&str>, max: usize) -> ApiResult<()> {
    s.map_or(Ok(()), |s| check_text(field, s, max, true))
}

// ---- areas ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AreaQuery {
    parent: Option<String>,
    #[param(inline)]
    level: Option<AreaLevel>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AreaCreate {
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    level: AreaLevel,
    name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    type View = Area;
    fn view(r: &Area) -> Area {
        r.clone()
    }
}

/// `GET /api/v1/areas/{id}/path`: the area and those above it (its escalation path). A scoped
/// caller may ask for an area in their subtree (whose path goes above it).
pub(super) async fn area_path(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> ApiResult {
    let id = id.area()?;
    let path = blocking(&state, Subject::new("area", &id), move |s| {
        let path = s.area_path(&id)?;
        Ok(check_area(s, &caller, &format!("area {id}"), Some(&id)).map(|()| path))
    })
    .await??;
    Ok(Json(path).into_response())
}

// ---- workers ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkerQuery {
    area: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    #[serde(default)]
    webhook_format: crate::store::WebhookFormat,
    /// A DingTalk robot's signing secret (write-only).
    #[serde(default)]
    webhook_secret: Option<String>,
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
        if let Some(s) = &self.webhook_secret {
            check_text("webhook_secret", s, 256, true)?;
            if self.webhook_format != crate::store::WebhookFormat::Dingtalk {
                return Err(ApiError::unprocessable(
                    "webhook_secret signs DingTalk robot requests: only with webhook_format \"dingtalk\"",
                ));
            }
        }
        Ok(WorkerFields {
            area_id: area_id("area_id", &self.area_id)?,
            name: self.name,
            phone: self.phone,
            mqtt_topic: self.mqtt_topic,
            webhook_url: self.webhook_url,
            webhook_format: self.webhook_format,
            webhook_secret: self.webhook_secret,
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
    type View = Worker;
    fn view(r: &Worker) -> Worker {
        r.clone()
    }
}

// ---- sites ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteQuery {
    area: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    type View = Site;
    fn view(r: &Site) -> Site {
        r.clone()
    }
}

// ---- rooms ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteChildQuery {
    site: Option<SiteId>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomBody {
    site_id: SiteId,
    name: String,
    #[serde(default)]
    tenant_name: Option<String>,
    #[serde(default)]
    tenant_phone: Option<String>,
}

impl RoomBody {
    fn fields(self) -> ApiResult<RoomFields> {
        check_text("name", &self.name, MAX_NAME, true)?;
        optional_text("tenant_name", self.tenant_name.as_deref(), MAX_NAME)?;
        optional_text("tenant_phone", self.tenant_phone.as_deref(), 32)?;
        Ok(RoomFields {
            site_id: self.site_id,
            name: self.name,
            tenant_name: self.tenant_name,
            tenant_phone: self.tenant_phone,
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
    type View = Room;
    fn view(r: &Room) -> Room {
        r.clone()
    }
}

// ---- circuits ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    type View = Circuit;
    fn view(r: &Circuit) -> Circuit {
        r.clone()
    }
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
