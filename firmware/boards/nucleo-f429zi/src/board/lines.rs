//! The line task: the smoke alarm's alarm line and battery-low line, the tamper switch and
//! the test button, read and debounced every 10 ms (the drivers' debouncers, with explicit
//! time). High priority.

use defmt::{info, warn};
use embassy_stm32::gpio::Input;
use embassy_time::{Duration, Ticker};
use firegrid_firmware::drivers::smoke_alarm::{ButtonEvent, DebouncedLine, Edge, TestButton};
use firegrid_firmware::monitor::Input as MonitorInput;

use super::shared::{INPUTS, now_ms};

/// How often the lines are read.
const PERIOD: Duration = Duration::from_millis(10);

/// Tamper switch debounce, both ways, ms (a lid switch bounces for a few ms; 200 ms is
/// firegrid's choice, like the smoke line's activation time).
pub(crate) const TAMPER_DEBOUNCE_MS: u32 = 200;

/// The debounced inputs.
pub(crate) struct Lines {
    /// The smoke alarm's alarm/interconnect line.
    pub(crate) smoke: DebouncedLine<Input<'static>>,
    /// The smoke alarm's battery-low line.
    pub(crate) smoke_battery: DebouncedLine<Input<'static>>,
    /// The enclosure switch.
    pub(crate) tamper: DebouncedLine<Input<'static>>,
    /// The test button.
    pub(crate) button: TestButton<Input<'static>>,
}

#[embassy_executor::task]
pub(crate) async fn lines_task(mut lines: Lines) -> ! {
    let mut ticker = Ticker::every(PERIOD);
    loop {
        let now = now_ms();
        // Reading a GPIO cannot fail on this HAL: `Err` is never seen.
        if let Ok(Some(edge)) = lines.smoke.poll(now) {
            info!("smoke line {}", edge_name(edge));
            INPUTS
                .send(MonitorInput::Smoke(edge == Edge::Activated))
                .await;
        }
        if let Ok(Some(edge)) = lines.tamper.poll(now) {
            info!(
                "tamper switch {}",
                if edge == Edge::Activated {
                    "open"
                } else {
                    "closed"
                }
            );
            INPUTS
                .send(MonitorInput::Tamper(edge == Edge::Activated))
                .await;
        }
        if let Ok(Some(edge)) = lines.smoke_battery.poll(now) {
            // The monitor core has no input for an attached alarm's battery-low line (its
            // battery input is a voltage): logged only, see README "Not yet".
            warn!("smoke alarm battery-low line {}", edge_name(edge));
        }
        match lines.button.poll(now) {
            Ok(Some(ButtonEvent::ShortPress)) => {
                info!("test button");
                INPUTS.send(MonitorInput::TestButton).await;
            }
            Ok(Some(ButtonEvent::LongPress)) => info!("test button held"),
            _ => {}
        }
        ticker.next().await;
    }
}

fn edge_name(edge: Edge) -> &'static str {
    match edge {
        Edge::Activated => "active",
        Edge::Deactivated => "inactive",
    }
}
