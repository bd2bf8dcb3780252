//! Alerts to people: what each worker responsible for an alert's area receives, on which of
//! their channels, in which shape. Pure: the dispatcher ([`super::dispatch`]) reads the alert,
//! the place and the workers, this decides the deliveries, and the sender sends them.
//!
//! Every alert of the outbox (an episode `opened`, `escalated` to the area `level` steps above
//! the grid cell, or `ended`) goes to each worker whose area **is** the alert's area (the grid
//! cell's workers at level 0, the community's at level 1, and so on), once per channel they
//! have:
//!
//! | Worker field | Channel | What is sent |
//! | --- | --- | --- |
//! | `mqtt_topic` | MQTT, QoS 1, on that topic | the [`PersonAlert`] JSON |
//! | `webhook_url`, `webhook_format = "json"` | HTTP POST, timestamped and signed like `[[webhooks]]` | the [`PersonAlert`] JSON |
//! | `webhook_url`, `webhook_format = "dingtalk"` | HTTP POST to a DingTalk group robot | `{"msgtype":"text","text":{"content":…},"at":{"atMobiles":[phone],"isAtAll":false}}` |
//! | `webhook_url`, `webhook_format = "wecom"` | HTTP POST to a WeCom group robot | `{"msgtype":"text","text":{"content":…,"mentioned_mobile_list":[phone]}}` |
//! | `phone`, with `[people] sms_url` set | HTTP POST to the SMS gateway, signed | `{"phone":…,"text":…,"alert":{PersonAlert}}` |
//!
//! A site's landlord or owner (`owner_phone`) is also told by SMS of an `opened` alert of the
//! categories in `[people] owner_sms` (pseudo-worker [`OWNER`], without the episode link).
//!
//! The text says where to go and what to do first, in Chinese then English ([`text`]). A worker
//! without `mqtt_topic` follows the area's alert topic (`firegrid/v1/alert/{area}`) instead.
//! With the managed broker, a person's token reads `firegrid/v1/people/{area}/#` for each area
//! of their subtree: give workers topics there (e.g. `firegrid/v1/people/{area}/{worker id}`).
//!
//! Each alert is also published, as the plain alert JSON, on its **area tree topic**
//! ([`tree_topic`]): `firegrid/v1/area/` and the area ids from the root down to the area it was
//! sent to, e.g. `firegrid/v1/area/gongshu/heshun/hm-1/gongshu-07`; a street follows everything
//! below it with `firegrid/v1/area/gongshu/heshun/#` (its own escalations included, `#`
//! matching the parent level too). It is a delivery like the others, of the pseudo-worker 0.

use serde::Serialize;

use firegrid_protocols::GridId;
use firegrid_protocols::channel::Quantity;

use crate::model::{Category, DeviceKind, EpisodeId, UnixMs};
use crate::notify::alert::{Alert, AlertKind};
use crate::store::{WebhookFormat, Worker, WorkerId};

/// Where an alert's device is: what a person needs to get there and get in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The site's name.
    pub site: Option<String>,
    /// The site's street address.
    pub address: Option<String>,
    /// The room.
    pub room: Option<String>,
    /// The circuit the device watches.
    pub circuit: Option<String>,
    /// The landlord or owner.
    pub owner_name: Option<String>,
    /// Their phone.
    pub owner_phone: Option<String>,
    /// What kind of device raised it.
    pub device_kind: Option<DeviceKind>,
    /// The room's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// Their phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_phone: Option<String>,
}

/// What to do first, per category: Chinese, English.
pub const fn first_action(category: Category) -> (&'static str, &'static str) {
    match category {
        Category::Alarm => (
            "立即到场，断开该回路电源，检查线路和用电设备，禁止带电作业。",
            "Go now: switch the circuit off, then check its wiring and appliances; never work live.",
        ),
        Category::Smoke => (
            "立即到场确认是否起火；有明火立即拨打119并组织人员疏散。",
            "Go now and check for fire; if there is fire, call 119 and get everyone out.",
        ),
        Category::Fault => (
            "检查探测器接线（开路或短路），修复后复位设备。",
            "Check the sensor's leads (open or short circuit), repair them, then reset the device.",
        ),
        Category::Offline => (
            "到场检查设备供电和网络，确认设备是否被断电或拆除。",
            "Check the device's power and network on site; make sure it was not switched off or removed.",
        ),
        Category::BatteryLow => ("尽快更换设备电池。", "Replace the device's battery soon."),
        Category::Tamper => (
            "到场检查设备外壳是否被打开或设备被拆除。",
            "Check on site whether the device was opened or removed.",
        ),
    }
}

/// What a person alert carries besides the alert: who it is for, where, what to do, the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonAlert {
    /// The alert, as on every channel (`alert_id` stable across retries: with `worker.id`, the
    /// key a receiver deduplicates by).
    pub alert: Alert,
    /// The worker it is for.
    pub worker: WorkerRef,
    /// Where to go.
    pub place: Place,
    /// What to do first.
    pub action: Action,
    /// The episode's page (`[people] public_url` + `/episodes/{id}`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The whole message as text (Chinese first, then English), as IM and SMS get it.
    pub text: String,
}

/// The worker a person alert is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRef {
    /// Their id.
    pub id: WorkerId,
    /// Their name.
    pub name: String,
}

/// The first action, in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// Chinese (simplified).
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    /// English.
    pub en: String,
}

/// A person delivery's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonChannel {
    /// Their MQTT topic.
    Mqtt,
    /// Their webhook.
    Webhook,
    /// An SMS through the configured gateway.
    Sms,
}

impl PersonChannel {
    /// The name in the store and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Webhook => "webhook",
            Self::Sms => "sms",
        }
    }

    /// Every channel.
    pub const ALL: [Self; 3] = [Self::Mqtt, Self::Webhook, Self::Sms];
}

/// One delivery to make: the exact bytes to send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The alert's notification id.
    pub notification_id: i64,
    /// The episode.
    pub episode_id: EpisodeId,
    /// Why the alert was sent.
    pub kind: AlertKind,
    /// The area whose worker gets it.
    pub area_id: GridId,
    /// The worker.
    pub worker_id: WorkerId,
    /// The channel.
    pub channel: PersonChannel,
    /// The body's format.
    pub format: WebhookFormat,
    /// The topic or URL.
    pub target: String,
    /// The body (JSON).
    pub body: String,
    /// When to make the first attempt.
    pub next_attempt_ms: UnixMs,
}

/// What the fan-out needs of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleSettings {
    /// The base of episode links (`{public_url}/episodes/{id}`); empty: no link.
    pub public_url: String,
    /// The SMS gateway's URL; empty: no SMS.
    pub sms_url: String,
    /// The categories whose `opened` alerts also go by SMS to the site's landlord or owner.
    pub owner_categories: Vec<Category>,
    /// The categories whose `opened` alerts also go by SMS to the room's tenant.
    pub tenant_categories: Vec<Category>,
    /// Editable texts (`[people.templates]`; empty: built in).
    pub templates: crate::notify::template::Templates,
}

/// The first action of `category` (Chinese, English): each language's configured text, else
/// the built-in one; a Chinese text configured without an English one stands for both.
pub fn action_of(settings: &PeopleSettings, category: Category) -> (&str, &str) {
    let t = &settings.templates;
    let built_in = first_action(category);
    match (
        t.zh_cn.first_action.get(&category),
        t.en.first_action.get(&category),
    ) {
        (Some(zh), Some(en)) => (zh, en),
        (Some(zh), None) => (zh, zh),
        (None, Some(en)) => (built_in.0, en),
        (None, None) => built_in,
    }
}

/// The message for `recipient`: the configured templates of the alert's kind (Chinese, then
/// English, a blank line between, each rendered in its language), else the built-in text
/// ([`text`]) with the configured first action.
pub fn message(
    alert: &Alert,
    place: &Place,
    link: Option<&str>,
    settings: &PeopleSettings,
    recipient: &str,
) -> String {
    use crate::notify::template::{Fields, Lang, render};
    let action = action_of(settings, alert.category);
    let t = &settings.templates;
    let configured = [
        (t.zh_cn.text.get(&alert.what), Lang::ZhCn),
        (t.en.text.get(&alert.what), Lang::En),
    ];
    if configured.iter().all(|(t, _)| t.is_none()) {
        return text_with(alert, place, link, action);
    }
    let measured = match (alert.quantity, alert.value, alert.threshold) {
        (Some(q), Some(v), Some(t)) => {
            let (v, t) = (value_text(q, v), value_text(q, t));
            let (zh, en) = quantity_name(q);
            (
                format!("{zh} {v} ≥ 设定值 {t}"),
                format!("{en} {v} against set-point {t}"),
            )
        }
        _ => (String::new(), String::new()),
    };
    let fields = Fields {
        alert,
        place,
        first_action: action,
        measured: (&measured.0, &measured.1),
        link,
        recipient,
        category: category_name(alert.category),
        device_kind: place.device_kind.map_or(("", ""), kind_name),
    };
    configured
        .iter()
        .filter_map(|(t, lang)| t.map(|t| render(t, &fields, *lang)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The worker id of the area tree topic's deliveries.
pub const TREE: WorkerId = 0;

/// The worker id of the deliveries to a site's landlord or owner.
pub const OWNER: WorkerId = -1;

/// The worker id of the deliveries to a room's tenant.
pub const TENANT: WorkerId = -2;

/// The area tree topic of an area: `firegrid/v1/area/` and the ids from the root down to it
/// (`path`, root first).
pub fn tree_topic<'a>(path: impl IntoIterator<Item = &'a str>) -> String {
    let mut t = String::from("firegrid/v1/area");
    for id in path {
        t.push('/');
        t.push_str(id);
    }
    t
}

/// The deliveries of one alert at `now`: on its area tree topic (`tree`, when the area is in
/// the tree), and to the workers of its area. Workers of other areas are ignored (the caller
/// passes the area's workers; this keeps to the rule whatever it passes).
pub fn fan_out(
    notification_id: i64,
    alert: &Alert,
    place: &Place,
    workers: &[Worker],
    tree: Option<&str>,
    settings: &PeopleSettings,
    now: UnixMs,
) -> Vec<NewDelivery> {
    fan_out_with_assignee(
        notification_id,
        alert,
        place,
        workers,
        None,
        tree,
        settings,
        now,
    )
}

/// [`fan_out`], and the ticket's assignee too, wherever their area: the worker who took the
/// ticket hears of its escalations (an acknowledged ticket not rectified in time, too) and its
/// end, besides the workers of the area it is sent to (once, if they are one of them).
#[allow(clippy::too_many_arguments)] // the alert's context, each part read separately
pub fn fan_out_with_assignee(
    notification_id: i64,
    alert: &Alert,
    place: &Place,
    workers: &[Worker],
    assignee: Option<&Worker>,
    tree: Option<&str>,
    settings: &PeopleSettings,
    now: UnixMs,
) -> Vec<NewDelivery> {
    // A commissioning test's alert is its installer's alone (super::installer).
    if alert.test {
        return Vec::new();
    }
    let link = (!settings.public_url.is_empty()).then(|| {
        format!(
            "{}/episodes/{}",
            settings.public_url.trim_end_matches('/'),
            alert.episode
        )
    });
    let (zh, en) = action_of(settings, alert.category);
    let mut out = Vec::new();
    if let Some(topic) = tree {
        out.push(NewDelivery {
            notification_id,
            episode_id: alert.episode,
            kind: alert.what,
            area_id: alert.area.clone(),
            worker_id: TREE,
            channel: PersonChannel::Mqtt,
            format: WebhookFormat::Json,
            target: topic.to_owned(),
            body: serde_json::to_string(alert).unwrap_or_default(),
            next_attempt_ms: now,
        });
    }
    let of_area = workers.iter().filter(|w| w.fields.area_id == alert.area);
    let extra = assignee.filter(|a| !of_area.clone().any(|w| w.id == a.id));
    for w in of_area.chain(extra) {
        let text = message(alert, place, link.as_deref(), settings, &w.fields.name);
        let person = PersonAlert {
            alert: alert.clone(),
            worker: WorkerRef {
                id: w.id,
                name: w.fields.name.clone(),
            },
            place: place.clone(),
            action: Action {
                zh_cn: zh.to_owned(),
                en: en.to_owned(),
            },
            link: link.clone(),
            text: text.clone(),
        };
        let json = serde_json::to_value(&person).unwrap_or_default();
        let mut push = |channel, format, target: &str, body: serde_json::Value| {
            out.push(NewDelivery {
                notification_id,
                episode_id: alert.episode,
                kind: alert.what,
                area_id: alert.area.clone(),
                worker_id: w.id,
                channel,
                format,
                target: target.to_owned(),
                body: body.to_string(),
                next_attempt_ms: now,
            });
        };
        if let Some(topic) = w.fields.mqtt_topic.as_deref().filter(|t| !t.is_empty()) {
            push(
                PersonChannel::Mqtt,
                WebhookFormat::Json,
                topic,
                json.clone(),
            );
        }
        let phone = w.fields.phone.as_deref().filter(|p| !p.is_empty());
        if let Some(url) = w.fields.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            let format = w.fields.webhook_format;
            let body = robot_body(format, &text, phone, &json);
            push(PersonChannel::Webhook, format, url, body);
        }
        if let Some(phone) = phone
            && !settings.sms_url.is_empty()
        {
            let body = serde_json::json!({ "phone": phone, "text": text, "alert": json });
            push(
                PersonChannel::Sms,
                WebhookFormat::Json,
                &settings.sms_url,
                body,
            );
        }
    }
    // The landlord or owner, and the room's tenant: told of an opening, for the categories
    // configured, through the same templates.
    let residents = [
        (
            OWNER,
            &place.owner_name,
            &place.owner_phone,
            &settings.owner_categories,
        ),
        (
            TENANT,
            &place.tenant_name,
            &place.tenant_phone,
            &settings.tenant_categories,
        ),
    ];
    for (id, name, phone, categories) in residents {
        let Some(phone) = phone.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        if alert.what != AlertKind::Opened
            || alert.level != 0
            || !categories.contains(&alert.category)
            || settings.sms_url.is_empty()
        {
            continue;
        }
        let name = name.clone().unwrap_or_default();
        let text = message(alert, place, None, settings, &name);
        let person = PersonAlert {
            alert: alert.clone(),
            worker: WorkerRef { id, name },
            place: place.clone(),
            action: Action {
                zh_cn: zh.to_owned(),
                en: en.to_owned(),
            },
            link: None,
            text: text.clone(),
        };
        let json = serde_json::to_value(&person).unwrap_or_default();
        out.push(NewDelivery {
            notification_id,
            episode_id: alert.episode,
            kind: alert.what,
            area_id: alert.area.clone(),
            worker_id: id,
            channel: PersonChannel::Sms,
            format: WebhookFormat::Json,
            target: settings.sms_url.clone(),
            body: serde_json::json!({ "phone": phone, "text": text, "alert": json }).to_string(),
            next_attempt_ms: now,
        });
    }
    out
}

/// The body a webhook of `format` gets: the person alert, or an IM robot's text message that
/// mentions the worker by phone.
fn robot_body(
    format: WebhookFormat,
    text: &str,
    phone: Option<&str>,
    person: &serde_json::Value,
) -> serde_json::Value {
    let mobiles: Vec<&str> = phone.into_iter().collect();
    match format {
        WebhookFormat::Json => person.clone(),
        WebhookFormat::Dingtalk => serde_json::json!({
            "msgtype": "text",
            "text": { "content": text },
            "at": { "atMobiles": mobiles, "isAtAll": false },
        }),
        WebhookFormat::Wecom => serde_json::json!({
            "msgtype": "text",
            "text": { "content": text, "mentioned_mobile_list": mobiles },
        }),
    }
}

/// The category's name: Chinese, English.
const fn category_name(category: Category) -> (&'static str, &'static str) {
    match category {
        Category::Alarm => ("电气火灾报警", "Electrical fire alarm"),
        Category::Smoke => ("烟雾报警", "Smoke alarm"),
        Category::Fault => ("探测器故障", "Sensor fault"),
        Category::Offline => ("设备离线", "Device offline"),
        Category::BatteryLow => ("电池电量低", "Battery low"),
        Category::Tamper => ("设备被拆", "Device tampered with"),
    }
}

const fn kind_name(kind: DeviceKind) -> (&'static str, &'static str) {
    match kind {
        DeviceKind::ElectricalFireMonitor => ("电气火灾监控探测器", "electrical fire monitor"),
        DeviceKind::SmokeAlarm => ("独立式烟感", "smoke alarm"),
        DeviceKind::LegacyModbus => ("电气火灾监控设备(Modbus)", "legacy monitor (Modbus)"),
    }
}

/// The measured quantity's name: Chinese, English.
const fn quantity_name(quantity: Quantity) -> (&'static str, &'static str) {
    match quantity {
        Quantity::ResidualCurrent => ("剩余电流", "residual current"),
        Quantity::Temperature => ("温度", "temperature"),
    }
}

/// A measured value with its unit: residual current in mA, temperature in °C (from deci-°C).
fn value_text(quantity: Quantity, value: i32) -> String {
    match quantity {
        Quantity::ResidualCurrent => format!("{value} mA"),
        Quantity::Temperature => format!("{:.1} °C", f64::from(value) / 10.0),
    }
}

/// The message as a person reads it: what, where, who to call, what was measured, what to do
/// first, the link — each line Chinese then English.
pub fn text(alert: &Alert, place: &Place, link: Option<&str>) -> String {
    text_with(alert, place, link, first_action(alert.category))
}

/// [`text`] with `first` as the first action (Chinese, English; the same configured text twice
/// is written once).
pub fn text_with(alert: &Alert, place: &Place, link: Option<&str>, first: (&str, &str)) -> String {
    use std::fmt::Write as _;
    let (cat_zh, cat_en) = category_name(alert.category);
    let mut s = match alert.what {
        AlertKind::Opened => format!("【火警网格】{cat_zh} / {cat_en}\n"),
        AlertKind::Escalated if alert.reason.is_some() => format!(
            "【火警网格】{cat_zh}：已确认但超期未整改，已升级到第{lv}级 / {cat_en}: acknowledged but not rectified in time, escalated to level {lv}\n",
            lv = alert.level
        ),
        AlertKind::Escalated => format!(
            "【火警网格】{cat_zh}：超时未确认，已升级到第{lv}级 / {cat_en}: not acknowledged in time, escalated to level {lv}\n",
            lv = alert.level
        ),
        AlertKind::Ended => format!("【火警网格】{cat_zh}已恢复 / {cat_en} ended\n"),
    };
    let unknown = "?";
    let _ = writeln!(
        s,
        "地点 Where: {} {}",
        place.address.as_deref().unwrap_or(unknown),
        place.site.as_deref().unwrap_or("")
    );
    if place.room.is_some() || place.circuit.is_some() {
        let _ = writeln!(
            s,
            "房间 Room: {} · 回路 Circuit: {}",
            place.room.as_deref().unwrap_or("-"),
            place.circuit.as_deref().unwrap_or("-")
        );
    }
    if place.owner_name.is_some() || place.owner_phone.is_some() {
        let _ = writeln!(
            s,
            "房东 Owner: {} {}",
            place.owner_name.as_deref().unwrap_or(""),
            place.owner_phone.as_deref().unwrap_or("")
        );
    }
    let _ = match place.device_kind.map(kind_name) {
        Some((zh, en)) => writeln!(s, "设备 Device: {} ({zh} / {en})", alert.device),
        None => writeln!(s, "设备 Device: {}", alert.device),
    };
    if let (Some(q), Some(v), Some(t)) = (alert.quantity, alert.value, alert.threshold) {
        let (q_zh, q_en) = quantity_name(q);
        let _ = writeln!(
            s,
            "测得 Measured: {q_zh} {v} ≥ 设定值 {t} / {q_en} {v} against set-point {t}",
            v = value_text(q, v),
            t = value_text(q, t),
        );
    }
    if let Some(d) = &alert.detail {
        let _ = writeln!(s, "详情 Detail: {d}");
    }
    if alert.what != AlertKind::Ended {
        let (zh, en) = first;
        if zh == en {
            let _ = writeln!(s, "处置 First: {zh}");
        } else {
            let _ = writeln!(s, "处置 First: {zh} / {en}");
        }
    }
    if let Some(link) = link {
        let _ = writeln!(s, "查看 Episode: {link}");
    }
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests;
