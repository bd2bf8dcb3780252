//! Commissioning as a recorded test on the real binaries (docs/commissioning.md): devices
//! running the real firmware (`firegrid-sim`), put in `commissioned` by an installer, tested —
//! the monitor's self-test command, the smoke alarm's test button — with the results on the
//! installer's topic and not the grid worker's, never escalating; then the signed record,
//! checked by `firegrid record verify`, refused after any byte is changed.

use std::process::Command;
use std::time::Duration;

use firegrid_e2e::{BrokerSetup, Gateway, Sim, WAIT, binary, until, user_add};
use firegrid_simulator::provision::Api;
use firegrid_testkit::Mqtt;
use firegrid_testkit::mqtt::Login;
use firegrid_testkit::until_async;
use reqwest::Method;
use serde_json::{Value, json};

const INSTALLER_TOPIC: &str = "firegrid/v1/people/a-1/installer/li.inst";
const WORKER_TOPIC: &str = "firegrid/v1/people/a-1/worker";

/// `firegrid record verify FILE ARGS`: exit code and what it said.
fn verify(file: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("firegrid"))
        .args(["record", "verify"])
        .arg(file)
        .args(args)
        .output()
        .expect("firegrid record verify runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn test_of(api: &Api, id: i64) -> Value {
    api.call(Method::GET, &format!("device-tests/{id}"), None)
        .await
        .expect("the test")
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installer_tests_commissioned_devices_and_gets_a_signed_record() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Escalation after 2 s: a test alarm that escalated would show it within the test.
    let gateway = Gateway::start(
        dir.path(),
        BrokerSetup::Managed,
        "[engine]\nescalation_s = [2, 4, 8]\n",
    )
    .await;
    let login = gateway
        .tool_login
        .clone()
        .expect("the managed broker's login");
    let watcher = Mqtt::connect_with(
        gateway.tools,
        &login.0,
        Login {
            credentials: Some((login.0.as_str(), login.1.as_str())),
            persistent: false,
        },
    )
    .await;
    watcher.subscribe("firegrid/v1/people/#").await;
    watcher.subscribe("firegrid/v1/alert/#").await;

    // One room with a monitor (a-1-1-1-m) and a smoke alarm (a-1-1-1-s); the smoke alarm's
    // test button is pressed 40 s into the scenario, for 3 s.
    let scenario = r#"name = "commissioning"

[devices]
sample_interval_ms = 500
report_interval_s = 5
heartbeat_interval_s = 5
alarm_delay_s = 1

[[street]]
id = "a"
name = "A Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 1

[[incident]]
what = "smoke"
at_s = 40
room = "a-1-1-1"
for_s = 3
"#;
    let mut sim = Sim::start(
        dir.path(),
        scenario,
        &gateway,
        &["--backoff-base-ms", "200"],
    );
    sim.until_connected(2, WAIT).await;

    // The installer of cell a-1 takes both devices out of service for commissioning.
    let base = format!("http://{}", gateway.api_addr);
    let token = user_add(gateway.config(), "li.inst", "installer", Some("a-1"));
    let installer = Api::new(&base, &token).expect("an HTTP client");
    for d in ["a-1-1-1-m", "a-1-1-1-s"] {
        installer
            .call(
                Method::POST,
                &format!("devices/{d}/state"),
                Some(&json!({"to": "commissioned"})),
            )
            .await
            .unwrap_or_else(|e| panic!("{d} commissioned: {e}"));
    }

    // 1. The monitor's self-test command: its result on the installer's topic, with times.
    let asked = installer
        .call(
            Method::POST,
            "devices/a-1-1-1-m/tests",
            Some(&json!({"kind": "self_test"})),
        )
        .await
        .expect("a self-test is asked")
        .expect("the test");
    let id = asked["id"].as_i64().expect("its id");
    let done = until_async("the self-test's result", WAIT, || async {
        let t = test_of(&installer, id).await;
        t["result"].is_string().then_some(t)
    })
    .await;
    assert_eq!(done["result"], "passed", "{done}");
    eprintln!(
        "self-test: device→gateway {} ms, gateway→installer {} ms, request→installer {} ms",
        done["device_to_gateway_ms"], done["gateway_to_installer_ms"], done["total_ms"]
    );
    for k in [
        "device_ms",
        "received_ms",
        "delivered_ms",
        "total_ms",
        "gateway_to_installer_ms",
    ] {
        assert!(done[k].is_i64() || done[k].is_u64(), "{k} measured: {done}");
    }
    assert!(
        done["gateway_to_installer_ms"].as_i64() >= Some(0),
        "{done}"
    );
    let said = watcher
        .wait_for(
            "the self-test result on the installer's topic",
            INSTALLER_TOPIC,
            WAIT,
            |m| m.json()["test"]["id"].as_i64() == Some(id),
        )
        .await;
    assert_eq!(said.json()["test"]["result"], "passed");

    // 2. The smoke alarm's test button: the test alarm reaches the installer, not the worker.
    let asked = installer
        .call(
            Method::POST,
            "devices/a-1-1-1-s/tests",
            Some(&json!({"kind": "button"})),
        )
        .await
        .expect("a button test is asked")
        .expect("the test");
    let button = asked["id"].as_i64().expect("its id");
    let alarm = watcher
        .wait_for(
            "the smoke test alarm on the installer's topic",
            INSTALLER_TOPIC,
            WAIT,
            |m| {
                let v = m.json();
                v["alert"]["device"] == "a-1-1-1-s" && v["alert"]["what"] == "opened"
            },
        )
        .await
        .json();
    assert_eq!(alarm["alert"]["test"], true, "{alarm}");
    assert_eq!(alarm["alert"]["category"], "smoke", "{alarm}");
    assert_eq!(alarm["worker"]["name"], "li.inst", "{alarm}");
    let done = until_async("the button test's result", WAIT, || async {
        let t = test_of(&installer, button).await;
        t["result"].is_string().then_some(t)
    })
    .await;
    assert_eq!(done["result"], "alarm", "{done}");
    eprintln!(
        "test button: device→gateway {} ms, gateway→installer {} ms",
        done["device_to_gateway_ms"], done["gateway_to_installer_ms"]
    );
    assert!(done["total_ms"].as_i64() > Some(0), "{done}");
    // The smoke ends after 3 s, past the first escalation step: by its `ended` alert any
    // escalation or worker delivery of the episode would have been sent.
    watcher
        .wait_for(
            "the smoke test's end on the installer's topic",
            INSTALLER_TOPIC,
            WAIT,
            |m| {
                let v = m.json();
                v["alert"]["device"] == "a-1-1-1-s" && v["alert"]["what"] == "ended"
            },
        )
        .await;
    let to_worker: Vec<Value> = watcher
        .received(WORKER_TOPIC)
        .iter()
        .map(firegrid_testkit::Received::json)
        .filter(|v| v["alert"]["device"] == "a-1-1-1-s")
        .collect();
    assert!(
        to_worker.is_empty(),
        "the grid worker was paged: {to_worker:?}"
    );
    let on_cell_topic = watcher
        .alerts()
        .into_iter()
        .filter(|a| a["device"] == "a-1-1-1-s")
        .collect::<Vec<_>>();
    assert!(
        on_cell_topic.is_empty(),
        "on the cell's alert topic: {on_cell_topic:?}"
    );
    let escalated = watcher
        .received(INSTALLER_TOPIC)
        .iter()
        .map(firegrid_testkit::Received::json)
        .filter(|v| v["alert"]["what"] == "escalated")
        .count();
    assert_eq!(escalated, 0, "a test alarm escalated");
    let episodes = gateway.episodes("device=a-1-1-1-s").await;
    assert!(
        episodes.iter().all(|e| e["escalation"] == 0),
        "{episodes:?}"
    );

    // The roster and the events show what the devices said.
    let roster = installer
        .call(Method::GET, "roster?area=a-1", None)
        .await
        .expect("the roster")
        .expect("rows");
    let smoke = roster
        .as_array()
        .and_then(|r| r.iter().find(|d| d["id"] == "a-1-1-1-s"))
        .cloned()
        .unwrap_or_else(|| panic!("the smoke alarm in {roster}"));
    assert!(smoke["firmware"].is_string(), "{smoke}");
    assert!(smoke["battery_mv"].is_i64(), "{smoke}");
    let events = installer
        .call(Method::GET, "devices/a-1-1-1-m/events?kind=self_test", None)
        .await
        .expect("events")
        .expect("a list");
    assert!(!events.as_array().is_none_or(Vec::is_empty), "{events}");

    // 3. The record: issued with the measured latencies, verified by the binary.
    let client = reqwest::Client::new();
    let answer = client
        .post(format!(
            "{base}/api/v1/devices/a-1-1-1-s/commissioning-record"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the record is issued");
    assert_eq!(answer.status(), 201);
    let file_bytes = answer.bytes().await.expect("the record file").to_vec();
    let record: Value = serde_json::from_slice(&file_bytes).expect("JSON");
    let tests = record["record"]["tests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tests.len(), 1, "{record}");
    assert_eq!(tests[0]["result"], "alarm");
    assert!(tests[0]["total_ms"].as_i64() > Some(0), "{record}");
    assert!(tests[0]["device_to_gateway_ms"].is_i64(), "{record}");
    assert_eq!(record["record"]["installer"], "li.inst");
    assert_eq!(record["record"]["binding"]["grid_id"], "a-1");
    assert!(
        record["record"]["device"]["firmware"].is_string(),
        "{record}"
    );
    let file = dir.path().join("record.json");
    std::fs::write(&file, &file_bytes).expect("write the record");
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().expect("a UTF-8 path");
    let (code, said) = verify(&file, &["--data-dir", data_dir]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("valid"), "{said}");
    // The same with the public key the API gives, and the download route's bytes.
    let key = gateway.get("commissioning/key").await;
    let key = key["public_key"].as_str().expect("the key").to_owned();
    let (code, said) = verify(&file, &["--key", &key]);
    assert_eq!(code, 0, "{said}");
    let downloaded = client
        .get(format!(
            "{base}/api/v1/commissioning-records/{}",
            record["record"]["id"]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(downloaded.to_vec(), file_bytes);

    // Any byte changed: refused (exit 1), each byte of the file in turn.
    let bad = dir.path().join("changed.json");
    for i in 0..file_bytes.len() {
        let mut changed = file_bytes.clone();
        changed[i] ^= 0x01;
        std::fs::write(&bad, &changed).expect("write");
        let (code, said) = verify(&bad, &["--key", &key]);
        assert_eq!(code, 1, "byte {i} changed: {said}");
    }
    let (code, said) = verify(&bad, &["--key", "AAAA"]);
    assert_eq!(code, 2, "a bad key is a usage error: {said}");

    // A grid worker of another cell sees none of it.
    let other = user_add(gateway.config(), "zhao", "grid_worker", Some("b-9"));
    let other = Api::new(&base, &other).expect("an HTTP client");
    let refused = other
        .call(Method::GET, "devices/a-1-1-1-s/tests", None)
        .await
        .expect_err("outside their area");
    assert!(refused.to_string().contains("403"), "{refused}");
    until("the simulator still runs", Duration::from_secs(5), || {
        sim.process.alive().then_some(())
    })
    .await;
}
