//! Percentiles of measured latencies, for what tests and benchmarks print.

use std::fmt::Write as _;
use std::time::Duration;

/// The `q`-quantile (0.0 … 1.0) of `sorted` samples, nearest rank; zero if there are none.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // The cast cannot lose anything that matters: an index below the length, rounded.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

/// "n=… min … ms, median … ms, p90 … ms, p99 … ms, max … ms" of `samples` (sorted here).
pub fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let ms = |q: f64| percentile(samples, q).as_secs_f64() * 1000.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "n={} min {:.2} ms, median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        ms(0.0),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_ranks_of_the_sorted_samples() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let text = summary(&mut v);
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&v, 0.9), Duration::from_millis(90));
        assert_eq!(percentile(&v, 1.0), Duration::from_millis(100));
        assert!(
            text.starts_with("n=100 min 1.00 ms, median 51.00 ms, p90 90.00 ms"),
            "{text}"
        );
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
