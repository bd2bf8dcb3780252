//! The TSDB writer's benchmark: starts a VictoriaMetrics (Debian's `victoria-metrics`) on a free
//! port and prints the writer's and the spool's rates against their baselines
//! (`firegrid_gateway::tsdb::bench`).
//!
//! ```sh
//! cargo run --release -p firegrid-gateway --example tsdb_bench -- [READINGS] [BATCH_SIZE] [--json]
//! ```

use firegrid_gateway::tsdb::bench::{self, BenchOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut numbers = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let mut opts = BenchOptions::default();
    if let Some(n) = numbers.next() {
        opts.readings = n;
    }
    if let Some(b) = numbers.next() {
        opts.batch_size = b;
    }
    let result = bench::run(&opts).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", result.table());
    }
    Ok(())
}
