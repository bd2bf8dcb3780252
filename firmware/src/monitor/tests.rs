#![allow(clippy::identity_op)] // `1 * S` reads as "one second"

use std::vec::Vec as StdVec;

use super::*;
use firegrid_protocols::message::Action;

const S: u64 = 1_000;
const RES: ChannelNo = 0;
const TEMP: ChannelNo = 1;

fn events(o: &Outputs) -> StdVec<EventKind> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// A typical monitor past its power-up step (battery measured good).
fn monitor() -> Monitor {
    let mut m = Monitor::new(Layout::typical_monitor(), 0);
    let first = m.step(0, Input::Tick);
    assert!(
        first.actions.contains(&Output::MeasureBattery),
        "battery check at power-up"
    );
    assert!(first.actions.contains(&Output::Heartbeat));
    m.step(0, Input::Battery(3_000));
    m
}

fn sample(m: &mut Monitor, t: u64, channel: ChannelNo, v: i32) -> Outputs {
    m.step(
        t,
        Input::Sample {
            channel,
            value: Ok(v),
        },
    )
}

fn cmd(id: u32, action: Action) -> Input {
    Input::Command(Command {
        id,
        time_ms: 0,
        action,
    })
}

fn raised(channel: ChannelNo, value: i32, threshold: i32, q: Quantity) -> EventKind {
    EventKind::AlarmRaised {
        channel,
        level: Level {
            quantity: q,
            value,
            threshold,
        },
    }
}

#[test]
fn alarm_after_the_delay_not_before() {
    let mut m = monitor();
    // Default: 300 mA, 10 s delay.
    assert!(events(&sample(&mut m, 1 * S, RES, 350)).is_empty());
    assert_eq!(
        m.next_deadline(),
        11 * S,
        "the delay's end is the next deadline"
    );
    assert!(events(&sample(&mut m, 10_999, RES, 360)).is_empty());
    let o = m.step(11 * S, Input::Tick);
    assert_eq!(
        events(&o),
        [raised(RES, 360, 300, Quantity::ResidualCurrent)]
    );
    assert_eq!(o.indicators.sound, Sound::Alarm);
    assert!(o.indicators.alarm_led && !o.indicators.relay_tripped);
    // No second alarm for the same episode.
    assert!(events(&sample(&mut m, 12 * S, RES, 500)).is_empty());
}

#[test]
fn a_dip_below_the_set_point_restarts_the_delay() {
    let mut m = monitor();
    sample(&mut m, 0, RES, 350);
    sample(&mut m, 9 * S, RES, 299);
    sample(&mut m, 10 * S, RES, 350);
    assert!(events(&m.step(15 * S, Input::Tick)).is_empty());
    assert_eq!(events(&m.step(20 * S, Input::Tick)).len(), 1);
}

#[test]
fn latched_until_reset_and_cleared_only_below_the_hysteresis() {
    let mut m = monitor();
    sample(&mut m, 0, TEMP, 900);
    assert_eq!(
        events(&m.step(10 * S, Input::Tick)),
        [raised(TEMP, 900, 850, Quantity::Temperature)]
    );
    // The value falls below the set-point: the alarm stays latched (GB 14287.5-2025 §5.3.4).
    let o = sample(&mut m, 20 * S, TEMP, 840);
    assert!(events(&o).is_empty());
    assert!(o.indicators.alarm_led);
    // Reset while still within the hysteresis (840 ≥ 820): refused, still latched.
    let o = m.step(21 * S, cmd(1, Action::ResetAlarm { channel: None }));
    assert_eq!(
        events(&o),
        [EventKind::CommandResult {
            id: 1,
            outcome: CommandOutcome::Refused
        }]
    );
    assert!(o.indicators.alarm_led);
    // Below the hysteresis: the reset clears it.
    sample(&mut m, 30 * S, TEMP, 819);
    let o = m.step(
        31 * S,
        cmd(
            2,
            Action::ResetAlarm {
                channel: Some(TEMP),
            },
        ),
    );
    assert_eq!(
        events(&o),
        [
            EventKind::AlarmCleared {
                channel: TEMP,
                level: Level {
                    quantity: Quantity::Temperature,
                    value: 819,
                    threshold: 850
                }
            },
            EventKind::CommandResult {
                id: 2,
                outcome: CommandOutcome::Done
            },
        ]
    );
    assert!(!o.indicators.alarm_led);
    assert_eq!(o.indicators.sound, Sound::Off);
}

#[test]
fn the_test_button_resets_and_self_tests() {
    let mut m = monitor();
    sample(&mut m, 0, RES, 400);
    m.step(10 * S, Input::Tick);
    sample(&mut m, 11 * S, RES, 100);
    let o = m.step(12 * S, Input::TestButton);
    assert!(matches!(
        events(&o)[..],
        [EventKind::AlarmCleared { channel: RES, .. }]
    ));
    assert!(o.actions.contains(&Output::CheckSensors));
    assert_eq!(o.indicators.sound, Sound::SelfTest);
    m.step(13 * S, Input::SensorCheck(true));
    assert_eq!(m.next_deadline(), 15 * S);
    let o = m.step(15 * S, Input::Tick);
    assert_eq!(
        events(&o),
        [EventKind::SelfTest {
            result: SelfTestResult::Passed
        }]
    );
    assert_eq!(o.indicators.sound, Sound::Off);
}

#[test]
fn self_test_fails_without_a_sensor_check_or_with_a_fault() {
    let mut m = monitor();
    let o = m.step(0, cmd(7, Action::SelfTest));
    assert_eq!(
        events(&o),
        [EventKind::CommandResult {
            id: 7,
            outcome: CommandOutcome::Done
        }]
    );
    assert_eq!(
        events(&m.step(SELF_TEST_MS, Input::Tick)),
        [EventKind::SelfTest {
            result: SelfTestResult::Failed
        }]
    );

    m.step(
        10 * S,
        Input::Sample {
            channel: 2,
            value: Err(FaultCause::LeadOpen),
        },
    );
    m.step(20 * S, Input::Tick);
    m.step(21 * S, cmd(8, Action::SelfTest));
    m.step(22 * S, Input::SensorCheck(true));
    assert_eq!(
        events(&m.step(21 * S + SELF_TEST_MS, Input::Tick)),
        [EventKind::SelfTest {
            result: SelfTestResult::Failed
        }]
    );
}

#[test]
fn lead_open_is_a_fault_not_an_alarm() {
    let mut m = monitor();
    sample(&mut m, 0, RES, 500);
    // The CT opens before the delay ends: no alarm, a fault after confirmation.
    let o = m.step(
        5 * S,
        Input::Sample {
            channel: RES,
            value: Err(FaultCause::LeadOpen),
        },
    );
    assert!(events(&o).is_empty());
    assert_eq!(m.next_deadline(), 5 * S + FAULT_CONFIRM_MS);
    let o = m.step(5 * S + FAULT_CONFIRM_MS, Input::Tick);
    assert_eq!(
        events(&o),
        [EventKind::Fault {
            channel: RES,
            cause: FaultCause::LeadOpen
        }]
    );
    assert_eq!(o.indicators.sound, Sound::Fault);
    assert!(o.indicators.fault_led && !o.indicators.alarm_led);
    assert!(
        events(&m.step(30 * S, Input::Tick)).is_empty(),
        "no alarm while in fault"
    );
    // It measures again: the fault clears at once.
    let o = sample(&mut m, 31 * S, RES, 100);
    assert_eq!(
        events(&o),
        [EventKind::FaultCleared {
            channel: RES,
            cause: FaultCause::LeadOpen
        }]
    );
    assert!(!o.indicators.fault_led);
}

#[test]
fn a_transient_fault_is_not_reported() {
    let mut m = monitor();
    m.step(
        0,
        Input::Sample {
            channel: TEMP,
            value: Err(FaultCause::LeadShort),
        },
    );
    sample(&mut m, 1 * S, TEMP, 300);
    assert!(events(&m.step(10 * S, Input::Tick)).is_empty());
}

#[test]
fn smoke_is_never_silenced() {
    let mut m = Monitor::new(Layout::smoke_alarm(), 0);
    m.step(0, Input::Battery(2_500));
    let o = m.step(1 * S, Input::Smoke(true));
    assert_eq!(events(&o), [EventKind::Smoke]);
    assert_eq!(o.indicators.sound, Sound::Fire);
    // Silence: the battery chirp is silenced, the fire sound is not.
    let o = m.step(2 * S, cmd(3, Action::Silence));
    assert_eq!(
        events(&o),
        [
            EventKind::Silenced {
                duration_s: BATTERY_SILENCE_S
            },
            EventKind::CommandResult {
                id: 3,
                outcome: CommandOutcome::Done
            },
        ]
    );
    assert_eq!(o.indicators.sound, Sound::Fire);
    // Asked again with only smoke sounding: refused.
    let o = m.step(3 * S, cmd(4, Action::Silence));
    assert_eq!(
        events(&o),
        [EventKind::CommandResult {
            id: 4,
            outcome: CommandOutcome::Refused
        }]
    );
    assert_eq!(o.indicators.sound, Sound::Fire);
    let o = m.step(60 * S, Input::Smoke(false));
    assert_eq!(events(&o), [EventKind::SmokeCleared]);
    assert_eq!(
        o.indicators.sound,
        Sound::Off,
        "battery chirp still silenced"
    );
}

#[test]
fn battery_silence_lasts_seven_hours() {
    let mut m = Monitor::new(Layout::smoke_alarm(), 0);
    let o = m.step(0, Input::Battery(2_550));
    assert_eq!(events(&o), [EventKind::BatteryLow { battery_mv: 2_550 }]);
    assert_eq!(o.indicators.sound, Sound::BatteryChirp);
    m.step(1 * S, cmd(1, Action::Silence));
    let seven_h = u64::from(BATTERY_SILENCE_S) * S;
    assert_eq!(
        m.step(1 * S + seven_h - 1, Input::Tick).indicators.sound,
        Sound::Off
    );
    assert_eq!(
        m.step(1 * S + seven_h, Input::Tick).indicators.sound,
        Sound::BatteryChirp
    );
}

#[test]
fn battery_checked_at_power_up_and_every_24_hours() {
    let day = u64::from(BATTERY_CHECK_INTERVAL_MAX_S) * S;
    let mut m = Monitor::new(Layout::smoke_alarm(), 5 * S);
    let mut checks = StdVec::new();
    let mut t = 5 * S;
    while t <= 5 * S + 3 * day {
        let o = m.step(t, Input::Tick);
        if o.actions.contains(&Output::MeasureBattery) {
            checks.push(t);
            m.step(t, Input::Battery(3_000));
        }
        t = m.next_deadline();
    }
    assert_eq!(
        checks,
        [5 * S, 5 * S + day, 5 * S + 2 * day, 5 * S + 3 * day]
    );
}

#[test]
fn battery_ok_needs_the_hysteresis() {
    let mut m = Monitor::new(Layout::smoke_alarm(), 0);
    m.step(0, Input::Battery(2_600));
    assert!(events(&m.step(1, Input::Battery(2_650))).is_empty());
    assert_eq!(
        events(&m.step(2, Input::Battery(2_701))),
        [EventKind::BatteryOk { battery_mv: 2_701 }]
    );
}

#[test]
fn silence_mutes_an_electrical_alarm_until_a_new_one() {
    let mut m = monitor();
    sample(&mut m, 0, RES, 400);
    m.step(10 * S, Input::Tick);
    let o = m.step(11 * S, cmd(1, Action::Silence));
    assert_eq!(o.indicators.sound, Sound::Off);
    assert!(o.indicators.alarm_led, "the light stays");
    sample(&mut m, 12 * S, TEMP, 900);
    let o = m.step(22 * S, Input::Tick);
    assert_eq!(events(&o).len(), 1);
    assert_eq!(o.indicators.sound, Sound::Alarm, "a new alarm sounds again");
    // Nothing to silence at all → not applicable.
    let mut quiet = monitor();
    let o = quiet.step(1, cmd(9, Action::Silence));
    assert_eq!(
        events(&o),
        [EventKind::CommandResult {
            id: 9,
            outcome: CommandOutcome::NotApplicable
        }]
    );
}

#[test]
fn config_is_validated_applied_and_answered() {
    let mut m = monitor();
    let mut c = m.config().clone();
    c.version = 5;
    c.channels[0].threshold = Threshold::ResidualMa(500);
    c.channels[0].delay_s = 0;
    assert_eq!(
        events(&m.step(1, Input::Config(c.clone()))),
        [EventKind::ConfigApplied { version: 5 }]
    );
    assert!(
        events(&m.step(2, Input::Config(c.clone()))).is_empty(),
        "same version ignored"
    );
    // The new set-point and delay are in force.
    sample(&mut m, 3, RES, 450);
    assert!(events(&m.step(4, Input::Tick)).is_empty());
    assert_eq!(
        events(&sample(&mut m, 5, RES, 500)),
        [raised(RES, 500, 500, Quantity::ResidualCurrent)]
    );

    let refuse = |m: &mut Monitor, c: Config| match &events(&m.step(10, Input::Config(c)))[..] {
        [EventKind::ConfigRefused { version: 6, reason }] => {
            std::string::String::from(reason.as_str())
        }
        other => panic!("{other:?}"),
    };
    let mut bad = c.clone();
    bad.version = 6;
    bad.channels[0].threshold = Threshold::ResidualMa(5);
    assert_eq!(
        refuse(&mut m, bad),
        "channel 0: residual-current set-point 5 mA is outside 20-1000 mA (GB 14287.2)"
    );
    let mut bad = c.clone();
    bad.version = 6;
    bad.channels[1].threshold = Threshold::ResidualMa(300);
    assert_eq!(refuse(&mut m, bad), "channel 1 measures Temperature");
    let mut bad = c.clone();
    bad.version = 6;
    bad.relay_trip = true;
    assert_eq!(refuse(&mut m, bad), "relay_trip set but no relay is fitted");
    assert_eq!(m.config().version, 5, "a refused config changes nothing");
}

#[test]
fn the_relay_trips_only_when_fitted_and_enabled() {
    let mut layout = Layout::typical_monitor();
    layout.relay = true;
    let mut m = Monitor::new(layout, 0);
    sample(&mut m, 0, RES, 400);
    assert!(
        !m.step(10 * S, Input::Tick).indicators.relay_tripped,
        "off by default"
    );
    let mut c = m.config().clone();
    c.version = 1;
    c.relay_trip = true;
    assert!(m.step(11 * S, Input::Config(c)).indicators.relay_tripped);
}

/// Found by the simulator's street-outage test: a device booted on the default 60 s intervals
/// kept them until its next report after the gateway set 5 s, so the gateway, expecting a
/// message every 5 s, declared it offline.
#[test]
fn shorter_intervals_take_effect_when_the_config_is_applied() {
    let mut m = monitor();
    sample(&mut m, 1 * S, RES, 120);
    let mut c = m.config().clone();
    c.version = 1;
    c.report_interval_s = 5;
    c.heartbeat_interval_s = 10;
    m.step(2 * S, Input::Config(c));
    assert_eq!(
        m.next_deadline(),
        7 * S,
        "the report is due 5 s after the change"
    );
    let o = m.step(7 * S, Input::Tick);
    assert!(o.actions.contains(&Output::Report));
    assert!(!o.actions.contains(&Output::Heartbeat));
    assert!(
        m.step(12 * S, Input::Tick)
            .actions
            .contains(&Output::Heartbeat)
    );
    // Longer intervals do not postpone what is already due.
    let mut c = m.config().clone();
    c.version = 2;
    c.report_interval_s = 600;
    m.step(13 * S, Input::Config(c));
    assert_eq!(m.next_deadline(), 17 * S);
}

#[test]
fn reports_and_heartbeats_on_schedule() {
    let mut m = monitor();
    sample(&mut m, 1 * S, RES, 120);
    sample(&mut m, 1 * S, TEMP, 315);
    let o = m.step(60 * S, Input::Tick);
    assert_eq!(
        o.actions.iter().filter(|a| **a == Output::Report).count(),
        1
    );
    let readings = m.readings();
    assert_eq!(readings.len(), 2);
    assert_eq!(readings[0].residual_ma, Some(120));
    assert_eq!(readings[1].temp_dc, Some(315));
    assert!(o.actions.contains(&Output::Heartbeat));
    assert_eq!(m.next_deadline(), 120 * S);
}

#[test]
fn disabled_channels_are_ignored() {
    let mut m = monitor();
    let mut c = m.config().clone();
    c.version = 1;
    c.channels[1].enabled = false;
    m.step(0, Input::Config(c));
    sample(&mut m, 0, TEMP, 1_300);
    assert!(events(&m.step(60 * S, Input::Tick)).is_empty());
}

#[test]
fn reboot_is_answered_before_it_happens() {
    let mut m = monitor();
    let o = m.step(1, cmd(5, Action::Reboot));
    assert_eq!(
        o.actions.iter().rev().take(2).collect::<StdVec<_>>(),
        [
            &Output::Reboot,
            &Output::Event(EventKind::CommandResult {
                id: 5,
                outcome: CommandOutcome::Done
            })
        ]
    );
}

#[test]
fn every_channel_alarming_at_once_fits_one_step() {
    let mut layout = Layout::typical_monitor();
    layout.channels = [Some(Quantity::ResidualCurrent); MAX_CHANNELS];
    let mut m = Monitor::new(layout, 0);
    m.step(0, Input::Battery(3_000));
    for ch in 0..MAX_CHANNELS as u8 {
        sample(&mut m, 1, ch, 999);
    }
    let o = m.step(60 * S, Input::Tick);
    assert_eq!(events(&o).len(), MAX_CHANNELS);
    assert!(o.actions.contains(&Output::Heartbeat), "nothing dropped");
}
