//! The reports as RFC 4180 CSV (CRLF line ends): one row per grid cell, site or device, then
//! one per key area (`scope` column: `cell`, `site`, `device`, `key_area`, `total`). Free text
//! (names, addresses) is quoted; empty cells are unknown or none.

use std::fmt::Write as _;

use super::{AGE_BUCKETS, AgeRow, CellRow, Cells, RepeatSites, Times, Unresolved, Visits};

/// A quoted text cell.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The unresolved hazards report.
pub fn unresolved(r: &Unresolved) -> String {
    let mut out = String::from("scope,area_id,area,key_area");
    for (name, _) in AGE_BUCKETS {
        let _ = write!(out, ",{name}");
    }
    out.push_str(",total,oldest_ms\r\n");
    let mut row = |scope: &str, a: &AgeRow| {
        let _ = write!(
            out,
            "{scope},{},{},{}",
            opt(a.area_id.as_ref()),
            q(&a.area),
            opt(a.key_area.as_ref().map(|k| &k.id))
        );
        for b in a.buckets {
            let _ = write!(out, ",{b}");
        }
        let _ = write!(out, ",{},{}\r\n", a.total, opt(a.oldest_ms));
    };
    for a in &r.rows {
        row("cell", a);
    }
    for a in &r.key_areas {
        row("key_area", a);
    }
    row("total", &r.total);
    out
}

/// The repeat sites report.
pub fn repeat_sites(r: &RepeatSites) -> String {
    let mut out = String::from(
        "scope,site_id,site,address,area_id,key_area,hazards,alarms,smoke,first_ms,last_ms,sites\r\n",
    );
    for s in &r.sites {
        let _ = write!(
            out,
            "site,{},{},{},{},{},{},{},{},{},{},1\r\n",
            s.site_id,
            q(&s.site),
            q(&s.address),
            s.area_id,
            opt(s.key_area.as_ref().map(|k| &k.id)),
            s.hazards,
            s.alarms,
            s.smoke,
            s.first_ms,
            s.last_ms
        );
    }
    for k in &r.key_areas {
        let _ = write!(
            out,
            "key_area,,{},,{},{},{},,,,,{}\r\n",
            q(&k.key_area.name),
            k.key_area.id,
            k.key_area.id,
            k.hazards,
            k.sites
        );
    }
    out
}

fn times(out: &mut String, t: &Times) {
    let _ = write!(
        out,
        ",{},{},{},{}",
        t.n,
        opt(t.p50_ms),
        opt(t.p90_ms),
        opt(t.max_ms)
    );
}

/// The grid cells report.
pub fn cells(r: &Cells) -> String {
    let mut out = String::from(
        "scope,area_id,area,key_area,devices,online,online_rate,episodes,\
         acknowledged,acknowledge_p50_ms,acknowledge_p90_ms,acknowledge_max_ms,unacknowledged,\
         rectified,rectify_p50_ms,rectify_p90_ms,rectify_max_ms,unrectified\r\n",
    );
    let mut row = |scope: &str, c: &CellRow| {
        let _ = write!(
            out,
            "{scope},{},{},{},{},{},{},{}",
            opt(c.area_id.as_ref()),
            q(&c.area),
            opt(c.key_area.as_ref().map(|k| &k.id)),
            c.devices,
            c.online,
            opt(c.online_rate.map(|v| format!("{v:.4}"))),
            c.episodes
        );
        times(&mut out, &c.acknowledge);
        let _ = write!(out, ",{}", c.unacknowledged);
        times(&mut out, &c.rectify);
        let _ = write!(out, ",{}\r\n", c.unrectified);
    };
    for c in &r.rows {
        row("cell", c);
    }
    for c in &r.key_areas {
        row("key_area", c);
    }
    row("total", &r.total);
    out
}

/// The devices report.
pub fn visits(r: &Visits) -> String {
    let mut out = String::from(
        "scope,device,area_id,key_area,site_id,offline_since_ms,battery_low,self_test_overdue,\
         devices\r\n",
    );
    for d in &r.devices {
        let _ = write!(
            out,
            "device,{},{},{},{},{},{},{},1\r\n",
            d.device,
            opt(d.area_id.as_ref()),
            opt(d.key_area.as_ref().map(|k| &k.id)),
            opt(d.site_id),
            opt(d.offline_since_ms),
            opt(d.battery_low),
            opt(d.self_test_overdue)
        );
    }
    for (k, n) in &r.key_areas {
        let _ = write!(out, "key_area,,{},{},,,,,{n}\r\n", k.id, k.id);
    }
    out
}
