//! The sensing task: once a second, a residual-current window from the ADS131M02, the four
//! NTC probes through the ADS1115, and on request the backup cell and the sensor check; each
//! result goes to the device as a [`MonitorInput`]. High priority.
//!
//! - **Residual current** (channel 0): the ADS131M02 converts continuously at 4 kSPS; the task
//!   reads one frame per DRDY (falling, active low) for one 200 ms window of 10 mains cycles
//!   ([`RmsCalculator`] with [`RmsConfig::REFERENCE`]) and then leaves the ADC alone for the
//!   rest of the second. The first frames after the pause are dropped
//!   ([`STALE_FRAMES`]): the ADC keeps unread conversions, whose spacing to the next is not
//!   one sample period. A chip error (SPI, CRC, ID, a spontaneous reset) reports
//!   `sensor_error` and re-initialises the chip next second.
//! - **Temperatures** (channels 1–4 = AIN0–AIN3): single-shot conversions at 128 SPS, awaited
//!   with the timer rather than the driver's blocking [`read_single_ended`]
//!   (`Ads1115::read_single_ended`), so that the other high-priority tasks run meanwhile.
//! - **Battery**: ADC1 reads `VBAT/4` and `VREFINT` ([`crate::battery`]).
//! - **Sensor check** (self-test): the ADS131M02 answers its ID and the ADS1115 its config
//!   register.
//!
//! [`read_single_ended`]: firegrid_firmware::drivers::ads1115::Ads1115::read_single_ended

use defmt::{Debug2Format, info, warn};
use embassy_stm32::adc::{Adc, SampleTime};
use embassy_stm32::exti::ExtiInput;
use embassy_stm32::gpio::Output;
use embassy_stm32::i2c::{I2c, Master as I2cMaster};
use embassy_stm32::mode::{Async, Blocking};
use embassy_stm32::peripherals::ADC1;
use embassy_stm32::spi::{Spi, mode::Master as SpiMaster};
use embassy_time::{Delay, Duration, Instant, Timer, with_deadline};
use embedded_hal_bus::spi::ExclusiveDevice;
use firegrid_firmware::drivers::ads131m02::{self, Ads131m02};
use firegrid_firmware::drivers::ads1115::{Ads1115, Channel, MAX_POLLS};
use firegrid_firmware::drivers::ntc::{NtcDivider, temperature_dc};
use firegrid_firmware::drivers::residual::{RmsCalculator, RmsConfig};
use firegrid_firmware::monitor::Input as MonitorInput;
use firegrid_firmware::protocols::channel::{ChannelNo, FaultCause};

use super::shared::{CHECK_SENSORS, INPUTS, MEASURE_BATTERY};
use crate::battery;

/// One measuring round per second.
const PERIOD: Duration = Duration::from_secs(1);
/// Frames dropped at the start of a window (unread conversions kept by the ADC).
pub(crate) const STALE_FRAMES: u32 = 2;
/// A window of 800 frames takes 200 ms; no DRDY for this long means the ADC is not converting.
const WINDOW_TIMEOUT: Duration = Duration::from_millis(400);
/// The residual-current channel.
const RESIDUAL_CHANNEL: ChannelNo = 0;
/// The first temperature channel (AIN0); AIN1–AIN3 follow.
const FIRST_TEMPERATURE_CHANNEL: ChannelNo = 1;

type SpiDevice = ExclusiveDevice<Spi<'static, Blocking, SpiMaster>, Output<'static>, Delay>;
type I2cBus = I2c<'static, Blocking, I2cMaster>;

/// The measuring hardware.
pub(crate) struct Sensors {
    ads131: Ads131m02<SpiDevice>,
    /// Whether the ADS131M02 is initialised (reset, ID checked, configured).
    ads131_ready: bool,
    drdy: ExtiInput<'static, Async>,
    ads1115: Ads1115<I2cBus>,
    adc: Adc<'static, ADC1>,
    rms: Option<RmsCalculator>,
}

impl Sensors {
    pub(crate) fn new(
        ads131: Ads131m02<SpiDevice>,
        drdy: ExtiInput<'static, Async>,
        ads1115: Ads1115<I2cBus>,
        adc: Adc<'static, ADC1>,
    ) -> Self {
        Self {
            ads131,
            ads131_ready: false,
            drdy,
            ads1115,
            adc,
            // The reference config is valid: `new` checks it anyway, and `None` reports a
            // sensor error rather than panicking.
            rms: RmsCalculator::new(RmsConfig::REFERENCE).ok(),
        }
    }

    /// One residual-current reading: mA, or why not.
    async fn residual(&mut self) -> Result<i32, FaultCause> {
        if !self.ads131_ready {
            if let Err(e) = self
                .ads131
                .init(&mut Delay, &ads131m02::Config::RESIDUAL_CURRENT)
            {
                warn!("ADS131M02 init: {}", Debug2Format(&e));
                return Err(e.fault_cause());
            }
            info!("ADS131M02 ready");
            self.ads131_ready = true;
        }
        let rms = self.rms.as_mut().ok_or(FaultCause::SensorError)?;
        rms.reset();
        let deadline = Instant::now() + WINDOW_TIMEOUT;
        let mut skip = STALE_FRAMES;
        loop {
            if with_deadline(deadline, self.drdy.wait_for_low())
                .await
                .is_err()
            {
                warn!("ADS131M02: no DRDY");
                self.ads131_ready = false;
                return Err(FaultCause::SensorError);
            }
            let frame = match self.ads131.read_frame() {
                Ok(frame) => frame,
                Err(e) => {
                    warn!("ADS131M02 frame: {}", Debug2Format(&e));
                    self.ads131_ready = false;
                    return Err(e.fault_cause());
                }
            };
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let [sample, _] = frame.channels;
            if let Some(result) = rms.push(sample) {
                return result.map(|r| i32::try_from(r.milliamps).unwrap_or(i32::MAX));
            }
        }
    }

    /// One NTC probe: deci-°C, or why not.
    async fn temperature(&mut self, channel: Channel) -> Result<i32, FaultCause> {
        let rate = self.ads1115.config().data_rate;
        self.ads1115
            .start_conversion(channel)
            .map_err(|e| e.fault_cause())?;
        Timer::after_micros(u64::from(rate.conversion_us())).await;
        for _ in 0..MAX_POLLS {
            if self
                .ads1115
                .is_conversion_done()
                .map_err(|e| e.fault_cause())?
            {
                let code = self
                    .ads1115
                    .read_conversion()
                    .map_err(|e| e.fault_cause())?;
                return temperature_dc(code, &NtcDivider::REFERENCE).map(i32::from);
            }
            Timer::after_micros(u64::from(rate.poll_interval_us())).await;
        }
        Err(FaultCause::SensorError)
    }

    /// The backup cell, mV.
    fn battery_mv(&mut self) -> Option<u16> {
        let mut vref = self.adc.enable_vrefint();
        let mut vbat = self.adc.enable_vbat();
        let raw_vref = self.adc.blocking_read(&mut vref, SampleTime::CYCLES480);
        let raw_vbat = self.adc.blocking_read(&mut vbat, SampleTime::CYCLES480);
        // The VBAT bridge draws from the cell: off again until the next measurement.
        embassy_stm32::pac::ADC123_COMMON
            .ccr()
            .modify(|w| w.set_vbate(false));
        battery::vbat_mv(raw_vbat, raw_vref, vrefint_cal())
    }

    /// The self-test's sensor check: both chips answer.
    fn check(&mut self) -> bool {
        let ads131 = self.ads131.verify_id().is_ok();
        let ads1115 = self.ads1115.read_config().is_ok();
        info!("sensor check: ADS131M02 {}, ADS1115 {}", ads131, ads1115);
        ads131 && ads1115
    }
}

/// The factory calibration of `VREFINT` (RM0090 / DS9405: `VREFINT_CAL`, 16 bits at
/// `0x1FFF_7A2A`, the raw reading at 3.3 V).
fn vrefint_cal() -> Option<u16> {
    const VREFINT_CAL: *const u16 = 0x1FFF_7A2A as *const u16;
    #[allow(unsafe_code)]
    // SAFETY: system memory, always mapped and readable, aligned; read-only factory data.
    let cal = unsafe { core::ptr::read_volatile(VREFINT_CAL) };
    Some(cal)
}

#[embassy_executor::task]
pub(crate) async fn sensing_task(mut sensors: Sensors) -> ! {
    let mut next = Instant::now();
    loop {
        let residual = sensors.residual().await;
        INPUTS
            .send(MonitorInput::Sample {
                channel: RESIDUAL_CHANNEL,
                value: residual,
            })
            .await;
        for (channel, input) in (FIRST_TEMPERATURE_CHANNEL..).zip(Channel::ALL) {
            let value = sensors.temperature(input).await;
            INPUTS.send(MonitorInput::Sample { channel, value }).await;
        }
        if MEASURE_BATTERY.try_take().is_some() {
            match sensors.battery_mv() {
                Some(mv) => {
                    info!("battery {} mV", mv);
                    INPUTS.send(MonitorInput::Battery(mv)).await;
                }
                None => warn!("battery: no reading"),
            }
        }
        if CHECK_SENSORS.try_take().is_some() {
            let ok = sensors.check();
            INPUTS.send(MonitorInput::SensorCheck(ok)).await;
        }
        next += PERIOD;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        Timer::at(next).await;
    }
}
