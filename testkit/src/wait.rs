//! Waiting on an observable condition (a log line, a metric, a message), with a deadline and a
//! message naming what was awaited: never a sleep to synchronise.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the conditions are looked at.
pub const POLL: Duration = Duration::from_millis(10);

/// Polls `check` every [`POLL`] until it gives a value, and returns it.
///
/// # Panics
/// After `timeout`, with "timed out after … waiting for {what}".
pub async fn until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    until_async(what, timeout, || std::future::ready(check())).await
}

/// Polls the async `check` every [`POLL`] until it gives a value, and returns it.
///
/// # Panics
/// After `timeout`, with "timed out after … waiting for {what}".
pub async fn until_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Awaits `fut` for at most `timeout`.
///
/// # Panics
/// After `timeout`, with "timed out after … waiting for {what}".
pub async fn within<T>(what: &str, timeout: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_condition_that_holds_is_returned() {
        let mut n = 0;
        let got = until("the third look", Duration::from_secs(5), || {
            n += 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for something that never happens")]
    async fn a_condition_that_never_holds_fails_naming_it() {
        until(
            "something that never happens",
            Duration::from_millis(30),
            || None::<()>,
        )
        .await;
    }
}
