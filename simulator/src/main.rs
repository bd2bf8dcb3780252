//! The `firegrid-sim` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "firegrid-sim {}: the simulator is not built yet (it lands with the \"Simulator\" issue).",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
