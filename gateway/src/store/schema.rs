//! The schema, as numbered migrations (`PRAGMA user_version` is the number applied), of the
//! two files: the main one (registry, journal) and the readings file (readings, rollups).
//!
//! Rules: a migration is never edited once released; a change is a new migration appended to
//! [`MIGRATIONS`]. Each one runs in its own transaction together with the `user_version` bump,
//! so a crash mid-migration leaves the previous version whole. Tables are `STRICT` (a wrong type
//! is an error, not a silent conversion); enumerations are checked text, so the file stays
//! readable with the `sqlite3` shell.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Version 1: registry, pending devices, journal, readings, notifications outbox, meta.
const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Registry ------------------------------------------------------------------------------------

CREATE TABLE areas (
    id         TEXT PRIMARY KEY,
    parent_id  TEXT REFERENCES areas(id),
    level      TEXT NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX areas_by_parent ON areas(parent_id);

CREATE TABLE workers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    area_id     TEXT NOT NULL REFERENCES areas(id),
    phone       TEXT,
    mqtt_topic  TEXT,
    webhook_url TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX workers_by_area ON workers(area_id);

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    address     TEXT NOT NULL,
    owner_name  TEXT,
    owner_phone TEXT,
    area_id     TEXT NOT NULL REFERENCES areas(id),
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX sites_by_area ON sites(area_id);

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites(id),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX rooms_by_site ON rooms(site_id);

-- The supply tree of a site: supply -> distribution box -> circuit.
CREATE TABLE circuits (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites(id),
    parent_id  INTEGER REFERENCES circuits(id),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX circuits_by_site ON circuits(site_id);
CREATE INDEX circuits_by_parent ON circuits(parent_id);

CREATE TABLE devices (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL
        CHECK (kind IN ('electrical_fire_monitor', 'smoke_alarm', 'legacy_modbus')),
    state                TEXT NOT NULL
        CHECK (state IN ('registered', 'commissioned', 'in_service', 'decommissioned')),
    site_id              INTEGER REFERENCES sites(id),
    room_id              INTEGER REFERENCES rooms(id),
    circuit_id           INTEGER REFERENCES circuits(id),
    grid_id              TEXT REFERENCES areas(id),
    -- The device's Config in the protocol's JSON (docs/protocol.md#config).
    config               TEXT NOT NULL,
    config_version       INTEGER NOT NULL,
    heartbeat_interval_s INTEGER NOT NULL,
    encoding             TEXT NOT NULL CHECK (encoding IN ('json', 'binary')),
    credential_hash      TEXT,
    created_ms           INTEGER NOT NULL,
    updated_ms           INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_by_state ON devices(state);
CREATE INDEX devices_by_site ON devices(site_id);
CREATE INDEX devices_by_room ON devices(room_id);
CREATE INDEX devices_by_circuit ON devices(circuit_id);
CREATE INDEX devices_by_grid ON devices(grid_id);

-- Devices that published without being registered: a visible list instead of a silent drop.
CREATE TABLE pending_devices (
    id            TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    messages      INTEGER NOT NULL,
    last_topic    TEXT NOT NULL
) STRICT;

-- Journal -------------------------------------------------------------------------------------

-- Every event journaled before its ack. The primary key is the dedupe table across restarts.
CREATE TABLE events (
    device         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    received_ms    INTEGER NOT NULL,
    device_time_ms INTEGER,
    uptime_ms      INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    channel        INTEGER,
    -- The event in the protocol's JSON (docs/protocol.md#event).
    body           TEXT NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX events_by_time ON events(received_ms);

CREATE TABLE episodes (
    id             INTEGER PRIMARY KEY,
    device         TEXT NOT NULL,
    channel        INTEGER,
    category       TEXT NOT NULL
        CHECK (category IN ('alarm', 'fault', 'offline', 'battery_low', 'smoke', 'tamper')),
    grid           TEXT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('device', 'gateway')),
    started_ms     INTEGER NOT NULL,
    ended_ms       INTEGER,
    peak_quantity  TEXT CHECK (peak_quantity IN ('residual_current', 'temperature')),
    peak_value     INTEGER,
    peak_threshold INTEGER,
    detail         TEXT,
    ticket         TEXT NOT NULL DEFAULT 'raised' CHECK (ticket IN
        ('raised', 'acknowledged', 'dispatched', 'rectified', 'verified', 'closed')),
    escalation     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX episodes_by_device ON episodes(device, started_ms);
CREATE INDEX episodes_by_grid ON episodes(grid, started_ms);
CREATE INDEX episodes_by_start ON episodes(started_ms);
-- What Engine::restore needs after a restart: small, whatever the journal's size.
CREATE INDEX episodes_live ON episodes(id) WHERE ended_ms IS NULL OR ticket = 'raised';

CREATE TABLE ticket_steps (
    id         INTEGER PRIMARY KEY,
    episode_id INTEGER NOT NULL REFERENCES episodes(id),
    state      TEXT NOT NULL,
    who        TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    note       TEXT
) STRICT;
CREATE INDEX ticket_steps_by_episode ON ticket_steps(episode_id, id);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    who     TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit(at_ms);
CREATE INDEX audit_by_subject ON audit(subject, at_ms);
CREATE INDEX audit_by_who ON audit(who, at_ms);

-- Alerts to send, at least once, across restarts.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    episode_id      INTEGER NOT NULL REFERENCES episodes(id),
    kind            TEXT NOT NULL CHECK (kind IN ('opened', 'escalated', 'ended')),
    level           INTEGER NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('mqtt', 'webhook', 'sse')),
    target          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER
) STRICT;
CREATE INDEX notifications_due ON notifications(next_attempt_ms) WHERE delivered_ms IS NULL;
CREATE INDEX notifications_by_episode ON notifications(episode_id);

-- Readings ------------------------------------------------------------------------------------

-- One row per (telemetry message, channel). The key makes a redelivered message a no-op.
CREATE TABLE readings (
    device      TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    residual_ma INTEGER,
    temp_dc     INTEGER,
    voltage_dv  INTEGER,
    current_ma  INTEGER,
    PRIMARY KEY (device, channel, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX readings_by_time ON readings(device, channel, ts_ms);

-- Hourly rollups, kept far longer than raw readings. Per quantity: count, min, max, sum.
CREATE TABLE readings_hourly (
    device      TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    hour_ms     INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    residual_n  INTEGER NOT NULL DEFAULT 0,
    residual_min INTEGER,
    residual_max INTEGER,
    residual_sum INTEGER NOT NULL DEFAULT 0,
    temp_n      INTEGER NOT NULL DEFAULT 0,
    temp_min    INTEGER,
    temp_max    INTEGER,
    temp_sum    INTEGER NOT NULL DEFAULT 0,
    voltage_n   INTEGER NOT NULL DEFAULT 0,
    voltage_min INTEGER,
    voltage_max INTEGER,
    voltage_sum INTEGER NOT NULL DEFAULT 0,
    current_n   INTEGER NOT NULL DEFAULT 0,
    current_min INTEGER,
    current_max INTEGER,
    current_sum INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, channel, hour_ms)
) STRICT, WITHOUT ROWID;
"#;

/// Version 2: people (users with a role and an area scope) and their API tokens.
const V2: &str = r#"
-- A person who uses the API. No reference to areas: a user may be made (`firegrid user add`)
-- before the areas exist; a scope naming no area reaches nothing.
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN
        ('admin', 'operator', 'grid_worker', 'installer', 'utility', 'viewer')),
    area_id    TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- An API token: `<id>.<secret>`; only the secret's $6$ hash is kept.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users(name),
    hash       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms INTEGER
) STRICT;
CREATE INDEX api_tokens_by_user ON api_tokens(user_name);
"#;

/// Version 3: an index for the retention of delivered notifications; readings and their
/// rollups move to the readings file (attached as `rd` while
/// this runs, its schema already made by [`READINGS_MIGRATIONS`]), so that the journal's
/// fsyncs never flush readings. `INSERT OR IGNORE`: a copy interrupted by a crash is done
/// again whole (the readings file commits on its own).
const V3: &str = r#"
INSERT OR IGNORE INTO rd.readings SELECT * FROM main.readings;
INSERT OR IGNORE INTO rd.readings_hourly SELECT * FROM main.readings_hourly;
DROP TABLE main.readings;
DROP TABLE main.readings_hourly;
-- Retention of delivered notifications (Store::prune) without a scan of the outbox.
CREATE INDEX main.notifications_delivered ON notifications(delivered_ms)
    WHERE delivered_ms IS NOT NULL;
"#;

/// Version 4: the order in which notifications were queued. Their ids are derived from what
/// they are about (not increasing), so whoever follows the outbox (the GB/T 26875 uplink)
/// follows this sequence instead; triggers keep it in step with inserts and deletes.
const V4: &str = r#"
CREATE TABLE notification_order (
    seq             INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL
) STRICT;
CREATE INDEX notification_order_by_id ON notification_order(notification_id);
INSERT INTO notification_order (notification_id) SELECT id FROM notifications ORDER BY id;
CREATE TRIGGER notification_queued AFTER INSERT ON notifications BEGIN
    INSERT INTO notification_order (notification_id) VALUES (NEW.id);
END;
CREATE TRIGGER notification_removed AFTER DELETE ON notifications BEGIN
    DELETE FROM notification_order WHERE notification_id = OLD.id;
END;
"#;

/// Version 5: alerts to people. Each alert of the outbox fans out, off the alarm path, into one
/// delivery per worker of the alert's area and per channel of theirs (their MQTT topic, their
/// webhook in its format, an SMS through the configured template), each retried with backoff
/// until delivered or until the ticket is acknowledged (`stopped_ms`). A worker's webhook has a
/// format (`json`, `dingtalk`, `wecom` group robots). Episodes record when (and at which
/// escalation level) their ticket was acknowledged: the rectify deadlines count from there.
const V5: &str = r#"
ALTER TABLE workers ADD COLUMN webhook_format TEXT NOT NULL DEFAULT 'json'
    CHECK (webhook_format IN ('json', 'dingtalk', 'wecom'));
CREATE TABLE person_deliveries (
    id              INTEGER PRIMARY KEY,
    -- The alert (its notification id; no reference: delivered notifications are pruned).
    notification_id INTEGER NOT NULL,
    episode_id      INTEGER NOT NULL REFERENCES episodes(id),
    kind            TEXT NOT NULL CHECK (kind IN ('opened', 'escalated', 'ended')),
    area_id         TEXT NOT NULL,
    -- No reference either: a worker deleted later leaves the record of what was sent.
    worker_id       INTEGER NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('mqtt', 'webhook', 'sms')),
    format          TEXT NOT NULL CHECK (format IN ('json', 'dingtalk', 'wecom')),
    target          TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    stopped_ms      INTEGER,
    last_error      TEXT,
    UNIQUE (notification_id, worker_id, channel)
) STRICT;
CREATE INDEX person_deliveries_due ON person_deliveries(next_attempt_ms)
    WHERE delivered_ms IS NULL AND stopped_ms IS NULL;
CREATE INDEX person_deliveries_by_episode ON person_deliveries(episode_id);
-- The hazard workflow: when and at which escalation level a ticket was acknowledged (its
-- rectify deadlines count from there).
ALTER TABLE episodes ADD COLUMN acknowledged_ms INTEGER;
ALTER TABLE episodes ADD COLUMN acknowledged_level INTEGER;
-- The worker the ticket is assigned to (no reference: a worker deleted later leaves the record).
ALTER TABLE episodes ADD COLUMN assignee_id INTEGER;
UPDATE episodes SET
    acknowledged_ms = (SELECT min(t.at_ms) FROM ticket_steps t
                       WHERE t.episode_id = episodes.id AND t.state != 'raised'),
    acknowledged_level = escalation
    WHERE ticket != 'raised';
CREATE INDEX episodes_unrectified ON episodes(id)
    WHERE ticket IN ('acknowledged', 'dispatched');
-- Alerts queued before this version are not sent to people (they went out long ago).
INSERT INTO meta (key, value)
    SELECT 'people.mark', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM notification_order;
"#;

/// Version 6: web sessions (the web UI's logins, `store/sessions.rs`): the SHA-256 of the
/// browser's session secret, the API token it was opened with (revoking the token ends it).
const V6: &str = r#"
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES api_tokens(id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_by_expiry ON web_sessions(expires_ms);
"#;

/// Commissioning (`store/commissioning.rs`, `crate::commissioning`): each device's latest
/// status (written off the alarm path, coalesced per batch), who commissions each device, the
/// tests asked of devices with their times, and the signed records issued.
const V_COMMISSIONING: &str = r#"
CREATE TABLE device_status (
    device_id      TEXT PRIMARY KEY,
    seen_ms        INTEGER NOT NULL,
    online         INTEGER,
    status_ms      INTEGER,
    firmware       TEXT,
    signal_dbm     INTEGER,
    battery_mv     INTEGER,
    config_version INTEGER
) STRICT;
CREATE TABLE commissioning (
    device_id TEXT PRIMARY KEY,
    installer TEXT NOT NULL,
    since_ms  INTEGER NOT NULL
) STRICT;
CREATE TABLE device_tests (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('self_test', 'button', 'scheduled')),
    installer    TEXT,
    requested_ms INTEGER NOT NULL,
    deadline_ms  INTEGER NOT NULL,
    result       TEXT CHECK (result IN ('passed', 'failed', 'alarm', 'timed_out')),
    device_ms    INTEGER,
    received_ms  INTEGER,
    delivered_ms INTEGER,
    finished_ms  INTEGER
) STRICT;
CREATE INDEX device_tests_by_device ON device_tests(device_id, requested_ms);
CREATE INDEX device_tests_open ON device_tests(finished_ms) WHERE finished_ms IS NULL;
CREATE TABLE commissioning_records (
    id        INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    issued_ms INTEGER NOT NULL,
    installer TEXT NOT NULL,
    file      BLOB NOT NULL
) STRICT;
CREATE INDEX commissioning_records_by_device ON commissioning_records(device_id, issued_ms);
CREATE INDEX events_by_device_kind ON events(device, kind, received_ms);
"#;

/// Evidence on tickets (`store/evidence.rs`, [`crate::evidence`]): notes and photos, who sent
/// them and when. A photo's bytes are a file in the data directory named by its SHA-256; the
/// row keeps the digest, its checked type and size.
const V_EVIDENCE: &str = r#"
CREATE TABLE evidence (
    id         INTEGER PRIMARY KEY,
    episode_id INTEGER NOT NULL REFERENCES episodes(id),
    who        TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    note       TEXT,
    photo_type TEXT CHECK (photo_type IN ('image/jpeg', 'image/png')),
    photo_sha  TEXT,
    photo_size INTEGER,
    CHECK (note IS NOT NULL OR photo_sha IS NOT NULL),
    CHECK ((photo_sha IS NULL) = (photo_type IS NULL))
) STRICT;
CREATE INDEX evidence_by_episode ON evidence(episode_id);
"#;

/// A worker's DingTalk robot signing secret (`notify/robot.rs`): the robot refuses unsigned
/// requests when "加签" is on. Kept as given (it signs; it is not a password to check).
const V_ROBOT_SECRET: &str = r#"
ALTER TABLE workers ADD COLUMN webhook_secret TEXT;
"#;

/// A room's tenant (`notify/people.rs`): told of alerts like the site's owner.
const V_TENANTS: &str = r#"
ALTER TABLE rooms ADD COLUMN tenant_name TEXT;
ALTER TABLE rooms ADD COLUMN tenant_phone TEXT;
"#;

/// Channel-level circuit binding and key areas (docs/utility.md, decision 15).
///
/// `channel_circuits`: channel n of a device measures this circuit. A channel without a row
/// measures its device's own `circuit_id` — the per-device binding of earlier versions means
/// every channel, so a store made before this version reads the same without a row rewritten.
/// `key_areas`: the areas flagged as key areas (重点区域); the reports filter and roll up by
/// them.
const V_CHANNEL_CIRCUITS_KEY_AREAS: &str = r#"
CREATE TABLE channel_circuits (
    device     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    channel    INTEGER NOT NULL CHECK (channel BETWEEN 0 AND 255),
    circuit_id INTEGER NOT NULL REFERENCES circuits(id),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (device, channel)
) STRICT;
CREATE INDEX channel_circuits_by_circuit ON channel_circuits(circuit_id);
CREATE TABLE key_areas (
    area_id    TEXT PRIMARY KEY REFERENCES areas(id) ON DELETE CASCADE,
    flagged_ms INTEGER NOT NULL,
    flagged_by TEXT NOT NULL
) STRICT;
"#;

/// Every migration, in order: index `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V_COMMISSIONING,
    V_EVIDENCE,
    V_ROBOT_SECRET,
    V_TENANTS,
    V_CHANNEL_CIRCUITS_KEY_AREAS,
];

/// The readings file, version 1: the tables version 1 of the main file had, the same columns
/// in the same order.
const READINGS_V1: &str = r#"
-- One row per (telemetry message, channel). The key makes a redelivered message a no-op.
CREATE TABLE readings (
    device      TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    residual_ma INTEGER,
    temp_dc     INTEGER,
    voltage_dv  INTEGER,
    current_ma  INTEGER,
    PRIMARY KEY (device, channel, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX readings_by_time ON readings(device, channel, ts_ms);

-- Hourly rollups, kept far longer than raw readings. Per quantity: count, min, max, sum.
CREATE TABLE readings_hourly (
    device      TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    hour_ms     INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    residual_n  INTEGER NOT NULL DEFAULT 0,
    residual_min INTEGER,
    residual_max INTEGER,
    residual_sum INTEGER NOT NULL DEFAULT 0,
    temp_n      INTEGER NOT NULL DEFAULT 0,
    temp_min    INTEGER,
    temp_max    INTEGER,
    temp_sum    INTEGER NOT NULL DEFAULT 0,
    voltage_n   INTEGER NOT NULL DEFAULT 0,
    voltage_min INTEGER,
    voltage_max INTEGER,
    voltage_sum INTEGER NOT NULL DEFAULT 0,
    current_n   INTEGER NOT NULL DEFAULT 0,
    current_min INTEGER,
    current_max INTEGER,
    current_sum INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, channel, hour_ms)
) STRICT, WITHOUT ROWID;
"#;

/// The readings file, version 2 (issue 12): raw readings one row per message, channels packed,
/// in a table per UTC day (`raw_<day>`, made when its first reading comes:
/// `readings::create_day`), each listed here with its reading rows so that retention drops
/// whole days and says how many rows went. The rollups are unchanged. Version 1's `readings`
/// table stays until the store's opening has moved its rows into the day tables
/// (`readings_v1::drain`, after the main file's migrations, version 3 of which still copies
/// an older main file's readings into it) and dropped it.
const READINGS_V2: &str = r#"
CREATE TABLE raw_days (
    day      INTEGER PRIMARY KEY,
    readings INTEGER NOT NULL
) STRICT;
"#;

/// The readings file, version 3 (issue 12): hourly rollups one row per (hour, device), its
/// channels packed (`rollup::Rollup`), keyed by the hour first so that the hour being written
/// is one compact run of the tree. Version 1's `readings_hourly` stays until the store's opening
/// has moved its rows here (`readings_v1::drain_hourly`, after the main file's migrations,
/// version 3 of which still copies an older main file's rollups into it) and dropped it.
const READINGS_V3: &str = r#"
CREATE TABLE rollups (
    hour_ms  INTEGER NOT NULL,
    device   TEXT NOT NULL,
    channels BLOB NOT NULL,
    PRIMARY KEY (hour_ms, device)
) STRICT, WITHOUT ROWID;
"#;

/// The readings file, version 4 (issue 12, decision record 24): how each day table's unique
/// index is keyed — 0 for `(device, ts_ms, seq)`, as every day table made before; else the
/// width in ms of the time bucket that leads it, `(ts_ms / width, device, ts_ms, seq)`
/// (`readings::create_day`). Existing day tables keep their index until retention drops them.
const READINGS_V4: &str = r#"
ALTER TABLE raw_days ADD COLUMN key_bucket_ms INTEGER NOT NULL DEFAULT 0;
"#;

/// The readings file's migrations (its own `user_version`).
pub(super) const READINGS_MIGRATIONS: &[&str] =
    &[READINGS_V1, READINGS_V2, READINGS_V3, READINGS_V4];

/// The schema version this build writes.
pub(super) const LATEST: u32 = MIGRATIONS.len() as u32;

/// The readings file's schema version this build writes.
pub(super) const READINGS_LATEST: u32 = READINGS_MIGRATIONS.len() as u32;

/// The main file's tables, parents before children (the order a salvage copies them in).
pub(super) const TABLES: &[&str] = &[
    "meta",
    "areas",
    "workers",
    "sites",
    "rooms",
    "circuits",
    "devices",
    "pending_devices",
    "users",
    "api_tokens",
    "events",
    "episodes",
    "ticket_steps",
    "audit",
    "notifications",
    "notification_order",
    "person_deliveries",
    "web_sessions",
    "device_status",
    "commissioning",
    "device_tests",
    "commissioning_records",
    "evidence",
    "channel_circuits",
    "key_areas",
];

/// The readings file's tables once opened (the day tables come with readings).
#[cfg(test)]
pub(super) const READINGS_TABLES: &[&str] = &["rollups", "raw_days"];

/// The schema version of the open database.
pub(super) fn version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the main file's schema to [`LATEST`]; returns the version found. Idempotent: at
/// `LATEST` it only reads the version. `readings` is the readings file, already at
/// [`READINGS_LATEST`] ([`migrate_readings`]): attached while migrations run, so that version
/// 2 moves the readings of an older store into it.
///
/// # Errors
/// [`StoreError::TooNew`] if the file was written by a newer build (refused, not touched);
/// a database error if a migration fails (that migration is rolled back whole).
pub(super) fn migrate(conn: &mut Connection, readings: &Path) -> Result<u32, StoreError> {
    let found = version(conn)?;
    if found > LATEST {
        return Err(StoreError::TooNew {
            found,
            supported: LATEST,
        });
    }
    if found == LATEST {
        return Ok(found);
    }
    conn.execute(
        "ATTACH DATABASE ?1 AS rd",
        [readings.to_string_lossy().as_ref()],
    )?;
    let applied = apply(conn, MIGRATIONS, found);
    // The journal's connection never keeps the readings file: its transactions would lock it.
    conn.execute("DETACH DATABASE rd", [])?;
    applied?;
    Ok(found)
}

/// Brings the readings file's schema to [`READINGS_LATEST`]; returns the version found.
///
/// # Errors
/// As [`migrate`].
pub(super) fn migrate_readings(conn: &mut Connection) -> Result<u32, StoreError> {
    let found = version(conn)?;
    if found > READINGS_LATEST {
        return Err(StoreError::TooNew {
            found,
            supported: READINGS_LATEST,
        });
    }
    apply(conn, READINGS_MIGRATIONS, found)?;
    Ok(found)
}

fn apply(conn: &mut Connection, migrations: &[&str], found: u32) -> Result<(), StoreError> {
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and our write lock.
        if version(&tx)? > i as u32 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
