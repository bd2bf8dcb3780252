//! What the centre is told: an alert's type-2 ADU, the latest readings as type-3 objects.

use firegrid_protocols::channel::Quantity;
use firegrid_protocols::gb26875::adu::{self, Object, System};

use super::config::Gb26875Config;
use super::mapping;
use super::store::{UplinkStore, UplinkStoreError};
use super::time::tag_of;
use crate::model::{Category, DeviceKind, DeviceState, UnixMs};
use crate::notify::alert::{Alert, AlertKind};
use crate::store::Store;

/// The facility system of the reports.
pub(super) fn system(cfg: &Gb26875Config) -> System {
    System {
        kind: cfg.mapping.system_type,
        address: cfg.mapping.system_address,
    }
}

/// The type-2 ADU an alert becomes (`None`: not reported).
pub(super) fn alert_adu(
    store: &Store,
    db: &UplinkStore,
    cfg: &Gb26875Config,
    alert: &Alert,
) -> Result<Option<Vec<u8>>, UplinkStoreError> {
    let Some(status) = mapping::status(alert.category, alert.what) else {
        return Ok(None);
    };
    let device = store.device(&match alert.device.parse() {
        Ok(d) => d,
        Err(_) => return Ok(None),
    });
    let device = device.ok().flatten();
    let kind = device.as_ref().map_or(
        if alert.category == Category::Smoke {
            DeviceKind::SmokeAlarm
        } else {
            DeviceKind::ElectricalFireMonitor
        },
        |d| d.fields.kind,
    );
    let quantity = alert.quantity.or_else(|| {
        let ch = alert.channel?;
        device
            .as_ref()?
            .fields
            .config
            .channels
            .iter()
            .find(|c| c.channel == ch)
            .map(|c| c.threshold.quantity())
    });
    let number = db.number_of(&alert.device, &cfg.mapping.devices)?;
    let component = mapping::component(number, kind, alert.channel, quantity);
    let text = mapping::description(
        &alert.device,
        alert.category,
        alert.what,
        alert.channel,
        quantity,
    );
    let at = if alert.what == AlertKind::Opened {
        alert.started_ms
    } else {
        alert.sent_ms
    };
    let object = Object::ComponentStatus {
        system: system(cfg),
        component,
        status,
        description: super::text::description(&text),
        time: tag_of(at, cfg.utc_offset_min),
    };
    let mut buf = [0u8; 64];
    Ok(
        adu::encode(adu::kind::COMPONENT_STATUS, &[object], &mut buf)
            .ok()
            .map(|n| buf.get(..n).unwrap_or_default().to_vec()),
    )
}

pub(super) fn latest_readings(
    store: &Store,
    db: &UplinkStore,
    cfg: &Gb26875Config,
    now: UnixMs,
    window_ms: u64,
) -> Vec<Object<'static>> {
    let mut out = Vec::new();
    let Ok(devices) = store.all_devices() else {
        return out;
    };
    for d in devices {
        if !matches!(
            d.fields.state,
            DeviceState::InService | DeviceState::Commissioned
        ) || d.fields.kind == DeviceKind::SmokeAlarm
        {
            continue;
        }
        let Ok(number) = db.number_of(d.id.as_str(), &cfg.mapping.devices) else {
            continue;
        };
        for c in d.fields.config.channels.iter().filter(|c| c.enabled) {
            let Ok(points) = store.history(
                &d.id,
                c.channel,
                now.saturating_sub(window_ms),
                now.saturating_add(1),
                0,
            ) else {
                continue;
            };
            let quantity = c.threshold.quantity();
            let Some((t, v)) = points.iter().rev().find_map(|p| {
                let agg = match quantity {
                    Quantity::ResidualCurrent => p.residual_ma,
                    Quantity::Temperature => p.temp_dc,
                }?;
                Some((p.t_ms, agg.max))
            }) else {
                continue;
            };
            let (analog, value) = mapping::analog(quantity, v);
            out.push(Object::AnalogValue {
                system: system(cfg),
                component: mapping::component(
                    number,
                    d.fields.kind,
                    Some(c.channel),
                    Some(quantity),
                ),
                analog,
                value,
                time: tag_of(t, cfg.utc_offset_min),
            });
        }
    }
    out
}
