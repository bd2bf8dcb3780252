//! The real `firegrid` binary's `/metrics` scraped by a real scraper: VictoriaMetrics with a
//! `-promscrape.config`, which fetches it with its own HTTP client and content negotiation and
//! parses it with its own Prometheus text parser, as a production VictoriaMetrics, vmagent or
//! Prometheus would. Every series the gateway exposes is stored, every sample line is parsed
//! (`scrape_samples_scraped`), and a count the gateway changed arrives with its labels.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use firegrid_testkit::{Broker, GatewayConfig, Mosquitto, VictoriaMetrics, free_port, metric};
use serde_json::{Value, json};

use support::{Binary, Mqtt, now_ms, until_async};

const WAIT: Duration = Duration::from_secs(30);

/// An instant query's single value, if it has exactly one series.
async fn value(http: &reqwest::Client, vm: &str, expr: &str) -> Option<f64> {
    let body: Value = http
        .get(format!("{vm}/api/v1/query"))
        .query(&[("query", expr)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())?;
    let result = body["data"]["result"].as_array()?;
    match result.as_slice() {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

/// The metric names of the sample lines of a `/metrics` text, and how many sample lines.
fn sample_names(text: &str) -> (BTreeSet<String>, usize) {
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let names = samples
        .iter()
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    (names, samples.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scraper_reads_every_series_of_metrics() {
    support::init_logs();
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let dir = tempfile::tempdir().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut config =
        GatewayConfig::new(&dir.path().join("data"), Broker::External(mosquitto.addr()));
    config
        .set("broker.client_id", "firegrid-e2e-scrape")
        .set("api.listen", api.to_string());
    let mut gw = Binary::launch(config, dir.path()).await;
    let vm = VictoriaMetrics::start_scraping("firegrid", api, Duration::from_millis(200))
        .await
        .expect("victoria-metrics starts");
    let http = reqwest::Client::new();

    // A message from a device nobody registered: counted at ingest and refused by reason.
    let stray = Mqtt::connect(mosquitto.addr(), "e2e-stray-7").await;
    stray
        .publish(
            "firegrid/v1/dev/stray-7/telemetry",
            json!({"seq": 1, "ts": now_ms(), "up_ms": 1000, "readings": [{"ch": 0, "residual_ma": 40}]})
                .to_string(),
        )
        .await;
    let series = "firegrid_refusals_total{reason=\"unknown_device\"}";
    let text = until_async("the refusal in /metrics", WAIT, || {
        let api = &gw.api;
        async move {
            let text = api.metrics().await;
            (metric(&text, series) == Some(1.0)).then_some(text)
        }
    })
    .await;

    // The scraper saw it, with its labels and the job's.
    let query = "firegrid_refusals_total{job=\"firegrid\",reason=\"unknown_device\"}";
    until_async("the refusal scraped", WAIT, || async {
        (value(&http, &vm.url(), query).await == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(
        value(&http, &vm.url(), "up{job=\"firegrid\"}").await,
        Some(1.0)
    );

    // Every sample line parsed: the scraper's count of the last scrape is the number of
    // sample lines the gateway serves (nothing changes them now).
    let (names, samples) = sample_names(&text);
    let scraped = until_async("every sample scraped", WAIT, || async {
        let n = value(&http, &vm.url(), "scrape_samples_scraped{job=\"firegrid\"}").await?;
        (n as usize == samples).then_some(n)
    })
    .await;
    assert!(scraped >= 90.0, "{scraped} samples");

    // Every metric name stored.
    let body: Value = http
        .get(format!("{}/api/v1/label/__name__/values", vm.url()))
        .query(&[("match[]", "{job=\"firegrid\"}")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let stored: BTreeSet<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let missing: Vec<_> = names.difference(&stored).collect();
    assert!(missing.is_empty(), "not stored by the scraper: {missing:?}");

    // A histogram reads as one: every bucket with its `le` (12 bounds and +Inf).
    let buckets = value(
        &http,
        &vm.url(),
        "count(firegrid_journal_commit_seconds_bucket{job=\"firegrid\"})",
    )
    .await;
    assert_eq!(buckets, Some(13.0));
    gw.interrupt().await;
}
