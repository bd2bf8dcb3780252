//! The registry's routes, written once: list, create, read, change and delete of any noun
//! ([`ApiResource`]: the store's [`Resource`] plus what the API needs of it — its request
//! bodies, its query, how its path id reads, how it is shown, and whom to tell of a change).

use std::future::Future;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use super::access::Caller;
use super::error::{ApiError, Json, PathId, Query, Subject};
use super::openapi::{Op, op, op_list};
use super::{ApiState, blocking, now_ms};
use crate::store::{RecordOf, Resource};

pub(super) type ApiResult<T = Response> = Result<T, ApiError>;

/// What the API needs of a registry noun beyond the store's [`Resource`]; each of its types
/// describes itself for the OpenAPI document ([`super::openapi`]).
pub(super) trait ApiResource: Resource {
    /// The body of a create.
    type Create: DeserializeOwned + ToSchema + Send + 'static;
    /// The body of a change (`PUT`).
    type Update: DeserializeOwned + ToSchema + Send + 'static;
    /// The query of a list.
    type Query: DeserializeOwned + IntoParams + Send + 'static;
    /// The record as the API shows it.
    type View: Serialize + ToSchema;
    /// The collection's path under `/api/v1/` (`areas`, `devices`).
    const PATH: &'static str;

    /// The path's id, checked (400 naming the id rule).
    fn path_id(id: &PathId) -> ApiResult<Self::Id>;
    /// A create's id and fields, checked (422 naming the field).
    fn create(body: Self::Create, state: &ApiState) -> ApiResult<(Self::NewId, Self)>;
    /// A change's fields, checked, given the record as it is.
    fn update(body: Self::Update, before: &Self) -> ApiResult<Self>;
    /// A list's filter.
    fn list_filter(query: Self::Query) -> ApiResult<Self::Filter>;
    /// The record as the API shows it.
    fn view(record: &RecordOf<Self>) -> Self::View;
    /// Tells whoever must know of a stored change (`removed`: it is gone).
    fn changed(
        _state: &ApiState,
        _id: &Self::Id,
        _removed: bool,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }
}

pub(super) fn created(location: String, body: impl Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

/// `GET /api/v1/{nouns}`'s description.
pub(super) fn list_op<F: ApiResource>() -> Op {
    op_list::<F::View>(format!("list the {}", F::PATH)).query::<F::Query>()
}

/// `POST /api/v1/{nouns}`'s description.
pub(super) fn create_op<F: ApiResource>() -> Op {
    op::<F::View>(format!("create one of the {}", F::PATH))
        .status(201)
        .body::<F::Create>()
}

/// `GET /api/v1/{nouns}/{id}`'s description.
pub(super) fn get_op<F: ApiResource>() -> Op {
    op::<F::View>(format!("one of the {}", F::PATH))
}

/// `PUT /api/v1/{nouns}/{id}`'s description.
pub(super) fn update_op<F: ApiResource>() -> Op {
    op::<F::View>(format!("change one of the {}", F::PATH)).body::<F::Update>()
}

/// `DELETE /api/v1/{nouns}/{id}`'s description.
pub(super) fn delete_op<F: ApiResource>() -> Op {
    Op::empty(format!("delete one of the {}", F::PATH))
}

fn subject<F: ApiResource>(id: &F::Id) -> Subject {
    Subject::new(F::NOUN.as_str(), id)
}

/// `GET /api/v1/{nouns}`.
pub(super) async fn list<F: ApiResource>(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<F::Query>,
) -> ApiResult {
    let filter = F::list_filter(q)?;
    let records = blocking(&state, Subject::NONE, move |s| {
        s.list::<F>(&filter, caller.scope())
    })
    .await?;
    Ok(Json(records.iter().map(F::view).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v1/{nouns}`.
pub(super) async fn create<F: ApiResource>(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<F::Create>,
) -> ApiResult {
    let (id, fields) = F::create(body, &state)?;
    let record = blocking(&state, Subject::NONE, move |s| {
        s.create::<F>(id, &fields, caller.actor(now_ms()))
    })
    .await?;
    F::changed(&state, &record.id, false).await?;
    Ok(created(
        format!("/api/v1/{}/{}", F::PATH, record.id),
        F::view(&record),
    ))
}

/// `GET /api/v1/{nouns}/{id}`.
pub(super) async fn get<F: ApiResource>(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> ApiResult {
    let id = F::path_id(&id)?;
    let found = blocking(&state, subject::<F>(&id), {
        let id = id.clone();
        move |s| s.get_scoped::<F>(&id, caller.scope())
    })
    .await?;
    found
        .map(|r| Json(F::view(&r)).into_response())
        .ok_or_else(|| ApiError::not_found(format!("no {} {id}", F::NOUN)))
}

/// `PUT /api/v1/{nouns}/{id}`: reads the record and writes the change in one blocking task.
pub(super) async fn update<F: ApiResource>(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<F::Update>,
) -> ApiResult {
    let id = F::path_id(&id)?;
    let record = update_record::<F>(&state, caller, &id, body).await?;
    Ok(Json(F::view(&record)).into_response())
}

/// Updates record `id` with `body` as `caller` and tells whoever follows the change: the one
/// way a record is updated, from the API and the web UI.
pub(super) async fn update_record<F: ApiResource>(
    state: &ApiState,
    caller: Caller,
    id: &F::Id,
    body: F::Update,
) -> ApiResult<RecordOf<F>> {
    let record = change::<F>(state, id, caller, move |before| {
        F::update(body, before).map(Some)
    })
    .await?
    .1;
    F::changed(state, id, false).await?;
    Ok(record)
}

/// Reads a record, changes its fields with `change` (`None`: nothing to change), writes it
/// back: one blocking task. Returns the record before and after.
pub(super) async fn change<F: ApiResource>(
    state: &ApiState,
    id: &F::Id,
    caller: Caller,
    change: impl FnOnce(&F) -> ApiResult<Option<F>> + Send + 'static,
) -> ApiResult<(RecordOf<F>, RecordOf<F>)> {
    let subject = subject::<F>(id);
    let id = id.clone();
    let store = state.store.clone();
    let task = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let before = store
            .get_scoped::<F>(&id, caller.scope())
            .map_err(|e| ApiError::from_store(e, &subject))?
            .ok_or_else(|| ApiError::not_found(format!("no {} {id}", F::NOUN)))?;
        let Some(fields) = change(&before.fields)? else {
            return Ok((before.clone(), before));
        };
        let after = store
            .update::<F>(&id, &fields, caller.actor(now_ms()))
            .map_err(|e| ApiError::from_store(e, &subject))?;
        Ok((before, after))
    });
    task.await
        .map_err(|e| ApiError::internal("a store task failed", &e))?
}

/// `DELETE /api/v1/{nouns}/{id}`.
pub(super) async fn delete<F: ApiResource>(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> ApiResult {
    let id = F::path_id(&id)?;
    blocking(&state, subject::<F>(&id), {
        let id = id.clone();
        move |s| s.delete::<F>(&id, caller.actor(now_ms()))
    })
    .await?;
    F::changed(&state, &id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
