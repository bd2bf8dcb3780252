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
        Cmd::Run { config, data_dir } => {
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
