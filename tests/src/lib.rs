#![doc = include_str!("../README.md")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use firegrid_testkit::firegrid::{Firegrid, Ready};
pub use firegrid_testkit::firegrid::{GatewayConfig, mqtt_login};
use firegrid_testkit::mqtt::{Login, Mqtt};
pub use firegrid_testkit::{Mosquitto, Process, free_port, metric, until};

pub mod browser;
mod centre;
pub use centre::Centre;
use firegrid_simulator::provision::Api;
use reqwest::Method;
use serde_json::Value;

/// How long a test waits for something that should happen: generous, because CI machines are
/// slow and shared; nothing waits this long when it works.
pub const WAIT: Duration = Duration::from_secs(90);

/// How long the harness waits for a process to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A binary of this workspace, built beside the test executable (`cargo test --workspace`
/// builds every binary first).
///
/// # Panics
/// If it was not built, saying how to build it.
pub fn binary(name: &str) -> PathBuf {
    firegrid_testkit::firegrid::sibling_binary(name)
}

/// Where the gateway's devices connect.
#[derive(Debug, Clone, Copy)]
pub enum BrokerSetup {
    /// The default: the Mosquitto the gateway manages, on a free port; every client logs in.
    Managed,
    /// An external broker (Mosquitto) at this address.
    External(SocketAddr),
}

/// The `firegrid` binary with its own data directory and free ports: the test kit's
/// [`Firegrid`] (its `process`, `api_addr`, `token` through `Deref`) with the simulator's API
/// client and where devices and tools connect.
#[derive(Debug)]
pub struct Gateway {
    firegrid: Firegrid,
    /// Its API.
    pub api: Api,
    /// Where devices connect (MQTT 5).
    pub devices: SocketAddr,
    /// Where tools connect (MQTT 3.1.1): the same broker.
    pub tools: SocketAddr,
    /// How a tool logs in to the managed broker: the admin token's MQTT account
    /// (`token.<id>`, the token's secret); `None` on an external broker that lets anyone in.
    pub tool_login: Option<(String, String)>,
}

impl std::ops::Deref for Gateway {
    type Target = Firegrid;
    fn deref(&self) -> &Firegrid {
        &self.firegrid
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Firegrid {
        &mut self.firegrid
    }
}

impl Gateway {
    /// Starts `firegrid run` in `dir` on `broker`; `extra` (a TOML fragment, e.g. an
    /// `[engine]` section) is merged into its configuration. Returns once the API answers.
    pub async fn start(dir: &Path, broker: BrokerSetup, extra: &str) -> Self {
        let broker = match broker {
            BrokerSetup::Managed => firegrid_testkit::Broker::Managed,
            BrokerSetup::External(addr) => firegrid_testkit::Broker::External(addr),
        };
        let mut config = GatewayConfig::new(&dir.join("data"), broker);
        config.merge(extra);
        Self::start_with(dir, config).await
    }

    /// Starts `firegrid run` in `dir` with `config`; returns once the API answers.
    pub async fn start_with(dir: &Path, config: GatewayConfig) -> Self {
        let firegrid = Firegrid::start(&binary("firegrid"), config, dir, &[], Ready::Answers).await;
        let managed = firegrid.config.broker() == firegrid_testkit::Broker::Managed;
        let tool_login = managed.then(|| mqtt_login(&firegrid.token));
        let api = Api::new(&format!("http://{}", firegrid.api_addr), &firegrid.token)
            .expect("an HTTP client");
        Self {
            api,
            devices: firegrid.devices(),
            tools: firegrid.devices(),
            tool_login,
            firegrid,
        }
    }

    /// Starts the binary again (after [`Process::kill9`] or [`Process::interrupt`]) with the
    /// same configuration and data; returns once the API answers.
    pub async fn restart(&mut self) {
        self.firegrid.restart().await;
    }

    /// Its configuration file (for `firegrid user add --config`).
    pub fn config(&self) -> &Path {
        self.firegrid.config_file()
    }

    /// `GET /api/v1/{path}`.
    ///
    /// # Panics
    /// If the API refuses or does not answer.
    pub async fn get(&self, path: &str) -> Value {
        self.api
            .call(Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .unwrap_or(Value::Null)
    }

    /// The episodes the API lists for `query` (e.g. `open=true`).
    pub async fn episodes(&self, query: &str) -> Vec<Value> {
        match self.get(&format!("episodes?{query}&limit=1000")).await {
            Value::Array(a) => a,
            Value::Object(o) => o
                .get("episodes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            other => panic!("episodes: {other}"),
        }
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.firegrid.metrics().await
    }
}

/// `firegrid user add NAME --role ROLE [--area AREA] --config CONFIG` on the real binary: the
/// token it prints once.
///
/// # Panics
/// If the command fails or prints no token.
pub fn user_add(config: &Path, name: &str, role: &str, area: Option<&str>) -> String {
    firegrid_testkit::firegrid::user_add(&binary("firegrid"), config, name, role, area)
}

/// The `firegrid-sim` binary playing a scenario.
#[derive(Debug)]
pub struct Sim {
    /// The process.
    pub process: Process,
}

impl Sim {
    /// `firegrid-sim run` of `scenario` (TOML text, written into `dir`) against `gateway`,
    /// registering the district first, with `args` added. Status lines every second.
    pub fn start(dir: &Path, scenario: &str, gateway: &Gateway, args: &[&str]) -> Self {
        let file = dir.join("scenario.toml");
        std::fs::write(&file, scenario).expect("write the scenario");
        let process = Process::spawn(
            Command::new(binary("firegrid-sim"))
                .arg("run")
                .arg("--scenario")
                .arg(&file)
                .arg("--broker")
                .arg(gateway.devices.to_string())
                .arg("--api")
                .arg(format!("http://{}", gateway.api_addr))
                .env("FIREGRID_TOKEN", &gateway.token)
                .args(["--status-every-s", "1"])
                .args(args),
            &dir.join("firegrid-sim.log"),
        )
        .expect("firegrid-sim starts");
        Self { process }
    }

    /// The latest status line's counters: (connected, events sent, acks).
    pub fn status(&self) -> Option<SimStatus> {
        self.process.log().lines().rev().find_map(SimStatus::parse)
    }

    /// Waits (at most [`WAIT`]) until every event the devices sent was acknowledged end to end.
    pub async fn until_all_acked(&self) {
        until("every event acknowledged end to end", WAIT, || {
            self.status().filter(|s| s.acks >= s.events && s.events > 0)
        })
        .await;
    }

    /// Waits until the simulator says `n` devices are connected.
    pub async fn until_connected(&mut self, n: i64, timeout: Duration) {
        let what = format!("{n} devices connected, as the simulator's status line says");
        until(&what, timeout, || {
            assert!(
                self.process.alive(),
                "firegrid-sim exited:\n{}",
                self.process.log()
            );
            self.status()
                .is_some_and(|s| s.connected >= n)
                .then_some(())
        })
        .await;
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `firegrid-sim` status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimStatus {
    /// Devices with a session up.
    pub connected: i64,
    /// Telemetry messages sent.
    pub telemetry: u64,
    /// Events sent (first sends).
    pub events: u64,
    /// Events sent again.
    pub resends: u64,
    /// Acks received.
    pub acks: u64,
}

impl SimStatus {
    /// Parses "… connected N, telemetry sent N, events sent N (+N resent), acks N".
    pub fn parse(line: &str) -> Option<Self> {
        let after = |key: &str| -> Option<u64> {
            let rest = &line[line.find(key)? + key.len()..];
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        Some(Self {
            connected: i64::try_from(after("connected ")?).ok()?,
            telemetry: after("telemetry sent ")?,
            events: after("events sent ")?,
            resends: after("(+")?,
            acks: after("acks ")?,
        })
    }
}

/// A grid worker's phone: an MQTT 3.1.1 client (the test kit's [`Mqtt`], a persistent
/// session) subscribed to every alert.
#[derive(Debug)]
pub struct Worker {
    client: Mqtt,
}

impl Worker {
    /// Connects to `broker` (logging in with `login` if given: then the client id is the
    /// username) and subscribes to `firegrid/v1/alert/#`; returns once subscribed.
    pub async fn subscribe(broker: SocketAddr, id: &str, login: Option<&(String, String)>) -> Self {
        let login = Login {
            credentials: login.map(|(u, p)| (u.as_str(), p.as_str())),
            persistent: true,
        };
        let client = Mqtt::connect_with(broker, id, login).await;
        client.subscribe("firegrid/v1/alert/#").await;
        Self { client }
    }

    /// Every alert received so far.
    pub fn alerts(&self) -> Vec<Value> {
        self.client.alerts()
    }

    /// The alerts that match `pick`.
    pub fn matching(&self, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.alerts().into_iter().filter(|a| pick(a)).collect()
    }

    /// Waits (at most [`WAIT`]) for an alert `what` (`opened`, `ended`, …) of `category` about
    /// `device`, naming `description` if it does not come; returns it.
    pub async fn until_alert(
        &self,
        description: &str,
        what: &str,
        category: &str,
        device: &str,
    ) -> Value {
        self.wait_for(description, WAIT, |a| {
            a["what"] == what && a["category"] == category && a["device"] == device
        })
        .await
    }

    /// Waits until an alert matches `pick`; returns it.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        until(what, timeout, || self.matching(&pick).into_iter().next()).await
    }
}
