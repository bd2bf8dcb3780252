//! The uplink's own journal (`data_dir/uplink.db`, SQLite, `synchronous=FULL`): frames not yet
//! confirmed by the centre, device numbers, the serial counter and the outbox mark.
//!
//! It follows the gateway's outbox ([`crate::store::Store::notifications_after`]): each alert
//! becomes at most one frame, stored with its serial number and bytes **and** the new mark in
//! one transaction. So after a crash, a frame is sent again byte for byte (the centre sees the
//! same serial number and event, never a new event), and no alert is turned into two frames.
//! Migrations follow the main store's rule: numbered, each in its own transaction with the
//! `user_version` bump.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::config::MAX_DEVICE_NUMBER;
use super::session::Journaled;
use crate::model::UnixMs;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE frames (
    id              INTEGER PRIMARY KEY,
    notification_id INTEGER UNIQUE,
    serial          INTEGER NOT NULL,
    bytes           BLOB NOT NULL,
    created_ms      INTEGER NOT NULL,
    confirmed_ms    INTEGER
) STRICT;
CREATE INDEX frames_unconfirmed ON frames(id) WHERE confirmed_ms IS NULL;
CREATE TABLE device_numbers (
    device TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE
) STRICT;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
"#];

/// Why the uplink journal failed.
#[derive(Debug, thiserror::Error)]
pub enum UplinkStoreError {
    /// SQLite.
    #[error("uplink journal: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Every device number is taken.
    #[error("no free device number (1–{MAX_DEVICE_NUMBER})")]
    NumbersExhausted,
}

/// The uplink journal. Its methods block (call them from `block_in_place`).
#[derive(Debug)]
pub struct UplinkStore {
    conn: Mutex<Connection>,
}

/// A frame to journal with the mark it moves the outbox follower to.
#[derive(Debug, Clone)]
pub struct NewFrame {
    /// The outbox notification it came from.
    pub notification_id: i64,
    /// Serial number.
    pub serial: u16,
    /// The whole frame.
    pub bytes: Vec<u8>,
}

impl UplinkStore {
    /// Opens (creating) the journal.
    ///
    /// # Errors
    /// SQLite could not open or migrate it.
    pub fn open(path: &Path) -> Result<Self, UplinkStoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn meta(conn: &Connection, key: &str) -> Result<Option<i64>, rusqlite::Error> {
        conn.query_row("SELECT value FROM meta WHERE key = ?", [key], |r| r.get(0))
            .optional()
    }

    fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), rusqlite::Error> {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The outbox mark: the last notification id handled (`None` on first use).
    ///
    /// # Errors
    /// SQLite.
    pub fn mark(&self) -> Result<Option<i64>, UplinkStoreError> {
        Ok(Self::meta(&self.conn(), "outbox_mark")?)
    }

    /// Sets the mark without a frame (alerts that are not reported, first use).
    ///
    /// # Errors
    /// SQLite.
    pub fn set_mark(&self, mark: i64) -> Result<(), UplinkStoreError> {
        Ok(Self::set_meta(&self.conn(), "outbox_mark", mark)?)
    }

    /// The next serial number to use.
    ///
    /// # Errors
    /// SQLite.
    pub fn next_serial(&self) -> Result<u16, UplinkStoreError> {
        let v = Self::meta(&self.conn(), "next_serial")?.unwrap_or(0);
        Ok(u16::try_from(v.rem_euclid(65_536)).unwrap_or(0))
    }

    /// Keeps the next serial number.
    ///
    /// # Errors
    /// SQLite.
    pub fn set_next_serial(&self, serial: u16) -> Result<(), UplinkStoreError> {
        Ok(Self::set_meta(
            &self.conn(),
            "next_serial",
            i64::from(serial),
        )?)
    }

    /// Journals frames and moves the mark to `mark`, in one durable transaction. A notification
    /// already journaled is skipped. Returns the new rows.
    ///
    /// # Errors
    /// SQLite (nothing was written).
    pub fn append(
        &self,
        frames: &[NewFrame],
        mark: i64,
        next_serial: u16,
        now: UnixMs,
    ) -> Result<Vec<Journaled>, UplinkStoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows = Vec::new();
        for f in frames {
            let n = tx.execute(
                "INSERT OR IGNORE INTO frames (notification_id, serial, bytes, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    f.notification_id,
                    f.serial,
                    f.bytes,
                    i64::try_from(now).unwrap_or(i64::MAX)
                ],
            )?;
            if n == 1 {
                rows.push(Journaled {
                    id: tx.last_insert_rowid(),
                    serial: f.serial,
                    bytes: f.bytes.clone(),
                });
            }
        }
        Self::set_meta(&tx, "outbox_mark", mark)?;
        Self::set_meta(&tx, "next_serial", i64::from(next_serial))?;
        tx.commit()?;
        Ok(rows)
    }

    /// Frames not yet confirmed, in journal order.
    ///
    /// # Errors
    /// SQLite.
    pub fn unconfirmed(&self) -> Result<Vec<Journaled>, UplinkStoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, serial, bytes FROM frames WHERE confirmed_ms IS NULL ORDER BY id",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(Journaled {
                    id: r.get(0)?,
                    serial: u16::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    bytes: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks a frame confirmed.
    ///
    /// # Errors
    /// SQLite.
    pub fn confirm(&self, id: i64, now: UnixMs) -> Result<(), UplinkStoreError> {
        self.conn().execute(
            "UPDATE frames SET confirmed_ms = ?2 WHERE id = ?1 AND confirmed_ms IS NULL",
            params![id, i64::try_from(now).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// The device's number: given by hand in `fixed`, else kept from before, else the next free
    /// one (kept from now on).
    ///
    /// # Errors
    /// SQLite; [`UplinkStoreError::NumbersExhausted`].
    pub fn number_of(
        &self,
        device: &str,
        fixed: &std::collections::BTreeMap<String, u32>,
    ) -> Result<u32, UplinkStoreError> {
        if let Some(n) = fixed.get(device) {
            return Ok(*n);
        }
        let conn = self.conn();
        let known: Option<i64> = conn
            .query_row(
                "SELECT number FROM device_numbers WHERE device = ?",
                [device],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(n) = known {
            return Ok(u32::try_from(n).unwrap_or(0));
        }
        let taken: std::collections::BTreeSet<u32> = fixed.values().copied().collect();
        let mut n: i64 = conn.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM device_numbers",
            [],
            |r| r.get(0),
        )?;
        while u32::try_from(n).is_ok_and(|v| taken.contains(&v)) {
            n += 1;
        }
        let number = u32::try_from(n)
            .ok()
            .filter(|v| *v <= MAX_DEVICE_NUMBER)
            .ok_or(UplinkStoreError::NumbersExhausted)?;
        conn.execute(
            "INSERT INTO device_numbers (device, number) VALUES (?1, ?2)",
            params![device, number],
        )?;
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_reopening_and_are_journaled_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uplink.db");
        let s = UplinkStore::open(&path).unwrap();
        assert_eq!(s.mark().unwrap(), None);
        let f = |n: i64| NewFrame {
            notification_id: n,
            serial: u16::try_from(n).unwrap(),
            bytes: vec![u8::try_from(n).unwrap(); 3],
        };
        let rows = s.append(&[f(5), f(6)], 6, 7, 1000).unwrap();
        assert_eq!(rows.len(), 2);
        // The same notification again (a sweep after a crash): not a second frame.
        assert!(s.append(&[f(6)], 6, 7, 1001).unwrap().is_empty());
        s.confirm(rows[0].id, 1002).unwrap();
        drop(s);
        let s = UplinkStore::open(&path).unwrap();
        assert_eq!(s.mark().unwrap(), Some(6));
        assert_eq!(s.next_serial().unwrap(), 7);
        let left = s.unconfirmed().unwrap();
        assert_eq!(
            left,
            vec![Journaled {
                id: rows[1].id,
                serial: 6,
                bytes: vec![6; 3]
            }]
        );
    }

    #[test]
    fn device_numbers_are_stable_and_skip_fixed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = UplinkStore::open(&dir.path().join("uplink.db")).unwrap();
        let fixed = [("hz-fixed".to_owned(), 2)].into_iter().collect();
        assert_eq!(s.number_of("a", &fixed).unwrap(), 1);
        assert_eq!(s.number_of("b", &fixed).unwrap(), 3);
        assert_eq!(s.number_of("hz-fixed", &fixed).unwrap(), 2);
        assert_eq!(s.number_of("a", &fixed).unwrap(), 1);
    }
}
