//! `firegrid modbus probe`: read a monitor once and print every register decoded, for
//! installers checking wiring, slave id and profile.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use firegrid_protocols::regmap::Meaning;

use super::bus::{Bus, Link};
use super::decode::decode;
use super::poller::{DeviceSchedule, Input, Outcome, Poller, PollerConfig};
use super::profile::Profile;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection could not be opened.
    #[error(
        "cannot open {link}: {error} (check the address or port, and that nothing else holds it)"
    )]
    Open {
        /// The bus.
        link: String,
        /// Why.
        error: std::io::Error,
    },
    /// A read failed.
    #[error(
        "reading {what} from slave {slave}: {outcome} (check the slave id, baud rate and A/B wiring)"
    )]
    Read {
        /// The block.
        what: String,
        /// The slave.
        slave: u8,
        /// What happened.
        outcome: String,
    },
}

/// Reads every register of `profile` from `slave` once and returns a table of the values.
///
/// # Errors
/// [`ProbeError`] naming what failed and what to check.
pub async fn probe(
    link: &Link,
    slave: u8,
    profile: Arc<Profile>,
    timeout: Duration,
) -> Result<String, ProbeError> {
    let mut ctx = link
        .open(timeout, false)
        .await
        .map_err(|error| ProbeError::Open {
            link: link.name(),
            error,
        })?;
    let device = DeviceSchedule {
        id: "probe".parse().map_err(|_| ProbeError::Read {
            what: String::new(),
            slave,
            outcome: "internal: bad id".into(),
        })?,
        slave,
        profile: profile.clone(),
        interval_ms: 1000,
        used_seq: 0,
        restored: Vec::new(),
    };
    let bus = Bus {
        link: link.clone(),
        devices: vec![device.clone()],
        poller: PollerConfig::default(),
        timeout,
    };
    let mut poller = Poller::new(bus.devices, bus.poller, 0);
    let mut blocks = Vec::new();
    let mut words = Vec::new();
    while let Some(req) = poller.next_request(0) {
        let outcome = super::bus::execute_once(&mut ctx, &req, timeout).await;
        let super::poller::Op::Read(block) = req.op else {
            break;
        };
        match &outcome {
            Outcome::Words(w) => {
                blocks.push(block);
                words.push(w.clone());
            }
            other => {
                return Err(ProbeError::Read {
                    what: format!("{} {:#06x}×{}", block.kind, block.start, block.count),
                    slave,
                    outcome: describe(other),
                });
            }
        }
        let _ = poller.handle(
            Input::Done {
                id: req.id,
                outcome,
            },
            0,
        );
    }
    let decoded = decode(&profile, &blocks, &words);
    let map = profile.map();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} slave {slave}, profile {}:",
        link.name(),
        profile.name()
    );
    let mut regs: Vec<_> = map.registers.iter().collect();
    regs.sort_by_key(|r| (r.kind as u8, r.address));
    for r in regs {
        let raw = blocks
            .iter()
            .zip(&words)
            .find(|(b, _)| b.kind == r.kind && b.contains(r))
            .and_then(|(b, w)| b.words_for(r, w))
            .map(|w| format!("{w:?}"))
            .unwrap_or_default();
        let ch = r.meaning.channel().map(usize::from);
        let value = match r.meaning {
            Meaning::StateCode(c) => ch
                .and_then(|i| decoded.codes.get(i).copied().flatten())
                .map(|code| match map.channel_state(c, code) {
                    Ok(s) => format!("{code} = {s:?}"),
                    Err(e) => format!("{code}: {e}"),
                }),
            Meaning::ResidualCurrent(_) | Meaning::Temperature(_) => ch
                .and_then(|i| decoded.values.get(i).copied().flatten())
                .map(|v| unit(r.meaning, v)),
            Meaning::ResidualSetPoint(_) | Meaning::TemperatureSetPoint(_) => ch
                .and_then(|i| decoded.setpoints.get(i).copied().flatten())
                .map(|v| unit(r.meaning, v)),
            m => decoded
                .other
                .iter()
                .find(|(k, _)| *k == m)
                .map(|(_, v)| unit(m, *v)),
        }
        .unwrap_or_else(|| "(does not decode)".into());
        let _ = writeln!(
            out,
            "  {:<16} {:#06x} {:<28} raw {:<8} {}{}",
            r.kind.to_string(),
            r.address,
            format!("{:?}", r.meaning),
            raw,
            value,
            if r.writable { "  (writable)" } else { "" }
        );
    }
    Ok(out)
}

fn unit(m: Meaning, v: i32) -> String {
    use firegrid_protocols::regmap::Unit;
    match m.unit() {
        Unit::MilliAmpere => format!("{v} mA"),
        Unit::DeciCelsius => format!("{}.{} °C", v / 10, (v % 10).abs()),
        Unit::Second => format!("{v} s"),
        _ => v.to_string(),
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Timeout => "no reply within the timeout".into(),
        Outcome::Transport => "no valid reply (garbage, or the connection failed)".into(),
        Outcome::Exception(c) => format!("exception code {c}"),
        Outcome::Written | Outcome::Words(_) => "unexpected reply".into(),
    }
}

/// `firegrid modbus probe` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Modbus TCP server, HOST:PORT (a monitor or a serial-to-Ethernet converter).
    #[arg(long, conflicts_with = "rtu", required_unless_present = "rtu")]
    pub tcp: Option<String>,
    /// Serial port for Modbus RTU, e.g. /dev/ttyUSB0.
    #[arg(long)]
    pub rtu: Option<std::path::PathBuf>,
    /// Baud rate for --rtu (8N1).
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// Modbus unit (slave) id.
    #[arg(long, default_value_t = 1)]
    pub slave: u8,
    /// Profile: a built-in name, or a profile file (TOML).
    #[arg(long, default_value = "typical-rcm-4t")]
    pub profile: String,
    /// Deadline of each request, ms.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

/// Runs a probe from the command line: loads the profile, reads once, returns the table.
///
/// # Errors
/// What went wrong, in words for the installer.
pub fn cli(args: &ProbeArgs) -> Result<String, String> {
    let path = std::path::Path::new(&args.profile);
    let profile = if path.is_file() {
        Profile::load(path).map_err(|e| e.to_string())?
    } else {
        let profiles = super::Profiles::builtin();
        profiles
            .get(&args.profile)
            .map(|p| (*p).clone())
            .ok_or_else(|| {
                format!(
                    "no profile {:?}: give a built-in name ({}) or a .toml file",
                    args.profile,
                    profiles.names().collect::<Vec<_>>().join(", ")
                )
            })?
    };
    let link = match (&args.tcp, &args.rtu) {
        (Some(a), _) => Link::Tcp(a.clone()),
        (None, Some(p)) => Link::Rtu {
            path: p.clone(),
            baud: args.baud,
        },
        (None, None) => return Err("give --tcp HOST:PORT or --rtu /dev/ttyX".into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(probe(
        &link,
        args.slave,
        Arc::new(profile),
        Duration::from_millis(args.timeout_ms),
    ))
    .map_err(|e| e.to_string())
}
