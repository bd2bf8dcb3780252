//! Editable alert texts (`[people.templates]`): the first action per category and the message
//! text per alert kind, with `{placeholders}`; unset, the built-in bilingual text
//! ([`super::people::text`]) and first actions stay. Placeholders render in Chinese (zh-CN)
//! unless named `_en`. Pure: checked once at load ([`check`]), rendered per alert ([`render`]).
//!
//! | Placeholder | What |
//! | --- | --- |
//! | `{category}`, `{category_en}` | the category's name (电气火灾报警 / Electrical fire alarm) |
//! | `{what}` | 报警 (opened), 升级 (escalated), 恢复 (ended) |
//! | `{level}` | the escalation level (0 at the grid cell) |
//! | `{reason}` | 超期未整改 for an escalation of an acknowledged, unrectified ticket; else empty |
//! | `{address}`, `{site}`, `{room}`, `{circuit}` | where (empty when unknown) |
//! | `{owner_name}`, `{owner_phone}` | the landlord or owner |
//! | `{device}`, `{device_kind}` | the device's id and kind |
//! | `{measured}` | e.g. `剩余电流 412 mA ≥ 设定值 300 mA` (empty without a measured value) |
//! | `{first_action}` | what to do first (the configured text, else the built-in Chinese) |
//! | `{link}` | the episode's page (empty without `[people] public_url`) |
//! | `{recipient}` | who it is for (a worker's or the owner's / tenant's name) |

use std::collections::BTreeMap;

use crate::model::Category;
use crate::notify::alert::{Alert, AlertKind};
use crate::notify::people::Place;

/// The configured texts (empty: built in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    /// Per category, the first action (replaces the built-in one in every language).
    pub first_action: BTreeMap<Category, String>,
    /// Per alert kind, the whole message text.
    pub text: std::collections::HashMap<AlertKind, String>,
}

/// Every placeholder a template may use.
pub const PLACEHOLDERS: [&str; 17] = [
    "category",
    "category_en",
    "what",
    "level",
    "reason",
    "address",
    "site",
    "room",
    "circuit",
    "owner_name",
    "owner_phone",
    "device",
    "device_kind",
    "measured",
    "first_action",
    "link",
    "recipient",
];

/// The longest template, characters.
pub const MAX_TEMPLATE_CHARS: usize = 2000;

/// Checks a template: balanced `{…}` naming only [`PLACEHOLDERS`] (`{{` and `}}` are literal
/// braces), at most [`MAX_TEMPLATE_CHARS`].
///
/// # Errors
/// What is wrong, for the configuration's error message.
pub fn check(template: &str) -> Result<(), String> {
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("longer than {MAX_TEMPLATE_CHARS} characters"));
    }
    let mut unknown = None;
    render_with(template, |name| {
        if !PLACEHOLDERS.contains(&name) && unknown.is_none() {
            unknown = Some(name.to_owned());
        }
        String::new()
    })?;
    match unknown {
        Some(u) => Err(format!(
            "{{{u}}} is not a placeholder (one of {})",
            PLACEHOLDERS.join(", ")
        )),
        None => Ok(()),
    }
}

/// Replaces each `{name}` with `value(name)`; `{{` and `}}` are literal braces.
fn render_with(template: &str, mut value: impl FnMut(&str) -> String) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                        _ => return Err("an unclosed or malformed {placeholder}".into()),
                    }
                }
                out.push_str(&value(&name));
            }
            '}' => return Err("a lone }: write }} for a brace".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What the placeholders are filled with.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The alert.
    pub alert: &'a Alert,
    /// Where.
    pub place: &'a Place,
    /// The first action (zh-CN or the configured text).
    pub first_action: &'a str,
    /// The measured value, as text (may be empty).
    pub measured: &'a str,
    /// The episode's page.
    pub link: Option<&'a str>,
    /// Who it is for.
    pub recipient: &'a str,
    /// The category's names (zh, en).
    pub category: (&'a str, &'a str),
    /// The device kind's name (zh).
    pub device_kind: &'a str,
}

/// Renders a checked template (an unchecked one renders what it can; [`check`] runs at load).
pub fn render(template: &str, f: &Fields<'_>) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    render_with(template, |name| match name {
        "category" => f.category.0.to_owned(),
        "category_en" => f.category.1.to_owned(),
        "what" => match f.alert.what {
            AlertKind::Opened => "报警",
            AlertKind::Escalated => "升级",
            AlertKind::Ended => "恢复",
        }
        .to_owned(),
        "level" => f.alert.level.to_string(),
        "reason" => if f.alert.reason.is_some() {
            "超期未整改"
        } else {
            ""
        }
        .to_owned(),
        "address" => opt(&f.place.address),
        "site" => opt(&f.place.site),
        "room" => opt(&f.place.room),
        "circuit" => opt(&f.place.circuit),
        "owner_name" => opt(&f.place.owner_name),
        "owner_phone" => opt(&f.place.owner_phone),
        "device" => f.alert.device.clone(),
        "device_kind" => f.device_kind.to_owned(),
        "measured" => f.measured.to_owned(),
        "first_action" => f.first_action.to_owned(),
        "link" => f.link.unwrap_or_default().to_owned(),
        "recipient" => f.recipient.to_owned(),
        _ => String::new(),
    })
    .unwrap_or_else(|_| template.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;
    use firegrid_protocols::GridId;
    use proptest::prelude::*;

    fn alert() -> Alert {
        Alert {
            alert_id: 1,
            episode: 12,
            what: AlertKind::Opened,
            category: Category::Alarm,
            device: "hz-0042".into(),
            channel: Some(0),
            area: GridId::new("grid-7").unwrap(),
            level: 0,
            source: Source::Device,
            started_ms: 0,
            quantity: None,
            value: None,
            threshold: None,
            detail: None,
            sent_ms: 0,
            reason: None,
            test: false,
        }
    }

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let a = alert();
        let place = Place {
            address: Some("和睦路5号".into()),
            room: Some("3-302".into()),
            ..Place::default()
        };
        let f = Fields {
            alert: &a,
            place: &place,
            first_action: "断电",
            measured: "剩余电流 412 mA",
            link: None,
            recipient: "李",
            category: ("电气火灾报警", "Electrical fire alarm"),
            device_kind: "电气火灾监控探测器",
        };
        let t = "{recipient}：{address}{room} {category}（{measured}），请{first_action}。{{不是占位}}{link}";
        assert_eq!(check(t), Ok(()));
        assert_eq!(
            render(t, &f),
            "李：和睦路5号3-302 电气火灾报警（剩余电流 412 mA），请断电。{不是占位}"
        );
    }

    #[test]
    fn a_template_naming_an_unknown_placeholder_or_unbalanced_is_refused() {
        assert!(check("{adress}").is_err_and(|e| e.contains("{adress} is not a placeholder")));
        assert!(check("{address").is_err());
        assert!(check("a } b").is_err());
        assert!(check(&"字".repeat(2001)).is_err());
        assert_eq!(check("纯文本"), Ok(()));
    }

    proptest! {
        #[test]
        fn any_template_is_checked_without_panic(s in "\\PC{0,200}") {
            let _ = check(&s);
        }
    }
}
