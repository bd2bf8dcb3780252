//! People: users with a [`Role`] and an area scope, and their API tokens.
//!
//! A token is `<token_id>.<secret>`: a short random public id (the lookup key, and the MQTT
//! user name `token.<token_id>` of the managed broker) and a 256-bit [`Secret`] of which only the
//! [`SecretHash`] is stored. It is shown once, when it is made. Authenticating is one lookup by
//! id and one constant-time hash comparison, never a scan. A revoked token stays in the table
//! (who made it, when it was revoked) and never authenticates again.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use firegrid_protocols::GridId;

use super::names;
use super::resource::{Actor, audit, immediate, rows};
use super::{Store, StoreError};
use crate::access::Role;
use crate::model::UnixMs;
use crate::secret::{Secret, SecretError, SecretHash};

/// Random bytes in a token's public id (11 characters of URL-safe base64).
const TOKEN_ID_BYTES: usize = 8;

/// A person who uses the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Their user name (what the audit log says).
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The area whose subtree they see and act in; `None`: the whole city (admin and operator
    /// only).
    #[schema(value_type = Option<crate::api::ProtocolId>)]
    pub area_id: Option<GridId>,
    /// When they were added, ms since the Unix epoch.
    pub created_ms: UnixMs,
}

/// A token as listed (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The public id (the part before the dot).
    pub id: String,
    /// Whose token it is.
    pub user: String,
    /// When it was made.
    pub created_ms: UnixMs,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<UnixMs>,
}

/// An active (not revoked) token with what the managed broker needs to admit its holder:
/// [`Store::active_tokens`]. The MQTT account is `token.<token_id>`, its password the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// The public id.
    pub token_id: String,
    /// The hash of the secret part, in Mosquitto's `$6$` format.
    pub hash: SecretHash,
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The user's area scope; `None`: the whole city.
    pub area_id: Option<GridId>,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's name.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// Their area scope; `None`: the whole city.
    pub area_id: Option<GridId>,
    /// The token used.
    pub token_id: String,
}

/// A token just made: shown once.
#[derive(Debug)]
pub struct NewToken {
    /// The public id.
    pub id: String,
    /// The whole token, `<id>.<secret>`, to give to the person; never stored.
    pub token: Secret,
}

/// The longest user name, characters.
pub const MAX_USER_NAME: usize = 64;

/// Checks a user name: 1–64 of `[A-Za-z0-9._@-]` (it appears in the audit log, MQTT ACLs and
/// URLs).
///
/// # Errors
/// A message saying what is allowed.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user name {:?} is not valid: names are 1-{MAX_USER_NAME} of A-Z a-z 0-9 . _ @ -",
            name.chars().take(64).collect::<String>()
        ))
    }
}

fn secret_error(e: SecretError) -> StoreError {
    StoreError::Invalid(format!("cannot make a token: {e}"))
}

fn user_row(r: &Row<'_>) -> Result<User, StoreError> {
    let role: String = r.get("role")?;
    let area: Option<String> = r.get("area_id")?;
    Ok(User {
        name: r.get("name")?,
        role: role.parse().map_err(|_| names::invalid("role", &role))?,
        area_id: area.as_deref().map(names::grid_id).transpose()?,
        created_ms: r.get("created_ms")?,
    })
}

fn token_row(r: &Row<'_>) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: r.get("id")?,
        user: r.get("user_name")?,
        created_ms: r.get("created_ms")?,
        created_by: r.get("created_by")?,
        revoked_ms: r.get("revoked_ms")?,
    })
}

fn insert_token(conn: &Connection, user: &str, actor: Actor<'_>) -> Result<NewToken, StoreError> {
    let mut id_bytes = [0u8; TOKEN_ID_BYTES];
    getrandom::getrandom(&mut id_bytes).map_err(|e| secret_error(SecretError::Random(e)))?;
    let id = URL_SAFE_NO_PAD.encode(id_bytes);
    let secret = Secret::generate().map_err(secret_error)?;
    let hash = secret.hash().map_err(secret_error)?;
    conn.execute(
        "INSERT INTO api_tokens (id, user_name, hash, created_ms, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, user, hash.as_str(), actor.now, actor.who],
    )?;
    audit(
        conn,
        actor,
        "token.create",
        format!("user/{user}"),
        &serde_json::json!({ "token_id": id }),
    )?;
    Ok(NewToken {
        token: Secret::from_plaintext(format!("{id}.{}", secret.expose())),
        id,
    })
}

impl Store {
    /// Adds a user and makes their first token.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] (a user of that name); [`StoreError::Invalid`] for a name
    /// that breaks [`check_user_name`] or a role that needs an area without one.
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        area_id: Option<&GridId>,
        actor: Actor<'_>,
    ) -> Result<(User, NewToken), StoreError> {
        check_user_name(name).map_err(StoreError::Invalid)?;
        if area_id.is_none() && !role.may_be_city_wide() {
            return Err(StoreError::Invalid(format!(
                "a {role} needs an area: only admin and operator may be city-wide"
            )));
        }
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let taken = tx
                .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            if taken {
                return Err(StoreError::AlreadyExists {
                    what: "user",
                    id: name.to_string(),
                });
            }
            tx.execute(
                "INSERT INTO users (name, role, area_id, created_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![name, role.as_str(), area_id.map(GridId::as_str), actor.now],
            )?;
            let user = User {
                name: name.to_string(),
                role,
                area_id: area_id.cloned(),
                created_ms: actor.now,
            };
            audit(&tx, actor, "user.create", format!("user/{name}"), &user)?;
            let token = insert_token(&tx, name, actor)?;
            tx.commit()?;
            Ok((user, token))
        })
    }

    /// Makes another token for a user (to rotate: make one, hand it over, revoke the old).
    ///
    /// # Errors
    /// [`StoreError::UnknownUser`].
    pub fn issue_token(&self, user: &str, actor: Actor<'_>) -> Result<NewToken, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let exists = tx
                .query_row("SELECT 1 FROM users WHERE name = ?1", [user], |_| Ok(()))
                .optional()?
                .is_some();
            if !exists {
                return Err(StoreError::UnknownUser(user.to_string()));
            }
            let token = insert_token(&tx, user, actor)?;
            tx.commit()?;
            Ok(token)
        })
    }

    /// Revokes a token: it never authenticates again. Revoking a revoked token changes nothing.
    ///
    /// # Errors
    /// [`StoreError::UnknownToken`].
    pub fn revoke_token(&self, id: &str, actor: Actor<'_>) -> Result<TokenInfo, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            tx.execute(
                "UPDATE api_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                params![id, actor.now],
            )?;
            let token = rows(
                &tx,
                "SELECT * FROM api_tokens WHERE id = ?1",
                &[id.to_string().into()],
                token_row,
            )?
            .pop()
            .ok_or_else(|| StoreError::UnknownToken(id.to_string()))?;
            audit(
                &tx,
                actor,
                "token.revoke",
                format!("user/{}", token.user),
                &serde_json::json!({ "token_id": id }),
            )?;
            tx.commit()?;
            Ok(token)
        })
    }

    /// Who a token (`<id>.<secret>`) belongs to, if it is valid and not revoked.
    ///
    /// # Errors
    /// A database error (an unknown, malformed or revoked token is `Ok(None)`).
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let Some((id, secret)) = token.split_once('.') else {
            return Ok(None);
        };
        if id.is_empty() || id.len() > 32 {
            return Ok(None);
        }
        let found = self.read(|c| {
            Ok(c.query_row(
                "SELECT t.hash, u.name, u.role, u.area_id FROM api_tokens t \
                 JOIN users u ON u.name = t.user_name WHERE t.id = ?1 AND t.revoked_ms IS NULL",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()?)
        })?;
        let Some((hash, user, role, area)) = found else {
            return Ok(None);
        };
        let Ok(hash) = SecretHash::parse(&hash) else {
            return Err(names::invalid("token hash of", id));
        };
        if !hash.verify(secret) {
            return Ok(None);
        }
        Ok(Some(Principal {
            user,
            role: role.parse().map_err(|_| names::invalid("role", &role))?,
            area_id: area.as_deref().map(names::grid_id).transpose()?,
            token_id: id.to_string(),
        }))
    }

    /// Every user, by name.
    ///
    /// # Errors
    /// A database error.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|c| rows(c, "SELECT * FROM users ORDER BY name", &[], user_row))
    }

    /// One user.
    ///
    /// # Errors
    /// A database error.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.read(|c| {
            Ok(rows(
                c,
                "SELECT * FROM users WHERE name = ?1",
                &[name.to_string().into()],
                user_row,
            )?
            .pop())
        })
    }

    /// Tokens (of one user, or everyone's), newest first; revoked ones too.
    ///
    /// # Errors
    /// A database error.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(|c| match user {
            Some(u) => rows(
                c,
                "SELECT * FROM api_tokens WHERE user_name = ?1 ORDER BY created_ms DESC, id",
                &[u.to_string().into()],
                token_row,
            ),
            None => rows(
                c,
                "SELECT * FROM api_tokens ORDER BY created_ms DESC, id",
                &[],
                token_row,
            ),
        })
    }

    /// Every active (not revoked) token with its hash and its user's role and scope, by token
    /// id: what the managed broker's password and ACL files are made from (account
    /// `token.<token_id>`, password the token's secret part). Stable interface.
    ///
    /// # Errors
    /// A database error; [`StoreError::Invalid`] for a stored hash not in the `$6$` format.
    pub fn active_tokens(&self) -> Result<Vec<ActiveToken>, StoreError> {
        self.read(|c| {
            rows(
                c,
                "SELECT t.id, t.hash, u.name, u.role, u.area_id FROM api_tokens t \
                 JOIN users u ON u.name = t.user_name WHERE t.revoked_ms IS NULL ORDER BY t.id",
                &[],
                |r| {
                    let id: String = r.get(0)?;
                    let hash: String = r.get(1)?;
                    let role: String = r.get(3)?;
                    let area: Option<String> = r.get(4)?;
                    Ok(ActiveToken {
                        hash: SecretHash::parse(&hash)
                            .map_err(|_| names::invalid("token hash of", &id))?,
                        token_id: id,
                        user: r.get(2)?,
                        role: role.parse().map_err(|_| names::invalid("role", &role))?,
                        area_id: area.as_deref().map(names::grid_id).transpose()?,
                    })
                },
            )
        })
    }
}
