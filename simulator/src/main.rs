//! The `firegrid-sim` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use firegrid_simulator::bench;

/// Simulated firegrid districts and the benchmark.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure ingest, alarm latency and memory against a plain-broker baseline; print a table
    /// and write JSON (see docs/performance.md).
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Bench(args) => {
            let out = args.out.clone();
            match bench::run(args).await {
                Ok(mut results) => {
                    results.finish();
                    println!("{}", results.table());
                    if let Err(e) = results.write(&out) {
                        eprintln!("firegrid-sim bench: cannot write {}: {e}", out.display());
                        return ExitCode::FAILURE;
                    }
                    eprintln!("results written to {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("firegrid-sim bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
