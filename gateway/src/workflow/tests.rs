use super::*;

const H: u64 = 3_600_000;

fn acked(ticket: TicketState, escalation: u8) -> Acknowledged {
    Acknowledged {
        episode: 1,
        category: Category::Alarm,
        ticket,
        acknowledged_ms: 1_000,
        acknowledged_level: 1,
        escalation,
    }
}

fn config() -> WorkflowConfig {
    WorkflowConfig {
        rectify_ms: BTreeMap::from([(Category::Alarm, 10 * H)]),
        verify_margin_pct: 20,
        verify_hold_ms: H,
        acknowledge_ms: BTreeMap::new(),
    }
}

#[test]
fn an_unrectified_ticket_escalates_each_deadline_one_level_further() {
    let c = config();
    let t = acked(TicketState::Acknowledged, 1);
    assert_eq!(next_overdue(&t, &c), Some(1_000 + 10 * H));
    assert_eq!(
        rectify_overdue(&t, &c, 1_000 + 10 * H - 1),
        None,
        "not before the deadline"
    );
    assert_eq!(
        rectify_overdue(&t, &c, 1_000 + 10 * H),
        Some(2),
        "at it, one above"
    );
    // Once escalated (level 2), the next is a deadline later.
    let t = acked(TicketState::Dispatched, 2);
    assert_eq!(rectify_overdue(&t, &c, 1_000 + 20 * H - 1), None);
    assert_eq!(rectify_overdue(&t, &c, 1_000 + 20 * H), Some(3));
    // A late watcher escalates one level at a time, never skipping one.
    let t = acked(TicketState::Acknowledged, 1);
    assert_eq!(rectify_overdue(&t, &c, 1_000 + 95 * H), Some(2));
}

#[test]
fn rectified_tickets_and_categories_without_a_deadline_never_escalate() {
    let c = config();
    for state in [
        TicketState::Rectified,
        TicketState::Verified,
        TicketState::Closed,
    ] {
        assert_eq!(next_overdue(&acked(state, 1), &c), None, "{state}");
    }
    let mut t = acked(TicketState::Acknowledged, 1);
    t.category = Category::BatteryLow;
    assert_eq!(rectify_overdue(&t, &c, u64::MAX), None);
    let t = acked(TicketState::Acknowledged, MAX_LEVEL);
    assert_eq!(next_overdue(&t, &c), None, "no level above the top");
}

#[test]
fn verification_needs_the_end_the_hold_and_every_reading_below_the_margin() {
    let c = config();
    let m = Some((Quantity::ResidualCurrent, 300));
    let below = ReadingsSince {
        count: 5,
        max: Some(239),
    };
    assert_eq!(limit(300, 20), 240);
    assert_eq!(
        verification(None, m, below, &c, 10 * H),
        Verification::NotEnded
    );
    assert_eq!(
        verification(Some(5 * H), m, below, &c, 5 * H + 10),
        Verification::TooRecent { at_ms: 6 * H }
    );
    assert_eq!(
        verification(Some(5 * H), m, below, &c, 6 * H),
        Verification::Verified
    );
    assert_eq!(
        verification(
            Some(5 * H),
            m,
            ReadingsSince {
                count: 5,
                max: Some(240)
            },
            &c,
            6 * H
        ),
        Verification::AboveMargin {
            max: 240,
            limit: 240
        },
        "at the limit is not below it"
    );
    assert_eq!(
        verification(Some(5 * H), m, ReadingsSince::default(), &c, 6 * H),
        Verification::NoReadings
    );
    assert_eq!(
        verification(Some(5 * H), None, ReadingsSince::default(), &c, 5 * H),
        Verification::Verified,
        "nothing measured: ended is enough"
    );
}

#[test]
fn deadlines_are_shown_from_the_start_and_the_acknowledgement_and_overdue_after_them() {
    let mut config = WorkflowConfig::default();
    config.acknowledge_ms.insert(Category::Alarm, 180_000);
    let d = deadlines(
        Category::Alarm,
        1_000,
        None,
        TicketState::Raised,
        &config,
        181_000,
    );
    assert_eq!(d.acknowledge_by, Some(181_000));
    assert!(!d.acknowledge_overdue, "due at, not yet past");
    assert_eq!(
        d.rectify_by, None,
        "not acknowledged: no rectify deadline yet"
    );
    let d = deadlines(
        Category::Alarm,
        1_000,
        None,
        TicketState::Raised,
        &config,
        181_001,
    );
    assert!(d.acknowledge_overdue);
    let three_days = 3 * 86_400_000;
    let d = deadlines(
        Category::Alarm,
        1_000,
        Some(200_000),
        TicketState::Acknowledged,
        &config,
        200_000 + three_days + 1,
    );
    assert!(!d.acknowledge_overdue, "acknowledged, though late");
    assert_eq!(d.rectify_by, Some(200_000 + three_days));
    assert!(d.rectify_overdue);
    let d = deadlines(
        Category::Alarm,
        1_000,
        Some(200_000),
        TicketState::Rectified,
        &config,
        200_000 + three_days + 1,
    );
    assert!(!d.rectify_overdue, "rectified: nothing overdue");
    let d = deadlines(
        Category::Tamper,
        1_000,
        Some(2_000),
        TicketState::Acknowledged,
        &config,
        u64::MAX,
    );
    assert_eq!(
        d,
        Deadlines::default(),
        "no deadlines configured for tamper"
    );
}
