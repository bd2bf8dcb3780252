//! The pages' frame: head (our CSS and JS only, from `/assets`), the top bar with the user's
//! pages, the language switch; times as `<time>` elements; error pages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::i18n::utility::Msg as UtilityMsg;
use super::i18n::{Lang, Msg};
use crate::access::Role;
use crate::api::access::Caller;
use crate::model::UnixMs;

/// A page without the top bar (login, errors).
pub(crate) fn bare(lang: Lang, title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · firegrid" }
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
            }
            body { (body) }
        }
    }
}

/// A page of a logged-in user: the top bar (their pages, who they are, log out) and `body`.
pub(crate) fn page(
    lang: Lang,
    caller: &Caller,
    csrf: &str,
    active: &str,
    title: &str,
    body: &Markup,
) -> Markup {
    let role = caller.role();
    let links: Vec<(&str, &str)> = [
        ("/board", Msg::Board, role != Role::Installer),
        ("/field", Msg::Field, role != Role::Installer),
        ("/devices", Msg::Devices, true),
        (
            "/install",
            Msg::Install,
            matches!(role, Role::Admin | Role::Installer | Role::Operator),
        ),
    ]
    .into_iter()
    .filter(|(_, _, shown)| *shown)
    .map(|(href, m, _)| (href, lang.t(m)))
    // Utility and reports.
    .chain(
        [
            ("/utility", UtilityMsg::Utility, role != Role::Installer),
            ("/reports", UtilityMsg::Reports, role != Role::Installer),
        ]
        .into_iter()
        .filter(|(_, _, shown)| *shown)
        .map(|(href, m, _)| (href, m.t(lang))),
    )
    .collect();
    let inner = html! {
        header.top {
            a.brand href="/" { span.mark { "火" } (lang.t(Msg::Product)) }
            nav {
                @for (href, text) in &links {
                    a href=(href) .active[*href == active] { (text) }
                }
            }
            div.who {
                span.user { (caller.user()) " · " (role) @if let Some(a) = caller.scope() { " · " (a) } }
                (lang_switch(lang))
                form method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.link type="submit" { (lang.t(Msg::Logout)) }
                }
            }
        }
        (body)
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · firegrid" }
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
            }
            body { (inner) }
        }
    }
}

/// Links to the other language.
pub(crate) fn lang_switch(lang: Lang) -> Markup {
    html! {
        span.lang {
            @if lang == Lang::En { a href="/lang/zh" { "中文" } } @else { a href="/lang/en" { "English" } }
        }
    }
}

/// An instant: the server writes it in UTC (readable without JavaScript); `app.js` rewrites it
/// in the viewer's time zone and language.
pub(crate) fn time(ms: UnixMs) -> Markup {
    let iso = iso_utc(ms);
    html! { time datetime=(iso) data-ms=(ms) { (iso.replace('T', " ").replace(".000Z", " UTC")) } }
}

/// How long since `ms`, kept up to date by `app.js`.
pub(crate) fn age(ms: UnixMs, now: UnixMs) -> Markup {
    let s = now.saturating_sub(ms) / 1000;
    let text = if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, s / 60 % 60)
    };
    html! { span.age data-since=(ms) { (text) } }
}

/// `ms` as ISO 8601 UTC (`2026-12-06T02:31:05.000Z`).
pub(crate) fn iso_utc(ms: UnixMs) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An error page with `status`.
pub(crate) fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => lang.t(Msg::Forbidden),
        StatusCode::NOT_FOUND => lang.t(Msg::NotFound),
        _ => lang.t(Msg::Error),
    };
    let body = html! {
        main.login {
            h1 { (status.as_u16()) " · " (title) }
            p.error { (message) }
            p { a href="/" { (lang.t(Msg::Back)) } }
        }
    };
    (status, bare(lang, title, &body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_in_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(1_796_524_265_123), "2026-12-06T02:31:05.123Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
