//! What firegrid's tests share, in one place (not published; a dev-dependency of every crate
//! whose tests need it, and a dependency of the simulator's benchmark):
//!
//! - [`firegrid`]: the `firegrid` binary as a child process, configured by a typed
//!   [`GatewayConfig`] that renders its TOML;
//! - [`schemathesis`](mod@schemathesis): an outside API fuzzer (and an OpenAPI validator);
//! - [`mosquitto`], [`victoria`], [`socat`], [`pymodbus`]: outside servers on free loopback
//!   ports, started again on another port when the one picked was taken meanwhile;
//! - [`port::free_port`], [`wait`] (wait on an observable condition, with a deadline and a
//!   message naming what was awaited), [`metrics`] (the `/metrics` text), [`mqtt`] (an
//!   observing MQTT client), [`summary`](mod@summary) (percentiles of latencies);
//! - [`process`]: a child process with its output in a log file, killed when dropped.
//!
//! It depends on no firegrid crate: the gateway's own unit tests use it, and a dependency on
//! the gateway would compile a second copy of the gateway's types into them.
//!
//! Outside programs come from Debian (`mosquitto`, `victoria-metrics`, `socat`) and PyPI
//! (`pymodbus`, `schemathesis`); `scripts/test` installs them. `FIREGRID_MOSQUITTO` and
//! `FIREGRID_VICTORIA_METRICS` override the binaries' paths; `FIREGRID_PYTHON` names a Python
//! with pymodbus; `FIREGRID_SCHEMATHESIS` the schemathesis command.

pub mod firegrid;
pub mod metrics;
pub mod mosquitto;
pub mod mqtt;
pub mod port;
pub mod process;
pub mod pymodbus;
pub mod schemathesis;
pub mod socat;
pub mod summary;
pub mod victoria;
pub mod wait;

pub use firegrid::{Broker, Firegrid, GatewayConfig};
pub use metrics::{metric, refusals};
pub use mosquitto::{Mosquitto, MosquittoError};
pub use mqtt::{Mqtt, Received};
pub use port::free_port;
pub use process::Process;
pub use summary::{percentile, summary};
pub use victoria::{Series, VictoriaMetrics, VmError, point_count};
pub use wait::{until, until_async, within};

/// Whether `FIREGRID_TEST` is set: then a test needing an outside program fails rather than
/// skips when the program is missing (`scripts/test` sets it).
pub fn strict() -> bool {
    std::env::var_os("FIREGRID_TEST").is_some()
}
