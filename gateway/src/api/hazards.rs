//! `GET /api/v1/hazards`: unresolved hazards grouped per site (docs/alerts.md).
//!
//! A site with three unresolved episodes (tickets neither `verified` nor `closed`) is one hazard
//! to rectify: `[{"site_id":1,"site":"Block 3","address":"3 Wulin Rd","area_id":"grid-7",
//! "since_ms":…,"ticket":"acknowledged","episodes":[{"id":12,"category":"alarm",
//! "device":"hz-0042","ticket":"acknowledged","started_ms":…,"ended_ms":…},…]}]`, oldest first;
//! `ticket` is the least advanced of its tickets. `?area=` keeps the sites of that subtree; a
//! scoped caller sees their subtree's.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use super::access::{Caller, check_area};
use super::error::{ApiError, Json, Query, Subject, query_area};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct HazardQuery {
    area: Option<String>,
}

pub(super) async fn hazards(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<HazardQuery>,
) -> Result<Response, ApiError> {
    let area = q
        .area
        .as_deref()
        .map(|a| query_area("area", a))
        .transpose()?;
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        if let Some(a) = &area {
            check_area(&store, &caller, &format!("area {a}"), Some(a))?;
        }
        let area = area.or_else(|| caller.scope().cloned());
        store
            .hazards(area.as_ref())
            .map_err(|e| ApiError::from_store(e, &Subject::NONE))
    })
    .await
    .map_err(|e| ApiError::internal("a store task failed", &e))??;
    Ok(Json(found).into_response())
}
