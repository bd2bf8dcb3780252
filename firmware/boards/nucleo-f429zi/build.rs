//! Link arguments for the firmware (only when building for the MCU): cortex-m-rt's `link.x`
//! (with the `memory.x` that embassy-stm32's `memory-x` feature generates), defmt's
//! `defmt.x`, and this board's `layout.x`, which checks that the program leaves the flash
//! sectors of the sequence-number log alone. Given here rather than in `.cargo/config.toml`
//! so that building with `--manifest-path` from anywhere links the same way.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=layout.x");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return; // the host build is the pure modules and their tests
    }
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-search={dir}");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rustc-link-arg-bins=-Tlayout.x");
    // This crate's own log lines at `info` and above unless the builder chose a level for
    // everything (`DEFMT_LOG=debug cargo build …`); defmt's default is errors only.
    println!("cargo:rerun-if-env-changed=DEFMT_LOG");
    if env::var_os("DEFMT_LOG").is_none() {
        println!("cargo:rustc-env=DEFMT_LOG=info");
    }
}
