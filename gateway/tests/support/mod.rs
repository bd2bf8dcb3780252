//! What the end-to-end tests share: a gateway in this process or as the real binary, a small
//! HTTP/1.1 client for its API, MQTT clients (rumqttc, and Debian's `mosquitto_pub` and
//! `mosquitto_sub`), and polling with deadlines (never a sleep to synchronise).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use firegrid_gateway::app::{self, AppError, Running};
use firegrid_gateway::broker::settings::BrokerMode;
use firegrid_gateway::config::Config;
use firegrid_testkit::{Broker, Firegrid, GatewayConfig, Mosquitto};

/// The longest any one step waits for something to happen.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::mqtt::now_ms;

/// Logs of the gateway go to the test's captured output (shown only when a test fails).
/// `RUST_LOG` overrides the level (default `warn`).
pub(crate) fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let filter = tracing_subscriber::EnvFilter::try_new(base).expect("a valid log filter");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

// ---- polling ----------------------------------------------------------------------------------

#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::{until, until_async};

// ---- HTTP -------------------------------------------------------------------------------------

/// An HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Response {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request (`Connection: close`) with a bearer `token` (none if empty), JSON
/// body if any.
pub(crate) async fn http(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        if !token.is_empty() {
            let _ = write!(head, "Authorization: Bearer {token}\r\n");
        }
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        std::io::Result::Ok(raw)
    };
    let raw = tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Response {
        status,
        body: String::from_utf8(body).ok()?,
    })
}

/// The gateway's HTTP API, called with a user's token (leaked to keep `Api` `Copy`: a few
/// bytes per test).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Api(pub(crate) SocketAddr, pub(crate) &'static str);

/// The managed broker's login of an API token `<id>.<secret>`: username `token.<id>`, password
/// the secret.
pub(crate) fn mqtt_login(token: &str) -> (String, String) {
    let (id, secret) = token.split_once('.').expect("a token is <id>.<secret>");
    (format!("token.{id}"), secret.to_string())
}

impl Api {
    /// The token it calls with.
    pub(crate) fn token(&self) -> &'static str {
        self.1
    }

    /// The same API called with another token.
    pub(crate) fn with_token(self, token: &str) -> Self {
        Self(self.0, Box::leak(token.to_string().into_boxed_str()))
    }

    /// Any request.
    pub(crate) async fn request(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        http(self.0, self.1, method, path, body.as_ref()).await
    }

    /// Adds a user through the API (`area`: their scope); their token.
    pub(crate) async fn add_user(&self, name: &str, role: &str, area: Option<&str>) -> String {
        let made = self
            .post(
                "/api/v1/users",
                json!({"name": name, "role": role, "area_id": area}),
            )
            .await;
        made["token"].as_str().expect("a token").to_string()
    }

    /// A request that must succeed (2xx); its JSON body (`null` when empty).
    pub(crate) async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.request(method, path, body).await;
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        self.ok("GET", path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        self.ok("POST", path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Value {
        self.ok("PUT", path, Some(body)).await
    }

    /// `/metrics` as text.
    pub(crate) async fn metrics(&self) -> String {
        let r = self.request("GET", "/metrics", None).await;
        assert_eq!(r.status, 200, "/metrics: {}", r.body);
        r.body
    }

    /// Waits until `/healthz` says 200 (store answers, broker connected and subscribed).
    pub(crate) async fn wait_healthy(&self, timeout: Duration) {
        until_async("/healthz 200", timeout, || async {
            let ok = tokio::time::timeout(Duration::from_secs(1), async {
                match TcpStream::connect(self.0).await {
                    Ok(_) => self.request("GET", "/healthz", None).await.status == 200,
                    Err(_) => false,
                }
            })
            .await;
            ok.unwrap_or(false).then_some(())
        })
        .await;
    }

    /// The areas `gongshu` (street) and `grid-7` (grid cell below it) and a site in `grid-7`;
    /// returns the site's id.
    pub(crate) async fn create_district(&self) -> i64 {
        self.post(
            "/api/v1/areas",
            json!({"id": "gongshu", "level": "street", "name": "Gongshu"}),
        )
        .await;
        self.post(
            "/api/v1/areas",
            json!({"id": "grid-7", "level": "grid", "name": "Grid 7", "parent_id": "gongshu"}),
        )
        .await;
        let site = self
            .post(
                "/api/v1/sites",
                json!({"name": "Block 3", "address": "3 Wulin Rd", "area_id": "grid-7"}),
            )
            .await;
        site["id"].as_i64().expect("a site id")
    }

    /// Registers, binds, configures and commissions an electrical-fire monitor in `grid-7`
    /// (channel 0 residual current 300 mA, channel 1 temperature 85.0 °C), in service.
    /// Returns the device's MQTT password (shown once, at registration).
    pub(crate) async fn install_device(&self, id: &str, site: i64) -> String {
        let created = self
            .post(
                "/api/v1/devices",
                json!({"id": id, "kind": "electrical_fire_monitor"}),
            )
            .await;
        self.put(
            &format!("/api/v1/devices/{id}"),
            json!({"kind": "electrical_fire_monitor", "site_id": site, "grid_id": "grid-7"}),
        )
        .await;
        self.put(
            &format!("/api/v1/devices/{id}/config"),
            json!({"channels": [
                {"ch": 0, "residual_ma": 300, "delay_s": 10},
                {"ch": 1, "temp_dc": 850}
            ]}),
        )
        .await;
        for to in ["commissioned", "in_service"] {
            let d = self
                .post(&format!("/api/v1/devices/{id}/state"), json!({"to": to}))
                .await;
            assert_eq!(d["state"], to, "{d}");
        }
        created["mqtt_password"]
            .as_str()
            .expect("the registration shows the device's MQTT password")
            .to_string()
    }

    /// The episodes the API lists for `query` (e.g. `open=true&device=hz-0042`).
    pub(crate) async fn episodes(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/episodes?{query}"))
            .await
            .as_array()
            .expect("a list of episodes")
            .clone()
    }
}

#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::{metric, refusals};

// ---- the gateway in this process --------------------------------------------------------------

/// A gateway run in this process by `app::run`, on free ports, with its own data directory.
pub(crate) struct Gateway {
    pub(crate) running: Running,
    pub(crate) api: Api,
    /// The open Mosquitto of [`Gateway::start`] (none with the managed broker).
    pub(crate) mosquitto: Option<Mosquitto>,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), AppError>>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts one on an external Mosquitto of its own that lets anyone in (the pipeline's
    /// tests: devices, tools and observers connect without credentials; what the managed
    /// broker refuses is `tests/security.rs`'s), with the defaults changed by `configure`;
    /// returns once `/healthz` says 200.
    pub(crate) async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_broker("", configure).await
    }

    /// [`Gateway::start`] with `broker_config` lines added to its Mosquitto's configuration.
    pub(crate) async fn start_with_broker(
        broker_config: &str,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mosquitto = Mosquitto::start_with(broker_config)
            .await
            .expect("mosquitto starts");
        let addr = mosquitto.addr();
        let mut gw = Self::start_managed(move |c| {
            c.broker.mode = BrokerMode::External;
            c.broker.external.host = addr.ip().to_string();
            c.broker.external.port = addr.port();
            configure(c);
        })
        .await;
        gw.mosquitto = Some(mosquitto);
        gw
    }

    /// Starts one with the default setup — the managed Mosquitto on a free port, every client
    /// logging in — changed by `configure`; returns once `/healthz` says 200.
    pub(crate) async fn start_managed(configure: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.api.listen = any_port;
        config.broker.managed.listen = any_port;
        configure(&mut config);
        let token = admin_token(&config.data_dir);
        let cancel = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut task = tokio::spawn(app::run(config, cancel.clone(), Some(ready_tx)));
        let running = tokio::select! {
            r = ready_rx => r.expect("the gateway says where it runs"),
            r = &mut task => panic!("the gateway stopped during start-up: {r:?}"),
            () = tokio::time::sleep(DEADLINE) => panic!("the gateway did not start within {DEADLINE:?}"),
        };
        let api = Api(running.api, "").with_token(&token);
        api.wait_healthy(DEADLINE).await;
        Self {
            running,
            api,
            mosquitto: None,
            cancel,
            task: Some(task),
            _dir: dir,
        }
    }

    /// Starts one against an external broker at `broker`.
    pub(crate) async fn start_external(broker: SocketAddr, client_id: &str) -> Self {
        let client_id = client_id.to_string();
        Self::start_managed(move |c| {
            c.broker.mode = BrokerMode::External;
            c.broker.external.host = broker.ip().to_string();
            c.broker.external.port = broker.port();
            c.broker.client_id = client_id;
        })
        .await
    }

    /// Where devices and tools connect.
    pub(crate) fn mqtt_v311(&self) -> SocketAddr {
        self.running.mqtt.parse().expect("host:port")
    }

    /// Counts journaled rows of `device`'s events with `seq`, or all of them (`None`), read
    /// from the store file (a read-only connection beside the running gateway).
    pub(crate) fn journaled(&self, device: &str, seq: Option<u32>) -> u64 {
        let conn = rusqlite::Connection::open_with_flags(
            &self.running.store,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("the store opens read-only");
        let n: i64 = match seq {
            Some(seq) => conn.query_row(
                "SELECT count(*) FROM events WHERE device = ?1 AND seq = ?2",
                rusqlite::params![device, seq],
                |r| r.get(0),
            ),
            None => conn.query_row(
                "SELECT count(*) FROM events WHERE device = ?1",
                rusqlite::params![device],
                |r| r.get(0),
            ),
        }
        .expect("events can be counted");
        u64::try_from(n).expect("a count")
    }

    /// Stops it (cancel) and waits for it to drain; says how long that took.
    pub(crate) async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.cancel.cancel();
        let task = self.task.take().expect("running");
        let result = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("the gateway stops within the deadline")
            .expect("the gateway task did not panic");
        result.expect("the gateway stopped cleanly");
        started.elapsed()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A city-wide admin `e2e-admin` in the store of `data_dir` (made before the gateway starts, as
/// `firegrid user add` does; on a restart over the same data, another token of theirs).
pub(crate) fn admin_token(data_dir: &Path) -> String {
    use firegrid_gateway::access::Role;
    use firegrid_gateway::store::{Actor, Store};
    std::fs::create_dir_all(data_dir).expect("the data directory");
    let (store, _) =
        Store::open(firegrid_gateway::access::cli::store_path(data_dir)).expect("the store opens");
    let actor = Actor::new("e2e", now_ms());
    let token = match store.add_user("e2e-admin", Role::Admin, None, actor) {
        Ok((_, token)) => token,
        Err(_) => store.issue_token("e2e-admin", actor).expect("a token"),
    };
    token.token.expose().to_string()
}

/// `firegrid user add NAME --role admin --config FILE` on the real binary (or, if NAME
/// exists, `firegrid user token NAME`): the printed token.
pub(crate) fn cli_admin_token(config: &Path, name: &str) -> String {
    firegrid_testkit::firegrid::admin_token(Path::new(Binary::path()), config, name)
}

// ---- the real binary --------------------------------------------------------------------------

/// The `firegrid` binary as a child process ([`Firegrid`] of the test kit), with a client for
/// its API.
pub(crate) struct Binary {
    firegrid: Firegrid,
    pub(crate) api: Api,
    pub(crate) log: PathBuf,
}

impl Binary {
    /// The path of the binary Cargo built for these tests.
    pub(crate) fn path() -> &'static str {
        env!("CARGO_BIN_EXE_firegrid")
    }

    /// Starts `firegrid run` with `config` in `dir` (ports it leaves unset picked free);
    /// returns once `/healthz` says 200.
    pub(crate) async fn launch(config: GatewayConfig, dir: &Path) -> Self {
        Self::launch_with_env(config, dir, &[]).await
    }

    /// [`Binary::launch`] with environment variables set for it.
    pub(crate) async fn launch_with_env(
        config: GatewayConfig,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let firegrid = Firegrid::start(
            Path::new(Self::path()),
            config,
            dir,
            env,
            firegrid_testkit::firegrid::Ready::Healthy,
        )
        .await;
        Self {
            api: Api(firegrid.api_addr, "").with_token(&firegrid.token),
            log: firegrid.process.log_path().to_owned(),
            firegrid,
        }
    }

    /// Starts `firegrid run` with the configuration in the file `config` (whose API listens
    /// on `api`); returns once `/healthz` says 200. The file is read as a [`GatewayConfig`]
    /// and written again (as `firegrid.toml` beside `log`).
    pub(crate) async fn start(config: &Path, api: SocketAddr, log: PathBuf) -> Self {
        Self::start_with_env(config, api, log, &[]).await
    }

    /// [`Binary::start`] with environment variables set for it.
    pub(crate) async fn start_with_env(
        config: &Path,
        api: SocketAddr,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Self {
        let mut typed = GatewayConfig::from_file(config, Broker::Managed);
        typed.set("api.listen", api.to_string());
        let dir = log.parent().expect("the log is in a directory");
        Self::launch_with_env(typed, dir, env).await
    }

    /// Starts it again (killing it first if it runs) with the same configuration and data.
    pub(crate) async fn restart(&mut self) {
        self.firegrid.restart().await;
        self.api = Api(self.firegrid.api_addr, "").with_token(&self.firegrid.token);
        self.log = self.firegrid.process.log_path().to_owned();
    }

    /// Its configuration file.
    pub(crate) fn config_file(&self) -> &Path {
        self.firegrid.config_file()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.firegrid.process.pid()
    }

    /// What it logged (this start).
    pub(crate) fn log_text(&self) -> String {
        self.firegrid.log()
    }

    /// SIGKILL, and waits for it to be gone.
    pub(crate) fn kill9(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        let status = self.firegrid.process.kill9().expect("running");
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }

    /// SIGINT (what Ctrl-C sends: a graceful stop), and waits for a clean exit.
    pub(crate) async fn interrupt(&mut self) -> Duration {
        self.stop_with("INT").await
    }

    /// `kill -SIGNAL` (`INT`, `TERM`), and waits for a clean exit; says how long it took.
    pub(crate) async fn stop_with(&mut self, signal: &str) -> Duration {
        let started = Instant::now();
        let status = self.firegrid.process.stop_with(signal).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "clean exit after SIG{signal}: {status:?}\n{}",
            self.log_text()
        );
        started.elapsed()
    }
}

// ---- MQTT: rumqttc ----------------------------------------------------------------------------

#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::Mqtt;
#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::mqtt::{Received, ack_seqs, topic_device};

// ---- MQTT: Debian's mosquitto clients ---------------------------------------------------------

/// Publishes `payload` once with `mosquitto_pub` (MQTT 3.1.1, QoS 1) and waits for it to exit:
/// the broker has the message then.
pub(crate) async fn mosquitto_pub(broker: SocketAddr, topic: &str, payload: &[u8]) {
    // An empty message is `-n`; anything else (binary too) comes on stdin.
    let source = if payload.is_empty() { "-n" } else { "-s" };
    let mut child = tokio::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            &broker.ip().to_string(),
            "-p",
            &broker.port().to_string(),
        ])
        .args(["-V", "mqttv311", "-q", "1", "-t", topic, source])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_pub runs (Debian's mosquitto-clients)");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(payload)
        .await
        .expect("mosquitto_pub reads stdin");
    drop(stdin);
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("mosquitto_pub exits within the deadline")
        .expect("mosquitto_pub is waited for");
    assert!(
        out.status.success(),
        "mosquitto_pub -t {topic}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mosquitto_sub` (MQTT 3.1.1, QoS 1) on some filters: each message as (topic, payload, when
/// it arrived).
pub(crate) struct MosquittoSub {
    _child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<(String, Instant)>,
    seen: Vec<(String, String, Instant)>,
}

impl MosquittoSub {
    /// Starts it and returns once it has its SUBACK.
    pub(crate) async fn start(broker: SocketAddr, filters: &[&str]) -> Self {
        let mut cmd = tokio::process::Command::new("mosquitto_sub");
        cmd.args([
            "-h",
            &broker.ip().to_string(),
            "-p",
            &broker.port().to_string(),
        ])
        .args(["-V", "mqttv311", "-q", "1", "-d", "-F", "MSG %t %p"]);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub runs (Debian's mosquitto-clients)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((line, Instant::now())).is_err() {
                    break;
                }
            }
        });
        let subscribed = async {
            while let Some((line, _)) = lines.recv().await {
                if line.contains("received SUBACK") {
                    return true;
                }
            }
            false
        };
        let ok = tokio::time::timeout(DEADLINE, subscribed).await;
        assert!(
            matches!(ok, Ok(true)),
            "mosquitto_sub did not subscribe to {filters:?} within {DEADLINE:?}"
        );
        Self {
            _child: child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the first message (seen before or arriving) whose topic is `topic`.
    pub(crate) async fn next_on(&mut self, topic: &str) -> (String, Instant) {
        if let Some(i) = self.seen.iter().position(|(t, _, _)| t == topic) {
            let (_, p, at) = self.seen.remove(i);
            return (p, at);
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (line, at) = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("mosquitto_sub: nothing on {topic} within {DEADLINE:?}"))
                .expect("mosquitto_sub is running");
            let Some(msg) = line.strip_prefix("MSG ") else {
                continue; // a debug line
            };
            let (t, p) = msg.split_once(' ').unwrap_or((msg, ""));
            if t == topic {
                return (p.to_string(), at);
            }
            self.seen.push((t.to_string(), p.to_string(), at));
        }
    }
}

// ---- reporting --------------------------------------------------------------------------------

#[allow(unused_imports)] // not every test binary uses each
pub(crate) use firegrid_testkit::summary;
