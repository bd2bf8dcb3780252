//! The C allocator's settings for a long-running gateway on glibc (decision record 19).
//!
//! glibc's malloc gives threads up to eight arenas per core and raises its mmap threshold as
//! large blocks are freed; in a gateway whose maps grow with the fleet and whose batches
//! allocate on many threads, memory freed on one thread's arena then stays resident, unusable by
//! the others: at 100 000 devices, 36 MB of the heap's 119 MB were free but held (measured with
//! `malloc_stats`, docs/performance.md). With **one arena per core** and a **fixed 256 KiB mmap
//! threshold** (large tables are mapped on their own and returned whole when freed) that fell to
//! 7 MB: 906 B per device instead of 1147 B.
//!
//! glibc reads these settings (`GLIBC_TUNABLES`) only when a process starts, and calling
//! `mallopt` needs `unsafe` (forbidden in this workspace); so `firegrid run` starts itself again
//! at once with them ([`reexec_with_tunables`]: `exec` keeps the process id, its arguments and
//! open files). An operator's own `glibc.malloc.arena_max` or `glibc.malloc.mmap_threshold`
//! wins; `FIREGRID_MALLOC=system` keeps glibc's defaults.

/// The fixed mmap threshold, bytes: blocks this large or larger are mapped on their own.
pub const MMAP_THRESHOLD_BYTES: usize = 256 * 1024;

/// The environment variable that turns the settings off (`system`).
pub const OPT_OUT: &str = "FIREGRID_MALLOC";

const ARENA_MAX: &str = "glibc.malloc.arena_max";
const MMAP_THRESHOLD: &str = "glibc.malloc.mmap_threshold";

/// The `GLIBC_TUNABLES` to run with: `current` (the environment's) with one arena per core
/// (`cores`) and the fixed mmap threshold added where it sets none of its own; `None` when
/// there is nothing to add (so a process already started with them does not start again).
pub fn tunables(current: Option<&str>, cores: usize) -> Option<String> {
    let current = current.unwrap_or("");
    let has = |key: &str| {
        current
            .split(':')
            .any(|t| t.split_once('=').is_some_and(|(k, _)| k.trim() == key))
    };
    let mut add = Vec::new();
    if !has(ARENA_MAX) {
        add.push(format!("{ARENA_MAX}={}", cores.max(1)));
    }
    if !has(MMAP_THRESHOLD) {
        add.push(format!("{MMAP_THRESHOLD}={MMAP_THRESHOLD_BYTES}"));
    }
    if add.is_empty() {
        return None;
    }
    Some(
        std::iter::once(current)
            .filter(|c| !c.is_empty())
            .chain(add.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Starts this program again with [`tunables`] in its environment (`exec`: the same process
/// id, arguments and open files), unless they are set already or [`OPT_OUT`] is `system`.
/// Returns only when it did not (then glibc's defaults apply; a failed `exec` is said on
/// stderr). Call it first thing, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn reexec_with_tunables() {
    use std::os::unix::process::CommandExt;

    if std::env::var(OPT_OUT).is_ok_and(|v| v == "system") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let current = std::env::var("GLIBC_TUNABLES").ok();
    let Some(wanted) = tunables(current.as_deref(), cores) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", wanted)
        .exec();
    eprintln!(
        "firegrid: running with glibc's malloc defaults (could not restart with ours: {err})"
    );
}

/// Elsewhere than glibc on Linux: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn reexec_with_tunables() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_one_arena_per_core_and_a_fixed_mmap_threshold() {
        assert_eq!(
            tunables(None, 2).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=262144")
        );
        assert_eq!(
            tunables(Some(""), 0).as_deref(),
            Some("glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=262144")
        );
    }

    #[test]
    fn keeps_the_operators_settings_and_adds_only_what_is_missing() {
        assert_eq!(
            tunables(
                Some("glibc.malloc.arena_max=8:glibc.malloc.tcache_count=0"),
                4
            )
            .as_deref(),
            Some(
                "glibc.malloc.arena_max=8:glibc.malloc.tcache_count=0:\
                 glibc.malloc.mmap_threshold=262144"
            )
        );
    }

    #[test]
    fn nothing_to_add_once_both_are_set_so_it_starts_again_only_once() {
        let once = tunables(None, 2).expect("something to add");
        assert_eq!(tunables(Some(&once), 2), None);
        assert_eq!(
            tunables(
                Some("glibc.malloc.mmap_threshold=1048576:glibc.malloc.arena_max=1"),
                16
            ),
            None
        );
    }
}
