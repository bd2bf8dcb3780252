//! A simulated device's sensing through the real drivers, without a network.

use firegrid_firmware::monitor::Sound;

use super::*;

fn typical(leakage: LeakageModel) -> SimDevice {
    SimDevice::new(
        Layout::typical_monitor(),
        Models::typical(leakage),
        SimOptions::default(),
        TokioClock::new(),
    )
}

fn drain(sim: &mut SimDevice) -> Vec<Input> {
    sim.queue.drain(..).collect()
}

#[tokio::test]
async fn a_pass_reads_every_channel_through_the_drivers() {
    let mut sim = typical(LeakageModel::steady(120.0));
    sim.sense(0);
    let inputs = drain(&mut sim);
    assert_eq!(inputs.len(), 5, "{inputs:?}");
    let Input::Sample {
        channel: 0,
        value: Ok(ma),
    } = inputs[0]
    else {
        panic!("{inputs:?}")
    };
    assert!((118..=122).contains(&ma), "{ma}");
    for (i, input) in inputs.iter().enumerate().skip(1) {
        let Input::Sample {
            channel,
            value: Ok(dc),
        } = *input
        else {
            panic!("{input:?}")
        };
        assert_eq!(usize::from(channel), i);
        assert!((245..=255).contains(&dc), "{dc}");
    }
    let view = sim.watch().borrow().clone();
    assert_eq!(view.passes, 1);
    assert_eq!(view.samples[0], Some(Ok(ma)));
}

#[tokio::test]
async fn time_scale_runs_the_models_faster_and_probe_faults_show() {
    let mut models = Models::typical(LeakageModel::creeping(10.0, 60.0, 0));
    models.terminals[1]
        .probe_faults
        .push(crate::physics::FaultWindow::from(LeadState::Open, 0));
    let mut sim = SimDevice::new(
        Layout::typical_monitor(),
        models,
        SimOptions {
            time_scale: 60.0,
            ..SimOptions::default()
        },
        TokioClock::new(),
    );
    // 1 s of device time is 1 min of model time: 10 + 60 mA.
    sim.sense(1_000);
    let inputs = drain(&mut sim);
    let Input::Sample { value: Ok(ma), .. } = inputs[0] else {
        panic!("{inputs:?}")
    };
    assert!((68..=72).contains(&ma), "{ma}");
    assert_eq!(
        inputs[2],
        Input::Sample {
            channel: 2,
            value: Err(FaultCause::LeadOpen)
        }
    );
}

#[tokio::test]
async fn boot_steps_the_first_pass_and_the_battery_measurement() {
    let mut sim = typical(LeakageModel::steady(10.0));
    let mut device = FirmwareDevice::new(
        DeviceId::new("sim-boot").expect("id"),
        sim.layout.clone(),
        Flash::default(),
        0,
    );
    sim.boot(&mut device, 0);
    // The first report has values: telemetry is queued.
    assert!(!device.outbox().is_empty());
    // The power-up battery measurement was taken and stepped in too.
    assert_eq!(drain(&mut sim), Vec::new());
    let shown = sim.watch().borrow().indicators;
    assert_eq!(shown.map(|i| i.sound), Some(Sound::Off));
}
