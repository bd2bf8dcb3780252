//! The device's MQTT session runner: the [`Device`] on the network, over rust-mqtt (MQTT 5).
//!
//! [`run`] is the device's main loop, the same on the board and on the host. It is generic
//! over four things the platform provides:
//!
//! | trait | what | board | host / simulator |
//! | --- | --- | --- | --- |
//! | [`Connector`] | opens a byte stream to the broker | embassy-net `TcpSocket` (+ TLS) | `host::TcpConnector` (tokio TCP) |
//! | [`Clock`] | ms since boot, wait for a deadline | embassy-time | `host::TokioClock` |
//! | [`Shell`] | sensor inputs, indicators, battery/sensor requests | drivers + a channel | a simulated device |
//! | rx buffer | `&mut [u8]` for received packets | a `static` array | a `Vec` |
//!
//! (`host` needs the crate feature `tokio`.)
//!
//! # What it does
//!
//! - **The monitor never waits for the network.** Every network operation (connect, CONNECT,
//!   SUBSCRIBE, PUBLISH, receiving a packet) runs *while* the runner keeps taking the shell's
//!   inputs and the monitor's deadlines ([`Shell::next_input`], [`Device::local_deadline`]), so
//!   a smoke edge sounds at once even while a TCP connect hangs. Between connections the device
//!   runs just the same.
//! - **Connects with backoff and full jitter** ([`crate::backoff`]): client id = device id,
//!   username = device id (or [`Options::username`]), the device's password, clean start
//!   off with a session expiry ([`Options::session_expiry_s`]) so the broker keeps the
//!   subscriptions and the QoS 1 downlink across short drops, a keep-alive, and the **last
//!   will** `firegrid/v1/dev/{id}/status` = [`Device::will_payload`], QoS 1, retained. Each
//!   step of a connection must finish within [`Options::io_timeout_ms`].
//! - After every connect, as `docs/protocol.md` says: SUBSCRIBE `config`, `cmd`, `ack` (QoS 1),
//!   PUBLISH the `online` status (QoS 1, retained), then the outbox (`on_reconnect`: every
//!   unacknowledged event again, same `seq`, same bytes).
//! - Then: publishes what [`Outbox::poll_transmit`](crate::outbox::Outbox::poll_transmit)
//!   offers — events QoS 1; telemetry QoS 0 by default ([`Options::telemetry_qos`]: telemetry is
//!   not acknowledged end to end and its gaps are counted, so a PUBACK per reading buys
//!   nothing but traffic and in-flight slots) — and calls `mark_sent` only once the publish
//!   call returned `Ok`; takes every received PUBLISH to [`Device::on_publish`]; publishes a
//!   status at each heartbeat; pings when nothing was sent for half the keep-alive and gives
//!   the connection up when a ping is not answered within the I/O timeout.
//! - On any I/O error, protocol error, timeout or server DISCONNECT: `outbox.on_disconnect()`,
//!   drop the connection (the broker publishes the will), back off, reconnect. A session that
//!   stayed up for [`Options::stable_session_ms`] resets the backoff.
//! - A reboot command: the runner keeps the link until every event in the outbox (the
//!   command's `command_result` among them) is acknowledged, or [`Options::reboot_grace_ms`]
//!   passes, disconnects cleanly and returns [`Exit::Reboot`]: the caller restarts.
//!
//! Dropping the future of [`run`] is the way to stop a device without a goodbye: the
//! connection closes without DISCONNECT, so the broker publishes the will (as at a power cut).
//!
//! # Cancel safety
//!
//! The runner waits on several things at once with `embassy_futures::select`; what each select
//! may drop:
//!
//! - **While a network operation runs** (`Local::drive`): the operation's future is pinned
//!   outside the select and polled through a reference, so it is *never* dropped by the
//!   select; the select drops only [`Shell::next_input`] (which must be cancel-safe, see
//!   [`Shell`]) and [`Clock::sleep_until`] (cancel-safe). The operation is dropped only on its
//!   timeout — and then the connection and the whole rust-mqtt client are dropped with it and
//!   never used again, so the half-written packet cannot corrupt anything.
//! - **While idle**: `Client::poll_header`, which rust-mqtt documents as cancel-safe (a partly
//!   read fixed header stays in the client) provided the transport's `read` is cancel-safe —
//!   true of tokio's `TcpStream` and of embassy-net's `TcpSocket`. Once a header is in, the
//!   rest of the packet (`poll_body`, not cancel-safe) runs as a network operation above.
//! - Nothing is sent from inside a select: PUBLISH, SUBSCRIBE and PINGREQ run as network
//!   operations, one at a time.
//!
//! # Memory
//!
//! rust-mqtt stores what it receives (topic names, payloads) in a buffer provider, and without
//! a heap and without `unsafe` (forbidden in this workspace) memory handed out to it cannot be
//! reused while its client lives. So the runner gives each connection a fresh client over the
//! caller's `rx_buffer`, announces [`Options::max_inbound_packet`] (at most a quarter of the
//! buffer) as its MQTT maximum packet size, and when less than that is left, **disconnects
//! cleanly and reconnects at once** (no will, the broker keeps the session; unacknowledged
//! events are sent again and deduplicated by the gateway). A downlink message (an ack, a
//! command) takes its topic (≈ 35–60 bytes) plus its payload, so 8 KiB with 2 KiB packets
//! lasts about 60 acks per connection. On such a reconnect the retained config is not sent
//! again (the subscription still exists and the device has it), and a connection that took no
//! message at all before running low backs off instead of reconnecting at once, so the
//! refresh can never spin. The future of [`run`] also holds one payload copy (`N` bytes) and
//! the client (≈ 0.5 KiB).
//!
//! (With `unsafe` allowed in one place, rust-mqtt's `BumpBuffer::reset` between packets would
//! make these reconnects unnecessary: nothing borrowed from a received packet outlives its
//! handling here.)

#[cfg(feature = "tokio")]
pub mod host;

use core::future::Future;
use core::num::NonZero;
use core::pin::pin;

use embassy_futures::select::{Either3, select3};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::BufferProvider;
use rust_mqtt::client::event::Event as MqttEvent;
use rust_mqtt::client::options::{
    ConnectOptions, DisconnectOptions, PublicationOptions, RetainHandling, SubscriptionOptions,
    TopicReference, WillOptions,
};
use rust_mqtt::client::{Client, MqttError};
use rust_mqtt::config::{KeepAlive, SessionExpiryInterval};
use rust_mqtt::io::Transport;
use rust_mqtt::types::{MqttBinary, MqttString, QoS, TopicFilter, TopicName};

use firegrid_protocols::id::MAX_ID_LEN;
use firegrid_protocols::message::Seq;
use firegrid_protocols::topic::{DeviceTopic, MAX_TOPIC_LEN, Topic};

use crate::backoff::{Backoff, BackoffConfig, seed_from};
use crate::clock::Clock;
use crate::device::{Actions, Device, Refusal};
use crate::monitor::{Indicators, Input};
use crate::outbox::{Kind, Payload};
use crate::seq::SeqStore;

/// Opens the byte stream to the broker: TCP (or TLS over TCP) on the board, tokio TCP on the
/// host. Each call is a new connection.
pub trait Connector {
    /// The connection: an ordered, lossless byte stream. Its `read` must be cancel-safe (see
    /// the [module documentation](self)).
    type Conn: embedded_io_async::Read + embedded_io_async::Write;
    /// Why a connection could not be opened.
    type Error: core::fmt::Debug;

    /// Opens a new connection. The runner gives up on it after [`Options::io_timeout_ms`].
    fn connect(&mut self) -> impl Future<Output = Result<Self::Conn, Self::Error>>;
}

/// The device's hardware as the runner sees it: sensor inputs in, indicators and requests out.
///
/// Sampling is the shell's business (its own task or interrupt feeding a channel): the runner
/// only awaits [`next_input`](Self::next_input), so it stays generic and a test or the
/// simulator feeds inputs through a queue.
pub trait Shell {
    /// The next input: a sample, a smoke or tamper edge, a battery reading, a button press.
    ///
    /// **Must be cancel-safe**: the runner drops this future whenever something else happens
    /// first, and an input must then stay queued for the next call (a channel's `receive`, as
    /// embassy-sync's `Channel` or tokio's `mpsc` has, is). Return [`Input::Tick`] if there is
    /// nothing but time; the runner steps the monitor at its deadlines by itself.
    fn next_input(&mut self) -> impl Future<Output = Input>;

    /// Show these indicators now (sounder pattern, lights, relay). Called whenever they change.
    fn show(&mut self, indicators: Indicators);

    /// Measure the battery; feed the result as [`Input::Battery`].
    fn measure_battery(&mut self);

    /// Check the sensors (self-test); feed the result as [`Input::SensorCheck`].
    fn check_sensors(&mut self);

    /// What happened on the link, for logs, metrics and tests. Does nothing by default.
    fn on_link(&mut self, event: &LinkEvent) {
        let _ = event;
    }
}

/// Something that happened on the link, for [`Shell::on_link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Opening connection attempt `attempt` (1 after every session that came up).
    Connecting {
        /// Attempts since the last session that came up.
        attempt: u32,
    },
    /// Connected, subscribed; the online status and the outbox go out next.
    Up {
        /// `now_ms` when it came up.
        at_ms: u64,
        /// Whether the broker still had the device's session.
        session_present: bool,
    },
    /// The connection (or the attempt) ended.
    Down {
        /// Why.
        cause: DownCause,
        /// Whether a session had come up.
        was_up: bool,
        /// The next attempt is this far away, ms (backoff with jitter; 0 for a refresh).
        retry_in_ms: u64,
    },
    /// Handed a message to the MQTT client.
    Sent {
        /// Its topic.
        topic: DeviceTopic,
        /// Its sequence number.
        seq: Seq,
        /// Whether it was sent before (a resend after the timeout or a reconnect).
        resend: bool,
    },
    /// A message arrived and was taken, or refused.
    Received {
        /// Its topic kind, if it was a topic of this device.
        topic: Option<DeviceTopic>,
        /// Why it was refused, if it was.
        refused: Option<Refusal>,
        /// Events in the outbox afterwards (not yet acknowledged).
        unacked_events: usize,
    },
    /// The client refused to publish a message for a reason that waiting will not cure (e.g. it
    /// is larger than the broker's maximum packet size); an event is tried again after the
    /// resend timeout, telemetry is dropped.
    PublishRefused {
        /// Its topic.
        topic: DeviceTopic,
        /// Its sequence number.
        seq: Seq,
    },
    /// The broker refused a subscription (e.g. not authorised): that downlink will not arrive.
    SubscribeRefused {
        /// Which.
        topic: DeviceTopic,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownCause {
    /// The connector could not open a connection.
    Connect,
    /// An operation did not finish within the I/O timeout, or a ping was not answered.
    Timeout,
    /// The connection failed or was closed by the other side.
    Network,
    /// The broker refused the connection or sent DISCONNECT, with this MQTT reason code.
    Disconnected {
        /// The MQTT 5 reason code.
        reason: u8,
    },
    /// The broker broke the protocol (or a packet did not fit the receive buffer).
    Protocol,
    /// The planned clean reconnect that frees the receive buffer (see the module
    /// documentation on memory).
    Refresh,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A reboot was asked for (a `reboot` command): restart the device.
    Reboot,
}

/// The QoS of telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryQos {
    /// At most once (the default): telemetry is not acknowledged end to end anyway.
    AtMostOnce,
    /// At least once: the broker acknowledges each message.
    AtLeastOnce,
}

/// Settings of [`run`]. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// MQTT user name; `None`: the device id (the protocol's rule).
    pub username: Option<&'a str>,
    /// The device's own password, if the broker wants one.
    pub password: Option<&'a [u8]>,
    /// Keep-alive, s. Default 60. With 0 (none) a broker that stops answering while its TCP
    /// connection stays open is noticed only by a timed-out operation, never while idle.
    pub keep_alive_s: u16,
    /// How long the broker keeps the session after a drop, s (must be > 0 for the protocol's
    /// "clean session false"). Default 86 400 (a day).
    pub session_expiry_s: u32,
    /// How long one network operation (connect, CONNECT, SUBSCRIBE, PUBLISH, a packet, a
    /// ping's answer) may take before the connection is given up, ms. Default 10 000.
    pub io_timeout_ms: u64,
    /// The reconnect backoff. Default 1 s doubling to 5 min.
    pub backoff: BackoffConfig,
    /// Mixed with the device id into the jitter seed (e.g. noise bits of an ADC). Default 0.
    pub jitter_seed: u64,
    /// A session up this long resets the backoff when it ends, ms. Default 30 000.
    pub stable_session_ms: u64,
    /// Telemetry QoS. Default [`TelemetryQos::AtMostOnce`].
    pub telemetry_qos: TelemetryQos,
    /// How long a reboot waits for the outbox's events to be acknowledged, ms. Default 5 000.
    pub reboot_grace_ms: u64,
    /// The largest packet the device accepts (its MQTT maximum packet size), bytes; capped at
    /// a quarter of the rx buffer. Default 2 048 (a 16-channel config in JSON is under 1 KiB).
    pub max_inbound_packet: u32,
}

impl Options<'_> {
    /// The defaults, documented on each field.
    pub const fn new() -> Self {
        Self {
            username: None,
            password: None,
            keep_alive_s: 60,
            session_expiry_s: 86_400,
            io_timeout_ms: 10_000,
            backoff: BackoffConfig::DEFAULT,
            jitter_seed: 0,
            stable_session_ms: 30_000,
            telemetry_qos: TelemetryQos::AtMostOnce,
            reboot_grace_ms: 5_000,
            max_inbound_packet: 2_048,
        }
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the device on the network until a reboot is asked for. See the
/// [module documentation](self).
///
/// `rx_buffer` holds received packets (see "Memory" above): a few KiB; four times
/// [`Options::max_inbound_packet`] or more (the maximum packet size is capped at a quarter
/// of it).
pub async fn run<S, C, K, H, const EVENTS: usize, const TELEMETRY: usize, const N: usize>(
    device: &mut Device<S, EVENTS, TELEMETRY, N>,
    connector: &mut C,
    clock: &K,
    shell: &mut H,
    options: &Options<'_>,
    rx_buffer: &mut [u8],
) -> Exit
where
    S: SeqStore,
    C: Connector,
    K: Clock,
    H: Shell,
{
    let mut id = heapless::String::<MAX_ID_LEN>::new();
    // Cannot fail: a device id is at most MAX_ID_LEN bytes.
    let _ = id.push_str(device.id().as_str());
    let topics = Topics::new(device);
    let will = device.will_payload();
    let settings = Settings {
        id: &id,
        topics: &topics,
        will: &will,
        options,
    };
    let mut backoff = Backoff::new(
        options.backoff,
        options.jitter_seed ^ seed_from(id.as_bytes()),
    );
    let mut local = Local {
        device,
        shell,
        clock,
        shown: None,
        status_due: false,
        reboot_at: None,
        reboot_grace_ms: options.reboot_grace_ms,
    };
    let mut attempt = 0u32;
    // The first attempt too is spread over the base window: a district's devices come back
    // together after a power cut.
    let mut next_attempt = clock.now_ms().saturating_add(backoff.next_delay_ms());
    backoff.reset();
    loop {
        // Offline: the device runs until the next attempt; a reboot ends the wait.
        if local
            .drive(clock.sleep_until(next_attempt), u64::MAX, true)
            .await
            .is_err()
        {
            return Exit::Reboot;
        }
        attempt = attempt.saturating_add(1);
        local.shell.on_link(&LinkEvent::Connecting { attempt });
        let deadline = local.now().saturating_add(options.io_timeout_ms);
        let end = match local.drive(connector.connect(), deadline, true).await {
            Ok(Ok(conn)) => session(&mut local, conn, &settings, rx_buffer).await,
            Ok(Err(_)) => SessionEnd::Lost {
                cause: DownCause::Connect,
                up_for_ms: None,
            },
            Err(Stop::Timeout) => SessionEnd::Lost {
                cause: DownCause::Timeout,
                up_for_ms: None,
            },
            Err(Stop::Reboot) => return Exit::Reboot,
        };
        local.device.link_down();
        let (cause, was_up, retry_in_ms) = match end {
            SessionEnd::Reboot => return Exit::Reboot,
            SessionEnd::Refresh { progressed: true } => (DownCause::Refresh, true, 0),
            // A refresh that took no new message (e.g. retained messages alone fill the
            // buffer) would loop at once: back off instead.
            SessionEnd::Refresh { progressed: false } => {
                (DownCause::Refresh, true, backoff.next_delay_ms())
            }
            SessionEnd::Lost { cause, up_for_ms } => {
                if up_for_ms.is_some_and(|ms| ms >= options.stable_session_ms) {
                    backoff.reset();
                }
                (cause, up_for_ms.is_some(), backoff.next_delay_ms())
            }
        };
        if was_up {
            attempt = 0;
        }
        next_attempt = local.now().saturating_add(retry_in_ms);
        local.shell.on_link(&LinkEvent::Down {
            cause,
            was_up,
            retry_in_ms,
        });
    }
}

/// Receive maximum: incoming QoS 1 publishes in flight (acknowledged at once, so few).
const RECEIVE_MAXIMUM: usize = 4;
/// Outgoing QoS 1 publishes awaiting their PUBACK before the runner waits for one.
const SEND_MAXIMUM: usize = 8;
/// One SUBSCRIBE per downlink topic.
const SUBSCRIBE_MAXIMUM: usize = 3;

type MqttClient<'c, T> =
    Client<'c, 'c, T, Arena<'c>, SUBSCRIBE_MAXIMUM, RECEIVE_MAXIMUM, SEND_MAXIMUM, 0, 1, 0, 0>;

/// What stays the same across connections.
struct Settings<'r> {
    id: &'r str,
    topics: &'r Topics,
    will: &'r [u8],
    options: &'r Options<'r>,
}

/// The device's topic names.
struct Topics {
    names: [heapless::String<MAX_TOPIC_LEN>; 6],
}

impl Topics {
    fn new<S: SeqStore, const E: usize, const T: usize, const N: usize>(
        device: &Device<S, E, T, N>,
    ) -> Self {
        Self {
            names: DeviceTopic::ALL.map(|k| Topic::device(device.id(), k).to_heapless()),
        }
    }

    fn get(&self, kind: DeviceTopic) -> &str {
        DeviceTopic::ALL
            .iter()
            .zip(&self.names)
            .find(|(k, _)| **k == kind)
            .map_or("", |(_, n)| n.as_str())
    }
}

/// How a connection ended.
enum SessionEnd {
    Reboot,
    /// The receive buffer ran low; `progressed`: the connection took at least one message.
    Refresh {
        progressed: bool,
    },
    Lost {
        cause: DownCause,
        /// How long the session had been up, if it came up.
        up_for_ms: Option<u64>,
    },
}

/// Why [`Local::drive`] gave up on an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Reboot,
}

/// How an MQTT operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No in-flight slot or packet identifier free: wait for a PUBACK.
    Busy,
    /// Refused by the client for a reason waiting will not cure; the connection is fine.
    Refused,
    /// The connection is unusable.
    Down(DownCause),
}

fn classify<const M: usize>(e: &MqttError<'_, M>) -> Failure {
    match e {
        MqttError::SendQuotaExceeded
        | MqttError::SessionBuffer
        | MqttError::AllPacketIdentifiersUsed => Failure::Busy,
        MqttError::Network(_) => Failure::Down(DownCause::Network),
        MqttError::Disconnect { reason, .. } => Failure::Down(DownCause::Disconnected {
            reason: reason.value(),
        }),
        e if e.is_recoverable() => Failure::Refused,
        _ => Failure::Down(DownCause::Protocol),
    }
}

fn down_cause<const M: usize>(e: &MqttError<'_, M>) -> DownCause {
    match classify(e) {
        Failure::Down(cause) => cause,
        // A recoverable error where the protocol step had to succeed.
        Failure::Busy | Failure::Refused => DownCause::Protocol,
    }
}

/// The device side of the runner: what keeps working while the network is busy.
struct Local<'r, S, H, K, const E: usize, const T: usize, const N: usize> {
    device: &'r mut Device<S, E, T, N>,
    shell: &'r mut H,
    clock: &'r K,
    /// The indicators last shown.
    shown: Option<Indicators>,
    /// A heartbeat asked for a status.
    status_due: bool,
    /// A reboot was asked for: reboot at the latest then.
    reboot_at: Option<u64>,
    reboot_grace_ms: u64,
}

impl<S: SeqStore, H: Shell, K: Clock, const E: usize, const T: usize, const N: usize>
    Local<'_, S, H, K, E, T, N>
{
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Carries out a step's actions; the indicators first.
    fn apply(&mut self, actions: Actions) {
        if self.shown != Some(actions.indicators) {
            self.shell.show(actions.indicators);
            self.shown = Some(actions.indicators);
        }
        if actions.measure_battery {
            self.shell.measure_battery();
        }
        if actions.check_sensors {
            self.shell.check_sensors();
        }
        if actions.publish_status {
            self.status_due = true;
        }
        if actions.reboot && self.reboot_at.is_none() {
            self.reboot_at = Some(self.now().saturating_add(self.reboot_grace_ms));
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let actions = self.device.step(now, input);
        self.apply(actions);
    }

    /// Steps the device with a tick if one of its deadlines has come.
    fn tick_if_due(&mut self) {
        if self.now() >= self.device.local_deadline() {
            self.input(Input::Tick);
        }
    }

    /// Runs `op` to completion while the device keeps taking inputs and deadlines. Gives up
    /// (dropping `op`) at `timeout_at`, or when a reboot is asked for if `stop_on_reboot`.
    async fn drive<F: Future>(
        &mut self,
        op: F,
        timeout_at: u64,
        stop_on_reboot: bool,
    ) -> Result<F::Output, Stop> {
        let mut op = pin!(op);
        loop {
            self.tick_if_due();
            if stop_on_reboot && self.reboot_at.is_some() {
                return Err(Stop::Reboot);
            }
            let now = self.now();
            if now >= timeout_at {
                return Err(Stop::Timeout);
            }
            let wake = self
                .device
                .local_deadline()
                .max(now.saturating_add(1))
                .min(timeout_at);
            // Cancel safety: `op` is polled through a reference and survives this select; only
            // `next_input` (cancel-safe by the `Shell` contract) and the timer are dropped.
            match select3(
                op.as_mut(),
                self.shell.next_input(),
                self.clock.sleep_until(wake),
            )
            .await
            {
                Either3::First(out) => return Ok(out),
                Either3::Second(input) => self.input(input),
                Either3::Third(()) => {}
            }
        }
    }
}

/// One connection: CONNECT, SUBSCRIBE, then publish and receive until it fails.
async fn session<S, H, K, C, const E: usize, const T: usize, const N: usize>(
    local: &mut Local<'_, S, H, K, E, T, N>,
    conn: C,
    settings: &Settings<'_>,
    rx_buffer: &mut [u8],
) -> SessionEnd
where
    S: SeqStore,
    H: Shell,
    K: Clock,
    C: Transport,
{
    let options = settings.options;
    let io_timeout = options.io_timeout_ms;
    // At most a quarter of the buffer: a retained config of that size at every connect still
    // leaves room for more than one packet, so a connection always makes progress.
    let max_inbound = options
        .max_inbound_packet
        .min(u32::try_from(rx_buffer.len() / 4).unwrap_or(u32::MAX));
    let max_inbound = NonZero::new(max_inbound).unwrap_or(NonZero::<u32>::MIN);
    let lost = |cause, up_for_ms| SessionEnd::Lost { cause, up_for_ms };

    let mut arena = Arena::new(rx_buffer);
    let mut client: MqttClient<'_, C> = Client::new(&mut arena);

    // CONNECT, with the last will.
    let (Ok(client_id), Ok(username), Some(will_topic), Ok(will_message)) = (
        MqttString::from_str(settings.id),
        MqttString::from_str(options.username.unwrap_or(settings.id)),
        MqttString::from_str(settings.topics.get(DeviceTopic::Status))
            .ok()
            .and_then(TopicName::new),
        MqttBinary::from_slice(settings.will),
    ) else {
        return lost(DownCause::Protocol, None);
    };
    let mut connect = ConnectOptions::new()
        .keep_alive(
            NonZero::new(options.keep_alive_s).map_or(KeepAlive::Infinite, KeepAlive::Seconds),
        )
        .session_expiry_interval(NonZero::new(options.session_expiry_s).map_or(
            SessionExpiryInterval::EndOnDisconnect,
            SessionExpiryInterval::Seconds,
        ))
        .maximum_packet_size(max_inbound)
        .user_name(username)
        .will(
            WillOptions::new(will_topic, will_message)
                .at_least_once()
                .retain(),
        );
    if let Some(password) = options.password {
        let Ok(password) = MqttBinary::from_slice(password) else {
            return lost(DownCause::Protocol, None);
        };
        connect = connect.password(password);
    }
    let deadline = local.now().saturating_add(io_timeout);
    let session_present = match local
        .drive(
            client.connect(conn, &connect, Some(client_id)),
            deadline,
            false,
        )
        .await
    {
        Ok(Ok(connected)) => connected.session_present,
        Ok(Err(e)) => return lost(down_cause(&e), None),
        Err(_) => return lost(DownCause::Timeout, None),
    };

    // SUBSCRIBE to the downlink (every time: the broker may have lost the session). The
    // retained config comes again only if this boot has none yet or the session is new.
    let config_known = {
        let stats = local.device.stats();
        stats.configs > 0 || stats.duplicate_configs > 0
    };
    let retain_handling = if session_present && config_known {
        RetainHandling::SendIfNotSubscribedBefore
    } else {
        RetainHandling::AlwaysSend
    };
    let subscription = SubscriptionOptions {
        retain_handling,
        ..SubscriptionOptions::new().at_least_once()
    };
    let mut subscriptions = [(0u16, DeviceTopic::Config); 3];
    for (slot, kind) in
        subscriptions
            .iter_mut()
            .zip([DeviceTopic::Config, DeviceTopic::Cmd, DeviceTopic::Ack])
    {
        let Some(filter) = MqttString::from_str(settings.topics.get(kind))
            .ok()
            .and_then(TopicFilter::new)
        else {
            return lost(DownCause::Protocol, None);
        };
        let deadline = local.now().saturating_add(io_timeout);
        match local
            .drive(client.subscribe(filter, &subscription), deadline, false)
            .await
        {
            Ok(Ok(pid)) => *slot = (pid.get().get(), kind),
            Ok(Err(e)) => return lost(down_cause(&e), None),
            Err(_) => return lost(DownCause::Timeout, None),
        }
    }

    let up_at = local.now();
    local.status_due = true;
    local.device.link_up();
    local.shell.on_link(&LinkEvent::Up {
        at_ms: up_at,
        session_present,
    });
    let keep_alive_ms = match client.shared_config().keep_alive {
        KeepAlive::Infinite => None,
        KeepAlive::Seconds(s) => Some(u64::from(s.get()).saturating_mul(1_000)),
    };
    let mut last_tx = up_at;
    let mut ping_sent: Option<u64> = None;
    // No in-flight slot: wait for a PUBACK before publishing QoS 1 again.
    let mut tx_blocked = false;
    let mut tx = Payload::<N>::new();
    // Application messages taken on this connection.
    let mut received = 0u32;

    loop {
        let now = local.now();
        let up_for = Some(now.saturating_sub(up_at));

        // A reboot: once the outbox's events are acknowledged, or at the grace deadline.
        if let Some(at) = local.reboot_at
            && (local.device.outbox().event_count() == 0 || now >= at)
        {
            goodbye(local, &mut client, io_timeout).await;
            return SessionEnd::Reboot;
        }

        // The status, before the outbox (the protocol's order after a connect).
        if local.status_due && !tx_blocked {
            match local.device.online_status(now) {
                Ok(payload) => {
                    tx = payload;
                    let deadline = now.saturating_add(io_timeout);
                    let topic = settings.topics.get(DeviceTopic::Status);
                    match local
                        .drive(
                            publish(&mut client, topic, &tx, QoS::AtLeastOnce, true),
                            deadline,
                            false,
                        )
                        .await
                    {
                        Ok(Ok(())) => {
                            local.status_due = false;
                            local.device.status_published();
                            last_tx = local.now();
                        }
                        Ok(Err(Failure::Busy)) => tx_blocked = true,
                        // Not publishable here; the next heartbeat tries again.
                        Ok(Err(Failure::Refused)) => local.status_due = false,
                        Ok(Err(Failure::Down(cause))) => return lost(cause, up_for),
                        Err(_) => return lost(DownCause::Timeout, up_for),
                    }
                }
                // Counted by the device; the next heartbeat tries again.
                Err(_) => local.status_due = false,
            }
        }

        // The outbox: due events (critical first), then telemetry.
        while !tx_blocked {
            let now = local.now();
            let Some(t) = local.device.outbox().poll_transmit(now) else {
                break;
            };
            let (seq, kind, resend) = (t.seq, t.kind, t.resend);
            tx.clear();
            // Cannot fail: the outbox's payloads have the same capacity.
            let _ = tx.extend_from_slice(t.payload);
            let qos = match (kind, options.telemetry_qos) {
                (Kind::Telemetry, TelemetryQos::AtMostOnce) => QoS::AtMostOnce,
                _ => QoS::AtLeastOnce,
            };
            let topic = kind.topic();
            let deadline = now.saturating_add(io_timeout);
            match local
                .drive(
                    publish(&mut client, settings.topics.get(topic), &tx, qos, false),
                    deadline,
                    false,
                )
                .await
            {
                Ok(Ok(())) => {
                    last_tx = local.now();
                    local.device.outbox_mut().mark_sent(seq, last_tx);
                    local.shell.on_link(&LinkEvent::Sent { topic, seq, resend });
                }
                Ok(Err(Failure::Busy)) => tx_blocked = true,
                Ok(Err(Failure::Refused)) => {
                    // Not blocking the queue behind it: an event is tried again after the
                    // resend timeout, telemetry is dropped.
                    let now = local.now();
                    local.device.outbox_mut().mark_sent(seq, now);
                    local
                        .shell
                        .on_link(&LinkEvent::PublishRefused { topic, seq });
                }
                Ok(Err(Failure::Down(cause))) => {
                    return lost(cause, Some(local.now().saturating_sub(up_at)));
                }
                Err(_) => return lost(DownCause::Timeout, Some(local.now().saturating_sub(up_at))),
            }
        }

        // Running out of receive buffer: reconnect at once (see "Memory").
        if client.buffer().remaining() < max_inbound.get() as usize {
            goodbye(local, &mut client, io_timeout).await;
            return SessionEnd::Refresh {
                progressed: received > 0,
            };
        }

        // Keep-alive.
        let now = local.now();
        if let Some(keep_alive) = keep_alive_ms {
            match ping_sent {
                Some(at) if now >= at.saturating_add(io_timeout) => {
                    return lost(DownCause::Timeout, Some(now.saturating_sub(up_at)));
                }
                Some(_) => {}
                None if now >= last_tx.saturating_add(keep_alive / 2) => {
                    let deadline = now.saturating_add(io_timeout);
                    match local.drive(client.ping(), deadline, false).await {
                        Ok(Ok(())) => {
                            ping_sent = Some(now);
                            last_tx = local.now();
                        }
                        Ok(Err(e)) => return lost(down_cause(&e), Some(now.saturating_sub(up_at))),
                        Err(_) => return lost(DownCause::Timeout, Some(now.saturating_sub(up_at))),
                    }
                }
                None => {}
            }
        }

        // Wait for a packet, an input or the next deadline.
        let now = local.now();
        let mut wake = local.device.local_deadline();
        if !tx_blocked {
            if let Some(due) = local.device.outbox().next_deadline() {
                wake = wake.min(due);
            }
            if local.status_due {
                wake = now;
            }
        }
        if let Some(keep_alive) = keep_alive_ms {
            wake = wake.min(match ping_sent {
                Some(at) => at.saturating_add(io_timeout),
                None => last_tx.saturating_add(keep_alive / 2),
            });
        }
        if let Some(at) = local.reboot_at {
            wake = wake.min(at);
        }
        let wake = wake.max(now.saturating_add(1));
        // Cancel safety: `poll_header` is cancel-safe (rust-mqtt keeps a partial header), given
        // a cancel-safe transport `read`; `next_input` by the `Shell` contract; the timer is.
        let header = match select3(
            client.poll_header(),
            local.shell.next_input(),
            local.clock.sleep_until(wake),
        )
        .await
        {
            Either3::First(Ok(header)) => header,
            Either3::First(Err(e)) => {
                return lost(down_cause(&e), Some(local.now().saturating_sub(up_at)));
            }
            Either3::Second(input) => {
                local.input(input);
                continue;
            }
            Either3::Third(()) => {
                local.tick_if_due();
                continue;
            }
        };

        // The rest of the packet, as a network operation.
        ping_sent = None;
        let deadline = local.now().saturating_add(io_timeout);
        let event = match local.drive(client.poll_body(header), deadline, false).await {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => return lost(down_cause(&e), Some(local.now().saturating_sub(up_at))),
            Err(_) => return lost(DownCause::Timeout, Some(local.now().saturating_sub(up_at))),
        };
        match event {
            MqttEvent::Publish(publish) => {
                received = received.saturating_add(1);
                let now = local.now();
                let name = publish.topic.name().map(|t| {
                    let s: &MqttString<'_> = t.as_ref();
                    s.as_str()
                });
                let topic = name.and_then(|n| match Topic::parse(n) {
                    Ok(Topic::Device(_, kind)) => Some(kind),
                    _ => None,
                });
                let result = match name {
                    Some(name) => local
                        .device
                        .on_publish(now, name, publish.message.as_bytes()),
                    // A topic alias: never, as the client announces no alias maximum.
                    None => Err(Refusal::ForeignTopic),
                };
                let refused = match result {
                    Ok(actions) => {
                        local.apply(actions);
                        None
                    }
                    Err(refusal) => Some(refusal),
                };
                let unacked_events = local.device.outbox().event_count();
                local.shell.on_link(&LinkEvent::Received {
                    topic,
                    refused,
                    unacked_events,
                });
            }
            MqttEvent::PublishAcknowledged(_)
            | MqttEvent::PublishRejected(_)
            | MqttEvent::PublishComplete(_) => tx_blocked = false,
            MqttEvent::Suback(suback) if suback.reason_code.is_erroneous() => {
                let pid = suback.packet_identifier.get().get();
                if let Some((_, topic)) = subscriptions.iter().find(|(p, _)| *p == pid) {
                    local
                        .shell
                        .on_link(&LinkEvent::SubscribeRefused { topic: *topic });
                }
            }
            _ => {}
        }
    }
}

/// Publishes `payload` on `topic`.
async fn publish<C: Transport>(
    client: &mut MqttClient<'_, C>,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
) -> Result<(), Failure> {
    let Some(name) = MqttString::from_str(topic).ok().and_then(TopicName::new) else {
        return Err(Failure::Refused);
    };
    let mut options = PublicationOptions::new(TopicReference::Name(name)).qos(qos);
    if retain {
        options = options.retain();
    }
    match client.publish(&options, Bytes::from(payload)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(classify(&e)),
    }
}

/// A clean DISCONNECT (no will; the broker keeps the session), as far as it goes in time.
async fn goodbye<S, H, K, C, const E: usize, const T: usize, const N: usize>(
    local: &mut Local<'_, S, H, K, E, T, N>,
    client: &mut MqttClient<'_, C>,
    io_timeout: u64,
) where
    S: SeqStore,
    H: Shell,
    K: Clock,
    C: Transport,
{
    let deadline = local.now().saturating_add(io_timeout);
    // Whatever happens, the connection is dropped right after.
    let _ = local
        .drive(
            client.disconnect(&DisconnectOptions::new()),
            deadline,
            false,
        )
        .await;
}

/// A bump allocator over the caller's receive buffer, for one connection: rust-mqtt keeps
/// received topic names and payloads in it. Safe code cannot reuse memory it handed out while
/// the client lives, so it only shrinks; see the module documentation on memory.
#[derive(Debug)]
struct Arena<'b> {
    free: &'b mut [u8],
}

/// The receive buffer has no room left for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ArenaFull;

impl<'b> Arena<'b> {
    fn new(buffer: &'b mut [u8]) -> Self {
        Self { free: buffer }
    }

    fn remaining(&self) -> usize {
        self.free.len()
    }
}

impl<'b> BufferProvider<'b> for Arena<'b> {
    type Buffer = &'b mut [u8];
    type ProvisionError = ArenaFull;

    fn provide_buffer(&mut self, len: usize) -> Result<&'b mut [u8], ArenaFull> {
        if len > self.free.len() {
            return Err(ArenaFull);
        }
        let free = core::mem::take(&mut self.free);
        match free.split_at_mut_checked(len) {
            Some((given, rest)) => {
                self.free = rest;
                Ok(given)
            }
            None => Err(ArenaFull),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_hands_out_disjoint_slices_until_full() {
        let mut backing = [0u8; 10];
        let mut arena = Arena::new(&mut backing);
        let a = arena.provide_buffer(4).unwrap();
        a.copy_from_slice(&[1, 2, 3, 4]);
        let b = arena.provide_buffer(6).unwrap();
        b.fill(9);
        assert_eq!(arena.remaining(), 0);
        assert_eq!(arena.provide_buffer(1), Err(ArenaFull));
        assert_eq!(arena.provide_buffer(0).map(|s| s.len()), Ok(0));
        assert_eq!(a, &[1, 2, 3, 4]);
        assert_eq!(backing, [1, 2, 3, 4, 9, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn a_refused_request_keeps_the_rest() {
        let mut backing = [0u8; 8];
        let mut arena = Arena::new(&mut backing);
        assert_eq!(arena.provide_buffer(9), Err(ArenaFull));
        assert_eq!(arena.remaining(), 8);
        assert_eq!(arena.provide_buffer(8).map(|s| s.len()), Ok(8));
    }

    #[test]
    fn topics_are_the_devices() {
        use crate::monitor::Layout;
        use crate::seq::MemStore;
        use firegrid_protocols::DeviceId;
        let d = Device::<_, 2, 2>::new(
            DeviceId::new("hz-7").unwrap(),
            Layout::smoke_alarm(),
            MemStore::new(),
            0,
        );
        let t = Topics::new(&d);
        assert_eq!(t.get(DeviceTopic::Status), "firegrid/v1/dev/hz-7/status");
        assert_eq!(t.get(DeviceTopic::Ack), "firegrid/v1/dev/hz-7/ack");
        assert_eq!(t.get(DeviceTopic::Cmd), "firegrid/v1/dev/hz-7/cmd");
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(classify::<0>(&MqttError::SendQuotaExceeded), Failure::Busy);
        assert_eq!(
            classify::<0>(&MqttError::ServerMaximumPacketSizeExceeded),
            Failure::Refused
        );
        assert_eq!(
            classify::<0>(&MqttError::Server),
            Failure::Down(DownCause::Protocol)
        );
        assert_eq!(
            down_cause::<0>(&MqttError::SessionBuffer),
            DownCause::Protocol
        );
    }
}
