//! Access to the API, decided in one place: every `/api/v1` route is a line of the route table
//! ([`super::routes`]) naming the roles that may call it, and [`authorize`] — the one layer on
//! every such route — checks the bearer token (`401` before anything else of the request is
//! read) and the role (`403` naming the roles needed). Area scope is checked where the area of
//! the thing acted on is known: in the generic registry resource (store), and for episodes,
//! tickets, history, the live stream and the audit log in their handlers, through
//! [`Caller::scope`].

use std::fmt;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use firegrid_protocols::GridId;

use super::ApiState;
use super::error::ApiError;
use crate::access::Role;
use crate::model::UnixMs;
use crate::store::{Actor, Principal, StoreError};

/// A set of roles: who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roles(u8);

impl Roles {
    /// Every role.
    pub(crate) const ANY: Self = Self::of(&Role::ALL);
    /// Admin only.
    pub(crate) const ADMIN: Self = Self::of(&[Role::Admin]);

    /// Exactly these roles.
    pub(crate) const fn of(roles: &[Role]) -> Self {
        let mut bits = 0u8;
        let mut i = 0;
        while i < roles.len() {
            bits |= Self::bit(roles[i]);
            i += 1;
        }
        Self(bits)
    }

    const fn bit(role: Role) -> u8 {
        1 << role as u8
    }

    /// Whether `role` is one of them.
    pub(crate) const fn allows(self, role: Role) -> bool {
        self.0 & Self::bit(role) != 0
    }

    /// The roles, in the docs' order.
    pub(crate) fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.allows(*r))
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        match names.as_slice() {
            [] => f.write_str("no role"),
            [one] => f.write_str(one),
            [init @ .., last] => write!(f, "{} or {last}", init.join(", ")),
        }
    }
}

/// Who calls: the user of a valid token. Every `/api/v1` handler may take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller(pub(crate) Principal);

impl Caller {
    /// Their user name: the audit log's "who".
    pub(crate) fn user(&self) -> &str {
        &self.0.user
    }

    /// Their role.
    pub(crate) fn role(&self) -> Role {
        self.0.role
    }

    /// The area whose subtree they are limited to; `None`: the whole city.
    pub(crate) fn scope(&self) -> Option<&GridId> {
        self.0.area_id.as_ref()
    }

    /// Them as the actor of a change at `now`, limited to their scope.
    pub(crate) fn actor(&self, now: UnixMs) -> Actor<'_> {
        Actor::scoped(&self.0.user, now, self.scope())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // `authorize` puts it there on every /api/v1 route; a route without it is a bug.
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::internal("a route without authorization", &"no caller in the request")
        })
    }
}

/// The rule of one route, given to [`authorize`].
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) roles: Roles,
}

/// A 401: says what was wrong and what to do, with `WWW-Authenticate: Bearer`.
fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"firegrid\""),
    );
    response
}

/// The bearer token of a request, or why there is none.
fn bearer(parts: &Parts) -> Result<&str, &'static str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or("no API token: send the header `Authorization: Bearer TOKEN` (an admin makes tokens with `firegrid user add NAME --role ROLE` or POST /api/v1/users)")?;
    let value = value.to_str().map_err(
        |_| "the Authorization header is not visible ASCII: send `Authorization: Bearer TOKEN`",
    )?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(
            "the Authorization header is not `Bearer TOKEN`: send `Authorization: Bearer TOKEN`",
        )?
        .trim();
    if token.is_empty() || token.len() > 256 {
        return Err("the bearer token is empty or too long: send the token as it was printed");
    }
    Ok(token)
}

/// The one access check of every `/api/v1` route: the token (401), then the role (403). The
/// request's body is not read before both passed.
pub(crate) async fn authorize(
    State((state, rule)): State<(ApiState, Rule)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let token = match bearer(&parts) {
        Ok(t) => t.to_string(),
        Err(why) => {
            state.metrics.api_refused("no_token");
            return unauthorized(why);
        }
    };
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || store.authenticate(&token)).await;
    let principal = match found {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => {
            state.metrics.api_refused("bad_token");
            return unauthorized(
                "the API token is not valid (unknown, revoked or mistyped): use the token as it \
                 was printed, or ask an admin for a new one",
            );
        }
        Ok(Err(e)) => return ApiError::from_store(e, &super::error::Subject::NONE).into_response(),
        Err(join) => return ApiError::internal("a token check failed", &join).into_response(),
    };
    if !rule.roles.allows(principal.role) {
        state.metrics.api_refused("role");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} {} needs the role {}; {} is {}: ask an admin",
                rule.method,
                rule.path,
                rule.roles,
                principal.user,
                article(principal.role)
            ),
        )
        .into_response();
    }
    parts.extensions.insert(Caller(principal));
    next.run(Request::from_parts(parts, body)).await
}

/// "an admin", "a viewer".
fn article(role: Role) -> String {
    match role {
        Role::Admin | Role::Operator | Role::Installer => format!("an {role}"),
        _ => format!("a {role}"),
    }
}

/// The 403 of a thing outside the caller's area (the store's message).
pub(crate) fn out_of_scope(what: &str, area: Option<&GridId>, scope: &GridId) -> ApiError {
    ApiError::from_store(
        StoreError::OutOfScope {
            what: what.to_string(),
            area: area.cloned(),
            scope: scope.clone(),
        },
        &super::error::Subject::NONE,
    )
}

/// Checks that `area` lies within the caller's scope (blocking: call from a store task).
///
/// # Errors
/// 403 ([`out_of_scope`]); a store error.
pub(crate) fn check_area(
    store: &crate::store::Store,
    caller: &Caller,
    what: &str,
    area: Option<&GridId>,
) -> Result<(), ApiError> {
    let Some(scope) = caller.scope() else {
        return Ok(());
    };
    let within = match area {
        Some(a) => store
            .area_within(a, scope)
            .map_err(|e: StoreError| ApiError::internal("scope check", &e))?,
        None => false,
    };
    if within {
        Ok(())
    } else {
        Err(out_of_scope(what, area, scope))
    }
}
