//! Person deliveries: queued with the dispatcher's mark, once per alert, worker and channel;
//! attempted, delivered, stopped (audited).

use super::*;
use crate::engine::Output;
use crate::model::{Category, EpisodeKey, Source, TicketState};
use crate::notify::alert::AlertKind;
use crate::notify::people::{NewDelivery, PersonChannel};

fn episode(store: &Store) {
    store
        .journal_batch(&[JournalOp::Engine {
            output: Output::Opened {
                id: 1,
                key: EpisodeKey {
                    device: did("d-1"),
                    channel: Some(0),
                    category: Category::Alarm,
                },
                grid: gid("g1"),
                source: Source::Device,
                level: None,
                detail: None,
            },
            at_ms: T0,
        }])
        .expect("journaled");
}

fn delivery(notification_id: i64, worker_id: i64, channel: PersonChannel) -> NewDelivery {
    NewDelivery {
        notification_id,
        episode_id: 1,
        kind: AlertKind::Opened,
        area_id: gid("g1"),
        worker_id,
        channel,
        format: WebhookFormat::Json,
        target: "firegrid/v1/people/g1/1".into(),
        body: "{}".into(),
        next_attempt_ms: T0,
    }
}

#[test]
fn deliveries_are_queued_once_with_the_mark_and_stop_once_acknowledged() {
    let dir = tmp();
    let store = open(&db(&dir));
    let site = registry_with_device(&store);
    episode(&store);
    assert_eq!(
        store.people_mark().unwrap(),
        Some(0),
        "set by the migration"
    );

    let batch = [
        delivery(7, 1, PersonChannel::Mqtt),
        delivery(7, 1, PersonChannel::Sms),
        delivery(7, 2, PersonChannel::Webhook),
    ];
    assert_eq!(store.queue_deliveries(3, &batch, T0).unwrap(), 3);
    assert_eq!(store.people_mark().unwrap(), Some(3));
    // The same fan-out again (a commit lost to a crash): nothing twice.
    assert_eq!(store.queue_deliveries(3, &batch, T0).unwrap(), 0);
    assert_eq!(store.deliveries_of(1).unwrap().len(), 3);

    let due = store.due_deliveries(T0, 10).unwrap();
    assert_eq!(due.len(), 3);
    store.delivery_attempted(due[0].id, Ok(T0 + 5)).unwrap();
    store
        .delivery_attempted(due[1].id, Err((T0 + 1_000, "answered 503".into())))
        .unwrap();
    let due_now: Vec<i64> = store
        .due_deliveries(T0 + 999, 10)
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due_now, [due[2].id], "delivered done, failed not yet due");
    let failed = store.deliveries_of(1).unwrap()[1].clone();
    assert_eq!(
        (failed.attempts, failed.last_error.as_deref()),
        (1, Some("answered 503"))
    );
    assert_eq!(
        store.deliveries_of(1).unwrap()[0].delivered_ms,
        Some(T0 + 5)
    );

    store
        .delivery_stopped(due[1].id, TicketState::Acknowledged, T0 + 2_000)
        .unwrap();
    assert!(
        store
            .due_deliveries(u64::MAX / 2, 10)
            .unwrap()
            .iter()
            .all(|d| d.id != due[1].id)
    );
    let audit = store
        .audit_log(&AuditFilter {
            action: Some("delivery.stopped".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].subject, format!("delivery/{}", due[1].id));

    // Pruned once past the retention: nothing is kept for ever.
    assert_eq!(store.prune(T0).unwrap().person_deliveries, 0);
    let years = 10 * 365 * 86_400_000;
    assert_eq!(store.prune(T0 + years).unwrap().person_deliveries, 3);
    assert!(store.deliveries_of(1).unwrap().is_empty());

    // Where the device is, as a person alert says it.
    let place = store.place_of(&did("d-1")).unwrap();
    assert_eq!(place.address.as_deref(), Some(site.fields.address.as_str()));
    assert_eq!(place.owner_phone, site.fields.owner_phone);
    assert_eq!(place.device_kind, Some(DeviceKind::ElectricalFireMonitor));
    assert_eq!(
        store.place_of(&did("d-unknown")).unwrap(),
        crate::notify::people::Place::default()
    );
}
