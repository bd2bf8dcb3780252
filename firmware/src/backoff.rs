//! Reconnect backoff with full jitter.
//!
//! After the `n`-th failed attempt in a row (counting from 0) the next attempt waits a delay
//! drawn uniformly from `0..=min(cap, base × 2ⁿ)` ms — "full jitter", which spreads a district
//! of devices that lost the same broker over the whole window instead of letting them reconnect
//! in lockstep. [`Backoff::reset`] starts again from `base` after a session that worked.
//!
//! The jitter comes from a tiny xorshift64* generator seeded by the caller, usually with
//! [`seed_from`] of the device id (mixed with anything per-boot the board has, such as an ADC's
//! noise bits), so that two devices never share a sequence. Pure and deterministic for a seed:
//!
//! ```
//! use firegrid_firmware::backoff::{Backoff, BackoffConfig, seed_from};
//!
//! let config = BackoffConfig { base_ms: 1_000, cap_ms: 300_000 };
//! let mut b = Backoff::new(config, seed_from(b"hz-0042"));
//! let first = b.next_delay_ms();
//! assert!(first <= 1_000);
//! let second = b.next_delay_ms();
//! assert!(second <= 2_000);
//! b.reset();
//! assert!(b.next_delay_ms() <= 1_000);
//! ```

/// The backoff window: it starts at `base_ms` and doubles per failed attempt up to `cap_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The window after the first failure, ms.
    pub base_ms: u64,
    /// The largest window, ms.
    pub cap_ms: u64,
}

impl BackoffConfig {
    /// 1 s doubling up to 5 min: a device retries quickly after a blip and at most every
    /// 5 min (2.5 min on average) during a long outage.
    pub const DEFAULT: Self = Self {
        base_ms: 1_000,
        cap_ms: 300_000,
    };
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Reconnect delays with full jitter. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    /// Failed attempts since the last reset.
    failures: u32,
    rng: XorShift64Star,
}

impl Backoff {
    /// A backoff with no failures yet, its jitter seeded with `seed` (any value, 0 too).
    pub const fn new(config: BackoffConfig, seed: u64) -> Self {
        Self {
            config,
            failures: 0,
            rng: XorShift64Star::new(seed),
        }
    }

    /// The current window, ms: `min(cap, base × 2^failures)`.
    pub fn window_ms(&self) -> u64 {
        let doubled = 1u64
            .checked_shl(self.failures)
            .and_then(|factor| self.config.base_ms.checked_mul(factor))
            .unwrap_or(u64::MAX);
        doubled.min(self.config.cap_ms)
    }

    /// The delay before the next attempt, ms, uniform in `0..=window`; counts a failure, so the
    /// window doubles for the following one.
    pub fn next_delay_ms(&mut self) -> u64 {
        let window = self.window_ms();
        self.failures = self.failures.saturating_add(1);
        match window.checked_add(1) {
            Some(span) => self.rng.next_u64().checked_rem(span).unwrap_or(0),
            // A window of u64::MAX: every value is in range.
            None => self.rng.next_u64(),
        }
    }

    /// A session worked: the next failure starts again at the base window.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts since the last reset.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// The configuration.
    pub const fn config(&self) -> BackoffConfig {
        self.config
    }
}

/// A seed from bytes (a device id, a serial number): 64-bit FNV-1a.
pub fn seed_from(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// xorshift64* (Vigna 2016): 8 bytes of state, good enough for jitter, not for secrets.
#[derive(Debug, Clone)]
struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    const fn new(seed: u64) -> Self {
        // The state must not be 0 (it would stay 0); mix the seed so that nearby seeds (ids
        // that differ in one character) do not start nearby.
        let mixed = splitmix64(seed);
        Self {
            state: if mixed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                mixed
            },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One round of splitmix64, to spread a seed over all 64 bits.
const fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    const CFG: BackoffConfig = BackoffConfig {
        base_ms: 1_000,
        cap_ms: 300_000,
    };

    #[test]
    fn windows_double_from_base_to_cap() {
        let mut b = Backoff::new(CFG, 1);
        let mut windows = Vec::new();
        for _ in 0..12 {
            windows.push(b.window_ms());
            b.next_delay_ms();
        }
        assert_eq!(
            windows,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000, 300_000
            ]
        );
        assert_eq!(b.failures(), 12);
    }

    #[test]
    fn delays_stay_in_their_window_and_spread_over_it() {
        let mut b = Backoff::new(CFG, 42);
        for _ in 0..10 {
            b.next_delay_ms();
        }
        // At the cap: 1000 draws cover the window, none outside it.
        let draws: Vec<u64> = (0..1000).map(|_| b.next_delay_ms()).collect();
        assert!(draws.iter().all(|&d| d <= 300_000));
        let low = draws.iter().filter(|&&d| d < 100_000).count();
        let high = draws.iter().filter(|&&d| d > 200_000).count();
        assert!(low > 250 && high > 250, "low {low}, high {high}");
        let mean = draws.iter().sum::<u64>() / 1000;
        assert!((130_000..170_000).contains(&mean), "mean {mean}");
    }

    #[test]
    fn the_sequence_is_fixed_by_the_seed() {
        let seq = |seed| {
            let mut b = Backoff::new(CFG, seed);
            (0..8).map(|_| b.next_delay_ms()).collect::<Vec<_>>()
        };
        assert_eq!(seq(7), seq(7));
        assert_ne!(seq(7), seq(8));
        // Explicit values for one seed: a change of the generator shows here.
        let got = seq(seed_from(b"hz-0042"));
        for (i, d) in got.iter().enumerate() {
            assert!(*d <= 1_000u64 << i, "draw {i}: {d}");
        }
        assert_eq!(got, EXPECTED_HZ_0042);
    }

    /// The first eight delays for the device id `hz-0042` (see the test above).
    const EXPECTED_HZ_0042: [u64; 8] = [45, 307, 3_581, 6_370, 9_846, 21_230, 1_352, 104_109];

    #[test]
    fn reset_starts_again_at_base() {
        let mut b = Backoff::new(CFG, 3);
        for _ in 0..20 {
            b.next_delay_ms();
        }
        assert_eq!(b.window_ms(), 300_000);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.window_ms(), 1_000);
        assert!(b.next_delay_ms() <= 1_000);
    }

    #[test]
    fn seed_zero_and_extreme_configs_work() {
        let mut b = Backoff::new(
            BackoffConfig {
                base_ms: 0,
                cap_ms: 0,
            },
            0,
        );
        assert_eq!(b.next_delay_ms(), 0);
        let mut b = Backoff::new(
            BackoffConfig {
                base_ms: u64::MAX,
                cap_ms: u64::MAX,
            },
            0,
        );
        for _ in 0..100 {
            b.next_delay_ms(); // no overflow, no panic
        }
        assert_eq!(b.window_ms(), u64::MAX);
        // Draws of a zero seed still vary.
        let mut b = Backoff::new(CFG, 0);
        for _ in 0..10 {
            b.next_delay_ms();
        }
        let draws: Vec<u64> = (0..10).map(|_| b.next_delay_ms()).collect();
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn ids_give_different_seeds() {
        assert_ne!(seed_from(b"hz-0001"), seed_from(b"hz-0002"));
        assert_eq!(seed_from(b""), 0xcbf2_9ce4_8422_2325);
    }
}
