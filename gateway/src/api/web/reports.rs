//! The report page (`GET /reports?area=&key=1`): the four rectification reports
//! ([`crate::reports`], computed by the API's own [`compute`]) as tables with small CSS bars,
//! each exportable as the API's CSV (`GET /reports/{name}?format=csv`, the API's handler
//! behind the session). Area-scoped like the API: another area's page is 403.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::board::read;
use super::i18n::Lang;
use super::i18n::utility::Msg as U;
use super::layout;
use super::session::WebSession;
use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::reports::{Report, ReportQuery, compute};
use crate::reports::{AgeRow, CellRow, Cells, RepeatSites, Times, Unresolved, Visits};

#[derive(Debug, Deserialize)]
pub(super) struct ReportsQuery {
    area: Option<String>,
    key: Option<String>,
}

/// `GET /reports`.
pub(super) async fn reports(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<ReportsQuery>,
) -> Response {
    let lang = session.lang;
    let area = q.area.clone().filter(|a| !a.is_empty());
    let key = q.key.clone().filter(|k| k == "1");
    let c = caller.clone();
    let schedule = state.commissioning.section.clone();
    let query = ReportQuery {
        area: area.clone(),
        key: key.clone(),
        ..ReportQuery::default()
    };
    let found = read(&state, lang, move |s| {
        let now = crate::api::now_ms();
        let mut out = Vec::new();
        for name in crate::api::reports::NAMES {
            out.push(compute(s, &c, name, &query, &schedule, now)?);
        }
        Ok(out)
    })
    .await;
    let reports = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut args = String::new();
    if let Some(a) = &area {
        args.push_str(&format!("area={a}&"));
    }
    if key.is_some() {
        args.push_str("key=1&");
    }
    let csv = |name: &str| format!("/reports/{name}?{args}format=csv");
    let body = html! {
        main.wide.reports {
            div.bar {
                h1 { (U::Reports.t(lang)) @if let Some(a) = &area { " · " (a) } }
                form.filters method="get" action="/reports" {
                    input type="hidden" name="area" value=(area.as_deref().unwrap_or(""));
                    label { input type="checkbox" name="key" value="1" checked[key.is_some()]; " " (U::KeyOnly.t(lang)) }
                    button.btn type="submit" { "OK" }
                }
            }
            @for r in &reports {
                @match r {
                    Report::Unresolved(u) => (unresolved(lang, u, &csv("unresolved"))),
                    Report::RepeatSites(rs) => (repeat(lang, rs, &csv("repeat-sites"))),
                    Report::Cells(c) => (cells(lang, c, &csv("grid-cells"))),
                    Report::Visits(v) => (visits(lang, v, &csv("devices"))),
                }
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/reports",
        U::Reports.t(lang),
        &body,
    )
    .into_response()
}

fn head(lang: Lang, title: U, csv: &str) -> Markup {
    html! {
        div.bar {
            h2 { (title.t(lang)) }
            a.btn href=(csv) download { (U::Export.t(lang)) }
        }
    }
}

const AGES: [U; 5] = [U::Age0, U::Age1, U::Age2, U::Age3, U::Age4];

fn age_row(lang: Lang, a: &AgeRow, max: u64, class: &str) -> Markup {
    html! {
        tr class=(class) data-area=(a.area_id.as_ref().map_or("", |x| x.as_str())) {
            td { @if a.area_id.is_some() { (a.area) } @else { strong { (U::Total.t(lang)) } } }
            td { @if let Some(k) = &a.key_area { span.key { (k.name) } } }
            @for b in a.buckets { td.value { (b) } }
            td.value { strong { (a.total) } }
            td {
                span.stack {
                    @for (i, b) in a.buckets.iter().enumerate() {
                        @if *b > 0 { span class=(format!("seg a{i}")) style=(format!("width:{:.0}px", 160.0 * *b as f64 / max.max(1) as f64)) {} }
                    }
                }
            }
        }
    }
}

fn unresolved(lang: Lang, u: &Unresolved, csv: &str) -> Markup {
    let max = u.rows.iter().map(|r| r.total).max().unwrap_or(0);
    html! {
        section #report-unresolved {
            (head(lang, U::Unresolved, csv))
            table {
                thead { tr { th { "" } th { (U::KeyArea.t(lang)) } @for a in AGES { th { (a.t(lang)) } } th { (U::Total.t(lang)) } th {} } }
                tbody {
                    @for r in &u.rows { (age_row(lang, r, max, "cell")) }
                    @for r in &u.key_areas { (age_row(lang, r, max.max(r.total), "key")) }
                    (age_row(lang, &u.total, max.max(u.total.total), "total"))
                }
            }
        }
    }
}

fn repeat(lang: Lang, r: &RepeatSites, csv: &str) -> Markup {
    let max = r.sites.first().map_or(1, |s| s.hazards);
    html! {
        section #report-repeat-sites {
            (head(lang, U::RepeatSites, csv))
            p.muted { (U::RepeatHelp.t(lang)) }
            @if r.sites.is_empty() { p.muted { (U::Nothing.t(lang)) } } @else {
                table {
                    thead { tr { th { "#" } th { (U::Sites.t(lang)) } th { "" } th { (U::KeyArea.t(lang)) }
                        th { (U::Hazards.t(lang)) } th { (U::LastHazard.t(lang)) } } }
                    tbody {
                        @for (i, s) in r.sites.iter().enumerate() {
                            tr data-site=(s.site_id) {
                                td { (i + 1) }
                                td { (s.site) br; small.muted { (s.address) } }
                                td { (s.area_id) }
                                td { @if let Some(k) = &s.key_area { span.key { (k.name) } } }
                                td.value { (s.hazards) " " span.hbar style=(format!("width:{:.0}px", 100.0 * s.hazards as f64 / max as f64)) {} }
                                td { (layout::time(s.last_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A duration, short (`45 s`, `12 min`, `3.5 h`, `4.2 d`).
pub(crate) fn duration(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

fn times(t: &Times) -> String {
    let f = |v: Option<u64>| v.map_or_else(|| "–".to_string(), duration);
    format!("{} / {} / {}", f(t.p50_ms), f(t.p90_ms), f(t.max_ms))
}

fn cell_row(lang: Lang, c: &CellRow, class: &str) -> Markup {
    let rate = c.online_rate.unwrap_or(0.0);
    html! {
        tr class=(class) data-area=(c.area_id.as_ref().map_or("", |x| x.as_str())) {
            td { @if c.area_id.is_some() { (c.area) } @else { strong { (U::Total.t(lang)) } } }
            td { @if let Some(k) = &c.key_area { span.key { (k.name) } } }
            td.value {
                @if let Some(r) = c.online_rate { (format!("{:.1} %", r * 100.0)) } " (" (c.online) "/" (c.devices) ")"
                br; span.meter { span style=(format!("width:{:.0}%", rate * 100.0)) {} }
            }
            td.value { (times(&c.acknowledge)) }
            td.value { (times(&c.rectify)) }
            td.value { (c.unacknowledged) " / " (c.unrectified) }
        }
    }
}

fn cells(lang: Lang, c: &Cells, csv: &str) -> Markup {
    html! {
        section #report-grid-cells {
            (head(lang, U::Cells, csv))
            p.muted { (U::CellsHelp.t(lang)) }
            table {
                thead { tr { th { "" } th { (U::KeyArea.t(lang)) } th { (U::Online.t(lang)) } th { (U::ToAck.t(lang)) }
                    th { (U::ToRectify.t(lang)) } th { (U::Pending.t(lang)) } } }
                tbody {
                    @for r in &c.rows { (cell_row(lang, r, "cell")) }
                    @for r in &c.key_areas { (cell_row(lang, r, "key")) }
                    (cell_row(lang, &c.total, "total"))
                }
            }
        }
    }
}

fn flag(lang: Lang, v: Option<bool>) -> Markup {
    html! {
        @match v {
            Some(true) => strong { "✓" },
            Some(false) => span.muted { "–" },
            None => small.muted { (U::NotYet.t(lang)) },
        }
    }
}

fn visits(lang: Lang, v: &Visits, csv: &str) -> Markup {
    html! {
        section #report-devices {
            (head(lang, U::Offline, csv))
            @if v.devices.is_empty() { p.muted { (U::Nothing.t(lang)) } } @else {
                table {
                    thead { tr { th { "ID" } th { "" } th { (U::KeyArea.t(lang)) } th { (U::OfflineSince.t(lang)) }
                        th { (U::BatteryLow.t(lang)) } th { (U::TestOverdue.t(lang)) } } }
                    tbody {
                        @for d in &v.devices {
                            tr data-device=(d.device) {
                                td { a href=(format!("/devices/{}/trend", d.device)) { code { (d.device) } } }
                                td { @if let Some(a) = &d.area_id { (a) } }
                                td { @if let Some(k) = &d.key_area { span.key { (k.name) } } }
                                td { @if let Some(t) = d.offline_since_ms { (layout::time(t)) " · " (duration(v.now_ms.saturating_sub(t))) } }
                                td { (flag(lang, d.battery_low)) }
                                td { (flag(lang, d.self_test_overdue)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(45_000), "45 s");
        assert_eq!(duration(12 * 60_000), "12 min");
        assert_eq!(duration(3 * 3_600_000 + 1_800_000), "3.5 h");
        assert_eq!(duration(4 * 86_400_000), "4.0 d");
    }
}
