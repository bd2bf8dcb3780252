//! An observing MQTT 3.1.1 client (rumqttc, automatic PUBACKs): publishes QoS 1 and records
//! every message its subscriptions bring, with the time it arrived. It reconnects by itself
//! (a test may restart the broker); a persistent session keeps its subscriptions then.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::wait::{until, within};

/// How long connecting and subscribing may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A message the client received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Whether the broker delivered it as a retained message.
    pub retain: bool,
    /// When it arrived.
    pub at: Instant,
    /// The wall clock when it arrived, ms since the Unix epoch.
    pub at_ms: u64,
}

impl Received {
    /// The payload as JSON.
    ///
    /// # Panics
    /// If it is not JSON, naming the topic.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {:?}",
                self.topic,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

/// How the client logs in and keeps its session.
#[derive(Debug, Clone, Default)]
pub struct Login<'a> {
    /// Username and password; the username is the client id then.
    pub credentials: Option<(&'a str, &'a str)>,
    /// A persistent session (clean session off): the broker keeps the subscriptions and queues
    /// QoS 1 messages while the client is away.
    pub persistent: bool,
}

/// The client. Its task stops when it is dropped.
#[derive(Debug)]
pub struct Mqtt {
    client: rumqttc::AsyncClient,
    log: Arc<Mutex<Vec<Received>>>,
    subacks: Arc<Mutex<u32>>,
    task: JoinHandle<()>,
}

impl Mqtt {
    /// Connects to `addr` as `id` (clean session); returns once the broker accepted.
    ///
    /// # Panics
    /// If the broker does not accept within [`TIMEOUT`].
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        Self::connect_with(addr, id, Login::default()).await
    }

    /// Connects to `addr` logging in as `user` (its client id too); returns once accepted.
    ///
    /// # Panics
    /// If the broker does not accept within [`TIMEOUT`].
    pub async fn connect_as(addr: SocketAddr, user: &str, password: &str) -> Self {
        let login = Login {
            credentials: Some((user, password)),
            persistent: false,
        };
        Self::connect_with(addr, user, login).await
    }

    /// Connects to `addr` as `id` (or the login's username) as `login` says; returns once the
    /// broker accepted.
    ///
    /// # Panics
    /// If the broker does not accept within [`TIMEOUT`].
    pub async fn connect_with(addr: SocketAddr, id: &str, login: Login<'_>) -> Self {
        let id = login.credentials.map_or(id, |(u, _)| u);
        let mut options = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        if let Some((u, p)) = login.credentials {
            options.set_credentials(u, p);
        }
        options.set_clean_session(!login.persistent);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        options.set_inflight(100);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 256);
        // As the gateway's own links: without it, small publishes can wait for delayed ACKs.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let log = Arc::new(Mutex::new(Vec::new()));
        let subacks = Arc::new(Mutex::new(0));
        let (up_tx, up_rx) = oneshot::channel();
        let task = tokio::spawn({
            let (log, subacks) = (log.clone(), subacks.clone());
            async move {
                let mut up = Some(up_tx);
                loop {
                    match eventloop.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            if let Some(up) = up.take() {
                                let _ = up.send(());
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            *subacks.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            log.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(Received {
                                    topic: p.topic,
                                    payload: p.payload.to_vec(),
                                    retain: p.retain,
                                    at: Instant::now(),
                                    at_ms: now_ms(),
                                });
                        }
                        Ok(_) => {}
                        // rumqttc reconnects on the next poll; pace it.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
        });
        within(
            &format!("MQTT client {id} accepted by {addr}"),
            TIMEOUT,
            up_rx,
        )
        .await
        .expect("the client task runs");
        Self {
            client,
            log,
            subacks,
            task,
        }
    }

    /// Subscribes to `filter` (QoS 1) and waits for the SUBACK.
    ///
    /// # Panics
    /// If no SUBACK comes within [`TIMEOUT`].
    pub async fn subscribe(&self, filter: &str) {
        let before = *self.subacks.lock().unwrap_or_else(PoisonError::into_inner);
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("the client takes a subscription");
        until(&format!("SUBACK for {filter}"), TIMEOUT, || {
            (*self.subacks.lock().unwrap_or_else(PoisonError::into_inner) > before).then_some(())
        })
        .await;
    }

    /// Publishes QoS 1 (queued in the client; it goes out in order).
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("the client takes a publish");
    }

    /// Publishes QoS 1, retained or not.
    pub async fn publish_retained(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload.into())
            .await
            .expect("the client takes a publish");
    }

    /// Every message received so far on topics starting with `prefix`, in arrival order.
    pub fn received(&self, prefix: &str) -> Vec<Received> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|m| m.topic.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every alert received so far (`firegrid/v1/alert/...`), as JSON.
    pub fn alerts(&self) -> Vec<Value> {
        self.received("firegrid/v1/alert/")
            .iter()
            .map(Received::json)
            .collect()
    }

    /// Every sequence number acknowledged to `device` so far, in arrival order (a seq acked
    /// twice appears twice).
    pub fn acked(&self, device: &str) -> Vec<u32> {
        self.received(&format!("firegrid/v1/dev/{device}/ack"))
            .iter()
            .flat_map(|m| ack_seqs(&m.json()))
            .collect()
    }

    /// Waits until a message on a topic starting with `prefix` matches `pick`; returns the
    /// first such.
    ///
    /// # Panics
    /// After `timeout`, naming `what`.
    pub async fn wait_for(
        &self,
        what: &str,
        prefix: &str,
        timeout: Duration,
        pick: impl Fn(&Received) -> bool,
    ) -> Received {
        until(what, timeout, || {
            self.received(prefix).into_iter().find(|m| pick(m))
        })
        .await
    }
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `seqs` of an ack message.
///
/// # Panics
/// If it has none, or one is not a u32.
pub fn ack_seqs(ack: &Value) -> Vec<u32> {
    ack["seqs"]
        .as_array()
        .unwrap_or_else(|| panic!("an ack has seqs: {ack}"))
        .iter()
        .map(|s| u32::try_from(s.as_u64().expect("a seq is a number")).expect("a seq is a u32"))
        .collect()
}

/// The device of a device topic `firegrid/v1/dev/{id}/...`.
///
/// # Panics
/// If `topic` is not a device topic.
pub fn topic_device(topic: &str) -> &str {
    topic
        .strip_prefix("firegrid/v1/dev/")
        .and_then(|t| t.split('/').next())
        .unwrap_or_else(|| panic!("not a device topic: {topic}"))
}

/// The wall clock, ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
