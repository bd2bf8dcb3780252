//! The browser tests' harness: Debian's `chromium` through `chromium-driver` (WebDriver,
//! headless), one driver per test binary, and the page helpers every UI test uses (log in,
//! fetch a page with a session, find outside URLs).

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::free_port;

/// How long a page element may take to appear.
pub const ELEMENT: Duration = Duration::from_secs(10);

/// `chromedriver` on a free port, stopped when dropped.
#[derive(Debug)]
pub struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    /// Starts `chromedriver` and waits until its status endpoint answers.
    ///
    /// # Panics
    /// If chromedriver is not installed or does not answer within [`ELEMENT`].
    pub async fn start() -> Self {
        let port = free_port();
        let binary = ["chromedriver", "/usr/bin/chromedriver"]
            .into_iter()
            .find(|b| which(b))
            .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let child = tokio::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let status = format!("{url}/status");
        firegrid_testkit::wait::until_async("chromedriver answers", ELEMENT, || async {
            http.get(&status)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
                .then_some(())
        })
        .await;
        Self { child, url }
    }

    /// A new headless browser whose viewport is `width`×`height` (a phone's, emulated, when
    /// narrower than 500), in Chinese like the users'.
    ///
    /// # Panics
    /// If the driver refuses the session.
    pub async fn browser(&self, width: u32, height: u32) -> Client {
        let mut options = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--lang=zh-CN", "--hide-scrollbars",
            format!("--window-size={width},{height}")]});
        if width < 500 {
            options["mobileEmulation"] = json!({"deviceMetrics":
                {"width": width, "height": height, "pixelRatio": 2, "touch": true}});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session");
        if width >= 500 {
            client
                .set_window_size(width, height)
                .await
                .expect("window size");
        }
        client
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Whether `binary` is on the `PATH`.
fn which(binary: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Logs `token` in through the login form; returns the session cookie.
///
/// # Panics
/// If the login page or the page after it does not appear.
pub async fn login(client: &Client, base: &str, token: &str) -> String {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("the login page");
    client
        .find(Locator::Id("token"))
        .await
        .expect("the token field")
        .send_keys(token)
        .await
        .expect("type the token");
    client
        .find(Locator::Css("main.login button[type=submit]"))
        .await
        .expect("the login button")
        .click()
        .await
        .expect("log in");
    client
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("header.top"))
        .await
        .expect("a page after logging in");
    client
        .get_named_cookie("fg_session")
        .await
        .expect("the session cookie")
        .value()
        .to_string()
}

/// A page's status and text, fetched outside the browser with a session cookie.
///
/// # Panics
/// If the gateway does not answer.
pub async fn fetch(base: &str, path: &str, session: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("cookie", format!("fg_session={session}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The outside URLs in `text` (the vendored files' licence banners `/*! … */` aside).
#[must_use]
pub fn outside_urls(text: &str) -> Vec<String> {
    let mut rest = text.to_string();
    while let Some(start) = rest.find("/*!") {
        let end = rest[start..]
            .find("*/")
            .map_or(rest.len(), |e| start + e + 2);
        rest.replace_range(start..end, "");
    }
    let mut found = Vec::new();
    for scheme in ["http://", "https://", "//cdn", "ws://", "wss://"] {
        let mut at = 0;
        while let Some(i) = rest[at..].find(scheme) {
            let s = at + i;
            found.push(rest[s..(s + 60).min(rest.len())].to_string());
            at = s + scheme.len();
        }
    }
    found
}

/// Saves a screenshot of what `client` shows to `path`, once the document is there.
///
/// # Panics
/// If the page does not load or the file cannot be written.
pub async fn shot(client: &Client, path: &std::path::Path) {
    // Times and ages are rewritten by app.js on DOMContentLoaded: wait for the document.
    client
        .wait()
        .at_most(ELEMENT)
        .for_element(Locator::Css("body"))
        .await
        .expect("a page");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(path, png).expect("write the screenshot");
}

/// Milliseconds since the Unix epoch, as the API's timestamps.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
