//! The `firegrid` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "firegrid {}: the gateway is not built yet (it lands with the \"Gateway core\" issue).\n\
         What works today: the protocol crate and its reference, docs/protocol.md; run scripts/test.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
