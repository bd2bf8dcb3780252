//! The webhook signature: HMAC-SHA256 over the request's timestamp and body, so that a receiver
//! can tell that an alert came from this gateway, unaltered, and recently.
//!
//! Every POST carries `X-Firegrid-Timestamp`: the Unix time of **this attempt** in
//! milliseconds (decimal). With a secret it also carries `X-Firegrid-Signature`:
//! `sha256=` and the hex HMAC-SHA256, under the secret, of the signature input
//!
//! ```text
//! {X-Firegrid-Timestamp}.{body}
//! ```
//!
//! (the timestamp's decimal digits, one `.`, the body bytes as sent). The receiver recomputes
//! it, compares in constant time, and refuses a timestamp further than its tolerance (5 min
//! suggested, [`DEFAULT_TOLERANCE_MS`]) from its own clock: a captured request replayed later
//! fails the check, and changing the timestamp breaks the signature. Within the tolerance, a
//! repeat is recognised by the body's `alert_id` (delivery is at least once anyway).
//! [`verify_request`] is that check, for receivers written in Rust and for the tests.

use crate::model::UnixMs;
use crate::notify::alert::{SIGNATURE_HEADER, sign, verify};

/// The header carrying the time of the attempt, Unix ms.
pub const TIMESTAMP_HEADER: &str = "X-Firegrid-Timestamp";

/// How far a receiver should let a timestamp be from its clock: 5 minutes.
pub const DEFAULT_TOLERANCE_MS: u64 = 300_000;

/// What is signed: the timestamp's decimal digits, `.`, the body.
pub fn signature_input(timestamp_ms: UnixMs, body: &[u8]) -> Vec<u8> {
    let mut input = format!("{timestamp_ms}.").into_bytes();
    input.extend_from_slice(body);
    input
}

/// The `X-Firegrid-Signature` value of a POST of `body` at `timestamp_ms`.
pub fn sign_request(secret: &[u8], timestamp_ms: UnixMs, body: &[u8]) -> String {
    sign(secret, &signature_input(timestamp_ms, body))
}

/// Why a receiver refuses a webhook request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// No `X-Firegrid-Timestamp`, or not a number.
    #[error("{TIMESTAMP_HEADER} is missing or not a number")]
    BadTimestamp,
    /// The timestamp is further from the receiver's clock than the tolerance.
    #[error("{TIMESTAMP_HEADER} is {0} ms away from now: too old (or too new), a replay?")]
    Stale(u64),
    /// The signature does not match.
    #[error("{SIGNATURE_HEADER} does not match")]
    BadSignature,
}

/// The receiver's check of a request: its `X-Firegrid-Timestamp` and `X-Firegrid-Signature`
/// header values and body, at the receiver's time `now_ms`.
///
/// # Errors
/// [`Rejected`].
pub fn verify_request(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now_ms: UnixMs,
    tolerance_ms: u64,
) -> Result<(), Rejected> {
    let t: UnixMs = timestamp.parse().map_err(|_| Rejected::BadTimestamp)?;
    if !verify(secret, &signature_input(t, body), signature) {
        return Err(Rejected::BadSignature);
    }
    let skew = now_ms.abs_diff(t);
    if skew > tolerance_ms {
        return Err(Rejected::Stale(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T: UnixMs = 1_764_403_260_004;

    #[test]
    fn the_input_is_timestamp_dot_body() {
        assert_eq!(signature_input(T, b"{}"), b"1764403260004.{}");
        // Independently: HMAC-SHA256("k", "1764403260004.{}").
        assert_eq!(
            sign_request(b"k", T, b"{}"),
            sign(b"k", b"1764403260004.{}")
        );
    }

    #[test]
    fn a_replay_after_the_tolerance_is_rejected() {
        let sig = sign_request(b"k", T, b"{}");
        let ts = T.to_string();
        let ok = |now| verify_request(b"k", &ts, b"{}", &sig, now, DEFAULT_TOLERANCE_MS);
        assert_eq!(ok(T), Ok(()));
        assert_eq!(ok(T + DEFAULT_TOLERANCE_MS), Ok(()));
        assert_eq!(ok(T - 1_000), Ok(())); // the receiver's clock is a little behind
        assert_eq!(
            ok(T + DEFAULT_TOLERANCE_MS + 1),
            Err(Rejected::Stale(DEFAULT_TOLERANCE_MS + 1))
        );
        // Moving the timestamp forward breaks the signature.
        let later = (T + 600_000).to_string();
        assert_eq!(
            verify_request(b"k", &later, b"{}", &sig, T + 600_000, DEFAULT_TOLERANCE_MS),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify_request(b"k", "soon", b"{}", &sig, T, DEFAULT_TOLERANCE_MS),
            Err(Rejected::BadTimestamp)
        );
    }

    proptest! {
        #[test]
        fn only_the_signed_pair_verifies(t: u64, body: Vec<u8>, other in any::<u64>(), flip: usize) {
            let sig = sign_request(b"secret", t, &body);
            prop_assert_eq!(verify_request(b"secret", &t.to_string(), &body, &sig, t, 0), Ok(()));
            if other != t {
                prop_assert!(verify_request(b"secret", &other.to_string(), &body, &sig, other, u64::MAX).is_err());
            }
            if !body.is_empty() {
                let mut b = body.clone();
                b[flip % body.len()] ^= 1;
                prop_assert_eq!(verify_request(b"secret", &t.to_string(), &b, &sig, t, 0), Err(Rejected::BadSignature));
            }
        }
    }
}
