#![doc = include_str!("../README.md")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use firegrid_gateway::broker::testing::{Mosquitto, free_port};

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
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build --workspace`, or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// Polls `check` every 50 ms until it gives a value, or panics naming `what` after `timeout`.
pub async fn until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process whose output goes to a log file, killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a second handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        Self {
            child: Some(child),
            log,
        }
    }

    /// What it wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, and waits until it is gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGINT (Ctrl-C), and waits up to 30 s for it to exit; says whether it exited cleanly.
    pub async fn interrupt(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where the gateway's devices connect.
#[derive(Debug, Clone, Copy)]
pub enum BrokerSetup {
    /// The default: the Mosquitto the gateway manages, on a free port; every client logs in.
    Managed,
    /// An external broker (Mosquitto) at this address.
    External(SocketAddr),
}

/// The `firegrid` binary with its own data directory and free ports.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    pub process: Process,
    /// Its API.
    pub api: Api,
    /// Its API's address.
    pub api_addr: SocketAddr,
    /// A city-wide admin's API token (`firegrid user add e2e-admin --role admin`).
    pub token: String,
    /// Where devices connect (MQTT 5).
    pub devices: SocketAddr,
    /// Where tools connect (MQTT 3.1.1): the same broker.
    pub tools: SocketAddr,
    /// How a tool logs in to the managed broker: the admin token's MQTT account
    /// (`token.<id>`, the token's secret); `None` on an external broker that lets anyone in.
    pub tool_login: Option<(String, String)>,
    config: PathBuf,
    dir: PathBuf,
    starts: u32,
}

impl Gateway {
    /// Starts `firegrid run` in `dir` on `broker`; `extra` is appended to its configuration
    /// (e.g. an `[engine]` section). Returns once `/healthz` answers.
    pub async fn start(dir: &Path, broker: BrokerSetup, extra: &str) -> Self {
        let api_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (devices, tools, broker_section) = match broker {
            BrokerSetup::Managed => {
                let devices = SocketAddr::from(([127, 0, 0, 1], free_port()));
                (
                    devices,
                    devices,
                    format!("[broker.managed]\nlisten = \"{devices}\"\n"),
                )
            }
            BrokerSetup::External(addr) => (
                addr,
                addr,
                format!(
                    "[broker]\nmode = \"external\"\n[broker.external]\nhost = \"{}\"\nport = {}\n",
                    addr.ip(),
                    addr.port()
                ),
            ),
        };
        let config = dir.join("firegrid.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\n{broker_section}[api]\nlisten = \"{api_addr}\"\n{extra}",
                dir.join("data").display()
            ),
        )
        .expect("write the gateway's config");
        let token = user_add(&config, "e2e-admin", "admin", None);
        let tool_login = matches!(broker, BrokerSetup::Managed).then(|| mqtt_login(&token));
        let api = Api::new(&format!("http://{api_addr}"), &token).expect("an HTTP client");
        let mut me = Self {
            process: launch(&config, dir, 1),
            api,
            api_addr,
            token,
            devices,
            tools,
            tool_login,
            config,
            dir: dir.to_owned(),
            starts: 1,
        };
        me.until_up().await;
        me
    }

    /// Starts the binary again (after [`Process::kill9`] or [`Process::interrupt`]) with the
    /// same configuration and data; returns once healthy.
    pub async fn restart(&mut self) {
        self.process.kill9();
        self.starts += 1;
        self.process = launch(&self.config, &self.dir, self.starts);
        self.until_up().await;
    }

    async fn until_up(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            assert!(
                self.process.alive(),
                "firegrid exited during start-up:\n{}",
                self.process.log()
            );
            if let Ok(Some(_)) = self.api.call(Method::GET, "areas", None).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "firegrid not up within {START_TIMEOUT:?}:\n{}",
                self.process.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its configuration file (for `firegrid user add --config`).
    pub fn config(&self) -> &Path {
        &self.config
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
        reqwest::get(format!("http://{}/metrics", self.api_addr))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

/// `firegrid user add NAME --role ROLE [--area AREA] --config CONFIG` on the real binary: the
/// token it prints once.
///
/// # Panics
/// If the command fails or prints no token.
pub fn user_add(config: &Path, name: &str, role: &str, area: Option<&str>) -> String {
    let mut cmd = Command::new(binary("firegrid"));
    cmd.args(["user", "add", name, "--role", role, "--config"])
        .arg(config);
    if let Some(a) = area {
        cmd.args(["--area", a]);
    }
    let out = cmd.output().expect("firegrid user add runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "firegrid user add: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .skip_while(|l| !l.starts_with("token (shown once"))
        .nth(1)
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| panic!("no token printed: {text}"))
}

/// The managed broker's login of an API token `<id>.<secret>`: username `token.<id>`, password
/// the secret.
///
/// # Panics
/// If the token is not of that form.
pub fn mqtt_login(token: &str) -> (String, String) {
    let (id, secret) = token.split_once('.').expect("a token is <id>.<secret>");
    (format!("token.{id}"), secret.to_string())
}

fn launch(config: &Path, dir: &Path, start: u32) -> Process {
    Process::spawn(
        Command::new(binary("firegrid"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info"),
        dir.join(format!("firegrid-{start}.log")),
    )
}

/// A value of a Prometheus series in `/metrics` text (`name{labels}` exactly as printed).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
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
            dir.join("firegrid-sim.log"),
        );
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
        let deadline = Instant::now() + timeout;
        loop {
            assert!(
                self.process.alive(),
                "firegrid-sim exited:\n{}",
                self.process.log()
            );
            if self.status().is_some_and(|s| s.connected >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} devices not connected within {timeout:?}:\n{}",
                tail(&self.process.log(), 20)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// A grid worker's phone: an MQTT 3.1.1 client subscribed to every alert.
#[derive(Debug)]
pub struct Worker {
    alerts: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Connects to `broker` (logging in with `login` if given: then the client id is the
    /// username) and subscribes to `firegrid/v1/alert/#`; returns once subscribed.
    pub async fn subscribe(broker: SocketAddr, id: &str, login: Option<&(String, String)>) -> Self {
        let id = login.map_or(id, |(u, _)| u.as_str());
        let mut options = rumqttc::MqttOptions::new(id, broker.ip().to_string(), broker.port());
        if let Some((u, p)) = login {
            options.set_credentials(u.clone(), p.clone());
        }
        options.set_keep_alive(Duration::from_secs(10));
        options.set_clean_session(false);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let alerts = alerts.clone();
            async move {
                let mut subscribed_tx = Some(subscribed_tx);
                loop {
                    match eventloop.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            let _ = client
                                .subscribe("firegrid/v1/alert/#", rumqttc::QoS::AtLeastOnce)
                                .await;
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            if let Some(tx) = subscribed_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                                alerts
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(v);
                            }
                        }
                        Ok(_) => {}
                        // The broker restarts in some tests: reconnect, paced.
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        });
        tokio::time::timeout(START_TIMEOUT, subscribed)
            .await
            .expect("the worker's subscription within the start timeout")
            .expect("the worker's client runs");
        Self { alerts, task }
    }

    /// Every alert received so far.
    pub fn alerts(&self) -> Vec<Value> {
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
