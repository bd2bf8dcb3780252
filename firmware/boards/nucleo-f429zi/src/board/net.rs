//! The network side, in thread mode: the embassy-net stack over the STM32 Ethernet MAC and
//! the LAN8742A (DHCP), and the device runner `firegrid_firmware::mqtt::run` with this
//! board's [`Connector`] (TCP to [`BROKER_ADDR`]), [`Clock`] (embassy-time) and [`Shell`]
//! (the channel and signals to the high-priority tasks).

use core::net::{SocketAddr, SocketAddrV4};

use defmt::{Debug2Format, info, warn};
use embassy_net::tcp::client::{TcpClient, TcpConnection};
use embassy_net::{Runner, Stack};
use embassy_stm32::eth::{Ethernet, GenericPhy, Sma};
use embassy_stm32::gpio::Output;
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_time::{Instant, Timer};
use embedded_nal_async::TcpConnect;
use firegrid_firmware::clock::Clock;
use firegrid_firmware::monitor::{Indicators, Input};
use firegrid_firmware::mqtt::{self, Connector, Exit, LinkEvent, Options, Shell};

use super::BoardDevice;
use super::config::{
    BROKER_ADDR, BROKER_PORT, MQTT_PASSWORD, MQTT_RX_BYTES, TCP_RX_BYTES, TCP_TX_BYTES,
};
use super::shared::{CHECK_SENSORS, INDICATORS, INPUTS, MEASURE_BATTERY};

/// The Ethernet driver: the STM32 MAC with the LAN8742A found on the MDIO bus.
pub(crate) type EthDevice = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;
/// The TCP connection pool: one connection to the broker.
pub(crate) type BrokerClient = TcpClient<'static, 1, TCP_TX_BYTES, TCP_RX_BYTES>;

#[embassy_executor::task]
pub(crate) async fn net_task(mut runner: Runner<'static, EthDevice>) -> ! {
    runner.run().await
}

/// What the device task owns.
pub(crate) struct Network {
    pub(crate) device: &'static mut BoardDevice,
    pub(crate) stack: Stack<'static>,
    pub(crate) client: &'static BrokerClient,
    pub(crate) rx_buffer: &'static mut [u8; MQTT_RX_BYTES],
    pub(crate) link_led: Output<'static>,
    pub(crate) jitter_seed: u64,
}

/// Runs the device on the network until a `reboot` command, then resets the MCU.
#[embassy_executor::task]
pub(crate) async fn device_task(net: Network) -> ! {
    let Network {
        device,
        stack,
        client,
        rx_buffer,
        link_led,
        jitter_seed,
    } = net;
    let mut connector = BrokerConnector { stack, client };
    let mut shell = BoardShell { link_led };
    let options = Options {
        password: MQTT_PASSWORD,
        jitter_seed,
        ..Options::new()
    };
    info!("broker {}:{}", Debug2Format(&BROKER_ADDR), BROKER_PORT);
    match mqtt::run(
        device,
        &mut connector,
        &EmbassyClock,
        &mut shell,
        &options,
        rx_buffer,
    )
    .await
    {
        Exit::Reboot => {
            info!("reboot");
            // Let the last log lines out.
            Timer::after_millis(100).await;
            cortex_m::peripheral::SCB::sys_reset()
        }
    }
}

/// Milliseconds since boot from embassy-time (TIM2).
struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        Timer::at(Instant::from_millis(deadline_ms)).await;
    }
}

/// TCP to the broker, once DHCP has given the board an address.
struct BrokerConnector {
    stack: Stack<'static>,
    client: &'static BrokerClient,
}

impl Connector for BrokerConnector {
    type Conn = TcpConnection<'static, 1, TCP_TX_BYTES, TCP_RX_BYTES>;
    type Error = embassy_net::tcp::Error;

    async fn connect(&mut self) -> Result<Self::Conn, Self::Error> {
        // The runner gives up after its I/O timeout and backs off: waiting for DHCP here is
        // bounded by that.
        self.stack.wait_config_up().await;
        let remote = SocketAddr::V4(SocketAddrV4::new(BROKER_ADDR, BROKER_PORT));
        self.client.connect(remote).await
    }
}

/// The runner's view of the hardware: inputs from the high-priority tasks, indicators and
/// requests to them.
struct BoardShell {
    link_led: Output<'static>,
}

impl Shell for BoardShell {
    async fn next_input(&mut self) -> Input {
        // `Channel::receive` is cancel-safe: an input stays queued if the runner drops this.
        INPUTS.receive().await
    }

    fn show(&mut self, indicators: Indicators) {
        INDICATORS.signal(indicators);
    }

    fn measure_battery(&mut self) {
        MEASURE_BATTERY.signal(());
    }

    fn check_sensors(&mut self) {
        CHECK_SENSORS.signal(());
    }

    fn on_link(&mut self, event: &LinkEvent) {
        match event {
            LinkEvent::Connecting { attempt } => info!("broker: connecting (attempt {})", attempt),
            LinkEvent::Up {
                session_present, ..
            } => {
                info!("broker: up (session present: {})", session_present);
                self.link_led.set_high();
            }
            LinkEvent::Down {
                cause,
                was_up,
                retry_in_ms,
            } => {
                warn!(
                    "broker: down ({}), was up: {}, retry in {} ms",
                    Debug2Format(cause),
                    was_up,
                    retry_in_ms
                );
                self.link_led.set_low();
            }
            LinkEvent::PublishRefused { topic, seq } => {
                warn!("publish refused: {} seq {}", topic.as_str(), seq);
            }
            LinkEvent::SubscribeRefused { topic } => {
                warn!("subscribe refused: {}", topic.as_str());
            }
            LinkEvent::Sent { .. } | LinkEvent::Received { .. } => {}
        }
    }
}
