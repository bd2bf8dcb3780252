use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use firegrid_protocols::channel::FaultCause;
use firegrid_protocols::message::EventKind;

use super::*;
use crate::engine::{Engine, EngineConfig, Input, OpenEpisode, Output};
use crate::model::{Category, EpisodeKey, Source, TicketState};

fn opened(id: u64, device: &str, category: Category) -> JournalOp {
    JournalOp::Engine {
        output: Output::Opened {
            id,
            key: EpisodeKey {
                device: did(device),
                channel: (category == Category::Alarm).then_some(0),
                category,
            },
            grid: gid("g1"),
            source: Source::Device,
            level: None,
            detail: None,
        },
        at_ms: T0,
    }
}

#[test]
fn events_are_deduplicated_across_restarts() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    let ops = [
        new_event("d-1", 1),
        new_event("d-1", 2),
        new_event("d-2", 1),
    ];
    use JournalResult::{Duplicate, Inserted};
    assert_eq!(
        store.journal_batch(&ops).unwrap(),
        [Inserted, Inserted, Inserted]
    );
    // A resend in the same run, and one within a batch.
    assert_eq!(
        store
            .journal_batch(&[
                new_event("d-1", 2),
                new_event("d-1", 3),
                new_event("d-1", 3)
            ])
            .unwrap(),
        [Duplicate, Inserted, Duplicate]
    );
    drop(store);

    // "Restart": the dedupe table is the journal itself.
    let store = open(&path);
    assert_eq!(
        store.journal_batch(&ops).unwrap(),
        [Duplicate, Duplicate, Duplicate]
    );
    let events = store.device_events(&did("d-1"), None, 0).unwrap();
    let seqs: Vec<u32> = events.iter().map(|e| e.event.seq).collect();
    assert_eq!(seqs, [3, 2, 1]);
    assert_eq!(
        events[2].event,
        event(1, alarm(400)),
        "the event as received"
    );
    assert_eq!(events[2].received_ms, T0 + 1);
    let older = store.device_events(&did("d-1"), Some(3), 1).unwrap();
    assert_eq!(older[0].event.seq, 2);
    // The body is the protocol's JSON; kind and channel are columns.
    let (kind, channel, body): (String, Option<u8>, String) = raw(&path)
        .query_row(
            "SELECT kind, channel, body FROM events WHERE device = 'd-1' AND seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), channel), ("alarm_raised", Some(0)));
    assert!(body.contains(r#""kind":"alarm_raised""#), "{body}");
}

#[test]
fn a_batch_is_durable_without_a_clean_shutdown() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    let ops: Vec<JournalOp> = (1..=50).map(|seq| new_event("d-1", seq)).collect();
    store.journal_batch(&ops).unwrap();
    store
        .journal_batch(&[opened(1, "d-1", Category::Smoke)])
        .unwrap();
    // No close, no checkpoint: the connections are leaked, as if the process had died.
    std::mem::forget(store);
    let store = open(&path);
    assert_eq!(
        store.device_events(&did("d-1"), None, 1000).unwrap().len(),
        50
    );
    assert_eq!(store.max_episode_id().unwrap(), 1);
}

/// The child half of `acknowledged_events_survive_kill_9`, not a test of its own (ignored, so
/// no run counts it as passed): journals one event per transaction and prints each
/// acknowledgement, until killed.
#[test]
#[ignore = "a helper: the child process of acknowledged_events_survive_kill_9, run by it"]
fn child_journal_writer() {
    let path = std::env::var("FIREGRID_STORE_KILL_TEST_DB")
        .expect("run by acknowledged_events_survive_kill_9, which names the store");
    let (store, _) = Store::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    for seq in 1..=100_000 {
        store.journal_batch(&[new_event("d-1", seq)]).unwrap();
        // Only now would the gateway publish the ack.
        writeln!(out, "acked {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = tmp();
    let path = db(&dir);
    drop(open(&path));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests::journal::child_journal_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FIREGRID_STORE_KILL_TEST_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(seq) = line.unwrap().strip_prefix("acked ") {
            acked = seq.parse().unwrap();
            if acked >= 100 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-write
    child.wait().unwrap();
    assert!(acked >= 100, "the child acknowledged {acked} events");

    let (store, health) = Store::open(&path).unwrap();
    assert!(health.is_clean(), "{health}");
    let events = store.device_events(&did("d-1"), None, 10_000).unwrap();
    let max = events.first().map_or(0, |e| e.event.seq);
    assert!(
        max >= acked,
        "acknowledged {acked}, journal has up to {max}"
    );
    assert_eq!(
        events.len() as u32,
        max,
        "no gap: every acknowledged event is there"
    );
}

#[test]
fn tickets_move_forward_only_with_steps_and_audit() {
    let dir = tmp();
    let store = open(&db(&dir));
    store
        .journal_batch(&[opened(1, "d-1", Category::Alarm)])
        .unwrap();

    let e = store
        .ticket_transition(1, TicketState::Acknowledged, "alice", None, T0 + 10)
        .unwrap();
    assert_eq!(e.ticket, TicketState::Acknowledged);
    let err = store
        .ticket_transition(1, TicketState::Raised, "alice", None, T0 + 11)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IllegalTransition {
                id: 1,
                from: TicketState::Acknowledged,
                to: TicketState::Raised
            }
        ),
        "{err}"
    );
    assert!(matches!(
        store.ticket_transition(1, TicketState::Acknowledged, "bob", None, T0 + 12),
        Err(StoreError::IllegalTransition { .. })
    ));
    // Skipping dispatched is allowed (fixed on the spot).
    store
        .ticket_transition(
            1,
            TicketState::Rectified,
            "bob",
            Some("loose neutral"),
            T0 + 20,
        )
        .unwrap();
    store
        .ticket_transition(1, TicketState::Closed, "carol", None, T0 + 30)
        .unwrap();
    assert!(matches!(
        store.ticket_transition(1, TicketState::Verified, "carol", None, T0 + 40),
        Err(StoreError::IllegalTransition {
            from: TicketState::Closed,
            ..
        })
    ));
    assert!(matches!(
        store.ticket_transition(9, TicketState::Closed, "carol", None, T0 + 40),
        Err(StoreError::UnknownEpisode(9))
    ));

    let steps: Vec<(TicketState, String, u64, Option<String>)> = store
        .ticket_steps(1)
        .unwrap()
        .into_iter()
        .map(|s| (s.state, s.who, s.at_ms, s.note))
        .collect();
    assert_eq!(
        steps,
        [
            (TicketState::Raised, "gateway".into(), T0, None),
            (TicketState::Acknowledged, "alice".into(), T0 + 10, None),
            (
                TicketState::Rectified,
                "bob".into(),
                T0 + 20,
                Some("loose neutral".into())
            ),
            (TicketState::Closed, "carol".into(), T0 + 30, None),
        ]
    );
    let log = store
        .audit_log(&AuditFilter {
            subject: Some("episode/1".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.who.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ticket.closed", "carol"),
            ("ticket.rectified", "bob"),
            ("ticket.acknowledged", "alice")
        ]
    );
    assert_eq!(log[1].detail["from"], "acknowledged");
    assert_eq!(log[1].detail["note"], "loose neutral");
    let by_bob = store
        .audit_log(&AuditFilter {
            who: Some("bob".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(by_bob.len(), 1);
    let id = store
        .audit(
            "admin",
            "export",
            "journal",
            &serde_json::json!({"rows": 3}),
            T0 + 50,
        )
        .unwrap();
    let latest = store
        .audit_log(&AuditFilter {
            from_ms: Some(T0 + 50),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(
        (latest[0].id, latest[0].detail["rows"].as_i64()),
        (id, Some(3))
    );
}

/// Drives the real engine, journals all it says, and checks that `open_episodes` gives a
/// restarted engine what it needs.
#[test]
fn open_episodes_round_trip_through_the_engine() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    registry_with_device(&store);
    let mut engine = Engine::new(EngineConfig::default(), store.max_episode_id().unwrap() + 1);
    for spec in store.device_specs().unwrap() {
        engine.handle(Input::Upsert(spec), T0);
    }
    let journal = |engine: &mut Engine, input: Input, now: u64| -> Vec<Output> {
        let out = engine.handle(input, now);
        let ops: Vec<JournalOp> = JournalOp::from_outputs(out.clone(), now).collect();
        let results = store.journal_batch(&ops).unwrap();
        assert!(
            results.iter().all(|r| *r == JournalResult::Applied),
            "{results:?}"
        );
        out
    };
    let ev = |kind| Input::Event {
        device: did("d-1"),
        kind,
        open_as: None,
    };
    journal(&mut engine, ev(alarm(412)), T0 + 1_000);
    journal(&mut engine, ev(alarm(600)), T0 + 2_000); // a new peak
    journal(
        &mut engine,
        ev(EventKind::Fault {
            channel: 1,
            cause: FaultCause::LeadOpen,
        }),
        T0 + 3_000,
    );
    journal(&mut engine, ev(EventKind::Smoke), T0 + 4_000);
    journal(&mut engine, ev(EventKind::SmokeCleared), T0 + 5_000);
    journal(
        &mut engine,
        ev(EventKind::BatteryLow { battery_mv: 2400 }),
        T0 + 6_000,
    );
    journal(
        &mut engine,
        ev(EventKind::BatteryOk { battery_mv: 3000 }),
        T0 + 7_000,
    );
    // Past the first escalation step (2 min), with a heartbeat so nothing goes offline.
    journal(&mut engine, Input::Online(did("d-1")), T0 + 125_000);
    let escalated = journal(&mut engine, Input::Tick, T0 + 125_000);
    assert!(
        escalated
            .iter()
            .any(|o| matches!(o, Output::Escalated { level: 1, .. })),
        "{escalated:?}"
    );
    drop(store);

    let store = open(&path);
    let restored = store.open_episodes().unwrap();
    let by_category = |c: Category| -> &OpenEpisode {
        restored
            .iter()
            .find(|e| e.key.category == c)
            .expect("restored")
    };
    let alarm_ep = by_category(Category::Alarm);
    assert_eq!(alarm_ep.peak.map(|p| p.value), Some(600));
    assert_eq!(
        (alarm_ep.ended, alarm_ep.acknowledged, alarm_ep.escalation),
        (false, false, 1)
    );
    assert_eq!(alarm_ep.source, Source::Device);
    assert_eq!(alarm_ep.started_ms, T0 + 1_000);
    assert_eq!(by_category(Category::Fault).key.channel, Some(1));
    let smoke = by_category(Category::Smoke);
    assert!(
        smoke.ended && !smoke.acknowledged,
        "ended smoke still escalates until acknowledged"
    );
    assert!(
        restored
            .iter()
            .all(|e| e.key.category != Category::BatteryLow),
        "an ended battery episode needs nobody"
    );
    assert_eq!(restored.len(), 3);
    let fault = store
        .episode(by_category(Category::Fault).id)
        .unwrap()
        .unwrap();
    assert_eq!(fault.detail.as_deref(), Some("lead_open"));

    // A restarted engine continues the same episodes.
    let mut engine = Engine::new(EngineConfig::default(), store.max_episode_id().unwrap() + 1);
    for spec in store.device_specs().unwrap() {
        engine.handle(Input::Upsert(spec), T0 + 130_000);
    }
    for e in restored.clone() {
        engine.restore(e, T0 + 130_000);
    }
    let out = engine.handle(ev(alarm(700)), T0 + 131_000);
    assert_eq!(
        out,
        [Output::Peak {
            id: alarm_ep.id,
            level: firegrid_protocols::message::Level {
                quantity: firegrid_protocols::channel::Quantity::ResidualCurrent,
                value: 700,
                threshold: 300,
            }
        }],
        "the same episode, not a new one"
    );
    let out = engine.handle(ev(EventKind::Tamper), T0 + 132_000);
    assert!(
        matches!(out[..], [Output::Opened { id, .. }] if id == store.max_episode_id().unwrap() + 1),
        "{out:?}"
    );

    // Acknowledged: the ended smoke episode is done.
    store
        .ticket_transition(
            smoke.id,
            TicketState::Acknowledged,
            "alice",
            None,
            T0 + 140_000,
        )
        .unwrap();
    assert_eq!(store.open_episodes().unwrap().len(), 2);

    let grid_episodes = store
        .episodes(&EpisodeFilter {
            area: Some(gid("d1")),
            ..EpisodeFilter::default()
        })
        .unwrap();
    assert_eq!(grid_episodes.len(), 4);
    assert!(
        grid_episodes.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let open_alarms = store
        .episodes(&EpisodeFilter {
            category: Some(Category::Alarm),
            open_only: true,
            device: Some(did("d-1")),
            ..EpisodeFilter::default()
        })
        .unwrap();
    assert_eq!(open_alarms.len(), 1);
    let in_window = store
        .episodes(&EpisodeFilter {
            from_ms: Some(T0 + 3_000),
            to_ms: Some(T0 + 6_000),
            ..EpisodeFilter::default()
        })
        .unwrap();
    assert_eq!(
        in_window.iter().map(|e| e.key.category).collect::<Vec<_>>(),
        [Category::Smoke, Category::Fault]
    );
    let acked = store
        .episodes(&EpisodeFilter {
            ticket: Some(TicketState::Acknowledged),
            grid: Some(gid("g1")),
            limit: 10,
            ..EpisodeFilter::default()
        })
        .unwrap();
    assert_eq!(acked.len(), 1);
    assert!(
        store
            .episodes(&EpisodeFilter {
                area: Some(gid("g2")),
                ..EpisodeFilter::default()
            })
            .unwrap()
            .is_empty()
    );
    let escalations = store
        .audit_log(&AuditFilter {
            action: Some("episode.escalate".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert!(!escalations.is_empty());
}

#[test]
fn ops_on_unknown_episodes_are_reported_not_fatal() {
    let dir = tmp();
    let store = open(&db(&dir));
    let results = store
        .journal_batch(&[
            JournalOp::Engine {
                output: Output::Ended { id: 42 },
                at_ms: T0,
            },
            opened(1, "d-1", Category::Tamper),
            opened(1, "d-1", Category::Tamper),
        ])
        .unwrap();
    assert_eq!(
        results,
        [
            JournalResult::UnknownEpisode(42),
            JournalResult::Applied,
            JournalResult::Duplicate
        ]
    );
}

#[test]
fn the_notifications_outbox_delivers_at_least_once() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    let notify = |episode_id, channel, target: &str| {
        JournalOp::Notify(NewNotification {
            id: None,
            episode_id,
            kind: NotificationKind::Opened,
            level: 0,
            channel,
            target: target.into(),
            payload: serde_json::json!({ "episode": episode_id }),
            next_attempt_ms: T0,
        })
    };
    let results = store
        .journal_batch(&[
            opened(1, "d-1", Category::Smoke),
            notify(1, NotifyChannel::Mqtt, "firegrid/v1/alert/g1"),
            notify(1, NotifyChannel::Webhook, "http://127.0.0.1:9/hook"),
            notify(7, NotifyChannel::Sse, "all"),
        ])
        .unwrap();
    let [
        _,
        JournalResult::Enqueued(a),
        JournalResult::Enqueued(b),
        missing,
    ] = results[..]
    else {
        panic!("{results:?}");
    };
    assert_eq!(missing, JournalResult::UnknownEpisode(7));

    let due = store.due_notifications(T0, 10).unwrap();
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(due[0].fields.payload["episode"], 1);
    assert!(store.due_notifications(T0 - 1, 10).unwrap().is_empty());

    store.mark_failed(b, T0 + 5_000).unwrap();
    store.mark_delivered(a, T0 + 1).unwrap();
    store.mark_delivered(a, T0 + 2).unwrap(); // a repeat changes nothing
    assert!(store.due_notifications(T0 + 4_999, 10).unwrap().is_empty());
    drop(store);

    let store = open(&path);
    let due = store.due_notifications(T0 + 5_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id, due[0].attempts, due[0].delivered_ms),
        (b, 1, None)
    );
    let all = store.notifications_of(1).unwrap();
    assert_eq!((all[0].attempts, all[0].delivered_ms), (1, Some(T0 + 1)));
    assert!(matches!(
        store.mark_delivered(999, T0),
        Err(StoreError::UnknownNotification(999))
    ));
    assert!(matches!(
        store.mark_failed(999, T0),
        Err(StoreError::UnknownNotification(999))
    ));
}

#[test]
fn a_full_disk_is_typed_and_writes_nothing() {
    let dir = tmp();
    let path = db(&dir);
    let store = open(&path);
    store.journal_batch(&[new_event("d-1", 1)]).unwrap();
    {
        // The database may not grow: as good as a full disk for SQLite (SQLITE_FULL).
        let journal = lock(&store.inner.journal);
        let pages: u64 = journal
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        journal
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
    }
    let ops: Vec<JournalOp> = (2..=2_000).map(|seq| new_event("d-1", seq)).collect();
    let err = store.journal_batch(&ops).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    // Through the writer too: every caller of the group is told.
    let (writer, thread) = JournalWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    let err = writer.submit_blocking(ops.clone()).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert_eq!(writer.stats().failures, 1);
    drop(writer);
    thread.join().unwrap();
    drop(store);

    let store = open(&path);
    assert_eq!(
        store
            .device_events(&did("d-1"), None, 10_000)
            .unwrap()
            .len(),
        1,
        "nothing half-written"
    );
    // With room again, the same events go in.
    let results = store.journal_batch(&ops).unwrap();
    assert!(results.iter().all(|r| *r == JournalResult::Inserted));
}

#[test]
fn one_callers_bad_data_does_not_fail_the_group() {
    let dir = tmp();
    let store = open(&db(&dir));
    let good_a = [new_event("d-1", 1)];
    // An id SQLite cannot hold: a conversion error of this caller only.
    let bad = [
        new_event("d-1", 2),
        opened(u64::MAX, "d-1", Category::Tamper),
    ];
    let good_b = [new_event("d-1", 3)];
    let results = store.journal_group(&[&good_a, &bad, &good_b]).unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &[JournalResult::Inserted]);
    assert!(results[1].is_err());
    assert_eq!(results[2].as_ref().unwrap(), &[JournalResult::Inserted]);
    let seqs: Vec<u32> = store
        .device_events(&did("d-1"), None, 10)
        .unwrap()
        .iter()
        .map(|e| e.event.seq)
        .collect();
    assert_eq!(
        seqs,
        [3, 1],
        "the bad caller's event was rolled back with it"
    );
}

#[test]
fn max_seq_covers_events_and_readings() {
    let dir = tmp();
    let store = open(&db(&dir));
    assert_eq!(store.max_seq(&did("d-1")).unwrap(), None);
    store
        .journal_batch(&[new_event("d-1", 7), new_event("d-2", 900)])
        .unwrap();
    assert_eq!(store.max_seq(&did("d-1")).unwrap(), Some(7));
    store
        .insert_readings(&[super::readings::sample("d-1", 40, T0)])
        .unwrap();
    assert_eq!(store.max_seq(&did("d-1")).unwrap(), Some(40));
    assert_eq!(store.max_seq(&did("d-2")).unwrap(), Some(900));
}

#[test]
fn a_notification_is_queued_under_its_derived_id_once_and_a_collision_gets_a_free_one() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);
    let notify = |id, episode_id, target: &str| {
        JournalOp::Notify(NewNotification {
            id: Some(id),
            episode_id,
            kind: NotificationKind::Opened,
            level: 0,
            channel: NotifyChannel::Mqtt,
            target: target.into(),
            payload: serde_json::json!({ "episode": episode_id }),
            next_attempt_ms: T0,
        })
    };
    let first = store
        .journal_batch(&[
            opened(1, "d-1", Category::Smoke),
            opened(2, "d-2", Category::Smoke),
            notify(9_007_199_254_740_991, 1, "firegrid/v1/alert/g1"),
        ])
        .unwrap();
    assert_eq!(first[2], JournalResult::Enqueued(9_007_199_254_740_991));
    // The same alert again (a resend after a crash): the same row.
    let again = store
        .journal_batch(&[notify(9_007_199_254_740_991, 1, "firegrid/v1/alert/g1")])
        .unwrap();
    assert_eq!(again, [JournalResult::Enqueued(9_007_199_254_740_991)]);
    assert_eq!(store.notifications_of(1).unwrap().len(), 1);
    // Another alert whose derived id collides: queued all the same, under a free id.
    let other = store
        .journal_batch(&[notify(9_007_199_254_740_991, 2, "firegrid/v1/alert/g1")])
        .unwrap();
    let [JournalResult::Enqueued(id)] = other[..] else {
        panic!("queued: {other:?}");
    };
    assert_ne!(id, 9_007_199_254_740_991);
    assert_eq!(store.notifications_of(2).unwrap()[0].id, id);
}

#[test]
fn prune_bounds_the_pending_list_and_the_notifications_outbox() {
    const DAY: u64 = 86_400_000;
    let dir = tmp();
    let path = db(&dir);
    let (store, _) = Store::open_with(
        &path,
        StoreOptions {
            pending_devices_max: 3,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    tree(&store);
    for (i, id) in ["p-1", "p-2", "p-3", "p-4", "p-5"].iter().enumerate() {
        let outcome = store
            .record_pending(&did(id), "firegrid/v1/dev/x/telemetry", T0 + i as u64)
            .unwrap();
        assert_eq!(outcome.dropped, u64::from(i >= 3), "{id}: {outcome:?}");
    }
    let notify = |episode_id: u64, sent_ms: u64| {
        JournalOp::Notify(NewNotification {
            id: None,
            episode_id,
            kind: NotificationKind::Opened,
            level: 0,
            channel: NotifyChannel::Mqtt,
            target: "firegrid/v1/alert/g1".into(),
            payload: serde_json::json!({ "episode": episode_id, "sent_ms": sent_ms }),
            next_attempt_ms: sent_ms,
        })
    };
    let ids: Vec<i64> = store
        .journal_batch(&[
            opened(1, "d-1", Category::Smoke),
            opened(2, "d-2", Category::Smoke),
            opened(3, "d-3", Category::Smoke),
            // Delivered long ago, delivered lately, never delivered for 8 days.
            notify(1, T0 - 100 * DAY),
            notify(2, T0 - DAY),
            notify(3, T0 - 8 * DAY),
        ])
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            JournalResult::Enqueued(id) => Some(id),
            _ => None,
        })
        .collect();
    store.mark_delivered(ids[0], T0 - 100 * DAY).unwrap();
    store.mark_delivered(ids[1], T0 - DAY).unwrap();

    let report = store.prune(T0).unwrap();
    assert_eq!(
        (
            report.pending_devices,
            report.notifications_delivered,
            report.notifications_undelivered
        ),
        (0, 1, 1),
        "the pending list never held more than 3: {report:?}"
    );
    let pending: Vec<String> = store
        .list_pending()
        .unwrap()
        .into_iter()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(
        pending,
        ["p-5", "p-4", "p-3"],
        "the most recently seen kept"
    );
    // A batch: the listed p-5 is updated, three new devices come in, and the three least
    // recently seen leave (p-5, seen before them, among them).
    let sighting = |id: &str, now: u64| crate::store::PendingSighting {
        id: did(id),
        topic: format!("firegrid/v1/dev/{id}/event"),
        messages: 2,
        now,
    };
    let listed = |store: &Store| -> Vec<(String, u64)> {
        store
            .list_pending()
            .unwrap()
            .into_iter()
            .map(|p| (p.id.to_string(), p.messages))
            .collect()
    };
    let outcome = store
        .record_pending_many(&[
            sighting("p-3", T0 + 10),
            sighting("q-1", T0 + 11),
            sighting("q-2", T0 + 12),
        ])
        .unwrap();
    assert_eq!((outcome.recorded, outcome.dropped), (3, 2), "{outcome:?}");
    assert_eq!(
        listed(&store),
        [("q-2".into(), 2), ("q-1".into(), 2), ("p-3".into(), 3)],
        "p-3 was updated and stays; p-4 and p-5 were seen least recently"
    );
    // More new devices in one batch than the list holds: the batch's last ones are kept.
    let outcome = store
        .record_pending_many(
            &(1..=5)
                .map(|i| sighting(&format!("r-{i}"), T0 + 20 + i))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    assert_eq!((outcome.recorded, outcome.dropped), (3, 5), "{outcome:?}");
    assert_eq!(
        listed(&store),
        [("r-5".into(), 2), ("r-4".into(), 2), ("r-3".into(), 2)]
    );
    assert!(store.notifications_of(1).unwrap().is_empty());
    assert_eq!(store.notifications_of(2).unwrap().len(), 1);
    assert!(store.notifications_of(3).unwrap().is_empty());
    let again = store.prune(T0).unwrap();
    assert_eq!(again, PruneReport::default(), "idempotent");
}

#[test]
fn a_journal_write_goes_between_two_chunks_of_a_fleets_statuses() {
    let dir = tmp();
    let store = open(&db(&dir));
    let fleet = 100_000;
    let updates: Vec<StatusUpdate> = (0..fleet)
        .map(|i| StatusUpdate {
            device: did(&format!("s-{i:06}")),
            seen_ms: T0,
            online: None,
            heartbeat: None,
        })
        .collect();
    let stored = |store: &Store| -> i64 {
        store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM device_status", [], |r| r.get(0))?))
            .unwrap()
    };
    std::thread::scope(|s| {
        let statuses = s.spawn(|| store.record_statuses(&updates).unwrap());
        // Once the first chunk is in, an alarm's commit waits for one chunk at most, not for
        // the fleet's.
        while stored(&store) == 0 {
            std::thread::yield_now();
        }
        store.journal_batch(&[new_event("d-1", 1)]).unwrap();
        let meanwhile = stored(&store);
        assert!(
            meanwhile < fleet,
            "the journal write waited for all {fleet} statuses"
        );
        statuses.join().unwrap();
    });
    assert_eq!(stored(&store), fleet);
}
