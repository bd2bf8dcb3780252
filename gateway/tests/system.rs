//! The gateway's own state, end to end: the data directory's disk. The marks are set so that
//! the test machine's real disk is "low" (every disk is below `u64::MAX` MiB), and what a low
//! disk does is checked through the running gateway: `/healthz` stays 200 and says so, the
//! state is published retained for the monitoring centre, and `/metrics` has the free bytes.
//! A full disk (a 503) is the API's unit test `healthz_reports_the_disk`.

#[allow(dead_code)]
mod support;

use serde_json::Value;
use support::{DEADLINE, Gateway, Mqtt, until, until_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_disk_is_warned_about_published_and_measured() {
    let gw = Gateway::start(|c| {
        c.store.disk_low_mb = u64::MAX >> 21;
        c.store.disk_full_mb = 0;
    })
    .await;
    let health = until_async("/healthz says the disk is low", DEADLINE, || async {
        let h = gw.api.request("GET", "/healthz", None).await;
        let j: Value = h.json();
        (h.status == 200 && j["disk"]["level"] == "low").then_some(j)
    })
    .await;
    let warnings = health["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with("disk: low, "))),
        "{health}"
    );
    assert!(health["disk"]["total_bytes"].as_u64() > Some(0), "{health}");

    // Retained: a monitoring client that subscribes later still gets it.
    let observer = Mqtt::connect(gw.mqtt_v311(), "centre").await;
    observer.subscribe("firegrid/v1/system/#").await;
    let state = until("the retained disk state", DEADLINE, || {
        observer
            .received("firegrid/v1/system/disk")
            .first()
            .map(support::Received::json)
    })
    .await;
    assert_eq!(state["level"], "low", "{state}");
    assert!(state["free_bytes"].as_u64().is_some(), "{state}");

    let metrics = gw.api.metrics().await;
    assert!(
        support::metric(&metrics, "firegrid_disk_free_bytes").is_some_and(|b| b > 0.0),
        "firegrid_disk_free_bytes"
    );
    gw.stop().await;
}
