//! Host test support: a real Mosquitto in a temp dir on a free port, a gateway stand-in
//! (rumqttc), and a device running the real runner over tokio TCP with a scripted shell.
//!
//! Nothing here sleeps to synchronise: every wait is for a condition, with a deadline.

#![allow(dead_code, unreachable_pub, missing_docs)] // shared by several test binaries

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use firegrid_firmware::backoff::BackoffConfig;
use firegrid_firmware::device::Device;
use firegrid_firmware::monitor::{Indicators, Input, Layout};
use firegrid_firmware::mqtt::host::{TcpConnector, TokioClock};
use firegrid_firmware::mqtt::{self, Connector, Exit, LinkEvent, Options, Shell};
use firegrid_firmware::outbox::Outbox;
use firegrid_firmware::protocols::message::{Event, Heartbeat, Message, Status};
use firegrid_firmware::protocols::{DeviceId, DeviceTopic, codec};
use firegrid_firmware::seq::MemStore;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, LocalSet};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Runs an async test body on a current-thread runtime inside a `LocalSet` (the runner's
/// future is not `Send`).
pub fn run<F: Future<Output = ()>>(body: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    LocalSet::new().block_on(&rt, body);
}

/// Awaits `fut` or fails the test after [`WAIT`], saying what it waited for.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    firegrid_testkit::within(what, WAIT, fut).await
}

// --- Mosquitto ------------------------------------------------------------------------------

#[allow(unused_imports)] // not every test binary uses each
pub use firegrid_testkit::{Mosquitto, free_port};

/// Numbers the stand-ins' client ids.
static DIRS: AtomicU32 = AtomicU32::new(0);

/// A Mosquitto of its own on a free port (the test kit's), logging everything: the keep-alive
/// test reads the PINGREQs in its log.
pub async fn mosquitto() -> Mosquitto {
    Mosquitto::start_with("log_type all\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

// --- the gateway stand-in -------------------------------------------------------------------

/// A message the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    /// The payload decoded as the message of its topic.
    pub fn message(&self) -> Message {
        let kind = DeviceTopic::ALL
            .into_iter()
            .find(|k| self.topic.ends_with(&format!("/{}", k.as_str())))
            .expect("a device topic");
        codec::decode(kind, &self.payload)
            .unwrap_or_else(|e| panic!("undecodable on {}: {e}", self.topic))
    }

    pub fn event(&self) -> Option<Event> {
        match self.message() {
            Message::Event(e) if self.topic.ends_with("/event") => Some(e),
            _ => None,
        }
    }
}

/// What the gateway does on MQTT, played with rumqttc: subscribes to the devices' uplink,
/// publishes acks, commands and configs.
pub struct Gateway {
    client: rumqttc::AsyncClient,
    rx: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Connects and subscribes to every device's uplink (events, telemetry, status); returns
    /// once the broker has granted the subscription.
    pub async fn connect(port: u16) -> Self {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let mut opts = rumqttc::MqttOptions::new(format!("gw-{n}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subacked_tx, subacked_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut subacked = Some(subacked_tx);
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(s) = subacked.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        client
            .subscribe("firegrid/v1/dev/#", rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        within("the gateway's SUBACK", subacked_rx)
            .await
            .expect("the gateway connected");
        Self { client, rx, task }
    }

    /// The next message for which `pick` says `Some`, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Received) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                let m = self
                    .rx
                    .recv()
                    .await
                    .expect("the gateway stand-in is connected");
                if let Some(t) = pick(&m) {
                    return t;
                }
            }
        })
        .await
    }

    /// Waits for `device`'s `online` status (retained, published after its subscriptions).
    pub async fn wait_online(&mut self, device: &str) -> Heartbeat {
        let topic = format!("firegrid/v1/dev/{device}/status");
        self.wait_for("the online status", |m| match m.message() {
            Message::Status(Status::Online(h)) if m.topic == topic => Some(h),
            _ => None,
        })
        .await
    }

    /// The next event (skipping other messages).
    pub async fn next_event(&mut self) -> Event {
        self.wait_for("an event", Received::event).await
    }

    pub async fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .expect("publish");
    }

    /// Acknowledges `seqs` of `device` as the gateway does once they are journaled.
    pub async fn ack(&self, device: &str, seqs: &[u32], ts: u64) {
        let list: Vec<String> = seqs.iter().map(u32::to_string).collect();
        let body = format!(r#"{{"seqs":[{}],"ts":{ts}}}"#, list.join(","));
        self.publish(
            &format!("firegrid/v1/dev/{device}/ack"),
            body.as_bytes(),
            false,
        )
        .await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- the device -----------------------------------------------------------------------------

pub type TestDevice = Device<MemStore, 32, 16>;

/// A device on the smoke-alarm layout (smoke and tamper edges are events at once).
pub fn smoke_device(id: &str, resend_timeout_ms: u64) -> TestDevice {
    TestDevice::new(
        DeviceId::new(id).expect("a valid id"),
        Layout::smoke_alarm(),
        MemStore::new(),
        0,
    )
    .with_outbox(Outbox::new().with_resend_timeout_ms(resend_timeout_ms))
}

/// Runner options for tests: quick backoff.
pub fn test_options() -> Options<'static> {
    let mut o = Options::new();
    o.backoff = BackoffConfig {
        base_ms: 50,
        cap_ms: 400,
    };
    o.io_timeout_ms = 3_000;
    o.keep_alive_s = 10;
    o.stable_session_ms = 1_000;
    o.reboot_grace_ms = 1_000;
    o
}

/// The shell of a test device: inputs from the test, link events and indicators to it; it
/// answers battery and sensor requests at once (3.0 V, sensors good).
pub struct TestShell {
    inputs: mpsc::UnboundedReceiver<Input>,
    answers: VecDeque<Input>,
    link: mpsc::UnboundedSender<LinkEvent>,
    shown: mpsc::UnboundedSender<Indicators>,
}

impl Shell for TestShell {
    async fn next_input(&mut self) -> Input {
        // Cancel-safe: popping the queue is synchronous; `recv` is cancel-safe.
        if let Some(answer) = self.answers.pop_front() {
            return answer;
        }
        match self.inputs.recv().await {
            Some(input) => input,
            None => std::future::pending().await,
        }
    }

    fn show(&mut self, indicators: Indicators) {
        let _ = self.shown.send(indicators);
    }

    fn measure_battery(&mut self) {
        self.answers.push_back(Input::Battery(3_000));
    }

    fn check_sensors(&mut self) {
        self.answers.push_back(Input::SensorCheck(true));
    }

    fn on_link(&mut self, event: &LinkEvent) {
        let _ = self.link.send(event.clone());
    }
}

/// A device running [`mqtt::run`] in a local task.
pub struct Running {
    pub id: String,
    inputs: mpsc::UnboundedSender<Input>,
    link: mpsc::UnboundedReceiver<LinkEvent>,
    shown: mpsc::UnboundedReceiver<Indicators>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<(TestDevice, Option<Exit>)>>,
    /// Every link event seen so far by the waits.
    pub seen: Vec<LinkEvent>,
}

/// Starts `device` on `connector` with `options` and an 8 KiB receive buffer.
pub fn start_with<C>(device: TestDevice, connector: C, options: Options<'static>) -> Running
where
    C: Connector + 'static,
{
    start_custom(device, connector, options, 8 * 1024)
}

/// Starts `device` on `connector` with `options` and a receive buffer of `rx_len` bytes.
pub fn start_custom<C>(
    device: TestDevice,
    connector: C,
    options: Options<'static>,
    rx_len: usize,
) -> Running
where
    C: Connector + 'static,
{
    let id = device.id().as_str().to_owned();
    let (inputs_tx, inputs) = mpsc::unbounded_channel();
    let (link, link_rx) = mpsc::unbounded_channel();
    let (shown, shown_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::task::spawn_local(async move {
        let mut device = device;
        let mut connector = connector;
        let mut shell = TestShell {
            inputs,
            answers: VecDeque::new(),
            link,
            shown,
        };
        let clock = TokioClock::new();
        let mut rx_buffer = vec![0u8; rx_len];
        let exit = tokio::select! {
            exit = mqtt::run(&mut device, &mut connector, &clock, &mut shell, &options, &mut rx_buffer) => Some(exit),
            _ = stop_rx => None,
        };
        (device, exit)
    });
    Running {
        id,
        inputs: inputs_tx,
        link: link_rx,
        shown: shown_rx,
        stop: Some(stop_tx),
        task: Some(task),
        seen: Vec::new(),
    }
}

/// Starts `device` against the broker at `addr`.
pub fn start(device: TestDevice, addr: SocketAddr) -> Running {
    start_with(device, TcpConnector::new(addr), test_options())
}

impl Running {
    pub fn input(&self, input: Input) {
        self.inputs.send(input).expect("the device runs");
    }

    /// Waits for a link event `pick` accepts (all are kept in `seen`).
    pub async fn wait_link<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&LinkEvent) -> Option<T>,
    ) -> T {
        let link = &mut self.link;
        let seen = &mut self.seen;
        within(what, async {
            loop {
                let e = link.recv().await.expect("the device runs");
                seen.push(e.clone());
                if let Some(t) = pick(&e) {
                    return t;
                }
            }
        })
        .await
    }

    /// Takes the link events queued so far into `seen` without waiting; returns them.
    pub fn drain_seen(&mut self) -> &[LinkEvent] {
        while let Ok(e) = self.link.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }

    /// Waits for the link to come up; returns its `at_ms`.
    pub async fn wait_up(&mut self) -> u64 {
        self.wait_link("the device's session", |e| match e {
            LinkEvent::Up { at_ms, .. } => Some(*at_ms),
            _ => None,
        })
        .await
    }

    /// Waits for indicators `pick` accepts.
    pub async fn wait_shown(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Indicators) -> bool,
    ) -> Indicators {
        let shown = &mut self.shown;
        within(what, async {
            loop {
                let i = shown.recv().await.expect("the device runs");
                if pick(&i) {
                    return i;
                }
            }
        })
        .await
    }

    /// Stops the device abruptly (as a power cut: no DISCONNECT, so the broker publishes the
    /// will) and gives it back for inspection.
    pub async fn kill(mut self) -> TestDevice {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        within("the device task to stop", task)
            .await
            .expect("the device task")
            .0
    }

    /// Waits for the runner to return by itself (a reboot).
    pub async fn exit(mut self) -> (TestDevice, Option<Exit>) {
        let task = self.task.take().expect("running");
        within("the runner to return", task)
            .await
            .expect("the device task")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
