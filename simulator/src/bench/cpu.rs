//! Where the CPU went during a measuring window: the gateway's, the broker's and the load
//! generator's processor time (all their threads, user and kernel), and how busy the whole
//! machine was, from `/proc` (Linux; zeros elsewhere).
//!
//! On a machine of two cores the three share, a rate is as much a question of how much CPU each
//! message costs each of them as of any one of them: the gateway's cost per message (cores over
//! messages per second) is the benchmark's measure of its efficiency that the machine's speed
//! of the moment does not move (the baseline rate does, between runs, by up to 2×). `steal` is
//! the time the hypervisor gave the machine's virtual cores to someone else.

use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second of `/proc`'s times (`USER_HZ`, 100 on every Linux architecture).
const TICKS_PER_S: f64 = 100.0;

/// CPU used over a window, in cores (1.0 = one core all the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// The gateway's process (0 when there is none, as for the baselines).
    pub gateway_cores: f64,
    /// Mosquitto's.
    pub broker_cores: f64,
    /// The benchmark's own process: publishers, and the plain subscriber or relay, and the
    /// alarm's ends.
    pub load_cores: f64,
    /// The whole machine: busy share of all its cores (0–1), steal excluded.
    pub machine_busy: f64,
    /// The whole machine: share of its cores' time stolen by the hypervisor (0–1).
    pub machine_steal: f64,
}

impl Usage {
    /// Microseconds of CPU per message of `cores` at `per_s` messages per second.
    pub fn us_per_message(cores: f64, per_s: f64) -> f64 {
        if per_s > 0.0 {
            cores * 1e6 / per_s
        } else {
            0.0
        }
    }
}

/// A window being measured: started by [`Meter::start`], read by [`Meter::usage`].
#[derive(Debug, Clone)]
pub struct Meter {
    gateway: Option<u32>,
    broker: u32,
    at: Instant,
    ticks: [u64; 3],
    machine: Machine,
}

impl Meter {
    /// Starts measuring the gateway (if any), the broker and this process.
    pub fn start(gateway: Option<u32>, broker: u32) -> Self {
        Self {
            gateway,
            broker,
            at: Instant::now(),
            ticks: [
                gateway.map_or(0, process_ticks),
                process_ticks(broker),
                process_ticks(std::process::id()),
            ],
            machine: machine(),
        }
    }

    /// What was used since [`start`](Self::start).
    pub fn usage(&self) -> Usage {
        let secs = self.at.elapsed().as_secs_f64();
        if secs <= 0.0 {
            return Usage::default();
        }
        let cores = |before: u64, now: u64| now.saturating_sub(before) as f64 / TICKS_PER_S / secs;
        let m = machine();
        let total = m.total.saturating_sub(self.machine.total) as f64;
        let share = |before: u64, now: u64| {
            if total > 0.0 {
                now.saturating_sub(before) as f64 / total
            } else {
                0.0
            }
        };
        Usage {
            gateway_cores: self
                .gateway
                .map_or(0.0, |p| cores(self.ticks[0], process_ticks(p))),
            broker_cores: cores(self.ticks[1], process_ticks(self.broker)),
            load_cores: cores(self.ticks[2], process_ticks(std::process::id())),
            machine_busy: share(self.machine.busy, m.busy),
            machine_steal: share(self.machine.steal, m.steal),
        }
    }
}

/// User and system ticks of every thread of process `pid` (0 if it cannot be read).
fn process_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_ticks(&s))
        .unwrap_or(0)
}

/// utime + stime of a `/proc/PID/stat` line: fields 14 and 15, counted after the command
/// name's closing parenthesis (the name may hold spaces and parentheses).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's tick counters since boot, from `/proc/stat`'s `cpu` line.
#[derive(Debug, Clone, Copy, Default)]
struct Machine {
    busy: u64,
    steal: u64,
    total: u64,
}

fn machine() -> Machine {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| machine_of(&s))
        .unwrap_or_default()
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: guest time is
/// already counted in user, so the total is the first eight.
fn machine_of(stat: &str) -> Option<Machine> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v[..] else {
        return None;
    };
    Some(Machine {
        busy: user + nice + system + irq + softirq,
        steal,
        total: user + nice + system + idle + iowait + irq + softirq + steal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1502 0 0 0 731 266 0 0 20 0 9 0";
        assert_eq!(stat_ticks(line), Some(731 + 266));
        assert_eq!(stat_ticks("4242 (x"), None);
        assert_eq!(stat_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn reads_the_machine_line() {
        let stat = "cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\n";
        let m = machine_of(stat).unwrap();
        assert_eq!((m.busy, m.steal, m.total), (160, 10, 990));
        assert!(machine_of("cpu  1 2\n").is_none());
        assert!(machine_of("").is_none());
    }

    #[test]
    fn this_process_uses_cpu_when_it_works() {
        let meter = Meter::start(None, std::process::id());
        let mut x = 0u64;
        let started = Instant::now();
        while started.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        assert_ne!(x, 42);
        let u = meter.usage();
        assert!(u.load_cores > 0.3, "{u:?}");
        assert_eq!(u.gateway_cores, 0.0);
        assert!(u.machine_busy > 0.0 && u.machine_busy <= 1.0, "{u:?}");
    }
}
