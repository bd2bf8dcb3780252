//! The indicator task: buzzer, red alarm LED, fault LED and relay from the device's
//! [`Indicators`](firegrid_firmware::monitor::Indicators), with the drivers' patterns
//! ([`crate::indication`]). High priority, every 10 ms (the shortest pattern step is 100 ms).

use defmt::{info, warn};
use embassy_stm32::gpio::Output;
use embassy_time::{Duration, Ticker};
use firegrid_firmware::drivers::outputs::{Error, Outputs};

use super::shared::{INDICATORS, now_ms};
use crate::indication::Indication;

/// How often the outputs are updated.
const PERIOD: Duration = Duration::from_millis(10);

/// The board's outputs: buzzer (D6), red LED LD3, blue LED LD2, relay (D7).
pub(crate) type BoardOutputs =
    Outputs<Output<'static>, Output<'static>, Output<'static>, Output<'static>>;

#[embassy_executor::task]
pub(crate) async fn indicator_task(mut outputs: BoardOutputs) -> ! {
    let mut indication = Indication::new(now_ms());
    let mut relay = false;
    let mut ticker = Ticker::every(PERIOD);
    loop {
        let now = now_ms();
        if let Some(shown) = INDICATORS.try_take() {
            indication.show(&shown, now);
            if shown.relay_tripped != relay {
                relay = shown.relay_tripped;
                match outputs.set_relay(relay) {
                    Ok(()) => info!("relay {}", if relay { "tripped" } else { "released" }),
                    Err(Error::RelayNotEnabled) => warn!("relay trip asked for, relay disabled"),
                    Err(Error::Pin(_)) => {}
                }
            }
        }
        let levels = indication.levels(now);
        // GPIO writes cannot fail on this HAL.
        let _ = outputs.set_buzzer(levels.buzzer);
        let _ = outputs.set_alarm_led(levels.alarm_led);
        let _ = outputs.set_fault_led(levels.fault_led);
        ticker.next().await;
    }
}
