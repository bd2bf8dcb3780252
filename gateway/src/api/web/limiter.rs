//! Login rate limit: refused logins counted per client address in a fixed window; past the
//! limit the address is refused (429) until its window ends. A pure core with explicit time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::model::UnixMs;

/// Refused logins an address may make per window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// The window, ms.
pub(crate) const WINDOW_MS: UnixMs = 5 * 60 * 1000;
/// Addresses tracked at most (the oldest windows are dropped first when full).
const MAX_TRACKED: usize = 10_000;

/// Refused logins per address.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    /// Address → (window start, refusals in it).
    seen: Mutex<HashMap<IpAddr, (UnixMs, u32)>>,
}

impl LoginLimiter {
    /// `Err(ms until it may try again)` when `ip` used up its refusals at `now`.
    pub(crate) fn check(&self, ip: IpAddr, now: UnixMs) -> Result<(), UnixMs> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get(&ip) {
            Some((start, n)) if *n >= MAX_FAILURES && now < start + WINDOW_MS => {
                Err(start + WINDOW_MS - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a refused login of `ip` at `now`.
    pub(crate) fn refused(&self, ip: IpAddr, now: UnixMs) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now < *start + WINDOW_MS);
            if seen.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now >= entry.0 + WINDOW_MS {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `ip`'s refusals (it logged in).
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let l = LoginLimiter::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.check(a, 1000 + UnixMs::from(i)), Ok(()));
            l.refused(a, 1000 + UnixMs::from(i));
        }
        assert_eq!(l.check(a, 2000), Err(1000 + WINDOW_MS - 2000));
        assert_eq!(l.check(b, 2000), Ok(()), "another address is not held up");
        assert_eq!(l.check(a, 1000 + WINDOW_MS), Ok(()));
        l.refused(a, 1000 + WINDOW_MS);
        assert_eq!(
            l.check(a, 1001 + WINDOW_MS),
            Ok(()),
            "a new window starts at one"
        );
    }

    #[test]
    fn a_login_clears_the_count() {
        let l = LoginLimiter::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..MAX_FAILURES {
            l.refused(a, 0);
        }
        assert!(l.check(a, 1).is_err());
        l.succeeded(a);
        assert_eq!(l.check(a, 1), Ok(()));
    }
}
