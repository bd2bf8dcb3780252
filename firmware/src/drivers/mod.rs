//! Sensor and output drivers of the firegrid monitor, generic over embedded-hal 1.0.
//!
//! In the style of eldruin's driver crates: each bus driver is `Driver::new(bus, …)` /
//! `destroy(self) -> bus`, has an `Error<E>` generic over the bus error with typed device
//! errors, typed registers documented with their datasheet address and field layout, and
//! tests that replay datasheet transactions on `embedded-hal-mock`. The signal processing
//! (RMS, NTC curve, debouncing, sound patterns) is pure and separate, so it is tested without
//! a bus and the monitor core drives it with its own clock. Nothing here allocates, sleeps
//! (except the ADCs' bounded conversion waits through [`DelayNs`]), or panics on anything a bus
//! returns.
//!
//! # Parts and why
//!
//! | function | part | interface | module |
//! |---|---|---|---|
//! | residual current | TI ADS131M02, 2-ch 24-bit simultaneous ΔΣ ADC | SPI mode 1 | [`ads131m02`] + [`residual`] |
//! | terminal temperature ×4 | TI ADS1115, 16-bit 4-input ADC, + NTC probes | I²C | [`ads1115`] + [`ntc`] |
//! | smoke alarm, test button | GPIO inputs | [`InputPin`] | [`smoke_alarm`] |
//! | buzzer, LEDs, trip relay | GPIO outputs | [`OutputPin`] | [`outputs`] |
//!
//! - **ADS131M02**: an energy-metering ADC. 24 bits and a PGA up to 128 resolve a leakage
//!   current of a few mA through a 1000:1 zero-sequence CT while still taking 2 A; 4 kSPS
//!   gives a true RMS over whole 50 Hz cycles; a CRC on every frame catches corrupted data;
//!   the second channel is free for a load CT or the mains voltage.
//! - **ADS1115**: the usual ADC of these monitors' temperature channels: four single-ended
//!   inputs (the typical monitor has four temperature channels), a PGA and reference built
//!   in, I²C. Terminal temperatures move slowly; 16 bits at 128 SPS is plenty.
//! - The independent smoke alarm keeps sounding on its own; the monitor only reads its
//!   alarm and battery-low outputs, so a dead monitor never silences it.
//!
//! [`DelayNs`]: embedded_hal::delay::DelayNs
//! [`InputPin`]: embedded_hal::digital::InputPin
//! [`OutputPin`]: embedded_hal::digital::OutputPin
//!
//! # Wiring assumptions
//!
//! - ADS131M02: SPI mode 1 with its own chip select (an `SpiDevice`), CLKIN 8.192 MHz,
//!   internal 1.2 V reference, 24-bit words (reset default). AIN0P/AIN0N: the residual CT,
//!   whose 100 Ω burden sits in the CT housing, plus a 2 × 100 kΩ bias network to AVDD / AGND
//!   on the board (see [`residual`] for why and the numbers). DRDY to a GPIO interrupt: read
//!   a frame per DRDY.
//! - ADS1115 at 48h (ADDR to GND), VDD 3.3 V; each AINx is the midpoint of a 10 kΩ resistor
//!   from the same 3.3 V and a 10 kΩ B3950 NTC to GND (see [`ntc`]).
//! - Smoke alarm alarm/interconnect and battery-low outputs: open-collector (or contact) into
//!   GPIOs with pull-ups, active level configurable. Test button to a GPIO.
//! - Buzzer, LEDs and relay coil: active-high GPIOs through transistor stages. The relay is
//!   optional and can trip only if enabled at construction.
//!
//! # How faults are detected
//!
//! Each channel fault is a [`FaultCause`], reported as a fault, never as a reading:
//!
//! - **Residual CT open**: the bias network drives the input to a rail; the window's mean is
//!   beyond half of full scale → [`FaultCause::LeadOpen`].
//! - **Residual CT short**: the bias offset vanishes and only ADC noise is left over a whole
//!   window (mean and RMS both tiny) → [`FaultCause::LeadShort`].
//! - **NTC open / short**: computed resistance ≥ 490 kΩ (divider at 98 % of the reference)
//!   → [`FaultCause::LeadOpen`]; ≤ 50 Ω (0.5 %) → [`FaultCause::LeadShort`].
//! - **Chips**: an SPI/I²C error, a bad frame CRC, a wrong ID, an unexpected command
//!   response, a spontaneous ADC reset, or a conversion that never finishes is an `Error`
//!   whose `fault_cause()` is [`FaultCause::SensorError`].
//!
//! [`FaultCause`]: firegrid_protocols::channel::FaultCause
//! [`FaultCause::LeadOpen`]: firegrid_protocols::channel::FaultCause::LeadOpen
//! [`FaultCause::LeadShort`]: firegrid_protocols::channel::FaultCause::LeadShort
//! [`FaultCause::SensorError`]: firegrid_protocols::channel::FaultCause::SensorError

pub mod ads1115;
pub mod ads131m02;
pub mod ntc;
pub mod outputs;
pub mod residual;
pub mod smoke_alarm;
