//! `GET /api/v1/reports/{name}`: the rectification reports ([`crate::reports`]), JSON or CSV
//! (`format=csv`), area-scoped like every route (`area=`, default the caller's area; another
//! area's subtree is 403), filtered to key areas with `key=1`.
//!
//! | name | parameters | what |
//! | --- | --- | --- |
//! | `unresolved` | — | unresolved hazards by age bucket and grid cell |
//! | `repeat-sites` | `days` (30), `min` (3) | sites with ≥ `min` alarm/smoke episodes in `days` |
//! | `grid-cells` | `days` (30) | online rate now; times to acknowledge and to rectify |
//! | `devices` | `hours` (24) | watched devices offline ≥ `hours` (battery low, test overdue) |
//!
//! Also the key areas (重点区域): `PUT` / `DELETE /api/v1/areas/{id}/key`, `GET
//! /api/v1/key-areas`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::access::{Caller, check_area};
use super::error::{ApiError, Json, PathId, Query, Subject, query_area};
use super::{ApiState, blocking, now_ms};
use crate::commissioning::CommissioningSection;
use crate::model::UnixMs;
use crate::reports::{self, Areas, Cells, DAY_MS, DeviceRow, RepeatSites, Unresolved, Visits};
use crate::store::{Actor, AreaId, HOUR_MS, Store, StoreError};

/// The reports by name.
pub(crate) const NAMES: [&str; 4] = ["unresolved", "repeat-sites", "grid-cells", "devices"];

/// A report's query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    /// The area (default: the caller's).
    pub(crate) area: Option<String>,
    /// `1` or `true`: only key areas.
    pub(crate) key: Option<String>,
    /// `json` (default) or `csv`.
    pub(crate) format: Option<String>,
    /// The window of `repeat-sites` and `grid-cells`, days.
    pub(crate) days: Option<u64>,
    /// The least hazards of a repeat site.
    pub(crate) min: Option<u64>,
    /// How long offline counts in `devices`, hours.
    pub(crate) hours: Option<u64>,
}

/// A computed report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum Report {
    /// `unresolved`.
    Unresolved(Unresolved),
    /// `repeat-sites`.
    RepeatSites(RepeatSites),
    /// `grid-cells`.
    Cells(Cells),
    /// `devices`.
    Visits(Visits),
}

impl Report {
    /// As CSV.
    pub(crate) fn csv(&self) -> String {
        match self {
            Self::Unresolved(r) => reports::csv::unresolved(r),
            Self::RepeatSites(r) => reports::csv::repeat_sites(r),
            Self::Cells(r) => reports::csv::cells(r),
            Self::Visits(r) => reports::csv::visits(r),
        }
    }
}

fn flag(v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("0" | "false" | "") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "key {other:?}: 1 (only key areas) or 0"
        ))),
    }
}

fn bounded(name: &str, v: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    let v = v.unwrap_or(default);
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad_request(format!(
            "{name} {v}: between 1 and {max}"
        )))
    }
}

/// Checks the query of report `name` against what it takes (400 otherwise).
fn check(name: &str, q: &ReportQuery) -> Result<(), ApiError> {
    let takes = |p: &str| match name {
        "repeat-sites" => matches!(p, "days" | "min"),
        "grid-cells" => p == "days",
        "devices" => p == "hours",
        _ => false,
    };
    for (p, given) in [
        ("days", q.days.is_some()),
        ("min", q.min.is_some()),
        ("hours", q.hours.is_some()),
    ] {
        if given && !takes(p) {
            return Err(ApiError::bad_request(format!("report {name} takes no {p}")));
        }
    }
    Ok(())
}

/// Computes report `name` for `caller` at `now` (blocking: call it off the async runtime).
///
/// # Errors
/// 404 for an unknown report, 400 for a bad parameter, 403 for an area outside the caller's.
pub(crate) fn compute(
    store: &Store,
    caller: &Caller,
    name: &str,
    q: &ReportQuery,
    schedule: &CommissioningSection,
    now: UnixMs,
) -> Result<Report, ApiError> {
    if !NAMES.contains(&name) {
        return Err(ApiError::not_found(format!(
            "no report {name:?}: {}",
            NAMES.join(", ")
        )));
    }
    check(name, q)?;
    let key_only = flag(q.key.as_deref())?;
    let area = q
        .area
        .as_deref()
        .map(|a| query_area("area", a))
        .transpose()?;
    if let Some(a) = &area {
        check_area(store, caller, &format!("area {a}"), Some(a))?;
    }
    let area: Option<AreaId> = area.or_else(|| caller.scope().cloned());
    let st = |e| ApiError::from_store(e, &Subject::NONE);
    let areas = Areas::new(store.report_areas().map_err(st)?);
    Ok(match name {
        "unresolved" => {
            let rows = store
                .report_episodes(area.as_ref(), None, true)
                .map_err(st)?;
            Report::Unresolved(reports::unresolved(&rows, &areas, now, key_only))
        }
        "repeat-sites" => {
            let days = bounded("days", q.days, 30, 366)?;
            let min = bounded("min", q.min, 3, 10_000)?;
            let since = now.saturating_sub(days * DAY_MS);
            let rows = store
                .report_episodes(area.as_ref(), Some(since), false)
                .map_err(st)?;
            Report::RepeatSites(reports::repeat_sites(
                &rows, &areas, now, days, min, key_only,
            ))
        }
        "grid-cells" => {
            let days = bounded("days", q.days, 30, 366)?;
            let since = now.saturating_sub(days * DAY_MS);
            let rows = store
                .report_episodes(area.as_ref(), Some(since), false)
                .map_err(st)?;
            let devices = devices(store, area.as_ref(), schedule, now).map_err(st)?;
            Report::Cells(reports::cells(&devices, &rows, &areas, now, days, key_only))
        }
        _ => {
            let hours = bounded("hours", q.hours, 24, 24 * 366)?;
            let devices = devices(store, area.as_ref(), schedule, now).map_err(st)?;
            Report::Visits(reports::visits(
                &devices,
                &areas,
                now,
                hours * HOUR_MS,
                key_only,
            ))
        }
    })
}

/// The devices of `area` (all: `None`), each with whether its scheduled self-test is overdue at
/// `now` ([`reports::with_self_tests`]).
fn devices(
    store: &Store,
    area: Option<&AreaId>,
    schedule: &CommissioningSection,
    now: UnixMs,
) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = store.report_devices(area)?;
    Ok(reports::with_self_tests(
        rows,
        |k| schedule.period_ms(k),
        now,
    ))
}

/// `GET /api/v1/reports/{name}`.
pub(crate) async fn report(
    State(state): State<ApiState>,
    caller: Caller,
    name: PathId,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: json or csv"
            )));
        }
    };
    let store = state.store.clone();
    let now = now_ms();
    let name = name.0;
    let name2 = name.clone();
    let schedule = state.commissioning.section.clone();
    let r =
        tokio::task::spawn_blocking(move || compute(&store, &caller, &name2, &q, &schedule, now))
            .await
            .map_err(|e| ApiError::internal("a store task failed", &e))??;
    if !csv {
        return Ok(Json(r).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"report-{name}.csv\""),
            ),
        ],
        r.csv(),
    )
        .into_response())
}

/// `PUT /api/v1/areas/{id}/key`: flags an area as a key area (204).
pub(crate) async fn flag_key_area(
    state: State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    set_key(state, caller, id, true).await
}

/// `DELETE /api/v1/areas/{id}/key`: unflags it (204).
pub(crate) async fn unflag_key_area(
    state: State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    set_key(state, caller, id, false).await
}

async fn set_key(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    key: bool,
) -> Result<Response, ApiError> {
    let area = id.area()?;
    let subject = Subject::new("area", &area);
    blocking(&state, subject, move |s| {
        s.set_key_area(
            &area,
            key,
            Actor::scoped(caller.user(), now_ms(), caller.scope()),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/key-areas`: the key areas (all of them: a flag is no secret, and a scoped
/// caller's reports roll up by the key areas above their area too).
pub(crate) async fn key_areas(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let rows = blocking(&state, Subject::NONE, |s| s.report_areas()).await?;
    let keys: Vec<KeyAreaView> = rows
        .into_iter()
        .filter(|a| a.key)
        .map(|a| KeyAreaView {
            id: a.id,
            name: a.name,
            level: a.level,
        })
        .collect();
    Ok(Json(keys).into_response())
}

/// A key area as `GET /api/v1/key-areas` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyAreaView {
    /// Its id.
    #[schema(value_type = crate::api::ProtocolId)]
    id: crate::store::AreaId,
    /// Its name.
    name: String,
    /// Its level.
    level: crate::store::AreaLevel,
}
