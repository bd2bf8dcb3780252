//! The real firmware drivers over the simulated buses.

use firegrid_firmware::drivers::ads131m02::{self, Ads131m02, Config};
use firegrid_firmware::drivers::ads1115::{self, Ads1115, Channel, SlaveAddr};
use firegrid_firmware::drivers::ntc::{self, NtcDivider};
use firegrid_firmware::drivers::residual::{RmsCalculator, RmsConfig};
use firegrid_firmware::drivers::smoke_alarm::{ActiveLevel, DebouncedLine, Edge};
use firegrid_protocols::channel::FaultCause;

use super::*;
use crate::physics::{FaultWindow, HOUR_MS, LeakageModel, MINUTE_MS, SmokeModel, TerminalModel};

fn adc(leakage: LeakageModel) -> SimAds131m02 {
    SimAds131m02::new(CircuitModel::new(leakage), 0, 1)
}

/// Reads frames through the real driver into the real RMS calculator until a window ends.
fn one_window(adc: &mut Ads131m02<&mut SimAds131m02>) -> Result<u32, FaultCause> {
    let mut rms = RmsCalculator::new(RmsConfig::REFERENCE).expect("reference config");
    loop {
        let frame = adc.read_frame().expect("frame");
        if let Some(result) = rms.push(frame.channels[0]) {
            return result.map(|r| r.milliamps);
        }
    }
}

#[test]
fn ads131m02_init_succeeds_and_verifies_the_id() {
    let mut sim = adc(LeakageModel::steady(0.0));
    let mut delay = NoDelay::default();
    let mut driver = Ads131m02::new(&mut sim);
    driver
        .init(&mut delay, &Config::RESIDUAL_CURRENT)
        .expect("init");
    assert_eq!(driver.verify_id().expect("id").0, SIM_ADS131M02_ID);
    assert_eq!(driver.read_register(ads131m02::Register::Clock), Ok(0x030E));
    let frame = driver.read_frame().expect("frame");
    assert!(!frame.status.reset() && frame.status.data_ready(0));
    assert_eq!(frame.status.word_length_bits(), 0b01);
    driver.lock().expect("lock");
    driver.unlock().expect("unlock");
    assert_eq!(
        delay.requested_ns,
        u64::from(ads131m02::RESET_SETTLE_US) * 1000
    );
    assert_eq!(sim.register(ads131m02::Register::Gain1.addr()), 0x0002);
    assert!((sim.sample_period_us() - 250.0).abs() < 1e-9);
}

#[test]
fn a_spontaneous_reset_shows_in_the_next_frame() {
    let mut sim = adc(LeakageModel::steady(0.0));
    Ads131m02::new(&mut sim)
        .init(&mut NoDelay::default(), &Config::default())
        .expect("init");
    sim.power_cycle();
    assert_eq!(
        Ads131m02::new(&mut sim).read_frame(),
        Err(ads131m02::Error::DeviceReset)
    );
}

#[test]
fn rms_through_the_real_driver_matches_the_model() {
    for ma in [30.0, 300.0, 1000.0] {
        let mut sim = adc(LeakageModel::steady(ma));
        let mut driver = Ads131m02::new(&mut sim);
        driver
            .init(&mut NoDelay::default(), &Config::default())
            .expect("init");
        let got = f64::from(one_window(&mut driver).expect("reading"));
        assert!(
            (got - ma).abs() <= ma * 0.02,
            "{ma} mA model, {got} mA read"
        );
    }
}

#[test]
fn creeping_leakage_is_seen_rising() {
    // 5 mA/min from 09:00; read at 09:00 and at 09:10 (60 mA expected on a 10 mA base).
    let mut sim = SimAds131m02::new(
        CircuitModel::new(LeakageModel::creeping(10.0, 5.0, 9 * HOUR_MS)),
        9 * HOUR_MS,
        3,
    );
    Ads131m02::new(&mut sim)
        .init(&mut NoDelay::default(), &Config::default())
        .expect("init");
    let first = one_window(&mut Ads131m02::new(&mut sim)).expect("reading");
    assert!((9..=11).contains(&first), "{first}");
    sim.set_time_ms(9 * HOUR_MS + 10 * MINUTE_MS);
    let later = one_window(&mut Ads131m02::new(&mut sim)).expect("reading");
    assert!((59..=61).contains(&later), "{later}");
}

#[test]
fn ct_lead_faults_give_the_drivers_fault_causes() {
    let mut circuit = CircuitModel::new(LeakageModel::steady(50.0));
    circuit.ct_faults = vec![
        FaultWindow {
            state: LeadState::Open,
            from_ms: 1_000,
            until_ms: Some(2_000),
        },
        FaultWindow::from(LeadState::Short, 3_000),
    ];
    let mut sim = SimAds131m02::new(circuit, 0, 9);
    Ads131m02::new(&mut sim)
        .init(&mut NoDelay::default(), &Config::default())
        .expect("init");
    let mut read_at = |ms: u64| {
        sim.set_time_ms(ms);
        one_window(&mut Ads131m02::new(&mut sim))
    };
    assert!(read_at(0).is_ok());
    assert_eq!(read_at(1_000), Err(FaultCause::LeadOpen));
    assert!(read_at(2_000).is_ok());
    assert_eq!(read_at(3_000), Err(FaultCause::LeadShort));
    // No leakage but a connected CT is a reading of ≈ 0, not a short: the bias offset shows.
    let mut healthy = adc(LeakageModel::steady(0.0));
    healthy.circuit.noise_ma_rms = 0.0;
    Ads131m02::new(&mut healthy)
        .init(&mut NoDelay::default(), &Config::default())
        .expect("init");
    assert_eq!(one_window(&mut Ads131m02::new(&mut healthy)), Ok(0));
}

fn read_probe(sim: &mut SimAds1115, channel: Channel) -> Result<i16, FaultCause> {
    let mut driver = Ads1115::new(sim, SlaveAddr::Gnd, ads1115::Config::NTC);
    let code = driver
        .read_single_ended(channel, &mut NoDelay::default())
        .expect("conversion");
    ntc::temperature_dc(code, &NtcDivider::REFERENCE)
}

#[test]
fn ads1115_and_ntc_read_the_model_temperature() {
    let mut sim = SimAds1115::new(SlaveAddr::Gnd);
    for (i, temp) in [-10.0, 0.0, 25.0, 47.3, 70.0, 85.0, 120.0, 150.0]
        .into_iter()
        .enumerate()
    {
        let channel = Channel::ALL[i % 4];
        sim.probes[i % 4].temp_c = temp;
        let dc = read_probe(&mut sim, channel).expect("temperature");
        let got = f64::from(dc) / 10.0;
        assert!((got - temp).abs() <= 0.5, "{temp} °C model, {got} °C read");
    }
}

#[test]
fn a_loose_terminal_heats_and_the_probe_sees_it() {
    let mut terminal = TerminalModel::loose(0);
    let mut sim = SimAds1115::new(SlaveAddr::Gnd);
    let mut last = 0.0;
    for minute in [0, 5, 10, 30, 60] {
        sim.probes[2].temp_c = terminal.advance(minute * MINUTE_MS, 16.0);
        let got = f64::from(read_probe(&mut sim, Channel::Ain2).expect("temperature")) / 10.0;
        assert!((got - sim.probes[2].temp_c).abs() <= 0.5);
        assert!(got >= last);
        last = got;
    }
    assert!(last > 100.0, "{last}");
}

#[test]
fn probe_open_and_short_give_the_fault_causes() {
    let mut sim = SimAds1115::new(SlaveAddr::Gnd);
    sim.probes[1].lead = LeadState::Open;
    sim.probes[3].lead = LeadState::Short;
    assert_eq!(
        read_probe(&mut sim, Channel::Ain1),
        Err(FaultCause::LeadOpen)
    );
    assert_eq!(
        read_probe(&mut sim, Channel::Ain3),
        Err(FaultCause::LeadShort)
    );
    assert!(read_probe(&mut sim, Channel::Ain0).is_ok());
}

#[test]
fn ads1115_busy_too_long_times_out_and_wrong_address_nacks() {
    let mut sim = SimAds1115::new(SlaveAddr::Gnd);
    sim.busy_polls = ads1115::MAX_POLLS;
    let mut driver = Ads1115::new(&mut sim, SlaveAddr::Gnd, ads1115::Config::NTC);
    assert_eq!(
        driver.read_single_ended(Channel::Ain0, &mut NoDelay::default()),
        Err(ads1115::Error::Timeout)
    );
    let mut other = Ads1115::new(&mut sim, SlaveAddr::Vdd, ads1115::Config::NTC);
    assert_eq!(
        other.read_single_ended(Channel::Ain0, &mut NoDelay::default()),
        Err(ads1115::Error::I2c(SimI2cNack))
    );
}

#[test]
fn smoke_pin_is_seen_by_the_real_debouncer() {
    let smoke = SmokeModel::once(10_000, 60_000);
    let pin = SimInputPin::inactive(ActiveLevel::Low);
    let mut line = DebouncedLine::smoke_alarm(pin.clone(), ActiveLevel::Low);
    let mut edges = Vec::new();
    for now in (0..100_000).step_by(10) {
        pin.set_active(smoke.present(now), ActiveLevel::Low);
        if let Some(edge) = line.poll(now).expect("pin") {
            edges.push((now, edge));
        }
    }
    assert_eq!(
        edges,
        vec![(10_200, Edge::Activated), (72_000, Edge::Deactivated)]
    );
}

#[test]
fn battery_low_pin_follows_the_battery_model() {
    use crate::physics::{BatteryModel, DAY_MS};
    let battery = BatteryModel::nine_volt(15.0, 0);
    let pin = SimInputPin::inactive(ActiveLevel::High);
    let mut line = DebouncedLine::battery_low(pin.clone(), ActiveLevel::High);
    let start = 100 * DAY_MS - 10_000;
    let mut activated = None;
    for now in (start..start + 60_000).step_by(100) {
        pin.set_active(battery.is_low(now), ActiveLevel::High);
        if line.poll(now).expect("pin") == Some(Edge::Activated) {
            activated = Some(now);
        }
    }
    assert_eq!(activated, Some(100 * DAY_MS + 5_000));
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever command words arrive, every frame goes out with a valid CRC.
        #[test]
        fn every_frame_has_a_valid_crc(words in proptest::collection::vec(any::<[u8; 12]>(), 1..40)) {
            let mut sim = adc(LeakageModel::steady(500.0));
            for mut frame in words {
                sim.transfer_in_place(&mut frame).expect("infallible");
                let crc = ads131m02::crc16_ccitt(&frame[..9], ads131m02::CRC_SEED);
                prop_assert_eq!(u16::from_be_bytes([frame[9], frame[10]]), crc);
            }
        }

        /// Any leakage in the measuring range reads back within 2 % (or 1 mA).
        #[test]
        fn rms_within_two_percent(ma in 5.0_f64..2000.0, seed in any::<u64>()) {
            let mut sim = SimAds131m02::new(CircuitModel::new(LeakageModel::steady(ma)), 0, seed);
            Ads131m02::new(&mut sim).init(&mut NoDelay::default(), &Config::default()).expect("init");
            let got = f64::from(one_window(&mut Ads131m02::new(&mut sim)).expect("reading"));
            prop_assert!((got - ma).abs() <= (ma * 0.02).max(1.0), "{} vs {}", ma, got);
        }
    }
}
