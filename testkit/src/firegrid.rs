//! The `firegrid` binary as a child process: [`GatewayConfig`] renders its configuration file
//! from typed settings, [`Firegrid`] makes an admin token with `firegrid user add`, runs
//! `firegrid run --config FILE` in a directory of the test's, and waits until it answers.
//!
//! Ports the configuration leaves unset (the API's, the managed broker's) are picked free; if
//! the gateway exits during start-up saying an address was in use, they are picked again and it
//! is started again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::port::{ATTEMPTS, clashed, free_port};
use crate::process::{NotReady, Process, wait_ready};

/// How long a start waits for the gateway to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the gateway's devices connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// The Mosquitto the gateway manages (the default), on a free port; every client logs in.
    Managed,
    /// An external broker at this address that lets anyone in.
    External(SocketAddr),
}

/// The gateway's configuration, rendered as its TOML file. Settings are set by their dotted
/// path (`engine.offline_grace_s`), with TOML values; the broker and the API's address have
/// their own setters.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    table: toml::Table,
    broker: Broker,
}

impl GatewayConfig {
    /// The defaults with `data_dir` and `broker`; the ports left to pick.
    pub fn new(data_dir: &Path, broker: Broker) -> Self {
        let mut me = Self {
            table: toml::Table::new(),
            broker,
        };
        me.set("data_dir", data_dir.display().to_string());
        if let Broker::External(addr) = broker {
            me.set("broker.mode", "external")
                .set("broker.external.host", addr.ip().to_string())
                .set("broker.external.port", i64::from(addr.port()));
        }
        me
    }

    /// The configuration in the TOML file `path`, for `broker` (its data directory and
    /// broker sections as the file says).
    ///
    /// # Panics
    /// If the file cannot be read or parsed.
    pub fn from_file(path: &Path, broker: Broker) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut me = Self {
            table: toml::Table::new(),
            broker,
        };
        me.merge(&text);
        me
    }

    /// Sets `path` (dotted: `engine.escalation_s`) to `value`, making the tables on the way.
    ///
    /// # Panics
    /// If a part of the path is already set to something other than a table.
    pub fn set(&mut self, path: &str, value: impl Into<toml::Value>) -> &mut Self {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().expect("split yields at least one part");
        let mut table = &mut self.table;
        for p in parts {
            table = table
                .entry(p)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap_or_else(|| panic!("{path}: {p} is not a table"));
        }
        table.insert(last.to_string(), value.into());
        self
    }

    /// The value at `path`, if set.
    pub fn get(&self, path: &str) -> Option<&toml::Value> {
        let mut parts = path.split('.');
        let mut value = self.table.get(parts.next()?)?;
        for p in parts {
            value = value.as_table()?.get(p)?;
        }
        Some(value)
    }

    /// Merges the settings of `toml` (a fragment such as `"[engine]\noffline_grace_s = 1\n"`)
    /// into these, key by key.
    ///
    /// # Panics
    /// If `toml` does not parse, saying why.
    pub fn merge(&mut self, toml: &str) -> &mut Self {
        let extra: toml::Table = toml
            .parse()
            .unwrap_or_else(|e| panic!("not a TOML fragment ({e}): {toml}"));
        fn merge_into(into: &mut toml::Table, from: toml::Table) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge_into(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        merge_into(&mut self.table, extra);
        self
    }

    /// The broker.
    pub fn broker(&self) -> Broker {
        self.broker
    }

    /// The API's address, if set.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.addr("api.listen")
    }

    /// The managed broker's plain listener, if set.
    pub fn managed_addr(&self) -> Option<SocketAddr> {
        self.addr("broker.managed.listen")
    }

    fn addr(&self, path: &str) -> Option<SocketAddr> {
        self.get(path)?.as_str()?.parse().ok()
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        toml::to_string(&self.table).unwrap_or_else(|e| {
            // A table of TOML values always renders; say what did not, if it ever does not.
            panic!("the configuration renders as TOML: {e}")
        })
    }
}

/// How a start knows the gateway is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// `/healthz` says 200: the store is open and the broker connected.
    Healthy,
    /// `GET /api/v1/areas` with the admin token answers 2xx (the API is up; the broker may be
    /// down on purpose).
    Answers,
}

/// Why the gateway did not come up ([`Firegrid::try_start`]).
#[derive(Debug, thiserror::Error)]
#[error("firegrid {what}; its log ends:\n{log}")]
pub struct StartError {
    /// What went wrong.
    pub what: String,
    /// The last lines of its log.
    pub log: String,
}

/// A running `firegrid run`. Killed when dropped; its files stay in the test's directory.
#[derive(Debug)]
pub struct Firegrid {
    /// The process.
    pub process: Process,
    /// The API's address.
    pub api_addr: SocketAddr,
    /// A city-wide admin's API token (`firegrid user add e2e-admin --role admin`).
    pub token: String,
    /// The configuration it runs with.
    pub config: GatewayConfig,
    launcher: Launcher,
}

/// How the binary is started, again and again.
#[derive(Debug)]
struct Launcher {
    binary: PathBuf,
    file: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    ready: Ready,
    starts: u32,
    http: reqwest::Client,
}

impl Firegrid {
    /// `firegrid` beside the running test executable (`target/<profile>/deps/<test>` →
    /// `target/<profile>/firegrid`; `cargo test --workspace` builds it first).
    ///
    /// # Panics
    /// If it was not built, saying how to build it.
    pub fn binary() -> PathBuf {
        sibling_binary("firegrid")
    }

    /// Writes `config` (picking the ports it leaves unset) as `dir/firegrid.toml`, makes an
    /// admin token, starts `binary run` with `env` and waits until it is up as `ready` says.
    /// Its log is `dir/firegrid-N.log` (N counts the starts).
    ///
    /// # Panics
    /// If it exits during start-up or is not up within [`START_TIMEOUT`], with its log.
    pub async fn start(
        binary: &Path,
        config: GatewayConfig,
        dir: &Path,
        env: &[(&str, &str)],
        ready: Ready,
    ) -> Self {
        Self::try_start(binary, config, dir, env, ready)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Firegrid::start`] that says why it failed instead of panicking (for the benchmark).
    ///
    /// # Errors
    /// [`StartError`] with its log if the admin token cannot be made, or it exits during
    /// start-up, or it is not up within [`START_TIMEOUT`].
    pub async fn try_start(
        binary: &Path,
        config: GatewayConfig,
        dir: &Path,
        env: &[(&str, &str)],
        ready: Ready,
    ) -> Result<Self, StartError> {
        let pick_api = config.api_addr().is_none();
        let pick_broker = config.broker == Broker::Managed && config.managed_addr().is_none();
        let mut launcher = Launcher {
            binary: binary.to_owned(),
            file: dir.join("firegrid.toml"),
            dir: dir.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ready,
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| StartError {
                    what: format!("has no HTTP client: {e}"),
                    log: String::new(),
                })?,
        };
        let mut config = config;
        let mut token = String::new();
        for attempt in 1..=ATTEMPTS {
            if pick_api {
                let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
                config.set("api.listen", api.to_string());
            }
            if pick_broker {
                let mqtt = SocketAddr::from(([127, 0, 0, 1], free_port()));
                config.set("broker.managed.listen", mqtt.to_string());
            }
            let api_addr = config.api_addr().ok_or_else(|| StartError {
                what: "has no API address (api.listen)".into(),
                log: String::new(),
            })?;
            std::fs::write(&launcher.file, config.render()).map_err(|e| StartError {
                what: format!("config not written to {}: {e}", launcher.file.display()),
                log: String::new(),
            })?;
            if token.is_empty() {
                token = try_admin_token(binary, &launcher.file, "e2e-admin")?;
            }
            let mut process = launcher.try_spawn()?;
            match launcher.wait(&mut process, api_addr, &token).await {
                Ok(()) => {
                    return Ok(Self {
                        process,
                        api_addr,
                        token,
                        config,
                        launcher,
                    });
                }
                Err(NotReady::Exited(_))
                    if attempt < ATTEMPTS
                        && (pick_api || pick_broker)
                        && clashed(&process.log()) => {}
                Err(why) => {
                    return Err(StartError {
                        what: why.to_string(),
                        log: tail(&process.log(), 40),
                    });
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Starts the binary again (killing it first if it runs) with the same configuration and
    /// data; returns once up. A port the previous run held is retried until free.
    ///
    /// # Panics
    /// If it does not come up, with its log.
    pub async fn restart(&mut self) {
        self.process.kill9();
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            self.process = self.launcher.spawn();
            match self
                .launcher
                .wait(&mut self.process, self.api_addr, &self.token)
                .await
            {
                Ok(()) => return,
                Err(NotReady::Exited(_))
                    if std::time::Instant::now() < deadline && clashed(&self.log()) =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(why) => panic!("firegrid {why} on restart:\n{}", self.log()),
            }
        }
    }

    /// Its configuration file.
    pub fn config_file(&self) -> &Path {
        &self.launcher.file
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.launcher.dir
    }

    /// The log of the current (latest) start.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Where devices connect: the managed broker's listener, or the external broker.
    pub fn devices(&self) -> SocketAddr {
        match self.config.broker {
            Broker::External(addr) => addr,
            Broker::Managed => self
                .config
                .managed_addr()
                .expect("the managed broker's address is set"),
        }
    }

    /// `firegrid user add NAME --role ROLE [--area AREA] --config FILE` on the binary: the
    /// token it prints once.
    ///
    /// # Panics
    /// If the command fails or prints no token.
    pub fn user_add(&self, name: &str, role: &str, area: Option<&str>) -> String {
        user_add(&self.launcher.binary, &self.launcher.file, name, role, area)
    }

    /// `/metrics` as text.
    ///
    /// # Panics
    /// If it does not answer.
    pub async fn metrics(&self) -> String {
        self.launcher
            .http
            .get(format!("http://{}/metrics", self.api_addr))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics' text")
    }
}

impl Launcher {
    fn spawn(&mut self) -> Process {
        self.try_spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_spawn(&mut self) -> Result<Process, StartError> {
        self.starts += 1;
        let log = self.dir.join(format!("firegrid-{}.log", self.starts));
        Process::spawn(
            Command::new(&self.binary)
                .arg("run")
                .arg("--config")
                .arg(&self.file)
                .env("RUST_LOG", "info")
                .envs(self.env.iter().map(|(k, v)| (k, v))),
            &log,
        )
        .map_err(|e| StartError {
            what: format!("{} does not start: {e}", self.binary.display()),
            log: String::new(),
        })
    }

    async fn wait(
        &self,
        process: &mut Process,
        api_addr: SocketAddr,
        token: &str,
    ) -> Result<(), NotReady> {
        let (http, base, ready) = (self.http.clone(), format!("http://{api_addr}"), self.ready);
        wait_ready(process, START_TIMEOUT, || {
            let request = match ready {
                Ready::Healthy => http.get(format!("{base}/healthz")),
                Ready::Answers => http.get(format!("{base}/api/v1/areas")).bearer_auth(token),
            };
            async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await
    }
}

/// `firegrid user add NAME --role ROLE [--area AREA] --config CONFIG` on `binary`: the token it
/// prints once.
///
/// # Panics
/// If the command fails or prints no token.
pub fn user_add(
    binary: &Path,
    config: &Path,
    name: &str,
    role: &str,
    area: Option<&str>,
) -> String {
    let mut cmd = Command::new(binary);
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

/// `firegrid user add NAME --role admin --config CONFIG` on `binary` or, if NAME exists (a
/// start over the data of an earlier one), `firegrid user token NAME`: the printed token.
///
/// # Panics
/// If the commands fail or print no token.
pub fn admin_token(binary: &Path, config: &Path, name: &str) -> String {
    try_admin_token(binary, config, name).unwrap_or_else(|e| panic!("{e}"))
}

/// [`admin_token`] that says why it failed.
///
/// # Errors
/// [`StartError`] with what the commands printed.
pub fn try_admin_token(binary: &Path, config: &Path, name: &str) -> Result<String, StartError> {
    let run = |args: &[&str]| {
        Command::new(binary)
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .map_err(|e| StartError {
                what: format!("user commands do not run: {e}"),
                log: String::new(),
            })
    };
    let mut out = run(&["user", "add", name, "--role", "admin"])?;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exists already") {
        out = run(&["user", "token", name])?;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text
        .lines()
        .skip_while(|l| !l.starts_with("token (shown once"))
        .nth(1)
        .map(|t| t.trim().to_string())
        .filter(|t| out.status.success() && !t.is_empty());
    token.ok_or_else(|| StartError {
        what: format!("user {name}: no admin token printed"),
        log: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

/// A binary of this workspace, built beside the test executable.
///
/// # Panics
/// If it was not built, saying how to build it.
pub fn sibling_binary(name: &str) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_renders_typed_settings_and_merged_fragments() {
        let mut c = GatewayConfig::new(
            Path::new("/tmp/d"),
            Broker::External(SocketAddr::from(([127, 0, 0, 1], 1884))),
        );
        c.set("api.listen", "127.0.0.1:9000")
            .set(
                "engine.escalation_s",
                toml::Value::Array(vec![1.into(), 600.into()]),
            )
            .merge("[engine]\noffline_grace_s = 1\n[broker]\nclient_id = \"x\"\n");
        let text = c.render();
        let back: toml::Table = text.parse().expect("it parses back");
        assert_eq!(back["data_dir"].as_str(), Some("/tmp/d"));
        assert_eq!(back["broker"]["mode"].as_str(), Some("external"));
        assert_eq!(back["broker"]["client_id"].as_str(), Some("x"));
        assert_eq!(back["broker"]["external"]["port"].as_integer(), Some(1884));
        assert_eq!(back["engine"]["offline_grace_s"].as_integer(), Some(1));
        assert_eq!(back["engine"]["escalation_s"][1].as_integer(), Some(600));
        assert_eq!(c.api_addr(), Some(SocketAddr::from(([127, 0, 0, 1], 9000))));
    }
}
