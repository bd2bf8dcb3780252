//! Driver for the TI ADS1115: 16-bit, 4-input delta-sigma ADC with PGA (I²C).
//!
//! Datasheet followed: **TI SBAS444D, "ADS111x Ultra-Small, Low-Power, I²C-Compatible,
//! 860-SPS, 16-Bit ADCs With Internal Reference, Oscillator, and Programmable Comparator",
//! May 2009, revised December 2018.**
//!
//! firegrid uses its four single-ended inputs for four NTC temperature probes (see
//! [`ntc`](super::ntc)), in single-shot mode: temperatures move slowly, and single-shot lets
//! the driver pick the input for each conversion and bound the wait for it.
//!
//! # Interface facts relied on
//!
//! - I²C address 1001 0xx by the ADDR pin: GND 48h, VDD 49h, SDA 4Ah, SCL 4Bh ([`SlaveAddr`]).
//! - Pointer register (the first byte written) selects: 00b conversion, 01b config,
//!   10b Lo_thresh, 11b Hi_thresh ([`Register`]). A register write is pointer + MSB + LSB;
//!   a read is a pointer write followed by a 2-byte read (MSB first).
//! - Conversion register: 16-bit two's complement; FS = the PGA range, 1 LSB = FS / 2¹⁵.
//! - Config register ([`ConfigReg`]), reset 8583h.
//! - Single-shot: writing OS = 1 starts a conversion; reading OS = 0 means a conversion is in
//!   progress, 1 that none is (the result is ready). A conversion takes 1 / DR (the internal
//!   oscillator is accurate to about ±10 %, so the driver allows several conversion periods).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use firegrid_protocols::channel::FaultCause;

/// I²C address by the ADDR pin connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlaveAddr {
    /// ADDR to GND: 48h (firegrid's default).
    #[default]
    Gnd,
    /// ADDR to VDD: 49h.
    Vdd,
    /// ADDR to SDA: 4Ah.
    Sda,
    /// ADDR to SCL: 4Bh.
    Scl,
}

impl SlaveAddr {
    /// The 7-bit I²C address.
    pub const fn addr(self) -> u8 {
        match self {
            SlaveAddr::Gnd => 0x48,
            SlaveAddr::Vdd => 0x49,
            SlaveAddr::Sda => 0x4A,
            SlaveAddr::Scl => 0x4B,
        }
    }
}

/// Register pointer values (Address Pointer Register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Register {
    /// 00b: conversion result (read-only).
    Conversion = 0x00,
    /// 01b: configuration.
    Config = 0x01,
    /// 10b: comparator low threshold.
    LoThresh = 0x02,
    /// 11b: comparator high threshold.
    HiThresh = 0x03,
}

/// A single-ended input: MUX\[2:0\] = 1xxb (AINx against GND).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// MUX = 100b: AIN0 – GND.
    Ain0,
    /// MUX = 101b: AIN1 – GND.
    Ain1,
    /// MUX = 110b: AIN2 – GND.
    Ain2,
    /// MUX = 111b: AIN3 – GND.
    Ain3,
}

impl Channel {
    /// All four inputs in order, for scanning.
    pub const ALL: [Channel; 4] = [Channel::Ain0, Channel::Ain1, Channel::Ain2, Channel::Ain3];

    /// MUX\[2:0\].
    pub const fn mux_bits(self) -> u16 {
        match self {
            Channel::Ain0 => 0b100,
            Channel::Ain1 => 0b101,
            Channel::Ain2 => 0b110,
            Channel::Ain3 => 0b111,
        }
    }
}

/// Full-scale range, PGA\[2:0\]. Never apply more than VDD + 0.3 V to an input whatever the
/// range: the range only scales the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pga {
    /// 000b: ±6.144 V, 187.5 µV/LSB.
    Fs6_144V,
    /// 001b: ±4.096 V, 125 µV/LSB (firegrid: a 3.3 V divider fits).
    Fs4_096V,
    /// 010b: ±2.048 V, 62.5 µV/LSB (reset default).
    Fs2_048V,
    /// 011b: ±1.024 V, 31.25 µV/LSB.
    Fs1_024V,
    /// 100b: ±0.512 V, 15.625 µV/LSB.
    Fs0_512V,
    /// 101b: ±0.256 V, 7.8125 µV/LSB.
    Fs0_256V,
}

impl Pga {
    /// PGA\[2:0\].
    pub const fn bits(self) -> u16 {
        match self {
            Pga::Fs6_144V => 0b000,
            Pga::Fs4_096V => 0b001,
            Pga::Fs2_048V => 0b010,
            Pga::Fs1_024V => 0b011,
            Pga::Fs0_512V => 0b100,
            Pga::Fs0_256V => 0b101,
        }
    }

    /// Size of one code, nV (FS / 2¹⁵; 0.256 V rounds 7812.5 nV down).
    pub const fn lsb_nv(self) -> u32 {
        match self {
            Pga::Fs6_144V => 187_500,
            Pga::Fs4_096V => 125_000,
            Pga::Fs2_048V => 62_500,
            Pga::Fs1_024V => 31_250,
            Pga::Fs0_512V => 15_625,
            Pga::Fs0_256V => 7_812,
        }
    }
}

/// Data rate, DR\[2:0\].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRate {
    /// 000b: 8 SPS.
    Sps8,
    /// 001b: 16 SPS.
    Sps16,
    /// 010b: 32 SPS.
    Sps32,
    /// 011b: 64 SPS.
    Sps64,
    /// 100b: 128 SPS (reset default; firegrid's choice: good 50 Hz noise averaging, 8 ms).
    Sps128,
    /// 101b: 250 SPS.
    Sps250,
    /// 110b: 475 SPS.
    Sps475,
    /// 111b: 860 SPS.
    Sps860,
}

impl DataRate {
    /// DR\[2:0\].
    pub const fn bits(self) -> u16 {
        match self {
            DataRate::Sps8 => 0b000,
            DataRate::Sps16 => 0b001,
            DataRate::Sps32 => 0b010,
            DataRate::Sps64 => 0b011,
            DataRate::Sps128 => 0b100,
            DataRate::Sps250 => 0b101,
            DataRate::Sps475 => 0b110,
            DataRate::Sps860 => 0b111,
        }
    }

    /// Samples per second.
    pub const fn sps(self) -> u32 {
        match self {
            DataRate::Sps8 => 8,
            DataRate::Sps16 => 16,
            DataRate::Sps32 => 32,
            DataRate::Sps64 => 64,
            DataRate::Sps128 => 128,
            DataRate::Sps250 => 250,
            DataRate::Sps475 => 475,
            DataRate::Sps860 => 860,
        }
    }

    /// Nominal conversion time, µs, rounded up (1 / DR).
    pub const fn conversion_us(self) -> u32 {
        1_000_000_u32.div_ceil(self.sps())
    }

    /// Wait between two polls of the OS bit, µs: a quarter of the conversion time, rounded up.
    pub const fn poll_interval_us(self) -> u32 {
        self.conversion_us().div_ceil(POLLS_PER_CONVERSION)
    }
}

/// Polls of the OS bit per nominal conversion time.
pub const POLLS_PER_CONVERSION: u32 = 4;

/// Polls before giving up with [`Error::Timeout`]: 12 polls = 3 nominal conversion times,
/// ample for the ±10 % oscillator and the wake-up from power-down.
pub const MAX_POLLS: u32 = 12;

/// The config register (01h), reset 8583h.
///
/// | bit | field | meaning |
/// |---|---|---|
/// | 15 | OS | write 1: start a single conversion; read 0: converting, 1: idle |
/// | 14:12 | MUX\[2:0\] | input; 1xx = AINx single-ended |
/// | 11:9 | PGA\[2:0\] | full-scale range |
/// | 8 | MODE | 1 = single-shot / power-down (reset), 0 = continuous |
/// | 7:5 | DR\[2:0\] | data rate |
/// | 4 | COMP_MODE | comparator: 0 traditional |
/// | 3 | COMP_POL | 0 active low |
/// | 2 | COMP_LAT | 0 non-latching |
/// | 1:0 | COMP_QUE\[1:0\] | 11 = comparator off, ALERT/RDY high-Z (reset) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigReg(pub u16);

impl ConfigReg {
    /// Reset value.
    pub const RESET_VALUE: ConfigReg = ConfigReg(0x8583);
    /// OS, bit 15.
    pub const OS: u16 = 1 << 15;
    /// MODE, bit 8: single-shot.
    pub const MODE_SINGLE_SHOT: u16 = 1 << 8;
    /// COMP_QUE = 11b: comparator disabled.
    pub const COMP_QUE_DISABLE: u16 = 0b11;

    /// The word that starts one single-shot conversion of `channel` with `config`:
    /// OS = 1, MUX, PGA, MODE = 1, DR, comparator off.
    pub const fn single_shot(channel: Channel, config: &Config) -> ConfigReg {
        ConfigReg(
            Self::OS
                | (channel.mux_bits() << 12)
                | (config.pga.bits() << 9)
                | Self::MODE_SINGLE_SHOT
                | (config.data_rate.bits() << 5)
                | Self::COMP_QUE_DISABLE,
        )
    }

    /// Read back: whether the device is idle (OS = 1), i.e. a started conversion is done.
    pub const fn conversion_done(self) -> bool {
        self.0 & Self::OS != 0
    }
}

/// Conversion settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Full-scale range.
    pub pga: Pga,
    /// Data rate.
    pub data_rate: DataRate,
}

impl Config {
    /// firegrid's NTC configuration: ±4.096 V (a 0–3.3 V divider fits), 128 SPS.
    pub const NTC: Config = Config {
        pga: Pga::Fs4_096V,
        data_rate: DataRate::Sps128,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::NTC
    }
}

/// Errors of the ADS1115 driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I²C bus failed (including NACK: the device does not answer).
    I2c(E),
    /// The conversion did not finish within [`MAX_POLLS`] polls.
    Timeout,
}

impl<E> Error<E> {
    /// How the monitor reports this error on the channel: [`FaultCause::SensorError`].
    pub const fn fault_cause(&self) -> FaultCause {
        FaultCause::SensorError
    }
}

/// ADS1115 driver over an embedded-hal 1.0 [`I2c`] bus.
#[derive(Debug)]
pub struct Ads1115<I2C> {
    i2c: I2C,
    address: u8,
    config: Config,
}

impl<I2C, E> Ads1115<I2C>
where
    I2C: I2c<Error = E>,
{
    /// Wraps the bus. No bus traffic: the device powers up idle in single-shot mode.
    pub const fn new(i2c: I2C, address: SlaveAddr, config: Config) -> Self {
        Ads1115 {
            i2c,
            address: address.addr(),
            config,
        }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// The conversion settings.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Starts a single-shot conversion of `channel`, waits for it by polling OS (with
    /// [`DataRate::poll_interval_us`] between polls, at most [`MAX_POLLS`]), and returns the
    /// code.
    pub fn read_single_ended<D: DelayNs>(
        &mut self,
        channel: Channel,
        delay: &mut D,
    ) -> Result<i16, Error<E>> {
        self.start_conversion(channel)?;
        let interval = self.config.data_rate.poll_interval_us();
        for _ in 0..MAX_POLLS {
            delay.delay_us(interval);
            if self.is_conversion_done()? {
                return self.read_conversion();
            }
        }
        Err(Error::Timeout)
    }

    /// Writes the config register with OS = 1: starts one conversion of `channel`.
    pub fn start_conversion(&mut self, channel: Channel) -> Result<(), Error<E>> {
        self.write_register(
            Register::Config,
            ConfigReg::single_shot(channel, &self.config).0,
        )
    }

    /// Reads the config register's OS bit: true once the conversion is done.
    pub fn is_conversion_done(&mut self) -> Result<bool, Error<E>> {
        self.read_config().map(ConfigReg::conversion_done)
    }

    /// Reads the config register.
    pub fn read_config(&mut self) -> Result<ConfigReg, Error<E>> {
        self.read_register(Register::Config).map(ConfigReg)
    }

    /// Reads the conversion register: the last result, two's complement.
    pub fn read_conversion(&mut self) -> Result<i16, Error<E>> {
        self.read_register(Register::Conversion)
            .map(|v| i16::from_be_bytes(v.to_be_bytes()))
    }

    fn write_register(&mut self, register: Register, value: u16) -> Result<(), Error<E>> {
        let [msb, lsb] = value.to_be_bytes();
        self.i2c
            .write(self.address, &[register as u8, msb, lsb])
            .map_err(Error::I2c)
    }

    fn read_register(&mut self, register: Register) -> Result<u16, Error<E>> {
        let mut buf = [0; 2];
        self.i2c
            .write_read(self.address, &[register as u8], &mut buf)
            .map_err(Error::I2c)?;
        Ok(u16::from_be_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTx};
    use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cTx};

    use super::*;

    const ADDR: u8 = 0x48;

    #[test]
    fn config_words() {
        // OS=1, MUX=100 (AIN0), PGA=001 (±4.096 V), MODE=1, DR=100 (128 SPS), COMP_QUE=11.
        assert_eq!(
            ConfigReg::single_shot(Channel::Ain0, &Config::NTC).0,
            0xC383
        );
        assert_eq!(
            ConfigReg::single_shot(Channel::Ain3, &Config::NTC).0,
            0xF383
        );
        let fast = Config {
            pga: Pga::Fs2_048V,
            data_rate: DataRate::Sps860,
        };
        // OS=1, MUX=101 (AIN1), PGA=010, MODE=1, DR=111, COMP_QUE=11.
        assert_eq!(ConfigReg::single_shot(Channel::Ain1, &fast).0, 0xD5E3);
        assert!(ConfigReg::RESET_VALUE.conversion_done());
        assert!(!ConfigReg(0x4383).conversion_done());
    }

    #[test]
    fn timing() {
        assert_eq!(DataRate::Sps128.conversion_us(), 7813);
        assert_eq!(DataRate::Sps128.poll_interval_us(), 1954);
        assert_eq!(DataRate::Sps860.conversion_us(), 1163);
        assert_eq!(DataRate::Sps8.poll_interval_us(), 31_250);
        assert_eq!(SlaveAddr::Scl.addr(), 0x4B);
    }

    #[test]
    fn single_shot_read_polls_until_done() {
        let i2c = I2cMock::new(&[
            // Start: pointer 01h, config C383h (AIN0).
            I2cTx::write(ADDR, vec![0x01, 0xC3, 0x83]),
            // Poll 1: OS = 0, still converting.
            I2cTx::write_read(ADDR, vec![0x01], vec![0x43, 0x83]),
            // Poll 2: OS = 1, done.
            I2cTx::write_read(ADDR, vec![0x01], vec![0xC3, 0x83]),
            // Conversion register: 3390h = 13200.
            I2cTx::write_read(ADDR, vec![0x00], vec![0x33, 0x90]),
        ]);
        let mut delay = CheckedDelay::new(&[DelayTx::delay_us(1954), DelayTx::delay_us(1954)]);
        let mut adc = Ads1115::new(i2c.clone(), SlaveAddr::Gnd, Config::NTC);
        assert_eq!(adc.read_single_ended(Channel::Ain0, &mut delay), Ok(13_200));
        // The bus given back is the one scripted: check it through it.
        adc.destroy().done();
        delay.done();
    }

    #[test]
    fn negative_codes_are_twos_complement() {
        let mut i2c = I2cMock::new(&[
            I2cTx::write(0x49, vec![0x01, 0xE3, 0x83]),
            I2cTx::write_read(0x49, vec![0x01], vec![0xE3, 0x83]),
            I2cTx::write_read(0x49, vec![0x00], vec![0xFF, 0xFE]),
        ]);
        let mut delay = CheckedDelay::new(&[DelayTx::delay_us(1954)]);
        let mut adc = Ads1115::new(i2c.clone(), SlaveAddr::Vdd, Config::NTC);
        assert_eq!(adc.read_single_ended(Channel::Ain2, &mut delay), Ok(-2));
        i2c.done();
        delay.done();
    }

    #[test]
    fn a_conversion_that_never_finishes_times_out() {
        let mut script = vec![I2cTx::write(ADDR, vec![0x01, 0xD3, 0x83])];
        let mut delays = Vec::new();
        for _ in 0..MAX_POLLS {
            script.push(I2cTx::write_read(ADDR, vec![0x01], vec![0x53, 0x83]));
            delays.push(DelayTx::delay_us(1954));
        }
        let mut i2c = I2cMock::new(&script);
        let mut delay = CheckedDelay::new(&delays);
        let mut adc = Ads1115::new(i2c.clone(), SlaveAddr::Gnd, Config::NTC);
        let err = adc
            .read_single_ended(Channel::Ain1, &mut delay)
            .unwrap_err();
        assert_eq!(err, Error::Timeout);
        assert_eq!(err.fault_cause(), FaultCause::SensorError);
        i2c.done();
        delay.done();
    }

    #[test]
    fn a_missing_device_is_a_bus_error() {
        let mut i2c =
            I2cMock::new(
                &[I2cTx::write(ADDR, vec![0x01, 0xC3, 0x83]).with_error(ErrorKind::Other)],
            );
        let mut delay = CheckedDelay::new(&[]);
        let mut adc = Ads1115::new(i2c.clone(), SlaveAddr::Gnd, Config::NTC);
        assert_eq!(
            adc.read_single_ended(Channel::Ain0, &mut delay),
            Err(Error::I2c(ErrorKind::Other))
        );
        i2c.done();
        delay.done();
    }
}
