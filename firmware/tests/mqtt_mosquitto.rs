//! The runner against a real Mosquitto (Debian's `/usr/sbin/mosquitto`, or `FIREGRID_MOSQUITTO`):
//! events with end-to-end acks, the last will, a broker restart, config and commands.

mod support;

use std::collections::BTreeMap;

use firegrid_firmware::monitor::{Input, Sound};
use firegrid_firmware::mqtt::{DownCause, Exit, LinkEvent};
use firegrid_firmware::protocols::DeviceTopic;
use firegrid_firmware::protocols::message::{CommandOutcome, Event, EventKind};
use support::{Gateway, WAIT, run, smoke_device, start};

const TS: u64 = 1_764_403_200_000;
const OFFLINE: &[u8] = br#"{"state":"offline"}"#;

fn status_topic(id: &str) -> String {
    format!("firegrid/v1/dev/{id}/status")
}

#[test]
fn an_alarm_reaches_the_gateway_and_its_ack_clears_the_outbox() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        let mut dev = start(smoke_device("hz-0042", 5_000), broker.addr());
        dev.wait_up().await;
        let hb = gw.wait_online("hz-0042").await;
        assert_eq!(hb.firmware.as_str(), env!("CARGO_PKG_VERSION"));

        dev.input(Input::Smoke(true));
        dev.wait_shown("the fire sound", |i| i.sound == Sound::Fire)
            .await;
        let e = gw.next_event().await;
        assert_eq!(e.kind, EventKind::Smoke);
        assert!(e.seq > hb.seq, "one counter over all uplink topics");
        assert_eq!(e.time.unix_ms, None, "no wall clock before the first ack");

        gw.ack("hz-0042", &[e.seq], TS).await;
        let unacked = dev
            .wait_link("the ack", |l| match l {
                LinkEvent::Received {
                    topic: Some(DeviceTopic::Ack),
                    refused: None,
                    unacked_events,
                } => Some(*unacked_events),
                _ => None,
            })
            .await;
        assert_eq!(unacked, 0);
        let device = dev.kill().await;
        assert!(device.outbox().is_empty());
        let s = device.outbox().stats();
        assert_eq!(
            (s.events_pushed, s.events_acked, s.event_resends),
            (1, 1, 0)
        );
        assert_eq!(device.wall_sync().map(|w| w.gateway_ms), Some(TS));
    });
}

#[test]
fn the_retained_last_will_says_offline_when_the_connection_dies() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        let dev = start(smoke_device("hz-will", 5_000), broker.addr());
        gw.wait_online("hz-will").await;
        // A power cut: the TCP connection closes without DISCONNECT.
        dev.kill().await;
        gw.wait_for("the will", |m| {
            (m.topic == status_topic("hz-will") && m.payload == OFFLINE).then_some(())
        })
        .await;
        // Retained: whoever subscribes later learns the device is offline.
        let mut late = Gateway::connect(broker.port()).await;
        let r = late
            .wait_for("the retained status", |m| {
                (m.topic == status_topic("hz-will")).then(|| m.clone())
            })
            .await;
        assert!(r.retain);
        assert_eq!(r.payload, OFFLINE);
    });
}

#[test]
fn after_a_broker_restart_every_event_arrives_with_its_original_seq() {
    run(async {
        let mut broker = support::mosquitto().await;
        let gw = Gateway::connect(broker.port()).await;
        let mut dev = start(smoke_device("hz-restart", 500), broker.addr());
        dev.wait_up().await;
        drop(gw);

        broker.kill();
        dev.wait_link("the link to drop", |e| match e {
            LinkEvent::Down { was_up: true, .. } => Some(()),
            _ => None,
        })
        .await;
        // Alarms while the broker is down: they sound, and wait in the outbox.
        let edges = [
            (Input::Smoke(true), EventKind::Smoke),
            (Input::Tamper(true), EventKind::Tamper),
            (Input::Smoke(false), EventKind::SmokeCleared),
            (Input::Tamper(false), EventKind::TamperCleared),
            (Input::Smoke(true), EventKind::Smoke),
        ];
        for (input, _) in &edges {
            dev.input(input.clone());
        }
        dev.wait_shown("the fire sound", |i| i.sound == Sound::Fire)
            .await;
        // At least one reconnect attempt fails while it is down.
        dev.wait_link("a failed reconnect", |e| match e {
            LinkEvent::Down {
                cause: DownCause::Connect,
                was_up: false,
                ..
            } => Some(()),
            _ => None,
        })
        .await;

        broker.restart().await.expect("mosquitto starts again");
        let mut gw = Gateway::connect(broker.port()).await;
        let up_at = dev.wait_up().await;
        // Every event, acknowledged as it comes (resent ones too, as the gateway does).
        let mut got: BTreeMap<u32, Event> = BTreeMap::new();
        while got.len() < edges.len() {
            let e = gw.next_event().await;
            gw.ack("hz-restart", &[e.seq], TS).await;
            if let Some(old) = got.insert(e.seq, e.clone()) {
                assert_eq!(old, e, "a resend carries the same event");
            }
        }
        let kinds: Vec<EventKind> = got.values().map(|e| e.kind.clone()).collect();
        let expected: Vec<EventKind> = edges.iter().map(|(_, k)| k.clone()).collect();
        assert_eq!(kinds, expected, "in seq order, none lost");
        assert!(
            got.values().all(|e| e.time.uptime_ms < up_at),
            "made before the reconnect at {up_at} ms: {got:?}"
        );
        dev.wait_link("the last ack", |l| match l {
            LinkEvent::Received {
                topic: Some(DeviceTopic::Ack),
                unacked_events: 0,
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        let device = dev.kill().await;
        assert!(device.outbox().is_empty(), "{}", broker.log());
        assert_eq!(device.outbox().stats().events_pushed, 5);
    });
}

#[test]
fn a_retained_config_is_applied_and_answered() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        // The gateway wrote the config before the device ever connected.
        gw.publish(
            "firegrid/v1/dev/hz-cfg/config",
            br#"{"version":3,"report_interval_s":120,"heartbeat_interval_s":300,"channels":[]}"#,
            true,
        )
        .await;
        let mut dev = start(smoke_device("hz-cfg", 5_000), broker.addr());
        let e = gw.next_event().await;
        assert_eq!(e.kind, EventKind::ConfigApplied { version: 3 });
        gw.ack("hz-cfg", &[e.seq], TS).await;
        // A config the device must refuse (a 1 s report interval) is answered with the reason.
        gw.publish(
            "firegrid/v1/dev/hz-cfg/config",
            br#"{"version":4,"report_interval_s":1,"channels":[]}"#,
            true,
        )
        .await;
        let e = gw.next_event().await;
        assert!(
            matches!(&e.kind, EventKind::ConfigRefused { version: 4, reason } if reason.contains("report_interval_s")),
            "{e:?}"
        );
        gw.ack("hz-cfg", &[e.seq], TS).await;
        dev.wait_link("the ack", |l| match l {
            LinkEvent::Received {
                topic: Some(DeviceTopic::Ack),
                unacked_events: 0,
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        let device = dev.kill().await;
        let config = device.monitor().config();
        assert_eq!((config.version, config.report_interval_s), (3, 120));
        assert_eq!(config.heartbeat_interval_s, 300);
    });
}

#[test]
fn a_command_is_answered_once_even_when_redelivered() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        let dev = start(smoke_device("hz-cmd", 5_000), broker.addr());
        // The gateway commands a device it knows online: the status follows the subscriptions.
        gw.wait_online("hz-cmd").await;
        let cmd = format!(r#"{{"id":17,"ts":{TS},"cmd":"silence"}}"#);
        gw.publish("firegrid/v1/dev/hz-cmd/cmd", cmd.as_bytes(), false)
            .await;
        let first = gw.next_event().await;
        assert_eq!(
            first.kind,
            EventKind::CommandResult {
                id: 17,
                outcome: CommandOutcome::NotApplicable
            }
        );
        assert_eq!(
            first.time.unix_ms.map(|t| t >= TS),
            Some(true),
            "the command set the clock"
        );
        gw.ack("hz-cmd", &[first.seq], TS).await;
        // The same command again (a QoS 1 redelivery), then a new one.
        gw.publish("firegrid/v1/dev/hz-cmd/cmd", cmd.as_bytes(), false)
            .await;
        let cmd18 = format!(r#"{{"id":18,"ts":{TS},"cmd":"reset_alarm"}}"#);
        gw.publish("firegrid/v1/dev/hz-cmd/cmd", cmd18.as_bytes(), false)
            .await;
        // The next new event answers 18: nothing answered 17 a second time before it.
        let next = gw
            .wait_for("the answer to command 18", |m| {
                m.event().filter(|e| e.seq != first.seq)
            })
            .await;
        assert_eq!(
            next.kind,
            EventKind::CommandResult {
                id: 18,
                outcome: CommandOutcome::NotApplicable
            }
        );
        let device = dev.kill().await;
        assert_eq!(device.stats().duplicate_commands, 1);
        assert_eq!(device.stats().commands, 2);
    });
}

#[test]
fn a_reboot_command_is_answered_and_acknowledged_before_the_runner_returns() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        let dev = start(smoke_device("hz-boot", 5_000), broker.addr());
        gw.wait_online("hz-boot").await;
        gw.publish(
            "firegrid/v1/dev/hz-boot/cmd",
            format!(r#"{{"id":5,"ts":{TS},"cmd":"reboot"}}"#).as_bytes(),
            false,
        )
        .await;
        let e = gw.next_event().await;
        assert_eq!(
            e.kind,
            EventKind::CommandResult {
                id: 5,
                outcome: CommandOutcome::Done
            }
        );
        gw.ack("hz-boot", &[e.seq], TS).await;
        let (device, exit) = dev.exit().await;
        assert_eq!(exit, Some(Exit::Reboot));
        assert!(
            device.outbox().is_empty(),
            "the answer was acknowledged first"
        );
    });
}

#[test]
fn a_full_receive_buffer_means_a_clean_reconnect_without_the_will() {
    run(async {
        let broker = support::mosquitto().await;
        let mut gw = Gateway::connect(broker.port()).await;
        let mut options = support::test_options();
        options.max_inbound_packet = 256;
        // Room for the CONNACK, the SUBACKs and a handful of acks per connection.
        let mut dev = support::start_custom(
            smoke_device("hz-mem", 5_000),
            firegrid_firmware::mqtt::host::TcpConnector::new(broker.addr()),
            options,
            1_024,
        );
        gw.wait_online("hz-mem").await;
        let mut statuses = Vec::new();
        let mut open = false;
        for _ in 0..40 {
            open = !open;
            dev.input(Input::Tamper(open));
            let e = gw
                .wait_for("an event", |m| {
                    if m.topic.ends_with("/status") {
                        statuses.push(m.payload.clone());
                    }
                    m.event()
                })
                .await;
            gw.ack("hz-mem", &[e.seq], TS).await;
            dev.wait_link("the ack", |l| match l {
                LinkEvent::Received {
                    topic: Some(DeviceTopic::Ack),
                    ..
                } => Some(()),
                _ => None,
            })
            .await;
        }
        let refreshes = dev
            .seen
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    LinkEvent::Down {
                        cause: DownCause::Refresh,
                        retry_in_ms: 0,
                        ..
                    }
                )
            })
            .count();
        assert!(refreshes >= 2, "{:?}", dev.seen);
        // Each reconnect's online status came before that connection's events; a will would
        // have come before it.
        let online = statuses
            .iter()
            .filter(|s| s.starts_with(br#"{"state":"online""#))
            .count();
        assert!(online >= 2, "{statuses:?}");
        assert!(
            !statuses.iter().any(|s| s == OFFLINE),
            "a clean reconnect publishes no will"
        );
        let device = dev.kill().await;
        assert!(device.outbox().is_empty());
    });
}

#[test]
fn keep_alive_pings_hold_the_link_and_a_frozen_broker_is_given_up() {
    run(async {
        let broker = support::mosquitto().await;
        let mut options = support::test_options();
        options.keep_alive_s = 1;
        options.io_timeout_ms = 700;
        let mut dev = support::start_with(
            smoke_device("hz-ka", 5_000),
            firegrid_firmware::mqtt::host::TcpConnector::new(broker.addr()),
            options,
        );
        dev.wait_up().await;
        // Idle: the device pings every half keep-alive and the broker answers.
        broker.wait_log("Received PINGREQ from hz-ka", WAIT).await;
        broker.wait_log("Sending PINGRESP to hz-ka", WAIT).await;
        assert!(
            !dev.drain_seen()
                .iter()
                .any(|e| matches!(e, LinkEvent::Down { .. })),
            "{:?}",
            dev.seen
        );
        // A broker that stops answering (its TCP stays open) is given up by the ping timeout.
        broker.pause();
        dev.wait_link("the ping timeout", |e| match e {
            LinkEvent::Down {
                cause: DownCause::Timeout,
                was_up: true,
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        broker.resume();
        dev.wait_up().await;
        dev.kill().await;
    });
}
