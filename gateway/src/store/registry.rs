//! The registry's nouns: areas (district → street → community → grid cell), workers, sites,
//! rooms, circuits, devices ([`device`]), and the devices that published without being
//! registered.
//!
//! Each noun is its fields type and an impl of [`Resource`] saying what is particular to it
//! (columns, checks, what refuses a deletion, filters, the area it lies in); creating, reading,
//! listing, changing and deleting are written once, in [`super::resource`]. Every change is
//! checked (references exist and fit together: a typed error says which does not) and audited
//! in the same transaction, with who made it.

mod area;
pub(super) mod device;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use firegrid_protocols::GridId;

use super::StoreError;
use super::names;
use super::resource::{Noun, Record, Resource, refuse_if_used, unknown};
use super::sql::Where;

pub(super) use area::require_area;
pub use area::{Area, AreaFields, AreaFilter, AreaLevel};
pub use device::{
    Device, DeviceFields, DeviceFilter, PendingDevice, PendingOutcome, PendingSighting,
    WireEncoding,
};

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

/// A worker's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerFields {
    /// Name.
    pub name: String,
    /// The area they answer for (a grid cell, or higher for escalations).
    #[schema(value_type = crate::api::ProtocolId)]
    pub area_id: AreaId,
    /// Phone number.
    pub phone: Option<String>,
    /// MQTT topic their app listens on, if not the area's alert topic.
    pub mqtt_topic: Option<String>,
    /// Webhook to call.
    pub webhook_url: Option<String>,
    /// What the webhook expects: firegrid's signed JSON, or an IM group robot's message.
    #[serde(default)]
    pub webhook_format: WebhookFormat,
    /// A DingTalk robot's signing secret (`SEC…`, "加签"): its requests then carry `timestamp`
    /// and `sign` (`notify/robot.rs`). Write-only: never shown by the API; a `PUT` without it
    /// clears it.
    #[serde(default, skip_serializing)]
    pub webhook_secret: Option<String>,
}

/// What a worker's webhook expects ([`crate::notify::people`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// firegrid's person alert as JSON, timestamped and signed like the `[[webhooks]]`.
    #[default]
    Json,
    /// A DingTalk group robot (`{"msgtype":"text",...}`, `errcode` 0 is delivery).
    Dingtalk,
    /// A WeCom (WeChat Work) group robot (`{"msgtype":"text",...}`, `errcode` 0 is delivery).
    Wecom,
}

impl WebhookFormat {
    /// The name in the API and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Dingtalk => "dingtalk",
            Self::Wecom => "wecom",
        }
    }

    /// The format of a name.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the value.
    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "json" => Ok(Self::Json),
            "dingtalk" => Ok(Self::Dingtalk),
            "wecom" => Ok(Self::Wecom),
            _ => Err(names::invalid("webhook_format", s)),
        }
    }
}

/// A worker.
pub type Worker = Record<WorkerFields, WorkerId>;

/// Which workers to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerFilter {
    /// Only those of exactly this area.
    pub area_id: Option<AreaId>,
}

/// A site's data (a rental building).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = crate::api::ProtocolId)]
    pub area_id: AreaId,
}

/// A site.
pub type Site = Record<SiteFields, SiteId>;

/// Which sites to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFilter {
    /// Only those in this area or below it.
    pub area_id: Option<AreaId>,
}

/// A room's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoomFields {
    /// The site.
    pub site_id: SiteId,
    /// Name (e.g. "3-302").
    pub name: String,
    /// Who rents it, told of alerts like the owner (`[people] tenant_sms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// Their phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_phone: Option<String>,
}

/// A room.
pub type Room = Record<RoomFields, RoomId>;

/// Which rooms (or circuits) to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomFilter {
    /// Only those of this site.
    pub site_id: Option<SiteId>,
}

/// A circuit's data: a node of a site's supply tree (supply → distribution box → circuit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CircuitFields {
    /// The site.
    pub site_id: SiteId,
    /// The node it is fed from (same site), none for the supply.
    pub parent_id: Option<CircuitId>,
    /// Name.
    pub name: String,
}

/// A circuit.
pub type Circuit = Record<CircuitFields, CircuitId>;

/// Which circuits to list.
pub type CircuitFilter = RoomFilter;

pub(super) fn text(v: &impl ToString) -> Value {
    Value::Text(v.to_string())
}

pub(super) fn opt_text(v: Option<&impl ToString>) -> Value {
    v.map_or(Value::Null, text)
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

pub(super) fn site_row(conn: &Connection, id: SiteId) -> Result<AreaId, StoreError> {
    let area: String = conn
        .query_row("SELECT area_id FROM sites WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| unknown(Noun::Site, id))?;
    names::grid_id(&area)
}

pub(super) fn site_of_room(conn: &Connection, id: RoomId) -> Result<SiteId, StoreError> {
    conn.query_row("SELECT site_id FROM rooms WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| unknown(Noun::Room, id))
}

pub(super) fn circuit_row(
    conn: &Connection,
    id: CircuitId,
) -> Result<(SiteId, Option<CircuitId>), StoreError> {
    conn.query_row(
        "SELECT site_id, parent_id FROM circuits WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or_else(|| unknown(Noun::Circuit, id))
}

/// The area of a site (its own area), `None` if it does not exist.
fn area_of_site(conn: &Connection, id: SiteId) -> Result<Option<GridId>, StoreError> {
    match site_row(conn, id) {
        Ok(a) => Ok(Some(a)),
        Err(StoreError::Unknown { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The area of what hangs off a site: the site's.
const SITE_AREA_SQL: &str = "(SELECT s.area_id FROM sites s WHERE s.id = site_id)";

impl Resource for WorkerFields {
    type Id = WorkerId;
    type NewId = ();
    type Filter = WorkerFilter;
    const NOUN: Noun = Noun::Worker;
    const TABLE: &'static str = "workers";
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "area_id",
        "phone",
        "mqtt_topic",
        "webhook_url",
        "webhook_format",
        "webhook_secret",
    ];
    const USED_BY: &'static [(&'static str, &'static str)] = &[];
    const AREA_SQL: &'static str = "area_id";

    fn id_value(id: &WorkerId) -> Value {
        Value::Integer(*id)
    }
    fn given_id((): &()) -> Option<&WorkerId> {
        None
    }
    fn new_id((): (), rowid: i64) -> WorkerId {
        rowid
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            text(&self.name),
            text(&self.area_id),
            opt_text(self.phone.as_ref()),
            opt_text(self.mqtt_topic.as_ref()),
            opt_text(self.webhook_url.as_ref()),
            Value::Text(self.webhook_format.as_str().to_owned()),
            opt_text(self.webhook_secret.as_ref()),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(WorkerId, Self), StoreError> {
        let area: String = r.get("area_id")?;
        let format: String = r.get("webhook_format")?;
        Ok((
            r.get("id")?,
            Self {
                name: r.get("name")?,
                area_id: names::grid_id(&area)?,
                phone: r.get("phone")?,
                mqtt_topic: r.get("mqtt_topic")?,
                webhook_url: r.get("webhook_url")?,
                webhook_format: WebhookFormat::parse(&format)?,
                webhook_secret: r.get("webhook_secret")?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        _: Option<&WorkerId>,
        _: Option<&Self>,
    ) -> Result<(), StoreError> {
        require_area(conn, &self.area_id).map(drop)
    }
    fn filter(filter: &WorkerFilter, w: &mut Where) -> Option<(u32, u32)> {
        if let Some(a) = &filter.area_id {
            w.eq("area_id = ?", a.to_string());
        }
        None
    }
    fn area(&self, _: &Connection, _: Option<&WorkerId>) -> Result<Option<GridId>, StoreError> {
        Ok(Some(self.area_id.clone()))
    }
}

impl Resource for SiteFields {
    type Id = SiteId;
    type NewId = ();
    type Filter = SiteFilter;
    const NOUN: Noun = Noun::Site;
    const TABLE: &'static str = "sites";
    const COLUMNS: &'static [&'static str] =
        &["name", "address", "owner_name", "owner_phone", "area_id"];
    const USED_BY: &'static [(&'static str, &'static str)] = &[
        ("SELECT count(*) FROM rooms WHERE site_id = ?1", "rooms"),
        (
            "SELECT count(*) FROM circuits WHERE site_id = ?1",
            "circuits",
        ),
        ("SELECT count(*) FROM devices WHERE site_id = ?1", "devices"),
    ];
    const AREA_SQL: &'static str = "area_id";

    fn id_value(id: &SiteId) -> Value {
        Value::Integer(*id)
    }
    fn given_id((): &()) -> Option<&SiteId> {
        None
    }
    fn new_id((): (), rowid: i64) -> SiteId {
        rowid
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            text(&self.name),
            text(&self.address),
            opt_text(self.owner_name.as_ref()),
            opt_text(self.owner_phone.as_ref()),
            text(&self.area_id),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(SiteId, Self), StoreError> {
        let area: String = r.get("area_id")?;
        Ok((
            r.get("id")?,
            Self {
                name: r.get("name")?,
                address: r.get("address")?,
                owner_name: r.get("owner_name")?,
                owner_phone: r.get("owner_phone")?,
                area_id: names::grid_id(&area)?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        _: Option<&SiteId>,
        _: Option<&Self>,
    ) -> Result<(), StoreError> {
        require_area(conn, &self.area_id).map(drop)
    }
    fn filter(filter: &SiteFilter, w: &mut Where) -> Option<(u32, u32)> {
        if let Some(a) = &filter.area_id {
            w.in_area("area_id", a.as_str());
        }
        None
    }
    fn area(&self, _: &Connection, _: Option<&SiteId>) -> Result<Option<GridId>, StoreError> {
        Ok(Some(self.area_id.clone()))
    }
}

impl Resource for RoomFields {
    type Id = RoomId;
    type NewId = ();
    type Filter = RoomFilter;
    const NOUN: Noun = Noun::Room;
    const TABLE: &'static str = "rooms";
    const COLUMNS: &'static [&'static str] = &["site_id", "name", "tenant_name", "tenant_phone"];
    const USED_BY: &'static [(&'static str, &'static str)] =
        &[("SELECT count(*) FROM devices WHERE room_id = ?1", "devices")];
    const AREA_SQL: &'static str = SITE_AREA_SQL;

    fn id_value(id: &RoomId) -> Value {
        Value::Integer(*id)
    }
    fn given_id((): &()) -> Option<&RoomId> {
        None
    }
    fn new_id((): (), rowid: i64) -> RoomId {
        rowid
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            Value::Integer(self.site_id),
            text(&self.name),
            opt_text(self.tenant_name.as_ref()),
            opt_text(self.tenant_phone.as_ref()),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(RoomId, Self), StoreError> {
        Ok((
            r.get("id")?,
            Self {
                site_id: r.get("site_id")?,
                name: r.get("name")?,
                tenant_name: r.get("tenant_name")?,
                tenant_phone: r.get("tenant_phone")?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        id: Option<&RoomId>,
        before: Option<&Self>,
    ) -> Result<(), StoreError> {
        site_row(conn, self.site_id)?;
        if let (Some(id), Some(before)) = (id, before)
            && before.site_id != self.site_id
        {
            refuse_if_used(
                conn,
                Noun::Room,
                &id.to_string(),
                Self::USED_BY,
                &Value::Integer(*id),
            )?;
        }
        Ok(())
    }
    fn filter(filter: &RoomFilter, w: &mut Where) -> Option<(u32, u32)> {
        if let Some(s) = filter.site_id {
            w.eq("site_id = ?", s);
        }
        None
    }
    fn area(&self, conn: &Connection, _: Option<&RoomId>) -> Result<Option<GridId>, StoreError> {
        area_of_site(conn, self.site_id)
    }
}

impl Resource for CircuitFields {
    type Id = CircuitId;
    type NewId = ();
    type Filter = CircuitFilter;
    const NOUN: Noun = Noun::Circuit;
    const TABLE: &'static str = "circuits";
    const COLUMNS: &'static [&'static str] = &["site_id", "parent_id", "name"];
    const USED_BY: &'static [(&'static str, &'static str)] = &[
        (
            "SELECT count(*) FROM circuits WHERE parent_id = ?1",
            "circuits",
        ),
        (
            "SELECT count(*) FROM devices WHERE circuit_id = ?1",
            "devices",
        ),
        (
            "SELECT count(*) FROM channel_circuits WHERE circuit_id = ?1",
            "device channels",
        ),
    ];
    const AREA_SQL: &'static str = SITE_AREA_SQL;

    fn id_value(id: &CircuitId) -> Value {
        Value::Integer(*id)
    }
    fn given_id((): &()) -> Option<&CircuitId> {
        None
    }
    fn new_id((): (), rowid: i64) -> CircuitId {
        rowid
    }
    fn values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            Value::Integer(self.site_id),
            opt_int(self.parent_id),
            text(&self.name),
        ])
    }
    fn from_row(r: &Row<'_>) -> Result<(CircuitId, Self), StoreError> {
        Ok((
            r.get("id")?,
            Self {
                site_id: r.get("site_id")?,
                parent_id: r.get("parent_id")?,
                name: r.get("name")?,
            },
        ))
    }
    fn check(
        &self,
        conn: &Connection,
        id: Option<&CircuitId>,
        before: Option<&Self>,
    ) -> Result<(), StoreError> {
        site_row(conn, self.site_id)?;
        let mut next = self.parent_id;
        let mut first = true;
        // Walk up from the parent: same site, and never back to this circuit.
        while let Some(p) = next {
            if Some(&p) == id {
                return Err(StoreError::Mismatch(format!(
                    "circuit {p} cannot be fed from itself or from a circuit it feeds"
                )));
            }
            let (site, parent) = circuit_row(conn, p)?;
            if first && site != self.site_id {
                return Err(StoreError::Mismatch(format!(
                    "circuit {p} is of site {site}, not of site {}",
                    self.site_id
                )));
            }
            first = false;
            next = parent;
        }
        if let (Some(id), Some(before)) = (id, before)
            && before.site_id != self.site_id
        {
            refuse_if_used(
                conn,
                Noun::Circuit,
                &id.to_string(),
                Self::USED_BY,
                &Value::Integer(*id),
            )?;
        }
        Ok(())
    }
    fn filter(filter: &CircuitFilter, w: &mut Where) -> Option<(u32, u32)> {
        if let Some(s) = filter.site_id {
            w.eq("site_id = ?", s);
        }
        None
    }
    fn area(&self, conn: &Connection, _: Option<&CircuitId>) -> Result<Option<GridId>, StoreError> {
        area_of_site(conn, self.site_id)
    }
}
