//! Webhook delivery: POST the alert JSON, timestamped and signed, under a timeout, to public
//! addresses only, never following a redirect.
//!
//! A 2xx answer is delivery. Anything else — a timeout, a refused connection, a refused
//! address, a 3xx (redirects are not followed: the configured URL is the only place an alert
//! goes), a 4xx or 5xx — is a failure the notifier retries with exponential backoff
//! ([`retry_delay_ms`]); the outbox keeps the alert until it is delivered, across restarts.
//! Retries stop once a person has acknowledged the episode's ticket ([`after_failure`],
//! [`retry_wanted`]): the alert did its job elsewhere.
//!
//! - **Signature** ([`signature`]): header `X-Firegrid-Timestamp` = Unix ms of the attempt;
//!   with a secret, `X-Firegrid-Signature` = `sha256=` + hex HMAC-SHA256 of
//!   `{timestamp}.{body}`. Receivers refuse a timestamp more than 5 min from their clock, so a
//!   captured request cannot be replayed later unnoticed.
//! - **Addresses** ([`address`]): loopback, private, link-local, shared, multicast and
//!   reserved addresses (IPv4 and IPv6, IPv4-mapped included) are refused at connect time —
//!   IP literals before the request, names by a resolver that drops them — unless the webhook
//!   has `allow_private = true`. The system proxy is not used (it would bypass the check).
//! - **Logs** name a webhook by [`redact_url`] only (`scheme://host[:port]/…`): its path and
//!   query often carry the receiver's token.

pub mod address;
pub mod signature;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{TicketState, UnixMs};
use crate::notify::alert::SIGNATURE_HEADER;
use address::{AddressPolicy, GuardedResolver, NoAllowedAddress, Refused, url_allowed};
use signature::{TIMESTAMP_HEADER, sign_request};

/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One configured webhook.
#[derive(Clone)]
pub struct Webhook {
    /// Where alerts are POSTed.
    pub url: String,
    /// The signing secret (`None`: unsigned).
    pub secret: Option<Vec<u8>>,
    /// Which addresses it may reach.
    pub policy: AddressPolicy,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, nor the URL's path.
        f.debug_struct("Webhook")
            .field("url", &redact_url(&self.url))
            .field("signed", &self.secret.is_some())
            .field("policy", &self.policy)
            .finish()
    }
}

struct Hook {
    client: reqwest::Client,
    secret: Option<Vec<u8>>,
    policy: AddressPolicy,
}

/// The webhooks, by URL, each with its own HTTP client (its own address policy).
#[derive(Clone)]
pub struct Webhooks {
    hooks: std::sync::Arc<HashMap<String, Hook>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<_> = self.urls().iter().map(|u| redact_url(u)).collect();
        f.debug_struct("Webhooks").field("urls", &urls).finish()
    }
}

/// Why a POST did not deliver. Its text never holds a URL's path or query.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not configured (the outbox names a webhook removed from the config).
    #[error("webhook {0} is not configured any more")]
    Unknown(String),
    /// The URL does not parse.
    #[error("webhook URL {0} is not a valid URL")]
    InvalidUrl(String),
    /// The address is refused ([`address::address_allowed`]).
    #[error("webhook {url} refused: {why}")]
    Refused {
        /// The redacted URL.
        url: String,
        /// Which address, and why.
        why: NoAllowedAddress,
    },
    /// No answer (connect, TLS, timeout).
    #[error("webhook request failed: {}", error_chain(.0))]
    Request(reqwest::Error),
    /// A redirect, which is not followed.
    #[error("webhook answered {0}, a redirect (not followed)")]
    Redirected(reqwest::StatusCode),
    /// An answer other than 2xx or 3xx.
    #[error("webhook answered {0}")]
    Status(reqwest::StatusCode),
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

/// A URL as logs may show it: `scheme://host[:port]/…` — no user, password, path, query or
/// fragment (a webhook URL often carries the receiver's secret token there).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

impl Webhooks {
    /// The HTTP client of the webhooks: timeout, no redirects, no proxy, the guarded resolver.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS set-up).
    pub fn new(hooks: impl IntoIterator<Item = Webhook>) -> Result<Self, reqwest::Error> {
        let hooks = hooks
            .into_iter()
            .map(|w| {
                let client = reqwest::Client::builder()
                    .timeout(TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .dns_resolver(GuardedResolver::new(w.policy))
                    .build()?;
                Ok((
                    w.url,
                    Hook {
                        client,
                        secret: w.secret,
                        policy: w.policy,
                    },
                ))
            })
            .collect::<Result<_, reqwest::Error>>()?;
        Ok(Self {
            hooks: std::sync::Arc::new(hooks),
        })
    }

    /// The configured URLs, sorted.
    pub fn urls(&self) -> Vec<String> {
        let mut v: Vec<_> = self.hooks.keys().cloned().collect();
        v.sort();
        v
    }

    /// POSTs `body` (the alert JSON) to `url`, timestamped now, signed if it has a secret.
    ///
    /// # Errors
    /// [`WebhookError`] if it was not delivered.
    pub async fn post(&self, url: &str, body: Vec<u8>) -> Result<(), WebhookError> {
        let hook = self
            .hooks
            .get(url)
            .ok_or_else(|| WebhookError::Unknown(redact_url(url)))?;
        let parsed =
            reqwest::Url::parse(url).map_err(|_| WebhookError::InvalidUrl(redact_url(url)))?;
        // An IP literal is connected to without resolving: check it here.
        url_allowed(&parsed, hook.policy).map_err(|r| refused(url, Some(r)))?;
        let timestamp_ms = wall_clock_ms();
        let mut req = hook
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp_ms.to_string());
        if let Some(secret) = &hook.secret {
            req = req.header(SIGNATURE_HEADER, sign_request(secret, timestamp_ms, &body));
        }
        let status = req
            .body(body)
            .send()
            .await
            .map_err(|e| request_error(url, e))?
            .status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(WebhookError::Redirected(status))
        } else {
            Err(WebhookError::Status(status))
        }
    }
}

fn refused(url: &str, r: Option<Refused>) -> WebhookError {
    WebhookError::Refused {
        url: redact_url(url),
        why: NoAllowedAddress(r),
    }
}

/// A client error without its URL; the guarded resolver's refusal as [`WebhookError::Refused`].
fn request_error(url: &str, e: reqwest::Error) -> WebhookError {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(n) = s.downcast_ref::<NoAllowedAddress>() {
            return refused(url, n.0);
        }
        source = s.source();
    }
    WebhookError::Request(e.without_url())
}

fn wall_clock_ms() -> UnixMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long to wait before attempt `attempts + 1`: 1 s doubling to at most 5 min.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    1_000u64.saturating_mul(1 << attempts.min(9)).min(300_000)
}

/// What becomes of a webhook delivery after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time.
    RetryAt(UnixMs),
    /// Do not try again: the episode's ticket reached this state (acknowledged or later).
    Stop(TicketState),
}

/// After failed attempt number `attempts + 1` at `now`, for an episode whose ticket is in
/// `ticket` (`None`: unknown, e.g. not readable): retried with backoff until a person
/// acknowledges the ticket.
pub fn after_failure(attempts: u32, ticket: Option<TicketState>, now: UnixMs) -> AfterFailure {
    match ticket {
        Some(t) if t.is_acknowledged() => AfterFailure::Stop(t),
        _ => AfterFailure::RetryAt(now.saturating_add(retry_delay_ms(attempts))),
    }
}

/// Whether a webhook delivery due now is still to be attempted: its first attempt always is; a
/// retry (`attempts > 0`) only while the episode's ticket is not acknowledged.
pub fn retry_wanted(attempts: u32, ticket: Option<TicketState>) -> bool {
    attempts == 0 || !ticket.is_some_and(TicketState::is_acknowledged)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::signature::{DEFAULT_TOLERANCE_MS, verify_request};
    use super::*;

    fn hook(url: &str, secret: Option<&[u8]>, policy: AddressPolicy) -> Webhooks {
        Webhooks::new([Webhook {
            url: url.to_owned(),
            secret: secret.map(<[u8]>::to_vec),
            policy,
        }])
        .unwrap()
    }

    /// A receiver on a free loopback port; returns its base URL and the number of requests.
    async fn receiver(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let d: Vec<_> = (0..12).map(retry_delay_ms).collect();
        assert_eq!(&d[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(d[11], 300_000);
    }

    #[test]
    fn retries_stop_once_the_ticket_is_acknowledged() {
        const NOW: UnixMs = 1_764_403_260_000;
        assert_eq!(
            after_failure(0, Some(TicketState::Raised), NOW),
            AfterFailure::RetryAt(NOW + 1_000)
        );
        assert_eq!(
            after_failure(3, None, NOW),
            AfterFailure::RetryAt(NOW + 8_000)
        );
        for t in TicketState::ALL {
            let stops = t >= TicketState::Acknowledged;
            assert_eq!(
                after_failure(5, Some(t), NOW) == AfterFailure::Stop(t),
                stops,
                "{t}"
            );
            // The first attempt is always made; a retry only before acknowledgement.
            assert!(retry_wanted(0, Some(t)));
            assert_eq!(retry_wanted(1, Some(t)), !stops, "{t}");
        }
        assert!(retry_wanted(7, None));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://sms.example/hooks/T0KEN?key=s3cret#x"),
            "https://sms.example/…"
        );
        assert_eq!(
            redact_url("http://user:pw@10.0.0.5:8080/t0ken"),
            "http://10.0.0.5:8080/…"
        );
        assert_eq!(redact_url("http://[::1]:9/a"), "http://[::1]:9/…");
        assert_eq!(redact_url("not a url /s3cret"), "(invalid URL)");
        let hooks = hook(
            "https://sms.example/T0KEN",
            Some(b"k"),
            AddressPolicy::PublicOnly,
        );
        let debug = format!("{hooks:?}");
        assert!(
            debug.contains("sms.example") && !debug.contains("T0KEN"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn errors_never_show_the_path_or_query() {
        // A port nobody listens on any more: the connection is refused.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}/T0KEN?key=s3cret", gone.local_addr().unwrap());
        drop(gone);
        let hooks = hook(&dead, None, AddressPolicy::AllowPrivate);
        let err = hooks.post(&dead, vec![]).await.unwrap_err();
        assert!(matches!(err, WebhookError::Request(_)), "{err}");
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("T0KEN") && !text.contains("s3cret"),
            "{text}"
        );
        let err = hooks
            .post("http://127.0.0.1:1/OTHER-T0KEN", vec![])
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::Unknown(_)));
        assert!(!err.to_string().contains("T0KEN"), "{err}");
    }

    #[tokio::test]
    async fn posts_timestamped_signed_json_and_reports_failures() {
        // A receiver that refuses the first request and checks signatures.
        // (signature valid and recent, body) of every request.
        type Seen = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    let header = |name| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let ok = verify_request(
                        b"secret",
                        &header(TIMESTAMP_HEADER),
                        &body,
                        &header(SIGNATURE_HEADER),
                        wall_clock_ms(),
                        DEFAULT_TOLERANCE_MS,
                    )
                    .is_ok();
                    let mut seen = s.lock().unwrap();
                    seen.push((ok, body.to_vec()));
                    if seen.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let url = format!("{}/hook", receiver(app).await);
        // The receiver is on loopback: allowed explicitly.
        let hooks = hook(&url, Some(b"secret"), AddressPolicy::AllowPrivate);
        let err = hooks
            .post(&url, br#"{"episode":1}"#.to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::Status(s) if s == StatusCode::SERVICE_UNAVAILABLE));
        hooks
            .post(&url, br#"{"episode":1}"#.to_vec())
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert!(
            seen.iter()
                .all(|(signed_ok, body)| *signed_ok && body == br#"{"episode":1}"#)
        );
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::NO_CONTENT }
            }),
        );
        let base = receiver(app).await;
        let literal = format!("{base}/hook");
        let port = base.rsplit(':').next().unwrap();
        let named = format!("http://localhost:{port}/hook");
        let mapped = format!("http://[::ffff:127.0.0.1]:{port}/hook");
        for url in [&literal, &named, &mapped] {
            let err = hook(url, None, AddressPolicy::PublicOnly)
                .post(url, b"{}".to_vec())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, WebhookError::Refused { why, .. }
                    if why.0.is_some_and(|r| r.ip.to_canonical().is_loopback())),
                "{url}: {err}"
            );
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "a refused webhook reached the receiver"
        );
        for url in [&literal, &named] {
            hook(url, None, AddressPolicy::AllowPrivate)
                .post(url, b"{}".to_vec())
                .await
                .unwrap();
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let followed = Arc::new(AtomicUsize::new(0));
        let f = followed.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                post(|| async {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(axum::http::header::LOCATION, "/elsewhere")],
                    )
                }),
            )
            .route(
                "/elsewhere",
                post(move || {
                    f.fetch_add(1, Ordering::SeqCst);
                    async { StatusCode::NO_CONTENT }
                }),
            );
        let url = format!("{}/hook", receiver(app).await);
        let err = hook(&url, None, AddressPolicy::AllowPrivate)
            .post(&url, b"{}".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, WebhookError::Redirected(s) if s == StatusCode::TEMPORARY_REDIRECT),
            "{err}"
        );
        assert_eq!(followed.load(Ordering::SeqCst), 0);
    }
}
