//! Simulated buses and pins that the real firmware drivers run on (embedded-hal 1.0).
//!
//! - [`SimAds131m02`]: an ADS131M02 behind a [`SpiDevice`]. It answers the driver's command
//!   words one frame later (RESET → FF22h, UNLOCK/LOCK/STANDBY/WAKEUP echoes, RREG of one
//!   register, WREG with its acknowledgement, NULL → STATUS), keeps the register map, and
//!   sends every frame with channel data and the CRC-16-CCITT the driver checks. Channel 0
//!   is the [`CircuitModel`]'s ADC input voltage converted at the configured gain; each frame
//!   is one conversion, and the sample time advances by one conversion period (250 µs at the
//!   4 kSPS the driver configures).
//! - [`SimAds1115`]: an ADS1115 behind an [`I2c`] bus, its four inputs each an NTC divider
//!   ([`NtcProbe`]) of the reference design; single-shot conversions with the OS bit busy for
//!   [`SimAds1115::busy_polls`] config reads.
//! - [`SimInputPin`]: an input line whose level the simulation sets (clones share it).
//! - [`NoDelay`]: time is simulated, so delays return at once (and are only counted).
//!
//! The chips are used by the drivers through `&mut` (embedded-hal implements its traits for
//! `&mut T`), so the simulation keeps the chip, changes its models between reads, and hands
//! `&mut chip` to `Ads131m02::new` / `Ads1115::new`; or gives the chip itself and gets it back
//! with the driver's `destroy`.

use core::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin};
use embedded_hal::i2c::{self, I2c, NoAcknowledgeSource, SevenBitAddress};
use embedded_hal::spi::{self, Operation, SpiDevice};
use firegrid_firmware::drivers::ads131m02::{
    CODE_MAX, CODE_MIN, CODES_PER_FULL_SCALE, CRC_SEED, FCLKIN_HZ, FRAME_BYTES, RESET_RESPONSE,
    Register, VREF_UV, command, crc16_ccitt,
};
use firegrid_firmware::drivers::ads1115::{self, SlaveAddr};
use firegrid_firmware::drivers::smoke_alarm::ActiveLevel;

use crate::physics::{CircuitModel, LeadState, XorShift64, ntc_resistance_ohm};

/// Number of 16-bit registers in the ADS131M02 map (6-bit addresses).
const REGISTERS: usize = 64;

/// ADS131M02 ID register value: RESERVED 0010b, CHANCNT = 2.
pub const SIM_ADS131M02_ID: u16 = 0x2200;

/// ADC input noise of the simulated ADS131M02, µV RMS (≈ the datasheet's figure at gain 4,
/// OSR 1024: about 28 codes).
pub const ADS131M02_NOISE_UV_RMS: f64 = 1.0;

/// A simulated ADS131M02 on an SPI device, fed by a [`CircuitModel`] on channel 0.
#[derive(Debug, Clone)]
pub struct SimAds131m02 {
    /// The circuit on channel 0 (the residual CT).
    pub circuit: CircuitModel,
    /// Channel 1's input, µV (spare channel: a constant).
    pub channel1_uv: f64,
    /// Input-referred noise added to both channels, µV RMS.
    pub noise_uv_rms: f64,
    rng: XorShift64,
    registers: [u16; REGISTERS],
    /// Response word of the next frame; `None`: STATUS as it is when that frame goes out.
    response: Option<u16>,
    locked: bool,
    standby: bool,
    /// Time of the next conversion, µs.
    sample_time_us: u64,
    frames: u64,
}

impl SimAds131m02 {
    /// A device fresh from power-up (reset state) sampling `circuit` from `start_ms`, with
    /// noise from `seed`.
    pub fn new(circuit: CircuitModel, start_ms: u64, seed: u64) -> Self {
        let mut dev = SimAds131m02 {
            circuit,
            channel1_uv: 0.0,
            noise_uv_rms: ADS131M02_NOISE_UV_RMS,
            rng: XorShift64::new(seed),
            registers: [0; REGISTERS],
            response: None,
            locked: false,
            standby: false,
            sample_time_us: start_ms.saturating_mul(1000),
            frames: 0,
        };
        dev.reset_registers();
        dev
    }

    fn reset_registers(&mut self) {
        self.registers = [0; REGISTERS];
        self.registers[usize::from(Register::Id.addr())] = SIM_ADS131M02_ID;
        self.registers[usize::from(Register::Mode.addr())] = 0x0510;
        self.registers[usize::from(Register::Clock.addr())] = 0x030E;
        self.registers[usize::from(Register::Cfg.addr())] = 0x0600;
        self.registers[usize::from(Register::Ch0GcalMsb.addr())] = 0x8000;
        self.registers[usize::from(Register::Ch1GcalMsb.addr())] = 0x8000;
        self.locked = false;
        self.standby = false;
    }

    /// The register at `address` (0..64).
    pub fn register(&self, address: u8) -> u16 {
        self.registers[usize::from(address & 0x3F)]
    }

    /// Time of the next conversion, ms.
    pub const fn sample_time_ms(&self) -> u64 {
        self.sample_time_us / 1000
    }

    /// Moves the sample clock forward to `now_ms` (never back): the simulation's clock has
    /// moved on between bursts of reads.
    pub fn set_time_ms(&mut self, now_ms: u64) {
        self.sample_time_us = self.sample_time_us.max(now_ms.saturating_mul(1000));
    }

    /// Frames clocked so far.
    pub const fn frames(&self) -> u64 {
        self.frames
    }

    /// Simulates a spontaneous reset (brown-out): registers back to reset values, so data
    /// frames show STATUS.RESET.
    pub fn power_cycle(&mut self) {
        self.reset_registers();
    }

    /// The conversion period, µs, from CLOCK.OSR (high-resolution mode, nominal clock).
    pub fn sample_period_us(&self) -> f64 {
        let clock = self.register(Register::Clock.addr());
        let osr = match (clock >> 2) & 0b111 {
            0 => 128.0,
            1 => 256.0,
            2 => 512.0,
            3 => 1024.0,
            4 => 2048.0,
            5 => 4096.0,
            6 => 8192.0,
            _ => 16256.0,
        };
        osr / (f64::from(FCLKIN_HZ) / 2.0) * 1e6
    }

    /// STATUS: LOCK, RESET (mirrors MODE.RESET), WLENGTH (from MODE), DRDY of enabled channels.
    fn status(&self) -> u16 {
        let mode = self.register(Register::Mode.addr());
        let clock = self.register(Register::Clock.addr());
        let mut s = (mode & (1 << 10)) | (mode & (0b11 << 8));
        if self.locked {
            s |= 1 << 15;
        }
        if !self.standby {
            s |= (clock >> 8) & 0b11;
        }
        s
    }

    /// µV at the input → 24-bit code at the channel's gain, clipped.
    fn code(&self, channel: usize, uv: f64) -> i32 {
        let gain_bits = (self.register(Register::Gain1.addr()) >> (4 * channel)) & 0b111;
        let gain = f64::from(1_u32 << gain_bits);
        let codes = uv * gain * f64::from(CODES_PER_FULL_SCALE) / f64::from(VREF_UV);
        codes
            .round()
            .clamp(f64::from(CODE_MIN), f64::from(CODE_MAX)) as i32
    }

    /// One conversion of both channels; advances the sample time.
    fn convert(&mut self) -> [i32; 2] {
        if self.standby {
            return [0, 0];
        }
        let t = self.sample_time_us;
        let ch0_uv = self.circuit.adc_input_uv(t, &mut self.rng)
            + self.noise_uv_rms * self.rng.next_gaussian();
        let ch1_uv = self.channel1_uv + self.noise_uv_rms * self.rng.next_gaussian();
        let clock = self.register(Register::Clock.addr());
        let codes = [
            if clock & (1 << 8) != 0 {
                self.code(0, ch0_uv)
            } else {
                0
            },
            if clock & (1 << 9) != 0 {
                self.code(1, ch1_uv)
            } else {
                0
            },
        ];
        self.sample_time_us = t.saturating_add(self.sample_period_us().round() as u64);
        codes
    }

    /// The output frame for this transaction: the pending response, a fresh conversion, CRC.
    fn output_frame(&mut self) -> [u8; FRAME_BYTES] {
        let [r0, r1] = self.response.unwrap_or_else(|| self.status()).to_be_bytes();
        let [a, b] = self.convert();
        let [_, a0, a1, a2] = a.to_be_bytes();
        let [_, b0, b1, b2] = b.to_be_bytes();
        let body = [r0, r1, 0, a0, a1, a2, b0, b1, b2];
        let [k0, k1] = crc16_ccitt(&body, CRC_SEED).to_be_bytes();
        [r0, r1, 0, a0, a1, a2, b0, b1, b2, k0, k1, 0]
    }

    /// Executes the command word received in a frame; sets the next frame's response.
    fn execute(&mut self, input: &[u8; FRAME_BYTES]) {
        let word = u16::from_be_bytes([input[0], input[1]]);
        let allowed_when_locked =
            word == command::NULL || word == command::UNLOCK || word & 0xE000 == command::RREG;
        self.response = if self.locked && !allowed_when_locked {
            None
        } else {
            match word {
                command::NULL => None,
                command::RESET => {
                    self.reset_registers();
                    Some(RESET_RESPONSE)
                }
                command::STANDBY => {
                    self.standby = true;
                    Some(word)
                }
                command::WAKEUP => {
                    self.standby = false;
                    Some(word)
                }
                command::LOCK => {
                    self.locked = true;
                    Some(word)
                }
                command::UNLOCK => {
                    self.locked = false;
                    Some(word)
                }
                w if w & 0xE000 == command::RREG => {
                    // Only single-register reads are modelled: the first register's value.
                    Some(self.register(((w >> 7) & 0x3F) as u8))
                }
                w if w & 0xE000 == command::WREG => {
                    let address = usize::from((w >> 7) & 0x3F);
                    // A frame holds the command and at most 2 data words at 24-bit words.
                    let count = usize::from(w & 0x7F).saturating_add(1).min(2);
                    for i in 0..count {
                        let at = WORD_BYTES_24 * (i + 1);
                        let value = u16::from_be_bytes([input[at], input[at + 1]]);
                        let reg = address + i;
                        // ID and STATUS are read-only.
                        if (2..REGISTERS).contains(&reg) {
                            self.registers[reg] = value;
                        }
                    }
                    Some(command::WREG_ACK | (w & 0x1F80) | (count as u16 - 1))
                }
                _ => None,
            }
        };
    }
}

/// Bytes per word at the 24-bit word size.
const WORD_BYTES_24: usize = 3;

impl spi::ErrorType for SimAds131m02 {
    type Error = Infallible;
}

impl SpiDevice<u8> for SimAds131m02 {
    /// One transaction = one frame: MISO carries the response to the previous frame's command
    /// and a fresh conversion; the command on MOSI takes effect for the next frame.
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let out = self.output_frame();
        let mut input = [0_u8; FRAME_BYTES];
        let mut pos = 0_usize;
        let mut exchange = |mosi: u8, pos: &mut usize| -> u8 {
            let miso = out.get(*pos).copied().unwrap_or(0);
            if let Some(slot) = input.get_mut(*pos) {
                *slot = mosi;
            }
            *pos += 1;
            miso
        };
        for op in operations.iter_mut() {
            match op {
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        *b = exchange(0, &mut pos);
                    }
                }
                Operation::Write(buf) => {
                    for &b in buf.iter() {
                        exchange(b, &mut pos);
                    }
                }
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let miso = exchange(write.get(i).copied().unwrap_or(0), &mut pos);
                        if let Some(r) = read.get_mut(i) {
                            *r = miso;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = exchange(*b, &mut pos);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        self.frames += 1;
        self.execute(&input);
        Ok(())
    }
}

/// One NTC probe on an ADS1115 input, in the reference divider (10 kΩ from 3.3 V).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NtcProbe {
    /// The probe's temperature, °C (set it from a [`TerminalModel`](crate::physics::TerminalModel)).
    pub temp_c: f64,
    /// The probe's leads.
    pub lead: LeadState,
}

impl NtcProbe {
    /// Divider supply, µV (3.3 V).
    pub const VREF_UV: f64 = 3_300_000.0;
    /// Fixed resistor, Ω.
    pub const R_FIXED_OHM: f64 = 10_000.0;

    /// The divider's output, µV: VREF × R_ntc / (R_ntc + R_fixed); VREF when open, 0 shorted.
    pub fn voltage_uv(&self) -> f64 {
        match self.lead {
            LeadState::Open => Self::VREF_UV,
            LeadState::Short => 0.0,
            LeadState::Ok => {
                let r = ntc_resistance_ohm(self.temp_c);
                Self::VREF_UV * r / (r + Self::R_FIXED_OHM)
            }
        }
    }
}

impl Default for NtcProbe {
    fn default() -> Self {
        NtcProbe {
            temp_c: crate::physics::AMBIENT_C,
            lead: LeadState::Ok,
        }
    }
}

/// The error of the simulated I²C bus: nobody acknowledges the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimI2cNack;

impl i2c::Error for SimI2cNack {
    fn kind(&self) -> i2c::ErrorKind {
        i2c::ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
    }
}

/// A simulated ADS1115 on an I²C bus, four NTC probes on its inputs.
#[derive(Debug, Clone)]
pub struct SimAds1115 {
    /// The probes on AIN0..AIN3.
    pub probes: [NtcProbe; 4],
    /// Config reads showing OS = 0 (busy) after a conversion starts; 12 or more makes the
    /// driver time out.
    pub busy_polls: u32,
    address: u8,
    pointer: u8,
    config: u16,
    conversion: i16,
    busy_left: u32,
    /// Answers no transaction at all (a missing or dead chip).
    pub absent: bool,
}

impl SimAds1115 {
    /// A device at `address`, idle at its reset config, probes at 25 °C, busy for 2 polls.
    pub fn new(address: SlaveAddr) -> Self {
        SimAds1115 {
            probes: [NtcProbe::default(); 4],
            busy_polls: 2,
            address: address.addr(),
            pointer: 0,
            config: ads1115::ConfigReg::RESET_VALUE.0,
            conversion: 0,
            busy_left: 0,
            absent: false,
        }
    }

    /// The voltage of input `index` (0..4), µV.
    fn input_uv(&self, index: usize) -> f64 {
        self.probes.get(index).map_or(0.0, NtcProbe::voltage_uv)
    }

    /// Converts by the config's MUX and PGA.
    fn convert(&mut self) {
        let mux = (self.config >> 12) & 0b111;
        let (p, n) = match mux {
            0 => (self.input_uv(0), self.input_uv(1)),
            1 => (self.input_uv(0), self.input_uv(3)),
            2 => (self.input_uv(1), self.input_uv(3)),
            3 => (self.input_uv(2), self.input_uv(3)),
            m => (self.input_uv(usize::from(m as u8 - 4)), 0.0),
        };
        let lsb_nv = match (self.config >> 9) & 0b111 {
            0 => 187_500.0,
            1 => 125_000.0,
            2 => 62_500.0,
            3 => 31_250.0,
            4 => 15_625.0,
            _ => 7_812.5,
        };
        let code = ((p - n) * 1000.0 / lsb_nv).round();
        self.conversion = code.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
    }

    fn write_register(&mut self, bytes: &[u8]) {
        let Some((&pointer, data)) = bytes.split_first() else {
            return;
        };
        self.pointer = pointer & 0b11;
        if let [msb, lsb, ..] = *data {
            let value = u16::from_be_bytes([msb, lsb]);
            if self.pointer == 1 {
                // OS is write-1-to-start; the read-back OS is computed on reads.
                self.config = value & !ads1115::ConfigReg::OS;
                if value & ads1115::ConfigReg::OS != 0 {
                    self.convert();
                    self.busy_left = self.busy_polls;
                }
            }
        }
    }

    fn read_register(&mut self) -> u16 {
        match self.pointer {
            0 => u16::from_be_bytes(self.conversion.to_be_bytes()),
            1 => {
                if self.busy_left > 0 {
                    self.busy_left -= 1;
                    self.config
                } else {
                    self.config | ads1115::ConfigReg::OS
                }
            }
            _ => 0,
        }
    }
}

impl i2c::ErrorType for SimAds1115 {
    type Error = SimI2cNack;
}

impl I2c<SevenBitAddress> for SimAds1115 {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [i2c::Operation<'_>],
    ) -> Result<(), SimI2cNack> {
        if self.absent || address != self.address {
            return Err(SimI2cNack);
        }
        for op in operations.iter_mut() {
            match op {
                i2c::Operation::Write(bytes) => self.write_register(bytes),
                i2c::Operation::Read(buf) => {
                    let value = self.read_register().to_be_bytes();
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = value.get(i).copied().unwrap_or(0xFF);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A simulated input line; clones share the level, so the simulation keeps one clone and
/// gives the driver another.
#[derive(Debug, Clone, Default)]
pub struct SimInputPin {
    high: Arc<AtomicBool>,
}

impl SimInputPin {
    /// A line at `high`.
    pub fn new(high: bool) -> Self {
        SimInputPin {
            high: Arc::new(AtomicBool::new(high)),
        }
    }

    /// A line of `active_level`, starting inactive.
    pub fn inactive(active_level: ActiveLevel) -> Self {
        Self::new(!active_level.is_active(true))
    }

    /// Sets the electrical level.
    pub fn set_high(&self, high: bool) {
        self.high.store(high, Ordering::Relaxed);
    }

    /// Sets the line active or inactive for `active_level` (e.g. from
    /// [`SmokeModel::present`](crate::physics::SmokeModel::present) or
    /// [`BatteryModel::is_low`](crate::physics::BatteryModel::is_low)).
    pub fn set_active(&self, active: bool, active_level: ActiveLevel) {
        self.set_high(active == active_level.is_active(true));
    }

    /// The electrical level.
    pub fn level_high(&self) -> bool {
        self.high.load(Ordering::Relaxed)
    }
}

impl digital::ErrorType for SimInputPin {
    type Error = Infallible;
}

impl InputPin for SimInputPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level_high())
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level_high())
    }
}

/// A delay that returns at once (simulated time does not pass in it); counts what was asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoDelay {
    /// Total delay requested, ns.
    pub requested_ns: u64,
}

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.requested_ns = self.requested_ns.saturating_add(u64::from(ns));
    }
}

#[cfg(test)]
mod tests;
