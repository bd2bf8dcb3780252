//! People and their tokens: who am I, users (list, add), tokens (make, list, revoke).
//!
//! Managing people needs a city-wide admin (a scoped admin could otherwise make a user wider
//! than themselves). A token is shown once, in the answer that makes it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::GridId;

use super::access::Caller;
use super::error::{ApiError, Json, PathId, Query, Subject, area_id};
use super::resource::created;
use super::{ApiState, blocking, now_ms};
use crate::access::Role;
use crate::store::{NewToken, User, check_user_name};

type ApiResult<T = Response> = Result<T, ApiError>;

/// Refuses a scoped admin.
fn city_wide(caller: &Caller) -> ApiResult<()> {
    match caller.scope() {
        None => Ok(()),
        Some(a) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "managing people needs a city-wide admin; {} is scoped to area {a}",
                caller.user()
            ),
        )),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Me<'a> {
    user: &'a str,
    role: Role,
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    area_id: Option<&'a GridId>,
    token_id: &'a str,
}

/// `GET /api/v1/me`: who the token belongs to.
pub(super) async fn me(caller: Caller) -> ApiResult {
    Ok(Json(Me {
        user: caller.user(),
        role: caller.role(),
        area_id: caller.scope(),
        token_id: &caller.0.token_id,
    })
    .into_response())
}

pub(super) async fn list_users(State(state): State<ApiState>, caller: Caller) -> ApiResult {
    city_wide(&caller)?;
    let users = blocking(&state, Subject::NONE, |s| s.users()).await?;
    Ok(Json(users).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserBody {
    name: String,
    role: Role,
    #[serde(default)]
    area_id: Option<String>,
}

/// A new token as answered, once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct TokenShown {
    token_id: String,
    /// `Authorization: Bearer <token>`; shown only now.
    token: String,
}

impl From<NewToken> for TokenShown {
    fn from(t: NewToken) -> Self {
        Self {
            token_id: t.id,
            token: t.token.expose().to_string(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct UserAdded {
    #[serde(flatten)]
    user: User,
    #[serde(flatten)]
    token: TokenShown,
}

/// `POST /api/v1/users` `{"name","role","area_id"}` → `201` with the user and their first
/// token.
pub(super) async fn add_user(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<UserBody>,
) -> ApiResult {
    city_wide(&caller)?;
    check_user_name(&body.name).map_err(ApiError::unprocessable)?;
    let area = body
        .area_id
        .as_deref()
        .map(|a| area_id("area_id", a))
        .transpose()?;
    if area.is_none() && !body.role.may_be_city_wide() {
        return Err(ApiError::unprocessable(format!(
            "a {} needs an area_id: only admin and operator may be city-wide",
            body.role
        )));
    }
    let (user, token) = blocking(&state, Subject::NONE, move |s| {
        s.add_user(&body.name, body.role, area.as_ref(), caller.actor(now_ms()))
    })
    .await?;
    state.accounts.notify();
    Ok(created(
        format!("/api/v1/tokens?user={}", user.name),
        UserAdded {
            user,
            token: token.into(),
        },
    ))
}

/// `POST /api/v1/users/{name}/tokens` → `201` `{"token_id","token"}`: another token (rotate:
/// make one, hand it over, revoke the old one).
pub(super) async fn issue_token(
    State(state): State<ApiState>,
    caller: Caller,
    name: PathId,
) -> ApiResult {
    city_wide(&caller)?;
    let name = name.0;
    check_user_name(&name).map_err(ApiError::bad_request)?;
    let token = blocking(&state, Subject::new("user", &name), move |s| {
        s.issue_token(&name, caller.actor(now_ms()))
    })
    .await?;
    state.accounts.notify();
    Ok((StatusCode::CREATED, Json(TokenShown::from(token))).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenQuery {
    user: Option<String>,
}

/// `GET /api/v1/tokens?user=`: tokens, newest first, revoked ones too; never a secret.
pub(super) async fn list_tokens(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<TokenQuery>,
) -> ApiResult {
    city_wide(&caller)?;
    let tokens = blocking(&state, Subject::NONE, move |s| s.tokens(q.user.as_deref())).await?;
    Ok(Json(tokens).into_response())
}

/// `DELETE /api/v1/tokens/{id}` → `200` with the revoked token.
pub(super) async fn revoke_token(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> ApiResult {
    city_wide(&caller)?;
    let id = id.0;
    let token = blocking(&state, Subject::new("token", &id), move |s| {
        s.revoke_token(&id, caller.actor(now_ms()))
    })
    .await?;
    // Its MQTT account goes too: a connected client using it is disconnected.
    state.accounts.notify();
    Ok(Json(token).into_response())
}
