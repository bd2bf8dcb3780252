//! The utility staff's pages: an area's (or one site's) circuit trees with the channels that
//! measure each circuit, the circuits ranked by 30-day residual-current trend or alarm count
//! (`GET /utility`), and one circuit (`GET /circuits/{id}`): its channels' residual current and
//! temperature plotted (raw or hourly, from `GET /circuits/{id}/history` — the API's own
//! handler behind the session), and where under it a leak most likely sits, with the evidence.
//! Every export is the API's CSV.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::assets;
use super::board::{page_area, read};
use super::i18n::Lang;
use super::i18n::utility::Msg as U;
use super::layout;
use super::session::WebSession;
use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::circuits::{rank_rows, trace_tree};
use crate::api::error::{ApiError, PathId, Subject};
use crate::circuits::{Place, RankBy, Ranked, Trace, TraceError, rank, trace};
use crate::store::{
    ChannelCircuit, Circuit, CircuitFields, CircuitFilter, HOUR_MS, Measures, Site, SiteFields,
    SiteFilter, StoreError,
};

/// The most sites whose trees one page shows.
const MAX_SITES: usize = 30;
/// The most ranked circuits shown.
const MAX_RANKED: usize = 30;
/// The plot ranges: label, span (ms), step (`raw` readings or hourly rollups).
const RANGES: [(&str, u64, &str, U); 4] = [
    ("1 h", HOUR_MS, "raw", U::Raw),
    ("24 h", 24 * HOUR_MS, "raw", U::Raw),
    ("7 d", 7 * 24 * HOUR_MS, "1h", U::Hourly),
    ("30 d", 30 * 24 * HOUR_MS, "1h", U::Hourly),
];
/// The leak-tracing floor, mA (as the API's default).
const MIN_MA: f64 = 30.0;

fn api_error(e: StoreError) -> ApiError {
    ApiError::from_store(e, &Subject::NONE)
}

#[derive(Debug, Deserialize)]
pub(super) struct UtilityQuery {
    area: Option<String>,
    site: Option<i64>,
    by: Option<String>,
}

/// A site with its circuits and the channels on them.
struct SiteTree {
    site: Site,
    circuits: Vec<Circuit>,
    channels: Vec<ChannelCircuit>,
}

/// `GET /utility`.
pub(super) async fn utility(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    Query(q): Query<UtilityQuery>,
) -> Response {
    let lang = session.lang;
    let by = if q.by.as_deref() == Some("alarms") {
        RankBy::Alarms
    } else {
        RankBy::Trend
    };
    let c = caller.clone();
    let (area_q, site_q) = (q.area.clone(), q.site);
    let found = read(&state, lang, move |s| {
        let area = page_area(s, &c, area_q.as_deref())?;
        let sites = s
            .list::<SiteFields>(
                &SiteFilter {
                    area_id: area.clone(),
                },
                c.scope(),
            )
            .map_err(api_error)?;
        let shown: Vec<Site> = match site_q {
            Some(id) => vec![
                s.get_scoped::<SiteFields>(&id, c.scope())
                    .map_err(|e| ApiError::from_store(e, &Subject::new("site", id)))?
                    .ok_or_else(|| ApiError::not_found(format!("no site {id}")))?,
            ],
            None => sites.iter().take(MAX_SITES).cloned().collect(),
        };
        let mut trees = Vec::with_capacity(shown.len());
        for site in shown {
            let circuits = s
                .list::<CircuitFields>(
                    &CircuitFilter {
                        site_id: Some(site.id),
                    },
                    None,
                )
                .map_err(api_error)?;
            let channels = s.site_channels(site.id).map_err(api_error)?;
            trees.push(SiteTree {
                site,
                circuits,
                channels,
            });
        }
        let to = crate::api::now_ms();
        let mut ranked =
            rank_rows(s, &c, area.clone(), to - 30 * 24 * HOUR_MS, to).map_err(api_error)?;
        rank(&mut ranked, by);
        ranked.truncate(MAX_RANKED);
        Ok((area, sites, trees, ranked))
    })
    .await;
    let (area, sites, trees, ranked) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let area_arg = area
        .as_ref()
        .map_or_else(String::new, |a| format!("area={a}&"));
    let site_names: HashMap<i64, &str> = sites
        .iter()
        .map(|s| (s.id, s.fields.name.as_str()))
        .collect();
    let body = html! {
        main.wide.utility {
            div.bar {
                h1 { (U::Utility.t(lang)) @if let Some(a) = &area { " · " (a) } }
                a.btn href=(format!("/circuit-ranking?{area_arg}days=30&format=csv")) download { (U::Export.t(lang)) }
            }
            div.split {
                nav.sites {
                    h2 { (U::Sites.t(lang)) }
                    ul {
                        li { a href=(format!("/utility?{area_arg}")) .active[q.site.is_none()] { (U::AllSites.t(lang)) } }
                        @for s in &sites {
                            li { a href=(format!("/utility?{area_arg}site={}", s.id)) .active[q.site == Some(s.id)] { (s.fields.name) } }
                        }
                    }
                }
                section.trees {
                    h2 { (U::CircuitTree.t(lang)) }
                    @for t in &trees {
                        div.site-tree data-site=(t.site.id) {
                            h3 { (t.site.fields.name) " " small.muted { (t.site.fields.address) " · " (t.site.fields.area_id) } }
                            @if t.circuits.is_empty() { p.muted { (U::NoCircuits.t(lang)) } }
                            @else { (tree(lang, &t.circuits, &t.channels, None)) }
                        }
                    }
                }
            }
            section.ranking {
                div.bar {
                    h2 { (U::Ranking.t(lang)) }
                    nav.ranges {
                        a.btn .on[by == RankBy::Trend] href=(format!("/utility?{area_arg}by=trend")) { (U::ByTrend.t(lang)) }
                        a.btn .on[by == RankBy::Alarms] href=(format!("/utility?{area_arg}by=alarms")) { (U::ByAlarms.t(lang)) }
                    }
                }
                (ranking(lang, &ranked, &site_names))
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/utility",
        U::Utility.t(lang),
        &body,
    )
    .into_response()
}

/// A site's circuits as a nested list, each with the channels measuring it.
fn tree(
    lang: Lang,
    circuits: &[Circuit],
    channels: &[ChannelCircuit],
    parent: Option<i64>,
) -> Markup {
    let ids: Vec<i64> = circuits.iter().map(|c| c.id).collect();
    let here: Vec<&Circuit> = circuits
        .iter()
        .filter(|c| c.fields.parent_id.filter(|p| ids.contains(p)) == parent)
        .collect();
    html! {
        ul.tree {
            @for c in here {
                li data-circuit=(c.id) {
                    a href=(format!("/circuits/{}", c.id)) { (c.fields.name) }
                    @for ch in channels.iter().filter(|ch| ch.circuit_id == Some(c.id)) {
                        " " (chip(lang, ch))
                    }
                    // Guard against a cycle: a circuit never lists itself below itself.
                    @if Some(c.id) != parent { (tree(lang, circuits, channels, Some(c.id))) }
                }
            }
        }
    }
}

fn measures(lang: Lang, m: Measures) -> &'static str {
    match m {
        Measures::ResidualCurrent => U::ResidualCurrent.t(lang),
        Measures::Temperature => U::Temperature.t(lang),
    }
}

/// A channel as a small link to its device's trend.
fn chip(lang: Lang, ch: &ChannelCircuit) -> Markup {
    html! {
        a.chip href=(format!("/devices/{}/trend?ch={}", ch.device, ch.channel))
            title=(if ch.own { U::OwnBinding.t(lang) } else { U::DeviceBinding.t(lang) }) {
            code { (ch.device) "#" (ch.channel) } " " (measures(lang, ch.measures))
        }
    }
}

fn ranking(lang: Lang, rows: &[Ranked], sites: &HashMap<i64, &str>) -> Markup {
    let top = rows
        .iter()
        .filter_map(|r| r.trend_ma_per_day)
        .fold(0.0f64, |m, t| m.max(t.abs()));
    html! {
        table.ranking {
            thead { tr { th { "#" } th { (U::Circuits.t(lang)) } th { (U::Sites.t(lang)) }
                th { (U::Trend.t(lang)) } th { (U::Latest.t(lang)) } th { (U::Alarms.t(lang)) } } }
            tbody {
                @for (i, r) in rows.iter().enumerate() {
                    tr data-circuit=(r.circuit_id) {
                        td { (i + 1) }
                        td { a href=(format!("/circuits/{}", r.circuit_id)) { (r.name) } }
                        td { (sites.get(&r.site_id).copied().unwrap_or("")) }
                        td.value {
                            @if let Some(t) = r.trend_ma_per_day {
                                (format!("{t:+.2}"))
                                @if top > 0.0 && t > 0.0 { " " span.hbar style=(format!("width:{:.0}px", 80.0 * t / top)) {} }
                            }
                        }
                        td.value { @if let Some(l) = r.latest_ma { (format!("{l:.1}")) } }
                        td.value { (r.alarms) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct CircuitQuery {
    range: Option<usize>,
}

/// `GET /circuits/{id}`.
pub(super) async fn circuit(
    State(state): State<ApiState>,
    caller: Caller,
    session: WebSession,
    id: PathId,
    Query(q): Query<CircuitQuery>,
) -> Response {
    let lang = session.lang;
    let id = match id.number("circuit") {
        Ok(id) => id,
        Err(e) => return layout::error_page(lang, e.status(), e.message()),
    };
    let c = caller.clone();
    let to = crate::api::now_ms();
    let found = read(&state, lang, move |s| {
        let subject = Subject::new("circuit", id);
        let circuit = s
            .get_scoped::<CircuitFields>(&id, c.scope())
            .map_err(|e| ApiError::from_store(e, &subject))?
            .ok_or_else(|| ApiError::not_found(format!("no circuit {id}")))?;
        let site = s
            .get::<SiteFields>(&circuit.fields.site_id)
            .map_err(api_error)?;
        let channels = s.site_channels(circuit.fields.site_id).map_err(api_error)?;
        let tree = trace_tree(s, &c, id, to - HOUR_MS, to).map_err(api_error)?;
        Ok((circuit, site, channels, trace(&tree, id, MIN_MA)))
    })
    .await;
    let (circuit, site, channels, traced) = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let pick = q.range.filter(|r| *r < RANGES.len()).unwrap_or(0);
    let (_, span_ms, step, _) = RANGES[pick];
    let src = format!(
        "/circuits/{id}/history?from={}&to={to}&step={step}",
        to - span_ms
    );
    let mine: Vec<&ChannelCircuit> = channels
        .iter()
        .filter(|ch| ch.circuit_id == Some(id))
        .collect();
    let body = html! {
        link rel="stylesheet" href=(assets::url("uPlot.min.css"));
        script src=(assets::url("uPlot.iife.min.js")) defer {}
        main.wide.utility {
            div.bar {
                h1 { (circuit.fields.name) @if let Some(s) = &site { " · " (s.fields.name) } }
                nav.ranges {
                    @for (i, (label, _, _, kind)) in RANGES.iter().enumerate() {
                        a.btn .on[i == pick] href=(format!("/circuits/{id}?range={i}")) { (label) " · " (kind.t(lang)) }
                    }
                    a.btn href=(format!("{src}&format=csv")) download { (U::Export.t(lang)) }
                }
            }
            p {
                @if let Some(s) = &site { a href=(format!("/utility?site={}", s.id)) { (U::CircuitTree.t(lang)) } }
            }
            h2 { (U::Channels.t(lang)) }
            p.channels {
                @for ch in &mine { (chip(lang, ch)) " " }
            }
            div #plots data-src=(src) data-residual=(lang.t(super::i18n::Msg::Residual))
                data-temp=(lang.t(super::i18n::Msg::Temperature))
                data-empty=(lang.t(super::i18n::Msg::NoReadings)) {}
            section #leak-trace {
                h2 { (U::LeakTrace.t(lang)) " " small.muted { (U::LeakWindow.t(lang)) } }
                (leak(lang, id, &traced))
            }
        }
    };
    layout::page(
        lang,
        &caller,
        &session.csrf,
        "/utility",
        &circuit.fields.name,
        &body,
    )
    .into_response()
}

/// mA with one decimal (never "-0.0").
fn ma(v: f64) -> String {
    format!("{:.1}", v + 0.0)
}

/// The leak-tracing verdict and its evidence.
fn leak(lang: Lang, id: i64, traced: &Result<Trace, TraceError>) -> Markup {
    let t = match traced {
        Ok(t) => t,
        Err(_) => return html! { p.muted { (U::NotMeasured.t(lang)) } },
    };
    html! {
        @match &t.suspect {
            Some(s) => p.suspect data-circuit=(s.circuit_id) {
                strong { (U::Suspect.t(lang)) ": " }
                a href=(format!("/circuits/{}", s.circuit_id)) { (s.name) } " ("
                (if s.place == Place::FeederSegment { U::FeederSegment.t(lang) } else { U::Branch.t(lang) })
                ") · " (format!("{:.1} mA · {:.0} %", s.unexplained_ma, s.share * 100.0))
            },
            None => p.muted { (U::NoSuspect.t(lang)) " (" (format!("{:.0} mA", t.min_ma)) ")" },
        }
        table.evidence {
            thead { tr { th { (U::Circuits.t(lang)) } th { (U::Measured.t(lang)) } th { (U::BranchesSum.t(lang)) }
                th { (U::Unexplained.t(lang)) } th { (U::Unmeasured.t(lang)) } } }
            tbody {
                @for e in &t.evidence {
                    tr .suspect[t.suspect.as_ref().is_some_and(|s| s.circuit_id == e.circuit_id)] {
                        td { a href=(format!("/circuits/{}", e.circuit_id)) { (e.name) } @if e.circuit_id == id { " ●" } }
                        td.value { (ma(e.measured_ma)) }
                        td.value { (ma(e.branches_ma)) }
                        td.value { (ma(e.unexplained_ma)) }
                        td { @for b in &e.unmeasured_branches { a href=(format!("/circuits/{b}")) { "#" (b) } " " } }
                    }
                }
            }
        }
    }
}
