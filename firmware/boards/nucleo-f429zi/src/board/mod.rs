//! The board: clocks, pins, the two executors and their tasks. Only built for the MCU.
//!
//! Two executors, so that nothing on the network side can delay the local alarm:
//!
//! - **High priority** (an [`InterruptExecutor`] on the otherwise unused `UART4` vector,
//!   priority 6): [`sensing`] (residual current, temperatures, battery, self-test check),
//!   [`lines`] (smoke, battery-low and tamper lines and the test button, every 10 ms) and
//!   [`indicators`] (buzzer, LEDs and relay, every 10 ms). It preempts everything below.
//! - **Thread mode** ([`Executor`]): the embassy-net stack, the device runner
//!   (`firegrid_firmware::mqtt::run` over the [`Device`])
//!   and the flash maintenance of the sequence-number log.
//!
//! Inputs go up through a channel, indicators come down through a signal ([`shared`]). The
//! runner steps the device on every input even while a network operation hangs; and if the
//! thread mode stalls anyway (a 1–2 s flash erase, a few times in the device's life), the
//! indicator task keeps sounding what it was sounding, and the sensing task keeps its inputs
//! queued.

mod config;
mod indicators;
mod lines;
mod net;
mod sensing;
mod seq_store;
mod shared;

use core::cell::RefCell;

use defmt::{info, unwrap, warn};
use defmt_rtt as _;
use embassy_executor::{Executor, InterruptExecutor};
use embassy_net::StackResources;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_stm32::adc::Adc;
use embassy_stm32::eth::{Ethernet, PacketQueue};
use embassy_stm32::exti::{self, ExtiInput};
use embassy_stm32::flash::Flash;
use embassy_stm32::gpio::{Input, Level, Output, OutputOpenDrain, Pull, Speed};
use embassy_stm32::i2c::{self, I2c};
use embassy_stm32::interrupt::{InterruptExt, Priority};
use embassy_stm32::rng::Rng;
use embassy_stm32::spi::{self, Spi};
use embassy_stm32::time::Hertz;
use embassy_stm32::{Config, bind_interrupts, eth, interrupt, peripherals, rng};
use embassy_sync::blocking_mutex::Mutex;
use embassy_time::Delay;
use embedded_hal_bus::spi::ExclusiveDevice;
use firegrid_firmware::device::Device;
use firegrid_firmware::drivers::ads131m02::{Ads131m02, SPI_MODE};
use firegrid_firmware::drivers::ads1115::{self, Ads1115, SlaveAddr};
use firegrid_firmware::drivers::outputs::Outputs;
use firegrid_firmware::drivers::smoke_alarm::{ActiveLevel, DebouncedLine, Debouncer, TestButton};
use panic_probe as _;
use static_cell::{ConstStaticCell, StaticCell};

use crate::identity;
use crate::seq_log::{FlashSeqStore, Region};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
    EXTI15_10 => exti::InterruptHandler<interrupt::typelevel::EXTI15_10>;
});

/// The device as this board runs it.
pub(crate) type BoardDevice = Device<
    seq_store::SharedSeqStore,
    { config::OUTBOX_EVENTS },
    { config::OUTBOX_TELEMETRY },
    { config::PAYLOAD_BYTES },
>;

static EXECUTOR_HIGH: InterruptExecutor = InterruptExecutor::new();
static EXECUTOR_LOW: StaticCell<Executor> = StaticCell::new();

// Large buffers with const initialisers, so they are built in place, not on `main`'s stack
// (`main` never returns: whatever its frame holds stays taken for good).
static PACKETS: ConstStaticCell<PacketQueue<4, 4>> = ConstStaticCell::new(PacketQueue::new());
static RESOURCES: ConstStaticCell<StackResources<3>> = ConstStaticCell::new(StackResources::new());
static TCP_STATE: ConstStaticCell<
    TcpClientState<1, { config::TCP_TX_BYTES }, { config::TCP_RX_BYTES }>,
> = ConstStaticCell::new(TcpClientState::new());
static TCP_CLIENT: StaticCell<net::BrokerClient> = StaticCell::new();
static MQTT_RX: ConstStaticCell<[u8; config::MQTT_RX_BYTES]> =
    ConstStaticCell::new([0; config::MQTT_RX_BYTES]);
static DEVICE: StaticCell<BoardDevice> = StaticCell::new();

#[interrupt]
#[allow(unsafe_code, non_snake_case)]
unsafe fn UART4() {
    // SAFETY: UART4 is not used as a UART on this board; its vector only runs this executor,
    // which `EXECUTOR_HIGH.start(UART4)` set up before pending it.
    unsafe { EXECUTOR_HIGH.on_interrupt() }
}

/// 180 MHz from the 8 MHz the ST-LINK feeds HSE (bypass, MCO of the ST-LINK on NUCLEO-144
/// boards): 8 / 4 × 180 / 2. APB1 45 MHz (TIM2, the time driver, at 90 MHz), APB2 90 MHz
/// (SPI1). Ethernet needs HCLK ≥ 25 MHz.
fn clocks() -> Config {
    use embassy_stm32::rcc::{
        AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllSource,
        Sysclk,
    };
    let mut config = Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL180,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// The ADS131M02's SPI mode (the driver's `SPI_MODE`, embedded-hal 1.0) in the HAL's type.
fn spi_mode() -> spi::Mode {
    use embedded_hal::spi::{Phase, Polarity};
    spi::Mode {
        polarity: match SPI_MODE.polarity {
            Polarity::IdleLow => spi::Polarity::IdleLow,
            Polarity::IdleHigh => spi::Polarity::IdleHigh,
        },
        phase: match SPI_MODE.phase {
            Phase::CaptureOnFirstTransition => spi::Phase::CaptureOnFirstTransition,
            Phase::CaptureOnSecondTransition => spi::Phase::CaptureOnSecondTransition,
        },
    }
}

/// The device (≈ 45 KiB, most of it the outbox), built in a frame of its own that is gone
/// once it returns, and its sequence numbers started so that a broken store shows at boot.
#[inline(never)]
fn init_device(
    id: firegrid_firmware::protocols::DeviceId,
    store: seq_store::SharedSeqStore,
) -> &'static mut BoardDevice {
    let device = DEVICE.init_with(|| {
        Device::new(
            id,
            config::layout(),
            store,
            embassy_time::Instant::now().as_millis(),
        )
    });
    if let Err(e) = device.seq_allocator_mut().start() {
        warn!("sequence numbers unavailable: {}", defmt::Debug2Format(&e));
    }
    device
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let p = embassy_stm32::init(clocks());
    let uid = embassy_stm32::uid::uid();
    let id = match identity::device_id(&uid) {
        Ok(id) => id,
        Err(_) => defmt::panic!("the unique id gives no valid device id"),
    };
    info!("firegrid NUCLEO-F429ZI, device id {}", id.as_str());

    // ---- Local outputs first: all off, relay first (the driver does that). ----
    let buzzer = Output::new(p.PE9, Level::Low, Speed::Low); // D6
    let alarm_led = Output::new(p.PB14, Level::Low, Speed::Low); // LD3 red
    let fault_led = Output::new(p.PB7, Level::Low, Speed::Low); // LD2 blue
    let relay = Output::new(p.PF13, Level::Low, Speed::Low); // D7
    let link_led = Output::new(p.PB0, Level::Low, Speed::Low); // LD1 green: broker session up
    let outputs = match Outputs::with_relay(buzzer, alarm_led, fault_led, relay, config::RELAY_MODE)
    {
        Ok(o) => o,
        Err(_) => defmt::panic!("GPIO outputs are infallible"),
    };

    // ---- ADS131M02 on SPI1: PA5 SCK (D13), PA6 MISO (D12), PB5 MOSI (D22), CS PD14 (D10),
    // DRDY PF12 (D8). PA7 (D11) is RMII CRS_DV on this board: MOSI is on PB5 instead.
    let mut spi_config = spi::Config::default();
    spi_config.mode = spi_mode();
    spi_config.frequency = Hertz(8_000_000); // ≤ 8 MHz: 90 MHz / 16 = 5.6 MHz
    let spi_bus = Spi::new_blocking(p.SPI1, p.PA5, p.PB5, p.PA6, spi_config);
    let cs = Output::new(p.PD14, Level::High, Speed::VeryHigh);
    let spi_dev = match ExclusiveDevice::new(spi_bus, cs, Delay) {
        Ok(d) => d,
        Err(_) => defmt::panic!("GPIO outputs are infallible"),
    };
    let ads131 = Ads131m02::new(spi_dev);
    let drdy = ExtiInput::new(p.PF12, p.EXTI12, Pull::Up, Irqs);

    // ---- ADS1115 on I2C1: PB8 SCL (D15), PB9 SDA (D14), 400 kHz. ----
    let mut i2c_config = i2c::Config::default();
    i2c_config.frequency = Hertz(400_000);
    let i2c = I2c::new_blocking(p.I2C1, p.PB8, p.PB9, i2c_config);
    let ads1115 = Ads1115::new(i2c, SlaveAddr::Gnd, ads1115::Config::NTC);

    // ---- The backup cell on VBAT, through ADC1. ----
    let adc = Adc::new(p.ADC1);

    // ---- Lines: smoke alarm (D2 PF15) and its battery-low output (D4 PF14), open collector,
    // active low with pull-ups; tamper switch (D5 PE11) closed to GND when the enclosure is
    // shut (open = high = tampered); test button = the user button B1 (PC13, high when
    // pressed, pull-down on the board).
    let smoke = DebouncedLine::smoke_alarm(Input::new(p.PF15, Pull::Up), ActiveLevel::Low);
    let smoke_battery = DebouncedLine::battery_low(Input::new(p.PF14, Pull::Up), ActiveLevel::Low);
    let tamper = DebouncedLine::new(
        Input::new(p.PE11, Pull::Up),
        Debouncer::new(
            ActiveLevel::High,
            lines::TAMPER_DEBOUNCE_MS,
            lines::TAMPER_DEBOUNCE_MS,
        ),
    );
    let button = TestButton::new(Input::new(p.PC13, Pull::Down), ActiveLevel::High);

    // ---- The local side runs from here on, whatever the network and the flash do. ----
    interrupt::UART4.set_priority(Priority::P6);
    let high = EXECUTOR_HIGH.start(interrupt::UART4);
    high.spawn(unwrap!(indicators::indicator_task(outputs)));
    high.spawn(unwrap!(sensing::sensing_task(sensing::Sensors::new(
        ads131, drdy, ads1115, adc
    ))));
    high.spawn(unwrap!(lines::lines_task(lines::Lines {
        smoke,
        smoke_battery,
        tamper,
        button,
    })));

    // ---- Sequence numbers: the log in the last two flash sectors. ----
    // Errata ES0206 2.2.11: on silicon before revision 3, reads from bank 2 can be corrupted
    // unless PA12 is an output, pulled down, driven low (embassy-stm32 refuses to read bank 2
    // otherwise). PA12 (USB OTG FS D+ on CN13) is unused here: hold it so for good.
    static PA12: StaticCell<OutputOpenDrain<'static>> = StaticCell::new();
    PA12.init(OutputOpenDrain::new_pull(
        p.PA12,
        Level::Low,
        Speed::Low,
        Pull::Down,
    ));
    static SEQ_STORE: StaticCell<seq_store::StoreCell> = StaticCell::new();
    let store = SEQ_STORE.init(Mutex::new(RefCell::new(FlashSeqStore::new(
        Flash::new_blocking(p.FLASH),
        Region::STM32F429ZI,
    ))));
    let store = seq_store::SharedSeqStore::new(store);
    // The spare sector is erased now if it needs it (1–2 s, once in a long while): the local
    // side already runs on the high-priority executor.
    store.maintain();

    // ---- The device: monitor + outbox + sequence numbers + codec. ----
    let device = init_device(id, store);

    // ---- Ethernet (LAN8742A, RMII) and DHCP. ----
    let mut rng = Rng::new(p.RNG, Irqs);
    let seed = rng.next_u64();
    let jitter_seed = rng.next_u64();
    let eth = Ethernet::new(
        PACKETS.take(),
        p.ETH,
        Irqs,
        p.PA1,  // RMII REF_CLK
        p.PA7,  // RMII CRS_DV
        p.PC4,  // RMII RXD0
        p.PC5,  // RMII RXD1
        p.PG13, // RMII TXD0
        p.PB13, // RMII TXD1
        p.PG11, // RMII TX_EN
        identity::mac_address(&uid),
        p.ETH_SMA,
        p.PA2, // MDIO
        p.PC1, // MDC
    );
    let (stack, runner) = embassy_net::new(
        eth,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.take(),
        seed,
    );
    let client = TCP_CLIENT.init(TcpClient::new(stack, TCP_STATE.take()));
    let rx_buffer = MQTT_RX.take();

    let low = EXECUTOR_LOW.init(Executor::new());
    low.run(|spawner| {
        spawner.spawn(unwrap!(net::net_task(runner)));
        spawner.spawn(unwrap!(net::device_task(net::Network {
            device,
            stack,
            client,
            rx_buffer,
            link_led,
            jitter_seed,
        })));
        spawner.spawn(unwrap!(seq_store::maintenance_task(store)));
    })
}
