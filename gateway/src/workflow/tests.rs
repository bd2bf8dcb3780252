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
