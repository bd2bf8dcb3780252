//! Commissioning's tables ([`crate::commissioning`]): devices' latest status (written by the
//! readings writer, coalesced per batch, never in the journal's commits), who commissions
//! each device, the tests asked of devices, the signed records; and the journaled events a
//! device's page and the tests read.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use firegrid_protocols::DeviceId;

use super::names;
use super::{Store, StoreError};
use crate::commissioning::{OpenTest, Outcome, SeenEvent, TestKind};
use crate::model::{DeviceKind, UnixMs};

/// What one batch says of a device's status (the latest message of the device in the batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The device.
    pub device: DeviceId,
    /// When the gateway last had a message of it.
    pub seen_ms: UnixMs,
    /// Online (heartbeat) or offline (its will), when the batch had a status.
    pub online: Option<bool>,
    /// Its heartbeat's contents, when the batch had one.
    pub heartbeat: Option<HeartbeatFields>,
}

impl StatusUpdate {
    /// Takes in a later update of the same device: the latest time, and the latest status and
    /// heartbeat where it has one.
    pub fn merge(&mut self, later: Self) {
        self.seen_ms = self.seen_ms.max(later.seen_ms);
        if later.online.is_some() {
            self.online = later.online;
        }
        if later.heartbeat.is_some() {
            self.heartbeat = later.heartbeat;
        }
    }
}

/// What a heartbeat says that the roster shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatFields {
    /// Firmware version.
    pub firmware: String,
    /// Radio signal, dBm.
    pub signal_dbm: Option<i16>,
    /// Battery, mV.
    pub battery_mv: Option<u16>,
    /// Configuration version in force.
    pub config_version: u32,
}

/// A device's latest status as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// When the gateway last had a message of it.
    pub seen_ms: UnixMs,
    /// Its last status: online (`true`) or offline (`false`).
    pub online: Option<bool>,
    /// When its last status came.
    pub status_ms: Option<UnixMs>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Radio signal, dBm.
    pub signal_dbm: Option<i64>,
    /// Battery, mV.
    pub battery_mv: Option<i64>,
    /// Configuration version in force.
    pub config_version: Option<i64>,
}

/// A device's status and last self-test, for the roster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RosterStatus {
    /// Its latest status (none: never heard of).
    pub status: Option<DeviceStatus>,
    /// When its last self-test result came, and the result.
    pub last_self_test: Option<(UnixMs, String)>,
}

/// A test as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceTest {
    /// Its id.
    pub id: i64,
    /// The device.
    pub device: String,
    /// `self_test`, `button`, `scheduled`.
    pub kind: String,
    /// Who asked (none: scheduled).
    pub installer: Option<String>,
    /// When.
    pub requested_ms: UnixMs,
    /// When it times out.
    pub deadline_ms: UnixMs,
    /// `passed`, `failed`, `alarm`, `timed_out`; none: waiting.
    pub result: Option<String>,
    /// When the device made its answer (its clock).
    pub device_ms: Option<UnixMs>,
    /// When the gateway received it.
    pub received_ms: Option<UnixMs>,
    /// When the installer's topic had it.
    pub delivered_ms: Option<UnixMs>,
    /// When the test was finished.
    pub finished_ms: Option<UnixMs>,
}

/// A journaled event as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceEvent {
    /// Its sequence number.
    pub seq: i64,
    /// When the gateway received it.
    pub received_ms: UnixMs,
    /// When the device made it (its clock).
    pub device_time_ms: Option<UnixMs>,
    /// Its kind's name.
    pub kind: String,
    /// Its channel.
    pub channel: Option<i64>,
    /// The event as the protocol's JSON.
    pub body: serde_json::Value,
}

const TEST_COLUMNS: &str = "id, device_id, kind, installer, requested_ms, deadline_ms, result, \
                            device_ms, received_ms, delivered_ms, finished_ms";

fn test_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceTest> {
    Ok(DeviceTest {
        id: r.get(0)?,
        device: r.get(1)?,
        kind: r.get(2)?,
        installer: r.get(3)?,
        requested_ms: r.get(4)?,
        deadline_ms: r.get(5)?,
        result: r.get(6)?,
        device_ms: r.get(7)?,
        received_ms: r.get(8)?,
        delivered_ms: r.get(9)?,
        finished_ms: r.get(10)?,
    })
}

/// Status updates per transaction in [`Store::record_statuses`]: ~5 ms of upserts.
pub(super) const STATUS_CHUNK: usize = 1000;

impl Store {
    /// Stores status updates, in device order, 1000 per transaction (the readings
    /// writer's thread): the main file has one write lock, and a journal write waiting for it
    /// goes between two chunks — never behind a whole fleet's upserts (100 000 in one
    /// transaction held it for 0.2–0.8 s).
    ///
    /// # Errors
    /// A database error (the chunks before it are stored).
    pub fn record_statuses(&self, updates: &[StatusUpdate]) -> Result<(), StoreError> {
        let mut sorted: Vec<&StatusUpdate> = updates.iter().collect();
        sorted.sort_unstable_by(|a, b| a.device.cmp(&b.device));
        for chunk in sorted.chunks(STATUS_CHUNK) {
            self.write_bulk(|conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                {
                    let mut up = tx.prepare_cached(
                        "INSERT INTO device_status (device_id, seen_ms, online, status_ms, firmware, \
                         signal_dbm, battery_mv, config_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         ON CONFLICT(device_id) DO UPDATE SET seen_ms = max(seen_ms, excluded.seen_ms), \
                         online = coalesce(excluded.online, online), \
                         status_ms = coalesce(excluded.status_ms, status_ms), \
                         firmware = coalesce(excluded.firmware, firmware), \
                         signal_dbm = CASE WHEN excluded.config_version IS NULL THEN signal_dbm ELSE excluded.signal_dbm END, \
                         battery_mv = CASE WHEN excluded.config_version IS NULL THEN battery_mv ELSE excluded.battery_mv END, \
                         config_version = coalesce(excluded.config_version, config_version)",
                    )?;
                    for u in chunk {
                        let h = u.heartbeat.as_ref();
                        up.execute(params![
                            u.device.as_str(),
                            u.seen_ms,
                            u.online,
                            u.online.map(|_| u.seen_ms),
                            h.map(|h| h.firmware.as_str()),
                            h.and_then(|h| h.signal_dbm),
                            h.and_then(|h| h.battery_mv),
                            h.map(|h| h.config_version),
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The stored status and last self-test of each of `devices`.
    ///
    /// # Errors
    /// A database error.
    pub fn roster_statuses(
        &self,
        devices: &[DeviceId],
    ) -> Result<HashMap<String, RosterStatus>, StoreError> {
        self.read(|c| {
            let mut out = HashMap::new();
            let mut status = c.prepare_cached(
                "SELECT seen_ms, online, status_ms, firmware, signal_dbm, battery_mv, \
                 config_version FROM device_status WHERE device_id = ?1",
            )?;
            let mut test = c.prepare_cached(
                "SELECT received_ms, body FROM events WHERE device = ?1 AND kind = 'self_test' \
                 ORDER BY received_ms DESC LIMIT 1",
            )?;
            for d in devices {
                let s = status
                    .query_row([d.as_str()], |r| {
                        Ok(DeviceStatus {
                            seen_ms: r.get(0)?,
                            online: r.get(1)?,
                            status_ms: r.get(2)?,
                            firmware: r.get(3)?,
                            signal_dbm: r.get(4)?,
                            battery_mv: r.get(5)?,
                            config_version: r.get(6)?,
                        })
                    })
                    .optional()?;
                let t = test
                    .query_row([d.as_str()], |r| {
                        Ok((r.get::<_, UnixMs>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?
                    .map(|(at, body)| (at, self_test_result(&body)));
                out.insert(
                    d.to_string(),
                    RosterStatus {
                        status: s,
                        last_self_test: t,
                    },
                );
            }
            Ok(out)
        })
    }

    /// Records `user` as the installer of `device` from `now`.
    ///
    /// # Errors
    /// A database error.
    pub fn set_installer(
        &self,
        device: &DeviceId,
        user: &str,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        self.write_journal(|c| {
            c.execute(
                "INSERT INTO commissioning (device_id, installer, since_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(device_id) DO UPDATE SET installer = excluded.installer, \
                 since_ms = excluded.since_ms",
                params![device.as_str(), user, now],
            )?;
            Ok(())
        })
    }

    /// Who commissions `device`, since when.
    ///
    /// # Errors
    /// A database error.
    pub fn installer_of(&self, device: &str) -> Result<Option<(String, UnixMs)>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT installer, since_ms FROM commissioning WHERE device_id = ?1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    /// Adds a test; its id.
    ///
    /// # Errors
    /// A database error.
    pub fn add_test(
        &self,
        device: &DeviceId,
        kind: TestKind,
        installer: Option<&str>,
        requested_ms: UnixMs,
        deadline_ms: UnixMs,
    ) -> Result<i64, StoreError> {
        self.write_journal(|c| {
            c.execute(
                "INSERT INTO device_tests (device_id, kind, installer, requested_ms, deadline_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    device.as_str(),
                    kind.as_str(),
                    installer,
                    requested_ms,
                    deadline_ms
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Tests still waiting for their answer, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn open_tests(&self) -> Result<Vec<OpenTest>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT id, device_id, kind, requested_ms, deadline_ms, installer FROM device_tests \
                 WHERE finished_ms IS NULL ORDER BY id LIMIT 1000",
            )?;
            let rows = s.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, UnixMs>(3)?,
                    r.get::<_, UnixMs>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, device, kind, requested_ms, deadline_ms, installer) = row?;
                if let Some(kind) = TestKind::parse(&kind) {
                    out.push(OpenTest {
                        id,
                        device,
                        kind,
                        requested_ms,
                        deadline_ms,
                        installer,
                    });
                }
            }
            Ok(out)
        })
    }

    /// The events of `device` received at or after `since_ms`, as a test's answer is looked
    /// for in them.
    ///
    /// # Errors
    /// A database error.
    pub fn events_for_tests(
        &self,
        device: &str,
        since_ms: UnixMs,
    ) -> Result<Vec<SeenEvent>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT kind, body, device_time_ms, received_ms FROM events WHERE device = ?1 \
                 AND received_ms >= ?2 AND kind IN ('self_test', 'smoke', 'alarm_raised') \
                 ORDER BY received_ms LIMIT 100",
            )?;
            let rows = s.query_map(params![device, since_ms], |r| {
                let kind: String = r.get(0)?;
                let body: String = r.get(1)?;
                Ok(SeenEvent {
                    result: (kind == "self_test").then(|| self_test_result(&body)),
                    kind,
                    device_ms: r.get(2)?,
                    received_ms: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Finishes a test with its outcome and, when the installer was told, when.
    ///
    /// # Errors
    /// A database error.
    pub fn finish_test(
        &self,
        id: i64,
        outcome: &Outcome,
        delivered_ms: Option<UnixMs>,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        let (result, device_ms, received_ms) = match outcome {
            Outcome::Answered {
                result,
                device_ms,
                received_ms,
            } => (result.as_str(), *device_ms, Some(*received_ms)),
            Outcome::TimedOut => ("timed_out", None, None),
        };
        self.write_journal(|c| {
            c.execute(
                "UPDATE device_tests SET result = ?2, device_ms = ?3, received_ms = ?4, \
                 delivered_ms = ?5, finished_ms = ?6 WHERE id = ?1 AND finished_ms IS NULL",
                params![id, result, device_ms, received_ms, delivered_ms, now],
            )?;
            Ok(())
        })
    }

    /// The tests of `device` requested at or after `since_ms`, oldest first (at most 200).
    ///
    /// # Errors
    /// A database error.
    pub fn tests_of(&self, device: &str, since_ms: UnixMs) -> Result<Vec<DeviceTest>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(&format!(
                "SELECT {TEST_COLUMNS} FROM device_tests WHERE device_id = ?1 AND requested_ms >= ?2 \
                 ORDER BY id LIMIT 200"
            ))?;
            let rows = s.query_map(params![device, since_ms], test_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One test.
    ///
    /// # Errors
    /// A database error.
    pub fn device_test(&self, id: i64) -> Result<Option<DeviceTest>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {TEST_COLUMNS} FROM device_tests WHERE id = ?1"),
                [id],
                test_row,
            )
            .optional()?)
        })
    }

    /// The commissioned and in-service devices for which `keep(id, kind, created_ms)` says
    /// yes, in id order, with their kind and registration time: one pass over the registry that
    /// reads neither configurations nor events (the self-test schedule's first look at a fleet,
    /// every minute).
    ///
    /// # Errors
    /// A database error.
    pub fn self_test_candidates(
        &self,
        mut keep: impl FnMut(&str, DeviceKind, UnixMs) -> bool,
    ) -> Result<Vec<(DeviceId, DeviceKind, UnixMs)>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT id, kind, created_ms FROM devices \
                 WHERE state IN ('commissioned', 'in_service') ORDER BY id",
            )?;
            let mut rows = s.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let kind = names::device_kind(&r.get::<_, String>(1)?)?;
                let created_ms = r.get(2)?;
                if keep(&id, kind, created_ms) {
                    out.push((names::device_id(&id)?, kind, created_ms));
                }
            }
            Ok(out)
        })
    }

    /// When `device`'s latest self-test result was received, if it ever sent one.
    ///
    /// # Errors
    /// A database error.
    pub fn last_self_test_ms(&self, device: &DeviceId) -> Result<Option<UnixMs>, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT max(received_ms) FROM events WHERE device = ?1 AND kind = 'self_test'",
            )?
            .query_row([device.as_str()], |r| r.get(0))?)
        })
    }

    /// When each device was last asked for a scheduled self-test.
    ///
    /// # Errors
    /// A database error.
    pub fn last_scheduled_tests(&self) -> Result<HashMap<String, UnixMs>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT device_id, max(requested_ms) FROM device_tests GROUP BY device_id",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The journaled events of `device`, newest first: of `kind` when given, received before
    /// `before_ms` when given, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    pub fn events_of(
        &self,
        device: &DeviceId,
        kind: Option<&str>,
        before_ms: Option<UnixMs>,
        limit: u32,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT seq, received_ms, device_time_ms, kind, channel, body FROM events \
                 WHERE device = ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR received_ms < ?3) \
                 ORDER BY received_ms DESC, seq DESC LIMIT ?4",
            )?;
            let rows = s.query_map(params![device.as_str(), kind, before_ms, limit], |r| {
                let body: String = r.get(5)?;
                Ok(DeviceEvent {
                    seq: r.get(0)?,
                    received_ms: r.get(1)?,
                    device_time_ms: r.get(2)?,
                    kind: r.get(3)?,
                    channel: r.get(4)?,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Stores a record made by `make` from its new id; the id and the file.
    ///
    /// # Errors
    /// A database error.
    pub fn add_record(
        &self,
        device: &DeviceId,
        installer: &str,
        issued_ms: UnixMs,
        make: impl FnOnce(i64) -> Vec<u8>,
    ) -> Result<(i64, Vec<u8>), StoreError> {
        self.write_journal(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id: i64 = tx.query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM commissioning_records",
                [],
                |r| r.get(0),
            )?;
            let file = make(id);
            tx.execute(
                "INSERT INTO commissioning_records (id, device_id, issued_ms, installer, file) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, device.as_str(), issued_ms, installer, file],
            )?;
            tx.commit()?;
            Ok((id, file))
        })
    }

    /// A record's device and file.
    ///
    /// # Errors
    /// A database error.
    pub fn record_file(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT device_id, file FROM commissioning_records WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    /// The records of `device`: id, issued, installer; newest first.
    ///
    /// # Errors
    /// A database error.
    pub fn records_of(&self, device: &str) -> Result<Vec<(i64, UnixMs, String)>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT id, issued_ms, installer FROM commissioning_records WHERE device_id = ?1 \
                 ORDER BY id DESC LIMIT 100",
            )?;
            let rows = s.query_map([device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// A `self_test` event body's result (`passed`, `failed`).
fn self_test_result(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    // The protocol's JSON: {"kind":"self_test","result":"passed",...} (docs/protocol.md).
    ["result", "kind"]
        .iter()
        .find_map(|k| {
            v.get("event")
                .and_then(|e| e.get(*k))
                .or_else(|| v.get(*k))
                .and_then(serde_json::Value::as_str)
                .filter(|s| matches!(*s, "passed" | "failed"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "failed".to_owned())
}
