//! Interface to an independent smoke alarm's output lines, and the monitor's test button.
//!
//! An independent (stand-alone) smoke alarm (GB 20517) sounds by itself; the monitor only
//! watches it. The alarms fitted in the programme bring out, on an open-collector or relay
//! contact read by a GPIO with a pull resistor:
//!
//! - the **alarm / interconnect output**: active while the alarm sounds. Some alarms pulse it
//!   with their temporal-three sound (0.5 s on, 0.5 s off, ×3, 1.5 s off — ISO 8201), so the
//!   debouncer asserts after [`SMOKE_ALARM_ACTIVATE_MS`] stable and releases only after
//!   [`SMOKE_ALARM_RELEASE_MS`] inactive, longer than the longest gap of that pattern: one
//!   alarm, not a flurry of edges;
//! - the **battery-low output**: active while the alarm's battery is low. It can flicker as
//!   the battery sags under the alarm's own chirps, so it is debounced much longer
//!   ([`BATTERY_LOW_ACTIVATE_MS`], [`BATTERY_LOW_RELEASE_MS`]).
//!
//! The **test button** (the monitor's own, used for test / silence) is debounced over
//! [`BUTTON_DEBOUNCE_MS`] and reports a short press or a long press
//! ([`BUTTON_LONG_PRESS_MS`]).
//!
//! The active level of each line is configurable ([`ActiveLevel`]). The debouncing is pure
//! and time-explicit — [`Debouncer::update`]`(level, now_ms)` — so it never sleeps and tests
//! drive it with made-up times; the pin wrappers ([`DebouncedLine`], [`TestButton`]) only
//! read the pin and pass the caller's time on. `now_ms` is a monotonic millisecond clock
//! (u64: never wraps); a time earlier than the previous one counts as no time passing.

use embedded_hal::digital::InputPin;

/// Alarm line: active this long without a break before it counts, ms (the brief's 200 ms:
/// rejects contact bounce and interference on the lead).
pub const SMOKE_ALARM_ACTIVATE_MS: u32 = 200;

/// Alarm line: inactive this long before the alarm counts as over, ms. Longer than the 1.5 s
/// pause of the temporal-three pattern some alarms pulse on this line.
pub const SMOKE_ALARM_RELEASE_MS: u32 = 2_000;

/// Battery-low line: active this long before it counts, ms (firegrid's choice).
pub const BATTERY_LOW_ACTIVATE_MS: u32 = 5_000;

/// Battery-low line: inactive this long before it clears, ms (firegrid's choice: a recovering
/// battery must stay good for a while).
pub const BATTERY_LOW_RELEASE_MS: u32 = 30_000;

/// Test button debounce, both ways, ms.
pub const BUTTON_DEBOUNCE_MS: u32 = 50;

/// Test button held this long (after the debounced press) is a long press, ms.
pub const BUTTON_LONG_PRESS_MS: u32 = 3_000;

/// Which electrical level means "active".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveLevel {
    /// Active high.
    High,
    /// Active low (typical for an open-collector output with a pull-up).
    Low,
}

impl ActiveLevel {
    /// Whether an electrical level (`true` = high) is the active one.
    pub const fn is_active(self, level_high: bool) -> bool {
        match self {
            ActiveLevel::High => level_high,
            ActiveLevel::Low => !level_high,
        }
    }
}

/// A debounced change of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The line became active (e.g. the smoke alarm sounds).
    Activated,
    /// The line became inactive.
    Deactivated,
}

/// Time-explicit debouncer with separate assert and release times.
///
/// Starts inactive: a line already active at start-up is reported as [`Edge::Activated`]
/// once it has been seen active for the activation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debouncer {
    active_level: ActiveLevel,
    activate_ms: u32,
    release_ms: u32,
    active: bool,
    /// When the raw level was first seen differing from the debounced state.
    pending_since: Option<u64>,
}

impl Debouncer {
    /// A debouncer that needs `activate_ms` of active level to activate and `release_ms` of
    /// inactive level to deactivate.
    pub const fn new(active_level: ActiveLevel, activate_ms: u32, release_ms: u32) -> Self {
        Debouncer {
            active_level,
            activate_ms,
            release_ms,
            active: false,
            pending_since: None,
        }
    }

    /// For the smoke alarm's alarm/interconnect line.
    pub const fn smoke_alarm(active_level: ActiveLevel) -> Self {
        Self::new(
            active_level,
            SMOKE_ALARM_ACTIVATE_MS,
            SMOKE_ALARM_RELEASE_MS,
        )
    }

    /// For the smoke alarm's battery-low line.
    pub const fn battery_low(active_level: ActiveLevel) -> Self {
        Self::new(
            active_level,
            BATTERY_LOW_ACTIVATE_MS,
            BATTERY_LOW_RELEASE_MS,
        )
    }

    /// The debounced state.
    pub const fn is_active(&self) -> bool {
        self.active
    }

    /// Takes the line's electrical level (`true` = high) at `now_ms`; returns the debounced
    /// edge, if this sample completes one.
    pub fn update(&mut self, level_high: bool, now_ms: u64) -> Option<Edge> {
        let raw_active = self.active_level.is_active(level_high);
        if raw_active == self.active {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(now_ms);
        let needed = if raw_active {
            self.activate_ms
        } else {
            self.release_ms
        };
        if now_ms.saturating_sub(since) < u64::from(needed) {
            return None;
        }
        self.active = raw_active;
        self.pending_since = None;
        Some(if raw_active {
            Edge::Activated
        } else {
            Edge::Deactivated
        })
    }
}

/// What the test button did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Pressed (debounced). Always followed by [`ButtonEvent::ShortPress`] or
    /// [`ButtonEvent::LongPress`].
    Pressed,
    /// Released before [`BUTTON_LONG_PRESS_MS`]: a short press (test / silence).
    ShortPress,
    /// Held for [`BUTTON_LONG_PRESS_MS`]: reported once, while still held.
    LongPress,
    /// Released after a long press.
    LongReleased,
}

/// Time-explicit press / long-press tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonTracker {
    debouncer: Debouncer,
    long_press_ms: u32,
    pressed_at: u64,
    long_reported: bool,
}

impl ButtonTracker {
    /// A tracker debouncing over `debounce_ms` both ways, long press after `long_press_ms`.
    pub const fn new(active_level: ActiveLevel, debounce_ms: u32, long_press_ms: u32) -> Self {
        ButtonTracker {
            debouncer: Debouncer::new(active_level, debounce_ms, debounce_ms),
            long_press_ms,
            pressed_at: 0,
            long_reported: false,
        }
    }

    /// The test button: [`BUTTON_DEBOUNCE_MS`], [`BUTTON_LONG_PRESS_MS`].
    pub const fn test_button(active_level: ActiveLevel) -> Self {
        Self::new(active_level, BUTTON_DEBOUNCE_MS, BUTTON_LONG_PRESS_MS)
    }

    /// Whether the button is (debounced) pressed.
    pub const fn is_pressed(&self) -> bool {
        self.debouncer.is_active()
    }

    /// Takes the button's electrical level at `now_ms`; at most one event per call.
    pub fn update(&mut self, level_high: bool, now_ms: u64) -> Option<ButtonEvent> {
        match self.debouncer.update(level_high, now_ms) {
            Some(Edge::Activated) => {
                self.pressed_at = now_ms;
                self.long_reported = false;
                Some(ButtonEvent::Pressed)
            }
            Some(Edge::Deactivated) => Some(if self.long_reported {
                ButtonEvent::LongReleased
            } else {
                ButtonEvent::ShortPress
            }),
            None if self.debouncer.is_active()
                && !self.long_reported
                && now_ms.saturating_sub(self.pressed_at) >= u64::from(self.long_press_ms) =>
            {
                self.long_reported = true;
                Some(ButtonEvent::LongPress)
            }
            None => None,
        }
    }
}

/// Errors of the input drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// Reading the pin failed.
    Pin(E),
}

/// A debounced input line on an [`InputPin`]: the smoke alarm's alarm/interconnect output or
/// its battery-low output.
#[derive(Debug)]
pub struct DebouncedLine<P> {
    pin: P,
    debouncer: Debouncer,
}

impl<P: InputPin> DebouncedLine<P> {
    /// A line on `pin` with its own debouncer.
    pub const fn new(pin: P, debouncer: Debouncer) -> Self {
        DebouncedLine { pin, debouncer }
    }

    /// The smoke alarm's alarm/interconnect output ([`Debouncer::smoke_alarm`]).
    pub const fn smoke_alarm(pin: P, active_level: ActiveLevel) -> Self {
        Self::new(pin, Debouncer::smoke_alarm(active_level))
    }

    /// The smoke alarm's battery-low output ([`Debouncer::battery_low`]).
    pub const fn battery_low(pin: P, active_level: ActiveLevel) -> Self {
        Self::new(pin, Debouncer::battery_low(active_level))
    }

    /// Gives the pin back.
    pub fn destroy(self) -> P {
        self.pin
    }

    /// The debounced state.
    pub const fn is_active(&self) -> bool {
        self.debouncer.is_active()
    }

    /// Reads the pin once and debounces it at `now_ms`. Call it every few ms (e.g. 10 ms).
    pub fn poll(&mut self, now_ms: u64) -> Result<Option<Edge>, Error<P::Error>> {
        let level = self.pin.is_high().map_err(Error::Pin)?;
        Ok(self.debouncer.update(level, now_ms))
    }
}

/// The test button on an [`InputPin`].
#[derive(Debug)]
pub struct TestButton<P> {
    pin: P,
    tracker: ButtonTracker,
}

impl<P: InputPin> TestButton<P> {
    /// The button on `pin` ([`ButtonTracker::test_button`]).
    pub const fn new(pin: P, active_level: ActiveLevel) -> Self {
        TestButton {
            pin,
            tracker: ButtonTracker::test_button(active_level),
        }
    }

    /// Gives the pin back.
    pub fn destroy(self) -> P {
        self.pin
    }

    /// Whether the button is (debounced) pressed.
    pub const fn is_pressed(&self) -> bool {
        self.tracker.is_pressed()
    }

    /// Reads the pin once and tracks it at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) -> Result<Option<ButtonEvent>, Error<P::Error>> {
        let level = self.pin.is_high().map_err(Error::Pin)?;
        Ok(self.tracker.update(level, now_ms))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use embedded_hal_mock::eh1::MockError;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};

    use super::*;

    /// Feeds `level(t)` every `step` ms over `0..end`; returns the edges with their times.
    fn run<T: Copy>(
        mut update: impl FnMut(bool, u64) -> Option<T>,
        level: impl Fn(u64) -> bool,
        end: u64,
        step: u64,
    ) -> Vec<(u64, T)> {
        (0..end)
            .step_by(usize::try_from(step).unwrap())
            .filter_map(|t| update(level(t), t).map(|e| (t, e)))
            .collect()
    }

    #[test]
    fn activates_after_200ms_of_active_level() {
        let mut d = Debouncer::smoke_alarm(ActiveLevel::High);
        assert_eq!(d.update(true, 1000), None);
        assert_eq!(d.update(true, 1199), None);
        assert_eq!(d.update(true, 1200), Some(Edge::Activated));
        assert!(d.is_active());
        assert_eq!(d.update(true, 5000), None);
    }

    #[test]
    fn bounces_shorter_than_the_interval_are_ignored() {
        let mut d = Debouncer::smoke_alarm(ActiveLevel::High);
        // Toggles every 150 ms for 3 s: never 200 ms stable.
        let edges = run(|l, t| d.update(l, t), |t| (t / 150) % 2 == 1, 3000, 10);
        assert!(edges.is_empty(), "{edges:?}");
        assert!(!d.is_active());
    }

    #[test]
    fn a_pulsing_temporal_three_line_is_one_alarm() {
        let mut d = Debouncer::smoke_alarm(ActiveLevel::Low);
        // Active (low) in the on-phases of 0.5/0.5 ×3 + 1.5 s off, for 20 s, then idle.
        let sounding = |t: u64| t < 20_000 && (t % 4000) < 3000 && (t % 1000) < 500;
        let edges = run(|l, t| d.update(l, t), |t| !sounding(t), 30_000, 10);
        assert_eq!(
            edges,
            [(200, Edge::Activated), (18_500 + 2000, Edge::Deactivated)]
        );
    }

    #[test]
    fn active_low_polarity() {
        let mut d = Debouncer::new(ActiveLevel::Low, 200, 200);
        assert_eq!(d.update(true, 0), None);
        assert_eq!(d.update(true, 1000), None, "high is idle");
        assert_eq!(d.update(false, 1010), None);
        assert_eq!(d.update(false, 1210), Some(Edge::Activated));
        assert_eq!(d.update(true, 1300), None);
        assert_eq!(d.update(true, 1500), Some(Edge::Deactivated));
    }

    #[test]
    fn time_going_backwards_does_not_fire() {
        let mut d = Debouncer::smoke_alarm(ActiveLevel::High);
        assert_eq!(d.update(true, 10_000), None);
        assert_eq!(d.update(true, 5), None);
        assert_eq!(d.update(true, 10_199), None);
        assert_eq!(d.update(true, 10_200), Some(Edge::Activated));
    }

    #[test]
    fn sparse_updates_still_need_two_samples() {
        // One sample can only start the interval: the first sight of the level is its start.
        let mut d = Debouncer::smoke_alarm(ActiveLevel::High);
        assert_eq!(d.update(true, 0), None);
        assert_eq!(d.update(true, 60_000), Some(Edge::Activated));
    }

    #[test]
    fn battery_low_needs_5s_and_clears_after_30s() {
        let mut d = Debouncer::battery_low(ActiveLevel::Low);
        // Low from 1 s to 40 s, flickering back to good at 4–5 s and 8–9 s: 3 s stretches
        // of low do not count; the stretch from 9 s does.
        let low = |t: u64| (1000..40_000).contains(&t) && !(t < 12_000 && t % 4000 < 1000);
        let edges = run(|l, t| d.update(l, t), |t| !low(t), 100_000, 100);
        assert_eq!(
            edges,
            [
                (9_000 + 5000, Edge::Activated),
                (40_000 + 30_000, Edge::Deactivated)
            ]
        );
    }

    #[test]
    fn button_short_press() {
        let mut b = ButtonTracker::test_button(ActiveLevel::Low);
        // Contact bounce at 1010–1030 ms restarts the debounce interval.
        let pressed = |t: u64| (1000..1800).contains(&t) && !(1010..1030).contains(&t);
        let events = run(|l, t| b.update(l, t), |t| !pressed(t), 5000, 10);
        assert_eq!(
            events,
            [
                (1080, ButtonEvent::Pressed),
                (1850, ButtonEvent::ShortPress)
            ]
        );
    }

    #[test]
    fn button_long_press() {
        let mut b = ButtonTracker::test_button(ActiveLevel::High);
        let events = run(
            |l, t| b.update(l, t),
            |t| (1000..6000).contains(&t),
            8000,
            10,
        );
        assert_eq!(
            events,
            [
                (1050, ButtonEvent::Pressed),
                (4050, ButtonEvent::LongPress),
                (6050, ButtonEvent::LongReleased)
            ]
        );
    }

    #[test]
    fn button_chatter_is_no_press() {
        let mut b = ButtonTracker::test_button(ActiveLevel::High);
        let events = run(|l, t| b.update(l, t), |t| (t / 20) % 2 == 0, 2000, 5);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn alarm_line_driver_reads_the_pin() {
        let pin = PinMock::new(&[
            PinTx::get(State::High),
            PinTx::get(State::Low),
            PinTx::get(State::Low),
            PinTx::get(State::Low),
        ]);
        let mut line = DebouncedLine::smoke_alarm(pin.clone(), ActiveLevel::Low);
        assert_eq!(line.poll(0), Ok(None));
        assert_eq!(line.poll(100), Ok(None));
        assert_eq!(line.poll(200), Ok(None));
        assert_eq!(line.poll(300), Ok(Some(Edge::Activated)));
        assert!(line.is_active());
        // The pin given back is the one scripted: check it through it.
        line.destroy().done();
    }

    #[test]
    fn battery_line_and_pin_error() {
        let err = MockError::Io(std::io::ErrorKind::NotConnected);
        let mut pin = PinMock::new(&[PinTx::get(State::High).with_error(err.clone())]);
        let mut line = DebouncedLine::battery_low(pin.clone(), ActiveLevel::High);
        assert_eq!(line.poll(0), Err(Error::Pin(err)));
        pin.done();
    }

    #[test]
    fn test_button_driver() {
        let mut pin = PinMock::new(&[
            PinTx::get(State::Low),
            PinTx::get(State::Low),
            PinTx::get(State::High),
            PinTx::get(State::High),
        ]);
        let mut button = TestButton::new(pin.clone(), ActiveLevel::Low);
        assert_eq!(button.poll(0), Ok(None));
        assert_eq!(button.poll(50), Ok(Some(ButtonEvent::Pressed)));
        assert!(button.is_pressed());
        assert_eq!(button.poll(400), Ok(None));
        assert_eq!(button.poll(450), Ok(Some(ButtonEvent::ShortPress)));
        pin.done();
    }
}
