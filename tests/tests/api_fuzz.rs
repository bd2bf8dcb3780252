//! The API described and fuzzed by outsiders (issue 14 item 5): the real `firegrid` binary with
//! a small district (areas, a worker, a site, a room, a circuit, a device); its
//! `GET /api/v1/openapi.json` checked by openapi-spec-validator, then PyPI's schemathesis
//! (pinned, `setup_schemathesis` in scripts/lib/setup.sh) sends every documented operation
//! generated valid and invalid requests and checks that none answers a 5xx, and that every
//! answer's status and body are the ones the document declares.
//!
//! Not fuzzed: `GET /api/v1/live`, the server-sent event stream, which never ends (a fuzzer's
//! request would wait for its timeout on every example), and `DELETE /api/v1/tokens/{id}`,
//! which the fuzzer would call with its own token's id (listed by `GET /api/v1/tokens`) and
//! spend the rest of the run on 401s; both are checked by the gateway's own tests.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use firegrid_e2e::{BrokerSetup, Gateway, WAIT};
use firegrid_testkit::Mqtt;
use firegrid_testkit::schemathesis::{schemathesis, spec_validator};
use reqwest::Method;
use serde_json::{Value, json};

/// Examples per operation and phase: enough to find a 500, few enough for CI (< 2 minutes on a
/// loaded 2-core machine).
const MAX_EXAMPLES: &str = "12";
/// The fuzzer's seed: a failure is the same on every run.
const SEED: &str = "20261206";

async fn post(gateway: &Gateway, path: &str, body: Value) -> Value {
    gateway
        .api
        .call(Method::POST, path, Some(&body))
        .await
        .unwrap_or_else(|e| panic!("POST {path} {body}: {e}"))
        .unwrap_or(Value::Null)
}

/// The district the fuzzer's requests find: the ids are the documented ones (areas `fz-*`,
/// device `fz-dev-1`, the store's first worker, site, room and circuit: 1), and an open alarm
/// episode of the device (its leakage alarm published over MQTT with its own credential), whose
/// id is returned.
async fn district(gateway: &Gateway) -> i64 {
    for (id, parent, level) in [
        ("fz-district", None, "district"),
        ("fz-street", Some("fz-district"), "street"),
        ("fz-grid", Some("fz-street"), "grid"),
    ] {
        post(
            gateway,
            "areas",
            json!({"id": id, "parent_id": parent, "level": level, "name": id}),
        )
        .await;
    }
    post(
        gateway,
        "workers",
        json!({"name": "Wang", "area_id": "fz-grid", "phone": "13800000000"}),
    )
    .await;
    let site = post(
        gateway,
        "sites",
        json!({"name": "No. 1", "address": "1 Fuzz Road", "area_id": "fz-grid"}),
    )
    .await;
    let site = site["id"].clone();
    let room = post(gateway, "rooms", json!({"site_id": site, "name": "101"})).await;
    let circuit = post(
        gateway,
        "circuits",
        json!({"site_id": site, "name": "Main"}),
    )
    .await;
    let device = post(
        gateway,
        "devices",
        json!({"id": "fz-dev-1", "kind": "electrical_fire_monitor", "state": "in_service",
               "site_id": site, "room_id": room["id"], "circuit_id": circuit["id"],
               "grid_id": "fz-grid"}),
    )
    .await;
    let password = device["mqtt_password"]
        .as_str()
        .expect("the device's MQTT password");
    let mqtt = Mqtt::connect_as(gateway.devices, "fz-dev-1", password).await;
    mqtt.subscribe("firegrid/v1/dev/fz-dev-1/ack").await;
    mqtt.publish(
        "firegrid/v1/dev/fz-dev-1/event",
        r#"{"seq":1,"up_ms":1000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}"#,
    )
    .await;
    mqtt.wait_for(
        "the alarm's ack",
        "firegrid/v1/dev/fz-dev-1/ack",
        WAIT,
        |_| true,
    )
    .await;
    let episodes = gateway.episodes("open=true").await;
    episodes
        .first()
        .and_then(|e| e["id"].as_i64())
        .unwrap_or_else(|| panic!("the alarm's episode: {episodes:?}"))
}

fn run(command: &mut Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Whether a failed run failed only inside the fuzzer: CPython 3.11's `ast` module can lose
/// count of its recursion depth after an error (cpython#106905), which Hypothesis meets while
/// describing a strategy ("AST constructor recursion depth mismatch", hypothesis#4364), and
/// schemathesis reports it as a runtime error of its own — while every test case passed. The
/// count is shared between threads: with two workers a run met it about one time in three on
/// this machine (twice in a row once), with one worker not in six runs; one worker it is, and
/// such a run is still run once more.
fn only_the_tools_own_error(report: &str) -> bool {
    let all_passed = report.lines().any(|l| {
        let mut n = l
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty());
        l.contains(" generated, ")
            && l.trim_end().ends_with(" passed")
            && matches!((n.next(), n.next(), n.next()), (Some(a), Some(b), None) if a == b)
    });
    all_passed && report.contains("AST constructor recursion depth mismatch")
}

#[test]
fn only_cpythons_ast_bug_with_every_case_passed_is_the_tools_own_error() {
    let bug = "Runtime Error\nAST constructor recursion depth mismatch (before=66, after=61)";
    assert!(only_the_tools_own_error(&format!(
        "{bug}\nTest cases:\n  3348 generated, 3348 passed\n"
    )));
    assert!(!only_the_tools_own_error(&format!(
        "{bug}\nTest cases:\n  3348 generated, 3347 passed, 1 failed\n"
    )));
    assert!(!only_the_tools_own_error(
        "Runtime Error\nsomething else\nTest cases:\n  3348 generated, 3348 passed\n"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_document_validates_and_the_fuzzer_finds_no_server_error_or_schema_violation() {
    let Some(st) = schemathesis() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let gateway = Gateway::start(dir.path(), BrokerSetup::Managed, "").await;
    let episode = district(&gateway).await;

    // The document needs a token like every /api/v1 route (decision 17).
    let document = gateway.get("openapi.json").await;
    assert_eq!(document["openapi"], "3.1.0", "{document}");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("the document written");

    let (valid, report) = run(Command::new(spec_validator(&st)).arg(&file));
    assert!(
        valid,
        "openapi-spec-validator refuses the document:\n{report}"
    );

    let started = Instant::now();
    let (mut passed, mut report) = fuzz(&st, &file, &gateway, dir.path(), episode);
    if !passed && only_the_tools_own_error(&report) {
        eprintln!(
            "schemathesis stumbled on CPython's ast bug; run again:\n{}",
            tail(&report)
        );
        (passed, report) = fuzz(&st, &file, &gateway, dir.path(), episode);
    }
    eprintln!(
        "schemathesis ran {:.0?}:\n{}",
        started.elapsed(),
        tail(&report)
    );
    assert!(
        passed,
        "schemathesis found problems (the gateway's log: {}):\n{report}",
        dir.path().display()
    );
}

/// schemathesis's configuration: the admin's token for the document's bearer scheme; the
/// district's real ids (and the report names) as dictionaries that the reads and changes of
/// one thing (`GET`, `PUT` `/…/{id}…`, `GET /reports/{name}`) draw their path's parameter from
/// half of the time (the other half is generated: unknown or malformed ids). Deletes and
/// creates are left to generated ids, so the district stays for the whole run. `EPISODE` is
/// the open episode's id.
const CONFIG: &str = r#"
[auth.openapi.bearer]
bearer = "${FIREGRID_FUZZ_TOKEN}"

# Revoking the fuzzer's own token (its id is in every listing of tokens and learned from it)
# would end the run with 401s: never fuzzed.
[[operations]]
include-path = "/api/v1/tokens/{id}"
include-method = "DELETE"
enabled = false

[dictionaries.device]
values = ["fz-dev-1"]
[dictionaries.area]
values = ["fz-grid", "fz-street", "fz-district"]
[dictionaries.number]
values = ["1"]

[[operations]]
include-path-regex = '^/api/v1/devices/\{id\}'
include-method-regex = "^(GET|PUT)$"
parameters = { "path.id" = { dictionary = "device", probability = 0.5 } }

[[operations]]
include-path-regex = '^/api/v1/areas/\{id\}'
include-method-regex = "^(GET|PUT)$"
parameters = { "path.id" = { dictionary = "area", probability = 0.5 } }

[[operations]]
include-path-regex = '^/api/v1/(workers|sites|rooms|circuits)/\{id\}'
include-method-regex = "^(GET|PUT)$"
parameters = { "path.id" = { dictionary = "number", probability = 0.5 } }

[dictionaries.episode]
values = ["EPISODE"]
[[operations]]
include-path-regex = '^/api/v1/episodes/\{id\}'
include-method = "GET"
parameters = { "path.id" = { dictionary = "episode", probability = 0.5 } }

[dictionaries.report]
values = ["unresolved", "repeat-sites", "grid-cells", "devices"]
[[operations]]
include-path = "/api/v1/reports/{name}"
include-method = "GET"
parameters = { "path.name" = { dictionary = "report", probability = 0.5 } }
"#;

fn fuzz(st: &Path, document: &Path, gateway: &Gateway, dir: &Path, episode: i64) -> (bool, String) {
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, CONFIG.replace("EPISODE", &episode.to_string()))
        .expect("the fuzzer's configuration written");
    run(Command::new(st)
        .current_dir(dir)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(document)
        .args(["--url", &format!("http://{}", gateway.api_addr)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: CPython 3.11's `ast` bug is met between threads (`only_the_tools_own_error`).
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--exclude-path", "/api/v1/live"])
        .args(["--output-sanitize", "false"])
        .env("FIREGRID_FUZZ_TOKEN", &gateway.token)
        .env("NO_COLOR", "1"))
}

fn tail(report: &str) -> String {
    let lines: Vec<&str> = report.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
