//! The `firegrid` command: run the gateway, print or check its configuration, manage people.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use firegrid_gateway::app;
use firegrid_gateway::config::{Config, DEFAULT_CONFIG};

/// firegrid: watches electrical circuits and smoke alarms and gets grid workers to hazards fast.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway: embedded broker (by default), store, alarm engine, notifier, HTTP API.
    Run {
        /// Configuration file (TOML); without it the defaults apply (see print-default-config).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Overrides `data_dir` of the configuration.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the default configuration, every key documented.
    PrintDefaultConfig,
    /// Check a configuration file and say what is wrong, with the line; with the tsdb section on,
    /// also test the connection to the time-series database.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// People and their API tokens, on the data directory (also before the first start).
    User {
        #[command(subcommand)]
        command: firegrid_gateway::access::cli::UserCmd,
    },
    /// Legacy Modbus monitors.
    Modbus {
        #[command(subcommand)]
        command: ModbusCmd,
    },
    /// Commissioning records: check one, or print the gateway's public key.
    Record {
        #[command(subcommand)]
        command: RecordCmd,
    },
    /// The GB/T 26875.3 link to a remote fire-monitoring centre.
    Gb26875 {
        #[command(subcommand)]
        command: Gb26875Cmd,
    },
}

#[derive(Subcommand)]
enum Gb26875Cmd {
    /// Print a frame decoded as JSON (exit 2 and the reason when the frame is bad).
    Decode {
        /// The frame's bytes in hex (spaces allowed), e.g. "40 40 00 00 01 01 …".
        hex: Vec<String>,
        /// The protocol variant (see docs/gb26875.md).
        #[arg(long, default_value = "standard")]
        profile: String,
    },
}

#[derive(Subcommand)]
enum RecordCmd {
    /// Check a commissioning record file: exit 0 when it is exactly what the gateway signed,
    /// 1 (and why) when it is not, 2 when the key cannot be had.
    Verify {
        /// The record file (as downloaded).
        file: PathBuf,
        /// The gateway's public key (base64, as `GET /api/v1/commissioning/key` or `firegrid
        /// record key` print it).
        #[arg(long, conflicts_with = "data_dir")]
        key: Option<String>,
        /// The gateway's data directory (its key file is read there).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the public key of the gateway's record-signing key (base64).
    Key {
        /// The gateway's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModbusCmd {
    /// Read a monitor once and print its registers decoded, for checking wiring and slave id.
    Probe(firegrid_gateway::modbus::probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Cmd::Run {
        config: None,
        data_dir: None,
    }) {
        Cmd::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) if cfg.tsdb.is_active() => check_tsdb(&file, &cfg),
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Cmd::User { command } => match firegrid_gateway::access::cli::run(&command) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("firegrid user: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Modbus {
            command: ModbusCmd::Probe(args),
        } => match firegrid_gateway::modbus::probe::cli(&args) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("firegrid modbus probe: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Gb26875 {
            command: Gb26875Cmd::Decode { hex, profile },
        } => decode_gb26875(&hex.join(" "), &profile),
        Cmd::Record { command } => record(command),
        Cmd::Run { config, data_dir } => {
            // Before any thread: glibc reads its malloc settings only at a process's start.
            firegrid_gateway::malloc::reexec_with_tunables();
            let mut cfg = match config.as_deref().map(Config::load).transpose() {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            app::init_tracing();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async {
                let cancel = CancellationToken::new();
                let stop = cancel.clone();
                tokio::spawn(async move {
                    let signal = app::stop_signal().await;
                    tracing::info!("{signal}: stopping (draining the journal and stores)");
                    stop.cancel();
                });
                match app::run(cfg, cancel, None).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("firegrid: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

/// `check-config` with `[tsdb]` on: the configuration is fine; now test the connection.
fn check_tsdb(file: &std::path::Path, cfg: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(firegrid_gateway::tsdb::check_connection(&cfg.tsdb)) {
        Ok(said) => {
            println!("{}: ok; tsdb: {said}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `firegrid record verify|key`.
fn record(command: RecordCmd) -> ExitCode {
    use firegrid_gateway::commissioning::{key, record};
    match command {
        RecordCmd::Key { data_dir } => match key::public_of(&data_dir) {
            Ok(k) => {
                println!("{k}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("firegrid record key: {e}");
                ExitCode::from(2)
            }
        },
        RecordCmd::Verify {
            file,
            key: given,
            data_dir,
        } => {
            let public = match (given, data_dir) {
                (Some(k), _) => k,
                (None, Some(dir)) => match key::public_of(&dir) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("firegrid record verify: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, None) => {
                    eprintln!(
                        "firegrid record verify: give the gateway's public key (--key, from GET \
                         /api/v1/commissioning/key) or its data directory (--data-dir)"
                    );
                    return ExitCode::from(2);
                }
            };
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("firegrid record verify: {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            match record::verify(&bytes, &public) {
                Ok(r) => {
                    println!(
                        "{}: valid: commissioning record {} of device {} by {}, issued at {} ms, {} test(s), signed by {public}",
                        file.display(),
                        r.id,
                        r.device.id,
                        r.installer,
                        r.issued_ms,
                        r.tests.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(record::VerifyError::BadKey) => {
                    eprintln!("firegrid record verify: {}", record::VerifyError::BadKey);
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("{}: NOT valid: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `firegrid gb26875 decode HEX`.
fn decode_gb26875(hex: &str, profile: &str) -> ExitCode {
    use firegrid_gateway::uplink::describe::{describe, parse_hex};
    let profile = match firegrid_protocols::gb26875::profile::Profile::by_name(profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("firegrid gb26875 decode: {e}");
            return ExitCode::from(2);
        }
    };
    match parse_hex(hex).and_then(|bytes| describe(&bytes, &profile)) {
        Ok(json) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("firegrid gb26875 decode: {e}");
            ExitCode::from(2)
        }
    }
}
