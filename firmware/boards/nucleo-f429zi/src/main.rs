#![cfg_attr(target_os = "none", no_std, no_main)]
#![doc = include_str!("../README.md")]

// Pure board logic: built and unit-tested on the host too (`cargo test --manifest-path …`).
pub mod battery;
pub mod identity;
pub mod indication;
pub mod seq_log;

// Everything that touches the hardware: only for the MCU.
#[cfg(target_os = "none")]
mod board;

/// On the host this crate is only its pure modules and their tests; the firmware is built
/// with `--target thumbv7em-none-eabihf`.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "firegrid-board-nucleo-f429zi is firmware: build it with --target thumbv7em-none-eabihf"
    );
}
