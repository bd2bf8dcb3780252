//! The planner with explicit time: real payloads (those of docs/protocol.md) through
//! `ingest::classify`, an engine with the default escalation steps (2, 10, 30 min).

use firegrid_protocols::message::ChannelConfig;
use firegrid_protocols::thresholds::Threshold;

use super::*;
use crate::engine::EngineConfig;
use crate::ingest;
use crate::model::{DeviceSpec, EpisodeKey, Source, TicketState};

const S: u64 = 1_000;
const T0: u64 = 1_764_403_200_000;

fn dev(id: &str) -> DeviceId {
    DeviceId::new(id).expect("a valid device id")
}

fn grid(id: &str) -> GridId {
    GridId::new(id).expect("a valid grid id")
}

fn spec(id: &str) -> DeviceSpec {
    DeviceSpec {
        id: dev(id),
        grid: grid("grid-7"),
        channels: vec![
            ChannelConfig {
                channel: 0,
                enabled: true,
                threshold: Threshold::ResidualMa(300),
                delay_s: 10,
            },
            ChannelConfig {
                channel: 1,
                enabled: true,
                threshold: Threshold::TempDc(850),
                delay_s: 0,
            },
        ],
        heartbeat_interval_s: 60,
    }
}

fn known(state: DeviceState) -> Known {
    Known {
        state,
        encoding: Encoding::Json,
        last_status: None,
        tags: std::sync::Arc::default(),
    }
}

/// grid-7 → street-1 → district-1 (the top).
fn areas() -> HashMap<GridId, Option<GridId>> {
    HashMap::from([
        (grid("grid-7"), Some(grid("street-1"))),
        (grid("street-1"), Some(grid("district-1"))),
        (grid("district-1"), None),
    ])
}

/// In service: d1, d2 (in the engine). Decommissioned: old. Registered only: new.
fn planner_with(open: Vec<Episode>) -> Planner {
    let mut engine = Engine::new(EngineConfig::default(), 1);
    for id in ["d1", "d2"] {
        engine.handle(Input::Upsert(spec(id)), T0);
    }
    for e in &open {
        engine.restore(
            crate::engine::OpenEpisode {
                id: e.id,
                key: e.key.clone(),
                started_ms: e.started_ms,
                ended: e.ended_ms.is_some(),
                acknowledged: false,
                escalation: e.escalation,
                peak: e.peak,
                source: e.source,
            },
            T0,
        );
    }
    let known = HashMap::from([
        (dev("d1"), known(DeviceState::InService)),
        (dev("d2"), known(DeviceState::Commissioned)),
        (dev("old"), known(DeviceState::Decommissioned)),
        (dev("new"), known(DeviceState::Registered)),
    ]);
    Planner::new(engine, known, open, areas())
}

fn planner() -> Planner {
    planner_with(Vec::new())
}

fn event(device: &str, body: &str) -> Classified {
    ingest::classify(&format!("firegrid/v1/dev/{device}/event"), body.as_bytes())
}

/// The leakage alarm of docs/protocol.md: 412 mA against 300 mA on channel 0.
fn leakage(device: &str, seq: u32) -> Classified {
    event(
        device,
        &format!(
            r#"{{"seq":{seq},"ts":1764403260000,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":{},"threshold_ma":300}}"#,
            412 + seq % 7
        ),
    )
}

fn leakage_cleared(device: &str, seq: u32) -> Classified {
    event(
        device,
        &format!(
            r#"{{"seq":{seq},"up_ms":86470000,"kind":"alarm_cleared","ch":0,"residual_ma":120,"threshold_ma":300}}"#
        ),
    )
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.journal
        .iter()
        .map(|op| match op {
            JournalOp::Event(_) => "event",
            JournalOp::Engine {
                output: Output::Opened { .. },
                ..
            } => "opened",
            JournalOp::Engine {
                output: Output::Peak { .. },
                ..
            } => "peak",
            JournalOp::Engine {
                output: Output::Ended { .. },
                ..
            } => "ended",
            JournalOp::Engine {
                output: Output::Escalated { .. },
                ..
            } => "escalated",
            JournalOp::Notify(_) => "notify",
            JournalOp::Delivered { .. } | JournalOp::Failed { .. } | JournalOp::Stopped { .. } => {
                "delivery"
            }
        })
        .collect()
}

fn alerts(plan: &Plan) -> Vec<(AlertKind, u8, String)> {
    plan.alerts
        .iter()
        .map(|o| (o.alert.what, o.alert.level, o.alert.area.to_string()))
        .collect()
}

fn alerts_of(plan: &Plan, episode: EpisodeId) -> Vec<(AlertKind, u8, String)> {
    plan.alerts
        .iter()
        .filter(|o| o.alert.episode == episode)
        .map(|o| (o.alert.what, o.alert.level, o.alert.area.to_string()))
        .collect()
}

#[test]
fn an_alarm_event_opens_one_episode_journaled_with_its_alert_and_acked() {
    let mut p = planner();
    let plan = p.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0 + 5 * S);
    assert_eq!(kinds(&plan), ["event", "opened", "notify"]);
    assert_eq!(plan.acks, BTreeMap::from([(dev("d1"), vec![1043])]));
    assert_eq!(plan.opened, [Category::Alarm]);
    assert!(plan.refusals.is_empty() && plan.samples.is_empty());
    assert!(plan.changes_episodes());
    let [o] = &plan.alerts[..] else {
        panic!("one alert: {:?}", plan.alerts);
    };
    assert_eq!((o.id, o.channel), (0, NotifyChannel::Mqtt));
    assert_eq!(
        o.alert.alert_id,
        crate::notify::alert::alert_id(&[
            b"opened",
            b"d1",
            &1043u32.to_be_bytes(),
            b"mqtt",
            b"firegrid/v1/alert/grid-7"
        ])
    );
    assert_eq!(o.target, "firegrid/v1/alert/grid-7");
    let a = &o.alert;
    assert_eq!(
        (a.what, a.episode, a.category, a.device.as_str(), a.channel),
        (
            AlertKind::Opened,
            derived_episode_id(&dev("d1"), 1043, 0),
            Category::Alarm,
            "d1",
            Some(0)
        )
    );
    // The alarm path: published before its commit.
    assert!(o.early);
    assert_eq!((a.started_ms, a.sent_ms), (T0 + 5 * S, T0 + 5 * S));
    assert_eq!((a.value, a.threshold), (Some(412), Some(300)));
    // The journaled notification carries the very alert the notifier sends.
    let Some(JournalOp::Notify(n)) = plan.journal.last() else {
        panic!("the notification last");
    };
    assert_eq!(
        n.payload,
        serde_json::to_value(a).expect("an alert serialises")
    );
    assert_eq!(
        (n.episode_id, n.kind, n.level),
        (a.episode, NotificationKind::Opened, 0)
    );
}

#[test]
fn resends_in_the_batch_or_in_the_journal_are_acked_again_and_raise_nothing() {
    let mut p = planner();
    let lookups = Lookups {
        journaled: HashSet::from([(dev("d1"), 1042)]),
        ..Lookups::default()
    };
    let plan = p.plan(
        vec![
            leakage("d1", 1042),
            leakage("d1", 1043),
            leakage("d1", 1043),
            // Another device's same seq is not a resend.
            leakage("d2", 1043),
        ],
        &lookups,
        T0,
    );
    assert_eq!(
        plan.acks,
        BTreeMap::from([(dev("d1"), vec![1042, 1043, 1043]), (dev("d2"), vec![1043])])
    );
    let refused: Vec<(usize, Refusal)> = plan
        .refusals
        .iter()
        .map(|r| (r.index, r.refusal.clone()))
        .collect();
    assert_eq!(refused, [(0, Refusal::Duplicate), (2, Refusal::Duplicate)]);
    assert_eq!(
        kinds(&plan),
        ["event", "event", "opened", "opened", "notify", "notify"]
    );
    // The journal already had 1042: the episode it opened is not opened again by its resend
    // in a later batch either.
    let again = p.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0 + S);
    assert_eq!(kinds(&again), ["event"], "merged into the open episode");
}

#[test]
fn refused_messages_are_neither_journaled_nor_acked() {
    let mut p = planner();
    let plan = p.plan(
        vec![
            leakage("ghost", 1),
            leakage("new", 2),
            leakage("old", 3),
            event("d1", r#"{"seq":4,"kind":"#),
            ingest::classify("firegrid/v1/dev/d1/ack", br#"{"seqs":[1],"ts":1}"#),
        ],
        &Lookups::default(),
        T0,
    );
    let refused: Vec<(usize, Option<&str>, &str)> = plan
        .refusals
        .iter()
        .map(|r| {
            (
                r.index,
                r.device.as_ref().map(DeviceId::as_str),
                r.refusal.reason(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (0, Some("ghost"), "unknown_device"),
            (1, Some("new"), "not_commissioned"),
            (2, Some("old"), "decommissioned"),
            (3, Some("d1"), "decode_json"),
            (4, Some("d1"), "not_uplink"),
        ]
    );
    assert!(plan.journal.is_empty() && plan.acks.is_empty() && plan.alerts.is_empty());
    assert!(!plan.changes_episodes());
}

#[test]
fn telemetry_becomes_samples_and_an_alarm_only_after_its_delay() {
    let mut p = planner();
    let reading = |seq: u32, ma: u32| {
        ingest::classify(
            "firegrid/v1/dev/d1/telemetry",
            format!(r#"{{"seq":{seq},"up_ms":1200,"readings":[{{"ch":0,"residual_ma":{ma}}}]}}"#)
                .as_bytes(),
        )
    };
    let plan = p.plan(vec![reading(7, 350)], &Lookups::default(), T0);
    assert_eq!(plan.samples.len(), 1);
    assert_eq!(
        plan.samples[0].ts_ms, T0,
        "no device clock: the arrival time"
    );
    assert!(plan.journal.is_empty() && plan.acks.is_empty());
    // The channel's delay is 10 s: the tick at its end opens a gateway-detected episode.
    assert_eq!(p.next_deadline(), Some(T0 + 10 * S));
    let tick = p.tick(T0 + 10 * S);
    assert_eq!(kinds(&tick), ["opened", "notify"]);
    assert_eq!(tick.alerts[0].alert.source, Source::Gateway);
    assert_eq!(tick.alerts[0].alert.value, Some(350));
    // A higher reading is a new peak: journaled, no alert; the ended alert carries it.
    let peak = p.plan(vec![reading(8, 480)], &Lookups::default(), T0 + 11 * S);
    assert_eq!(kinds(&peak), ["peak"]);
    let low = p.plan(vec![reading(9, 100)], &Lookups::default(), T0 + 12 * S);
    assert!(low.journal.is_empty());
    let ended = p.tick(T0 + 42 * S);
    assert_eq!(kinds(&ended), ["ended", "notify"]);
    let a = &ended.alerts[0].alert;
    assert_eq!(
        (a.what, a.value, a.started_ms),
        (AlertKind::Ended, Some(480), T0 + 10 * S)
    );
}

#[test]
fn an_episode_opened_and_ended_in_one_batch_sends_both_alerts() {
    let mut p = planner();
    p.set_webhooks(vec!["https://alerts.example/hook".into()]);
    let plan = p.plan(
        vec![leakage("d1", 1043), leakage_cleared("d1", 1044)],
        &Lookups::default(),
        T0,
    );
    assert_eq!(
        kinds(&plan),
        [
            "event", "event", "opened", "ended", "notify", "notify", "notify", "notify"
        ]
    );
    let what: Vec<(AlertKind, NotifyChannel)> = plan
        .alerts
        .iter()
        .map(|o| (o.alert.what, o.channel))
        .collect();
    assert_eq!(
        what,
        [
            (AlertKind::Opened, NotifyChannel::Mqtt),
            (AlertKind::Opened, NotifyChannel::Webhook),
            (AlertKind::Ended, NotifyChannel::Mqtt),
            (AlertKind::Ended, NotifyChannel::Webhook),
        ]
    );
    // Only the opened alert's MQTT message goes out before the commit.
    let early: Vec<bool> = plan.alerts.iter().map(|o| o.early).collect();
    assert_eq!(early, [true, false, false, false]);
    let ids: HashSet<u64> = plan.alerts.iter().map(|o| o.alert.alert_id).collect();
    assert_eq!(ids.len(), 4, "one id per alert and channel");
    let (opened, ended) = (&plan.alerts[0].alert, &plan.alerts[2].alert);
    assert_eq!(
        (ended.episode, ended.started_ms, ended.value, &ended.area),
        (
            opened.episode,
            opened.started_ms,
            opened.value,
            &opened.area
        )
    );
    assert_eq!(plan.acks[&dev("d1")], [1043, 1044]);
}

#[test]
fn escalation_climbs_the_area_tree_to_its_top_until_acknowledged() {
    let mut p = planner();
    let open = p.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0);
    assert_eq!(alerts(&open), [(AlertKind::Opened, 0, "grid-7".into())]);
    assert!(p.tick(T0 + 119 * S).journal.is_empty(), "not yet");
    let first = p.tick(T0 + 120 * S);
    assert_eq!(kinds(&first), ["escalated", "notify"]);
    assert_eq!(
        alerts(&first),
        [(AlertKind::Escalated, 1, "street-1".into())]
    );
    assert_eq!(first.alerts[0].target, "firegrid/v1/alert/street-1");
    // Ended, an alarm still escalates until a person acknowledges it.
    let ended = p.plan(
        vec![leakage_cleared("d1", 1044)],
        &Lookups::default(),
        T0 + 200 * S,
    );
    assert_eq!(alerts(&ended), [(AlertKind::Ended, 0, "grid-7".into())]);
    // (Both devices have gone offline meanwhile: only the alarm's alerts are looked at.)
    let second = p.tick(T0 + 600 * S);
    let alarm = open.alerts[0].alert.episode;
    assert_eq!(
        alerts_of(&second, alarm),
        [(AlertKind::Escalated, 2, "district-1".into())]
    );
    // The hierarchy has no fourth level: the top again.
    let third = p.tick(T0 + 1800 * S);
    assert_eq!(
        alerts_of(&third, alarm),
        [(AlertKind::Escalated, 3, "district-1".into())]
    );

    let mut q = planner();
    q.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0);
    let ack = q.input(Input::Acknowledged(alarm), T0 + 60 * S);
    assert!(ack.journal.is_empty());
    assert!(
        alerts_of(&q.tick(T0 + 3600 * S), alarm).is_empty(),
        "acknowledged: no escalation"
    );
    // An acknowledged episode that ended is forgotten.
    let ended = q.plan(
        vec![leakage_cleared("d1", 1044)],
        &Lookups::default(),
        T0 + 3601 * S,
    );
    assert_eq!(
        alerts_of(&ended, 1),
        [(AlertKind::Ended, 0, "grid-7".into())]
    );
    assert!(!q.engine().holds(1) && !q.episodes.contains_key(&1));
}

#[test]
fn alerts_of_an_episode_from_the_journal_describe_it_as_journaled() {
    let fault = Episode {
        id: 41,
        key: EpisodeKey {
            device: dev("d2"),
            channel: Some(3),
            category: Category::Fault,
        },
        grid: grid("grid-7"),
        source: Source::Device,
        started_ms: T0 - 3600 * S,
        ended_ms: None,
        peak: None,
        detail: Some("lead_open".into()),
        ticket: TicketState::Raised,
        escalation: 1,
    };
    let mut p = planner_with(vec![fault]);
    let cleared = event(
        "d2",
        r#"{"seq":1046,"up_ms":86463000,"kind":"fault_cleared","ch":3,"cause":"lead_open"}"#,
    );
    let plan = p.plan(vec![cleared], &Lookups::default(), T0);
    let [o] = &plan.alerts[..] else {
        panic!("one alert: {:?}", plan.alerts);
    };
    let a = &o.alert;
    assert_eq!(
        (
            a.what,
            a.episode,
            a.started_ms,
            a.detail.as_deref(),
            a.sent_ms
        ),
        (AlertKind::Ended, 41, T0 - 3600 * S, Some("lead_open"), T0)
    );
    // A fault needs no person after its end: forgotten with it.
    assert!(p.episodes.is_empty());
    // The engine's own episodes are numbered after the journal's (an event's are derived).
    let offline = p.tick(T0 + 3600 * S);
    assert_eq!(offline.opened, [Category::Offline, Category::Offline]);
    let mut ids: Vec<EpisodeId> = offline.alerts.iter().map(|o| o.alert.episode).collect();
    ids.sort_unstable();
    assert_eq!(ids, [42, 43]);
    // Opened by the gateway, they go out after their commit.
    assert!(offline.alerts.iter().all(|o| !o.early));
}

#[test]
fn an_event_opens_its_episode_under_the_first_derived_id_not_taken() {
    let mut p = planner();
    let derived = |attempt| derived_episode_id(&dev("d1"), 1043, attempt);
    assert!(derived(0) >= crate::model::DERIVED_EPISODE_IDS && derived(0) < 1 << 53);
    assert_ne!(derived(0), derived(1));
    assert_ne!(derived(0), derived_episode_id(&dev("d1"), 1044, 0));
    assert_ne!(derived(0), derived_episode_id(&dev("d2"), 1043, 0));
    // The journal holds the first derivation (another device's episode, in theory): the
    // next is taken, the same one whichever planner plans it.
    let lookups = Lookups {
        taken_episodes: HashSet::from([derived(0)]),
        ..Lookups::default()
    };
    let plan = p.plan(vec![leakage("d1", 1043)], &lookups, T0);
    assert_eq!(plan.alerts[0].alert.episode, derived(1));
    assert!(plan.alerts[0].early);
    let again = planner().plan(vec![leakage("d1", 1043)], &lookups, T0 + S);
    assert_eq!(again.alerts[0].alert.episode, derived(1));
    assert_eq!(
        again.alerts[0].alert.alert_id,
        plan.alerts[0].alert.alert_id
    );
    // Every derivation taken: the engine's next id, and the alert waits for its commit.
    let lookups = Lookups {
        taken_episodes: (0..3).map(derived).collect(),
        ..Lookups::default()
    };
    let plan = planner().plan(vec![leakage("d1", 1043)], &lookups, T0);
    assert_eq!(plan.alerts[0].alert.episode, 1);
    assert!(!plan.alerts[0].early);
    // What to look up for a batch: each event's derivations.
    assert_eq!(
        Lookups::episode_ids(&[(dev("d1"), 1043)]),
        [derived(0), derived(1), derived(2)]
    );
}

/// Why the shell rebuilds the planner when a journal write fails: planning changed the
/// engine, so a resend planned by the same planner merges into an episode the journal never
/// got (no episode row, no alert: the alarm would be lost). Planned by a planner built from
/// the journal, the resend opens it again — one episode, one alert, under the same id.
#[test]
fn a_failed_commit_is_planned_again_by_a_planner_from_the_journal() {
    let mut p = planner();
    let failed = p.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0);
    assert!(failed.changes_episodes());
    // The journal write failed: nothing was acknowledged, the device sends 1043 again.
    let stale = p.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0 + S);
    assert_eq!(
        kinds(&stale),
        ["event"],
        "the in-memory episode swallows the resend"
    );

    // The shell's rebuild: the journal holds neither the event nor the episode.
    let mut rebuilt = planner();
    let again = rebuilt.plan(vec![leakage("d1", 1043)], &Lookups::default(), T0 + S);
    assert_eq!(kinds(&again), ["event", "opened", "notify"]);
    assert_eq!(again.alerts.len(), 1);
    assert_eq!(
        again.alerts[0].alert.episode,
        failed.alerts[0].alert.episode
    );
    assert_eq!(again.acks, failed.acks);
}

#[test]
fn an_offline_device_is_raised_by_a_tick_and_ended_by_its_next_message() {
    let mut p = planner();
    // Heartbeat 60 s, factor 3: silent since T0, offline at T0 + 180 s.
    let tick = p.tick(T0 + 180 * S);
    let mut offline: Vec<(&str, Category)> = tick
        .alerts
        .iter()
        .map(|o| (o.alert.device.as_str(), o.alert.category))
        .collect();
    offline.sort_unstable();
    assert_eq!(
        offline,
        [("d1", Category::Offline), ("d2", Category::Offline)]
    );
    let online = ingest::classify(
        "firegrid/v1/dev/d1/status",
        br#"{"state":"online","seq":1046,"up_ms":86520000,"firmware":"0.1.0","report_interval_s":60,"heartbeat_interval_s":60,"config_version":3,"dropped_telemetry":0}"#,
    );
    let back = p.plan(vec![online], &Lookups::default(), T0 + 200 * S);
    assert_eq!(kinds(&back), ["ended", "notify"]);
    assert_eq!(back.alerts[0].alert.category, Category::Offline);
    assert!(
        back.acks.is_empty(),
        "a status is not acknowledged end to end"
    );
}

#[test]
fn dropped_telemetry_is_counted_once_per_status() {
    let mut p = planner();
    let status = |seq: u32, dropped: u32| {
        ingest::classify(
            "firegrid/v1/dev/d1/status",
            format!(
                r#"{{"state":"online","seq":{seq},"up_ms":5,"firmware":"0.1.0","report_interval_s":60,"heartbeat_interval_s":60,"config_version":1,"dropped_telemetry":{dropped}}}"#
            )
            .as_bytes(),
        )
    };
    let plan = p.plan(vec![status(10, 5)], &Lookups::default(), T0);
    assert_eq!(plan.dropped_telemetry, 5);
    // The retained status again (the gateway reconnected), and an older one: not counted.
    let plan = p.plan(
        vec![status(10, 5), status(9, 3)],
        &Lookups::default(),
        T0 + S,
    );
    assert_eq!(plan.dropped_telemetry, 0);
    let plan = p.plan(vec![status(11, 2)], &Lookups::default(), T0 + 2 * S);
    assert_eq!(plan.dropped_telemetry, 2);
}

#[test]
fn a_commissioned_devices_alarm_is_its_installers_test_and_never_escalates() {
    let mut p = planner();
    p.set_webhooks(vec!["https://hooks.example/a".into()]);
    // d2 is commissioned, d1 in service: the same alarm at the same time.
    let plan = p.plan(
        vec![leakage("d2", 7), leakage("d1", 8)],
        &Lookups::default(),
        T0,
    );
    let of = |d: &str| -> Vec<(bool, String)> {
        plan.alerts
            .iter()
            .filter(|o| o.alert.device == d)
            .map(|o| (o.alert.test, o.target.clone()))
            .collect()
    };
    // The test alert: one, on the device's commissioning topic (the people fan-out sends it to
    // the installer alone), not on the cell's alert topic, not to the webhooks.
    assert_eq!(
        of("d2"),
        [(true, "firegrid/v1/commissioning/d2".to_owned())]
    );
    assert_eq!(
        of("d1"),
        [
            (false, "firegrid/v1/alert/grid-7".to_owned()),
            (false, "https://hooks.example/a".to_owned())
        ]
    );
    assert_eq!(p.audience_of("d2"), Audience::Installer);
    // Past every escalation step: d1's episode escalates, d2's never.
    let tick = p.tick(T0 + 1800 * S);
    let escalated: Vec<String> = tick
        .alerts
        .iter()
        .filter(|o| o.alert.what == AlertKind::Escalated)
        .map(|o| o.alert.device.clone())
        .collect();
    assert!(escalated.iter().all(|d| d == "d1"), "{escalated:?}");
    assert!(!escalated.is_empty(), "d1 escalates");
    assert!(
        !tick.journal.iter().any(|op| matches!(
            op,
            JournalOp::Engine { output: Output::Escalated { id, .. }, .. } if *id == 1
        )),
        "d2's episode (the first opened) is not journaled as escalated"
    );
    // Nor does the rectify deadline escalate it.
    let e = Episode {
        id: 1,
        key: EpisodeKey {
            device: dev("d2"),
            channel: Some(0),
            category: Category::Alarm,
        },
        grid: grid("grid-7"),
        source: Source::Device,
        started_ms: T0,
        ended_ms: None,
        peak: None,
        detail: None,
        ticket: TicketState::Acknowledged,
        escalation: 0,
    };
    assert!(p.overdue(&e, 1, T0 + 3600 * S).journal.is_empty());
}

#[test]
fn statuses_are_coalesced_per_device_and_batch() {
    let mut p = planner();
    let status = ingest::classify(
        "firegrid/v1/dev/d1/status",
        br#"{"state":"online","seq":20,"up_ms":5,"firmware":"0.2.1","signal_dbm":-71,"battery_mv":2950,"report_interval_s":60,"heartbeat_interval_s":60,"config_version":3,"dropped_telemetry":0}"#,
    );
    let plan = p.plan(
        vec![leakage("d1", 21), status, leakage_cleared("d1", 22)],
        &Lookups::default(),
        T0,
    );
    assert_eq!(plan.statuses.len(), 1);
    let s = &plan.statuses[&dev("d1")];
    assert_eq!((s.seen_ms, s.online), (T0, Some(true)));
    let h = s.heartbeat.as_ref().expect("the heartbeat");
    assert_eq!(
        (
            h.firmware.as_str(),
            h.signal_dbm,
            h.battery_mv,
            h.config_version
        ),
        ("0.2.1", Some(-71), Some(2950), 3)
    );
    // A refused message (unknown device) says nothing of a status.
    let plan = p.plan(vec![leakage("stranger", 1)], &Lookups::default(), T0 + S);
    assert!(plan.statuses.is_empty());
}

#[test]
fn a_test_alarm_still_open_when_the_device_goes_in_service_is_announced_to_the_workers() {
    let mut p = planner();
    p.plan(vec![leakage("d2", 7)], &Lookups::default(), T0);
    // Nothing to announce while it is still commissioned.
    assert!(p.announce_in_service(&dev("d2"), T0 + S).alerts.is_empty());
    let mut d = crate::store::Device {
        id: dev("d2"),
        fields: crate::store::DeviceFields {
            kind: crate::model::DeviceKind::ElectricalFireMonitor,
            state: DeviceState::InService,
            site_id: None,
            room_id: None,
            circuit_id: None,
            grid_id: Some(grid("grid-7")),
            config: firegrid_protocols::message::Config {
                version: 1,
                report_interval_s: 60,
                heartbeat_interval_s: 60,
                buzzer: true,
                relay_trip: false,
                channels: heapless::Vec::new(),
            },
            encoding: WireEncoding::Json,
            credential_hash: None,
        },
        created_ms: T0,
        updated_ms: T0,
    };
    p.set_known(&dev("d2"), Some(&d));
    let plan = p.announce_in_service(&dev("d2"), T0 + 2 * S);
    let got: Vec<(AlertKind, bool, String)> = plan
        .alerts
        .iter()
        .map(|o| (o.alert.what, o.alert.test, o.target.clone()))
        .collect();
    assert_eq!(
        got,
        [(
            AlertKind::Opened,
            false,
            "firegrid/v1/alert/grid-7".to_owned()
        )]
    );
    assert_eq!(kinds(&plan), ["notify"]);
    // An ended one is not announced.
    p.plan(
        vec![leakage_cleared("d2", 8)],
        &Lookups::default(),
        T0 + 3 * S,
    );
    d.fields.state = DeviceState::InService;
    assert!(
        p.announce_in_service(&dev("d2"), T0 + 4 * S)
            .alerts
            .is_empty()
    );
}
