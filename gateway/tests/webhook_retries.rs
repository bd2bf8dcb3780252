//! Webhook retries stop once the episode's ticket is acknowledged — through the running
//! notifier (`pipeline::notifier`), a real store and a local receiver that always fails.
//!
//! No fixed ports (the receiver binds port 0; the broker client, unused by the webhook
//! notifier, points at a port nobody listens on) and no sleeps to synchronise: every wait polls
//! an observable (requests received, a metric, the outbox) with a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use firegrid_gateway::broker::{Broker, ClientConfig};
use firegrid_gateway::engine::Output;
use firegrid_gateway::metrics::Metrics;
use firegrid_gateway::model::{Category, EpisodeKey, Source, TicketState};
use firegrid_gateway::notify::alert::{Alert, AlertKind};
use firegrid_gateway::notify::notifier;
use firegrid_gateway::notify::webhook::address::AddressPolicy;
use firegrid_gateway::notify::webhook::{Webhook, Webhooks};
use firegrid_gateway::protocols::{DeviceId, GridId};
use firegrid_gateway::store::{
    AuditFilter, JournalOp, JournalResult, JournalWriter, NEVER_MS, NewNotification,
    NotificationKind, NotifyChannel, Store, WriterOptions,
};

/// The first attempt fails, its retry 1 s later fails, the next 2 s later is stopped; the
/// outbox is swept every second.
const DEADLINE: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(d.as_millis()).expect("ms fit in u64")
}

async fn until<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    firegrid_testkit::until(what, DEADLINE, check).await
}

fn stopped_count(metrics: &Metrics) -> Option<u64> {
    metrics
        .render()
        .lines()
        .find_map(|l| {
            l.strip_prefix("firegrid_alerts_total{channel=\"webhook\",result=\"stopped\"} ")
        })
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_stop_once_the_ticket_is_acknowledged() {
    // A receiver that always answers 503.
    let requests = Arc::new(AtomicUsize::new(0));
    let r = requests.clone();
    let app = axum::Router::new().route(
        "/hook/T0KEN",
        post(move || {
            r.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener");
    let url = format!(
        "http://{}/hook/T0KEN",
        listener.local_addr().expect("its address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A store with one open episode and its webhook alert in the outbox.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (store, _) = Store::open(dir.path().join("firegrid.db")).expect("the store opens");
    let now = now_ms();
    let device = DeviceId::new("hz-0042").expect("a device id");
    let grid = GridId::new("g1").expect("a grid id");
    let alert = Alert {
        alert_id: 0,
        episode: 1,
        what: AlertKind::Opened,
        category: Category::Alarm,
        device: device.to_string(),
        channel: Some(0),
        area: grid.clone(),
        level: 0,
        source: Source::Device,
        started_ms: now,
        quantity: None,
        value: None,
        threshold: None,
        detail: None,
        sent_ms: now,
        reason: None,
        test: false,
    };
    let results = store
        .journal_batch(&[
            JournalOp::Engine {
                output: Output::Opened {
                    id: 1,
                    key: EpisodeKey {
                        device,
                        channel: Some(0),
                        category: Category::Alarm,
                    },
                    grid,
                    source: Source::Device,
                    level: None,
                    detail: None,
                },
                at_ms: now,
            },
            JournalOp::Notify(NewNotification {
                id: None,
                episode_id: 1,
                kind: NotificationKind::Opened,
                level: 0,
                channel: NotifyChannel::Webhook,
                target: url.clone(),
                payload: serde_json::to_value(&alert).expect("an alert is JSON"),
                next_attempt_ms: now,
            }),
        ])
        .expect("journaled");
    let JournalResult::Enqueued(id) = results[1] else {
        panic!("{results:?}");
    };
    let (journal, _writer) =
        JournalWriter::spawn(store.clone(), WriterOptions::default()).expect("a journal writer");

    // The webhook notifier, as the gateway runs it (the broker is not used for webhooks).
    let cancel = CancellationToken::new();
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = gone.local_addr().expect("its address").port();
    drop(gone);
    let (broker, _uplink) = Broker::connect(
        ClientConfig::new("127.0.0.1", port, "webhook-test"),
        cancel.clone(),
    )
    .expect("a broker client");
    let webhooks = Webhooks::new([Webhook {
        url: url.clone(),
        secret: None,
        // The receiver is on loopback.
        policy: AddressPolicy::AllowPrivate,
    }])
    .expect("webhooks");
    let metrics = Arc::new(Metrics::new());
    let (_queue, rx) = mpsc::channel(16);
    let task = tokio::spawn(notifier(
        NotifyChannel::Webhook,
        store.clone(),
        journal,
        broker,
        webhooks,
        metrics.clone(),
        rx,
        cancel.clone(),
    ));

    // Unacknowledged: retried.
    until("a failed attempt and its retry", || {
        (requests.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert_eq!(stopped_count(&metrics), Some(0));
    store
        .ticket_transition(
            1,
            TicketState::Acknowledged,
            "grid-worker-li",
            None,
            now_ms(),
        )
        .expect("acknowledged");

    // Acknowledged: the next due retry is not made, but stopped, counted and journaled.
    until("the stop to be counted", || {
        (stopped_count(&metrics) == Some(1)).then_some(())
    })
    .await;
    let at_stop = requests.load(Ordering::SeqCst);
    let row = until("the stop to be journaled", || {
        let n = store.notifications_of(1).expect("readable")[0].clone();
        (n.fields.next_attempt_ms == NEVER_MS).then_some(n)
    })
    .await;
    assert_eq!(row.id, id);
    assert_eq!(row.delivered_ms, None, "a stopped alert is not delivered");
    let audit = store
        .audit_log(&AuditFilter {
            action: Some("notification.stopped".into()),
            ..AuditFilter::default()
        })
        .expect("the audit log");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].subject, format!("notification/{id}"));
    assert_eq!(
        audit[0].detail["reason"],
        "ticket acknowledged: webhook retries stop"
    );
    assert!(
        store
            .due_notifications(NEVER_MS - 1, 10)
            .expect("readable")
            .is_empty(),
        "a stopped alert is never due again"
    );
    cancel.cancel();
    task.await.expect("the notifier stops");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        at_stop,
        "a request after the stop"
    );
    eprintln!("webhook retries: {at_stop} attempts before the acknowledgement stopped them");
}
