//! Local outputs: buzzer, alarm LED (red), fault LED (yellow) and an optional trip relay, plus
//! sound and light patterns as data.
//!
//! # Outputs
//!
//! All outputs are [`OutputPin`]s, active high (a transistor stage drives the buzzer, the
//! LEDs and the relay coil), driven OFF when [`Outputs`] is built.
//!
//! The **trip relay** is optional and off by default. An electrical-fire monitor alarms; it
//! does not cut the supply (GB 50116 and GB 14287.5 §5.3.2 as the project cites them: cutting
//! a dwelling's supply on a leakage alarm can itself endanger people). So the relay stays
//! de-energised unless the board is built with [`Outputs::with_relay`] and
//! [`RelayMode::TripEnabled`]; with [`RelayMode::Disabled`] (or no relay, [`Outputs::new`])
//! [`Outputs::set_relay`]`(true)` is refused with [`Error::RelayNotEnabled`] and the pin is not
//! touched.
//!
//! # Patterns
//!
//! A [`Pattern`] is a list of alternating on/off durations, starting with on, repeated
//! forever. [`pattern_level`]`(pattern, elapsed_ms)` says whether the output is on at a time
//! since the pattern started — pure, so the monitor core drives outputs with its own clock
//! and tests check patterns without waiting. The sounds:
//!
//! - [`FIRE`]: the temporal-three evacuation signal (ISO 8201): 0.5 s on, 0.5 s off, three
//!   times, then 1.5 s off — the smoke alarm's sound, repeated by the monitor;
//! - [`ELECTRICAL_ALARM`]: a fast, even 2 Hz beep (0.25 s on / 0.25 s off) for a residual-current
//!   or temperature alarm: unmistakably an alarm, and not the fire rhythm (firegrid's choice);
//! - [`FAULT_CHIRP`]: one 0.1 s chirp every 30 s for a fault or low battery, distinct from
//!   the fire sound as GB 20517-2025 §5.11.1 requires for the battery-fault sound (a chirp
//!   every 30–60 s is the usual smoke-alarm convention; 30 s is firegrid's choice).
//!
//! Lights: [`STEADY`], [`FLASH`] (0.5 s / 0.5 s), [`OFF`].

use core::marker::PhantomData;

use embedded_hal::digital::{ErrorType, OutputPin};

/// Alternating on/off durations in ms, starting with on; the list repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    steps: &'static [u32],
}

impl Pattern {
    /// A pattern from alternating on/off durations, ms, starting with on.
    pub const fn new(steps: &'static [u32]) -> Self {
        Pattern { steps }
    }

    /// The durations.
    pub const fn steps(&self) -> &'static [u32] {
        self.steps
    }

    /// One repetition, ms (0 for the empty pattern, which is always off).
    pub fn period_ms(&self) -> u64 {
        self.steps
            .iter()
            .fold(0u64, |acc, &s| acc.saturating_add(u64::from(s)))
    }
}

/// Smoke / fire: temporal-three (ISO 8201), 4 s period.
pub const FIRE: Pattern = Pattern::new(&[500, 500, 500, 500, 500, 1500]);

/// Electrical-fire alarm (residual current or temperature): 2 Hz, 0.25 s on / 0.25 s off.
pub const ELECTRICAL_ALARM: Pattern = Pattern::new(&[250, 250]);

/// Fault or low battery: a 0.1 s chirp every 30 s.
pub const FAULT_CHIRP: Pattern = Pattern::new(&[100, 29_900]);

/// Always on.
pub const STEADY: Pattern = Pattern::new(&[1, 0]);

/// 1 Hz flash, 0.5 s on / 0.5 s off.
pub const FLASH: Pattern = Pattern::new(&[500, 500]);

/// Always off.
pub const OFF: Pattern = Pattern::new(&[]);

/// Whether `pattern` is on `elapsed_ms` after it started.
pub fn pattern_level(pattern: &Pattern, elapsed_ms: u64) -> bool {
    let Some(mut t) = elapsed_ms.checked_rem(pattern.period_ms()) else {
        return false; // empty pattern
    };
    let mut on = true;
    for &step in pattern.steps {
        let step = u64::from(step);
        if t < step {
            return on;
        }
        t = t.saturating_sub(step);
        on = !on;
    }
    false
}

/// Whether the trip relay may ever be energised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Never energised: alarm only (the default).
    #[default]
    Disabled,
    /// May be energised by [`Outputs::set_relay`]: only where the installation's design asks
    /// for tripping.
    TripEnabled,
}

/// The relay pin of a board without a relay: accepts and ignores every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRelay<E>(PhantomData<E>);

impl<E> NoRelay<E> {
    /// A placeholder relay.
    pub const fn new() -> Self {
        NoRelay(PhantomData)
    }
}

impl<E> Default for NoRelay<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: embedded_hal::digital::Error> ErrorType for NoRelay<E> {
    type Error = E;
}

impl<E: embedded_hal::digital::Error> OutputPin for NoRelay<E> {
    fn set_low(&mut self) -> Result<(), E> {
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), E> {
        Ok(())
    }
}

/// Errors of [`Outputs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// Driving a pin failed.
    Pin(E),
    /// The relay was asked to energise but is not [`RelayMode::TripEnabled`].
    RelayNotEnabled,
}

/// The monitor's local outputs.
#[derive(Debug)]
pub struct Outputs<BUZ, ALED, FLED, REL> {
    buzzer: BUZ,
    alarm_led: ALED,
    fault_led: FLED,
    relay: REL,
    relay_mode: RelayMode,
}

impl<BUZ, ALED, FLED, E> Outputs<BUZ, ALED, FLED, NoRelay<E>>
where
    BUZ: OutputPin<Error = E>,
    ALED: OutputPin<Error = E>,
    FLED: OutputPin<Error = E>,
    E: embedded_hal::digital::Error,
{
    /// Buzzer and LEDs, no relay. Drives every output off.
    pub fn new(buzzer: BUZ, alarm_led: ALED, fault_led: FLED) -> Result<Self, Error<E>> {
        Outputs::with_relay(
            buzzer,
            alarm_led,
            fault_led,
            NoRelay::new(),
            RelayMode::Disabled,
        )
    }
}

impl<BUZ, ALED, FLED, REL, E> Outputs<BUZ, ALED, FLED, REL>
where
    BUZ: OutputPin<Error = E>,
    ALED: OutputPin<Error = E>,
    FLED: OutputPin<Error = E>,
    REL: OutputPin<Error = E>,
{
    /// Buzzer, LEDs and a trip relay that may be energised only with
    /// [`RelayMode::TripEnabled`]. Drives every output off, the relay first.
    pub fn with_relay(
        buzzer: BUZ,
        alarm_led: ALED,
        fault_led: FLED,
        relay: REL,
        relay_mode: RelayMode,
    ) -> Result<Self, Error<E>> {
        let mut outputs = Outputs {
            buzzer,
            alarm_led,
            fault_led,
            relay,
            relay_mode,
        };
        outputs.all_off()?;
        Ok(outputs)
    }

    /// Gives the pins back: (buzzer, alarm LED, fault LED, relay).
    pub fn destroy(self) -> (BUZ, ALED, FLED, REL) {
        (self.buzzer, self.alarm_led, self.fault_led, self.relay)
    }

    /// The relay mode fixed at construction.
    pub const fn relay_mode(&self) -> RelayMode {
        self.relay_mode
    }

    /// Buzzer on or off.
    pub fn set_buzzer(&mut self, on: bool) -> Result<(), Error<E>> {
        set(&mut self.buzzer, on)
    }

    /// Alarm LED on or off.
    pub fn set_alarm_led(&mut self, on: bool) -> Result<(), Error<E>> {
        set(&mut self.alarm_led, on)
    }

    /// Fault LED on or off.
    pub fn set_fault_led(&mut self, on: bool) -> Result<(), Error<E>> {
        set(&mut self.fault_led, on)
    }

    /// Energises (`true`) or releases the trip relay. Energising fails with
    /// [`Error::RelayNotEnabled`], touching nothing, unless [`RelayMode::TripEnabled`];
    /// releasing is always allowed.
    pub fn set_relay(&mut self, energise: bool) -> Result<(), Error<E>> {
        if energise && self.relay_mode != RelayMode::TripEnabled {
            return Err(Error::RelayNotEnabled);
        }
        set(&mut self.relay, energise)
    }

    /// Drives buzzer and LEDs from their patterns at `elapsed_ms` (the caller's clock, e.g.
    /// time since the alarm began). The relay is left as it is.
    pub fn drive(
        &mut self,
        buzzer: &Pattern,
        alarm_led: &Pattern,
        fault_led: &Pattern,
        elapsed_ms: u64,
    ) -> Result<(), Error<E>> {
        self.set_buzzer(pattern_level(buzzer, elapsed_ms))?;
        self.set_alarm_led(pattern_level(alarm_led, elapsed_ms))?;
        self.set_fault_led(pattern_level(fault_led, elapsed_ms))
    }

    /// Everything off, the relay first.
    pub fn all_off(&mut self) -> Result<(), Error<E>> {
        self.set_relay(false)?;
        self.set_buzzer(false)?;
        self.set_alarm_led(false)?;
        self.set_fault_led(false)
    }
}

fn set<P: OutputPin>(pin: &mut P, on: bool) -> Result<(), Error<P::Error>> {
    if on { pin.set_high() } else { pin.set_low() }.map_err(Error::Pin)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use embedded_hal_mock::eh1::MockError;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};

    use super::*;

    fn signature(p: &Pattern) -> Vec<bool> {
        (0..60_000)
            .step_by(10)
            .map(|t| pattern_level(p, t))
            .collect()
    }

    /// (number of on-pulses, longest on-pulse in ms) over `0..span` ms.
    fn pulses(p: &Pattern, span: u64) -> (usize, u64) {
        let mut count = 0;
        let mut longest = 0;
        let mut run = 0;
        for t in 0..span {
            if pattern_level(p, t) {
                if run == 0 {
                    count += 1;
                }
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        (count, longest)
    }

    #[test]
    fn fire_is_temporal_three() {
        assert_eq!(FIRE.period_ms(), 4000);
        let on = [0, 499, 1000, 1499, 2000, 2499, 4000, 4499];
        let off = [500, 999, 1500, 1999, 2500, 3999, 4500];
        assert!(on.iter().all(|&t| pattern_level(&FIRE, t)));
        assert!(off.iter().all(|&t| !pattern_level(&FIRE, t)));
        assert_eq!(pulses(&FIRE, 4000), (3, 500));
    }

    #[test]
    fn electrical_alarm_and_chirp() {
        assert!(pattern_level(&ELECTRICAL_ALARM, 0));
        assert!(!pattern_level(&ELECTRICAL_ALARM, 250));
        assert!(pattern_level(&ELECTRICAL_ALARM, 500));
        assert_eq!(pulses(&ELECTRICAL_ALARM, 4000), (8, 250));
        assert!(pattern_level(&FAULT_CHIRP, 99));
        assert!(!pattern_level(&FAULT_CHIRP, 100));
        assert!(!pattern_level(&FAULT_CHIRP, 29_999));
        assert!(pattern_level(&FAULT_CHIRP, 30_000));
        assert_eq!(pulses(&FAULT_CHIRP, 60_000), (2, 100));
    }

    #[test]
    fn the_three_sounds_are_distinct() {
        let sounds = [FIRE, ELECTRICAL_ALARM, FAULT_CHIRP];
        for (i, a) in sounds.iter().enumerate() {
            for b in &sounds[i + 1..] {
                assert_ne!(signature(a), signature(b));
            }
        }
        // The chirp is never long enough to be taken for a fire pulse, nor frequent.
        let (fire_pulses, fire_longest) = pulses(&FIRE, 30_000);
        let (chirps, chirp_longest) = pulses(&FAULT_CHIRP, 30_000);
        assert!(chirp_longest * 5 <= fire_longest);
        assert!(chirps * 10 < fire_pulses);
    }

    #[test]
    fn steady_flash_off() {
        assert!((0..10_000).all(|t| pattern_level(&STEADY, t)));
        assert!((0..10_000).all(|t| !pattern_level(&OFF, t)));
        assert_eq!(pulses(&FLASH, 2000), (2, 500));
        // u64::MAX mod 4000 = 3615: in the 1.5 s pause.
        assert!(!pattern_level(&FIRE, u64::MAX));
        assert!(!pattern_level(&Pattern::new(&[0, 0]), 5));
    }

    fn low() -> PinTx {
        PinTx::set(State::Low)
    }

    fn high() -> PinTx {
        PinTx::set(State::High)
    }

    #[test]
    fn new_drives_everything_off_and_has_no_relay() {
        let mut buz = PinMock::new(&[low(), high()]);
        let mut aled = PinMock::new(&[low()]);
        let mut fled = PinMock::new(&[low()]);
        let mut out = Outputs::new(buz.clone(), aled.clone(), fled.clone()).unwrap();
        assert_eq!(out.relay_mode(), RelayMode::Disabled);
        assert_eq!(out.set_relay(true), Err(Error::RelayNotEnabled));
        out.set_relay(false).unwrap();
        out.set_buzzer(true).unwrap();
        buz.done();
        aled.done();
        fled.done();
    }

    #[test]
    fn a_fitted_relay_in_disabled_mode_is_held_off() {
        let buz = PinMock::new(&[low()]);
        let aled = PinMock::new(&[low()]);
        let fled = PinMock::new(&[low()]);
        // Driven low at construction and by the explicit release, never high.
        let rel = PinMock::new(&[low(), low()]);
        let mut out = Outputs::with_relay(
            buz.clone(),
            aled.clone(),
            fled.clone(),
            rel.clone(),
            RelayMode::default(),
        )
        .unwrap();
        assert_eq!(out.set_relay(true), Err(Error::RelayNotEnabled));
        out.set_relay(false).unwrap();
        // The pins given back are the ones scripted: check them through them.
        let (mut b, mut a, mut f, mut r) = out.destroy();
        for p in [&mut b, &mut a, &mut f, &mut r] {
            p.done();
        }
    }

    #[test]
    fn an_enabled_relay_trips() {
        let mut buz = PinMock::new(&[low()]);
        let mut aled = PinMock::new(&[low()]);
        let mut fled = PinMock::new(&[low()]);
        let mut rel = PinMock::new(&[low(), high(), low()]);
        let mut out = Outputs::with_relay(
            buz.clone(),
            aled.clone(),
            fled.clone(),
            rel.clone(),
            RelayMode::TripEnabled,
        )
        .unwrap();
        out.set_relay(true).unwrap();
        out.set_relay(false).unwrap();
        for p in [&mut buz, &mut aled, &mut fled, &mut rel] {
            p.done();
        }
    }

    #[test]
    fn drive_follows_the_patterns() {
        // t = 600 ms: FIRE off, FLASH off; t = 1000: FIRE on, FLASH on; fault LED steady.
        let mut buz = PinMock::new(&[low(), low(), high()]);
        let mut aled = PinMock::new(&[low(), low(), high()]);
        let mut fled = PinMock::new(&[low(), high(), high()]);
        let mut out = Outputs::new(buz.clone(), aled.clone(), fled.clone()).unwrap();
        out.drive(&FIRE, &FLASH, &STEADY, 600).unwrap();
        out.drive(&FIRE, &FLASH, &STEADY, 1000).unwrap();
        for p in [&mut buz, &mut aled, &mut fled] {
            p.done();
        }
    }

    #[test]
    fn pin_errors_are_reported() {
        let err = MockError::Io(std::io::ErrorKind::Other);
        let mut buz = PinMock::new(&[low().with_error(err.clone())]);
        let mut aled = PinMock::new(&[]);
        let mut fled = PinMock::new(&[]);
        let r = Outputs::new(buz.clone(), aled.clone(), fled.clone());
        assert_eq!(r.err(), Some(Error::Pin(err)));
        for p in [&mut buz, &mut aled, &mut fled] {
            p.done();
        }
    }
}
