//! The runner without a working broker: local alarms never wait for the network, and the
//! connection is retried with backoff.

mod support;

use std::io;

use firegrid_firmware::backoff::{Backoff, seed_from};
use firegrid_firmware::monitor::{Input, Sound};
use firegrid_firmware::mqtt::host::{TcpConn, TcpConnector};
use firegrid_firmware::mqtt::{Connector, DownCause, LinkEvent};
use support::{free_port, run, smoke_device, start_with, test_options};

/// A connector whose connect never completes (a radio that never associates).
struct Hanging;

impl Connector for Hanging {
    type Conn = TcpConn;
    type Error = io::Error;

    async fn connect(&mut self) -> Result<TcpConn, io::Error> {
        std::future::pending().await
    }
}

#[test]
fn local_alarms_do_not_wait_for_a_connect_that_never_completes() {
    run(async {
        let mut options = test_options();
        options.io_timeout_ms = 3_600_000;
        let mut dev = start_with(smoke_device("hz-off", 5_000), Hanging, options);
        dev.wait_link("the connection attempt", |e| match e {
            LinkEvent::Connecting { attempt: 1 } => Some(()),
            _ => None,
        })
        .await;
        // The runner is inside the connect that never ends: smoke sounds all the same.
        dev.input(Input::Smoke(true));
        dev.wait_shown("the fire sound", |i| i.sound == Sound::Fire && i.alarm_led)
            .await;
        dev.input(Input::Smoke(false));
        dev.wait_shown("silence", |i| i.sound == Sound::Off).await;
        let device = dev.kill().await;
        // Both edges wait in the outbox for the link.
        assert_eq!(device.outbox().event_count(), 2);
        assert_eq!(device.stats().events, 2);
    });
}

#[test]
fn a_broker_that_never_answers_is_given_up_after_the_io_timeout() {
    run(async {
        // Accepts TCP, never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                if let Ok((c, _)) = listener.accept().await {
                    conns.push(c);
                }
            }
        });
        let mut options = test_options();
        options.io_timeout_ms = 300;
        let mut dev = start_with(
            smoke_device("hz-mute", 5_000),
            TcpConnector::new(addr),
            options,
        );
        dev.wait_link("the first attempt", |e| match e {
            LinkEvent::Connecting { attempt: 1 } => Some(()),
            _ => None,
        })
        .await;
        dev.input(Input::Tamper(true));
        dev.wait_link("the CONNACK timeout", |e| match e {
            LinkEvent::Down {
                cause: DownCause::Timeout,
                was_up: false,
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        dev.wait_link("a second attempt", |e| match e {
            LinkEvent::Connecting { attempt: 2 } => Some(()),
            _ => None,
        })
        .await;
        let device = dev.kill().await;
        held.abort();
        assert_eq!(device.outbox().event_count(), 1);
        let t = device.outbox().poll_transmit(u64::MAX);
        assert!(t.is_none(), "nothing is due while the link is down");
        assert_eq!(device.stats().events, 1);
    });
}

#[test]
fn refused_connections_back_off_with_jitter_inside_doubling_windows() {
    run(async {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut dev = start_with(
            smoke_device("hz-refused", 5_000),
            TcpConnector::new(addr),
            test_options(),
        );
        let mut delays = Vec::new();
        while delays.len() < 6 {
            let d = dev
                .wait_link("a refused attempt", |e| match e {
                    LinkEvent::Down {
                        cause: DownCause::Connect,
                        was_up: false,
                        retry_in_ms,
                    } => Some(*retry_in_ms),
                    _ => None,
                })
                .await;
            delays.push(d);
        }
        // test_options: 50 ms doubling to 400 ms, full jitter inside each window.
        for (d, window) in delays.iter().zip([50, 100, 200, 400, 400, 400]) {
            assert!(*d <= window, "{delays:?}");
        }
        // Exactly the device's own jitter sequence (seeded by its id), not any values that fit
        // the windows (all zeros would).
        let options = test_options();
        let mut expected = Backoff::new(
            options.backoff,
            options.jitter_seed ^ seed_from(b"hz-refused"),
        );
        // The first attempt itself waits a draw (spreading a district's boots), then the backoff
        // starts again from its base.
        let _boot = expected.next_delay_ms();
        expected.reset();
        let expected: Vec<u64> = (0..6).map(|_| expected.next_delay_ms()).collect();
        assert_eq!(
            delays, expected,
            "the runner's delays are its backoff's draws"
        );
        assert!(
            expected.iter().any(|d| *d > 0) && expected.windows(2).any(|w| w[0] != w[1]),
            "the seed gives a jittered sequence: {expected:?}"
        );
        let attempts: Vec<u32> = dev
            .seen
            .iter()
            .filter_map(|e| match e {
                LinkEvent::Connecting { attempt } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(attempts, [1, 2, 3, 4, 5, 6]);
        dev.kill().await;
    });
}
