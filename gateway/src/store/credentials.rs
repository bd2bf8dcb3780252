//! Devices' MQTT credentials: only the hash of each device's password is stored
//! ([`crate::secret`]); the password itself is returned once, when it is issued.
//!
//! A device has a credential from its registration until it is decommissioned or its
//! credential is revoked; issuing again (rotation) replaces the old one at once. The broker's
//! accounts are read from here ([`Store::device_credentials`]).

use rusqlite::{OptionalExtension, TransactionBehavior};

use firegrid_protocols::DeviceId;

use super::journal::insert_audit;
use super::{Store, StoreError};
use crate::secret::{Secret, SecretHash};

impl Store {
    /// Issues a new MQTT password for a device that is not decommissioned, replacing any
    /// earlier one, and audits it (never the password). Returns the password: it is shown
    /// once and cannot be read back.
    ///
    /// # Errors
    /// [`StoreError::Unknown`]; [`StoreError::Mismatch`] if the device is decommissioned;
    /// [`StoreError::Secret`] if no randomness is available; a database error.
    pub fn issue_device_credential(
        &self,
        id: &DeviceId,
        who: &str,
        now_ms: u64,
    ) -> Result<Secret, StoreError> {
        let secret = Secret::generate()?;
        let hash = secret.hash()?;
        self.write_journal(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM devices WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            match state.as_deref() {
                None => return Err(StoreError::Unknown {
                    what: super::Noun::Device,
                    id: id.to_string(),
                }),
                Some("decommissioned") => {
                    return Err(StoreError::Mismatch(format!(
                        "device {id} is decommissioned: register it again before it gets a credential"
                    )));
                }
                Some(_) => {}
            }
            tx.execute(
                "UPDATE devices SET credential_hash = ?2, updated_ms = ?3 WHERE id = ?1",
                rusqlite::params![id.as_str(), hash.as_str(), now_ms as i64],
            )?;
            insert_audit(
                &tx,
                now_ms,
                who,
                "device.credential.issue",
                &format!("device/{id}"),
                "{}",
            )?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(secret)
    }

    /// Removes a device's credential: it can no longer log in. Says whether it had one.
    ///
    /// # Errors
    /// [`StoreError::Unknown`]; a database error.
    pub fn revoke_device_credential(
        &self,
        id: &DeviceId,
        who: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write_journal(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let had: Option<Option<String>> = tx
                .query_row(
                    "SELECT credential_hash FROM devices WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(had) = had else {
                return Err(StoreError::Unknown {
                    what: super::Noun::Device,
                    id: id.to_string(),
                });
            };
            tx.execute(
                "UPDATE devices SET credential_hash = NULL, updated_ms = ?2 WHERE id = ?1",
                rusqlite::params![id.as_str(), now_ms as i64],
            )?;
            insert_audit(
                &tx,
                now_ms,
                who,
                "device.credential.revoke",
                &format!("device/{id}"),
                "{}",
            )?;
            tx.commit()?;
            Ok(had.is_some())
        })
    }

    /// The credentials that may log in: those of devices that are not decommissioned.
    /// A stored hash that cannot be read is skipped (that device cannot log in) and logged.
    ///
    /// # Errors
    /// A database error.
    pub fn device_credentials(&self) -> Result<Vec<(DeviceId, SecretHash)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, credential_hash FROM devices \
                 WHERE credential_hash IS NOT NULL AND state != 'decommissioned'",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, hash) = row?;
                match (id.parse::<DeviceId>(), SecretHash::parse(&hash)) {
                    (Ok(id), Ok(hash)) => out.push((id, hash)),
                    _ => tracing::error!(device = %id, "stored credential unreadable: this device cannot log in until its credential is issued again"),
                }
            }
            Ok(out)
        })
    }
}
