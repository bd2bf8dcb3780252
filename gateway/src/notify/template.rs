//! Editable alert texts (`[people.templates]` in Chinese, `[people.templates.en]` in English):
//! the first action per category and the message text per alert kind, with `{placeholders}`;
//! unset, the built-in bilingual text ([`super::people::text`]) and first actions stay. A
//! placeholder renders in its template's language ([`Lang`]). Pure: checked once at load
//! ([`check`]), rendered per alert ([`render`]).
//!
//! | Placeholder | What (zh-CN / en) |
//! | --- | --- |
//! | `{category}` | the category's name (电气火灾报警 / Electrical fire alarm) |
//! | `{category_en}` | the category's English name in either language |
//! | `{what}` | 报警, 升级, 恢复 / opened, escalated, ended |
//! | `{level}` | the escalation level (0 at the grid cell) |
//! | `{reason}` | 超期未整改 / not rectified in time, for an escalation of an acknowledged, unrectified ticket; else empty |
//! | `{address}`, `{site}`, `{room}`, `{circuit}` | where (empty when unknown) |
//! | `{owner_name}`, `{owner_phone}` | the landlord or owner |
//! | `{device}`, `{device_kind}` | the device's id and kind |
//! | `{measured}` | e.g. `剩余电流 412 mA ≥ 设定值 300 mA` / `residual current 412 mA against set-point 300 mA` (empty without a measured value) |
//! | `{first_action}` | what to do first (the configured text of the language, else the built-in one) |
//! | `{link}` | the episode's page (empty without `[people] public_url`) |
//! | `{recipient}` | who it is for (a worker's or the owner's / tenant's name) |

use std::collections::BTreeMap;

use crate::model::Category;
use crate::notify::alert::{Alert, AlertKind};
use crate::notify::people::Place;

/// The configured texts of both languages (empty: built in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    /// Chinese (zh-CN): `[people.templates]`.
    pub zh_cn: Texts,
    /// English: `[people.templates.en]`.
    pub en: Texts,
}

/// The configured texts of one language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts {
    /// Per category, the first action.
    pub first_action: BTreeMap<Category, String>,
    /// Per alert kind, the whole message text.
    pub text: std::collections::HashMap<AlertKind, String>,
}

/// The language a template is written in, and its placeholders render in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Chinese (simplified).
    ZhCn,
    /// English.
    En,
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

/// What the placeholders are filled with; each text in both languages (zh-CN, en).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The alert.
    pub alert: &'a Alert,
    /// Where.
    pub place: &'a Place,
    /// The first action (the configured text, else the built-in).
    pub first_action: (&'a str, &'a str),
    /// The measured value, as text (may be empty).
    pub measured: (&'a str, &'a str),
    /// The episode's page.
    pub link: Option<&'a str>,
    /// Who it is for.
    pub recipient: &'a str,
    /// The category's names.
    pub category: (&'a str, &'a str),
    /// The device kind's names.
    pub device_kind: (&'a str, &'a str),
}

/// Renders a checked template written in `lang` (an unchecked one renders what it can;
/// [`check`] runs at load).
pub fn render(template: &str, f: &Fields<'_>, lang: Lang) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let pick = |(zh, en): (&str, &str)| match lang {
        Lang::ZhCn => zh.to_owned(),
        Lang::En => en.to_owned(),
    };
    render_with(template, |name| match name {
        "category" => pick(f.category),
        "category_en" => f.category.1.to_owned(),
        "what" => pick(match f.alert.what {
            AlertKind::Opened => ("报警", "opened"),
            AlertKind::Escalated => ("升级", "escalated"),
            AlertKind::Ended => ("恢复", "ended"),
        }),
        "level" => f.alert.level.to_string(),
        "reason" => {
            if f.alert.reason.is_some() {
                pick(("超期未整改", "not rectified in time"))
            } else {
                String::new()
            }
        }
        "address" => opt(&f.place.address),
        "site" => opt(&f.place.site),
        "room" => opt(&f.place.room),
        "circuit" => opt(&f.place.circuit),
        "owner_name" => opt(&f.place.owner_name),
        "owner_phone" => opt(&f.place.owner_phone),
        "device" => f.alert.device.clone(),
        "device_kind" => pick(f.device_kind),
        "measured" => pick(f.measured),
        "first_action" => pick(f.first_action),
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
            first_action: ("断电", "switch it off"),
            measured: ("剩余电流 412 mA", "residual current 412 mA"),
            link: None,
            recipient: "李",
            category: ("电气火灾报警", "Electrical fire alarm"),
            device_kind: ("电气火灾监控探测器", "electrical fire monitor"),
        };
        let t = "{recipient}：{address}{room} {category}（{measured}），请{first_action}。{{不是占位}}{link}";
        assert_eq!(check(t), Ok(()));
        assert_eq!(
            render(t, &f, Lang::ZhCn),
            "李：和睦路5号3-302 电气火灾报警（剩余电流 412 mA），请断电。{不是占位}"
        );
        // The same placeholders in an English template render in English.
        let en = "{recipient}: {category} {what} at {address} {room} ({measured}); {first_action}. {device_kind}";
        assert_eq!(
            render(en, &f, Lang::En),
            "李: Electrical fire alarm opened at 和睦路5号 3-302 (residual current 412 mA); \
             switch it off. electrical fire monitor"
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
