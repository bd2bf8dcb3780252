//! The utility and report pages in a real browser (headless chromium through chromium-driver),
//! against the real `firegrid` binary and the simulator's devices (real firmware).
//!
//! A street of two cells whose sites have a feeder monitor above their rooms' monitors
//! (`feeders`); one room's insulation ages (`leakage_creep`). A utility user of cell u-1 opens
//! that room's circuit: its residual-current plot holds exactly the points the history API
//! returns for the same range, and they rise; the utility page shows the site's circuit tree
//! and the ranking; the report page renders its four reports; cell u-2's pages answer 403; no
//! page names an outside URL.

use fantoccini::Locator;
use serde_json::Value;

use firegrid_e2e::browser::{Driver, ELEMENT, fetch, login, outside_urls};
use firegrid_e2e::{BrokerSetup, Gateway, Sim, WAIT, user_add};

const SCENARIO: &str = r#"name = "e2e utility UI"
id = "uu"
[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 60
base_leakage_ma = [3, 8]

[[street]]
id = "u"
name = "Utility Street"
cells = 2
sites_per_cell = 1
rooms_per_site = 2
smoke_alarms = false
feeders = true

# Room 2 of cell 1: insulation ageing, +600 mA/min up to 250 mA (below the 300 mA set-point).
[[incident]]
what = "leakage_creep"
at_s = 0
room = "u-1-1-2"
ma_per_min = 600
max_ma = 250
"#;

/// The distinct times of the residual-current points of a history answer, and the first and
/// last of their means.
fn residual_times(history: &Value) -> (Vec<u64>, Vec<f64>) {
    let mut points: Vec<(u64, f64)> = history["series"]
        .as_array()
        .expect("series")
        .iter()
        .flat_map(|s| s["points"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| Some((p["t_ms"].as_u64()?, p["residual_ma"]["avg"].as_f64()?)))
        .collect();
    points.sort_by_key(|p| p.0);
    let values = points.iter().map(|p| p.1).collect();
    let mut times: Vec<u64> = points.iter().map(|p| p.0).collect();
    times.dedup();
    (times, values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utility_user_plots_a_rising_leak_and_reads_the_reports() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let gateway = Gateway::start(dir.path(), BrokerSetup::Managed, "").await;
    let base = format!("http://{}", gateway.api_addr);
    let mut sim = Sim::start(dir.path(), SCENARIO, &gateway, &[]);
    let driver = Driver::start().await;
    // Two sites, each a feeder monitor and two room monitors.
    sim.until_connected(6, WAIT).await;

    let circuits = gateway.get("circuits").await;
    let id_of = |name: &str| {
        circuits
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .unwrap_or_else(|| panic!("circuit {name:?} in {circuits}"))
    };
    let leaking = id_of("Circuit u-1-1-2");
    let feeder = id_of("Feeder u-1-1");
    let other_cells = id_of("Circuit u-2-1-1");

    // The creeping leakage has a few seconds of readings (each report is a new point).
    firegrid_testkit::wait::until_async("the leaking circuit's readings rise", WAIT, || {
        let gateway = &gateway;
        async move {
            let h = gateway
                .get(&format!("circuits/{leaking}/history?step=raw"))
                .await;
            let (_, values) = residual_times(&h);
            (values.len() >= 4 && values.last()? > values.first()?).then_some(())
        }
    })
    .await;

    let utility = user_add(gateway.config(), "ui-utility", "utility", Some("u-1"));
    let browser = driver.browser(1280, 900).await;
    let session = login(&browser, &base, &utility).await;

    // The circuit's page: the residual-current plot holds the points the API returns.
    browser
        .goto(&format!("{base}/circuits/{leaking}"))
        .await
        .expect("the circuit page");
    let plots = browser
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("#plots[data-ready='1']"))
        .await
        .expect("the plots drawn");
    let src = plots
        .attr("data-src")
        .await
        .expect("attr")
        .expect("its source");
    let query = src.split_once('?').expect("a query").1;
    let history = gateway
        .get(&format!("circuits/{leaking}/history?{query}"))
        .await;
    let (times, values) = residual_times(&history);
    assert!(times.len() >= 4, "readings of the leak: {history}");
    assert!(
        values.last() > values.first(),
        "the leakage rises: {values:?}"
    );
    let drawn = browser
        .find(Locator::Css("#plots .plot"))
        .await
        .expect("the residual-current plot")
        .attr("data-points")
        .await
        .expect("attr")
        .and_then(|n| n.parse::<usize>().ok())
        .expect("its point count");
    assert_eq!(drawn, times.len(), "the plot's points are the API's");
    // Its first and last instants are the API's too.
    let plot = browser
        .find(Locator::Css("#plots .plot"))
        .await
        .expect("the residual-current plot");
    for (attr, want) in [("data-t0", times[0]), ("data-t1", times[times.len() - 1])] {
        let got = plot.attr(attr).await.expect("attr");
        assert_eq!(got, Some(want.to_string()), "{attr}");
    }
    // Its leak trace: the circuit itself, measured, with its evidence row.
    let rows = browser
        .find_all(Locator::Css("#leak-trace table.evidence tbody tr"))
        .await
        .expect("the evidence");
    assert_eq!(rows.len(), 1, "a room's circuit has no measured branch");

    // The utility page: the site's tree with the leaking circuit under the feeder; the ranking.
    browser
        .goto(&format!("{base}/utility"))
        .await
        .expect("the utility page");
    let nested = browser
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css(&format!(
            "li[data-circuit='{feeder}'] li[data-circuit='{leaking}']"
        )))
        .await;
    assert!(nested.is_ok(), "the leaking circuit under its feeder");
    let ranked = browser
        .find_all(Locator::Css("table.ranking tbody tr"))
        .await
        .expect("ranking rows");
    assert!(ranked.len() >= 3, "the cell's measured circuits are ranked");
    browser
        .goto(&format!("{base}/circuits/{feeder}"))
        .await
        .expect("the feeder's page");
    let suspect = browser
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("#leak-trace p.suspect"))
        .await
        .expect("a suspect under the feeder")
        .attr("data-circuit")
        .await
        .expect("attr");
    assert_eq!(
        suspect.as_deref(),
        Some(leaking.to_string().as_str()),
        "the feeder's trace names the leaking room's circuit"
    );

    // The report page, for the scoped user: four reports, each with its CSV.
    browser
        .goto(&format!("{base}/reports"))
        .await
        .expect("the report page");
    for id in [
        "report-unresolved",
        "report-repeat-sites",
        "report-grid-cells",
        "report-devices",
    ] {
        browser
            .wait()
            .at_most(ELEMENT)
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let cells = browser
        .find(Locator::Css("#report-grid-cells tr.cell[data-area='u-1']"))
        .await
        .expect("cell u-1's row")
        .text()
        .await
        .expect("its text");
    assert!(
        cells.contains("100.0 %"),
        "every device of u-1 online: {cells}"
    );
    let (status, csv) = fetch(&base, "/reports/grid-cells?format=csv", &session).await;
    assert_eq!(status, 200, "{csv}");
    assert!(csv.contains("\r\ncell,u-1,"), "{csv}");
    assert!(!csv.contains("u-2"), "only the user's cell: {csv}");
    browser.close().await.expect("close the browser");

    // Cell u-2's pages answer 403; no page names an outside URL.
    for path in [
        "/reports?area=u-2".to_string(),
        "/utility?area=u-2".to_string(),
        format!("/circuits/{other_cells}"),
    ] {
        let (status, text) = fetch(&base, &path, &session).await;
        assert_eq!(status, 403, "{path}: {text}");
    }
    for path in [
        "/utility".to_string(),
        "/reports".to_string(),
        format!("/circuits/{leaking}"),
    ] {
        let (status, text) = fetch(&base, &path, &session).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            outside_urls(&text).is_empty(),
            "{path}: {:?}",
            outside_urls(&text)
        );
    }
    drop(sim);
}
