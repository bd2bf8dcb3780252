//! Webhook delivery: POST the alert JSON, signed, under a timeout.
//!
//! A 2xx answer is delivery. Anything else — a timeout, a refused connection, a 4xx or 5xx —
//! is a failure the notifier retries with exponential backoff ([`retry_delay_ms`]); the outbox
//! keeps the alert until it is delivered, across restarts.

use std::collections::HashMap;
use std::time::Duration;

use crate::notify::alert::{SIGNATURE_HEADER, sign};

/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The webhooks and their signing secrets, by URL.
#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    secrets: HashMap<String, Option<Vec<u8>>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Webhooks")
            .field("urls", &self.urls())
            .finish()
    }
}

/// Why a POST did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not configured (the outbox names a webhook removed from the config).
    #[error("webhook {0} is not configured any more")]
    Unknown(String),
    /// No answer (connect, TLS, timeout).
    #[error("webhook request failed: {0}")]
    Request(#[from] reqwest::Error),
    /// An answer other than 2xx.
    #[error("webhook answered {0}")]
    Status(reqwest::StatusCode),
}

impl Webhooks {
    /// Webhooks from `(url, secret)` pairs.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS set-up).
    pub fn new(
        hooks: impl IntoIterator<Item = (String, Option<Vec<u8>>)>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            secrets: hooks.into_iter().collect(),
        })
    }

    /// The configured URLs, sorted.
    pub fn urls(&self) -> Vec<String> {
        let mut v: Vec<_> = self.secrets.keys().cloned().collect();
        v.sort();
        v
    }

    /// POSTs `body` (the alert JSON) to `url`, signed if it has a secret.
    ///
    /// # Errors
    /// [`WebhookError`] if it was not delivered.
    pub async fn post(&self, url: &str, body: Vec<u8>) -> Result<(), WebhookError> {
        let secret = self
            .secrets
            .get(url)
            .ok_or_else(|| WebhookError::Unknown(url.to_owned()))?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = secret {
            req = req.header(SIGNATURE_HEADER, sign(secret, &body));
        }
        let status = req.body(body).send().await?.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(WebhookError::Status(status))
        }
    }
}

/// How long to wait before attempt `attempts + 1`: 1 s doubling to at most 5 min.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    1_000u64.saturating_mul(1 << attempts.min(9)).min(300_000)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::*;
    use crate::notify::alert::verify;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let d: Vec<_> = (0..12).map(retry_delay_ms).collect();
        assert_eq!(&d[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(d[11], 300_000);
    }

    #[tokio::test]
    async fn posts_signed_json_and_reports_failures() {
        // A receiver that refuses the first request and checks signatures.
        // (signature valid, body) of every request.
        type Seen = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let s = s.clone();
                async move {
                    let sig = headers
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let mut seen = s.lock().unwrap();
                    seen.push((verify(b"secret", &body, sig), body.to_vec()));
                    if seen.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let hooks = Webhooks::new([(url.clone(), Some(b"secret".to_vec()))]).unwrap();
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

        assert!(matches!(
            hooks.post("http://127.0.0.1:1/x", vec![]).await,
            Err(WebhookError::Unknown(_))
        ));
        // A port nobody listens on any more: the connection is refused.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}/x", gone.local_addr().unwrap());
        drop(gone);
        let closed = Webhooks::new([(dead.clone(), None)]).unwrap();
        assert!(matches!(
            closed.post(&dead, vec![]).await,
            Err(WebhookError::Request(_))
        ));
    }
}
