//! Channel-level circuit binding: channel n of a device measures a circuit of its own (a
//! multi-channel monitor in a distribution box watches several circuits). A channel without a
//! binding of its own measures its device's `circuit_id` — the per-device binding, which means
//! every channel; stores made before channel binding read the same (schema
//! `V_CHANNEL_CIRCUITS_KEY_AREAS`, decision 15).
//!
//! Who reads circuits' readings (history, ranking, leak tracing) asks [`Store::site_channels`]
//! or [`Store::area_channels`] for the effective bindings, computed by the pure
//! [`effective`].

use std::collections::BTreeMap;

use rusqlite::types::Value;
use serde::Serialize;

use firegrid_protocols::channel::{ChannelNo, MAX_CHANNELS};
use firegrid_protocols::thresholds::Threshold;
use firegrid_protocols::{DeviceId, GridId};

use super::registry::{CircuitId, Device, DeviceFields, DeviceFilter, SiteId, circuit_row};
use super::resource::{Actor, Noun, audit, check_scope, get_in, immediate, rows, unknown};
use super::{AreaId, Store, StoreError};

/// What a channel measures, as far as circuits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measures {
    /// Residual (leakage) current.
    ResidualCurrent,
    /// Temperature.
    Temperature,
}

/// One channel of a device and the circuit it measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelCircuit {
    /// The device.
    #[schema(value_type = crate::api::ProtocolId)]
    pub device: DeviceId,
    /// The channel.
    pub channel: ChannelNo,
    /// What it measures.
    pub measures: Measures,
    /// The circuit it measures; `None` when neither it nor its device is bound.
    pub circuit_id: Option<CircuitId>,
    /// Whether the binding is the channel's own (else its device's).
    pub own: bool,
}

/// The effective binding of each configured channel of `device`: the channel's own binding
/// (`own`), else the device's circuit. Pure.
pub fn effective(device: &Device, own: &BTreeMap<ChannelNo, CircuitId>) -> Vec<ChannelCircuit> {
    let mut out: Vec<ChannelCircuit> = device
        .fields
        .config
        .channels
        .iter()
        .map(|c| {
            let bound = own.get(&c.channel).copied();
            ChannelCircuit {
                device: device.id.clone(),
                channel: c.channel,
                measures: match c.threshold {
                    Threshold::ResidualMa(_) => Measures::ResidualCurrent,
                    Threshold::TempDc(_) => Measures::Temperature,
                },
                circuit_id: bound.or(device.fields.circuit_id),
                own: bound.is_some(),
            }
        })
        .collect();
    out.sort_by_key(|c| c.channel);
    out.dedup_by_key(|c| c.channel);
    out
}

impl Store {
    /// Binds channel `channel` of `device` to `circuit` (`None`: unbinds it, so that it
    /// measures its device's circuit again), audited as `device.channel_circuit` by the actor;
    /// returns the device's channels with their effective circuits.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] (the device or the circuit); [`StoreError::Mismatch`] (a channel
    /// the device's configuration lacks, a circuit of another site, a device without a site);
    /// [`StoreError::OutOfScope`] when the device is outside the actor's scope.
    pub fn bind_channel(
        &self,
        device: &DeviceId,
        channel: ChannelNo,
        circuit: Option<CircuitId>,
        actor: Actor<'_>,
    ) -> Result<Vec<ChannelCircuit>, StoreError> {
        self.write_journal(|conn| {
            let tx = immediate(conn)?;
            let d = get_in::<DeviceFields>(&tx, device)?
                .ok_or_else(|| unknown(Noun::Device, device))?;
            check_scope(&tx, Some(&d.id), &d.fields, actor.scope)?;
            if usize::from(channel) >= MAX_CHANNELS
                || !d
                    .fields
                    .config
                    .channels
                    .iter()
                    .any(|c| c.channel == channel)
            {
                return Err(StoreError::Mismatch(format!(
                    "device {device} has no channel {channel} in its configuration"
                )));
            }
            match circuit {
                Some(c) => {
                    let (site, _) = circuit_row(&tx, c)?;
                    if d.fields.site_id != Some(site) {
                        return Err(StoreError::Mismatch(format!(
                            "device {device}: circuit {c} is of site {site}, not of the \
                             device's site ({})",
                            d.fields
                                .site_id
                                .map_or_else(|| "none".to_string(), |s| s.to_string())
                        )));
                    }
                    tx.execute(
                        "INSERT INTO channel_circuits (device, channel, circuit_id, updated_ms) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device, channel) DO UPDATE SET \
                         circuit_id = excluded.circuit_id, updated_ms = excluded.updated_ms",
                        rusqlite::params![
                            device.as_str(),
                            channel,
                            c,
                            i64::try_from(actor.now).unwrap_or(i64::MAX)
                        ],
                    )?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM channel_circuits WHERE device = ?1 AND channel = ?2",
                        rusqlite::params![device.as_str(), channel],
                    )?;
                }
            }
            audit(
                &tx,
                actor,
                "device.channel_circuit",
                format!("device/{device}"),
                &serde_json::json!({ "channel": channel, "circuit_id": circuit }),
            )?;
            let own = own_bindings(&tx, std::slice::from_ref(device))?;
            tx.commit()?;
            Ok(effective(&d, own.get(device).unwrap_or(&BTreeMap::new())))
        })
    }

    /// A device's channels with their effective circuits.
    ///
    /// # Errors
    /// A database error.
    pub fn device_channels(&self, device: &Device) -> Result<Vec<ChannelCircuit>, StoreError> {
        let own = self.read(|c| own_bindings(c, std::slice::from_ref(&device.id)))?;
        Ok(effective(
            device,
            own.get(&device.id).unwrap_or(&BTreeMap::new()),
        ))
    }

    /// Every configured channel of the devices at `site`, with its effective circuit.
    ///
    /// # Errors
    /// A database error.
    pub fn site_channels(&self, site: SiteId) -> Result<Vec<ChannelCircuit>, StoreError> {
        let devices = self.devices(&DeviceFilter {
            site_id: Some(site),
            limit: 10_000,
            ..DeviceFilter::default()
        })?;
        self.channels_of(&devices)
    }

    /// Every configured channel of the devices whose grid cell is in `area`'s subtree (at most
    /// `limit` devices), with its effective circuit; channels on no circuit are left out.
    ///
    /// # Errors
    /// A database error.
    pub fn area_channels(
        &self,
        area: Option<&AreaId>,
        scope: Option<&GridId>,
        limit: u32,
    ) -> Result<Vec<ChannelCircuit>, StoreError> {
        let devices = self.list::<DeviceFields>(
            &DeviceFilter {
                area_id: area.cloned(),
                limit,
                ..DeviceFilter::default()
            },
            scope,
        )?;
        let mut all = self.channels_of(&devices)?;
        all.retain(|c| c.circuit_id.is_some());
        Ok(all)
    }

    fn channels_of(&self, devices: &[Device]) -> Result<Vec<ChannelCircuit>, StoreError> {
        let ids: Vec<DeviceId> = devices.iter().map(|d| d.id.clone()).collect();
        let own = self.read(|c| own_bindings(c, &ids))?;
        let none = BTreeMap::new();
        Ok(devices
            .iter()
            .flat_map(|d| effective(d, own.get(&d.id).unwrap_or(&none)))
            .collect())
    }
}

/// The channels' own bindings of `devices`.
fn own_bindings(
    conn: &rusqlite::Connection,
    devices: &[DeviceId],
) -> Result<BTreeMap<DeviceId, BTreeMap<ChannelNo, CircuitId>>, StoreError> {
    let mut out: BTreeMap<DeviceId, BTreeMap<ChannelNo, CircuitId>> = BTreeMap::new();
    for chunk in devices.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let params: Vec<Value> = chunk.iter().map(|d| Value::Text(d.to_string())).collect();
        let found = rows(
            conn,
            &format!(
                "SELECT device, channel, circuit_id FROM channel_circuits WHERE device IN \
                 ({marks})"
            ),
            &params,
            |r| {
                let device: String = r.get(0)?;
                Ok((
                    super::names::device_id(&device)?,
                    r.get::<_, ChannelNo>(1)?,
                    r.get::<_, CircuitId>(2)?,
                ))
            },
        )?;
        for (d, ch, c) in found {
            out.entry(d).or_default().insert(ch, c);
        }
    }
    Ok(out)
}
