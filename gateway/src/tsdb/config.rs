//! `[tsdb]`: where readings are written, how they are batched and spooled.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::spool::{Fsync, SpoolOptions};

/// `[tsdb]` of the configuration. Disabled unless `enabled = true` and `url` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// Whether readings are written to the time-series database at all.
    pub enabled: bool,
    /// The server's base URL (`http://host:8086`); `/api/v2/write` is appended.
    pub url: String,
    /// The InfluxDB organisation.
    pub org: String,
    /// The InfluxDB bucket.
    pub bucket: String,
    /// Environment variable holding the API token (never the token itself).
    pub token_env: String,
    /// Or a file holding the API token (trailing whitespace ignored).
    pub token_file: PathBuf,
    /// Readings per POST at most.
    pub batch_size: usize,
    /// A smaller batch is sent once its oldest reading waited this long, ms.
    pub flush_interval_ms: u64,
    /// Timeout of each HTTP request, ms.
    pub timeout_ms: u64,
    /// Longest backoff between retries, ms (a server's `Retry-After` is honoured beyond it).
    pub retry_max_ms: u64,
    /// Whether request bodies are gzip-compressed.
    pub gzip: bool,
    /// The most bytes the disk spool may take; past it the oldest readings are dropped, counted.
    pub spool_max_bytes: u64,
    /// When spooled readings are forced to disk.
    pub fsync: Fsync,
    /// With `fsync = "interval"`: how often, ms.
    pub fsync_interval_ms: u64,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: String::new(),
            org: String::new(),
            bucket: "firegrid".into(),
            token_env: String::new(),
            token_file: PathBuf::new(),
            batch_size: 5000,
            flush_interval_ms: 1000,
            timeout_ms: 10_000,
            retry_max_ms: 30_000,
            gzip: true,
            spool_max_bytes: 1 << 30,
            fsync: Fsync::Interval,
            fsync_interval_ms: 1000,
        }
    }
}

impl TsdbConfig {
    /// Whether the writer runs: enabled with a URL.
    pub fn is_active(&self) -> bool {
        self.enabled && !self.url.is_empty()
    }

    /// What is wrong with the values, naming the key.
    ///
    /// # Errors
    /// The first problem found, as a sentence naming the key.
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "[tsdb] url {:?} must start with http:// or https:// (e.g. \"http://127.0.0.1:8086\")",
                self.url
            ));
        }
        if self.bucket.is_empty() {
            return Err("[tsdb] bucket must not be empty".into());
        }
        if !self.token_env.is_empty() && !self.token_file.as_os_str().is_empty() {
            return Err("[tsdb] token_env and token_file: set one of them, not both".into());
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err("[tsdb] batch_size must be 1–100000 readings".into());
        }
        if self.timeout_ms == 0 {
            return Err("[tsdb] timeout_ms must be at least 1".into());
        }
        if self.spool_max_bytes < 64 * 1024 {
            return Err("[tsdb] spool_max_bytes must be at least 65536".into());
        }
        if self.fsync == Fsync::Interval && self.fsync_interval_ms == 0 {
            return Err(
                "[tsdb] fsync_interval_ms must be at least 1 with fsync = \"interval\"".into(),
            );
        }
        Ok(())
    }

    /// The token, from `token_env` or `token_file`; `None` if neither is set.
    ///
    /// # Errors
    /// The variable is unset or the file unreadable: says which (never the value).
    pub fn token(&self) -> Result<Option<Token>, String> {
        if !self.token_env.is_empty() {
            return std::env::var(&self.token_env)
                .map(|t| Some(Token(t)))
                .map_err(|_| {
                    format!(
                        "[tsdb] token_env: the environment variable {} is not set",
                        self.token_env
                    )
                });
        }
        if !self.token_file.as_os_str().is_empty() {
            return std::fs::read_to_string(&self.token_file)
                .map(|t| Some(Token(t.trim_end().to_string())))
                .map_err(|e| {
                    format!(
                        "[tsdb] token_file: cannot read {}: {e}",
                        self.token_file.display()
                    )
                });
        }
        Ok(None)
    }

    /// The spool's options.
    pub fn spool_options(&self) -> SpoolOptions {
        SpoolOptions::with_bound(self.spool_max_bytes, self.fsync)
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// An API token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_never_shown() {
        let t = Token("s3cret-token".into());
        assert_eq!(format!("{t:?} {t}"), "Token(<redacted>) <redacted>");
    }

    #[test]
    fn the_token_comes_from_a_file_and_problems_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "abc\n").unwrap();
        let c = TsdbConfig {
            enabled: true,
            url: "http://127.0.0.1:8086".into(),
            token_file: file,
            ..TsdbConfig::default()
        };
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.token().unwrap(), Some(Token("abc".into())));
        let missing = TsdbConfig {
            token_file: dir.path().join("nope"),
            ..c.clone()
        };
        assert!(
            missing
                .token()
                .unwrap_err()
                .starts_with("[tsdb] token_file: cannot read")
        );
        let unset = TsdbConfig {
            token_env: "FIREGRID_TEST_SURELY_UNSET_VARIABLE".into(),
            token_file: PathBuf::new(),
            ..c.clone()
        };
        assert_eq!(
            unset.token().unwrap_err(),
            "[tsdb] token_env: the environment variable FIREGRID_TEST_SURELY_UNSET_VARIABLE is not set"
        );
        let bad = TsdbConfig {
            url: "influx:8086".into(),
            ..c
        };
        assert!(
            bad.check()
                .unwrap_err()
                .starts_with("[tsdb] url \"influx:8086\"")
        );
    }
}
