//! One simulated device on the real firmware runner against a real Mosquitto: a leakage jump
//! raises an alarm that arrives as an event, is acknowledged end to end, and leaves the outbox.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use firegrid_testkit::Mosquitto;

use firegrid_firmware::monitor::{Layout, Sound};
use firegrid_firmware::mqtt::host::TokioClock;
use firegrid_firmware::mqtt::{self};
use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::id::DeviceId;
use firegrid_protocols::message::{EventKind, Message};
use firegrid_protocols::topic::DeviceTopic;
use firegrid_simulator::device::{Models, SimDevice, SimOptions, run_device};
use firegrid_simulator::physics::LeakageModel;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Waits for the next packet matching `pick`, up to `deadline`.
async fn next_matching<T>(
    rx: &mut mpsc::UnboundedReceiver<Packet>,
    deadline: tokio::time::Instant,
    what: &str,
    mut pick: impl FnMut(&Packet) -> Option<T>,
) -> T {
    loop {
        let packet = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("event loop running");
        if let Some(t) = pick(&packet) {
            return t;
        }
    }
}

#[tokio::test]
async fn a_leakage_jump_is_alarmed_published_and_acknowledged_end_to_end() {
    let started = Instant::now();
    let broker = Mosquitto::start().await.expect("mosquitto starts");
    let id = "sim-one-1";
    let topic = |kind: DeviceTopic| format!("firegrid/v1/dev/{id}/{}", kind.as_str());

    // The gateway's side: a subscriber that also publishes the retained config and the acks.
    let mut mqtt_options = MqttOptions::new("test-gateway", "127.0.0.1", broker.port());
    mqtt_options.set_keep_alive(Duration::from_secs(30));
    let (client, mut event_loop) = AsyncClient::new(mqtt_options, 64);
    let (packets_tx, mut packets) = mpsc::unbounded_channel();
    let event_loop_task = tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(packet)) => {
                    if packets_tx.send(packet).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => panic!("test client: {e}"),
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for kind in [DeviceTopic::Telemetry, DeviceTopic::Event] {
        client
            .subscribe(topic(kind), QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        next_matching(&mut packets, deadline, "SUBACK", |p| {
            matches!(p, Packet::SubAck(_)).then_some(())
        })
        .await;
    }
    // A retained config: a short alarm delay and the shortest report interval.
    let mut config = Layout::typical_monitor().default_config();
    config.version = 1;
    config.report_interval_s = 5;
    for channel in config.channels.iter_mut() {
        channel.delay_s = 1;
    }
    let mut buf = [0u8; 2048];
    let n = codec::encode(&Message::Config(config), Encoding::Json, &mut buf).expect("encode");
    client
        .publish(
            topic(DeviceTopic::Config),
            QoS::AtLeastOnce,
            true,
            buf[..n].to_vec(),
        )
        .await
        .expect("publish config");
    next_matching(&mut packets, deadline, "PUBACK of the config", |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;

    // The device: 10 mA, jumping to 500 mA at 2 s.
    let leakage = LeakageModel {
        base_ma: 10.0,
        creep_ma_per_min: 1.0e9,
        creep_from_ms: 2_000,
        max_ma: 500.0,
    };
    let clock = TokioClock::new();
    let sim = SimDevice::new(
        Layout::typical_monitor(),
        Models::typical(leakage),
        SimOptions::default(),
        clock,
    );
    let mut view = sim.watch();
    let local = tokio::task::LocalSet::new();
    let addr = broker.addr();
    let device = local.spawn_local(async move {
        let mut options = mqtt::Options::new();
        options.backoff.base_ms = 200;
        run_device(DeviceId::new(id).expect("id"), addr, sim, &options).await
    });

    local
        .run_until(async {
            // Telemetry first (the boot reading), then the alarm; every event is acked.
            let mut telemetry_at = None;
            let mut acks_sent = 0u32;
            let alarm = loop {
                let (kind, message) = next_matching(&mut packets, deadline, "the alarm", |p| {
                    let Packet::Publish(p) = p else { return None };
                    let kind = if p.topic == topic(DeviceTopic::Telemetry) {
                        DeviceTopic::Telemetry
                    } else if p.topic == topic(DeviceTopic::Event) {
                        DeviceTopic::Event
                    } else {
                        return None;
                    };
                    Some((kind, codec::decode(kind, &p.payload).expect("decodes")))
                })
                .await;
                match message {
                    Message::Telemetry(t) => {
                        assert_eq!(kind, DeviceTopic::Telemetry);
                        telemetry_at.get_or_insert(started.elapsed());
                        assert!(!t.readings.is_empty());
                    }
                    Message::Event(e) => {
                        let ack = format!(r#"{{"seqs":[{}],"ts":{}}}"#, e.seq, unix_ms());
                        client
                            .publish(topic(DeviceTopic::Ack), QoS::AtLeastOnce, false, ack)
                            .await
                            .expect("publish ack");
                        acks_sent += 1;
                        if let EventKind::AlarmRaised { channel, level } = e.kind {
                            assert_eq!(channel, 0);
                            assert!(level.value >= 300, "{level:?}");
                            break e;
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            };
            let alarm_at = started.elapsed();
            let telemetry_at = telemetry_at.expect("telemetry before the alarm");
            assert!(telemetry_at <= alarm_at);

            // Every ack (the alarm's last) reaches the device: its outbox empties and the
            // alarm is not resent.
            let state = timeout(
                Duration::from_secs(5),
                view.wait_for(|v| v.acks >= acks_sent && v.unacked_events == Some(0)),
            )
            .await
            .expect("the outbox empties")
            .expect("device running")
            .clone();
            assert!(
                !state
                    .sent
                    .iter()
                    .any(|&(t, seq, resend)| t == DeviceTopic::Event && seq == alarm.seq && resend),
                "{:?}",
                state.sent
            );
            assert_eq!(state.indicators.map(|i| i.sound), Some(Sound::Alarm));
            assert!(state.indicators.is_some_and(|i| i.alarm_led));
            assert!(state.samples[0].is_some_and(|s| s.is_ok_and(|ma| ma >= 490)));
            assert!(state.acks >= 2, "config_applied and the alarm: {state:?}");
            eprintln!(
                "telemetry at {telemetry_at:?}, alarm at {alarm_at:?}, outbox empty at {:?} \
                 ({acks_sent} events acked)",
                started.elapsed()
            );
        })
        .await;
    device.abort();
    event_loop_task.abort();
}
