//! Web sessions: a browser that logged in with an API token (decision 12).
//!
//! The browser holds a random 256-bit session secret in a cookie; the store keeps only its
//! SHA-256 (the lookup key: a secret of 256 random bits needs no salt or slow hash), the
//! token it was opened with and when it expires. A session is worth what its token is: it
//! authenticates only while the token is not revoked and the user exists, with the user's
//! role and area as they are now.

use rusqlite::{OptionalExtension, params};

use super::names;
use super::{Principal, Store, StoreError};
use crate::model::UnixMs;

impl Store {
    /// Opens a session whose secret hashes to `id_hash`, for the token `token_id`, until
    /// `expires_ms`; sessions expired before `now` are dropped on the way.
    ///
    /// # Errors
    /// A database error (an unknown token is a foreign-key error).
    pub fn open_session(
        &self,
        id_hash: &str,
        token_id: &str,
        now: UnixMs,
        expires_ms: UnixMs,
    ) -> Result<(), StoreError> {
        self.write_journal(|c| {
            c.execute("DELETE FROM web_sessions WHERE expires_ms < ?1", [now])?;
            c.execute(
                "INSERT INTO web_sessions (id_hash, token_id, created_ms, expires_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![id_hash, token_id, now, expires_ms],
            )?;
            Ok(())
        })
    }

    /// Who a session is, if it exists, has not expired at `now` and its token is not revoked.
    ///
    /// # Errors
    /// A database error.
    pub fn session(&self, id_hash: &str, now: UnixMs) -> Result<Option<Principal>, StoreError> {
        let found = self.read(|c| {
            Ok(c.query_row(
                "SELECT t.id, u.name, u.role, u.area_id FROM web_sessions s \
                 JOIN api_tokens t ON t.id = s.token_id AND t.revoked_ms IS NULL \
                 JOIN users u ON u.name = t.user_name \
                 WHERE s.id_hash = ?1 AND s.expires_ms >= ?2",
                params![id_hash, now],
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
        let Some((token_id, user, role, area)) = found else {
            return Ok(None);
        };
        Ok(Some(Principal {
            user,
            role: role.parse().map_err(|_| names::invalid("role", &role))?,
            area_id: area.as_deref().map(names::grid_id).transpose()?,
            token_id,
        }))
    }

    /// Ends a session (logout); `false` when there was none.
    ///
    /// # Errors
    /// A database error.
    pub fn close_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.write_journal(|c| {
            Ok(c.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])? > 0)
        })
    }
}
