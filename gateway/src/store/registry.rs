//! The registry: areas (district → street → community → grid cell), workers, sites, rooms,
//! circuits, devices, and the devices that published without being registered.
//!
//! Every change is checked (references exist and fit together: a typed error says which does
//! not) and audited in the same transaction, with who made it.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use firegrid_protocols::codec::Encoding;
use firegrid_protocols::message::{Config, Message};
use firegrid_protocols::thresholds::Limits;
use firegrid_protocols::topic::DeviceTopic;
use firegrid_protocols::{DeviceId, GridId};

use super::journal::insert_audit;
use super::names::{self, device_kind_str, device_state_str};
use super::sql::{self, Where};
use super::{Store, StoreError};
use crate::model::{DeviceKind, DeviceSpec, DeviceState, UnixMs};

/// An area's id. Every area id follows the grid-cell id rule (1–32 of `[A-Za-z0-9_-]`), as any
/// level may appear in an alert topic when an episode escalates.
pub type AreaId = GridId;
/// A worker's id (assigned by the store).
pub type WorkerId = i64;
/// A site's id (assigned by the store).
pub type SiteId = i64;
/// A room's id (assigned by the store).
pub type RoomId = i64;
/// A circuit's id (assigned by the store).
pub type CircuitId = i64;

/// Who makes a change, and when: written to the audit log with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// A person's login, or `gateway`.
    pub who: &'a str,
    /// The time of the change, ms since the Unix epoch.
    pub now: UnixMs,
}

impl<'a> Actor<'a> {
    /// `who` at `now`.
    pub const fn new(who: &'a str, now: UnixMs) -> Self {
        Self { who, now }
    }
}

/// A level of the area hierarchy, from the smallest up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// A grid cell: a few streets' worth of housing with its grid workers.
    Grid,
    /// A community (社区).
    Community,
    /// A street (街道).
    Street,
    /// A district (区).
    District,
}

impl AreaLevel {
    /// The name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grid => "grid",
            Self::Community => "community",
            Self::Street => "street",
            Self::District => "district",
        }
    }
}

impl fmt::Display for AreaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AreaLevel {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "grid" => Ok(Self::Grid),
            "community" => Ok(Self::Community),
            "street" => Ok(Self::Street),
            "district" => Ok(Self::District),
            _ => Err(names::invalid("area level", s)),
        }
    }
}

/// An area's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaFields {
    /// The area it belongs to, of a higher level (none for the top).
    pub parent_id: Option<AreaId>,
    /// Its level.
    pub level: AreaLevel,
    /// Its name.
    pub name: String,
}

/// An area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    /// Its id.
    pub id: AreaId,
    /// Its data.
    #[serde(flatten)]
    pub fields: AreaFields,
    /// When it was created.
    pub created_ms: UnixMs,
    /// When it was last changed.
    pub updated_ms: UnixMs,
}

/// Which areas to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaFilter {
    /// Only the children of this area.
    pub parent_id: Option<AreaId>,
    /// Only this level.
    pub level: Option<AreaLevel>,
}

/// A worker's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerFields {
    /// Name.
    pub name: String,
    /// The area they answer for (a grid cell, or higher for escalations).
    pub area_id: AreaId,
    /// Phone number.
    pub phone: Option<String>,
    /// MQTT topic their app listens on, if not the area's alert topic.
    pub mqtt_topic: Option<String>,
    /// Webhook to call.
    pub webhook_url: Option<String>,
}

/// A worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    /// Their id.
    pub id: WorkerId,
    /// Their data.
    #[serde(flatten)]
    pub fields: WorkerFields,
    /// When created.
    pub created_ms: UnixMs,
    /// When last changed.
    pub updated_ms: UnixMs,
}

/// Which workers to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerFilter {
    /// Only those of exactly this area.
    pub area_id: Option<AreaId>,
}

/// A site's data (a rental building).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFields {
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Landlord or owner.
    pub owner_name: Option<String>,
    /// Their phone.
    pub owner_phone: Option<String>,
    /// The area (usually a grid cell) it lies in.
    pub area_id: AreaId,
}

/// A site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Its id.
    pub id: SiteId,
    /// Its data.
    #[serde(flatten)]
    pub fields: SiteFields,
    /// When created.
    pub created_ms: UnixMs,
    /// When last changed.
    pub updated_ms: UnixMs,
}

/// Which sites to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFilter {
    /// Only those in this area or below it.
    pub area_id: Option<AreaId>,
}

/// A room's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomFields {
    /// The site.
    pub site_id: SiteId,
    /// Name (e.g. "3-302").
    pub name: String,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Its id.
    pub id: RoomId,
    /// Its data.
    #[serde(flatten)]
    pub fields: RoomFields,
    /// When created.
    pub created_ms: UnixMs,
    /// When last changed.
    pub updated_ms: UnixMs,
}

/// Which rooms to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomFilter {
    /// Only those of this site.
    pub site_id: Option<SiteId>,
}

/// A circuit's data: a node of a site's supply tree (supply → distribution box → circuit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitFields {
    /// The site.
    pub site_id: SiteId,
    /// The node it is fed from (same site), none for the supply.
    pub parent_id: Option<CircuitId>,
    /// Name.
    pub name: String,
}

/// A circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circuit {
    /// Its id.
    pub id: CircuitId,
    /// Its data.
    #[serde(flatten)]
    pub fields: CircuitFields,
    /// When created.
    pub created_ms: UnixMs,
    /// When last changed.
    pub updated_ms: UnixMs,
}

/// Which circuits to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CircuitFilter {
    /// Only those of this site.
    pub site_id: Option<SiteId>,
}

/// The encoding the gateway answers a device in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireEncoding {
    /// JSON (the default).
    #[default]
    Json,
    /// Binary (postcard).
    Binary,
}

impl WireEncoding {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Binary => "binary",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "json" => Ok(Self::Json),
            "binary" => Ok(Self::Binary),
            _ => Err(names::invalid("encoding", s)),
        }
    }
}

impl From<WireEncoding> for Encoding {
    fn from(e: WireEncoding) -> Self {
        match e {
            WireEncoding::Json => Self::Json,
            WireEncoding::Binary => Self::Binary,
        }
    }
}

/// A device's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFields {
    /// What kind of device.
    pub kind: DeviceKind,
    /// Its lifecycle state. Commissioned and in-service devices need a site and a grid cell.
    pub state: DeviceState,
    /// The site it is installed at.
    pub site_id: Option<SiteId>,
    /// The room (of that site).
    pub room_id: Option<RoomId>,
    /// The circuit it watches (of that site).
    pub circuit_id: Option<CircuitId>,
    /// The grid cell whose workers get its alerts (an area of level grid).
    pub grid_id: Option<GridId>,
    /// Its configuration: set-points and delays per channel, intervals, version. Stored in the
    /// protocol's JSON; checked against the GB ranges.
    pub config: Config,
    /// The encoding the gateway answers it in.
    pub encoding: WireEncoding,
    /// The hash of its MQTT credential (made by the caller; never shown by the API).
    #[serde(default, skip_serializing)]
    pub credential_hash: Option<String>,
}

/// A device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Its id.
    pub id: DeviceId,
    /// Its data.
    #[serde(flatten)]
    pub fields: DeviceFields,
    /// When registered.
    pub created_ms: UnixMs,
    /// When last changed.
    pub updated_ms: UnixMs,
}

impl Device {
    /// What the engine needs of it.
    pub fn spec(&self) -> Option<DeviceSpec> {
        Some(DeviceSpec {
            id: self.id.clone(),
            grid: self.fields.grid_id.clone()?,
            channels: self.fields.config.channels.iter().copied().collect(),
            heartbeat_interval_s: self.fields.config.heartbeat_interval_s,
        })
    }
}

/// Which devices to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only in this state.
    pub state: Option<DeviceState>,
    /// Only of this kind.
    pub kind: Option<DeviceKind>,
    /// Only at this site.
    pub site_id: Option<SiteId>,
    /// Only those whose grid cell is this area or below it.
    pub area_id: Option<AreaId>,
    /// At most this many (0: 1000; at most 10 000).
    pub limit: u32,
    /// Skip this many (by id order).
    pub offset: u32,
}

/// A device that published without being registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDevice {
    /// The id it used.
    pub id: DeviceId,
    /// First message, ms.
    pub first_seen_ms: UnixMs,
    /// Latest message, ms.
    pub last_seen_ms: UnixMs,
    /// Messages seen.
    pub messages: u64,
    /// The topic of the latest message.
    pub last_topic: String,
}

fn audit(
    conn: &Connection,
    actor: Actor<'_>,
    action: &str,
    subject: String,
    detail: &impl Serialize,
) -> Result<(), StoreError> {
    let detail = serde_json::to_string(detail)?;
    insert_audit(conn, actor.now, actor.who, action, &subject, &detail)
}

fn exists(conn: &Connection, sql: &str, id: impl rusqlite::ToSql) -> Result<bool, StoreError> {
    Ok(conn.query_row(sql, [id], |_| Ok(())).optional()?.is_some())
}

fn count(conn: &Connection, sql: &str, id: impl rusqlite::ToSql) -> Result<i64, StoreError> {
    Ok(conn.query_row(sql, [id], |r| r.get(0))?)
}

/// Fails with [`StoreError::InUse`] if `sql` (one `?`: the id) counts any row.
fn refuse_if_used(
    conn: &Connection,
    what: &'static str,
    id: &str,
    checks: &[(&str, &'static str)],
    param: &Value,
) -> Result<(), StoreError> {
    for (sql, by) in checks {
        if count(conn, sql, param)? > 0 {
            return Err(StoreError::InUse {
                what,
                id: id.to_string(),
                by,
            });
        }
    }
    Ok(())
}

fn area_level(conn: &Connection, id: &str) -> Result<Option<AreaLevel>, StoreError> {
    let level: Option<String> = conn
        .query_row("SELECT level FROM areas WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    level.map(|l| l.parse()).transpose()
}

fn require_area(conn: &Connection, id: &AreaId) -> Result<AreaLevel, StoreError> {
    area_level(conn, id.as_str())?.ok_or_else(|| StoreError::UnknownArea(id.to_string()))
}

fn site_of_room(conn: &Connection, id: RoomId) -> Result<SiteId, StoreError> {
    conn.query_row("SELECT site_id FROM rooms WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or(StoreError::UnknownRoom(id))
}

fn circuit_row(
    conn: &Connection,
    id: CircuitId,
) -> Result<(SiteId, Option<CircuitId>), StoreError> {
    conn.query_row(
        "SELECT site_id, parent_id FROM circuits WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or(StoreError::UnknownCircuit(id))
}

fn require_site(conn: &Connection, id: SiteId) -> Result<(), StoreError> {
    if exists(conn, "SELECT 1 FROM sites WHERE id = ?1", id)? {
        Ok(())
    } else {
        Err(StoreError::UnknownSite(id))
    }
}

fn changed(conn: &Connection, unknown: StoreError) -> Result<(), StoreError> {
    if conn.changes() == 0 {
        Err(unknown)
    } else {
        Ok(())
    }
}

const AREA_COLS: &str = "id, parent_id, level, name, created_ms, updated_ms";

fn area_row(r: &Row<'_>) -> Result<Area, StoreError> {
    let id: String = r.get(0)?;
    let parent: Option<String> = r.get(1)?;
    let level: String = r.get(2)?;
    Ok(Area {
        id: names::grid_id(&id)?,
        fields: AreaFields {
            parent_id: parent.as_deref().map(names::grid_id).transpose()?,
            level: level.parse()?,
            name: r.get(3)?,
        },
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
    })
}

const WORKER_COLS: &str =
    "id, name, area_id, phone, mqtt_topic, webhook_url, created_ms, updated_ms";

fn worker_row(r: &Row<'_>) -> Result<Worker, StoreError> {
    let area: String = r.get(2)?;
    Ok(Worker {
        id: r.get(0)?,
        fields: WorkerFields {
            name: r.get(1)?,
            area_id: names::grid_id(&area)?,
            phone: r.get(3)?,
            mqtt_topic: r.get(4)?,
            webhook_url: r.get(5)?,
        },
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

const SITE_COLS: &str =
    "id, name, address, owner_name, owner_phone, area_id, created_ms, updated_ms";

fn site_row(r: &Row<'_>) -> Result<Site, StoreError> {
    let area: String = r.get(5)?;
    Ok(Site {
        id: r.get(0)?,
        fields: SiteFields {
            name: r.get(1)?,
            address: r.get(2)?,
            owner_name: r.get(3)?,
            owner_phone: r.get(4)?,
            area_id: names::grid_id(&area)?,
        },
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

const ROOM_COLS: &str = "id, site_id, name, created_ms, updated_ms";

fn room_row(r: &Row<'_>) -> Result<Room, StoreError> {
    Ok(Room {
        id: r.get(0)?,
        fields: RoomFields {
            site_id: r.get(1)?,
            name: r.get(2)?,
        },
        created_ms: r.get(3)?,
        updated_ms: r.get(4)?,
    })
}

const CIRCUIT_COLS: &str = "id, site_id, parent_id, name, created_ms, updated_ms";

fn circuit_from(r: &Row<'_>) -> Result<Circuit, StoreError> {
    Ok(Circuit {
        id: r.get(0)?,
        fields: CircuitFields {
            site_id: r.get(1)?,
            parent_id: r.get(2)?,
            name: r.get(3)?,
        },
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
    })
}

const DEVICE_COLS: &str = "id, kind, state, site_id, room_id, circuit_id, grid_id, config, \
     encoding, credential_hash, created_ms, updated_ms";

fn device_row(r: &Row<'_>) -> Result<Device, StoreError> {
    let id: String = r.get(0)?;
    let kind: String = r.get(1)?;
    let state: String = r.get(2)?;
    let grid: Option<String> = r.get(6)?;
    let config: String = r.get(7)?;
    let encoding: String = r.get(8)?;
    let Message::Config(config) = sql::from_protocol_json(DeviceTopic::Config, &config)? else {
        return Err(names::invalid("device config", &config));
    };
    Ok(Device {
        id: names::device_id(&id)?,
        fields: DeviceFields {
            kind: names::device_kind(&kind)?,
            state: names::device_state(&state)?,
            site_id: r.get(3)?,
            room_id: r.get(4)?,
            circuit_id: r.get(5)?,
            grid_id: grid.as_deref().map(names::grid_id).transpose()?,
            config,
            encoding: WireEncoding::parse(&encoding)?,
            credential_hash: r.get(9)?,
        },
        created_ms: r.get(10)?,
        updated_ms: r.get(11)?,
    })
}

/// Runs `sql` with `params` and maps each row.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn one<T>(
    conn: &Connection,
    sql: &str,
    param: Value,
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    Ok(rows(conn, sql, &[param], map)?.pop())
}

// ---- validation -------------------------------------------------------------------------------

fn check_area(
    conn: &Connection,
    id: &AreaId,
    f: &AreaFields,
    is_new: bool,
) -> Result<(), StoreError> {
    if let Some(parent) = &f.parent_id {
        if parent == id {
            return Err(StoreError::Mismatch(format!(
                "area {id} cannot be its own parent"
            )));
        }
        let level = require_area(conn, parent)?;
        if level <= f.level {
            return Err(StoreError::Mismatch(format!(
                "area {id} ({}) cannot be under {parent} ({level}): a parent is of a higher level",
                f.level
            )));
        }
    }
    if !is_new {
        let mut stmt = conn.prepare_cached("SELECT id, level FROM areas WHERE parent_id = ?1")?;
        let children = stmt.query_map([id.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for child in children {
            let (child, level) = child?;
            let level: AreaLevel = level.parse()?;
            if level >= f.level {
                return Err(StoreError::Mismatch(format!(
                    "area {id} cannot become {}: its child {child} is {level}",
                    f.level
                )));
            }
        }
        if f.level != AreaLevel::Grid
            && count(
                conn,
                "SELECT count(*) FROM devices WHERE grid_id = ?1",
                id.as_str(),
            )? > 0
        {
            return Err(StoreError::InUse {
                what: "area",
                id: id.to_string(),
                by: "devices (as their grid cell): it must stay a grid cell",
            });
        }
    }
    Ok(())
}

fn check_circuit(
    conn: &Connection,
    id: Option<CircuitId>,
    f: &CircuitFields,
) -> Result<(), StoreError> {
    require_site(conn, f.site_id)?;
    let mut next = f.parent_id;
    let mut first = true;
    // Walk up from the parent: same site, and never back to this circuit.
    while let Some(p) = next {
        if Some(p) == id {
            return Err(StoreError::Mismatch(format!(
                "circuit {p} cannot be fed from itself or from a circuit it feeds"
            )));
        }
        let (site, parent) = circuit_row(conn, p)?;
        if first && site != f.site_id {
            return Err(StoreError::Mismatch(format!(
                "circuit {p} is of site {site}, not of site {}",
                f.site_id
            )));
        }
        first = false;
        next = parent;
    }
    Ok(())
}

fn check_device(conn: &Connection, id: &DeviceId, f: &DeviceFields) -> Result<(), StoreError> {
    if let Some(site) = f.site_id {
        require_site(conn, site)?;
    }
    let needs_site =
        |what: &str| StoreError::Mismatch(format!("device {id}: a {what} needs the device's site"));
    if let Some(room) = f.room_id {
        let site = site_of_room(conn, room)?;
        match f.site_id {
            None => return Err(needs_site("room")),
            Some(s) if s != site => {
                return Err(StoreError::Mismatch(format!(
                    "device {id}: room {room} is of site {site}, not of site {s}"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(circuit) = f.circuit_id {
        let (site, _) = circuit_row(conn, circuit)?;
        match f.site_id {
            None => return Err(needs_site("circuit")),
            Some(s) if s != site => {
                return Err(StoreError::Mismatch(format!(
                    "device {id}: circuit {circuit} is of site {site}, not of site {s}"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(grid) = &f.grid_id
        && require_area(conn, grid)? != AreaLevel::Grid
    {
        return Err(StoreError::NotAGrid(grid.to_string()));
    }
    if matches!(f.state, DeviceState::Commissioned | DeviceState::InService) {
        let incomplete = |missing| StoreError::Incomplete {
            device: id.to_string(),
            state: device_state_str(f.state),
            missing,
        };
        if f.site_id.is_none() {
            return Err(incomplete("a site"));
        }
        if f.grid_id.is_none() {
            return Err(incomplete("a grid cell"));
        }
    }
    f.config
        .validate(&Limits::GB)
        .map_err(|e| StoreError::InvalidConfig(e.to_string()))
}

/// Inserts one device inside the caller's transaction (and takes it off the pending list).
fn insert_device(
    tx: &Connection,
    id: &DeviceId,
    fields: &DeviceFields,
    actor: Actor<'_>,
) -> Result<Device, StoreError> {
    let config = sql::protocol_json(&Message::Config(fields.config.clone()))?;
    if exists(tx, "SELECT 1 FROM devices WHERE id = ?1", id.as_str())? {
        return Err(StoreError::AlreadyExists {
            what: "device",
            id: id.to_string(),
        });
    }
    check_device(tx, id, fields)?;
    tx.execute(
        "INSERT INTO devices (id, kind, state, site_id, room_id, circuit_id, grid_id, \
             config, config_version, heartbeat_interval_s, encoding, credential_hash, \
             created_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            id.as_str(),
            device_kind_str(fields.kind),
            device_state_str(fields.state),
            fields.site_id,
            fields.room_id,
            fields.circuit_id,
            fields.grid_id.as_ref().map(GridId::as_str),
            config,
            fields.config.version,
            fields.config.heartbeat_interval_s,
            fields.encoding.as_str(),
            fields.credential_hash,
            actor.now
        ],
    )?;
    tx.execute("DELETE FROM pending_devices WHERE id = ?1", [id.as_str()])?;
    let device = Device {
        id: id.clone(),
        fields: fields.clone(),
        created_ms: actor.now,
        updated_ms: actor.now,
    };
    audit(tx, actor, "device.create", format!("device/{id}"), &device)?;
    Ok(device)
}

fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

impl Store {
    // ---- areas --------------------------------------------------------------------------------

    /// Creates an area.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; [`StoreError::UnknownArea`] for the parent;
    /// [`StoreError::Mismatch`] if the parent is not of a higher level.
    pub fn create_area(
        &self,
        id: &AreaId,
        fields: &AreaFields,
        actor: Actor<'_>,
    ) -> Result<Area, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            if area_level(&tx, id.as_str())?.is_some() {
                return Err(StoreError::AlreadyExists {
                    what: "area",
                    id: id.to_string(),
                });
            }
            check_area(&tx, id, fields, true)?;
            tx.execute(
                "INSERT INTO areas (id, parent_id, level, name, created_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    id.as_str(),
                    fields.parent_id.as_ref().map(GridId::as_str),
                    fields.level.as_str(),
                    fields.name,
                    actor.now
                ],
            )?;
            let area = Area {
                id: id.clone(),
                fields: fields.clone(),
                created_ms: actor.now,
                updated_ms: actor.now,
            };
            audit(&tx, actor, "area.create", format!("area/{id}"), &area)?;
            tx.commit()?;
            Ok(area)
        })
    }

    /// Changes an area.
    ///
    /// # Errors
    /// [`StoreError::UnknownArea`]; [`StoreError::Mismatch`] if the levels no longer fit
    /// (parent above, children below); [`StoreError::InUse`] if devices use it as their grid
    /// cell and it would stop being one.
    pub fn update_area(
        &self,
        id: &AreaId,
        fields: &AreaFields,
        actor: Actor<'_>,
    ) -> Result<Area, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, id)?;
            check_area(&tx, id, fields, false)?;
            tx.execute(
                "UPDATE areas SET parent_id = ?2, level = ?3, name = ?4, updated_ms = ?5 \
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    fields.parent_id.as_ref().map(GridId::as_str),
                    fields.level.as_str(),
                    fields.name,
                    actor.now
                ],
            )?;
            let area = one(
                &tx,
                &format!("SELECT {AREA_COLS} FROM areas WHERE id = ?"),
                Value::Text(id.to_string()),
                area_row,
            )?
            .ok_or_else(|| StoreError::UnknownArea(id.to_string()))?;
            audit(&tx, actor, "area.update", format!("area/{id}"), &area)?;
            tx.commit()?;
            Ok(area)
        })
    }

    /// Deletes an area nothing refers to.
    ///
    /// # Errors
    /// [`StoreError::UnknownArea`]; [`StoreError::InUse`] while areas, workers, sites or
    /// devices refer to it.
    pub fn delete_area(&self, id: &AreaId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, id)?;
            refuse_if_used(
                &tx,
                "area",
                id.as_str(),
                &[
                    ("SELECT count(*) FROM areas WHERE parent_id = ?1", "areas"),
                    ("SELECT count(*) FROM workers WHERE area_id = ?1", "workers"),
                    ("SELECT count(*) FROM sites WHERE area_id = ?1", "sites"),
                    ("SELECT count(*) FROM devices WHERE grid_id = ?1", "devices"),
                ],
                &Value::Text(id.to_string()),
            )?;
            tx.execute("DELETE FROM areas WHERE id = ?1", [id.as_str()])?;
            audit(&tx, actor, "area.delete", format!("area/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// An area.
    ///
    /// # Errors
    /// A database error.
    pub fn area(&self, id: &AreaId) -> Result<Option<Area>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {AREA_COLS} FROM areas WHERE id = ?"),
                Value::Text(id.to_string()),
                area_row,
            )
        })
    }

    /// Areas, by id.
    ///
    /// # Errors
    /// A database error.
    pub fn areas(&self, filter: &AreaFilter) -> Result<Vec<Area>, StoreError> {
        let mut w = Where::default();
        if let Some(p) = &filter.parent_id {
            w.eq("parent_id = ?", p.to_string());
        }
        if let Some(l) = filter.level {
            w.eq("level = ?", l.as_str().to_string());
        }
        let sql = format!("SELECT {AREA_COLS} FROM areas{} ORDER BY id", w.sql());
        self.read(|c| rows(c, &sql, &w.params, area_row))
    }

    /// The area and the areas above it, nearest first: the escalation path of a grid cell.
    ///
    /// # Errors
    /// [`StoreError::UnknownArea`].
    pub fn area_path(&self, id: &AreaId) -> Result<Vec<Area>, StoreError> {
        self.read(|c| {
            let path = rows(
                c,
                &format!(
                    "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 \
                     UNION ALL SELECT a.parent_id, up.depth + 1 FROM areas a JOIN up ON a.id = up.id \
                     WHERE a.parent_id IS NOT NULL AND up.depth < 16) \
                     SELECT {} FROM up JOIN areas a ON a.id = up.id ORDER BY up.depth",
                    AREA_COLS
                        .split(", ")
                        .map(|col| format!("a.{col}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[Value::Text(id.to_string())],
                area_row,
            )?;
            if path.is_empty() {
                return Err(StoreError::UnknownArea(id.to_string()));
            }
            Ok(path)
        })
    }

    // ---- workers ------------------------------------------------------------------------------

    /// Creates a worker.
    ///
    /// # Errors
    /// [`StoreError::UnknownArea`].
    pub fn create_worker(
        &self,
        fields: &WorkerFields,
        actor: Actor<'_>,
    ) -> Result<Worker, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, &fields.area_id)?;
            tx.execute(
                "INSERT INTO workers (name, area_id, phone, mqtt_topic, webhook_url, created_ms, \
                 updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    fields.name,
                    fields.area_id.as_str(),
                    fields.phone,
                    fields.mqtt_topic,
                    fields.webhook_url,
                    actor.now
                ],
            )?;
            let worker = Worker {
                id: tx.last_insert_rowid(),
                fields: fields.clone(),
                created_ms: actor.now,
                updated_ms: actor.now,
            };
            audit(
                &tx,
                actor,
                "worker.create",
                format!("worker/{}", worker.id),
                &worker,
            )?;
            tx.commit()?;
            Ok(worker)
        })
    }

    /// Changes a worker.
    ///
    /// # Errors
    /// [`StoreError::UnknownWorker`], [`StoreError::UnknownArea`].
    pub fn update_worker(
        &self,
        id: WorkerId,
        fields: &WorkerFields,
        actor: Actor<'_>,
    ) -> Result<Worker, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, &fields.area_id)?;
            tx.execute(
                "UPDATE workers SET name = ?2, area_id = ?3, phone = ?4, mqtt_topic = ?5, \
                 webhook_url = ?6, updated_ms = ?7 WHERE id = ?1",
                params![
                    id,
                    fields.name,
                    fields.area_id.as_str(),
                    fields.phone,
                    fields.mqtt_topic,
                    fields.webhook_url,
                    actor.now
                ],
            )?;
            changed(&tx, StoreError::UnknownWorker(id))?;
            let worker = one(
                &tx,
                &format!("SELECT {WORKER_COLS} FROM workers WHERE id = ?"),
                Value::Integer(id),
                worker_row,
            )?
            .ok_or(StoreError::UnknownWorker(id))?;
            audit(&tx, actor, "worker.update", format!("worker/{id}"), &worker)?;
            tx.commit()?;
            Ok(worker)
        })
    }

    /// Deletes a worker.
    ///
    /// # Errors
    /// [`StoreError::UnknownWorker`].
    pub fn delete_worker(&self, id: WorkerId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            tx.execute("DELETE FROM workers WHERE id = ?1", [id])?;
            changed(&tx, StoreError::UnknownWorker(id))?;
            audit(&tx, actor, "worker.delete", format!("worker/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A worker.
    ///
    /// # Errors
    /// A database error.
    pub fn worker(&self, id: WorkerId) -> Result<Option<Worker>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {WORKER_COLS} FROM workers WHERE id = ?"),
                Value::Integer(id),
                worker_row,
            )
        })
    }

    /// Workers, by id.
    ///
    /// # Errors
    /// A database error.
    pub fn workers(&self, filter: &WorkerFilter) -> Result<Vec<Worker>, StoreError> {
        let mut w = Where::default();
        if let Some(a) = &filter.area_id {
            w.eq("area_id = ?", a.to_string());
        }
        let sql = format!("SELECT {WORKER_COLS} FROM workers{} ORDER BY id", w.sql());
        self.read(|c| rows(c, &sql, &w.params, worker_row))
    }

    // ---- sites --------------------------------------------------------------------------------

    /// Creates a site.
    ///
    /// # Errors
    /// [`StoreError::UnknownArea`].
    pub fn create_site(&self, fields: &SiteFields, actor: Actor<'_>) -> Result<Site, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, &fields.area_id)?;
            tx.execute(
                "INSERT INTO sites (name, address, owner_name, owner_phone, area_id, created_ms, \
                 updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    fields.name,
                    fields.address,
                    fields.owner_name,
                    fields.owner_phone,
                    fields.area_id.as_str(),
                    actor.now
                ],
            )?;
            let site = Site {
                id: tx.last_insert_rowid(),
                fields: fields.clone(),
                created_ms: actor.now,
                updated_ms: actor.now,
            };
            audit(
                &tx,
                actor,
                "site.create",
                format!("site/{}", site.id),
                &site,
            )?;
            tx.commit()?;
            Ok(site)
        })
    }

    /// Changes a site.
    ///
    /// # Errors
    /// [`StoreError::UnknownSite`], [`StoreError::UnknownArea`].
    pub fn update_site(
        &self,
        id: SiteId,
        fields: &SiteFields,
        actor: Actor<'_>,
    ) -> Result<Site, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_area(&tx, &fields.area_id)?;
            tx.execute(
                "UPDATE sites SET name = ?2, address = ?3, owner_name = ?4, owner_phone = ?5, \
                 area_id = ?6, updated_ms = ?7 WHERE id = ?1",
                params![
                    id,
                    fields.name,
                    fields.address,
                    fields.owner_name,
                    fields.owner_phone,
                    fields.area_id.as_str(),
                    actor.now
                ],
            )?;
            changed(&tx, StoreError::UnknownSite(id))?;
            let site = one(
                &tx,
                &format!("SELECT {SITE_COLS} FROM sites WHERE id = ?"),
                Value::Integer(id),
                site_row,
            )?
            .ok_or(StoreError::UnknownSite(id))?;
            audit(&tx, actor, "site.update", format!("site/{id}"), &site)?;
            tx.commit()?;
            Ok(site)
        })
    }

    /// Deletes a site nothing refers to.
    ///
    /// # Errors
    /// [`StoreError::UnknownSite`]; [`StoreError::InUse`] while rooms, circuits or devices
    /// refer to it.
    pub fn delete_site(&self, id: SiteId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_site(&tx, id)?;
            refuse_if_used(
                &tx,
                "site",
                &id.to_string(),
                &[
                    ("SELECT count(*) FROM rooms WHERE site_id = ?1", "rooms"),
                    (
                        "SELECT count(*) FROM circuits WHERE site_id = ?1",
                        "circuits",
                    ),
                    ("SELECT count(*) FROM devices WHERE site_id = ?1", "devices"),
                ],
                &Value::Integer(id),
            )?;
            tx.execute("DELETE FROM sites WHERE id = ?1", [id])?;
            audit(&tx, actor, "site.delete", format!("site/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A site.
    ///
    /// # Errors
    /// A database error.
    pub fn site(&self, id: SiteId) -> Result<Option<Site>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {SITE_COLS} FROM sites WHERE id = ?"),
                Value::Integer(id),
                site_row,
            )
        })
    }

    /// Sites, by id.
    ///
    /// # Errors
    /// A database error.
    pub fn sites(&self, filter: &SiteFilter) -> Result<Vec<Site>, StoreError> {
        let mut w = Where::default();
        if let Some(a) = &filter.area_id {
            w.in_area("area_id", a.as_str());
        }
        let sql = format!("SELECT {SITE_COLS} FROM sites{} ORDER BY id", w.sql());
        self.read(|c| rows(c, &sql, &w.params, site_row))
    }

    // ---- rooms --------------------------------------------------------------------------------

    /// Creates a room.
    ///
    /// # Errors
    /// [`StoreError::UnknownSite`].
    pub fn create_room(&self, fields: &RoomFields, actor: Actor<'_>) -> Result<Room, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            require_site(&tx, fields.site_id)?;
            tx.execute(
                "INSERT INTO rooms (site_id, name, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)",
                params![fields.site_id, fields.name, actor.now],
            )?;
            let room = Room {
                id: tx.last_insert_rowid(),
                fields: fields.clone(),
                created_ms: actor.now,
                updated_ms: actor.now,
            };
            audit(
                &tx,
                actor,
                "room.create",
                format!("room/{}", room.id),
                &room,
            )?;
            tx.commit()?;
            Ok(room)
        })
    }

    /// Changes a room.
    ///
    /// # Errors
    /// [`StoreError::UnknownRoom`], [`StoreError::UnknownSite`]; [`StoreError::InUse`] when
    /// moving it to another site while devices are in it.
    pub fn update_room(
        &self,
        id: RoomId,
        fields: &RoomFields,
        actor: Actor<'_>,
    ) -> Result<Room, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let site = site_of_room(&tx, id)?;
            require_site(&tx, fields.site_id)?;
            if site != fields.site_id {
                refuse_if_used(
                    &tx,
                    "room",
                    &id.to_string(),
                    &[("SELECT count(*) FROM devices WHERE room_id = ?1", "devices")],
                    &Value::Integer(id),
                )?;
            }
            tx.execute(
                "UPDATE rooms SET site_id = ?2, name = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, fields.site_id, fields.name, actor.now],
            )?;
            let room = one(
                &tx,
                &format!("SELECT {ROOM_COLS} FROM rooms WHERE id = ?"),
                Value::Integer(id),
                room_row,
            )?
            .ok_or(StoreError::UnknownRoom(id))?;
            audit(&tx, actor, "room.update", format!("room/{id}"), &room)?;
            tx.commit()?;
            Ok(room)
        })
    }

    /// Deletes a room no device is in.
    ///
    /// # Errors
    /// [`StoreError::UnknownRoom`]; [`StoreError::InUse`].
    pub fn delete_room(&self, id: RoomId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            site_of_room(&tx, id)?;
            refuse_if_used(
                &tx,
                "room",
                &id.to_string(),
                &[("SELECT count(*) FROM devices WHERE room_id = ?1", "devices")],
                &Value::Integer(id),
            )?;
            tx.execute("DELETE FROM rooms WHERE id = ?1", [id])?;
            audit(&tx, actor, "room.delete", format!("room/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A room.
    ///
    /// # Errors
    /// A database error.
    pub fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {ROOM_COLS} FROM rooms WHERE id = ?"),
                Value::Integer(id),
                room_row,
            )
        })
    }

    /// Rooms, by id.
    ///
    /// # Errors
    /// A database error.
    pub fn rooms(&self, filter: &RoomFilter) -> Result<Vec<Room>, StoreError> {
        let mut w = Where::default();
        if let Some(s) = filter.site_id {
            w.eq("site_id = ?", s);
        }
        let sql = format!("SELECT {ROOM_COLS} FROM rooms{} ORDER BY id", w.sql());
        self.read(|c| rows(c, &sql, &w.params, room_row))
    }

    // ---- circuits -----------------------------------------------------------------------------

    /// Creates a circuit.
    ///
    /// # Errors
    /// [`StoreError::UnknownSite`], [`StoreError::UnknownCircuit`] (parent);
    /// [`StoreError::Mismatch`] if the parent is of another site.
    pub fn create_circuit(
        &self,
        fields: &CircuitFields,
        actor: Actor<'_>,
    ) -> Result<Circuit, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            check_circuit(&tx, None, fields)?;
            tx.execute(
                "INSERT INTO circuits (site_id, parent_id, name, created_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![fields.site_id, fields.parent_id, fields.name, actor.now],
            )?;
            let circuit = Circuit {
                id: tx.last_insert_rowid(),
                fields: fields.clone(),
                created_ms: actor.now,
                updated_ms: actor.now,
            };
            audit(
                &tx,
                actor,
                "circuit.create",
                format!("circuit/{}", circuit.id),
                &circuit,
            )?;
            tx.commit()?;
            Ok(circuit)
        })
    }

    /// Changes a circuit.
    ///
    /// # Errors
    /// As [`create_circuit`](Self::create_circuit), plus [`StoreError::Mismatch`] for a loop
    /// in the supply tree and [`StoreError::InUse`] when moving it to another site while
    /// circuits or devices hang off it.
    pub fn update_circuit(
        &self,
        id: CircuitId,
        fields: &CircuitFields,
        actor: Actor<'_>,
    ) -> Result<Circuit, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let (site, _) = circuit_row(&tx, id)?;
            check_circuit(&tx, Some(id), fields)?;
            if site != fields.site_id {
                refuse_if_used(
                    &tx,
                    "circuit",
                    &id.to_string(),
                    &[
                        (
                            "SELECT count(*) FROM circuits WHERE parent_id = ?1",
                            "circuits",
                        ),
                        (
                            "SELECT count(*) FROM devices WHERE circuit_id = ?1",
                            "devices",
                        ),
                    ],
                    &Value::Integer(id),
                )?;
            }
            tx.execute(
                "UPDATE circuits SET site_id = ?2, parent_id = ?3, name = ?4, updated_ms = ?5 \
                 WHERE id = ?1",
                params![id, fields.site_id, fields.parent_id, fields.name, actor.now],
            )?;
            let circuit = one(
                &tx,
                &format!("SELECT {CIRCUIT_COLS} FROM circuits WHERE id = ?"),
                Value::Integer(id),
                circuit_from,
            )?
            .ok_or(StoreError::UnknownCircuit(id))?;
            audit(
                &tx,
                actor,
                "circuit.update",
                format!("circuit/{id}"),
                &circuit,
            )?;
            tx.commit()?;
            Ok(circuit)
        })
    }

    /// Deletes a circuit nothing hangs off.
    ///
    /// # Errors
    /// [`StoreError::UnknownCircuit`]; [`StoreError::InUse`].
    pub fn delete_circuit(&self, id: CircuitId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            circuit_row(&tx, id)?;
            refuse_if_used(
                &tx,
                "circuit",
                &id.to_string(),
                &[
                    (
                        "SELECT count(*) FROM circuits WHERE parent_id = ?1",
                        "circuits",
                    ),
                    (
                        "SELECT count(*) FROM devices WHERE circuit_id = ?1",
                        "devices",
                    ),
                ],
                &Value::Integer(id),
            )?;
            tx.execute("DELETE FROM circuits WHERE id = ?1", [id])?;
            audit(&tx, actor, "circuit.delete", format!("circuit/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A circuit.
    ///
    /// # Errors
    /// A database error.
    pub fn circuit(&self, id: CircuitId) -> Result<Option<Circuit>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {CIRCUIT_COLS} FROM circuits WHERE id = ?"),
                Value::Integer(id),
                circuit_from,
            )
        })
    }

    /// Circuits, by id (a parent before the circuits it feeds, as ids increase).
    ///
    /// # Errors
    /// A database error.
    pub fn circuits(&self, filter: &CircuitFilter) -> Result<Vec<Circuit>, StoreError> {
        let mut w = Where::default();
        if let Some(s) = filter.site_id {
            w.eq("site_id = ?", s);
        }
        let sql = format!("SELECT {CIRCUIT_COLS} FROM circuits{} ORDER BY id", w.sql());
        self.read(|c| rows(c, &sql, &w.params, circuit_from))
    }

    // ---- devices ------------------------------------------------------------------------------

    /// Registers a device (and takes it off the pending list).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`]; the `Unknown*` errors for its references;
    /// [`StoreError::NotAGrid`]; [`StoreError::Mismatch`] (a room or circuit of another site);
    /// [`StoreError::Incomplete`] (commissioned or in service without site or grid cell);
    /// [`StoreError::InvalidConfig`].
    pub fn create_device(
        &self,
        id: &DeviceId,
        fields: &DeviceFields,
        actor: Actor<'_>,
    ) -> Result<Device, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let device = insert_device(&tx, id, fields, actor)?;
            tx.commit()?;
            Ok(device)
        })
    }

    /// Registers many devices in **one** transaction (one fsync): all or nothing. The outer
    /// error is the database's; the inner one names the first device that could not be
    /// registered (its index in `devices`, and why), and then none is.
    ///
    /// # Errors
    /// A database error; per device, as [`create_device`](Self::create_device) (a device given
    /// twice is [`StoreError::AlreadyExists`] at its second place).
    pub fn create_devices(
        &self,
        devices: &[(DeviceId, DeviceFields)],
        actor: Actor<'_>,
    ) -> Result<Result<Vec<Device>, (usize, StoreError)>, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let mut created = Vec::with_capacity(devices.len());
            for (i, (id, fields)) in devices.iter().enumerate() {
                match insert_device(&tx, id, fields, actor) {
                    Ok(d) => created.push(d),
                    // Dropping the transaction rolls everything back.
                    Err(e) => return Ok(Err((i, e))),
                }
            }
            tx.commit()?;
            Ok(Ok(created))
        })
    }

    /// Changes a device (all its fields; read it first to change one).
    ///
    /// # Errors
    /// [`StoreError::UnknownDevice`], and as [`create_device`](Self::create_device).
    pub fn update_device(
        &self,
        id: &DeviceId,
        fields: &DeviceFields,
        actor: Actor<'_>,
    ) -> Result<Device, StoreError> {
        let config = sql::protocol_json(&Message::Config(fields.config.clone()))?;
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            if !exists(&tx, "SELECT 1 FROM devices WHERE id = ?1", id.as_str())? {
                return Err(StoreError::UnknownDevice(id.to_string()));
            }
            check_device(&tx, id, fields)?;
            tx.execute(
                "UPDATE devices SET kind = ?2, state = ?3, site_id = ?4, room_id = ?5, \
                 circuit_id = ?6, grid_id = ?7, config = ?8, config_version = ?9, \
                 heartbeat_interval_s = ?10, encoding = ?11, credential_hash = ?12, \
                 updated_ms = ?13 WHERE id = ?1",
                params![
                    id.as_str(),
                    device_kind_str(fields.kind),
                    device_state_str(fields.state),
                    fields.site_id,
                    fields.room_id,
                    fields.circuit_id,
                    fields.grid_id.as_ref().map(GridId::as_str),
                    config,
                    fields.config.version,
                    fields.config.heartbeat_interval_s,
                    fields.encoding.as_str(),
                    fields.credential_hash,
                    actor.now
                ],
            )?;
            let device = one(
                &tx,
                &format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?"),
                Value::Text(id.to_string()),
                device_row,
            )?
            .ok_or_else(|| StoreError::UnknownDevice(id.to_string()))?;
            audit(&tx, actor, "device.update", format!("device/{id}"), &device)?;
            tx.commit()?;
            Ok(device)
        })
    }

    /// Deletes a device that has no journal yet (a mistyped registration). A device with
    /// history is decommissioned instead, never deleted.
    ///
    /// # Errors
    /// [`StoreError::UnknownDevice`]; [`StoreError::InUse`] if it has events or episodes.
    pub fn delete_device(&self, id: &DeviceId, actor: Actor<'_>) -> Result<(), StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            if !exists(&tx, "SELECT 1 FROM devices WHERE id = ?1", id.as_str())? {
                return Err(StoreError::UnknownDevice(id.to_string()));
            }
            refuse_if_used(
                &tx,
                "device",
                id.as_str(),
                &[
                    (
                        "SELECT count(*) FROM events WHERE device = ?1",
                        "journal events",
                    ),
                    (
                        "SELECT count(*) FROM episodes WHERE device = ?1",
                        "episodes",
                    ),
                ],
                &Value::Text(id.to_string()),
            )?;
            tx.execute("DELETE FROM devices WHERE id = ?1", [id.as_str()])?;
            audit(&tx, actor, "device.delete", format!("device/{id}"), &())?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A device.
    ///
    /// # Errors
    /// A database error.
    pub fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.read(|c| {
            one(
                c,
                &format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?"),
                Value::Text(id.to_string()),
                device_row,
            )
        })
    }

    /// Every device, by id, however many (read a page of the largest size at a time).
    ///
    /// # Errors
    /// A database error.
    pub fn all_devices(&self) -> Result<Vec<Device>, StoreError> {
        self.all_devices_paged(10_000)
    }

    pub(crate) fn all_devices_paged(&self, page: u32) -> Result<Vec<Device>, StoreError> {
        let mut all = Vec::new();
        loop {
            let got = self.devices(&DeviceFilter {
                limit: page,
                offset: u32::try_from(all.len()).unwrap_or(u32::MAX),
                ..DeviceFilter::default()
            })?;
            let last = got.len() < page as usize;
            all.extend(got);
            if last {
                return Ok(all);
            }
        }
    }

    /// Devices, by id.
    ///
    /// # Errors
    /// A database error.
    pub fn devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>, StoreError> {
        let mut w = Where::default();
        if let Some(s) = filter.state {
            w.eq("state = ?", device_state_str(s).to_string());
        }
        if let Some(k) = filter.kind {
            w.eq("kind = ?", device_kind_str(k).to_string());
        }
        if let Some(s) = filter.site_id {
            w.eq("site_id = ?", s);
        }
        if let Some(a) = &filter.area_id {
            w.in_area("grid_id", a.as_str());
        }
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices{} ORDER BY id LIMIT {} OFFSET {}",
            w.sql(),
            sql::page(filter.limit, 1000, 10_000),
            filter.offset
        );
        self.read(|c| rows(c, &sql, &w.params, device_row))
    }

    /// What the engine needs at start-up: every commissioned or in-service device.
    ///
    /// # Errors
    /// A database error.
    pub fn device_specs(&self) -> Result<Vec<DeviceSpec>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices \
             WHERE state IN ('commissioned', 'in_service') AND grid_id IS NOT NULL ORDER BY id"
        );
        let devices = self.read(|c| rows(c, &sql, &[], device_row))?;
        Ok(devices.iter().filter_map(Device::spec).collect())
    }

    // ---- pending devices ----------------------------------------------------------------------

    /// Notes that an unregistered device published on `topic` (on the readings connection:
    /// an unknown device that floods never costs the journal an fsync).
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn record_pending(
        &self,
        id: &DeviceId,
        topic: &str,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        self.write_bulk(|conn| {
            conn.prepare_cached(
                "INSERT INTO pending_devices (id, first_seen_ms, last_seen_ms, messages, last_topic) \
                 VALUES (?1, ?2, ?2, 1, ?3) ON CONFLICT(id) DO UPDATE SET \
                 last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), \
                 messages = messages + 1, last_topic = excluded.last_topic",
            )?
            .execute(params![id.as_str(), now, topic])?;
            Ok(())
        })
    }

    /// The devices that published without being registered, latest first.
    ///
    /// # Errors
    /// A database error.
    pub fn list_pending(&self) -> Result<Vec<PendingDevice>, StoreError> {
        self.read(|c| {
            rows(
                c,
                "SELECT id, first_seen_ms, last_seen_ms, messages, last_topic FROM pending_devices \
                 ORDER BY last_seen_ms DESC, id",
                &[],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(PendingDevice {
                        id: names::device_id(&id)?,
                        first_seen_ms: r.get(1)?,
                        last_seen_ms: r.get(2)?,
                        messages: r.get(3)?,
                        last_topic: r.get(4)?,
                    })
                },
            )
        })
    }

    /// Takes a device off the pending list (e.g. it is not ours).
    ///
    /// # Errors
    /// A database error.
    pub fn forget_pending(&self, id: &DeviceId) -> Result<bool, StoreError> {
        self.write_bulk(|conn| {
            Ok(conn.execute("DELETE FROM pending_devices WHERE id = ?1", [id.as_str()])? > 0)
        })
    }
}
