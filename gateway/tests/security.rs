//! Identity end to end (docs/security.md): on the default setup — the managed Mosquitto — and
//! on an external Mosquitto with the account files firegrid writes, a device logs in only with
//! its own credential, uses only its own topics, and a rotated or revoked credential stops
//! working; hostile CONNECTs stop neither broker nor gateway; `/healthz` follows the listener;
//! SIGTERM stops the gateway as cleanly as Ctrl-C. What must not arrive is checked by order: a
//! later message from the same sender that does arrive.

#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use firegrid_gateway::broker::probe::{MqttVersion, ProbeError, probe, probe_as};
use firegrid_testkit::{Broker, GatewayConfig, Mosquitto};
use support::{Binary, DEADLINE, Gateway, Mqtt, mqtt_login, until, until_async};

/// A leakage alarm on channel 0 (412 mA against 300 mA).
fn leakage_alarm(seq: u32) -> String {
    format!(
        r#"{{"seq":{seq},"ts":1764403260000,"up_ms":86460000,"kind":"alarm_raised","ch":0,"residual_ma":412,"threshold_ma":300}}"#
    )
}

fn event_topic(device: &str) -> String {
    format!("firegrid/v1/dev/{device}/event")
}

/// Waits for the alert about `device`'s leakage alarm on `observer`.
async fn alert_about(observer: &Mqtt, device: &str) -> Value {
    until(&format!("an alert about {device}"), DEADLINE, || {
        observer
            .alerts()
            .into_iter()
            .find(|a| a["device"] == device)
    })
    .await
}

/// Whether the broker lets `user` in with `password`.
async fn logs_in(addr: SocketAddr, user: &str, password: &str) -> bool {
    match probe_as(addr, MqttVersion::V311, DEADLINE, Some((user, password))).await {
        Ok(()) => true,
        Err(ProbeError::Refused(_)) => false,
        Err(e) => panic!("the broker did not answer {user}'s login: {e}"),
    }
}

/// Waits until the broker has loaded `user`'s account (a registration reloads the broker's
/// accounts within tens of milliseconds).
async fn until_loaded(addr: SocketAddr, user: &str, password: &str) {
    until_async(&format!("{user}'s account loaded"), DEADLINE, || async {
        logs_in(addr, user, password).await.then_some(())
    })
    .await;
}

/// Waits until the gateway has acknowledged `device`'s event `seq` end to end (it publishes the
/// ack only once the event is journaled).
async fn acked(observer: &Mqtt, device: &str, seq: u32) {
    until(&format!("the ack of {device} seq {seq}"), DEADLINE, || {
        observer.acked(device).contains(&seq).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_default_setup_a_device_acts_only_as_itself() {
    let gw = Gateway::start_managed(|_| {}).await;
    let broker: SocketAddr = gw.mqtt_v311();
    let site = gw.api.create_district().await;
    let a = gw.api.install_device("hz-a", site).await;
    let b = gw.api.install_device("hz-b", site).await;
    let (admin_user, admin_pass) = mqtt_login(gw.api.token());
    let observer = Mqtt::connect_as(broker, &admin_user, &admin_pass).await;
    observer.subscribe("firegrid/#").await;

    // Anonymous, wrong, and another device's password: refused.
    assert!(matches!(
        probe(broker, MqttVersion::V311, DEADLINE).await,
        Err(ProbeError::Refused(_))
    ));
    until_loaded(broker, "hz-a", &a).await;
    until_loaded(broker, "hz-b", &b).await;
    assert!(!logs_in(broker, "hz-a", "guess").await);
    assert!(!logs_in(broker, "hz-a", &b).await);

    // A forges B's alarm, an alert, a command and a configuration, then raises its own alarm:
    // the gateway journals and alerts A's, and nothing of the forgeries reaches anyone.
    let dev_a = Mqtt::connect_as(broker, "hz-a", &a).await;
    dev_a.subscribe("firegrid/#").await;
    dev_a.subscribe("firegrid/v1/dev/hz-b/cmd").await;
    dev_a.publish(&event_topic("hz-b"), leakage_alarm(1)).await;
    dev_a
        .publish("firegrid/v1/alert/grid-7", r#"{"fake":true}"#)
        .await;
    dev_a
        .publish("firegrid/v1/dev/hz-b/cmd", r#"{"cmd":"silence"}"#)
        .await;
    dev_a
        .publish("firegrid/v1/dev/hz-b/config", r#"{"channels":[]}"#)
        .await;
    dev_a.publish(&event_topic("hz-a"), leakage_alarm(1)).await;
    let alert = alert_about(&observer, "hz-a").await;
    assert_eq!(alert["what"], "opened", "{alert}");
    acked(&observer, "hz-a", 1).await;
    // Nothing forged reached anyone: no message carries a forged payload, and no event of B's
    // (the gateway itself publishes B's retained configuration, with its own payload).
    let forged: Vec<String> = observer
        .received("firegrid/")
        .into_iter()
        .filter(|m| {
            m.topic == "firegrid/v1/dev/hz-b/event"
                || m.payload == br#"{"cmd":"silence"}"#
                || m.payload == br#"{"channels":[]}"#
        })
        .map(|m| m.topic)
        .collect();
    assert!(
        forged.is_empty(),
        "forgeries reached the observer: {forged:?}"
    );
    assert!(
        observer.alerts().iter().all(|a| a.get("fake").is_none()),
        "a forged alert reached the observer"
    );
    assert!(
        gw.api.episodes("device=hz-b").await.is_empty(),
        "no episode for B from A's forgery"
    );

    // The gateway commands B, then A: A hears its own command and never B's (nor B's acks).
    for device in ["hz-b", "hz-a"] {
        gw.api
            .post(
                &format!("/api/v1/devices/{device}/commands"),
                json!({"cmd": "self_test"}),
            )
            .await;
    }
    until("A's own command", DEADLINE, || {
        dev_a
            .received("firegrid/v1/dev/hz-a/cmd")
            .first()
            .map(|_| ())
    })
    .await;
    let heard: Vec<String> = dev_a
        .received("firegrid/")
        .into_iter()
        .map(|m| m.topic)
        .collect();
    assert!(
        heard.iter().all(|t| t.starts_with("firegrid/v1/dev/hz-a/")),
        "A heard only its own topics: {heard:?}"
    );

    // Rotated: the old password stops at once (the connected client is dropped), the new works.
    let rotated = gw
        .api
        .post("/api/v1/devices/hz-a/credentials", json!(null))
        .await;
    let new = rotated["mqtt_password"]
        .as_str()
        .expect("a new password")
        .to_string();
    until_async("the old password refused", DEADLINE, || async {
        (!logs_in(broker, "hz-a", &a).await).then_some(())
    })
    .await;
    assert!(logs_in(broker, "hz-a", &new).await);
    // Revoked: refused.
    let r = gw
        .api
        .request("DELETE", "/api/v1/devices/hz-a/credentials", None)
        .await;
    assert_eq!(r.status, 204);
    until_async("the revoked password refused", DEADLINE, || async {
        (!logs_in(broker, "hz-a", &new).await).then_some(())
    })
    .await;
    let metrics = gw.api.metrics().await;
    let refused = support::metric(&metrics, "firegrid_broker_refused_logins_total").unwrap_or(0.0);
    assert!(refused >= 3.0, "refused logins counted: {refused}");
    gw.stop().await;
}

/// What an attacker's CONNECT packets look like: a client id (and optionally a login).
fn connect_packet(client_id: &[u8], login: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 4];
    body.push(if login.is_some() { 0xC2 } else { 0x02 });
    body.extend_from_slice(&30u16.to_be_bytes());
    let string = |b: &mut Vec<u8>, s: &[u8]| {
        b.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
        b.extend_from_slice(&s[..s.len().min(usize::from(u16::MAX))]);
    };
    string(&mut body, client_id);
    if let Some((u, p)) = login {
        string(&mut body, u.as_bytes());
        string(&mut body, p.as_bytes());
    }
    let mut packet = vec![0x10];
    remaining_length(&mut packet, body.len());
    packet.extend_from_slice(&body);
    packet
}

/// Sends `device`'s leakage alarm `seq` until `observer` sees it acknowledged, as the firmware
/// resends an unacknowledged event (every 10 s there, every second here).
async fn resend_until_acked(device: &Mqtt, observer: &Mqtt, id: &str, seq: u32) {
    let give_up = std::time::Instant::now() + 6 * DEADLINE;
    while !observer.acked(id).contains(&seq) {
        assert!(
            std::time::Instant::now() < give_up,
            "{id}'s alarm {seq} was never acknowledged"
        );
        device.publish(&event_topic(id), leakage_alarm(seq)).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            until("the ack", DEADLINE, || {
                observer.acked(id).contains(&seq).then_some(())
            }),
        )
        .await;
    }
}

/// A QoS 0 PUBLISH packet.
fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + topic.len() + payload.len());
    body.extend_from_slice(
        &u16::try_from(topic.len())
            .expect("a short topic")
            .to_be_bytes(),
    );
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(payload);
    let mut packet = vec![0x30];
    remaining_length(&mut packet, body.len());
    packet.extend_from_slice(&body);
    packet
}

/// MQTT's variable-length "remaining length".
fn remaining_length(packet: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// Waits until the peer closes `socket` (reads, and drops, what it sends before).
async fn until_closed(socket: &mut TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await
    .expect("the broker closes the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_connects_stop_neither_the_broker_nor_the_gateway() {
    let gw = Gateway::start_managed(|_| {}).await;
    let broker: SocketAddr = gw.mqtt_v311();
    let site = gw.api.create_district().await;
    let a = gw.api.install_device("hz-a", site).await;
    let (admin_user, admin_pass) = mqtt_login(gw.api.token());
    let observer = Mqtt::connect_as(broker, &admin_user, &admin_pass).await;
    observer.subscribe("firegrid/v1/#").await;
    until_loaded(broker, "hz-a", &a).await;

    let long = vec![b'x'; 64 * 1024];
    let ids: Vec<&[u8]> = vec![
        b"a/b",
        b"+",
        b"#",
        b"",
        &long,
        b"hz-a",
        b"firegrid.gateway",
        b"firegrid.gateway-alarms",
    ];
    let mut held = Vec::new();
    for listener in [broker, gw.running.api] {
        for id in &ids {
            for login in [None, Some(("hz-a", "wrong")), Some((&*admin_user, "wrong"))] {
                if let Ok(mut s) = TcpStream::connect(listener).await {
                    let _ = s.write_all(&connect_packet(id, login)).await;
                    held.push(s);
                }
            }
        }
        // The same id racing from two sockets, with the real password.
        let (s1, s2) = tokio::join!(TcpStream::connect(listener), TcpStream::connect(listener));
        for s in [s1, s2].into_iter().flatten() {
            let mut s = s;
            let _ = s
                .write_all(&connect_packet(b"hz-a", Some(("hz-a", &a))))
                .await;
            held.push(s);
        }
        // A CONNECT cut half way, the socket held open; another closed half way.
        let packet = connect_packet(b"hz-half", None);
        for keep in [true, false] {
            if let Ok(mut s) = TcpStream::connect(listener).await {
                let _ = s.write_all(&packet[..packet.len() / 2]).await;
                if keep {
                    held.push(s);
                }
            }
        }
    }

    // Still up: a registered device's alarm arrives end to end, and /healthz says 200.
    until_loaded(broker, "hz-a", &a).await;
    let dev = Mqtt::connect_as(broker, "hz-a", &a).await;
    dev.publish(&event_topic("hz-a"), leakage_alarm(1)).await;
    let alert = alert_about(&observer, "hz-a").await;
    assert_eq!(alert["what"], "opened", "{alert}");
    let health = gw.api.request("GET", "/healthz", None).await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    drop(held);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_says_503_while_the_brokers_listener_does_not_answer() {
    let gw = Gateway::start_managed(|_| {}).await;
    let pid_file = gw
        .running
        .store
        .parent()
        .expect("the data dir")
        .join("mosquitto/mosquitto.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .expect("the managed broker's pid")
        .trim()
        .to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, pid.as_str()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    // Stopped (not exited): the port is open, nothing answers.
    signal("-STOP");
    let wait = Duration::from_secs(15);
    until_async("/healthz 503", wait, || async {
        let r = gw.api.request("GET", "/healthz", None).await;
        (r.status == 503 && r.body.contains("listener does not answer")).then_some(())
    })
    .await;
    signal("-CONT");
    until_async("/healthz 200 again", wait, || async {
        (gw.api.request("GET", "/healthz", None).await.status == 200).then_some(())
    })
    .await;
    gw.stop().await;
}

/// An external Mosquitto whose password file and ACL firegrid writes (`[broker.external]
/// password_file`, `acl_file`, `reload_command`), as an operator would run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_mosquitto_with_firegrids_account_files_keeps_the_same_rules() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let passwd = dir.path().join("passwd");
    let acl = dir.path().join("acl");
    std::fs::write(&passwd, "").expect("an empty password file");
    std::fs::write(&acl, "").expect("an empty ACL");
    let mosquitto = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\nuse_username_as_clientid true\n\
         user root\n",
        passwd.display(),
        acl.display()
    ))
    .await
    .expect("mosquitto starts");
    let pid = mosquitto.pid().to_string();
    let mut config =
        GatewayConfig::new(&dir.path().join("data"), Broker::External(mosquitto.addr()));
    config
        .set("broker.client_id", "e2e.external")
        .set("broker.external.password_env", "E2E_BROKER_PASSWORD")
        .set(
            "broker.external.password_file",
            passwd.display().to_string(),
        )
        .set("broker.external.acl_file", acl.display().to_string())
        .set(
            "broker.external.reload_command",
            vec!["kill".to_string(), "-HUP".into(), pid],
        );
    let mut gw = Binary::launch_with_env(
        config,
        dir.path(),
        &[("E2E_BROKER_PASSWORD", "a-long-random-gateway-password")],
    )
    .await;
    let broker = mosquitto.addr();
    let site = gw.api.create_district().await;
    let a = gw.api.install_device("hz-a", site).await;
    let b = gw.api.install_device("hz-b", site).await;
    let (admin_user, admin_pass) = mqtt_login(gw.api.token());
    // The accounts reach Mosquitto through the reload command.
    until_async("the admin's MQTT account", DEADLINE, || async {
        logs_in(broker, &admin_user, &admin_pass)
            .await
            .then_some(())
    })
    .await;
    let observer = Mqtt::connect_as(broker, &admin_user, &admin_pass).await;
    observer.subscribe("firegrid/#").await;
    assert!(
        !logs_in(broker, "hz-a", &b).await,
        "B's password is not A's"
    );
    let dev = Mqtt::connect_as(broker, "hz-a", &a).await;
    dev.publish(&event_topic("hz-b"), leakage_alarm(1)).await;
    dev.publish(&event_topic("hz-a"), leakage_alarm(1)).await;
    let alert = alert_about(&observer, "hz-a").await;
    assert_eq!(alert["what"], "opened", "{alert}");
    assert!(
        !observer
            .received("firegrid/v1/dev/hz-b/event")
            .iter()
            .any(|_| true),
        "A's forgery on B's topic went nowhere"
    );
    let r = gw
        .api
        .request("DELETE", "/api/v1/devices/hz-a/credentials", None)
        .await;
    assert_eq!(r.status, 204);
    until_async("the revoked password refused", DEADLINE, || async {
        (!logs_in(broker, "hz-a", &a).await).then_some(())
    })
    .await;
    // SIGTERM: as clean a stop as Ctrl-C.
    gw.stop_with("TERM").await;
    assert!(
        gw.log_text().contains("SIGTERM: stopping"),
        "{}",
        gw.log_text()
    );
}

/// `[api] tls_cert_file`/`tls_key_file`: the API speaks HTTPS (a client trusting the CA gets
/// `/healthz` and, with a token, `/api/v1`), and nothing in plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_serves_https_from_pem_files() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca_key = KeyPair::generate().expect("a key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("a certificate");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).expect("written");
    std::fs::write(&key_file, key.serialize_pem()).expect("written");

    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let mut config = firegrid_gateway::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    config.api.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.api.tls_cert_file = cert_file;
    config.api.tls_key_file = key_file;
    config.broker.mode = firegrid_gateway::broker::settings::BrokerMode::External;
    config.broker.external.port = mosquitto.port();
    let token = support::admin_token(&config.data_dir);
    let cancel = tokio_util::sync::CancellationToken::new();
    let (ready, running) = tokio::sync::oneshot::channel();
    let gateway = tokio::spawn(firegrid_gateway::app::run(
        config,
        cancel.clone(),
        Some(ready),
    ));
    let api = tokio::time::timeout(DEADLINE, running)
        .await
        .expect("started in time")
        .expect("it says where it runs")
        .api;

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("PEM"))
        .timeout(DEADLINE)
        .build()
        .expect("a client");
    let health = until_async("/healthz over HTTPS", DEADLINE, || async {
        let r = https
            .get(format!("https://{api}/healthz"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(r)
    })
    .await;
    assert_eq!(health.status(), 200);
    let me = https
        .get(format!("https://{api}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(me.status(), 200);
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a client")
        .get(format!("http://{api}/healthz"))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "no plain HTTP on the TLS port"
    );
    cancel.cancel();
    let _ = tokio::time::timeout(DEADLINE, gateway).await;
}

/// On a broker that lets anyone in (an external one without firegrid's account files), a flood
/// of invented device ids costs bounded rows — the pending list keeps the most recently seen,
/// the rest are counted — writes nothing to the journal, and a registered device's alarm sent
/// after it is still acknowledged and alerted (the flood was taken first: same sender, same
/// topic kind, so the broker delivers in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_device_flood_costs_bounded_rows_and_does_not_stop_an_alarm() {
    const FLOOD: u32 = 3000;
    const LISTED: u64 = 100;
    // The broker queues everything for the gateway (Mosquitto drops beyond 1000 queued
    // messages by default, and the device would resend): what is measured is the gateway.
    let gw = Gateway::start_with_broker("max_queued_messages 0\n", |c| {
        c.store.pending_devices_max = LISTED as usize;
    })
    .await;
    let api = &gw.api;
    let site = api.create_district().await;
    api.install_device("hz-real", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-real/ack").await;

    let flooder = Mqtt::connect(broker, "flooder").await;
    for i in 0..FLOOD {
        flooder
            .publish(&event_topic(&format!("ghost-{i:05}")), leakage_alarm(i + 1))
            .await;
    }
    flooder
        .publish(&event_topic("hz-real"), leakage_alarm(7))
        .await;
    acked(&observer, "hz-real", 7).await;
    alert_about(&observer, "hz-real").await;

    let metrics = api.metrics().await;
    assert_eq!(
        support::metric(
            &metrics,
            "firegrid_refusals_total{reason=\"unknown_device\"}"
        ),
        Some(f64::from(FLOOD)),
        "every invented id's message refused and counted"
    );
    assert_eq!(gw.journaled("ghost-00000", None), 0, "nothing journaled");
    // The sightings are written in the background, batch by batch: wait for the count.
    let dropped = until_async("the pending list's drops counted", DEADLINE, || async {
        let m = api.metrics().await;
        support::metric(&m, "firegrid_pending_devices_dropped_total")
            .filter(|n| *n == f64::from(FLOOD) - LISTED as f64)
    })
    .await;
    let pending = api.get("/api/v1/pending").await;
    let pending = pending.as_array().expect("a list");
    assert_eq!(pending.len() as u64, LISTED, "dropped {dropped}");
    let last = format!("ghost-{:05}", FLOOD - 1);
    assert!(
        pending.iter().any(|p| p["id"] == last.as_str()),
        "the most recently seen kept: {last}"
    );
    assert!(
        api.episodes("")
            .await
            .iter()
            .all(|e| e["device"] == "hz-real"),
        "no episode for an invented id"
    );
    gw.stop().await;
}

/// An uplink larger than the gateway's client accepts never wedges ingest. On the default setup
/// the managed broker refuses it first (its `max_packet_size` is below the client's): the
/// device is disconnected, the gateway never sees it, and the device's next alarm, from a new
/// connection, arrives. On an external broker without a packet limit the gateway's client
/// drops the connection the packet came on, discards the session holding it, and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversize_uplink_never_wedges_ingest() {
    // The default setup.
    let gw = Gateway::start_managed(|_| {}).await;
    let site = gw.api.create_district().await;
    let password = gw.api.install_device("hz-big", site).await;
    let broker = gw.mqtt_v311();
    until_loaded(broker, "hz-big", &password).await;
    let (user, secret) = mqtt_login(gw.api.token());
    until_loaded(broker, &user, &secret).await;
    let observer = Mqtt::connect_as(broker, &user, &secret).await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-big/ack").await;
    // The device logs in and sends a 64 KiB event: the broker closes its connection.
    let mut raw = TcpStream::connect(broker)
        .await
        .expect("the broker listens");
    raw.write_all(&connect_packet(b"hz-big", Some(("hz-big", &password))))
        .await
        .expect("CONNECT sent");
    let mut big = leakage_alarm(1).into_bytes();
    big.resize(32 * 1024, b' ');
    raw.write_all(&publish_packet(&event_topic("hz-big"), &big))
        .await
        .expect("PUBLISH sent");
    until_closed(&mut raw).await;
    // Its next alarm, on a new connection, arrives; the oversize one never did.
    let device = Mqtt::connect_as(broker, "hz-big", &password).await;
    device
        .publish(&event_topic("hz-big"), leakage_alarm(2))
        .await;
    acked(&observer, "hz-big", 2).await;
    alert_about(&observer, "hz-big").await;
    assert!(
        !observer.acked("hz-big").contains(&1),
        "the oversize event was never taken"
    );
    gw.stop().await;

    // An external broker without a packet limit.
    let gw = Gateway::start(|_| {}).await;
    let site = gw.api.create_district().await;
    gw.api.install_device("hz-big", site).await;
    let broker = gw.mqtt_v311();
    let observer = Mqtt::connect(broker, "observer").await;
    observer.subscribe("firegrid/v1/alert/#").await;
    observer.subscribe("firegrid/v1/dev/hz-big/ack").await;
    let device = Mqtt::connect(broker, "hz-big").await;
    device.publish(&event_topic("hz-big"), big).await;
    device
        .publish(&event_topic("hz-big"), leakage_alarm(2))
        .await;
    // The alarm sent after the oversize packet went with the discarded session: the device
    // resends it, as its firmware does.
    resend_until_acked(&device, &observer, "hz-big", 2).await;
    alert_about(&observer, "hz-big").await;
    until_async("the oversize packet counted", DEADLINE, || async {
        let m = gw.api.metrics().await;
        support::metric(&m, "firegrid_broker_oversize_total").filter(|n| *n >= 1.0)
    })
    .await;
    gw.stop().await;
}
