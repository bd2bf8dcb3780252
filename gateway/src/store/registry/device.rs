//! Devices: the registry's richest noun (a configuration checked against the GB ranges, a
//! lifecycle state, a place in a site and a grid cell), and the devices that published without
//! being registered.

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use firegrid_protocols::codec::Encoding;
use firegrid_protocols::message::{Config, Message};
use firegrid_protocols::thresholds::Limits;
use firegrid_protocols::topic::DeviceTopic;
use firegrid_protocols::{DeviceId, GridId};

use super::super::names::{self, device_kind_str, device_state_str};
use super::super::resource::{Noun, Record, Resource, immediate, insert_in, rows};
use super::super::sql::{self, Where};
use super::super::{Store, StoreError};
use super::{
    AreaId, AreaLevel, CircuitId, RoomId, SiteId, circuit_row, require_area, site_of_room, site_row,
};
use crate::model::{DeviceKind, DeviceSpec, DeviceState, UnixMs};

/// Devices per page when the whole registry is read ([`Store::device_pages`]).
const DEVICE_PAGE: u32 = 10_000;

/// A device of a `SELECT * FROM devices` row.
fn device_row(r: &Row<'_>) -> Result<Device, StoreError> {
    let (id, fields) = DeviceFields::from_row(r)?;
    Ok(Device {
        id,
        fields,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
    })
}

/// The encoding the gateway answers a device in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
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
pub type Device = Record<DeviceFields, DeviceId>;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingDevice {
    /// The id it used.
    #[schema(value_type = crate::api::ProtocolId)]
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

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

impl Resource for DeviceFields {
    type Id = DeviceId;
    type NewId = DeviceId;
    type Filter = DeviceFilter;
    const NOUN: Noun = Noun::Device;
    const TABLE: &'static str = "devices";
    const COLUMNS: &'static [&'static str] = &[
        "kind",
        "state",
        "site_id",
        "room_id",
        "circuit_id",
        "grid_id",
        "config",
        "config_version",
        "heartbeat_interval_s",
        "encoding",
        "credential_hash",
    ];
    const USED_BY: &'static [(&'static str, &'static str)] = &[
        (
            "SELECT count(*) FROM events WHERE device = ?1",
            "journal events",
        ),
        (
            "SELECT count(*) FROM episodes WHERE device = ?1",
            "episodes",
        ),
    ];
    /// Its grid cell, or before it has one, its site's area.
    const AREA_SQL: &'static str =
        "coalesce(grid_id, (SELECT s.area_id FROM sites s WHERE s.id = site_id))";

    fn id_value(id: &DeviceId) -> Value {
        Value::Text(id.to_string())
    }
    fn given_id(new: &DeviceId) -> Option<&DeviceId> {
        Some(new)
    }
    fn new_id(new: DeviceId, _rowid: i64) -> DeviceId {
        new
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        let config = sql::protocol_json(&Message::Config(self.config.clone()))?;
        Ok(vec![
            Value::Text(device_kind_str(self.kind).into()),
            Value::Text(device_state_str(self.state).into()),
            opt_int(self.site_id),
            opt_int(self.room_id),
            opt_int(self.circuit_id),
            self.grid_id
                .as_ref()
                .map_or(Value::Null, |g| Value::Text(g.to_string())),
            Value::Text(config),
            Value::Integer(i64::from(self.config.version)),
            Value::Integer(i64::from(self.config.heartbeat_interval_s)),
            Value::Text(self.encoding.as_str().into()),
            self.credential_hash
                .clone()
                .map_or(Value::Null, Value::Text),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(DeviceId, Self), StoreError> {
        let id: String = r.get("id")?;
        let kind: String = r.get("kind")?;
        let state: String = r.get("state")?;
        let grid: Option<String> = r.get("grid_id")?;
        let config: String = r.get("config")?;
        let encoding: String = r.get("encoding")?;
        let Message::Config(config) = sql::from_protocol_json(DeviceTopic::Config, &config)? else {
            return Err(names::invalid("device config", &config));
        };
        Ok((
            names::device_id(&id)?,
            Self {
                kind: names::device_kind(&kind)?,
                state: names::device_state(&state)?,
                site_id: r.get("site_id")?,
                room_id: r.get("room_id")?,
                circuit_id: r.get("circuit_id")?,
                grid_id: grid.as_deref().map(names::grid_id).transpose()?,
                config,
                encoding: WireEncoding::parse(&encoding)?,
                credential_hash: r.get("credential_hash")?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        id: Option<&DeviceId>,
        before: Option<&Self>,
    ) -> Result<(), StoreError> {
        let id = id.map_or_else(String::new, ToString::to_string);
        // Channels bound to circuits of its site (store/channels.rs) keep it at that site.
        if before.is_some_and(|b| b.site_id != self.site_id)
            && super::super::resource::count(
                conn,
                "SELECT count(*) FROM channel_circuits WHERE device = ?1",
                id.as_str(),
            )? > 0
        {
            return Err(StoreError::Mismatch(format!(
                "device {id}: its channels are bound to circuits of its site; unbind them \
                 (PUT /api/v1/devices/{id}/channels/{{n}}/circuit with null) before moving it"
            )));
        }
        if let Some(site) = self.site_id {
            site_row(conn, site)?;
        }
        let needs_site = |what: &str| {
            StoreError::Mismatch(format!("device {id}: a {what} needs the device's site"))
        };
        if let Some(room) = self.room_id {
            let site = site_of_room(conn, room)?;
            match self.site_id {
                None => return Err(needs_site("room")),
                Some(s) if s != site => {
                    return Err(StoreError::Mismatch(format!(
                        "device {id}: room {room} is of site {site}, not of site {s}"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(circuit) = self.circuit_id {
            let (site, _) = circuit_row(conn, circuit)?;
            match self.site_id {
                None => return Err(needs_site("circuit")),
                Some(s) if s != site => {
                    return Err(StoreError::Mismatch(format!(
                        "device {id}: circuit {circuit} is of site {site}, not of site {s}"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(grid) = &self.grid_id
            && require_area(conn, grid)? != AreaLevel::Grid
        {
            return Err(StoreError::NotAGrid(grid.to_string()));
        }
        if matches!(
            self.state,
            DeviceState::Commissioned | DeviceState::InService
        ) {
            let incomplete = |missing| StoreError::Incomplete {
                device: id.clone(),
                state: device_state_str(self.state),
                missing,
            };
            if self.site_id.is_none() {
                return Err(incomplete("a site"));
            }
            if self.grid_id.is_none() {
                return Err(incomplete("a grid cell"));
            }
        }
        self.config
            .validate(&Limits::GB)
            .map_err(|e| StoreError::InvalidConfig(e.to_string()))
    }
    fn filter(filter: &DeviceFilter, w: &mut Where) -> Option<(u32, u32)> {
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
        Some((filter.limit, filter.offset))
    }
    fn area(&self, conn: &Connection, _: Option<&DeviceId>) -> Result<Option<GridId>, StoreError> {
        match (&self.grid_id, self.site_id) {
            (Some(g), _) => Ok(Some(g.clone())),
            (None, Some(site)) => Ok(site_row(conn, site).ok()),
            (None, None) => Ok(None),
        }
    }
    fn inserted(conn: &Connection, id: &DeviceId) -> Result<(), StoreError> {
        // Registered: no longer pending.
        conn.execute("DELETE FROM pending_devices WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }
}

impl Store {
    /// A device (the generic resource's `get`, for the pipeline).
    ///
    /// # Errors
    /// A database error.
    pub fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.get::<DeviceFields>(id)
    }

    /// Devices, by id (the generic resource's `list`, unscoped).
    ///
    /// # Errors
    /// A database error.
    pub fn devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>, StoreError> {
        self.list::<DeviceFields>(filter, None)
    }

    /// Registers many devices in **one** transaction (one fsync): all or nothing. The outer
    /// error is the database's; the inner one names the first device that could not be
    /// registered (its index in `devices`, and why), and then none is.
    ///
    /// # Errors
    /// A database error; per device, as the generic resource's `create` (a device given twice is
    /// [`StoreError::AlreadyExists`] at its second place).
    pub fn create_devices(
        &self,
        devices: &[(DeviceId, DeviceFields)],
        actor: super::super::Actor<'_>,
    ) -> Result<Result<Vec<Device>, (usize, StoreError)>, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let mut created = Vec::with_capacity(devices.len());
            for (i, (id, fields)) in devices.iter().enumerate() {
                match insert_in(&tx, id.clone(), fields, actor) {
                    Ok(d) => created.push(d),
                    // Dropping the transaction rolls everything back.
                    Err(e) => return Ok(Err((i, e))),
                }
            }
            tx.commit()?;
            Ok(Ok(created))
        })
    }

    /// Every device, by id, however many (read a page of the largest size at a time).
    ///
    /// # Errors
    /// A database error.
    pub fn all_devices(&self) -> Result<Vec<Device>, StoreError> {
        self.all_devices_paged(DEVICE_PAGE)
    }

    pub(crate) fn all_devices_paged(&self, page: u32) -> Result<Vec<Device>, StoreError> {
        let mut all = Vec::new();
        self.device_pages(page, |got| all.extend(got))?;
        Ok(all)
    }

    /// Every device, by id, handed to `f` a page of `page` devices at a time: the registry is
    /// never in memory whole (a million devices at start-up), and each page is read by key
    /// (after the last id of the page before), so a page costs the same however far in it is.
    ///
    /// # Errors
    /// A database error.
    pub fn device_pages(
        &self,
        page: u32,
        mut f: impl FnMut(Vec<Device>),
    ) -> Result<(), StoreError> {
        let page = page.max(1);
        let mut after: Option<String> = None;
        loop {
            let got = self.read(|c| {
                rows(
                    c,
                    "SELECT * FROM devices WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
                    &[
                        after.clone().map_or(Value::Null, Value::Text),
                        Value::Integer(i64::from(page)),
                    ],
                    device_row,
                )
            })?;
            let last = got.len() < page as usize;
            after = got.last().map(|d| d.id.to_string());
            if !got.is_empty() {
                f(got);
            }
            if last {
                return Ok(());
            }
        }
    }

    /// What the engine needs at start-up: every commissioned or in-service device.
    ///
    /// # Errors
    /// A database error.
    pub fn device_specs(&self) -> Result<Vec<DeviceSpec>, StoreError> {
        let mut specs = Vec::new();
        self.device_pages(DEVICE_PAGE, |page| {
            specs.extend(
                page.iter()
                    .filter(|d| {
                        matches!(
                            d.fields.state,
                            DeviceState::Commissioned | DeviceState::InService
                        )
                    })
                    .filter_map(Device::spec),
            );
        })?;
        Ok(specs)
    }

    // ---- pending devices ----------------------------------------------------------------------

    /// Notes that an unregistered device published on `topic` (one sighting; see
    /// [`Store::record_pending_many`]).
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn record_pending(
        &self,
        id: &DeviceId,
        topic: &str,
        now: UnixMs,
    ) -> Result<PendingOutcome, StoreError> {
        self.record_pending_many(&[PendingSighting {
            id: id.clone(),
            topic: topic.to_string(),
            messages: 1,
            now,
        }])
    }

    /// Notes unregistered devices' sightings in one transaction (on the readings connection: an
    /// unknown device that floods never costs the journal an fsync). A device already listed is
    /// updated; the list keeps at most
    /// [`StoreOptions::pending_devices_max`](super::super::StoreOptions::pending_devices_max)
    /// devices, the most recently seen: a flood of invented ids costs bounded rows, and a real
    /// device that keeps publishing comes back onto the list after it.
    ///
    /// # Errors
    /// A database error; [`StoreError::DiskFull`].
    pub fn record_pending_many(
        &self,
        sightings: &[PendingSighting],
    ) -> Result<PendingOutcome, StoreError> {
        let max = self.options().pending_devices_max;
        self.write_bulk(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut outcome = PendingOutcome::default();
            {
                let mut update = tx.prepare_cached(
                    "UPDATE pending_devices SET last_seen_ms = max(last_seen_ms, ?2), \
                     messages = messages + ?3, last_topic = ?4 WHERE id = ?1",
                )?;
                let mut new = Vec::new();
                for s in sightings {
                    let messages = i64::try_from(s.messages).unwrap_or(i64::MAX);
                    if update.execute(params![s.id.as_str(), s.now, messages, s.topic])? > 0 {
                        outcome.recorded += 1;
                    } else {
                        new.push((s, messages));
                    }
                }
                // More new devices than the list holds: the last ones of the batch are kept.
                let skip = new.len().saturating_sub(max);
                let listed: i64 =
                    tx.query_row("SELECT count(*) FROM pending_devices", [], |r| r.get(0))?;
                let listed = usize::try_from(listed).unwrap_or(usize::MAX);
                let evict = (listed + new.len() - skip).saturating_sub(max);
                if evict > 0 {
                    tx.execute(
                        "DELETE FROM pending_devices WHERE id IN (SELECT id FROM pending_devices \
                         ORDER BY last_seen_ms, id LIMIT ?1)",
                        [sql::int(evict as u64)?],
                    )?;
                }
                let mut insert = tx.prepare_cached(
                    "INSERT INTO pending_devices (id, first_seen_ms, last_seen_ms, messages, \
                     last_topic) VALUES (?1, ?2, ?2, ?3, ?4)",
                )?;
                for (s, messages) in &new[skip..] {
                    insert.execute(params![s.id.as_str(), s.now, messages, s.topic])?;
                }
                outcome.recorded += (new.len() - skip) as u64;
                outcome.dropped = (skip + evict) as u64;
            }
            tx.commit()?;
            Ok(outcome)
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

/// Sightings of one unregistered device (coalesced per batch by the pipeline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSighting {
    /// The device id it published under.
    pub id: DeviceId,
    /// The last topic it published on.
    pub topic: String,
    /// Messages seen.
    pub messages: u64,
    /// When the last was seen.
    pub now: UnixMs,
}

/// What [`Store::record_pending_many`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingOutcome {
    /// Devices listed or updated.
    pub recorded: u64,
    /// Devices dropped from the list (the least recently seen) or never put on it because it
    /// was full.
    pub dropped: u64,
}
