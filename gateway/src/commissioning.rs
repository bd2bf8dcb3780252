//! Commissioning as a recorded test (docs/commissioning.md).
//!
//! A device in state `commissioned` is being installed: its alarms go to **the installer** —
//! the user who put it in that state, or who last asked it for a test — on their own topic
//! `firegrid/v1/people/{grid cell}/installer/{user}` and on the live stream (marked
//! `"test": true`), never to the grid cell's workers, the area tree, the owner or the
//! webhooks, and they never escalate ([`audience`], applied by the planner and the people
//! fan-out). The installer asks for a test ([`TestKind`]): the device's self-test command, or
//! "press the test button now"; [`watch`] matches the answer in the journal ([`outcome`]),
//! tells the installer on their topic and keeps its times: requested, made on the device,
//! received by the gateway, delivered to the installer. A **commissioning record**
//! ([`record`]) certifies the device, its binding, firmware, signal, configuration, tests and
//! installer, signed with the gateway's Ed25519 key ([`key`]).
//!
//! Scheduled self-tests: every device of a kind with `[commissioning] self_test_days` gets the
//! self-test command when its last self-test is older than that ([`self_test_due`]); the
//! results are the device's journaled `self_test` events (kept: events are never pruned), and
//! devices whose last result is older than the period plus a day are overdue ([`overdue`]).
//!
//! Pure here ([`audience`], [`outcome`], [`self_test_due`], [`overdue`]); the shell is
//! [`watch`], the store's side `store/commissioning.rs`.

pub mod key;
pub mod record;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{DeviceKind, DeviceState, UnixMs};

/// Who an alarm of a device in some state is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The grid cell's workers, escalating up the area tree (a device in service).
    Workers,
    /// The installer testing it (a commissioned device): never escalates.
    Installer,
}

/// Who the alarms of a device in `state` go to: a commissioned device's to its installer,
/// every other's to the workers (only commissioned and in-service devices' messages are
/// taken at all).
pub const fn audience(state: DeviceState) -> Audience {
    match state {
        DeviceState::Commissioned => Audience::Installer,
        DeviceState::Registered | DeviceState::InService | DeviceState::Decommissioned => {
            Audience::Workers
        }
    }
}

/// The installer's own topic for a device of grid cell `grid`: under the workers' topics of
/// the cell, so that a token scoped to the cell may read it.
pub fn installer_topic(grid: &str, user: &str) -> String {
    let user: String = user
        .chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect();
    format!("firegrid/v1/people/{grid}/installer/{user}")
}

/// A test a device is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// The installer sends the device's self-test command; its `self_test` event answers.
    SelfTest,
    /// The installer presses the device's test button now (a smoke alarm): its alarm answers.
    Button,
    /// The gateway's scheduled self-test (no installer).
    Scheduled,
}

impl TestKind {
    /// The name in the store and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SelfTest => "self_test",
            Self::Button => "button",
            Self::Scheduled => "scheduled",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SelfTest, Self::Button, Self::Scheduled]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A test waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTest {
    /// Its id.
    pub id: i64,
    /// The device.
    pub device: String,
    /// What was asked.
    pub kind: TestKind,
    /// When (gateway clock).
    pub requested_ms: UnixMs,
    /// When it times out.
    pub deadline_ms: UnixMs,
    /// Who asked (none: scheduled).
    pub installer: Option<String>,
}

/// A journaled event of the device, as [`outcome`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// Its kind's name (`self_test`, `smoke`, `alarm_raised`, …).
    pub kind: String,
    /// For `self_test`: `passed` or `failed`.
    pub result: Option<String>,
    /// When the device made it (its clock).
    pub device_ms: Option<UnixMs>,
    /// When the gateway received it.
    pub received_ms: UnixMs,
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The device answered.
    Answered {
        /// `passed`, `failed` (self-test) or `alarm` (test button).
        result: String,
        /// When the device made the answer.
        device_ms: Option<UnixMs>,
        /// When the gateway received it.
        received_ms: UnixMs,
    },
    /// No answer by the deadline.
    TimedOut,
}

/// How `test` ended given the device's events received since it was asked (any order), at
/// `now`: the first answer received at or after the request, else a time-out once the deadline
/// passed, else `None` (still waiting). A self-test is answered by a `self_test` event, the
/// test button by the alarm it sounds (`smoke`, `alarm_raised`) or a `self_test` event.
pub fn outcome(test: &OpenTest, events: &[SeenEvent], now: UnixMs) -> Option<Outcome> {
    let answers = |e: &&SeenEvent| {
        e.received_ms >= test.requested_ms
            && match test.kind {
                TestKind::SelfTest | TestKind::Scheduled => e.kind == "self_test",
                TestKind::Button => {
                    matches!(e.kind.as_str(), "smoke" | "alarm_raised" | "self_test")
                }
            }
    };
    let first = events.iter().filter(answers).min_by_key(|e| e.received_ms);
    match first {
        Some(e) => Some(Outcome::Answered {
            result: match e.kind.as_str() {
                "self_test" => e.result.clone().unwrap_or_else(|| "failed".to_owned()),
                _ => "alarm".to_owned(),
            },
            device_ms: e.device_ms,
            received_ms: e.received_ms,
        }),
        None if now >= test.deadline_ms => Some(Outcome::TimedOut),
        None => None,
    }
}

/// How many heartbeat intervals without news make the roster show a device offline (its last
/// status may still say online: a device that lost power sends no will when its broker session
/// lingers).
pub const ROSTER_OFFLINE_HEARTBEATS: u64 = 3;

/// Whether the roster shows a device online at `now`: its last status (`said`), unless nothing
/// was heard of it for [`ROSTER_OFFLINE_HEARTBEATS`] heartbeat intervals.
pub fn online(said: Option<bool>, seen_ms: UnixMs, heartbeat_s: u32, now: UnixMs) -> Option<bool> {
    let quiet = u64::from(heartbeat_s) * 1000 * ROSTER_OFFLINE_HEARTBEATS;
    match said {
        Some(true) if now > seen_ms.saturating_add(quiet) => Some(false),
        other => other,
    }
}

/// `[commissioning]`: tests, their time-out and the self-test schedule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommissioningSection {
    /// Per device kind (`electrical_fire_monitor`, `smoke_alarm`, `legacy_modbus`), every how
    /// many days the gateway runs the device's self-test; 0 or absent: never.
    pub self_test_days: BTreeMap<String, u32>,
    /// How long a requested test may take before it is recorded as timed out, s.
    pub test_timeout_s: u32,
}

impl Default for CommissioningSection {
    fn default() -> Self {
        Self {
            self_test_days: [
                ("electrical_fire_monitor".to_owned(), 30),
                ("smoke_alarm".to_owned(), 30),
            ]
            .into_iter()
            .collect(),
            test_timeout_s: 120,
        }
    }
}

impl CommissioningSection {
    /// The self-test period of a device kind, ms (`None`: no schedule).
    pub fn period_ms(&self, kind: DeviceKind) -> Option<u64> {
        let name = match kind {
            DeviceKind::ElectricalFireMonitor => "electrical_fire_monitor",
            DeviceKind::SmokeAlarm => "smoke_alarm",
            DeviceKind::LegacyModbus => "legacy_modbus",
        };
        self.self_test_days
            .get(name)
            .filter(|d| **d > 0)
            .map(|d| u64::from(*d) * 86_400_000)
    }

    /// Checks the kinds named.
    ///
    /// # Errors
    /// An unknown kind, by name.
    pub fn validate(&self) -> Result<(), String> {
        for k in self.self_test_days.keys() {
            if !matches!(
                k.as_str(),
                "electrical_fire_monitor" | "smoke_alarm" | "legacy_modbus"
            ) {
                return Err(format!(
                    "[commissioning] self_test_days: unknown device kind {k:?} (electrical_fire_monitor, smoke_alarm, legacy_modbus)"
                ));
            }
        }
        Ok(())
    }
}

/// What the API needs for commissioning: the signing key, the test watcher's wake-up, the
/// settings.
#[derive(Clone)]
pub struct Desk {
    /// The gateway's record-signing key (`None`: records cannot be issued).
    pub key: Option<Arc<ring::signature::Ed25519KeyPair>>,
    /// Wakes the test watcher ([`watch`]) when a test is asked for.
    pub wake: Arc<tokio::sync::Notify>,
    /// `[commissioning]`.
    pub section: CommissioningSection,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("public_key", &self.public_key())
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

impl Desk {
    /// With the key of the data directory.
    pub fn new(key: ring::signature::Ed25519KeyPair, section: CommissioningSection) -> Self {
        Self {
            key: Some(Arc::new(key)),
            wake: Arc::default(),
            section,
        }
    }

    /// With a key kept in memory only (API tests; `None` if the random source failed).
    pub fn ephemeral() -> Self {
        Self {
            key: key::ephemeral().ok().map(Arc::new),
            wake: Arc::default(),
            section: CommissioningSection::default(),
        }
    }

    /// The signing key's public half, base64.
    pub fn public_key(&self) -> Option<String> {
        self.key.as_deref().map(record::public_key_b64)
    }
}

/// One day: how late a scheduled self-test's result may be before the device is overdue.
pub const OVERDUE_GRACE_MS: u64 = 86_400_000;

/// Whether the gateway should send a device its scheduled self-test at `now`: its last
/// self-test result (`last`), or else when it was last asked (`asked`), is a period old.
pub fn self_test_due(
    period_ms: u64,
    last: Option<UnixMs>,
    asked: Option<UnixMs>,
    since_ms: UnixMs,
    now: UnixMs,
) -> bool {
    let from = [last, asked, Some(since_ms)].into_iter().flatten().max();
    from.is_none_or(|t| now >= t.saturating_add(period_ms))
}

/// Whether a device is overdue for its self-test at `now`: no result (`last`) within the
/// period and a day's grace, counted from its last result or from when it was registered
/// (`since_ms`).
pub fn overdue(period_ms: u64, last: Option<UnixMs>, since_ms: UnixMs, now: UnixMs) -> bool {
    let from = last.unwrap_or(since_ms);
    now > from
        .saturating_add(period_ms)
        .saturating_add(OVERDUE_GRACE_MS)
}

#[cfg(test)]
mod tests;
