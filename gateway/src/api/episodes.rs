//! Episode, ticket and audit routes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::message::Level;
use firegrid_protocols::{DeviceId, GridId};

use super::access::{Caller, check_area};
use super::error::{ApiError, Json, PathId, Query, Subject, check_text, query_area, query_device};
use super::registry::limit;
use super::{ApiState, blocking, now_ms, tell_pipeline};
use crate::access::Role;
use crate::control::Control;
use crate::model::{Category, Episode, EpisodeId, Source, TicketState, UnixMs};
use crate::store::{AuditFilter, EpisodeFilter, TicketStep};
use crate::workflow::{ReadingsSince, Verification, WorkflowConfig, verification};

type ApiResult<T = Response> = Result<T, ApiError>;

/// The longest ticket note, characters.
const MAX_NOTE: usize = 1000;

/// An episode as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct EpisodeView {
    id: EpisodeId,
    #[schema(value_type = crate::api::ProtocolId)]
    device: DeviceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<u8>,
    category: Category,
    #[schema(value_type = crate::api::ProtocolId)]
    grid: GridId,
    source: Source,
    started_ms: UnixMs,
    ended_ms: Option<UnixMs>,
    /// Whether the condition goes on.
    open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::api::Level>)]
    peak: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    ticket: TicketState,
    escalation: u8,
}

impl From<Episode> for EpisodeView {
    fn from(e: Episode) -> Self {
        Self {
            id: e.id,
            device: e.key.device,
            channel: e.key.channel,
            category: e.key.category,
            grid: e.grid,
            source: e.source,
            started_ms: e.started_ms,
            open: e.ended_ms.is_none(),
            ended_ms: e.ended_ms,
            peak: e.peak,
            detail: e.detail,
            ticket: e.ticket,
            escalation: e.escalation,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EpisodeWithSteps {
    #[serde(flatten)]
    episode: EpisodeView,
    steps: Vec<TicketStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<crate::store::Assignee>,
    /// Notes and photos, oldest first (api/evidence.rs).
    evidence: Vec<crate::store::Evidence>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EpisodeQuery {
    grid: Option<String>,
    area: Option<String>,
    device: Option<String>,
    /// The ticket's state.
    #[param(inline)]
    state: Option<TicketState>,
    #[param(inline)]
    category: Option<Category>,
    open: Option<bool>,
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// Checks a `from`/`to` pair.
pub(super) fn time_range(from: Option<UnixMs>, to: Option<UnixMs>) -> ApiResult<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::bad_request(format!(
            "from ({f}) must be before to ({t}): both are ms since the Unix epoch"
        )));
    }
    Ok(())
}

pub(super) async fn list_episodes(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<EpisodeQuery>,
) -> ApiResult {
    time_range(q.from, q.to)?;
    let open_only = match q.open {
        None | Some(true) => q.open.is_some(),
        Some(false) => {
            return Err(ApiError::bad_request(
                "open=false is not supported: use open=true for ongoing episodes, or leave it \
                 out for all",
            ));
        }
    };
    let filter = EpisodeFilter {
        area: q
            .area
            .as_deref()
            .map(|a| query_area("area", a))
            .transpose()?,
        grid: q
            .grid
            .as_deref()
            .map(|g| query_area("grid", g))
            .transpose()?,
        device: q
            .device
            .as_deref()
            .map(|d| query_device("device", d))
            .transpose()?,
        ticket: q.state,
        category: q.category,
        open_only,
        from_ms: q.from,
        to_ms: q.to,
        limit: limit(q.limit)?,
        offset: q.offset.unwrap_or(0),
    };
    let store = state.store.clone();
    let episodes = tokio::task::spawn_blocking(move || {
        let mut filter = filter;
        // A scoped caller's filters must lie in their area; without one, their area is it.
        if caller.scope().is_some() {
            for (what, area) in [("area", &filter.area), ("grid", &filter.grid)] {
                if let Some(a) = area {
                    check_area(&store, &caller, &format!("{what} {a}"), Some(a))?;
                }
            }
            if filter.area.is_none() {
                filter.area = caller.scope().cloned();
            }
        }
        store
            .episodes(&filter)
            .map_err(|e| ApiError::from_store(e, &Subject::NONE))
    })
    .await
    .map_err(|e| ApiError::internal("a store task failed", &e))??;
    Ok(Json(
        episodes
            .into_iter()
            .map(EpisodeView::from)
            .collect::<Vec<_>>(),
    )
    .into_response())
}

pub(super) async fn get_episode(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> ApiResult {
    let id = id.episode()?;
    let found = blocking(&state, Subject::new("episode", id), move |s| {
        let Some(episode) = s.episode(id)? else {
            return Ok(Ok(None));
        };
        if let Err(e) = check_area(s, &caller, &format!("episode {id}"), Some(&episode.grid)) {
            return Ok(Err(e));
        }
        Ok(Ok(Some((
            episode,
            s.ticket_steps(id)?,
            s.assignee_of(id)?,
            s.evidence_of(id)?,
        ))))
    })
    .await??;
    let (episode, steps, assignee, evidence) =
        found.ok_or_else(|| ApiError::not_found(format!("no episode {id}")))?;
    Ok(Json(EpisodeWithSteps {
        episode: episode.into(),
        steps,
        assignee,
        evidence,
    })
    .into_response())
}

/// A ticket move. Who moves it is the caller (the token's user), never a field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TicketBody {
    to: TicketState,
    #[serde(default)]
    note: Option<String>,
    /// `verified` although the data does not show it (operators and admins only): why.
    #[serde(default)]
    override_reason: Option<String>,
}

pub(super) async fn move_ticket(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<TicketBody>,
) -> ApiResult {
    let id = id.episode()?;
    let episode = ticket_move(&state, caller, id, body.to, body.note, body.override_reason).await?;
    Ok(Json(EpisodeView::from(episode)).into_response())
}

/// Moves episode `id`'s ticket to `to` as `caller` (within their area), then tells the
/// pipeline of an acknowledgement: the one way a ticket moves, from the API and the web UI.
/// `verified` needs the data to show it, or `override_reason` from an operator or admin.
///
/// # Errors
/// 422 for a note too long, 404 for an unknown episode, 403 outside the caller's area, 409 for
/// an illegal move, 503 when the pipeline cannot be told.
pub(crate) async fn ticket_move(
    state: &ApiState,
    caller: Caller,
    id: EpisodeId,
    to: TicketState,
    note: Option<String>,
    override_reason: Option<String>,
) -> ApiResult<Episode> {
    if let Some(n) = &note {
        check_text("note", n, MAX_NOTE, false)?;
    }
    if let Some(r) = &override_reason {
        check_text("override_reason", r, MAX_NOTE, true)?;
    }
    let workflow = state.workflow.clone();
    let episode = blocking(state, Subject::new("episode", id), move |s| {
        let Some(episode) = s.episode(id)? else {
            return Err(crate::store::StoreError::UnknownEpisode(id));
        };
        if let Err(e) = check_area(s, &caller, &format!("episode {id}"), Some(&episode.grid)) {
            return Ok(Err(e));
        }
        let now = now_ms();
        if to == TicketState::Verified && episode.ticket.may_become(to) {
            let verdict = verify_by_data(s, &episode, &workflow, now)?;
            if verdict != Verification::Verified {
                let may_override = matches!(caller.role(), Role::Admin | Role::Operator);
                match &override_reason {
                    Some(reason) if may_override => {
                        s.audit(
                            caller.user(),
                            "ticket.verified.override",
                            &format!("episode/{id}"),
                            &serde_json::json!({ "reason": reason, "data": verdict }),
                            now,
                        )?;
                    }
                    Some(_) => {
                        return Ok(Err(ApiError::new(
                            axum::http::StatusCode::FORBIDDEN,
                            "only an operator or an admin may verify against the data",
                        )));
                    }
                    None => return Ok(Err(ApiError::conflict(refusal(&verdict)))),
                }
            }
        }
        s.ticket_transition(id, to, caller.user(), note.as_deref(), now)
            .map(Ok)
    })
    .await??;
    // Live streams read the move from the journal; this only wakes them.
    let _ = state.ticket_moves.send(id);
    if to.is_acknowledged() {
        tell_pipeline(state, Control::Acknowledged(id)).await?;
    }
    Ok(episode)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    worker_id: i64,
}

/// `PUT /api/v1/episodes/{id}/assignee {"worker_id"}`: the worker (of the episode's grid cell or
/// an area above it) the ticket is assigned to; audited as `ticket.assigned`.
pub(super) async fn assign(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<AssignBody>,
) -> ApiResult {
    let id = id.episode()?;
    let assigned = blocking(&state, Subject::new("episode", id), move |s| {
        let Some(episode) = s.episode(id)? else {
            return Err(crate::store::StoreError::UnknownEpisode(id));
        };
        if let Err(e) = check_area(s, &caller, &format!("episode {id}"), Some(&episode.grid)) {
            return Ok(Err(e));
        }
        Ok(
            s.assign_ticket(id, body.worker_id, caller.user(), now_ms())?
                .map_err(ApiError::unprocessable),
        )
    })
    .await??;
    Ok(Json(Assigned {
        episode: id,
        assignee: assigned,
    })
    .into_response())
}

/// `PUT /api/v1/episodes/{id}/assignee`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Assigned {
    /// The episode.
    episode: u64,
    /// The worker it is assigned to.
    assignee: crate::store::Assignee,
}

/// What the data says about verifying an episode's ticket now ([`crate::workflow`]).
pub(crate) fn verify_by_data(
    s: &crate::store::Store,
    e: &Episode,
    workflow: &WorkflowConfig,
    now: UnixMs,
) -> Result<Verification, crate::store::StoreError> {
    let measured = e
        .peak
        .filter(|_| e.key.category == Category::Alarm)
        .map(|l| (l.quantity, l.threshold));
    let readings = match (measured, e.key.channel) {
        (Some((quantity, _)), Some(channel)) => s.readings_since(
            &e.key.device,
            channel,
            quantity,
            now.saturating_sub(workflow.verify_hold_ms),
            now,
        )?,
        _ => ReadingsSince::default(),
    };
    Ok(verification(e.ended_ms, measured, readings, workflow, now))
}

/// Why `verified` is refused, and what would allow it.
fn refusal(v: &Verification) -> String {
    let how = "or an operator verifies with an override_reason";
    match v {
        Verification::Verified => String::new(),
        Verification::NotEnded => format!("not verified: the episode has not ended ({how})"),
        Verification::TooRecent { at_ms } => format!(
            "not verified: the episode ended too recently; the readings must stay below the \
             margin until {at_ms} (Unix ms) ({how})"
        ),
        Verification::NoReadings => format!(
            "not verified: no reading of the circuit since the hold began, nothing shows it is \
             safe ({how})"
        ),
        Verification::AboveMargin { max, limit } => format!(
            "not verified: a reading of {max} since the hold began is not below {limit} (the \
             set-point less the margin) ({how})"
        ),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    who: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    from: Option<UnixMs>,
    to: Option<UnixMs>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// The audit log. A scoped caller sees the entries whose subject lies in their area (an entry
/// about a person, or about something since deleted, is city-wide): the log is read page by
/// page and filtered, `offset` and `limit` counting the entries they see.
pub(super) async fn audit_log(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    time_range(q.from, q.to)?;
    let filter = AuditFilter {
        who: q.who,
        action: q.action,
        subject: q.subject,
        from_ms: q.from,
        to_ms: q.to,
        limit: limit(q.limit)?,
        offset: q.offset.unwrap_or(0),
    };
    let entries = blocking(&state, Subject::NONE, move |s| {
        let Some(scope) = caller.scope() else {
            return s.audit_log(&filter);
        };
        let want = if filter.limit == 0 { 100 } else { filter.limit } as usize;
        let mut skip = filter.offset as usize;
        let mut seen = Vec::new();
        let mut page = AuditFilter {
            limit: 1000,
            offset: 0,
            ..filter.clone()
        };
        loop {
            let got = s.audit_log(&page)?;
            let last = got.len() < page.limit as usize;
            for entry in got {
                if !s.subject_within(&entry.subject, scope)? {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                } else if seen.len() < want {
                    seen.push(entry);
                }
            }
            if last || seen.len() >= want {
                return Ok(seen);
            }
            page.offset += page.limit;
        }
    })
    .await?;
    Ok(Json(entries).into_response())
}
