//! What to do after a write: the pure decisions of the writer — how a response is classified,
//! how long to wait before the next attempt. No clock and no randomness inside: the caller
//! passes `now` and the jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first retry's nominal delay; each further attempt doubles it, up to the maximum.
pub const BASE_DELAY: Duration = Duration::from_millis(200);

/// The longest a server's `Retry-After` is honoured (a larger value is capped to this).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(600);

/// What one POST's outcome means for its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (2xx): commit the batch.
    Written,
    /// Try the same batch again after a delay: the server is busy or unreachable, or refuses
    /// the credentials or the bucket (an operator can fix that without losing data).
    Retry {
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// Why, for the status endpoint and the log.
        reason: String,
        /// The request went out and no answer came (a timeout, the connection lost
        /// mid-request): the server may hold the batch already, and sending it again makes a
        /// duplicate unless the server deduplicates (docs/tsdb.md, "Exactly once, precisely").
        unconfirmed: bool,
    },
    /// The server refuses the data itself (400, 422): dead-letter it, go on with the rest.
    Reject {
        /// The HTTP status.
        status: u16,
        /// The server's reason (its JSON `message`, or the body's start).
        reason: String,
    },
    /// Too large (413): send it in smaller batches.
    TooLarge,
}

/// Classifies a response by its status, `Retry-After` header and body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str, now: SystemTime) -> Outcome {
    match status {
        200..=299 => Outcome::Written,
        413 => Outcome::TooLarge,
        400 | 422 => Outcome::Reject {
            status,
            reason: reason_of(body),
        },
        _ => Outcome::Retry {
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason: format!("HTTP {status}: {}", reason_of(body)),
            unconfirmed: false,
        },
    }
}

/// The delay before attempt `attempt + 1` (`attempt` ≥ 1 failed so far): the server's
/// `Retry-After` if it sent one (capped at [`RETRY_AFTER_CAP`]); else exponential backoff
/// from [`BASE_DELAY`] capped at `max`, with "equal jitter": half the nominal delay fixed, the
/// other half scaled by `jitter` ∈ [0, 1] (so that many gateways coming back together spread
/// out, yet none retries at once).
pub fn next_delay(
    attempt: u32,
    retry_after: Option<Duration>,
    max: Duration,
    jitter: f64,
) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(RETRY_AFTER_CAP);
    }
    let shift = attempt.saturating_sub(1).min(20);
    let nominal = BASE_DELAY.saturating_mul(1 << shift).min(max);
    let half = nominal / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A `Retry-After` value: delay-seconds (`120`) or an IMF-fixdate
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 9110 §10.2.3), as the time to wait from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(s) = value.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_imf_fixdate(s: &str) -> Option<SystemTime> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(str::parse::<u64>);
    let (h, m, sec) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The server's reason: the `message` of an InfluxDB JSON error body, else the body's first
/// 300 characters.
pub fn reason_of(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string));
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let ms = |attempt, jitter| next_delay(attempt, None, MAX, jitter).as_millis();
        assert_eq!(ms(1, 0.0), 100);
        assert_eq!(ms(1, 1.0), 200);
        assert_eq!(ms(2, 0.5), 300);
        assert_eq!(ms(3, 1.0), 800);
        assert_eq!(ms(20, 1.0), 30_000);
        assert_eq!(ms(20, 0.0), 15_000);
        assert_eq!(ms(u32::MAX, 2.0), 30_000);
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let d = next_delay(9, Some(Duration::from_secs(2)), MAX, 1.0);
        assert_eq!(d, Duration::from_secs(2));
        let d = next_delay(1, Some(Duration::from_secs(86_400)), MAX, 0.0);
        assert_eq!(d, RETRY_AFTER_CAP);
    }

    #[test]
    fn retry_after_as_seconds_or_a_date() {
        // 2015-10-21T07:28:00Z = 1445412480.
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480 - 90);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        // A date in the past: retry now.
        let later = now + Duration::from_secs(1000);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Wed, 32 Oct 2015 07:28:00 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn responses_are_classified() {
        let now = UNIX_EPOCH;
        assert_eq!(classify(204, None, "", now), Outcome::Written);
        assert_eq!(
            classify(
                400,
                None,
                r#"{"code":"invalid","message":"partial write: field type conflict"}"#,
                now
            ),
            Outcome::Reject {
                status: 400,
                reason: "partial write: field type conflict".into()
            }
        );
        assert_eq!(
            classify(429, Some("3"), "slow down", now),
            Outcome::Retry {
                retry_after: Some(Duration::from_secs(3)),
                reason: "HTTP 429: slow down".into(),
                unconfirmed: false,
            }
        );
        assert!(matches!(
            classify(401, None, r#"{"message":"unauthorized access"}"#, now),
            Outcome::Retry { retry_after: None, reason, .. } if reason == "HTTP 401: unauthorized access"
        ));
        assert!(matches!(
            classify(503, Some("junk"), "", now),
            Outcome::Retry {
                retry_after: None,
                ..
            }
        ));
        assert_eq!(classify(413, None, "", now), Outcome::TooLarge);
    }
}
