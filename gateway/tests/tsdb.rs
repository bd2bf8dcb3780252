//! The TSDB writer against real servers: a real VictoriaMetrics (Debian's, which accepts the
//! InfluxDB v2 write API) started on a free port, a small axum server of the test's own for the
//! answers VictoriaMetrics never gives (400, 429, 503 with `Retry-After`), and the real
//! `firegrid` binary killed with SIGKILL during an outage.
//!
//! No fixed ports, no sleeps to synchronise: every wait polls a condition with a deadline
//! (the steady streams are paced by sleeps, which is what makes them steady).

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use firegrid_gateway::tsdb::{Feed, Point, Tags, Tsdb, TsdbConfig, TsdbStats, TsdbStatus};
use firegrid_testkit::{Broker, GatewayConfig, Mosquitto, free_port};
use firegrid_testkit::{Series, VictoriaMetrics};
use tokio_util::sync::CancellationToken;

use support::{Binary, Mqtt, metric, now_ms, until, until_async};

const WAIT: Duration = Duration::from_secs(20);

/// Reading `i` of a stream: 10 devices × 2 channels, each with its own millisecond.
fn point(base_ms: u64, i: u64) -> Point {
    Point {
        device: format!("hz-{:04}", i % 10),
        channel: u8::try_from(i / 10 % 2).unwrap(),
        ts_ns: i64::try_from(base_ms + i).unwrap() * 1_000_000,
        residual_ma: Some(u32::try_from(i % 997).unwrap()),
        temp_dc: None,
        voltage_dv: None,
        current_ma: None,
        tags: Tags {
            site: Some(3),
            circuit: Some(i64::try_from(i % 10).unwrap() + 100),
            grid: Some("grid-7".into()),
        },
    }
}

fn points(base_ms: u64, range: std::ops::Range<u64>) -> Vec<Point> {
    range.map(|i| point(base_ms, i)).collect()
}

/// The writer of `firegrid_gateway::tsdb` on its own, with short waits for tests.
struct Writer {
    stats: Arc<TsdbStats>,
    feed: Option<Feed>,
    tsdb: Option<Tsdb>,
    cancel: CancellationToken,
}

impl Writer {
    fn start(url: &str, data: &Path, configure: impl FnOnce(&mut TsdbConfig)) -> Self {
        let mut config = TsdbConfig {
            enabled: true,
            url: url.to_string(),
            batch_size: 500,
            flush_interval_ms: 20,
            retry_max_ms: 200,
            timeout_ms: 2000,
            ..TsdbConfig::default()
        };
        configure(&mut config);
        let stats = Arc::new(TsdbStats::default());
        let cancel = CancellationToken::new();
        let (tsdb, feed) =
            Tsdb::start(&config, data, stats.clone(), cancel.clone()).expect("the writer starts");
        Self {
            stats,
            feed: Some(feed),
            tsdb: Some(tsdb),
            cancel,
        }
    }

    fn status(&self) -> TsdbStatus {
        self.stats.status()
    }

    fn feed(&self) -> Feed {
        self.feed.clone().expect("running")
    }

    /// Hands `points` over and waits until they are spooled (none dropped by the queue).
    async fn spool(&self, points: Vec<Point>) {
        let want = self.status().spooled_readings + points.len() as u64;
        self.feed().offer_points(points);
        until("readings spooled", WAIT, || {
            (self.status().spooled_readings >= want).then_some(())
        })
        .await;
        assert_eq!(self.status().queue_dropped_readings, 0);
    }

    async fn wait(&self, what: &str, check: impl Fn(&TsdbStatus) -> bool) -> TsdbStatus {
        until(what, WAIT, || {
            let s = self.status();
            check(&s).then_some(s)
        })
        .await
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        self.feed = None;
        if let Some(t) = self.tsdb.take() {
            t.stopped().await;
        }
    }
}

/// Residual-current readings by (device, channel, time in ms).
type Residuals = BTreeMap<(String, String, i64), f64>;

/// (device, channel, ts ms) → values, of every exported `firegrid_residual_ma` point; panics
/// on a point exported twice.
fn residuals(series: &[Series]) -> Residuals {
    let mut out = BTreeMap::new();
    for s in series {
        assert_eq!(s.labels["__name__"], "firegrid_residual_ma");
        for &(t, v) in &s.points {
            let key = (s.labels["device"].clone(), s.labels["channel"].clone(), t);
            assert!(
                out.insert(key.clone(), v).is_none(),
                "exported twice: {key:?}"
            );
        }
    }
    out
}

/// Like [`residuals`], but a point exported more than once is kept once if every copy has the
/// same value; returns the points and the times (ms) of the extra copies.
fn residuals_with_copies(series: &[Series]) -> (Residuals, Vec<i64>) {
    let mut out = BTreeMap::new();
    let mut copies = Vec::new();
    for s in series {
        for &(t, v) in &s.points {
            let key = (s.labels["device"].clone(), s.labels["channel"].clone(), t);
            if let Some(before) = out.insert(key.clone(), v) {
                assert_eq!(before, v, "two values for one reading: {key:?}");
                copies.push(t);
            }
        }
    }
    (out, copies)
}

/// The readings of the batches the writer sent again without knowing whether the server had
/// them (its `batch unconfirmed` lines in `log`): the only copies it may make.
fn unconfirmed_readings(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("tsdb: batch unconfirmed"))
        .filter_map(|l| {
            let at = l.find("readings=")? + "readings=".len();
            let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .sum()
}

/// What `points` should look like in the export.
fn expected(points: &[Point]) -> Residuals {
    points
        .iter()
        .map(|p| {
            (
                (p.device.clone(), p.channel.to_string(), p.ts_ns / 1_000_000),
                f64::from(p.residual_ma.expect("a residual current")),
            )
        })
        .collect()
}

async fn export_n(vm: &VictoriaMetrics, n: usize) -> Residuals {
    let series = vm
        .export_until("firegrid_residual_ma", WAIT, |s| {
            firegrid_testkit::point_count(s) >= n
        })
        .await
        .expect("export");
    residuals(&series)
}

/// Every reading written arrives, with its own timestamp, value and tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_arrives_with_its_timestamp() {
    support::init_logs();
    let vm = VictoriaMetrics::start()
        .await
        .expect("victoria-metrics starts");
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(&vm.url(), dir.path(), |_| {});
    let base = now_ms() - 60_000;
    let sent = points(base, 0..2000);
    w.spool(sent.clone()).await;
    w.wait("all written", |s| {
        s.written_readings == 2000 && s.pending_readings == 0
    })
    .await;
    let series = vm
        .export_until("firegrid_residual_ma", WAIT, |s| {
            firegrid_testkit::point_count(s) >= 2000
        })
        .await
        .unwrap();
    assert_eq!(residuals(&series), expected(&sent));
    // Tags as documented in docs/tsdb.md.
    let one = series
        .iter()
        .find(|s| s.labels["device"] == "hz-0003" && s.labels["channel"] == "1")
        .expect("the series of hz-0003 channel 1");
    assert_eq!(one.labels["circuit"], "103");
    assert_eq!(one.labels["site"], "3");
    assert_eq!(one.labels["grid"], "grid-7");
    let status = w.status();
    assert!(
        status.last_success_ms.is_some() && status.last_error.is_none(),
        "{status:?}"
    );
    w.stop().await;
}

/// The server stopped for a while during a steady stream: the spool grows, drains when the
/// server is back, and every reading is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_spools_and_drains_with_every_reading_exactly_once() {
    const N: u64 = 6000;
    support::init_logs();
    let mut vm = VictoriaMetrics::start()
        .await
        .expect("victoria-metrics starts");
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(&vm.url(), dir.path(), |_| {});
    let base = now_ms() - 60_000;
    // 20 readings every 5 ms: ~4000/s.
    let feed = w.feed();
    let stream = tokio::spawn(async move {
        for i in (0..N).step_by(20) {
            feed.offer_points(points(base, i..i + 20));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    w.wait("a first part written", |s| s.written_readings >= 500)
        .await;
    vm.stop().await;
    let outage = w
        .wait("the spool to grow during the outage", |s| {
            s.pending_readings >= 2000 && s.last_error.is_some()
        })
        .await;
    assert!(outage.spool_bytes > 0, "{outage:?}");
    vm.restart().await.expect("victoria-metrics restarts");
    stream.await.unwrap();
    let done = w
        .wait("the spool to drain", |s| {
            s.written_readings == N && s.pending_readings == 0
        })
        .await;
    assert_eq!(done.dropped_readings, 0, "{done:?}");
    assert_eq!(done.queue_dropped_readings, 0, "{done:?}");
    assert!(
        done.last_error.is_none(),
        "cleared by the next success: {done:?}"
    );
    let got = export_n(&vm, N as usize).await;
    assert_eq!(got, expected(&points(base, 0..N)));
    w.stop().await;
}

/// The spool's bound reached during an outage: the oldest readings are dropped, the count is
/// exact, and everything not dropped arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_the_oldest_and_counts_them_exactly() {
    const N: u64 = 5000;
    support::init_logs();
    let mut vm = VictoriaMetrics::start()
        .await
        .expect("victoria-metrics starts");
    vm.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(&vm.url(), dir.path(), |c| c.spool_max_bytes = 64 * 1024);
    let base = now_ms() - 60_000;
    for i in (0..N).step_by(100) {
        w.spool(points(base, i..i + 100)).await;
    }
    let full = w.status();
    assert!(full.dropped_readings > 0, "{full:?}");
    assert_eq!(full.pending_readings + full.dropped_readings, N, "{full:?}");
    vm.restart().await.expect("victoria-metrics restarts");
    let done = w
        .wait("the spool to drain", |s| s.pending_readings == 0)
        .await;
    let dropped = done.dropped_readings;
    assert_eq!(done.written_readings + dropped, N, "{done:?}");
    let got = export_n(&vm, (N - dropped) as usize).await;
    // Exactly the newest N − dropped: the oldest were dropped, nothing else.
    assert_eq!(got, expected(&points(base, dropped..N)));
    w.stop().await;
}

/// What the test's own server received, and when.
#[derive(Default)]
struct Received {
    /// Line protocol of accepted writes.
    lines: Vec<String>,
    /// (when, status) of every request.
    requests: Vec<(Instant, u16)>,
    /// The Authorization header of the first request.
    authorization: Option<String>,
}

/// A server that answers the 1st write 429 (Retry-After: 1), the 2nd 503 (no header), any
/// write with a reading of device `bad` 400 with an InfluxDB error body, the rest 204.
async fn picky_server() -> (SocketAddr, Arc<Mutex<Received>>) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use std::io::Read as _;
    let state = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new().route(
        "/api/v2/write",
        axum::routing::post({
            let state = state.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let mut text = String::new();
                    if headers.get(header::CONTENT_ENCODING).is_some_and(|v| v == "gzip") {
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_string(&mut text)
                            .expect("a gzip body");
                    } else {
                        text = String::from_utf8(body.to_vec()).expect("UTF-8");
                    }
                    let mut r = state.lock().unwrap_or_else(PoisonError::into_inner);
                    if r.authorization.is_none() {
                        r.authorization = headers
                            .get(header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_string());
                    }
                    let n = r.requests.len();
                    let answer = if n == 0 {
                        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down")
                            .into_response()
                    } else if n == 1 {
                        (StatusCode::SERVICE_UNAVAILABLE, "restarting").into_response()
                    } else if text.contains("device=bad") {
                        (
                            StatusCode::BAD_REQUEST,
                            r#"{"code":"invalid","message":"partial write: field type conflict: input field \"residual_ma\" is type float, already exists as type integer dropped=1"}"#,
                        )
                            .into_response()
                    } else {
                        r.lines.extend(text.lines().map(str::to_string));
                        StatusCode::NO_CONTENT.into_response()
                    };
                    r.requests.push((Instant::now(), answer.status().as_u16()));
                    answer
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

/// 429 with `Retry-After` is honoured, 503 retried with backoff, and a batch refused with 400
/// lands in the dead-letter file with the server's reason while the stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_is_dead_lettered_and_the_stream_goes_on() {
    support::init_logs();
    let (addr, received) = picky_server().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let w = Writer::start(&format!("http://{addr}"), dir.path(), |c| {
        c.token_file = token_file.clone();
    });
    let base = now_ms() - 60_000;
    let good = points(base, 0..100);
    w.spool(good.clone()).await;
    w.wait("the first batch written", |s| s.written_readings == 100)
        .await;
    {
        let r = received.lock().unwrap();
        let statuses: Vec<u16> = r.requests.iter().map(|(_, s)| *s).collect();
        assert_eq!(statuses, [429, 503, 204]);
        let after_429 = r.requests[1].0.duration_since(r.requests[0].0);
        assert!(
            after_429 >= Duration::from_secs(1),
            "Retry-After: 1 honoured: {after_429:?}"
        );
        assert_eq!(r.authorization.as_deref(), Some("Token s3cret"));
    }
    // A batch with a reading the server refuses.
    let mut bad = points(base, 100..110);
    for p in &mut bad {
        p.device = "bad".into();
    }
    w.spool(bad).await;
    w.wait("the bad batch dead-lettered", |s| {
        s.dead_lettered_readings == 10
    })
    .await;
    let more = points(base, 110..300);
    w.spool(more.clone()).await;
    let done = w
        .wait("the rest written", |s| {
            s.written_readings == 290 && s.pending_readings == 0
        })
        .await;
    assert!(
        done.last_error.is_none(),
        "a later success clears the error: {done:?}"
    );

    let letter = std::fs::read_to_string(dir.path().join("tsdb-dead-letter.lp")).unwrap();
    let mut lines = letter.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("# at_ms=")
            && head.contains("status=400 reason=partial write: field type conflict"),
        "{head}"
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 10, "{letter}");
    assert!(
        rest.iter().all(|l| l.starts_with("firegrid,device=bad,")),
        "{letter}"
    );
    let got = received.lock().unwrap().lines.join("\n") + "\n";
    let mut want = good;
    want.extend(more);
    let mut lp = Vec::new();
    firegrid_gateway::tsdb::line::encode(&want, &mut lp);
    assert_eq!(got, String::from_utf8(lp).unwrap());
    w.stop().await;
}

/// The one boundary where the writer is at-least-once: the server confirmed a batch but the
/// gateway died before its cursor was saved, so the batch is sent again after the restart —
/// the same points with the same timestamps. InfluxDB overwrites them; VictoriaMetrics keeps
/// them once with `-dedup.minScrapeInterval` (docs/tsdb.md), shown here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_again_after_a_crash_is_kept_once() {
    support::init_logs();
    let vm = VictoriaMetrics::start_with_dedup()
        .await
        .expect("victoria-metrics starts");
    let dir = tempfile::tempdir().unwrap();
    let base = now_ms() - 60_000;
    let sent = points(base, 0..300);
    let w = Writer::start(&vm.url(), dir.path(), |_| {});
    w.spool(sent.clone()).await;
    w.wait("all written", |s| s.written_readings == 300).await;
    w.stop().await;
    // The crash right after the 204: the cursor is as it was before the batch.
    std::fs::remove_file(dir.path().join("tsdb-spool").join("cursor")).unwrap();
    let w = Writer::start(&vm.url(), dir.path(), |_| {});
    // Written and the spool's cursor past it: two counters, updated one after the other.
    let again = w
        .wait("the batch written again and nothing pending", |s| {
            s.written_readings == 300 && s.pending_readings == 0
        })
        .await;
    assert_eq!(again.pending_readings, 0, "{again:?}");
    assert_eq!(export_n(&vm, 300).await, expected(&sent));
    w.stop().await;
}

/// A writer that cannot start (here: its token variable is unset) never keeps the gateway and
/// its alarms from running; `/healthz` says why readings are not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_cannot_start_does_not_stop_the_gateway() {
    let gw = support::Gateway::start(|c| {
        c.tsdb.enabled = true;
        c.tsdb.url = "http://127.0.0.1:9".into();
        c.tsdb.token_env = "FIREGRID_TEST_TSDB_TOKEN_SURELY_UNSET".into();
    })
    .await;
    let health = gw.api.get("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
    let error = health["tsdb"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("not started: [tsdb] token_env: the environment variable FIREGRID_TEST_TSDB_TOKEN_SURELY_UNSET is not set"),
        "{health}"
    );
    gw.stop().await;
}

/// The telemetry of device `hz-0001` with seq `seq`: two channels at `ts`.
fn telemetry(seq: u64, ts: u64) -> String {
    format!(
        r#"{{"seq":{seq},"ts":{ts},"up_ms":1000,"readings":[{{"ch":0,"residual_ma":{}}},{{"ch":1,"residual_ma":{}}}]}}"#,
        seq % 500,
        seq % 500 + 1
    )
}

/// The real binary, killed with SIGKILL while the database is down: after restarts of both,
/// every reading is in the database once — a second copy only of a batch the writer logged as
/// sent again unconfirmed (a timeout or a connection lost after the request went out, which a
/// loaded machine can cause; docs/tsdb.md "Exactly once, precisely"). Telemetry comes through a real Mosquitto (which
/// keeps the gateway's session while it is dead) from a rumqttc client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_gateway_during_an_outage_loses_nothing_and_doubles_only_unconfirmed_batches()
{
    support::init_logs();
    let mut vm = VictoriaMetrics::start()
        .await
        .expect("victoria-metrics starts");
    let mosquitto = Mosquitto::start().await.expect("mosquitto starts");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = GatewayConfig::new(&data, Broker::External(mosquitto.addr()));
    config
        .set("broker.client_id", "firegrid-e2e-tsdb")
        .set("api.listen", format!("127.0.0.1:{}", free_port()))
        .set("tsdb.enabled", true)
        .set("tsdb.url", vm.url())
        .set("tsdb.batch_size", 100)
        .set("tsdb.flush_interval_ms", 20)
        .set("tsdb.retry_max_ms", 200)
        .set("tsdb.timeout_ms", 2000);
    // check-config reads the same file the gateway runs with.
    let config_file = dir.path().join("firegrid.toml");
    std::fs::write(&config_file, config.render()).unwrap();
    let check = std::process::Command::new(Binary::path())
        .arg("check-config")
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check-config tests the connection: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut gw = Binary::launch(config, dir.path()).await;
    let site = gw.api.create_district().await;
    gw.api.install_device("hz-0001", site).await;
    let device = Mqtt::connect(mosquitto.addr(), "e2e-hz-0001").await;
    let base = now_ms() - 60_000;
    let mut seq = 0u64;
    let publish = |from: u64, to: u64| {
        let device = &device;
        async move {
            for s in from..to {
                device
                    .publish("firegrid/v1/dev/hz-0001/telemetry", telemetry(s, base + s))
                    .await;
            }
        }
    };
    let spooled = |api: support::Api, want: f64| async move {
        until_async("readings spooled", WAIT, || async {
            let m = api.metrics().await;
            (metric(&m, "firegrid_tsdb_spooled_readings_total") >= Some(want)).then_some(m)
        })
        .await
    };

    // 1. The database is up: readings flow.
    publish(seq, seq + 100).await;
    seq += 100;
    spooled(gw.api, 200.0).await;
    export_n(&vm, 200).await;

    // 2. The database goes down; readings wait in the spool; the gateway is killed.
    vm.stop().await;
    let check = std::process::Command::new(Binary::path())
        .arg("check-config")
        .arg(&config_file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "check-config: {said}");
    assert!(
        said.contains("[tsdb] http://127.0.0.1:") && said.contains("no answer"),
        "{said}"
    );
    publish(seq, seq + 150).await;
    seq += 150;
    let m = spooled(gw.api, 500.0).await;
    assert!(
        metric(&m, "firegrid_tsdb_spool_pending_readings") >= Some(300.0),
        "{m}"
    );
    // The writer says why once it has tried (it waits for a batch, or its backoff, first).
    let health = until_async("the outage in /healthz", WAIT, || async {
        let h = gw.api.get("/healthz").await;
        h["tsdb"]["last_error"].is_string().then_some(h)
    })
    .await;
    assert!(
        health["tsdb"]["pending_readings"].as_u64() >= Some(300),
        "{health}"
    );
    assert_eq!(
        health["status"], "ok",
        "a TSDB outage does not make the gateway unhealthy"
    );
    let log_before_kill = gw.log_text();
    gw.kill9();

    // 3. While it is dead, the device goes on (the broker keeps the gateway's session).
    publish(seq, seq + 50).await;
    seq += 50;
    gw.restart().await;
    let m = spooled(gw.api, 100.0).await;
    assert!(
        metric(&m, "firegrid_tsdb_spool_pending_readings") >= Some(400.0),
        "{m}"
    );
    publish(seq, seq + 100).await;
    seq += 100;
    spooled(gw.api, 300.0).await;

    // 4. The database is back: the spool drains; every reading is there once.
    vm.restart().await.expect("victoria-metrics restarts");
    let total = usize::try_from(seq * 2).unwrap();
    until_async("the spool drained", WAIT, || async {
        let m = gw.api.metrics().await;
        (metric(&m, "firegrid_tsdb_spool_pending_readings") == Some(0.0)).then_some(())
    })
    .await;
    let series = vm
        .export_until("firegrid_residual_ma", WAIT, |s| {
            residuals_with_copies(s).0.len() >= total
        })
        .await
        .expect("export");
    let (got, mut copies) = residuals_with_copies(&series);
    let log_after = gw.log_text();
    let unconfirmed = unconfirmed_readings(&log_before_kill) + unconfirmed_readings(&log_after);
    copies.sort_unstable();
    let base_ms = i64::try_from(base).unwrap();
    // What to look at if it fails: which messages came twice, and what the links said.
    let said = |log: &str| -> String {
        log.lines()
            .filter(|l| l.contains("MQTT") || l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        copies.len() <= unconfirmed,
        "{} readings exported twice (messages {:?}..={:?}), but only {unconfirmed} were sent \
         again unconfirmed\nbefore the kill:\n{}\nafter the restart:\n{}",
        copies.len(),
        copies.first().map(|t| t - base_ms),
        copies.last().map(|t| t - base_ms),
        said(&log_before_kill),
        said(&log_after),
    );
    let want: BTreeMap<_, _> = (0..seq)
        .flat_map(|s| {
            let ts = i64::try_from(base + s).unwrap();
            [
                (
                    ("hz-0001".to_string(), "0".to_string(), ts),
                    (s % 500) as f64,
                ),
                (
                    ("hz-0001".to_string(), "1".to_string(), ts),
                    (s % 500 + 1) as f64,
                ),
            ]
        })
        .collect();
    let missing: BTreeSet<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        missing.iter().next()
    );
    assert_eq!(got, want);
    let m = gw.api.metrics().await;
    assert_eq!(
        metric(&m, "firegrid_tsdb_spool_dropped_readings_total"),
        Some(0.0)
    );
    gw.interrupt().await;
}
