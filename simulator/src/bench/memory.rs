//! A process's memory, from `/proc/{pid}/status` (Linux).

use serde::Serialize;

/// Resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rss {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Its high-water mark (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// Of the resident set, the anonymous memory (`RssAnon`: the heap, stacks), KiB.
    pub anon_kib: u64,
    /// Of the resident set, file pages mapped (`RssFile`: the binary, libraries, files mapped
    /// by SQLite), KiB.
    pub file_kib: u64,
    /// Of the resident set, shared memory (`RssShmem`: SQLite's WAL indexes), KiB.
    pub shmem_kib: u64,
}

/// The memory of process `pid` now; zeros if it cannot be read (not Linux, or gone).
pub fn rss(pid: u32) -> Rss {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| parse(&s))
        .unwrap_or_default()
}

/// `VmRSS` and `VmHWM` of a `/proc/{pid}/status` text.
fn parse(status: &str) -> Rss {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Rss {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        file_kib: field("RssFile:"),
        shmem_kib: field("RssShmem:"),
    }
}

/// The memory per device, bytes: the growth from `idle` (nothing registered) to `active`
/// (`devices` registered and sending), over `devices`.
pub fn per_device_bytes(idle: Rss, active: Rss, devices: usize) -> f64 {
    if devices == 0 {
        return 0.0;
    }
    (active.rss_kib as f64 - idle.rss_kib as f64) * 1024.0 / devices as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_high_water_mark() {
        let text = "Name:\tfiregrid\nVmHWM:\t   20480 kB\nVmRSS:\t   16384 kB\n\
                    RssAnon:\t   10240 kB\nRssFile:\t    6000 kB\nRssShmem:\t     144 kB\n\
                    Threads:\t9\n";
        assert_eq!(
            parse(text),
            Rss {
                rss_kib: 16384,
                hwm_kib: 20480,
                anon_kib: 10240,
                file_kib: 6000,
                shmem_kib: 144,
            }
        );
        let me = rss(std::process::id());
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib, "{me:?}");
    }

    #[test]
    fn per_device_is_the_growth_over_the_devices() {
        let idle = Rss {
            rss_kib: 10_000,
            ..Rss::default()
        };
        let active = Rss {
            rss_kib: 12_000,
            ..Rss::default()
        };
        assert_eq!(per_device_bytes(idle, active, 1000), 2048.0);
        assert_eq!(per_device_bytes(idle, active, 0), 0.0);
    }
}
