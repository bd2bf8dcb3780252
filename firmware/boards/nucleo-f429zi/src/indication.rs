//! What the sounder and the lights do for the monitor's [`Indicators`]: the board's mapping of
//! [`Sound`] to the patterns of [`drivers::outputs`](firegrid_firmware::drivers::outputs), and
//! the pattern clock. Pure, so the host tests check it.
//!
//! | [`Sound`] | buzzer pattern |
//! |---|---|
//! | `Fire` | [`FIRE`]: temporal-three (ISO 8201) |
//! | `Alarm` | [`ELECTRICAL_ALARM`]: 2 Hz |
//! | `Fault`, `BatteryChirp` | [`FAULT_CHIRP`]: 0.1 s every 30 s |
//! | `SelfTest` | [`STEADY`]: every sound element on |
//! | `Off` | [`OFF`] |
//!
//! The red alarm light and the fault light are [`STEADY`] when the monitor says on. A pattern
//! starts from its beginning whenever what is shown changes, so a new alarm begins with a
//! beep, not in the middle of a pause (a fault chirp would otherwise wait up to 30 s).

use firegrid_firmware::drivers::outputs::{
    ELECTRICAL_ALARM, FAULT_CHIRP, FIRE, OFF, Pattern, STEADY, pattern_level,
};
use firegrid_firmware::monitor::{Indicators, Sound};

/// The buzzer pattern for a sound.
pub const fn sound_pattern(sound: Sound) -> Pattern {
    match sound {
        Sound::Off => OFF,
        Sound::BatteryChirp | Sound::Fault => FAULT_CHIRP,
        Sound::Alarm => ELECTRICAL_ALARM,
        Sound::SelfTest => STEADY,
        Sound::Fire => FIRE,
    }
}

/// The three patterns for a set of indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patterns {
    /// The buzzer.
    pub buzzer: Pattern,
    /// The red alarm LED.
    pub alarm_led: Pattern,
    /// The fault LED.
    pub fault_led: Pattern,
}

impl Patterns {
    /// The patterns that show `indicators`.
    pub const fn of(indicators: &Indicators) -> Self {
        Self {
            buzzer: sound_pattern(indicators.sound),
            alarm_led: if indicators.alarm_led { STEADY } else { OFF },
            fault_led: if indicators.fault_led { STEADY } else { OFF },
        }
    }
}

/// The levels of the three outputs at one instant: `true` = on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// The buzzer.
    pub buzzer: bool,
    /// The red alarm LED.
    pub alarm_led: bool,
    /// The fault LED.
    pub fault_led: bool,
}

/// The pattern clock: what is shown and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indication {
    patterns: Patterns,
    since_ms: u64,
}

impl Indication {
    /// Everything off, from `now_ms`.
    pub const fn new(now_ms: u64) -> Self {
        Self {
            patterns: Patterns {
                buzzer: OFF,
                alarm_led: OFF,
                fault_led: OFF,
            },
            since_ms: now_ms,
        }
    }

    /// Shows `indicators` from `now_ms` on; restarts the patterns if they change.
    pub fn show(&mut self, indicators: &Indicators, now_ms: u64) {
        let patterns = Patterns::of(indicators);
        if patterns != self.patterns {
            self.patterns = patterns;
            self.since_ms = now_ms;
        }
    }

    /// The output levels at `now_ms`.
    pub fn levels(&self, now_ms: u64) -> Levels {
        let t = now_ms.saturating_sub(self.since_ms);
        Levels {
            buzzer: pattern_level(&self.patterns.buzzer, t),
            alarm_led: pattern_level(&self.patterns.alarm_led, t),
            fault_led: pattern_level(&self.patterns.fault_led, t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indicators(sound: Sound, alarm_led: bool, fault_led: bool) -> Indicators {
        Indicators {
            sound,
            alarm_led,
            fault_led,
            relay_tripped: false,
        }
    }

    #[test]
    fn every_sound_has_its_pattern() {
        assert_eq!(sound_pattern(Sound::Fire), FIRE);
        assert_eq!(sound_pattern(Sound::Alarm), ELECTRICAL_ALARM);
        assert_eq!(sound_pattern(Sound::Fault), FAULT_CHIRP);
        assert_eq!(sound_pattern(Sound::BatteryChirp), FAULT_CHIRP);
        assert_eq!(sound_pattern(Sound::SelfTest), STEADY);
        assert_eq!(sound_pattern(Sound::Off), OFF);
        // The fire sound is distinct from every other sound.
        for s in [
            Sound::Off,
            Sound::BatteryChirp,
            Sound::Fault,
            Sound::Alarm,
            Sound::SelfTest,
        ] {
            assert_ne!(sound_pattern(s), FIRE);
        }
    }

    #[test]
    fn a_new_sound_starts_with_its_on_phase() {
        let mut ind = Indication::new(0);
        ind.show(&indicators(Sound::Fault, false, true), 0);
        // 10 s into the fault chirp: silent, the next chirp is 20 s away.
        assert!(!ind.levels(10_000).buzzer);
        assert!(ind.levels(10_000).fault_led);
        // An alarm starts now: it beeps at once.
        ind.show(&indicators(Sound::Alarm, true, true), 10_000);
        let l = ind.levels(10_000);
        assert!(l.buzzer && l.alarm_led && l.fault_led);
        assert!(!ind.levels(10_250).buzzer);
        assert!(ind.levels(10_500).buzzer);
    }

    #[test]
    fn showing_the_same_again_keeps_the_phase() {
        let mut ind = Indication::new(0);
        let fire = indicators(Sound::Fire, true, false);
        ind.show(&fire, 0);
        ind.show(&fire, 700);
        // Still in the first off-phase (500–1000 ms) of the temporal-three.
        assert!(!ind.levels(700).buzzer);
        assert!(ind.levels(1_000).buzzer);
    }

    #[test]
    fn off_is_dark_and_silent() {
        let mut ind = Indication::new(5);
        ind.show(&indicators(Sound::Off, false, false), 5);
        for t in [5, 1_000, 60_000] {
            let l = ind.levels(t);
            assert!(!l.buzzer && !l.alarm_led && !l.fault_led);
        }
    }
}
