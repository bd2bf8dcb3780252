use firegrid_protocols::GridId;
use firegrid_protocols::channel::Quantity;

use super::*;
use crate::model::Source;
use crate::store::{Record, WorkerFields};

fn alert(area: &str, what: AlertKind, level: u8) -> Alert {
    Alert {
        alert_id: 77,
        episode: 12,
        what,
        category: Category::Alarm,
        device: "hz-0042".into(),
        channel: Some(0),
        area: GridId::new(area).unwrap(),
        level,
        source: Source::Device,
        started_ms: 1_000,
        quantity: Some(Quantity::ResidualCurrent),
        value: Some(412),
        threshold: Some(300),
        detail: None,
        sent_ms: 1_004,
        reason: None,
        test: false,
    }
}

fn worker(id: i64, area: &str, topic: Option<&str>, hook: Option<(&str, WebhookFormat)>) -> Worker {
    Record {
        id,
        fields: WorkerFields {
            name: format!("w{id}"),
            area_id: GridId::new(area).unwrap(),
            phone: Some(format!("1380000000{id}")),
            mqtt_topic: topic.map(str::to_owned),
            webhook_url: hook.map(|h| h.0.to_owned()),
            webhook_format: hook.map_or(WebhookFormat::Json, |h| h.1),
            webhook_secret: None,
        },
        created_ms: 0,
        updated_ms: 0,
    }
}

fn place() -> Place {
    Place {
        site: Some("Lane 5 rentals".into()),
        address: Some("杭州市拱墅区和睦路5号".into()),
        room: Some("3-302".into()),
        circuit: Some("3F lighting".into()),
        owner_name: Some("王房东".into()),
        owner_phone: Some("13900001111".into()),
        device_kind: Some(DeviceKind::ElectricalFireMonitor),
        tenant_name: Some("赵租客".into()),
        tenant_phone: Some("13700002222".into()),
    }
}

#[test]
fn each_worker_of_the_area_gets_one_delivery_per_channel_and_no_one_else() {
    let settings = PeopleSettings {
        public_url: "https://fg.example/".into(),
        sms_url: "https://sms.example/send".into(),
        owner_categories: Vec::new(),
        ..PeopleSettings::default()
    };
    let workers = [
        worker(
            1,
            "cell-a",
            Some("firegrid/v1/people/cell-a/1"),
            Some(("https://oapi.example/robot?t=x", WebhookFormat::Dingtalk)),
        ),
        worker(
            2,
            "cell-a",
            None,
            Some(("https://qyapi.example/hook?key=k", WebhookFormat::Wecom)),
        ),
        worker(3, "cell-b", Some("firegrid/v1/people/cell-b/3"), None),
    ];
    let out = fan_out(
        5,
        &alert("cell-a", AlertKind::Opened, 0),
        &place(),
        &workers,
        None,
        &settings,
        9,
    );
    let got: Vec<(i64, PersonChannel, WebhookFormat)> = out
        .iter()
        .map(|d| (d.worker_id, d.channel, d.format))
        .collect();
    assert_eq!(
        got,
        [
            (1, PersonChannel::Mqtt, WebhookFormat::Json),
            (1, PersonChannel::Webhook, WebhookFormat::Dingtalk),
            (1, PersonChannel::Sms, WebhookFormat::Json),
            (2, PersonChannel::Webhook, WebhookFormat::Wecom),
            (2, PersonChannel::Sms, WebhookFormat::Json),
        ]
    );
    assert!(
        out.iter()
            .all(|d| d.notification_id == 5 && d.episode_id == 12 && d.next_attempt_ms == 9)
    );

    let mqtt: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(mqtt["alert"]["alert_id"], 77);
    assert_eq!(mqtt["worker"]["id"], 1);
    assert_eq!(mqtt["place"]["room"], "3-302");
    assert_eq!(mqtt["place"]["owner_phone"], "13900001111");
    assert_eq!(mqtt["place"]["device_kind"], "electrical_fire_monitor");
    assert_eq!(mqtt["link"], "https://fg.example/episodes/12");
    assert!(mqtt["action"]["zh-CN"].as_str().unwrap().contains("断开"));

    let ding: serde_json::Value = serde_json::from_str(&out[1].body).unwrap();
    assert_eq!(ding["msgtype"], "text");
    assert_eq!(ding["at"]["atMobiles"][0], "13800000001");
    let content = ding["text"]["content"].as_str().unwrap();
    for needle in [
        "杭州市拱墅区和睦路5号",
        "3-302",
        "3F lighting",
        "13900001111",
        "412 mA",
        "300 mA",
        "https://fg.example/episodes/12",
    ] {
        assert!(content.contains(needle), "{needle} missing from {content}");
    }
    let wecom: serde_json::Value = serde_json::from_str(&out[3].body).unwrap();
    assert_eq!(wecom["text"]["mentioned_mobile_list"][0], "13800000002");
    let sms: serde_json::Value = serde_json::from_str(&out[2].body).unwrap();
    assert_eq!(sms["phone"], "13800000001");
    assert_eq!(sms["text"], content);
}

#[test]
fn an_escalation_goes_to_the_workers_of_the_area_it_reached() {
    let workers = [
        worker(1, "cell-a", Some("t/a"), None),
        worker(4, "street-1", Some("t/s"), None),
    ];
    let tree = tree_topic(["d", "street-1"]);
    assert_eq!(tree, "firegrid/v1/area/d/street-1");
    let out = fan_out(
        6,
        &alert("street-1", AlertKind::Escalated, 2),
        &Place::default(),
        &workers,
        Some(&tree),
        &PeopleSettings::default(),
        0,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].worker_id, out[0].target.as_str()),
        (TREE, "firegrid/v1/area/d/street-1")
    );
    let plain: Alert = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(
        plain,
        alert("street-1", AlertKind::Escalated, 2),
        "the tree topic carries the plain alert"
    );
    let out = &out[1..];
    assert_eq!(out[0].worker_id, 4);
    assert_eq!(out[0].kind, AlertKind::Escalated);
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert!(body["text"].as_str().unwrap().contains("level 2"), "{body}");
    assert!(body.get("link").is_none(), "no public_url, no link");
    let mut overdue = alert("street-1", AlertKind::Escalated, 2);
    overdue.reason = Some(crate::notify::alert::EscalationReason::RectifyOverdue);
    let t = text(&overdue, &Place::default(), None);
    assert!(
        t.contains("not rectified in time, escalated to level 2"),
        "{t}"
    );
}

#[test]
fn text_of_a_temperature_alarm_and_an_ended_alert() {
    let mut a = alert("cell-a", AlertKind::Opened, 0);
    a.quantity = Some(Quantity::Temperature);
    a.value = Some(853);
    a.threshold = Some(800);
    let t = text(&a, &place(), None);
    assert!(t.contains("85.3 °C") && t.contains("80.0 °C"), "{t}");
    assert!(
        t.starts_with("【火警网格】电气火灾报警 / Electrical fire alarm"),
        "{t}"
    );
    a.what = AlertKind::Ended;
    let t = text(&a, &Place::default(), None);
    assert!(t.contains("ended") && !t.contains("First"), "{t}");
    assert!(t.contains("Where: ?"), "an unknown place says so: {t}");
}

#[test]
fn every_category_has_a_first_action_in_both_languages() {
    for c in Category::ALL {
        let (zh, en) = first_action(c);
        assert!(
            !zh.is_empty() && zh.chars().any(|ch| ch > '\u{2e80}'),
            "{c:?}"
        );
        assert!(en.is_ascii() && !en.is_empty(), "{c:?}");
    }
}

#[test]
fn the_owner_is_told_of_an_opening_of_the_configured_categories_only() {
    let mut settings = PeopleSettings {
        public_url: "https://fg.example".into(),
        sms_url: "https://sms.example/send".into(),
        owner_categories: vec![Category::Alarm],
        ..PeopleSettings::default()
    };
    let out = fan_out(
        5,
        &alert("cell-a", AlertKind::Opened, 0),
        &place(),
        &[],
        None,
        &settings,
        0,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].worker_id, out[0].channel),
        (OWNER, PersonChannel::Sms)
    );
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(body["phone"], "13900001111");
    assert!(
        body["alert"].get("link").is_none(),
        "no link to the gateway for the owner"
    );
    // Not of an escalation or an end, nor of another category, nor without an SMS gateway.
    for what in [AlertKind::Escalated, AlertKind::Ended] {
        assert!(
            fan_out(
                5,
                &alert("cell-a", what, 1),
                &place(),
                &[],
                None,
                &settings,
                0
            )
            .is_empty()
        );
    }
    settings.owner_categories = vec![Category::Smoke];
    assert!(
        fan_out(
            5,
            &alert("cell-a", AlertKind::Opened, 0),
            &place(),
            &[],
            None,
            &settings,
            0
        )
        .is_empty()
    );
    settings.owner_categories = vec![Category::Alarm];
    settings.sms_url.clear();
    assert!(
        fan_out(
            5,
            &alert("cell-a", AlertKind::Opened, 0),
            &place(),
            &[],
            None,
            &settings,
            0
        )
        .is_empty()
    );
}

/// An escalation of an acknowledged ticket reaches the street's workers and the ticket's
/// assignee (a worker of the grid cell), once each; an assignee of the area itself is not sent
/// it twice.
#[test]
fn an_escalation_reaches_the_assignee_as_well_as_the_areas_workers() {
    let settings = PeopleSettings::default();
    let street = worker(4, "street-1", Some("firegrid/v1/people/street-1/4"), None);
    let assignee = worker(1, "cell-a", Some("firegrid/v1/people/cell-a/1"), None);
    let mut overdue = alert("street-1", AlertKind::Escalated, 2);
    overdue.reason = Some(crate::notify::alert::EscalationReason::RectifyOverdue);
    let out = fan_out_with_assignee(
        9,
        &overdue,
        &place(),
        std::slice::from_ref(&street),
        Some(&assignee),
        None,
        &settings,
        5,
    );
    let to: Vec<(i64, &str)> = out
        .iter()
        .map(|d| (d.worker_id, d.target.as_str()))
        .collect();
    assert_eq!(
        to,
        [
            (4, "firegrid/v1/people/street-1/4"),
            (1, "firegrid/v1/people/cell-a/1")
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&out[1].body).unwrap();
    assert_eq!(body["worker"]["id"], 1);
    assert_eq!(body["alert"]["reason"], "rectify_overdue");
    // The assignee is one of the area's workers: one delivery, not two.
    let out = fan_out_with_assignee(
        9,
        &overdue,
        &place(),
        std::slice::from_ref(&street),
        Some(&street),
        None,
        &settings,
        5,
    );
    assert_eq!(out.len(), 1);
    // Without an assignee, as fan_out.
    assert_eq!(
        fan_out_with_assignee(
            9,
            &overdue,
            &place(),
            std::slice::from_ref(&street),
            None,
            None,
            &settings,
            5
        ),
        fan_out(9, &overdue, &place(), &[street], None, &settings, 5)
    );
}

/// `[people.templates]`: a configured first action and message text replace the built-in ones
/// (placeholders filled per recipient); unset kinds keep the built-in text with the configured
/// first action.
#[test]
fn configured_templates_and_first_actions_are_what_people_get() {
    let mut settings = PeopleSettings::default();
    settings
        .templates
        .zh_cn
        .first_action
        .insert(Category::Alarm, "先拉闸，再查线".into());
    settings.templates.zh_cn.text.insert(
        AlertKind::Opened,
        "{recipient}您好：{address}{room}发生{category}，{measured}。请{first_action}".into(),
    );
    let w = worker(1, "cell-a", Some("firegrid/v1/people/cell-a/1"), None);
    let out = fan_out(
        5,
        &alert("cell-a", AlertKind::Opened, 0),
        &place(),
        std::slice::from_ref(&w),
        None,
        &settings,
        7,
    );
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(
        body["text"],
        "w1您好：杭州市拱墅区和睦路5号3-302发生电气火灾报警，剩余电流 412 mA ≥ 设定值 300 mA。请先拉闸，再查线"
    );
    assert_eq!(body["action"]["zh-CN"], "先拉闸，再查线");
    // An escalation has no template here: the built-in text, with the configured action.
    let out = fan_out(
        6,
        &alert("cell-a", AlertKind::Escalated, 1),
        &place(),
        std::slice::from_ref(&w),
        None,
        &settings,
        7,
    );
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("【火警网格】"), "{text}");
    assert!(
        text.contains("处置 First: 先拉闸，再查线\n")
            || text.ends_with("处置 First: 先拉闸，再查线"),
        "{text}"
    );
}

/// `[people.templates.en]`: an English template is rendered in English (its placeholders
/// too) after the Chinese one; each language's first action goes to its own field.
#[test]
fn english_templates_follow_the_chinese_in_their_own_language() {
    let mut settings = PeopleSettings::default();
    let t = &mut settings.templates;
    t.zh_cn
        .first_action
        .insert(Category::Alarm, "先拉闸".into());
    t.en.first_action
        .insert(Category::Alarm, "switch it off first".into());
    t.zh_cn.text.insert(
        AlertKind::Opened,
        "{recipient}：{category}，{measured}，请{first_action}".into(),
    );
    t.en.text.insert(
        AlertKind::Opened,
        "{recipient}: {category} {what}, {measured}; {first_action}".into(),
    );
    let w = worker(1, "cell-a", Some("firegrid/v1/people/cell-a/1"), None);
    let out = fan_out(
        5,
        &alert("cell-a", AlertKind::Opened, 0),
        &place(),
        std::slice::from_ref(&w),
        None,
        &settings,
        7,
    );
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(
        body["text"],
        "w1：电气火灾报警，剩余电流 412 mA ≥ 设定值 300 mA，请先拉闸\n\n\
         w1: Electrical fire alarm opened, residual current 412 mA against set-point 300 mA; \
         switch it off first"
    );
    assert_eq!(body["action"]["zh-CN"], "先拉闸");
    assert_eq!(body["action"]["en"], "switch it off first");
    // Only an English first action: the Chinese one stays built in.
    settings.templates.zh_cn.first_action.clear();
    let (zh, en) = action_of(&settings, Category::Alarm);
    assert_eq!(
        (zh, en),
        (first_action(Category::Alarm).0, "switch it off first")
    );
}

/// A room's tenant is told of an opening of their categories by SMS, through the same template
/// as anyone (`{recipient}` is their name); not of other categories, nor of escalations.
#[test]
fn the_tenant_is_told_like_the_owner_through_the_same_templates() {
    let mut settings = PeopleSettings {
        sms_url: "https://sms.example/send".into(),
        tenant_categories: vec![Category::Alarm],
        ..PeopleSettings::default()
    };
    settings.templates.zh_cn.text.insert(
        AlertKind::Opened,
        "{recipient}：{room}{category}，请{first_action}".into(),
    );
    let out = fan_out(
        5,
        &alert("cell-a", AlertKind::Opened, 0),
        &place(),
        &[],
        None,
        &settings,
        7,
    );
    assert_eq!(
        out.len(),
        1,
        "the tenant only (the owner's categories are empty)"
    );
    assert_eq!(out[0].worker_id, TENANT);
    let body: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
    assert_eq!(body["phone"], "13700002222");
    assert_eq!(
        body["text"],
        "赵租客：3-302电气火灾报警，请立即到场，断开该回路电源，检查线路和用电设备，禁止带电作业。"
    );
    assert!(body["alert"].get("link").is_none());
    let mut smoke = alert("cell-a", AlertKind::Opened, 0);
    smoke.category = Category::Smoke;
    assert!(fan_out(5, &smoke, &place(), &[], None, &settings, 7).is_empty());
    assert!(
        fan_out(
            5,
            &alert("cell-a", AlertKind::Escalated, 1),
            &place(),
            &[],
            None,
            &settings,
            7
        )
        .is_empty()
    );
}
