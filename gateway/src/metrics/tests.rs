// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use firegrid_protocols::DeviceTopic;

use super::*;

#[test]
fn histogram_buckets_are_cumulative_and_inclusive_with_sum_and_count() {
    let m = Metrics::new();
    m.journal_commit(Duration::from_micros(400)); // ≤ 0.0005
    m.journal_commit(Duration::from_millis(1)); // ≤ 0.001 (inclusive)
    m.journal_commit(Duration::from_millis(5)); // ≤ 0.005
    m.journal_commit(Duration::from_secs(3)); // +Inf
    let text = m.render();
    for line in [
        "firegrid_journal_commit_seconds_bucket{le=\"0.0005\"} 1\n",
        "firegrid_journal_commit_seconds_bucket{le=\"0.001\"} 2\n",
        "firegrid_journal_commit_seconds_bucket{le=\"0.002\"} 2\n",
        "firegrid_journal_commit_seconds_bucket{le=\"0.005\"} 3\n",
        "firegrid_journal_commit_seconds_bucket{le=\"2.5\"} 3\n",
        "firegrid_journal_commit_seconds_bucket{le=\"+Inf\"} 4\n",
        "firegrid_journal_commit_seconds_sum 3.0064\n",
        "firegrid_journal_commit_seconds_count 4\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn labels_and_help_are_escaped() {
    let m = Metrics::new();
    m.refused("we\"ird\\\nreason");
    let text = m.render();
    assert!(
        text.contains("firegrid_refusals_total{reason=\"we\\\"ird\\\\\\nreason\"} 1\n"),
        "{text}"
    );
}

#[test]
fn refusals_appear_by_reason_once_counted_and_sorted() {
    let m = Metrics::new();
    assert!(!m.render().contains("firegrid_refusals_total"));
    m.refused("duplicate");
    m.refused("duplicate");
    m.refused("bad_topic");
    let text = m.render();
    assert!(text.contains(
        "# HELP firegrid_refusals_total Uplink messages refused, by reason.\n\
         # TYPE firegrid_refusals_total counter\n"
    ));
    // By reason, sorted, whatever the order they came in.
    assert!(text.contains(
        "firegrid_refusals_total{reason=\"bad_topic\"} 1\n\
         firegrid_refusals_total{reason=\"duplicate\"} 2\n"
    ));
}

#[test]
fn sampled_counters_never_go_down() {
    let m = Metrics::new();
    m.set_readings_stored(40);
    m.set_readings_stored(30);
    m.set_broker_counters(2, 1);
    m.set_broker_counters(1, 0);
    let text = m.render();
    assert!(
        text.contains("firegrid_readings_stored_total 40\n"),
        "{text}"
    );
    assert!(
        text.contains("firegrid_broker_reconnects_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("firegrid_broker_oversize_total 1\n"),
        "{text}"
    );
}

/// The whole exposition of a small example, exactly: every name, label, help text and type
/// as the hand-written exposition had them.
#[test]
fn whole_text_of_a_small_example() {
    let m = Metrics::new();
    m.ingested(IngestKind::Telemetry);
    m.ingested(IngestKind::Telemetry);
    m.ingested(IngestKind::Event);
    m.refused("duplicate");
    m.journal_commit(Duration::from_millis(2));
    m.alarm_latency(Duration::from_millis(4));
    m.alert(AlertChannel::Mqtt, AlertResult::Ok);
    m.alert(AlertChannel::Webhook, AlertResult::Retry);
    m.episode_opened(Category::Smoke);
    m.set_devices_known(12);
    m.set_alarm_path_realtime(true);
    m.set_disk_free(1 << 40);
    m.set_queue_depth(Queue::Journal, 3);
    m.readings_dropped(5);
    m.set_readings_stored(40);
    m.set_broker_counters(1, 0);
    m.api_refused("csrf");
    m.api_refused("something else");
    assert_eq!(m.ingested_total(), 3);
    let expected = include_str!("tests/example.txt");
    assert_eq!(m.render(), expected);
}

#[test]
fn uplink_topics_are_ingest_kinds() {
    assert_eq!(
        IngestKind::of(DeviceTopic::Telemetry),
        Some(IngestKind::Telemetry)
    );
    assert_eq!(
        IngestKind::of(DeviceTopic::Status),
        Some(IngestKind::Status)
    );
    assert_eq!(IngestKind::of(DeviceTopic::Cmd), None);
}

#[test]
fn metrics_are_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Metrics>();
    let m = Arc::new(Metrics::new());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    m.ingested(IngestKind::Status);
                    m.refused("x");
                    m.alarm_latency(Duration::from_millis(3));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let text = m.render();
    assert!(text.contains("firegrid_ingest_messages_total{kind=\"status\"} 4000\n"));
    assert!(text.contains("firegrid_refusals_total{reason=\"x\"} 4000\n"));
    assert!(text.contains("firegrid_alarm_latency_seconds_count 4000\n"));
    assert!(text.contains("firegrid_alarm_latency_seconds_bucket{le=\"0.005\"} 4000\n"));
}

#[test]
fn the_content_type_is_prometheus_text_0_0_4() {
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

/// Metrics with every optional part on: the TSDB writer, a Modbus bus, the uplink, a refusal
/// of each open-ended kind. Every family the gateway has then shows.
fn everything_on() -> Metrics {
    let m = Metrics::new();
    m.refused("duplicate");
    m.tsdb().set_enabled();
    m.modbus
        .bus("line-1")
        .request(crate::modbus::stats::RequestResult::Ok);
    m.uplink.set_enabled();
    m.uplink.refused("bad_crc");
    m
}

/// `(name, type)` of every family in an exposition, from its `# TYPE` lines, checking that
/// each has a `# HELP` line with text just before it.
fn families(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let help = i
            .checked_sub(1)
            .and_then(|h| lines[h].strip_prefix(&format!("# HELP {name} ")));
        assert!(
            help.is_some_and(|h| h.len() > 3),
            "{name}: no help text before its TYPE line"
        );
        out.push((name.to_string(), kind.to_string()));
    }
    out
}

/// Every `firegrid_…` name in `text` that is a metric of the gateway's: not a crate path
/// (`firegrid_gateway::…`) nor a reading the TSDB writer stores (`firegrid_residual_ma`).
fn names_in(text: &str, out: &mut BTreeSet<String>) {
    const READINGS: [&str; 2] = ["firegrid_residual_ma", "firegrid_temp_dc"];
    let mut rest = text;
    while let Some(at) = rest.find("firegrid_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let crate_path = tail[end..].starts_with("::");
        let wildcard = tail[end..].starts_with('*');
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if name.len() > PREFIX.len()
            && !crate_path
            && !wildcard
            && !preceded
            && !READINGS.contains(&name)
        {
            // A histogram's series name its family.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            out.insert(family.to_string());
        }
        rest = &tail[end..];
    }
}

/// The metric names the project documents: docs/, the READMEs, the Grafana dashboard's
/// queries, the tables in the module docs of the gateway's metrics, the default
/// configuration's comments.
fn documented() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.extend(
        [
            "README.md",
            "deploy/grafana/README.md",
            "deploy/grafana/dashboards/firegrid.json",
        ]
        .map(|f| root.join(f)),
    );
    let mut names = BTreeSet::new();
    for f in files {
        names_in(&std::fs::read_to_string(&f).unwrap(), &mut names);
    }
    for module in [
        include_str!("../metrics.rs"),
        include_str!("../tsdb.rs"),
        include_str!("../modbus/stats.rs"),
        include_str!("../uplink/stats.rs"),
        include_str!("../notify/dispatch.rs"),
        include_str!("../evidence.rs"),
        include_str!("../broker/mosquitto/supervisor.rs"),
    ] {
        let docs: String = module
            .lines()
            .filter(|l| l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        names_in(&docs, &mut names);
    }
    // The default configuration's comments (`firegrid print-default-config`).
    names_in(include_str!("../config.rs"), &mut names);
    names
}

/// Every metric the docs name is in `/metrics` with its `# HELP` and `# TYPE`, and every
/// family in `/metrics` is documented: a renamed metric fails here before a dashboard breaks.
#[test]
fn every_documented_metric_is_exposed_with_help_and_type_and_back() {
    let text = everything_on().render();
    let exposed: BTreeSet<String> = families(&text).into_iter().map(|(n, _)| n).collect();
    let documented = documented();
    assert!(documented.len() > 40, "{documented:?}");
    let missing: Vec<_> = documented.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "documented, not in /metrics: {missing:?}"
    );
    let undocumented: Vec<_> = exposed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "in /metrics, documented nowhere: {undocumented:?}"
    );
}

/// The text format's rules a scraper relies on: one `# TYPE` per family, counters named
/// `_total`, every sample line of a family after its `# TYPE`, every value a number.
#[test]
fn the_exposition_follows_the_text_format() {
    let text = everything_on().render();
    let families = families(&text);
    let mut seen = BTreeSet::new();
    for (name, kind) in &families {
        assert!(seen.insert(name.clone()), "{name}: TYPE twice");
        assert!(
            ["counter", "gauge", "histogram"].contains(&kind.as_str()),
            "{name}: {kind}"
        );
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
        assert!(name.starts_with(PREFIX), "{name}");
    }
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split_once(' ').map(|(n, _)| n);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let family = current.unwrap();
        assert!(line.starts_with(family), "{line:?} outside its family");
        let value = line.rsplit_once(' ').unwrap().1;
        assert!(value.parse::<f64>().is_ok(), "{line:?}");
    }
    assert!(
        !text.contains("# EOF"),
        "OpenMetrics' end marker in 0.0.4 text"
    );
}
