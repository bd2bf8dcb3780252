//! A commissioning test's alert, to the installer (pure; [`crate::commissioning`]).
//!
//! An alert marked `test` (its device is `commissioned`) goes to exactly one person: the
//! device's installer, as a [`PersonAlert`] on their topic
//! ([`installer_topic`](crate::commissioning::installer_topic)) — not to the grid cell's
//! workers, the area tree topic or the site's owner. Without a known installer or grid cell
//! nobody is paged (the live stream still shows it).

use crate::model::UnixMs;
use crate::notify::alert::Alert;
use crate::notify::people::{
    Action, NewDelivery, PersonAlert, PersonChannel, Place, WorkerRef, first_action, text,
};
use crate::store::{WebhookFormat, WorkerId};

/// The worker id of deliveries to an installer.
pub const INSTALLER: WorkerId = -2;

/// The deliveries of a test alert: one, to `installer` (a user name) on their topic under
/// the device's grid cell (`grid`).
pub fn to_installer(
    notification_id: i64,
    alert: &Alert,
    place: &Place,
    installer: Option<&str>,
    grid: Option<&str>,
    now: UnixMs,
) -> Vec<NewDelivery> {
    let (Some(user), Some(grid)) = (installer, grid) else {
        return Vec::new();
    };
    let (zh, en) = first_action(alert.category);
    let person = PersonAlert {
        alert: alert.clone(),
        worker: WorkerRef {
            id: INSTALLER,
            name: user.to_owned(),
        },
        place: place.clone(),
        action: Action {
            zh_cn: format!("调试测试：{zh}"),
            en: format!("Commissioning test: {en}"),
        },
        link: None,
        text: format!(
            "【调试测试 / commissioning test】\n{}",
            text(alert, place, None)
        ),
    };
    vec![NewDelivery {
        notification_id,
        episode_id: alert.episode,
        kind: alert.what,
        area_id: alert.area.clone(),
        worker_id: INSTALLER,
        channel: PersonChannel::Mqtt,
        format: WebhookFormat::Json,
        target: crate::commissioning::installer_topic(grid, user),
        body: serde_json::to_value(&person)
            .unwrap_or_default()
            .to_string(),
        next_attempt_ms: now,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::people::{PeopleSettings, fan_out};

    fn alert(test: bool) -> Alert {
        serde_json::from_value(serde_json::json!({
            "alert_id": 7, "episode": 12, "what": "opened", "category": "smoke",
            "device": "hz-1", "area": "grid-7", "level": 0, "source": "device",
            "started_ms": 1000, "sent_ms": 1000, "test": test
        }))
        .expect("an alert")
    }

    #[test]
    fn a_test_alert_goes_to_the_installer_alone() {
        let d = to_installer(
            5,
            &alert(true),
            &Place::default(),
            Some("wang"),
            Some("grid-7"),
            9,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].target, "firegrid/v1/people/grid-7/installer/wang");
        assert_eq!(d[0].worker_id, INSTALLER);
        let body: serde_json::Value = serde_json::from_str(&d[0].body).expect("json");
        assert_eq!(body["alert"]["test"], true);
        assert_eq!(body["worker"]["name"], "wang");
        // No installer known: nobody is paged.
        assert!(
            to_installer(5, &alert(true), &Place::default(), None, Some("grid-7"), 9).is_empty()
        );
    }

    #[test]
    fn the_flag_travels_in_the_alert_json_and_is_absent_otherwise() {
        let plain = serde_json::to_value(alert(false)).expect("json");
        assert!(plain.get("test").is_none());
        let t = serde_json::to_value(alert(true)).expect("json");
        assert_eq!(t["test"], true);
        // The workers' fan-out sends a test alert nowhere (not even the area tree topic).
        let settings = PeopleSettings::default();
        let tree = Some("firegrid/v1/area/grid-7");
        assert_eq!(
            fan_out(5, &alert(false), &Place::default(), &[], tree, &settings, 9).len(),
            1
        );
        assert!(fan_out(5, &alert(true), &Place::default(), &[], tree, &settings, 9).is_empty());
    }
}
