//! DingTalk group robots with a signing secret ("加签"): such a robot refuses a request unless
//! its URL carries `timestamp` (ms, within an hour of the robot's clock) and `sign` =
//! base64(HMAC-SHA256(key = secret, data = "{timestamp}\n{secret}")), URL-encoded. Signed at
//! each attempt (a retry an hour later would be refused with the first attempt's timestamp),
//! with the worker's `webhook_secret`. Pure: the dispatcher calls [`signed_url`] with the time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::UnixMs;

/// `sign` for `timestamp_ms` under `secret`, before URL encoding.
pub fn sign(secret: &str, timestamp_ms: UnixMs) -> String {
    // Any key length is valid for HMAC.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The robot's URL with `timestamp` and `sign` appended to its query (form-URL-encoded: `+`,
/// `/` and `=` of the base64 escaped). A URL that already has them gets fresh ones.
pub fn signed_url(url: &reqwest::Url, secret: &str, timestamp_ms: UnixMs) -> reqwest::Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "timestamp" && k != "sign")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("timestamp", &timestamp_ms.to_string());
        q.append_pair("sign", &sign(secret, timestamp_ms));
    }
    out
}

/// What a robot checks (the receiver's side, used by the tests' local robot): the signature
/// of the URL's `timestamp` under `secret`, and the timestamp within `tolerance_ms` of `now`.
///
/// # Errors
/// Why it is refused.
pub fn verify(
    url: &reqwest::Url,
    secret: &str,
    now: UnixMs,
    tolerance_ms: u64,
) -> Result<(), &'static str> {
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let ts: UnixMs = get("timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp")?;
    if now.abs_diff(ts) > tolerance_ms {
        return Err("timestamp too far from now");
    }
    let given = get("sign").ok_or("no sign")?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given)
        .map_err(|_| "sign is not base64")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{ts}\n{secret}").as_bytes());
    mac.verify_slice(&given).map_err(|_| "sign does not match")
}

#[cfg(test)]
mod tests;
