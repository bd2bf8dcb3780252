//! Driver for the TI ADS131M02: 2-channel, simultaneous-sampling, 24-bit delta-sigma ADC (SPI).
//!
//! Datasheet followed: **TI SBAS853A, "ADS131M02 2-Channel, Simultaneously-Sampling, 24-Bit,
//! Delta-Sigma ADC", January 2020, revised April 2021.** Table and field names below are the
//! datasheet's; section numbers are not cited because they move between revisions.
//!
//! # Interface facts relied on
//!
//! - SPI mode 1 (CPOL = 0, CPHA = 1), MSB first ([`SPI_MODE`]).
//! - Every transfer is one *frame* of words. The word size after reset is 24 bits
//!   (MODE.WLENGTH = 01b); this driver keeps it. An ADS131M02 output frame is 4 words:
//!   response word, channel 0, channel 1, CRC word ([`FRAME_BYTES`] = 12). The input frame has
//!   the same length: command word, (register data for WREG), zero padding.
//! - 16-bit command, response and register words are left-aligned in a 24-bit word, followed
//!   by one zero pad byte.
//! - The device answers a command in the **next** frame: so every command here is one frame
//!   carrying the command, then one NULL frame that collects the response.
//! - Channel data are 24-bit two's complement, MSB first; +FS = 7FFFFFh, −FS = 800000h;
//!   FS = ±1.2 V / gain with the internal 1.2 V reference ([`VREF_UV`]).
//! - The output CRC word is always sent: CRC-16-CCITT (x¹⁶ + x¹² + x⁵ + 1, [`CRC_POLY`]),
//!   seed FFFFh ([`CRC_SEED`]), MSB first, no final XOR, over every byte of the frame that
//!   precedes the CRC word, pad bytes included (MODE.CRC_TYPE = 0, the reset default).
//!
//! # Command words (Command Definitions table)
//!
//! | command | word | response (next frame) |
//! |---|---|---|
//! | NULL | `0000 0000 0000 0000` | STATUS register |
//! | RESET | `0000 0000 0001 0001` (0011h) | `1111 1111 0010 0010` (FF22h, ADS131M02) |
//! | STANDBY | `0000 0000 0010 0010` (0022h) | 0022h |
//! | WAKEUP | `0000 0000 0011 0011` (0033h) | 0033h |
//! | LOCK | `0000 0101 0101 0101` (0555h) | 0555h |
//! | UNLOCK | `0000 0110 0101 0101` (0655h) | 0655h |
//! | RREG | `101a aaaa annn nnnn` | register data (single register) |
//! | WREG | `011a aaaa annn nnnn` | `010a aaaa ammm mmmm` |
//!
//! `a` = 6-bit register address, `n` = number of registers − 1, `m` = registers written − 1.

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{MODE_1, Mode, SpiDevice};
use firegrid_protocols::channel::FaultCause;

/// SPI mode of the ADS131M02: mode 1 (CPOL = 0, CPHA = 1; data shifted out on SCLK rising
/// edges, latched on falling edges).
pub const SPI_MODE: Mode = MODE_1;

/// Number of ADC channels of the ADS131M02.
pub const CHANNELS: usize = 2;

/// Bytes per word at the reset word size (MODE.WLENGTH = 01b, 24 bits).
pub const WORD_BYTES: usize = 3;

/// Words per frame: response/command word, one word per channel, CRC word.
pub const FRAME_WORDS: usize = CHANNELS + 2;

/// Bytes per frame at 24-bit words: 4 words × 3 bytes.
pub const FRAME_BYTES: usize = FRAME_WORDS * WORD_BYTES;

/// Response word to RESET of the ADS131M02: FF20h + channel count (Command Definitions table).
pub const RESET_RESPONSE: u16 = 0xFF22;

/// Channel count the ID register's CHANCNT field reports for the ADS131M02.
pub const ID_CHANNEL_COUNT: u16 = 2;

/// Nominal master clock on CLKIN: 8.192 MHz. Modulator clock fMOD = fCLKIN / 2 = 4.096 MHz in
/// high-resolution mode; data rate = fMOD / OSR.
pub const FCLKIN_HZ: u32 = 8_192_000;

/// Internal reference voltage, µV: 1.2 V. Full scale is ±VREF / gain.
pub const VREF_UV: u32 = 1_200_000;

/// Largest conversion code, 7FFFFFh (input ≥ +FS − 1 LSB; the output clips here).
pub const CODE_MAX: i32 = 0x7F_FFFF;

/// Smallest conversion code, 800000h sign-extended (input ≤ −FS; the output clips here).
pub const CODE_MIN: i32 = -0x80_0000;

/// Codes per full scale: one sign bit and 23 magnitude bits, 2²³.
pub const CODES_PER_FULL_SCALE: u32 = 1 << 23;

/// CRC-16-CCITT generator polynomial x¹⁶ + x¹² + x⁵ + 1 (CRC_TYPE = 0).
pub const CRC_POLY: u16 = 0x1021;

/// CRC seed value: FFFFh.
pub const CRC_SEED: u16 = 0xFFFF;

/// Wait after the RESET frame before the next frame, µs. The datasheet asks for at least
/// t_REGACQ (a few µs) after a reset before communicating; 250 µs is a generous margin that
/// also covers the power-on reset time, and costs nothing at initialisation.
pub const RESET_SETTLE_US: u32 = 250;

/// Command words (Command Definitions table).
pub mod command {
    /// NULL: no operation; the response is the STATUS register.
    pub const NULL: u16 = 0x0000;
    /// RESET: resets the device; response [`super::RESET_RESPONSE`].
    pub const RESET: u16 = 0x0011;
    /// STANDBY: stops conversions; response 0022h.
    pub const STANDBY: u16 = 0x0022;
    /// WAKEUP: leaves standby; response 0033h.
    pub const WAKEUP: u16 = 0x0033;
    /// LOCK: ignore all commands but NULL, RREG and UNLOCK; response 0555h.
    pub const LOCK: u16 = 0x0555;
    /// UNLOCK: accept all commands again; response 0655h.
    pub const UNLOCK: u16 = 0x0655;
    /// RREG opcode bits, `101a aaaa annn nnnn`.
    pub const RREG: u16 = 0xA000;
    /// WREG opcode bits, `011a aaaa annn nnnn`.
    pub const WREG: u16 = 0x6000;
    /// WREG acknowledgement bits, `010a aaaa ammm mmmm`.
    pub const WREG_ACK: u16 = 0x4000;

    /// The RREG word reading `count` (1..=128) registers from `address`.
    pub const fn rreg(address: u8, count: u8) -> u16 {
        RREG | address_bits(address) | count_bits(count)
    }

    /// The WREG word writing `count` (1..=128) registers from `address`.
    pub const fn wreg(address: u8, count: u8) -> u16 {
        WREG | address_bits(address) | count_bits(count)
    }

    /// The acknowledgement the device returns for [`wreg`]`(address, count)`.
    pub const fn wreg_ack(address: u8, count: u8) -> u16 {
        WREG_ACK | address_bits(address) | count_bits(count)
    }

    /// Address field: 6 bits at \[12:7\].
    const fn address_bits(address: u8) -> u16 {
        ((address & 0x3F) as u16) << 7
    }

    /// Count field: registers − 1, 7 bits at \[6:0\].
    const fn count_bits(count: u8) -> u16 {
        (count.saturating_sub(1) & 0x7F) as u16
    }
}

/// Register addresses of the ADS131M02 (Register Map table). Registers are 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Register {
    /// 00h ID (read-only): RESERVED\[15:12\] = 0010b, CHANCNT\[11:8\] = channel count (2),
    /// RESERVED\[7:0\].
    Id = 0x00,
    /// 01h STATUS (read-only), see [`Status`].
    Status = 0x01,
    /// 02h MODE, reset 0510h, see [`ModeReg`].
    Mode = 0x02,
    /// 03h CLOCK, reset 030Eh, see [`Clock`].
    Clock = 0x03,
    /// 04h GAIN1, reset 0000h, see [`Gains`].
    Gain1 = 0x04,
    /// 06h CFG (global chop, current detect), reset 0600h.
    Cfg = 0x06,
    /// 07h THRSHLD_MSB: current-detect threshold CD_TH\[23:8\].
    ThrshldMsb = 0x07,
    /// 08h THRSHLD_LSB: CD_TH\[7:0\] in \[15:8\], DCBLOCK\[3:0\].
    ThrshldLsb = 0x08,
    /// 09h CH0_CFG: PHASE0\[15:6\], DCBLKDIS0\[2\], MUX0\[1:0\].
    Ch0Cfg = 0x09,
    /// 0Ah CH0_OCAL_MSB: offset calibration OCAL0\[23:8\].
    Ch0OcalMsb = 0x0A,
    /// 0Bh CH0_OCAL_LSB: OCAL0\[7:0\] in \[15:8\].
    Ch0OcalLsb = 0x0B,
    /// 0Ch CH0_GCAL_MSB: gain calibration GCAL0\[23:8\], reset 8000h (gain 1.0).
    Ch0GcalMsb = 0x0C,
    /// 0Dh CH0_GCAL_LSB: GCAL0\[7:0\] in \[15:8\].
    Ch0GcalLsb = 0x0D,
    /// 0Eh CH1_CFG: PHASE1\[15:6\], DCBLKDIS1\[2\], MUX1\[1:0\].
    Ch1Cfg = 0x0E,
    /// 0Fh CH1_OCAL_MSB.
    Ch1OcalMsb = 0x0F,
    /// 10h CH1_OCAL_LSB.
    Ch1OcalLsb = 0x10,
    /// 11h CH1_GCAL_MSB, reset 8000h.
    Ch1GcalMsb = 0x11,
    /// 12h CH1_GCAL_LSB.
    Ch1GcalLsb = 0x12,
    /// 3Eh REGMAP_CRC (read-only): CRC of the register map.
    RegmapCrc = 0x3E,
}

impl Register {
    /// The 6-bit register address.
    pub const fn addr(self) -> u8 {
        self as u8
    }
}

/// The ID register (00h): RESERVED\[15:12\], CHANCNT\[11:8\], RESERVED\[7:0\].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub u16);

impl Id {
    /// CHANCNT\[11:8\]: the number of channels; 2 on the ADS131M02.
    pub const fn channel_count(self) -> u16 {
        (self.0 >> 8) & 0x0F
    }

    /// Whether this is an ADS131M02 (CHANCNT = 2). The reserved bits are not checked.
    pub const fn is_ads131m02(self) -> bool {
        self.channel_count() == ID_CHANNEL_COUNT
    }
}

/// The STATUS register (01h), also the response word to NULL, so it heads every data frame.
///
/// | bit | field | meaning |
/// |---|---|---|
/// | 15 | LOCK | registers locked |
/// | 14 | F_RESYNC | a resynchronisation occurred |
/// | 13 | REG_MAP | register-map CRC changed (if REG_CRC_EN) |
/// | 12 | CRC_ERR | input-frame CRC error (if RX_CRC_EN) |
/// | 11 | CRC_TYPE | 0 = CCITT, 1 = ANSI |
/// | 10 | RESET | the device was reset (cleared by writing MODE.RESET = 0) |
/// | 9:8 | WLENGTH | word size: 00 = 16, 01 = 24, 10 = 32 zero-padded, 11 = 32 sign-extended |
/// | 1 | DRDY1 | channel 1 has new data |
/// | 0 | DRDY0 | channel 0 has new data |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// LOCK, bit 15.
    pub const fn locked(self) -> bool {
        self.0 & (1 << 15) != 0
    }
    /// F_RESYNC, bit 14.
    pub const fn resync(self) -> bool {
        self.0 & (1 << 14) != 0
    }
    /// REG_MAP, bit 13.
    pub const fn reg_map_changed(self) -> bool {
        self.0 & (1 << 13) != 0
    }
    /// CRC_ERR, bit 12.
    pub const fn crc_error(self) -> bool {
        self.0 & (1 << 12) != 0
    }
    /// RESET, bit 10: set after any reset until MODE.RESET is written 0. A data frame with it
    /// set means the device lost its configuration.
    pub const fn reset(self) -> bool {
        self.0 & (1 << 10) != 0
    }
    /// WLENGTH\[9:8\].
    pub const fn word_length_bits(self) -> u16 {
        (self.0 >> 8) & 0b11
    }
    /// DRDY0 (bit 0) and DRDY1 (bit 1).
    pub const fn data_ready(self, channel: usize) -> bool {
        match channel {
            0 => self.0 & 1 != 0,
            1 => self.0 & 2 != 0,
            _ => false,
        }
    }
}

/// The MODE register (02h) as this driver writes it; reset value 0510h.
///
/// | bit | field | here |
/// |---|---|---|
/// | 13 | REG_CRC_EN | 0 |
/// | 12 | RX_CRC_EN | 0 (input CRC off; output CRC is always sent and checked) |
/// | 11 | CRC_TYPE | 0 = CCITT |
/// | 10 | RESET | 0: clears the reset flag so a later spontaneous reset shows in STATUS |
/// | 9:8 | WLENGTH | 01 = 24 bit (reset default) |
/// | 4 | TIMEOUT | 1 = SPI timeout enabled (reset default) |
/// | 3:2 | DRDY_SEL | 00 = DRDY follows the most lagging enabled channel |
/// | 1 | DRDY_HiZ | 0 = DRDY driven high when not ready |
/// | 0 | DRDY_FMT | 0 = DRDY is a logic-low level when ready |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeReg(pub u16);

impl ModeReg {
    /// Reset value of MODE.
    pub const RESET_VALUE: ModeReg = ModeReg(0x0510);
    /// What [`Ads131m02::configure`] writes: the reset value with RESET cleared (0110h).
    pub const CONFIGURED: ModeReg = ModeReg(0x0110);
}

/// Oversampling ratio, CLOCK.OSR\[4:2\]. Data rate = fMOD / OSR, fMOD = 4.096 MHz at the
/// nominal 8.192 MHz clock in high-resolution mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Osr {
    /// 000b: OSR 128, 32 kSPS.
    Osr128,
    /// 001b: OSR 256, 16 kSPS.
    Osr256,
    /// 010b: OSR 512, 8 kSPS.
    Osr512,
    /// 011b: OSR 1024, 4 kSPS (reset default; used for residual current: 80 samples per
    /// 50 Hz cycle).
    Osr1024,
    /// 100b: OSR 2048, 2 kSPS.
    Osr2048,
    /// 101b: OSR 4096, 1 kSPS.
    Osr4096,
    /// 110b: OSR 8192, 500 SPS.
    Osr8192,
    /// 111b: OSR 16256 (not 16384), ≈252 SPS.
    Osr16256,
}

impl Osr {
    /// The OSR\[2:0\] field value.
    pub const fn bits(self) -> u16 {
        match self {
            Osr::Osr128 => 0b000,
            Osr::Osr256 => 0b001,
            Osr::Osr512 => 0b010,
            Osr::Osr1024 => 0b011,
            Osr::Osr2048 => 0b100,
            Osr::Osr4096 => 0b101,
            Osr::Osr8192 => 0b110,
            Osr::Osr16256 => 0b111,
        }
    }

    /// The oversampling ratio.
    pub const fn ratio(self) -> u32 {
        match self {
            Osr::Osr128 => 128,
            Osr::Osr256 => 256,
            Osr::Osr512 => 512,
            Osr::Osr1024 => 1024,
            Osr::Osr2048 => 2048,
            Osr::Osr4096 => 4096,
            Osr::Osr8192 => 8192,
            Osr::Osr16256 => 16256,
        }
    }

    /// Output data rate in samples per second (rounded down) for a CLKIN of `fclkin_hz` in
    /// high-resolution mode: fCLKIN / 2 / OSR.
    pub const fn data_rate_sps(self, fclkin_hz: u32) -> u32 {
        match (fclkin_hz >> 1).checked_div(self.ratio()) {
            Some(rate) => rate,
            None => 0,
        }
    }
}

/// Power mode, CLOCK.PWR\[1:0\].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerMode {
    /// 00b: very-low-power.
    VeryLowPower,
    /// 01b: low-power.
    LowPower,
    /// 10b: high-resolution (reset default; needed for the nominal 8.192 MHz clock).
    HighResolution,
}

impl PowerMode {
    /// The PWR\[1:0\] field value.
    pub const fn bits(self) -> u16 {
        match self {
            PowerMode::VeryLowPower => 0b00,
            PowerMode::LowPower => 0b01,
            PowerMode::HighResolution => 0b10,
        }
    }
}

/// The CLOCK register (03h), reset value 030Eh (both channels on, OSR 1024, high-resolution).
///
/// | bit | field |
/// |---|---|
/// | 15:10 | reserved (0) |
/// | 9 | CH1_EN |
/// | 8 | CH0_EN |
/// | 7:6 | reserved (0) |
/// | 5 | TBM (turbo mode, OSR 64; not used here, 0) |
/// | 4:2 | OSR\[2:0\] |
/// | 1:0 | PWR\[1:0\] |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// CH0_EN, CH1_EN.
    pub channels_enabled: [bool; CHANNELS],
    /// OSR\[2:0\].
    pub osr: Osr,
    /// PWR\[1:0\].
    pub power: PowerMode,
}

impl Clock {
    /// The register value.
    pub const fn bits(self) -> u16 {
        let mut v = (self.osr.bits() << 2) | self.power.bits();
        if self.channels_enabled[0] {
            v |= 1 << 8;
        }
        if self.channels_enabled[1] {
            v |= 1 << 9;
        }
        v
    }
}

/// PGA gain, GAIN1.PGAGAINn\[2:0\]. Full scale is ±1.2 V / gain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gain {
    /// 000b: gain 1, ±1.2 V.
    X1,
    /// 001b: gain 2, ±600 mV.
    X2,
    /// 010b: gain 4, ±300 mV.
    X4,
    /// 011b: gain 8, ±150 mV.
    X8,
    /// 100b: gain 16, ±75 mV.
    X16,
    /// 101b: gain 32, ±37.5 mV.
    X32,
    /// 110b: gain 64, ±18.75 mV.
    X64,
    /// 111b: gain 128, ±9.375 mV.
    X128,
}

impl Gain {
    /// The PGAGAINn\[2:0\] field value.
    pub const fn bits(self) -> u16 {
        match self {
            Gain::X1 => 0,
            Gain::X2 => 1,
            Gain::X4 => 2,
            Gain::X8 => 3,
            Gain::X16 => 4,
            Gain::X32 => 5,
            Gain::X64 => 6,
            Gain::X128 => 7,
        }
    }

    /// The gain factor.
    pub const fn factor(self) -> u32 {
        1 << self.bits()
    }
}

/// The GAIN1 register (04h), reset 0000h: PGAGAIN1\[6:4\], PGAGAIN0\[2:0\], other bits reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gains(pub [Gain; CHANNELS]);

impl Gains {
    /// The register value.
    pub const fn bits(self) -> u16 {
        (self.0[1].bits() << 4) | self.0[0].bits()
    }
}

/// What [`Ads131m02::configure`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// CLOCK register contents.
    pub clock: Clock,
    /// GAIN1 register contents.
    pub gains: Gains,
}

impl Config {
    /// firegrid's residual-current configuration: both channels on, OSR 1024 (4 kSPS at
    /// 8.192 MHz, 80 samples per 50 Hz cycle), high-resolution, channel 0 (the residual CT)
    /// at gain 4 (±300 mV), channel 1 (spare: load CT or voltage divider) at gain 1.
    pub const RESIDUAL_CURRENT: Config = Config {
        clock: Clock {
            channels_enabled: [true, true],
            osr: Osr::Osr1024,
            power: PowerMode::HighResolution,
        },
        gains: Gains([Gain::X4, Gain::X1]),
    };

    /// Output data rate at the nominal clock, SPS.
    pub const fn data_rate_sps(&self) -> u32 {
        self.clock.osr.data_rate_sps(FCLKIN_HZ)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::RESIDUAL_CURRENT
    }
}

/// One data frame: the STATUS word and both channels' codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The response word; STATUS, since the previous frame was a NULL.
    pub status: Status,
    /// Channel 0 and 1 codes, sign-extended from 24 bits: [`CODE_MIN`]..=[`CODE_MAX`].
    pub channels: [i32; CHANNELS],
}

/// Errors of the ADS131M02 driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus failed.
    Spi(E),
    /// A received frame's CRC word does not match the CRC computed over it.
    Crc {
        /// CRC word received.
        received: u16,
        /// CRC computed over the frame.
        computed: u16,
    },
    /// The ID register does not identify an ADS131M02 (CHANCNT ≠ 2).
    WrongDevice {
        /// The ID register read.
        id: u16,
    },
    /// The device's response word to a command is not the one the datasheet defines.
    UnexpectedResponse {
        /// The expected response word.
        expected: u16,
        /// The response word received.
        received: u16,
    },
    /// A data frame's STATUS has RESET set: the device was reset since it was configured and
    /// runs on its default gain, so its codes are not calibrated. Re-run [`Ads131m02::init`].
    DeviceReset,
}

impl<E> Error<E> {
    /// How the monitor reports this error on the channel: always
    /// [`FaultCause::SensorError`], the measuring chip does not answer properly.
    pub const fn fault_cause(&self) -> FaultCause {
        FaultCause::SensorError
    }
}

/// CRC-16-CCITT as the ADS131M02 computes it: polynomial 1021h, MSB first, no reflection, no
/// final XOR, starting from `seed` ([`CRC_SEED`] for a frame). "123456789" gives 29B1h.
pub fn crc16_ccitt(bytes: &[u8], seed: u16) -> u16 {
    let mut crc = seed;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ CRC_POLY
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Sign-extends a 24-bit two's-complement word (MSB first).
pub const fn sign_extend_24(bytes: [u8; 3]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], 0]) >> 8
}

/// ADS131M02 driver over an embedded-hal 1.0 [`SpiDevice`] (the device owns chip select; one
/// SPI transaction = one frame, CS low for the whole frame).
#[derive(Debug)]
pub struct Ads131m02<SPI> {
    spi: SPI,
}

impl<SPI, E> Ads131m02<SPI>
where
    SPI: SpiDevice<u8, Error = E>,
{
    /// Wraps the SPI device (configured for [`SPI_MODE`], SCLK ≤ 25 MHz). No bus traffic.
    pub const fn new(spi: SPI) -> Self {
        Ads131m02 { spi }
    }

    /// Gives the SPI device back.
    pub fn destroy(self) -> SPI {
        self.spi
    }

    /// Resets, unlocks, verifies the ID and writes `config`: the whole start-up sequence.
    pub fn init<D: DelayNs>(&mut self, delay: &mut D, config: &Config) -> Result<(), Error<E>> {
        self.reset(delay)?;
        self.unlock()?;
        self.verify_id()?;
        self.configure(config)
    }

    /// Sends RESET, waits [`RESET_SETTLE_US`], and checks the [`RESET_RESPONSE`] in the next
    /// frame. The registers are back at their reset values afterwards.
    pub fn reset<D: DelayNs>(&mut self, delay: &mut D) -> Result<(), Error<E>> {
        self.frame(command::RESET, None)?;
        delay.delay_us(RESET_SETTLE_US);
        self.collect_response(Some(RESET_RESPONSE)).map(|_| ())
    }

    /// Sends UNLOCK (0655h) and checks its echo.
    pub fn unlock(&mut self) -> Result<(), Error<E>> {
        self.simple_command(command::UNLOCK)
    }

    /// Sends LOCK (0555h) and checks its echo.
    pub fn lock(&mut self) -> Result<(), Error<E>> {
        self.simple_command(command::LOCK)
    }

    /// Sends STANDBY (0022h) and checks its echo.
    pub fn standby(&mut self) -> Result<(), Error<E>> {
        self.simple_command(command::STANDBY)
    }

    /// Sends WAKEUP (0033h) and checks its echo.
    pub fn wakeup(&mut self) -> Result<(), Error<E>> {
        self.simple_command(command::WAKEUP)
    }

    /// Reads the ID register (00h).
    pub fn read_id(&mut self) -> Result<Id, Error<E>> {
        self.read_register(Register::Id).map(Id)
    }

    /// Reads the ID register and fails with [`Error::WrongDevice`] unless CHANCNT = 2.
    pub fn verify_id(&mut self) -> Result<Id, Error<E>> {
        let id = self.read_id()?;
        if id.is_ads131m02() {
            Ok(id)
        } else {
            Err(Error::WrongDevice { id: id.0 })
        }
    }

    /// Writes MODE ([`ModeReg::CONFIGURED`]: clears the reset flag), CLOCK and GAIN1.
    pub fn configure(&mut self, config: &Config) -> Result<(), Error<E>> {
        self.write_register(Register::Mode, ModeReg::CONFIGURED.0)?;
        self.write_register(Register::Clock, config.clock.bits())?;
        self.write_register(Register::Gain1, config.gains.bits())
    }

    /// Reads one register: RREG frame, then a NULL frame whose response word is the value.
    pub fn read_register(&mut self, register: Register) -> Result<u16, Error<E>> {
        self.frame(command::rreg(register.addr(), 1), None)?;
        self.collect_response(None)
    }

    /// Writes one register: WREG frame with the value in word 1, then a NULL frame whose
    /// response must be the WREG acknowledgement `010a aaaa a000 0000`.
    pub fn write_register(&mut self, register: Register, value: u16) -> Result<(), Error<E>> {
        self.frame(command::wreg(register.addr(), 1), Some(value))?;
        self.collect_response(Some(command::wreg_ack(register.addr(), 1)))
            .map(|_| ())
    }

    /// Reads one data frame with a NULL command: STATUS plus both channels, CRC-checked.
    /// Call it once per conversion (on DRDY falling). Fails with [`Error::DeviceReset`] if
    /// STATUS shows the device lost its configuration.
    pub fn read_frame(&mut self) -> Result<Frame, Error<E>> {
        let [r0, r1, _, a0, a1, a2, b0, b1, b2, ..] = self.frame(command::NULL, None)?;
        let status = Status(u16::from_be_bytes([r0, r1]));
        if status.reset() {
            return Err(Error::DeviceReset);
        }
        Ok(Frame {
            status,
            channels: [sign_extend_24([a0, a1, a2]), sign_extend_24([b0, b1, b2])],
        })
    }

    /// A command whose response is its own echo.
    fn simple_command(&mut self, word: u16) -> Result<(), Error<E>> {
        self.frame(word, None)?;
        self.collect_response(Some(word)).map(|_| ())
    }

    /// Clocks a NULL frame and returns its response word, checked against `expected`.
    fn collect_response(&mut self, expected: Option<u16>) -> Result<u16, Error<E>> {
        let [r0, r1, ..] = self.frame(command::NULL, None)?;
        let received = u16::from_be_bytes([r0, r1]);
        match expected {
            Some(expected) if expected != received => {
                Err(Error::UnexpectedResponse { expected, received })
            }
            _ => Ok(received),
        }
    }

    /// One full frame: `word` in word 0, `data` (if any) in word 1, zeros elsewhere. Returns
    /// the received frame after checking its CRC.
    fn frame(&mut self, word: u16, data: Option<u16>) -> Result<[u8; FRAME_BYTES], Error<E>> {
        let [c0, c1] = word.to_be_bytes();
        let [d0, d1] = data.unwrap_or(0).to_be_bytes();
        let mut buf = [c0, c1, 0, d0, d1, 0, 0, 0, 0, 0, 0, 0];
        self.spi.transfer_in_place(&mut buf).map_err(Error::Spi)?;
        let [r0, r1, r2, a0, a1, a2, b0, b1, b2, k0, k1, _] = buf;
        let received = u16::from_be_bytes([k0, k1]);
        let computed = crc16_ccitt(&[r0, r1, r2, a0, a1, a2, b0, b1, b2], CRC_SEED);
        if received == computed {
            Ok(buf)
        } else {
            Err(Error::Crc { received, computed })
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTx};
    use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiTx};

    use super::*;

    /// A NULL frame as sent: 12 zero bytes.
    const NULL_TX: [u8; 12] = [0; 12];

    // Received frames with CRC words computed independently (CRC-16-CCITT, seed FFFFh, over
    // the 9 bytes before the CRC word), not with `crc16_ccitt`.
    const STATUS_RESET: [u8; 12] = [5, 0, 0, 0, 0, 0, 0, 0, 0, 0x6F, 0xBE, 0];
    const RESP_FF22: [u8; 12] = [0xFF, 0x22, 0, 0, 0, 0, 0, 0, 0, 0x60, 0x81, 0];
    const RESP_0655: [u8; 12] = [0x06, 0x55, 0, 0, 0, 0, 0, 0, 0, 0xC1, 0x20, 0];
    const RESP_0555: [u8; 12] = [0x05, 0x55, 0, 0, 0, 0, 0, 0, 0, 0xEC, 0x64, 0];
    const RESP_ID_M02: [u8; 12] = [0x22, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x79, 0xE9, 0];
    const RESP_ID_M04: [u8; 12] = [0x24, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x23, 0x61, 0];
    const ACK_MODE: [u8; 12] = [0x41, 0x00, 0, 0, 0, 0, 0, 0, 0, 0xAC, 0x88, 0];
    const ACK_CLOCK: [u8; 12] = [0x41, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x51, 0x09, 0];
    const ACK_GAIN1: [u8; 12] = [0x42, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x81, 0xCC, 0];
    const RESP_CLOCK_030E: [u8; 12] = [0x03, 0x0E, 0, 0, 0, 0, 0, 0, 0, 0xAB, 0x27, 0];
    /// STATUS 0103h (24-bit, DRDY1|DRDY0), ch0 = 800000h, ch1 = 000001h.
    const DATA_MIN_ONE: [u8; 12] = [0x01, 0x03, 0, 0x80, 0, 0, 0, 0, 0x01, 0xFF, 0x25, 0];
    /// STATUS 0103h, ch0 = 7FFFFFh, ch1 = FFFFFFh.
    const DATA_MAX_NEG1: [u8; 12] = [
        0x01, 0x03, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x78, 0xDB, 0,
    ];
    /// STATUS 0503h: RESET flag set.
    const DATA_RESET_FLAG: [u8; 12] = [0x05, 0x03, 0, 0, 0, 0, 0, 0, 0, 0xA7, 0xCB, 0];

    /// One SpiDevice transaction: CS low, a 12-byte in-place transfer, CS high.
    fn frame(tx: [u8; 12], rx: [u8; 12]) -> Vec<SpiTx<u8>> {
        vec![
            SpiTx::transaction_start(),
            SpiTx::transfer_in_place(tx.to_vec(), rx.to_vec()),
            SpiTx::transaction_end(),
        ]
    }

    fn script(frames: &[([u8; 12], [u8; 12])]) -> Vec<SpiTx<u8>> {
        frames.iter().flat_map(|&(tx, rx)| frame(tx, rx)).collect()
    }

    fn cmd(word: u16) -> [u8; 12] {
        let mut tx = [0; 12];
        tx[..2].copy_from_slice(&word.to_be_bytes());
        tx
    }

    fn wreg(word: u16, data: u16) -> [u8; 12] {
        let mut tx = cmd(word);
        tx[3..5].copy_from_slice(&data.to_be_bytes());
        tx
    }

    #[test]
    fn command_words_match_datasheet_encoding() {
        assert_eq!(command::NULL, 0b0000_0000_0000_0000);
        assert_eq!(command::RESET, 0b0000_0000_0001_0001);
        assert_eq!(command::STANDBY, 0b0000_0000_0010_0010);
        assert_eq!(command::WAKEUP, 0b0000_0000_0011_0011);
        assert_eq!(command::LOCK, 0b0000_0101_0101_0101);
        assert_eq!(command::UNLOCK, 0b0000_0110_0101_0101);
        // RREG 101a aaaa annn nnnn: ID (00h), one register.
        assert_eq!(command::rreg(0x00, 1), 0b1010_0000_0000_0000);
        // CLOCK (03h): a = 000011 → bits 12:7.
        assert_eq!(command::rreg(0x03, 1), 0b1010_0001_1000_0000);
        // WREG 011a aaaa annn nnnn, GAIN1 (04h), one register; ack 010a aaaa ammm mmmm.
        assert_eq!(command::wreg(0x04, 1), 0b0110_0010_0000_0000);
        assert_eq!(command::wreg_ack(0x04, 1), 0b0100_0010_0000_0000);
        // Highest address and count fill their fields without spilling.
        assert_eq!(command::rreg(0x3F, 128), 0b1011_1111_1111_1111);
    }

    #[test]
    fn crc_matches_ccitt_check_value() {
        assert_eq!(crc16_ccitt(b"123456789", CRC_SEED), 0x29B1);
        assert_eq!(crc16_ccitt(&STATUS_RESET[..9], CRC_SEED), 0x6FBE);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend_24([0x7F, 0xFF, 0xFF]), CODE_MAX);
        assert_eq!(sign_extend_24([0x80, 0x00, 0x00]), CODE_MIN);
        assert_eq!(sign_extend_24([0xFF, 0xFF, 0xFF]), -1);
        assert_eq!(sign_extend_24([0x00, 0x00, 0x01]), 1);
    }

    #[test]
    fn register_values() {
        assert_eq!(
            Config::RESIDUAL_CURRENT.clock.bits(),
            0x030E,
            "= CLOCK reset value"
        );
        assert_eq!(Config::RESIDUAL_CURRENT.gains.bits(), 0x0002);
        assert_eq!(Gains([Gain::X128, Gain::X2]).bits(), 0x0017);
        assert_eq!(Config::RESIDUAL_CURRENT.data_rate_sps(), 4000);
        assert_eq!(Osr::Osr128.data_rate_sps(FCLKIN_HZ), 32_000);
        assert_eq!(Osr::Osr8192.data_rate_sps(FCLKIN_HZ), 500);
        let clock = Clock {
            channels_enabled: [true, false],
            osr: Osr::Osr4096,
            power: PowerMode::LowPower,
        };
        assert_eq!(clock.bits(), 0x0115);
        assert!(Status(0x0500).reset());
        assert_eq!(Status(0x0500).word_length_bits(), 0b01);
        assert!(Status(0x0102).data_ready(1) && !Status(0x0102).data_ready(0));
        assert!(Status(0x8000).locked() && !Status(0x0500).locked());
    }

    #[test]
    fn reset_sends_reset_then_checks_ff22() {
        let mut spi = SpiMock::new(&script(&[
            (cmd(0x0011), STATUS_RESET),
            (NULL_TX, RESP_FF22),
        ]));
        let mut delay = CheckedDelay::new(&[DelayTx::delay_us(RESET_SETTLE_US)]);
        let mut adc = Ads131m02::new(spi.clone());
        adc.reset(&mut delay).unwrap();
        spi.done();
        delay.done();
    }

    #[test]
    fn reset_with_wrong_response_is_an_error() {
        // A frame echoing UNLOCK where FF22h belongs: not an ADS131M02 fresh from reset.
        let mut spi = SpiMock::new(&script(&[
            (cmd(0x0011), STATUS_RESET),
            (NULL_TX, RESP_0655),
        ]));
        let mut delay = CheckedDelay::new(&[DelayTx::delay_us(RESET_SETTLE_US)]);
        let mut adc = Ads131m02::new(spi.clone());
        assert_eq!(
            adc.reset(&mut delay),
            Err(Error::UnexpectedResponse {
                expected: 0xFF22,
                received: 0x0655
            })
        );
        spi.done();
        delay.done();
    }

    #[test]
    fn unlock_and_lock_check_their_echo() {
        let mut spi = SpiMock::new(&script(&[
            (cmd(0x0655), STATUS_RESET),
            (NULL_TX, RESP_0655),
            (cmd(0x0555), STATUS_RESET),
            (NULL_TX, RESP_0555),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        adc.unlock().unwrap();
        adc.lock().unwrap();
        spi.done();
    }

    #[test]
    fn read_id_verifies_the_part() {
        let mut spi = SpiMock::new(&script(&[
            (cmd(0xA000), STATUS_RESET),
            (NULL_TX, RESP_ID_M02),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        assert_eq!(adc.verify_id(), Ok(Id(0x2200)));
        spi.done();
    }

    #[test]
    fn an_ads131m04_id_is_the_wrong_device() {
        let mut spi = SpiMock::new(&script(&[
            (cmd(0xA000), STATUS_RESET),
            (NULL_TX, RESP_ID_M04),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        assert_eq!(adc.verify_id(), Err(Error::WrongDevice { id: 0x2400 }));
        spi.done();
    }

    #[test]
    fn read_register_clock() {
        let mut spi = SpiMock::new(&script(&[
            (cmd(0xA180), STATUS_RESET),
            (NULL_TX, RESP_CLOCK_030E),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        assert_eq!(adc.read_register(Register::Clock), Ok(0x030E));
        spi.done();
    }

    #[test]
    fn full_init_sequence() {
        let spi = SpiMock::new(&script(&[
            // RESET, response FF22h.
            (cmd(0x0011), STATUS_RESET),
            (NULL_TX, RESP_FF22),
            // UNLOCK, echo.
            (cmd(0x0655), STATUS_RESET),
            (NULL_TX, RESP_0655),
            // RREG ID.
            (cmd(0xA000), STATUS_RESET),
            (NULL_TX, RESP_ID_M02),
            // WREG MODE (02h) = 0110h, ack 4100h.
            (wreg(0x6100, 0x0110), STATUS_RESET),
            (NULL_TX, ACK_MODE),
            // WREG CLOCK (03h) = 030Eh, ack 4180h.
            (wreg(0x6180, 0x030E), STATUS_RESET),
            (NULL_TX, ACK_CLOCK),
            // WREG GAIN1 (04h) = 0002h (ch0 gain 4), ack 4200h.
            (wreg(0x6200, 0x0002), STATUS_RESET),
            (NULL_TX, ACK_GAIN1),
        ]));
        let mut delay = CheckedDelay::new(&[DelayTx::delay_us(RESET_SETTLE_US)]);
        let mut adc = Ads131m02::new(spi.clone());
        adc.init(&mut delay, &Config::default()).unwrap();
        // The SPI device given back is the one scripted: check it through it.
        adc.destroy().done();
        delay.done();
    }

    #[test]
    fn wrong_wreg_ack_is_an_error() {
        // The CLOCK ack comes back where the GAIN1 ack belongs.
        let mut spi = SpiMock::new(&script(&[
            (wreg(0x6200, 0x0002), STATUS_RESET),
            (NULL_TX, ACK_CLOCK),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        assert_eq!(
            adc.write_register(Register::Gain1, 0x0002),
            Err(Error::UnexpectedResponse {
                expected: 0x4200,
                received: 0x4180
            })
        );
        spi.done();
    }

    #[test]
    fn read_frame_sign_extends_both_channels() {
        let mut spi = SpiMock::new(&script(&[
            (NULL_TX, DATA_MIN_ONE),
            (NULL_TX, DATA_MAX_NEG1),
        ]));
        let mut adc = Ads131m02::new(spi.clone());
        let f = adc.read_frame().unwrap();
        assert_eq!(f.status, Status(0x0103));
        assert_eq!(f.channels, [CODE_MIN, 1]);
        let f = adc.read_frame().unwrap();
        assert_eq!(f.channels, [CODE_MAX, -1]);
        spi.done();
    }

    #[test]
    fn corrupted_frame_fails_the_crc() {
        let mut bad = DATA_MIN_ONE;
        bad[4] ^= 0x10; // one bit of channel 0 flipped on the wire
        let mut spi = SpiMock::new(&script(&[(NULL_TX, bad)]));
        let mut adc = Ads131m02::new(spi.clone());
        assert!(matches!(
            adc.read_frame(),
            Err(Error::Crc {
                received: 0xFF25,
                ..
            })
        ));
        spi.done();
    }

    #[test]
    fn a_frame_after_a_spontaneous_reset_is_an_error() {
        let mut spi = SpiMock::new(&script(&[(NULL_TX, DATA_RESET_FLAG)]));
        let mut adc = Ads131m02::new(spi.clone());
        let err = adc.read_frame().unwrap_err();
        assert_eq!(err, Error::DeviceReset);
        assert_eq!(err.fault_cause(), FaultCause::SensorError);
        spi.done();
    }
}
