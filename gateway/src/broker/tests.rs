//! Tests of the gateway's client, in process, on free loopback ports, against a real Mosquitto. No fixed ports, no sleeps to synchronise: conditions are polled
//! with deadlines.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use firegrid_protocols::codec::MAX_PAYLOAD;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use firegrid_testkit::{Mosquitto, free_port, until};

const WAIT: Duration = Duration::from_secs(10);

fn config(addr: SocketAddr, client_id: &str) -> ClientConfig {
    ClientConfig {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::new(addr.ip().to_string(), addr.port(), client_id)
    }
}

async fn recv(rx: &mut Uplink) -> Incoming {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message within the deadline")
        .expect("the incoming channel is open")
}

/// Nothing more arrives within `quiet` (a bounded check for an absence, not a synchronisation).
async fn assert_nothing_more(rx: &mut Uplink, quiet: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected message on {}: {:?}", m.topic, m.payload);
    }
}

/// A third-party MQTT 3.1.1 client (rumqttc, automatic acks): publishes, and collects what its
/// subscriptions bring.
struct Peer {
    client: rumqttc::AsyncClient,
    messages: mpsc::UnboundedReceiver<rumqttc::Publish>,
    task: JoinHandle<()>,
}

impl Peer {
    async fn connect(addr: SocketAddr, id: &str) -> Self {
        let mut options = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let (up_tx, up_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut up = Some(up_tx);
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(up) = up.take() {
                            let _ = up.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, up_rx)
            .await
            .expect("peer connects")
            .expect("peer task runs");
        Self {
            client,
            messages,
            task,
        }
    }

    async fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .expect("peer queue has room");
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("peer queue has room");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A device: rumqttc's MQTT 5 client with a persistent session, as the firmware connects.
struct Device {
    client: rumqttc::v5::AsyncClient,
    messages: mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
    task: JoinHandle<()>,
}

impl Device {
    async fn connect(addr: SocketAddr, id: &str) -> Self {
        use rumqttc::v5::mqttbytes::v5::Packet;
        let mut options = rumqttc::v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(3600))
            .set_max_packet_size(Some(16 * 1024));
        let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let (up_tx, up_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut up = Some(up_tx);
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(up) = up.take() {
                            let _ = up.send(());
                        }
                    }
                    Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, up_rx)
            .await
            .expect("device connects over MQTT 5")
            .expect("device task runs");
        Self {
            client,
            messages,
            task,
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connected(cfg: ClientConfig) -> (BrokerHandle, Uplink, CancellationToken) {
    let cancel = CancellationToken::new();
    let (handle, rx) = Broker::connect(cfg, cancel.clone()).expect("valid config");
    handle.wait_connected(WAIT).await.expect("client connects");
    (handle, rx, cancel)
}

/// A device speaking MQTT 5 reaches the gateway's 3.1.1 client through the broker with
/// the protocol's largest payload, and the gateway's publishes reach the device on both links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_messages_go_both_ways_across_protocol_versions() {
    let broker = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(broker.addr(), "gw-versions")).await;

    let device = Device::connect(broker.addr(), "hz-0042").await;
    device
        .client
        .subscribe(
            "firegrid/v1/dev/hz-0042/ack",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        )
        .await
        .expect("room");
    let big = vec![b'{'; MAX_PAYLOAD];
    device
        .client
        .publish(
            "firegrid/v1/dev/hz-0042/event",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            big.clone(),
        )
        .await
        .expect("room");
    let m = recv(&mut rx).await;
    assert_eq!(m.topic, "firegrid/v1/dev/hz-0042/event");
    assert_eq!(m.payload.len(), MAX_PAYLOAD);
    assert!(m.ack.needs_ack());
    m.ack.ack().expect("acked");

    // A third-party 3.1.1 tool publishes telemetry too.
    let tool = Peer::connect(broker.addr(), "tool").await;
    tool.publish("firegrid/v1/dev/hz-0043/telemetry", b"{\"seq\":1}")
        .await;
    let m = recv(&mut rx).await;
    assert_eq!(m.topic, "firegrid/v1/dev/hz-0043/telemetry");
    m.ack.ack().expect("acked");

    // Gateway -> device, on the normal and the urgent link. The device's SUBACK may still be
    // on its way: publish until the first one arrives.
    let mut device = device;
    let mut got = None;
    for _ in 0..100 {
        gw.publish(
            Priority::Normal,
            "firegrid/v1/dev/hz-0042/ack",
            Bytes::from_static(b"{\"seqs\":[1],\"ts\":1}"),
            Qos::AtLeastOnce,
            false,
        )
        .await
        .expect("queued");
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(100), device.messages.recv()).await
        {
            got = Some(p);
            break;
        }
    }
    let p = got.expect("the device gets the gateway's ack");
    assert_eq!(&p.topic[..], b"firegrid/v1/dev/hz-0042/ack");
    gw.publish(
        Priority::Urgent,
        "firegrid/v1/dev/hz-0042/ack",
        Bytes::from_static(b"urgent"),
        Qos::AtLeastOnce,
        false,
    )
    .await
    .expect("queued");
    let deadline = Instant::now() + WAIT;
    loop {
        let p = tokio::time::timeout_at(deadline.into(), device.messages.recv())
            .await
            .expect("the urgent publish arrives")
            .expect("device task runs");
        if &p.payload[..] == b"urgent" {
            break;
        }
    }
    let c = gw.counters();
    assert_eq!(c.connection_errors, 0, "{c:?}");
    assert_eq!(c.reconnects, 0, "{c:?}");
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
}

/// Ingest may finish messages out of order; PUBACKs still go out in order, so a broker (rumqttd
/// disconnects a client acking out of order) keeps the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_taken_out_of_order_are_released_in_order() {
    let broker = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(broker.addr(), "gw-order")).await;
    let tool = Peer::connect(broker.addr(), "tool-order").await;
    for i in 0..3 {
        tool.publish("firegrid/v1/dev/d1/event", format!("{i}").as_bytes())
            .await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(recv(&mut rx).await);
    }
    let payloads: Vec<_> = got.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(payloads, [&b"0"[..], b"1", b"2"]);
    while let Some(m) = got.pop() {
        m.ack.ack().expect("acked"); // 2, then 1, then 0
    }
    until("3 acked", WAIT, || (gw.counters().acked == 3).then_some(())).await;
    tool.publish("firegrid/v1/dev/d1/event", b"3").await;
    let m = recv(&mut rx).await;
    assert_eq!(&m.payload[..], b"3");
    assert!(!m.redelivered);
    m.ack.ack().expect("acked");
    until("4 acked", WAIT, || (gw.counters().acked == 4).then_some(())).await;
    let c = gw.counters();
    assert_eq!((c.connection_errors, c.reconnects), (0, 0), "{c:?}");
    cancel.cancel();
}

// ---- against a real Mosquitto ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_redelivers_what_was_not_acked_after_reconnect() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(mosquitto.addr(), "gw-manual-ack")).await;
    let tool = Peer::connect(mosquitto.addr(), "tool-manual-ack").await;

    tool.publish("firegrid/v1/dev/d3/event", b"A").await;
    tool.publish("firegrid/v1/dev/d3/event", b"B").await;
    let a = recv(&mut rx).await;
    let b = recv(&mut rx).await;
    assert_eq!((&a.payload[..], &b.payload[..]), (&b"A"[..], &b"B"[..]));
    assert!(!a.redelivered);

    // A is not taken (dropped), B is held: the client drops the connection and Mosquitto
    // redelivers both on the resumed session; B's old token acks nothing any more.
    let started = Instant::now();
    drop(a);
    let a2 = recv(&mut rx).await;
    eprintln!("redelivered after {:?}", started.elapsed());
    assert_eq!(&a2.payload[..], b"A");
    assert!(a2.redelivered, "Mosquitto sets DUP on a redelivery");
    assert_eq!(b.ack.ack(), Err(AckError::Stale));
    let b2 = recv(&mut rx).await;
    assert_eq!(&b2.payload[..], b"B");
    a2.ack.ack().expect("acked");
    b2.ack.ack().expect("acked");
    until("2 acked", WAIT, || (gw.counters().acked == 2).then_some(())).await;

    // Acked messages do not come again after another reconnect.
    tool.publish("firegrid/v1/dev/d3/event", b"C").await;
    let c = recv(&mut rx).await;
    drop(c);
    let c2 = recv(&mut rx).await;
    assert_eq!(&c2.payload[..], b"C");
    c2.ack.ack().expect("acked");
    assert_nothing_more(&mut rx, Duration::from_millis(300)).await;

    let n = gw.counters();
    assert_eq!(n.forced_reconnects, 2, "{n:?}");
    assert_eq!(n.session_losses, 0, "{n:?}");
    assert_eq!(n.acks_stale, 1, "{n:?}");
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_client_resubscribes_by_itself() {
    let mut mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(mosquitto.addr(), "gw-restart")).await;
    assert_eq!(
        gw.counters().resubscribes,
        2,
        "both subscribing links subscribed at their first connection"
    );
    // Record every state the client goes through (a watch keeps only the latest, so a quick
    // reconnect may hide the disconnected state from a late reader).
    let mut state = gw.state();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while state.changed().await.is_ok() {
            seen.push(*state.borrow_and_update());
        }
        seen
    });

    let started = Instant::now();
    mosquitto.restart().await.expect("mosquitto restarts");
    // All four links notice and reconnect; the broker lost their sessions; the two subscribing
    // links subscribe again.
    until(
        "4 session losses, 4 resubscriptions and a connected client",
        WAIT,
        || {
            let c = gw.counters();
            (c.session_losses == 4 && c.resubscribes == 4 && gw.state().borrow().is_connected())
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "reconnected and resubscribed {:?} after the restart began",
        started.elapsed()
    );
    let c = gw.counters();
    assert!(c.connection_errors >= 4, "{c:?}");
    assert_eq!(c.reconnects, 4, "{c:?}");

    let tool = Peer::connect(mosquitto.addr(), "tool-restart").await;
    tool.publish("firegrid/v1/dev/d4/status", b"{\"state\":\"online\"}")
        .await;
    let m = recv(&mut rx).await;
    assert_eq!(m.topic, "firegrid/v1/dev/d4/status");
    m.ack.ack().expect("acked");

    // The publish links work on the new sessions too.
    let mut watcher = Peer::connect(mosquitto.addr(), "watcher-restart").await;
    watcher.subscribe("firegrid/v1/alert/#").await;
    let mut got = false;
    for _ in 0..100 {
        gw.publish(
            Priority::Urgent,
            "firegrid/v1/alert/g1",
            &b"fire"[..],
            Qos::AtLeastOnce,
            false,
        )
        .await
        .expect("queued");
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(100), watcher.messages.recv()).await
        {
            got = true;
            break;
        }
    }
    assert!(got, "an alert reaches a subscriber after the restart");
    cancel.cancel();
    let seen = tokio::time::timeout(WAIT, seen)
        .await
        .expect("stops")
        .expect("no panic");
    eprintln!("states: {seen:?}");
    for link in [|s: &BrokerState| s.ingest, |s: &BrokerState| s.alarms] {
        assert!(
            seen.iter()
                .map(link)
                .any(|l| l == LinkState::Resubscribing || l == LinkState::Disconnected)
        );
    }
    assert!(seen.last().is_some_and(BrokerState::is_stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_ingest_gets_qos1_messages_redelivered_not_lost() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let cfg = ClientConfig {
        ingest_capacity: 1,
        ingest_stall_timeout: Duration::from_millis(200),
        ..config(mosquitto.addr(), "gw-stall")
    };
    let (gw, mut rx, cancel) = connected(cfg).await;
    let tool = Peer::connect(mosquitto.addr(), "tool-stall").await;
    for i in 0..3 {
        tool.publish("firegrid/v1/dev/d5/event", format!("{i}").as_bytes())
            .await;
    }
    // Nobody reads: the client gives up after the stall timeout and reconnects.
    until("a dropped ingest counted", WAIT, || {
        (gw.counters().ingest_dropped >= 1).then_some(())
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 {
        let m = recv(&mut rx).await;
        seen.insert(m.payload.clone());
        m.ack.ack().ok(); // Stale for copies of an older connection: they come again
    }
    assert!(gw.counters().forced_reconnects >= 1);
    cancel.cancel();
}

// ---- publishing ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_into_a_full_queue_fails_within_its_timeout() {
    // Nothing listens: the links never connect and never drain their queues.
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = ClientConfig {
        queue_capacity: 2,
        urgent_queue_capacity: 2,
        publish_timeout: Duration::from_millis(200),
        ..config(addr, "gw-full")
    };
    let cancel = CancellationToken::new();
    let (gw, _rx) = Broker::connect(cfg, cancel.clone()).expect("valid config");
    let topic = "firegrid/v1/dev/d6/ack";
    for _ in 0..2 {
        gw.publish(Priority::Normal, topic, &b"x"[..], Qos::AtLeastOnce, false)
            .await
            .expect("room in the queue");
    }
    let started = Instant::now();
    let err = gw
        .publish(Priority::Normal, topic, &b"x"[..], Qos::AtLeastOnce, false)
        .await
        .expect_err("queue full");
    let waited = started.elapsed();
    assert!(
        matches!(
            err,
            BrokerError::Backpressure {
                priority: Priority::Normal,
                ..
            }
        ),
        "{err}"
    );
    // It waited its timeout for room, and gave up (the upper bound only tells a hang from a
    // timeout: 5 s is a margin no scheduling delay reaches).
    let publish_timeout = Duration::from_millis(200);
    assert!(
        waited >= publish_timeout && waited < publish_timeout + Duration::from_secs(5),
        "{waited:?}"
    );

    // try_publish does not wait for room: it answers before a publish's timeout could pass.
    let started = Instant::now();
    let err = gw
        .try_publish(Priority::Normal, topic, &b"x"[..], Qos::AtMostOnce, false)
        .await
        .expect_err("queue full");
    assert!(matches!(err, BrokerError::Backpressure { .. }), "{err}");
    assert!(
        started.elapsed() < publish_timeout,
        "{:?}",
        started.elapsed()
    );

    // The urgent link has its own queue: an alert is not behind the full normal queue.
    gw.try_publish(
        Priority::Urgent,
        "firegrid/v1/alert/g1",
        &b"fire"[..],
        Qos::AtLeastOnce,
        false,
    )
    .await
    .expect("urgent queue has room");

    let err = gw
        .publish(
            Priority::Urgent,
            "firegrid/v1/alert/+",
            &b"x"[..],
            Qos::AtMostOnce,
            false,
        )
        .await
        .expect_err("wildcards are not topic names");
    assert!(matches!(err, BrokerError::InvalidTopic(_)), "{err}");
    let huge = Bytes::from(vec![0u8; 3 * MAX_PAYLOAD]);
    let err = gw
        .publish(
            Priority::Urgent,
            "firegrid/v1/alert/g1",
            huge,
            Qos::AtMostOnce,
            false,
        )
        .await
        .expect_err("too large");
    assert!(matches!(err, BrokerError::TooLarge { .. }), "{err}");
    let c = gw.counters();
    assert_eq!((c.publishes, c.publish_rejected), (3, 4), "{c:?}");
    assert_eq!(gw.state().borrow().ingest, LinkState::Disconnected);

    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
    let err = gw
        .publish(
            Priority::Urgent,
            "firegrid/v1/alert/g1",
            &b"x"[..],
            Qos::AtMostOnce,
            false,
        )
        .await
        .expect_err("stopped");
    assert!(matches!(err, BrokerError::Stopped), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_every_link_and_closes_incoming() {
    let broker = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(broker.addr(), "gw-cancel")).await;
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
    assert!(gw.state().borrow().is_stopped());
    let end = tokio::time::timeout(WAIT, rx.recv()).await.expect("closes");
    assert!(end.is_none());
}

#[test]
fn connect_outside_a_runtime_is_an_error() {
    let cfg = ClientConfig::new("127.0.0.1", 1, "gw");
    let err = Broker::connect(cfg, CancellationToken::new()).expect_err("no runtime");
    assert!(matches!(err, BrokerError::NoRuntime));
}

// ---- confirmed publishes ----

/// A client config for a publish-only client (no ingest subscriptions).
fn publisher(addr: SocketAddr, client_id: &str) -> ClientConfig {
    ClientConfig {
        filters: Vec::new(),
        ..config(addr, client_id)
    }
}

/// The retained message on `topic`, read by a fresh subscriber: proof the broker holds it.
async fn retained(addr: SocketAddr, id: &str, topic: &str) -> Bytes {
    let mut reader = Peer::connect(addr, id).await;
    reader.subscribe(topic).await;
    let m = tokio::time::timeout(WAIT, reader.messages.recv())
        .await
        .expect("the retained message within the deadline")
        .expect("peer runs");
    assert!(m.retain, "it is the retained one");
    m.payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_publish_returns_once_the_broker_holds_the_message() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, _rx, cancel) = connected(publisher(mosquitto.addr(), "gw-confirm")).await;
    for (priority, topic) in [
        (Priority::Urgent, "firegrid/v1/alert/c1"),
        (Priority::Normal, "firegrid/v1/dev/c1/config"),
    ] {
        gw.publish_confirmed(priority, topic, &b"confirmed"[..], true, WAIT)
            .await
            .expect("the broker acknowledges it");
        // Retained: a subscriber that comes afterwards gets it, so the broker had it.
        let payload = retained(mosquitto.addr(), &format!("reader-{priority:?}"), topic).await;
        assert_eq!(&payload[..], b"confirmed");
    }
    let err = gw
        .publish_confirmed(
            Priority::Urgent,
            "firegrid/v1/alert/+",
            &b"x"[..],
            false,
            WAIT,
        )
        .await
        .expect_err("not a topic name");
    assert!(matches!(err, BrokerError::InvalidTopic(_)), "{err}");
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
    let err = gw
        .publish_confirmed(
            Priority::Urgent,
            "firegrid/v1/alert/c1",
            &b"x"[..],
            false,
            WAIT,
        )
        .await
        .expect_err("stopped");
    assert!(matches!(err, BrokerError::Stopped), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwaited_publish_is_queued_at_once_and_confirmed_when_the_broker_answers() {
    let mut mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, _rx, cancel) = connected(publisher(mosquitto.addr(), "gw-unwaited")).await;
    let topic = "firegrid/v1/alert/c3";
    // The broker frozen: nothing answers, yet the publish is queued and the call returns.
    mosquitto.pause();
    let confirmation = tokio::time::timeout(
        WAIT,
        gw.publish_unwaited(Priority::Urgent, topic, &b"early"[..], true, WAIT),
    )
    .await
    .expect("returns without the broker's answer")
    .expect("queued on the connected link");
    mosquitto.resume();
    confirmation
        .confirmed()
        .await
        .expect("the broker acknowledges it once it runs again");
    let payload = retained(mosquitto.addr(), "reader-unwaited", topic).await;
    assert_eq!(&payload[..], b"early");

    // A link that is down refuses at once: nothing is queued to go out after the reconnect.
    mosquitto.kill();
    let mut state = gw.state();
    tokio::time::timeout(WAIT, state.wait_for(|s| s.urgent != LinkState::Connected))
        .await
        .expect("the client sees the broker gone")
        .expect("runs");
    let err = gw
        .publish_unwaited(Priority::Urgent, topic, &b"down"[..], true, WAIT)
        .await
        .expect_err("the link is down");
    assert!(matches!(err, BrokerError::NotConfirmed { .. }), "{err}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_publish_fails_while_the_broker_is_down_and_works_after_its_restart() {
    let mut mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, _rx, cancel) = connected(publisher(mosquitto.addr(), "gw-confirm-down")).await;
    let topic = "firegrid/v1/alert/c2";
    gw.publish_confirmed(Priority::Urgent, topic, &b"before"[..], true, WAIT)
        .await
        .expect("confirmed while the broker runs");

    mosquitto.kill();
    let timeout = Duration::from_millis(800);
    for _ in 0..3 {
        let started = Instant::now();
        let err = gw
            .publish_confirmed(Priority::Urgent, topic, &b"during"[..], true, timeout)
            .await
            .expect_err("nobody can confirm it");
        let waited = started.elapsed();
        assert!(matches!(err, BrokerError::NotConfirmed { .. }), "{err}");
        // Within its timeout (the margin only tells a hang from a timeout on a busy machine).
        assert!(waited < timeout + Duration::from_secs(5), "{waited:?}");
        eprintln!("broker down: {err} after {waited:?}");
    }

    mosquitto.restart().await.expect("mosquitto restarts");
    // The links reconnect with back-off: retry until confirmed, as the notifier does.
    let deadline = Instant::now() + WAIT;
    loop {
        match gw
            .publish_confirmed(Priority::Urgent, topic, &b"after"[..], true, timeout)
            .await
        {
            Ok(()) => break,
            Err(err) => {
                assert!(
                    Instant::now() < deadline,
                    "not confirmed after restart: {err}"
                );
                assert!(matches!(err, BrokerError::NotConfirmed { .. }), "{err}");
            }
        }
    }
    // The restarted broker (no persistence) holds the confirmed one.
    let payload = retained(mosquitto.addr(), "reader-after", topic).await;
    assert_eq!(&payload[..], b"after");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_confirmed_and_plain_publishes_are_each_confirmed() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let cfg = ClientConfig {
        max_inflight: 10, // packet ids wrap around several times
        ..publisher(mosquitto.addr(), "gw-confirm-mix")
    };
    let (gw, _rx, cancel) = connected(cfg).await;
    let mut watcher = Peer::connect(mosquitto.addr(), "watcher-mix").await;
    watcher.subscribe("firegrid/v1/alert/#").await;
    // The subscription is in place once a confirmed probe arrives.
    let probe = "firegrid/v1/alert/probe";
    let deadline = Instant::now() + WAIT;
    loop {
        gw.publish_confirmed(Priority::Urgent, probe, &b"p"[..], false, WAIT)
            .await
            .expect("probe confirmed");
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(100), watcher.messages.recv()).await
        {
            break;
        }
        assert!(Instant::now() < deadline, "the watcher never subscribed");
    }
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(200), watcher.messages.recv()).await
    {}

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        let gw = gw.clone();
        tasks.spawn(async move {
            let topic = format!("firegrid/v1/alert/m{i}");
            let payload = Bytes::from(i.to_string());
            match i % 3 {
                0 => gw
                    .publish_confirmed(Priority::Urgent, topic, payload, false, WAIT)
                    .await
                    .map(|()| true),
                1 => gw
                    .publish(Priority::Urgent, topic, payload, Qos::AtLeastOnce, false)
                    .await
                    .map(|()| false),
                _ => gw
                    .publish(Priority::Urgent, topic, payload, Qos::AtMostOnce, false)
                    .await
                    .map(|()| false),
            }
            .map_err(|e| format!("#{i}: {e}"))
        });
    }
    let mut confirmed = 0;
    while let Some(result) = tasks.join_next().await {
        if result
            .expect("no panic")
            .expect("queued, and confirmed where asked")
        {
            confirmed += 1;
        }
    }
    assert_eq!(confirmed, 34);
    // Every QoS 1 one arrives (QoS 0 ones on loopback too, but that is not promised).
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 67 {
        let m = tokio::time::timeout(WAIT, watcher.messages.recv())
            .await
            .expect("the messages within the deadline")
            .expect("peer runs");
        let i: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        if i % 3 != 2 {
            seen.insert(i);
        }
    }
    cancel.cancel();
}

/// How [`FakeBroker`] treats PUBLISH packets.
#[derive(Debug, Clone, Copy)]
enum FakeMode {
    /// PUBACK those whose payload starts with `ack`; ignore the others.
    AckSome,
    /// Close the connection at the first PUBLISH, without a PUBACK.
    DropOnPublish,
    /// Close the connection of the first PUBLISH of all; after that, say the session is present
    /// to new connections (so rumqttc resends what it had sent) and behave as
    /// [`FakeMode::AckSome`].
    DropFirstThenAckSome,
}

/// A minimal MQTT 3.1.1 broker for the publish links: CONNACK (no session), PINGRESP, and
/// PUBLISH as its mode says. Reports the payload of every PUBLISH it reads.
struct FakeBroker {
    addr: SocketAddr,
    published: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<()>,
}

impl FakeBroker {
    async fn start(mode: FakeMode) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound");
        let (tx, published) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            while let Ok((mut socket, _)) = listener.accept().await {
                let tx = tx.clone();
                let dropped = dropped.clone();
                let session = u8::from(dropped.load(std::sync::atomic::Ordering::SeqCst));
                tokio::spawn(async move {
                    loop {
                        let mut first = [0u8; 1];
                        if socket.read_exact(&mut first).await.is_err() {
                            return;
                        }
                        let (mut len, mut shift) = (0usize, 0);
                        loop {
                            let mut b = [0u8; 1];
                            if socket.read_exact(&mut b).await.is_err() {
                                return;
                            }
                            len |= usize::from(b[0] & 0x7f) << shift;
                            shift += 7;
                            if b[0] & 0x80 == 0 {
                                break;
                            }
                        }
                        let mut body = vec![0u8; len];
                        if socket.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let reply: Vec<u8> = match first[0] >> 4 {
                            1 => vec![0x20, 0x02, session, 0x00], // CONNACK
                            12 => vec![0xd0, 0x00],               // PINGRESP
                            3 => {
                                let qos = (first[0] >> 1) & 3;
                                let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                                let mut at = 2 + topic_len;
                                let pkid = (qos > 0).then(|| {
                                    at += 2;
                                    [body[at - 2], body[at - 1]]
                                });
                                let payload = body[at..].to_vec();
                                let ack = payload.starts_with(b"ack");
                                let _ = tx.send(payload);
                                let mode = match mode {
                                    FakeMode::DropFirstThenAckSome
                                        if !dropped
                                            .swap(true, std::sync::atomic::Ordering::SeqCst) =>
                                    {
                                        FakeMode::DropOnPublish
                                    }
                                    FakeMode::DropFirstThenAckSome => FakeMode::AckSome,
                                    mode => mode,
                                };
                                match (mode, pkid) {
                                    (FakeMode::DropOnPublish, _) => return,
                                    (FakeMode::AckSome, Some(id)) if ack => {
                                        vec![0x40, 0x02, id[0], id[1]]
                                    }
                                    (FakeMode::AckSome, _) => Vec::new(),
                                    (FakeMode::DropFirstThenAckSome, _) => unreachable!(),
                                }
                            }
                            14 => return, // DISCONNECT
                            _ => Vec::new(),
                        };
                        if !reply.is_empty() && socket.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            published,
            task,
        }
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_publishes_the_broker_acknowledged_are_confirmed() {
    let mut fake = FakeBroker::start(FakeMode::AckSome).await;
    let (gw, _rx, cancel) = connected(publisher(fake.addr, "gw-confirm-some")).await;
    // 60 publishes in queue order: confirmed ones the
    // broker acks, confirmed ones it ignores, and plain QoS 1 / QoS 0 ones in between (which
    // it acks or not, so their packet ids and PUBACKs are mixed in).
    let mut tasks = tokio::task::JoinSet::new();
    let timeout = Duration::from_secs(2);
    for i in 0..60u32 {
        let (kind, payload) = match i % 5 {
            0 => ("confirmed", format!("ack-{i}")),
            1 => ("confirmed", format!("no-{i}")),
            2 => ("qos1", format!("ack-{i}")),
            3 => ("qos1", format!("no-{i}")),
            _ => ("qos0", format!("no-{i}")),
        };
        let topic = "firegrid/v1/alert/some";
        if kind == "confirmed" {
            let publisher = gw.clone();
            tasks.spawn(async move {
                let result = publisher
                    .publish_confirmed(Priority::Urgent, topic, payload.clone(), false, timeout)
                    .await;
                (payload, result)
            });
            // Not a sleep: wait until that publish is queued (its task then only waits for the
            // PUBACK), so the queue order is the loop's order.
            let expected = u64::from(i) + 1;
            until(&format!("publish {expected} queued"), WAIT, || {
                (gw.counters().publishes >= expected).then_some(())
            })
            .await;
        } else {
            let qos = if kind == "qos0" {
                Qos::AtMostOnce
            } else {
                Qos::AtLeastOnce
            };
            gw.publish(Priority::Urgent, topic, payload, qos, false)
                .await
                .expect("queued");
        }
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.expect("no panic"));
    }
    assert_eq!(results.len(), 24);
    for (payload, result) in &results {
        if payload.starts_with("ack") {
            assert!(result.is_ok(), "{payload}: {result:?}");
        } else {
            let err = result.as_ref().expect_err(payload);
            assert!(
                matches!(err, BrokerError::NotConfirmed { reason, .. } if reason.contains("no PUBACK")),
                "{payload}: {err}"
            );
        }
    }
    let mut count = 0;
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(50), fake.published.recv()).await
    {
        count += 1;
    }
    assert!(count >= 60, "the broker read {count}");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_before_the_puback_fails_the_confirmed_publish() {
    let mut fake = FakeBroker::start(FakeMode::DropOnPublish).await;
    let (gw, _rx, cancel) = connected(publisher(fake.addr, "gw-confirm-drop")).await;
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let err = gw
        .publish_confirmed(
            Priority::Urgent,
            "firegrid/v1/alert/drop",
            &b"x"[..],
            false,
            timeout,
        )
        .await
        .expect_err("the connection dropped before any PUBACK");
    let waited = started.elapsed();
    assert!(
        matches!(&err, BrokerError::NotConfirmed { reason, .. } if reason.contains("dropped")),
        "{err}"
    );
    assert!(
        waited < timeout,
        "failed at the drop, not at the timeout: {waited:?}"
    );
    let sent = tokio::time::timeout(WAIT, fake.published.recv())
        .await
        .expect("the broker read it")
        .expect("open");
    assert_eq!(sent, b"x");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_after_a_reconnect_do_not_confirm_other_publishes() {
    let mut fake = FakeBroker::start(FakeMode::DropFirstThenAckSome).await;
    let (gw, _rx, cancel) = connected(publisher(fake.addr, "gw-confirm-resend")).await;
    let topic = "firegrid/v1/alert/resend";
    let timeout = Duration::from_secs(2);
    let err = gw
        .publish_confirmed(Priority::Urgent, topic, &b"ack-first"[..], false, timeout)
        .await
        .expect_err("the connection dropped before its PUBACK");
    assert!(matches!(err, BrokerError::NotConfirmed { .. }), "{err}");
    // Queued around the reconnect: a plain QoS 1 publish and a QoS 0 one.
    gw.publish(
        Priority::Urgent,
        topic,
        &b"ack-plain"[..],
        Qos::AtLeastOnce,
        false,
    )
    .await
    .expect("queued");
    gw.publish(
        Priority::Urgent,
        topic,
        &b"no-plain0"[..],
        Qos::AtMostOnce,
        false,
    )
    .await
    .expect("queued");
    // The broker kept the session: rumqttc resends "ack-first", which the broker acks. That
    // PUBACK must not confirm "no-second", which the broker never acks.
    let err = gw
        .publish_confirmed(Priority::Urgent, topic, &b"no-second"[..], false, timeout)
        .await
        .expect_err("never acknowledged");
    assert!(
        matches!(&err, BrokerError::NotConfirmed { reason, .. } if reason.contains("no PUBACK")),
        "{err}"
    );
    gw.publish_confirmed(Priority::Urgent, topic, &b"ack-third"[..], false, timeout)
        .await
        .expect("acknowledged");
    let mut read = Vec::new();
    while let Ok(Some(p)) =
        tokio::time::timeout(Duration::from_millis(100), fake.published.recv()).await
    {
        read.push(String::from_utf8(p).unwrap());
    }
    eprintln!("the broker read {read:?}");
    assert_eq!(
        read.iter().filter(|p| *p == "ack-first").count(),
        2,
        "{read:?}"
    );
    cancel.cancel();
}

/// Events travel on their own connection and come out of [`Uplink::recv`] before telemetry
/// that arrived earlier: an alarm never waits behind a telemetry backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_overtake_waiting_telemetry() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(mosquitto.addr(), "gw-overtake")).await;
    let tool = Peer::connect(mosquitto.addr(), "tool-overtake").await;
    // Fewer than Mosquitto's in-flight window (20): all of them wait, unacknowledged.
    for i in 0..15 {
        tool.publish("firegrid/v1/dev/d6/telemetry", format!("{i}").as_bytes())
            .await;
    }
    until("15 messages queued", WAIT, || {
        (rx.len() == 15).then_some(())
    })
    .await;
    tool.publish("firegrid/v1/dev/d6/event", b"smoke").await;
    until("16 messages queued", WAIT, || {
        (rx.len() == 16).then_some(())
    })
    .await;
    let first = recv(&mut rx).await;
    assert_eq!(first.topic, "firegrid/v1/dev/d6/event");
    first.ack.ack().expect("acked");
    for i in 0..15 {
        let m = rx.try_recv().expect("the telemetry waits, in order");
        assert_eq!(&m.payload[..], format!("{i}").as_bytes());
        m.ack.ack().expect("acked");
    }
    assert!(rx.is_empty());
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
}

/// Messages from elsewhere (polled Modbus monitors) join the same queues with the same
/// priority, and stop being accepted once the links have stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uplink_sender_joins_the_queues_with_their_priority() {
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let (gw, mut rx, cancel) = connected(config(mosquitto.addr(), "gw-join")).await;
    let tx = rx.sender().expect("the links run");
    let local = |topic: &str| Incoming {
        topic: topic.into(),
        payload: Bytes::from_static(b"{}"),
        received_at: Instant::now(),
        retained: false,
        redelivered: false,
        ack: AckToken::none(),
    };
    tx.send(local("firegrid/v1/dev/m1/telemetry"))
        .await
        .expect("queued");
    tx.send(local("firegrid/v1/dev/m1/event"))
        .await
        .expect("queued");
    assert_eq!(recv(&mut rx).await.topic, "firegrid/v1/dev/m1/event");
    assert_eq!(recv(&mut rx).await.topic, "firegrid/v1/dev/m1/telemetry");
    drop(tx);
    cancel.cancel();
    tokio::time::timeout(WAIT, gw.stopped())
        .await
        .expect("stops");
    assert!(rx.sender().is_none(), "no sender once the links stopped");
}
