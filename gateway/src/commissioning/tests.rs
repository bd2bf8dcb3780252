use super::*;

fn test(kind: TestKind) -> OpenTest {
    OpenTest {
        id: 1,
        device: "hz-1".to_owned(),
        kind,
        requested_ms: 1_000,
        deadline_ms: 61_000,
        installer: Some("wang".to_owned()),
    }
}

fn event(kind: &str, result: Option<&str>, received_ms: UnixMs) -> SeenEvent {
    SeenEvent {
        kind: kind.to_owned(),
        result: result.map(str::to_owned),
        device_ms: Some(received_ms - 5),
        received_ms,
    }
}

#[test]
fn a_commissioned_device_alarms_its_installer_an_in_service_one_the_workers() {
    assert_eq!(audience(DeviceState::Commissioned), Audience::Installer);
    assert_eq!(audience(DeviceState::InService), Audience::Workers);
}

#[test]
fn the_installer_topic_is_under_the_cells_people_topics() {
    assert_eq!(
        installer_topic("grid-7", "wang.inst"),
        "firegrid/v1/people/grid-7/installer/wang.inst"
    );
    // Wildcards and levels cannot be smuggled in through a name.
    assert_eq!(
        installer_topic("g", "a/+#"),
        "firegrid/v1/people/g/installer/a___"
    );
}

#[test]
fn a_self_test_is_answered_by_the_first_self_test_event_after_the_request() {
    let events = [
        event("self_test", Some("failed"), 900), // before the request: not the answer
        event("command_result", None, 1_010),
        event("self_test", Some("passed"), 1_200),
        event("self_test", Some("failed"), 1_300),
    ];
    assert_eq!(
        outcome(&test(TestKind::SelfTest), &events, 1_400),
        Some(Outcome::Answered {
            result: "passed".to_owned(),
            device_ms: Some(1_195),
            received_ms: 1_200
        })
    );
}

#[test]
fn the_test_button_is_answered_by_its_alarm() {
    let events = [event("smoke", None, 5_000)];
    assert_eq!(
        outcome(&test(TestKind::Button), &events, 5_001),
        Some(Outcome::Answered {
            result: "alarm".to_owned(),
            device_ms: Some(4_995),
            received_ms: 5_000
        })
    );
    // A smoke event does not answer a self-test.
    assert_eq!(outcome(&test(TestKind::SelfTest), &events, 5_001), None);
}

#[test]
fn no_answer_by_the_deadline_is_a_time_out() {
    let t = test(TestKind::SelfTest);
    assert_eq!(outcome(&t, &[], 60_999), None);
    assert_eq!(outcome(&t, &[], 61_000), Some(Outcome::TimedOut));
}

#[test]
fn scheduled_self_tests_fall_due_a_period_after_the_last_result_or_request() {
    let day = 86_400_000;
    let period = 30 * day;
    // Never tested: due a period after it was registered.
    assert!(!self_test_due(period, None, None, 0, period - 1));
    assert!(self_test_due(period, None, None, 0, period));
    // Asked yesterday, no answer yet: not asked again until a period later.
    assert!(!self_test_due(period, None, Some(period), 0, period + day));
    // Tested 10 days ago: not due.
    assert!(!self_test_due(period, Some(50 * day), None, 0, 60 * day));
}

#[test]
fn a_device_is_overdue_a_period_and_a_day_after_its_last_result() {
    let day = 86_400_000;
    let period = 30 * day;
    assert!(!overdue(period, Some(10 * day), 0, 41 * day));
    assert!(overdue(period, Some(10 * day), 0, 41 * day + 1));
    // Never tested: counted from registration.
    assert!(!overdue(period, None, 5 * day, 36 * day));
    assert!(overdue(period, None, 5 * day, 36 * day + 1));
}

#[test]
fn the_section_names_only_known_kinds() {
    let mut s = CommissioningSection::default();
    assert_eq!(s.period_ms(DeviceKind::SmokeAlarm), Some(30 * 86_400_000));
    assert_eq!(s.period_ms(DeviceKind::LegacyModbus), None);
    s.self_test_days.insert("toaster".to_owned(), 1);
    assert!(s.validate().unwrap_err().contains("toaster"));
}

#[test]
fn the_roster_calls_a_silent_device_offline_after_three_heartbeats() {
    assert_eq!(online(Some(true), 1_000, 60, 181_000), Some(true));
    assert_eq!(online(Some(true), 1_000, 60, 181_001), Some(false));
    assert_eq!(online(Some(false), 1_000, 60, 2_000), Some(false));
    assert_eq!(online(None, 0, 60, 1), None);
}

proptest::proptest! {
    /// The schedule looks up a device's last result only if it would be due without one: that
    /// is exact, a result only ever makes a device due later.
    #[test]
    fn a_device_not_due_without_its_last_result_is_not_due_with_it(
        period in 1u64..10_000,
        last in proptest::option::of(0u64..50_000),
        asked in proptest::option::of(0u64..50_000),
        since in 0u64..50_000,
        now in 0u64..60_000,
    ) {
        if !self_test_due(period, None, asked, since, now) {
            proptest::prop_assert!(!self_test_due(period, last, asked, since, now));
        }
    }
}
