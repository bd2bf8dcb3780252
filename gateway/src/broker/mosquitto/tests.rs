//! The managed broker against the real Mosquitto (Debian's package), in process, on free ports:
//! logins, topic rules, reloads, revocation, restarts. No sleeps to synchronise: what must not
//! arrive is checked by order (a later message that does arrive from the same sender).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firegrid_testkit::until;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::*;
use crate::secret::Secret;

const WAIT: Duration = Duration::from_secs(10);

/// What a test client saw.
#[derive(Debug)]
enum Seen {
    ConnAck(ConnectReturnCode),
    PubAck(PubAckReason),
    Publish(String, Vec<u8>),
    Disconnected,
}

/// An MQTT 5 client (a device, a tool or the gateway) that reports what it sees.
struct Client {
    /// Whether the broker let it in.
    accepted: bool,
    client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Connects (once: no reconnect) and returns after the CONNACK, whatever it says.
    async fn connect(addr: std::net::SocketAddr, id: &str, login: Option<(&str, &str)>) -> Self {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5));
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        let (tx, seen) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let s = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(c))) => Seen::ConnAck(c.code),
                    Ok(Event::Incoming(Packet::PubAck(p))) => Seen::PubAck(p.reason),
                    Ok(Event::Incoming(Packet::Publish(p))) => Seen::Publish(
                        String::from_utf8_lossy(&p.topic).into_owned(),
                        p.payload.to_vec(),
                    ),
                    Ok(_) => continue,
                    Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
                        Seen::ConnAck(code)
                    }
                    Err(_) => Seen::Disconnected,
                };
                let end = matches!(s, Seen::Disconnected)
                    || matches!(s, Seen::ConnAck(c) if c != ConnectReturnCode::Success);
                let _ = tx.send(s);
                if end {
                    return;
                }
            }
        });
        let mut me = Self {
            accepted: false,
            client,
            seen,
            task,
        };
        me.accepted = match me.next().await {
            Seen::ConnAck(code) => code == ConnectReturnCode::Success,
            Seen::Disconnected => false,
            other => panic!("expected a CONNACK first, saw {other:?}"),
        };
        me
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("something within the wait")
            .unwrap_or(Seen::Disconnected)
    }

    /// Connects and expects to be let in.
    async fn login(addr: std::net::SocketAddr, user: &str, password: &str) -> Self {
        let c = Self::connect(addr, user, Some((user, password))).await;
        assert!(c.accepted, "{user} was let in");
        c
    }

    async fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .expect("room in the queue");
    }

    async fn subscribe(&self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("room in the queue");
    }

    /// The next message, skipping acknowledgements.
    async fn message(&mut self) -> (String, Vec<u8>) {
        loop {
            match self.next().await {
                Seen::Publish(t, p) => return (t, p),
                Seen::PubAck(_) => {}
                other => panic!("expected a message, saw {other:?}"),
            }
        }
    }

    /// The next PUBACK's reason, skipping messages.
    async fn puback(&mut self) -> PubAckReason {
        loop {
            match self.next().await {
                Seen::PubAck(r) => return r,
                Seen::Publish(..) => {}
                other => panic!("expected a PUBACK, saw {other:?}"),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accounts a test can change.
#[derive(Clone, Default)]
struct TestAccounts(Arc<Mutex<Vec<Account>>>);

impl TestAccounts {
    fn add(&self, username: &str, grant: Grant) -> Secret {
        let s = Secret::generate().expect("randomness");
        let hash = s.hash().expect("randomness");
        self.0.lock().expect("not poisoned").push(Account {
            username: username.into(),
            hash,
            grant,
        });
        s
    }

    fn remove(&self, username: &str) {
        self.0
            .lock()
            .expect("not poisoned")
            .retain(|a| a.username != username);
    }
}

struct Running {
    broker: ManagedBroker,
    accounts: TestAccounts,
    changed: AccountsChanged,
    cancel: CancellationToken,
    tasks: TaskTracker,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Self {
        let accounts = TestAccounts::default();
        let source = {
            let a = accounts.clone();
            move || Ok(a.0.lock().expect("not poisoned").clone())
        };
        let changed = AccountsChanged::default();
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let broker = ManagedBroker::start(
            config(dir.path()),
            Arc::new(source),
            &["gw.test".into()],
            changed.clone(),
            Arc::default(),
            cancel.clone(),
            &tasks,
        )
        .await
        .expect("mosquitto starts (Debian's mosquitto package)");
        Self {
            broker,
            accounts,
            changed,
            cancel,
            tasks,
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.broker.client_addr()
    }

    async fn gateway(&self) -> Client {
        Client::login(self.addr(), "gw.test", self.broker.secret().expose()).await
    }

    /// Changes accounts and waits until Mosquitto has reloaded them.
    async fn reload(&self) {
        let before = self.broker.stats().reloads.load(Ordering::Relaxed);
        self.changed.notify();
        until("the broker's accounts reloaded", WAIT, || {
            (self.broker.stats().reloads.load(Ordering::Relaxed) > before).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

use std::sync::atomic::Ordering;

fn config(dir: &std::path::Path) -> ManagedConfig {
    ManagedConfig {
        binary: std::env::var_os("FIREGRID_MOSQUITTO")
            .map_or_else(|| "mosquitto".into(), Into::into),
        dir: dir.join("mosquitto"),
        listen: "127.0.0.1:0".parse().expect("addr"),
        listen_tls: None,
        limits: Limits::default(),
        nice: test_nice(),
    }
}

/// A nice value the tests' broker may always be given: 3 above the test's own (raising one's
/// nice value needs no privilege).
fn test_nice() -> i8 {
    let own = rustix::process::getpriority_process(None).expect("own nice value");
    i8::try_from((own + 3).min(19)).expect("a nice value")
}

/// The nice value of process `pid` (`/proc/PID/stat`, field 19).
fn nice_of(pid: i32) -> i8 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    after
        .split(' ')
        .nth(16)
        .and_then(|n| n.parse().ok())
        .expect("a nice field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_wrong_logins_are_refused_and_counted() {
    let r = Running::start().await;
    let secret = r.accounts.add("hz-0001", Grant::Device);
    r.reload().await;
    let anon = Client::connect(r.addr(), "hz-0001", None).await;
    assert!(!anon.accepted, "anonymous login refused");
    let wrong = Client::connect(r.addr(), "hz-0001", Some(("hz-0001", "guess"))).await;
    assert!(!wrong.accepted, "wrong password refused");
    let other = Client::connect(r.addr(), "hz-0002", Some(("hz-0002", secret.expose()))).await;
    assert!(!other.accepted, "another device's password refused");
    let _ok = Client::login(r.addr(), "hz-0001", secret.expose()).await;
    until("3 refused logins counted", WAIT, || {
        (r.broker.stats().refused_logins.load(Ordering::Relaxed) >= 3).then_some(())
    })
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishes_and_hears_only_its_own_topics() {
    let r = Running::start().await;
    let a = r.accounts.add("hz-a", Grant::Device);
    let _b = r.accounts.add("hz-b", Grant::Device);
    r.reload().await;
    let mut gw = r.gateway().await;
    gw.subscribe("firegrid/#").await;
    let mut dev = Client::login(r.addr(), "hz-a", a.expose()).await;
    // It tries to listen to everything, and to another device's commands in particular.
    dev.subscribe("firegrid/#").await;
    dev.subscribe("firegrid/v1/dev/hz-b/cmd").await;
    // Forgeries first, then its own event: the gateway sees the event and nothing before it.
    for topic in [
        "firegrid/v1/dev/hz-b/event",
        "firegrid/v1/dev/hz-b/telemetry",
        "firegrid/v1/alert/g-1",
        "firegrid/v1/dev/hz-a/cmd",
        "firegrid/v1/dev/hz-a/config",
        "firegrid/v1/dev/hz-a/ack",
    ] {
        dev.publish(topic, b"forged").await;
        assert_eq!(
            dev.puback().await,
            PubAckReason::NotAuthorized,
            "{topic} refused"
        );
    }
    dev.publish("firegrid/v1/dev/hz-a/event", b"mine").await;
    assert_eq!(dev.puback().await, PubAckReason::Success);
    assert_eq!(
        gw.message().await,
        ("firegrid/v1/dev/hz-a/event".to_string(), b"mine".to_vec()),
        "the device's own event is the first thing the gateway hears from it"
    );
    // The gateway commands B, then A: A hears its own command and never B's.
    gw.publish("firegrid/v1/dev/hz-b/cmd", b"for b").await;
    gw.publish("firegrid/v1/dev/hz-a/cmd", b"for a").await;
    assert_eq!(
        dev.message().await,
        ("firegrid/v1/dev/hz-a/cmd".to_string(), b"for a".to_vec()),
        "A's first message is its own command"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_take_the_gateways_client_id() {
    let r = Running::start().await;
    let a = r.accounts.add("hz-a", Grant::Device);
    r.reload().await;
    let mut gw = r.gateway().await;
    gw.subscribe("firegrid/#").await;
    // The device asks for the gateway's client id: the broker uses its username instead.
    let dev = Client::connect(r.addr(), "gw.test", Some(("hz-a", a.expose()))).await;
    dev.publish("firegrid/v1/dev/hz-a/event", b"still here?")
        .await;
    assert_eq!(
        gw.message().await.1,
        b"still here?",
        "the gateway was not disconnected"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_is_disconnected_and_refused() {
    let r = Running::start().await;
    let a = r.accounts.add("hz-a", Grant::Device);
    r.reload().await;
    let mut dev = Client::login(r.addr(), "hz-a", a.expose()).await;
    r.accounts.remove("hz-a");
    r.reload().await;
    assert!(
        matches!(dev.next().await, Seen::Disconnected),
        "the connected device is disconnected at once"
    );
    let again = Client::connect(r.addr(), "hz-a", Some(("hz-a", a.expose()))).await;
    assert!(!again.accepted, "and cannot log in again");
    // A rotated credential: the new one works, the old one does not.
    let new = r.accounts.add("hz-a", Grant::Device);
    r.reload().await;
    let _dev = Client::login(r.addr(), "hz-a", new.expose()).await;
    let old = Client::connect(r.addr(), "hz-a2", Some(("hz-a", a.expose()))).await;
    assert!(!old.accepted, "the old password is refused");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_only_the_alerts_of_their_grid_cells() {
    let r = Running::start().await;
    let w = r.accounts.add(
        "token.w1",
        Grant::Alerts {
            areas: vec!["g-a".into()],
            path: "d/g-a".into(),
        },
    );
    let op = r.accounts.add("token.op", Grant::AllAlerts);
    r.reload().await;
    let mut worker = Client::login(r.addr(), "token.w1", w.expose()).await;
    worker.subscribe("firegrid/#").await;
    let mut operator = Client::login(r.addr(), "token.op", op.expose()).await;
    operator.subscribe("firegrid/v1/alert/#").await;
    let gw = r.gateway().await;
    gw.publish("firegrid/v1/alert/g-b", b"b").await;
    gw.publish("firegrid/v1/dev/hz-a/cmd", b"cmd").await;
    gw.publish("firegrid/v1/people/g-b/7", b"pb").await;
    gw.publish("firegrid/v1/area/d/g-b", b"tb").await;
    gw.publish("firegrid/v1/area/d/g-a", b"ta").await;
    gw.publish("firegrid/v1/people/g-a/7", b"pa").await;
    gw.publish("firegrid/v1/alert/g-a", b"a").await;
    assert_eq!(worker.message().await.1, b"ta", "cell A's tree topic only");
    assert_eq!(
        worker.message().await.1,
        b"pa",
        "cell A's workers' topics only"
    );
    assert_eq!(worker.message().await.1, b"a", "only cell A's alert");
    assert_eq!(operator.message().await.1, b"b");
    assert_eq!(operator.message().await.1, b"a");
    // And a person cannot publish an alert.
    worker.publish("firegrid/v1/alert/g-a", b"fake").await;
    assert_eq!(worker.puback().await, PubAckReason::NotAuthorized);
    r.stop().await;
}

/// A city-wide installer reads their own test alerts in any cell and the commissioned devices'
/// alerts, not another installer's, not the cells' alerts of devices in service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_wide_installer_reads_only_their_test_alerts() {
    let r = Running::start().await;
    let li = r
        .accounts
        .add("token.li", Grant::Installer { user: "li".into() });
    r.reload().await;
    let mut installer = Client::login(r.addr(), "token.li", li.expose()).await;
    installer.subscribe("firegrid/#").await;
    let gw = r.gateway().await;
    gw.publish("firegrid/v1/alert/g-a", b"cell").await;
    gw.publish("firegrid/v1/people/g-a/7", b"worker").await;
    gw.publish("firegrid/v1/people/g-a/installer/wang", b"other")
        .await;
    gw.publish("firegrid/v1/area/d/g-a", b"tree").await;
    gw.publish("firegrid/v1/people/g-b/installer/li", b"mine-b")
        .await;
    gw.publish("firegrid/v1/commissioning/hz-9", b"commissioning")
        .await;
    gw.publish("firegrid/v1/people/g-a/installer/li", b"mine-a")
        .await;
    assert_eq!(installer.message().await.1, b"mine-b");
    assert_eq!(installer.message().await.1, b"commissioning");
    assert_eq!(installer.message().await.1, b"mine-a");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_dies_is_restarted_at_its_nice_value_and_health_follows() {
    let r = Running::start().await;
    let mut listening = r.broker.listening();
    assert!(*listening.borrow_and_update());
    let pid: i32 = std::fs::read_to_string(r._dir.path().join("mosquitto/mosquitto.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    assert_eq!(
        nice_of(pid),
        test_nice(),
        "the broker runs at its nice value"
    );
    tokio::time::timeout(WAIT, listening.wait_for(|up| !*up))
        .await
        .expect("not listening within the wait")
        .expect("the broker is still watched");
    tokio::time::timeout(WAIT, listening.wait_for(|up| *up))
        .await
        .expect("listening again within the wait")
        .expect("the broker is still watched");
    assert_eq!(r.broker.stats().restarts.load(Ordering::Relaxed), 1);
    let restarted: i32 = std::fs::read_to_string(r._dir.path().join("mosquitto/mosquitto.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert_ne!(restarted, pid);
    assert_eq!(
        nice_of(restarted),
        test_nice(),
        "and so does the restarted one"
    );
    assert_eq!(
        r.broker.stats().nice.load(Ordering::Relaxed),
        i64::from(test_nice()),
        "firegrid_broker_nice says so"
    );
    let _gw = r.gateway().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_left_behind_by_a_killed_gateway_is_stopped_at_the_next_start() {
    // What kill -9 of a gateway leaves: a Mosquitto run with the directory's configuration, its
    // pid in the directory, nobody watching it.
    let dir = tempfile::tempdir().expect("temp dir");
    let broker_dir = dir.path().join("mosquitto");
    std::fs::create_dir_all(&broker_dir).expect("dir");
    let conf = broker_dir.join("mosquitto.conf");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous false\nuser root\n"),
    )
    .expect("conf");
    let mut stale = std::process::Command::new(config(dir.path()).binary)
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    std::fs::write(broker_dir.join("mosquitto.pid"), stale.id().to_string()).expect("pid");
    // Running as mosquitto (listening), not a fork that has yet to exec it: the gateway would
    // rightly leave a process that is not a mosquitto of this directory alone.
    until("the stale broker listening", WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .await;
    let r = Running::start_in(dir).await;
    // Stopped: it has exited (it is our child, so it waits here to be reaped).
    let status = stale.try_wait().expect("status");
    assert!(status.is_some(), "the stale broker was stopped");
    let _gw = r.gateway().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_client_logs_in_over_tls_and_a_plain_client_cannot_use_the_tls_port() {
    use crate::broker::{Broker, ClientConfig, Credentials, Priority, Qos};
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = crate::tls::self_signed(dir.path());
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().expect("addr");
    let mut cfg = config(dir.path());
    cfg.listen_tls = Some((
        tls_addr,
        TlsFiles {
            cert_file: cert,
            key_file: key,
        },
    ));
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let accounts = TestAccounts::default();
    let a = accounts.add("hz-t", Grant::Device);
    let source = {
        let acc = accounts.clone();
        move || Ok(acc.0.lock().expect("not poisoned").clone())
    };
    let users = ClientConfig::new("", 0, "gw.tls").link_client_ids();
    let broker = ManagedBroker::start(
        cfg,
        Arc::new(source),
        &users,
        AccountsChanged::default(),
        Arc::default(),
        cancel.clone(),
        &tasks,
    )
    .await
    .expect("mosquitto starts with a TLS listener");

    let mut client = ClientConfig::new("127.0.0.1", tls_port, "gw.tls");
    client.filters = vec!["firegrid/v1/dev/+/event".into()];
    client.credentials = Some(Credentials {
        username: None,
        password: broker.secret().expose().to_owned(),
    });
    client.tls = Some(crate::tls::client_config(&ca).expect("CA"));
    let (gw, mut uplink) = Broker::connect(client, cancel.clone()).expect("valid");
    gw.wait_connected(WAIT).await.expect("connects over TLS");

    // A device over plain TCP on the TLS port gets nowhere; on the plain port it works.
    let plain = Client::connect(tls_addr, "hz-t", Some(("hz-t", a.expose()))).await;
    assert!(!plain.accepted, "no plain MQTT on the TLS port");
    let dev = Client::login(broker.client_addr(), "hz-t", a.expose()).await;
    dev.publish("firegrid/v1/dev/hz-t/event", b"over tls").await;
    let m = tokio::time::timeout(WAIT, uplink.recv())
        .await
        .expect("within the wait")
        .expect("a message");
    assert_eq!(&m.payload[..], b"over tls");
    m.ack.ack().expect("acked");
    gw.publish(
        Priority::Urgent,
        "firegrid/v1/alert/g-1",
        &b"{}"[..],
        Qos::AtLeastOnce,
        false,
    )
    .await
    .expect("published over TLS");
    cancel.cancel();
    tasks.close();
    tasks.wait().await;
}
