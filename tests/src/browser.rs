//! A real browser for the console tests: Debian's `chromium`, headless, driven over WebDriver by
//! `chromedriver` (both installed by `.ci/run`) through fantoccini.
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port with a fresh profile directory,
//! so tests share no cookies. [`Browser::screenshot`] saves a PNG under
//! `<target>/console-screenshots/<name>.png` for a person to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::build::target_dir;
use crate::time::{POLL_INTERVAL, secs};

/// Where Debian installs them.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The argon2id PHC string `message-center hash-password` prints for `password` (written to its
/// standard input), for `[[console.users]] password_hash`.
pub fn hash_console_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(crate::build::server_binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run message-center hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("hash-password ends");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A headless Chromium session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver and a browser session (1400 × 1000).
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER}: {e} (apt-get install chromium-driver)")
            });
        let profile = tempfile::Builder::new()
            .prefix("mc-chromium-")
            .tempdir()
            .expect("profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if std::time::Instant::now() >= deadline => {
                    panic!("no WebDriver session from chromedriver at {url}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element matching `css`, waiting up to 15 s for it; panics with the page's text.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(secs(15))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let text = self.script("return document.body.innerText").await;
                panic!("no element `{css}` on the page: {e}\npage text:\n{text}")
            }
        }
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Types `text` into the field matching `css` (emptied first).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type into field");
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Chooses the option of value `value` in the `<select>` matching `css` (as a click would: the
    /// page sees `input` and `change`).
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select `{value}` in `{css}`: {e}"));
    }

    /// The text of the body of the frame matching `css` (a sandboxed frame's document cannot be read by
    /// the page's scripts, but WebDriver can enter it), waiting up to 15 s for `expected` to appear in it.
    pub async fn frame_text(&self, css: &str, expected: &str) -> String {
        let deadline = std::time::Instant::now() + secs(15);
        loop {
            self.find(css)
                .await
                .enter_frame()
                .await
                .unwrap_or_else(|e| panic!("enter frame `{css}`: {e}"));
            let text = self
                .script("return document.body ? document.body.innerText : ''")
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.client
                .enter_parent_frame()
                .await
                .expect("leave the frame");
            if text.contains(expected) || std::time::Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Clicks the element matching `css` and waits (15 s) until the page it leads to has loaded: a
    /// click may return before the navigation it starts has replaced the page, and reading at once
    /// would read the old one. The old document is marked before the click; the new one lacks the mark.
    pub async fn click_to_load(&self, css: &str) {
        self.script("window.__mcOldPage = true; return 1").await;
        self.click(css).await;
        let deadline = std::time::Instant::now() + secs(15);
        loop {
            let loaded = self
                .script("return window.__mcOldPage !== true && document.readyState === 'complete'")
                .await;
            if loaded == json!(true) {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!("clicking `{css}` loaded no new page within 15 s");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The text of the element matching `css` (read in one script: the monitoring page replaces its
    /// elements every refresh, so a found element may be gone by the time it is read).
    pub async fn text(&self, css: &str) -> String {
        self.read(css, "e.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute of the element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.read(css, &format!("e.getAttribute({})", json!(name)))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// `expression` over the element `e` matching `css`, waiting up to 15 s for it.
    async fn read(&self, css: &str, expression: &str) -> Value {
        let script = format!(
            "var e = document.querySelector({}); return e ? {{ found: true, value: {expression} }} : {{ found: false }};",
            json!(css)
        );
        let deadline = std::time::Instant::now() + secs(15);
        loop {
            let answer = self.script(&script).await;
            if answer["found"] == json!(true) {
                return answer["value"].clone();
            }
            if std::time::Instant::now() >= deadline {
                let text = self.script("return document.body.innerText").await;
                panic!("no element `{css}` on the page\npage text:\n{text}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The page's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs `script` in the page (`arguments` unused) and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs an async `script` whose last argument is the callback to call with the result.
    pub async fn script_async(&self, script: &str) -> Value {
        self.client
            .execute_async(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// Polls until `css` matches (15 s by default `timeout`); panics naming `what`.
    pub async fn wait_for_css(&self, css: &str, timeout: Duration, what: &str) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.has(css).await {
            if std::time::Instant::now() >= deadline {
                let body = self.script("return document.body.innerText").await;
                panic!(
                    "timed out after {timeout:?} waiting for {what} (`{css}`)\npage text:\n{body}"
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Saves a PNG of the window as `<target>/console-screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = target_dir().join("console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Saves a PNG of the whole page (not just the window): resizes the window to the page's height.
    pub async fn full_page_screenshot(&self, name: &str) -> PathBuf {
        let height = self
            .script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 4000);
        let _ = self.client.set_window_size(1400, height as u32 + 120).await;
        self.screenshot(name).await
    }

    /// Ends the session (Chromium exits) and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After `close` this finds the process gone; after a panic it ends chromedriver, which ends
        // the browser it started.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
