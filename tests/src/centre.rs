//! The simulated GB/T 26875.3 centre, `firegrid-sim centre`, as a child process on a free
//! port; what it logged (one JSON line per event) read back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{Process, START_TIMEOUT, binary, free_port};

/// A running simulated centre. Its logs (one file per start) stay in the test's directory.
#[derive(Debug)]
pub struct Centre {
    /// The process.
    pub process: Process,
    /// Where it listens (the same across restarts).
    pub addr: SocketAddr,
    dir: PathBuf,
    starts: u32,
}

impl Centre {
    /// Starts `firegrid-sim centre` on a free port with `args` (e.g. `["--no-confirm", "3"]`);
    /// returns once it listens.
    pub async fn start(dir: &Path, args: &[&str]) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut me = Self {
            process: launch(dir, addr, 1, args),
            addr,
            dir: dir.to_owned(),
            starts: 1,
        };
        me.until_listening().await;
        me
    }

    /// Kills it and starts it again on the same port with `args`.
    pub async fn restart(&mut self, args: &[&str]) {
        self.process.kill9();
        self.starts += 1;
        self.process = launch(&self.dir, self.addr, self.starts, args);
        self.until_listening().await;
    }

    async fn until_listening(&mut self) {
        let process = &mut self.process;
        crate::until("the centre to listen", START_TIMEOUT, || {
            assert!(
                process.alive(),
                "firegrid-sim centre exited:\n{}",
                process.log()
            );
            process
                .log()
                .contains("\"event\":\"listening\"")
                .then_some(())
        })
        .await;
    }

    /// Every event it logged, over all its starts, in order; each with `"start"` (1, 2, …).
    pub fn events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for start in 1..=self.starts {
            let text = std::fs::read_to_string(log_path(&self.dir, start)).unwrap_or_default();
            for line in text.lines() {
                if let Ok(mut v) = serde_json::from_str::<Value>(line) {
                    v["start"] = Value::from(start);
                    out.push(v);
                }
            }
        }
        out
    }

    /// The frames it received (`"event":"frame"`).
    pub fn frames(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "frame")
            .collect()
    }
}

fn log_path(dir: &Path, start: u32) -> PathBuf {
    dir.join(format!("centre-{start}.log"))
}

fn launch(dir: &Path, addr: SocketAddr, start: u32, args: &[&str]) -> Process {
    Process::spawn(
        Command::new(binary("firegrid-sim"))
            .arg("centre")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args),
        &log_path(dir, start),
    )
    .expect("firegrid-sim centre starts")
}
