//! The simulated Modbus monitors seen from a Modbus client (tokio-modbus), and the benchmark at
//! a tiny size so it cannot rot.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_modbus::client::{Reader, Writer};
use tokio_modbus::{ExceptionCode, Slave};

use firegrid_simulator::modbus::bench::{self, BenchOptions};
use firegrid_simulator::modbus::{Fault, ModbusSim, SimMonitor, Slaves};

const SHORT: Duration = Duration::from_millis(300);

async fn server() -> ModbusSim {
    let slaves = Slaves::new([(1, SimMonitor::new(41.0)), (2, SimMonitor::new(99.0))]);
    ModbusSim::tcp(SocketAddr::from(([127, 0, 0, 1], 0)), slaves, 1.0)
        .await
        .expect("a port")
}

async fn client(sim: &ModbusSim, slave: u8) -> tokio_modbus::client::Context {
    tokio_modbus::client::tcp::connect_slave(sim.addr().expect("TCP"), Slave(slave))
        .await
        .expect("connects")
}

#[tokio::test]
async fn slaves_answer_their_own_registers_and_take_set_points() {
    let sim = server().await;
    let mut a = client(&sim, 1).await;
    let mut b = client(&sim, 2).await;
    assert_eq!(
        a.read_holding_registers(0, 1).await.unwrap().unwrap(),
        [410]
    );
    assert_eq!(
        b.read_holding_registers(0, 1).await.unwrap().unwrap(),
        [990]
    );
    assert_eq!(
        a.read_holding_registers(5, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    a.write_single_register(0x20, 30).await.unwrap().unwrap();
    assert_eq!(
        a.read_holding_registers(0x10, 1).await.unwrap().unwrap(),
        [1],
        "41 mA ≥ 30 mA: alarm"
    );
    assert_eq!(
        b.read_holding_registers(0x10, 1).await.unwrap().unwrap(),
        [0]
    );
    assert!(sim.slaves().with(1, |s| s.requests).unwrap() >= 4);
}

#[tokio::test]
async fn faults_are_injected_per_slave() {
    let sim = server().await;
    let mut a = client(&sim, 1).await;
    sim.slaves().set_fault(1, Fault::Exception(4));
    assert_eq!(
        a.read_holding_registers(0, 5).await.unwrap(),
        Err(ExceptionCode::ServerDeviceFailure)
    );
    sim.slaves().set_fault(1, Fault::NoReply);
    assert!(
        tokio::time::timeout(SHORT, a.read_holding_registers(0, 5))
            .await
            .is_err()
    );

    sim.slaves().set_fault(1, Fault::Garbage);
    let mut a = client(&sim, 1).await;
    let r = tokio::time::timeout(SHORT, a.read_holding_registers(0, 5)).await;
    assert!(
        !matches!(r, Ok(Ok(Ok(_)))),
        "garbage is not a valid answer: {r:?}"
    );

    sim.slaves()
        .set_fault(1, Fault::Late(Duration::from_millis(50)));
    let mut a = client(&sim, 1).await;
    let started = std::time::Instant::now();
    assert_eq!(
        a.read_holding_registers(0, 1).await.unwrap().unwrap(),
        [410]
    );
    assert!(started.elapsed() >= Duration::from_millis(50));

    // The other slave behind the same endpoint is unaffected throughout.
    let mut b = client(&sim, 2).await;
    assert_eq!(
        b.read_holding_registers(0, 1).await.unwrap().unwrap(),
        [990]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_at_a_tiny_size() {
    let r = bench::run(BenchOptions {
        monitors: 5,
        connection_run_ms: 100,
        fleet_run_ms: 100,
        timeout_ms: 1000,
    })
    .await
    .expect("the benchmark runs");
    assert_eq!(r.single_connection.connections, 1);
    assert_eq!(r.fleet.monitors, 5);
    assert!(r.single_connection.polls > 0 && r.fleet.polls > 0, "{r:?}");
    assert_eq!(r.fleet.failed, 0, "{r:?}");
    assert!(r.fleet.requests >= r.fleet.polls * 4, "{r:?}");
    let table = r.table();
    assert!(
        table.contains("one connection") && table.contains("fleet"),
        "{table}"
    );
    let json = serde_json::to_value(&r).expect("serialises");
    assert!(
        json["fleet"]["polls_per_s"].as_f64().unwrap() > 0.0,
        "{json}"
    );
    eprintln!("{table}");
}

/// The full-size benchmark (1000 monitors); run it with
/// `cargo test --release -p firegrid-simulator --test modbus -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "several seconds; a measurement, not a check"]
async fn benchmark_full_size() {
    let r = bench::run(BenchOptions::default())
        .await
        .expect("the benchmark runs");
    eprintln!("{}", r.table());
    eprintln!("{}", serde_json::to_string_pretty(&r).expect("serialises"));
}
