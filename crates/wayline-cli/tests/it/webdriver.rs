//! A small W3C WebDriver client for the browser tests: Debian's `chromedriver` driving headless
//! `chromium` with a fresh profile, over plain HTTP/1.1 on loopback. Dropping it ends the
//! session (the browser quits) and kills the driver.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Need, tool};

/// Chromium and its driver, or why the test is skipped (a failure with
/// `WAYLINE_REQUIRE_CHROMIUM=1`).
pub fn chromium(test: &str) -> Option<(PathBuf, PathBuf)> {
    let reason = "chromium or chromium-driver is not installed";
    let browser = tool(
        test,
        Need::Chromium,
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        reason,
    )?;
    let driver = tool(
        test,
        Need::Chromium,
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        reason,
    )?;
    Some((browser, driver))
}

/// One browser session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// Starts the driver and a headless browser with a fresh profile under `profile`.
    pub fn start(browser: &Path, driver: &Path, profile: &Path) -> Self {
        Self::start_with(browser, driver, profile, &[])
    }

    /// [`Browser::start`] with more browser flags.
    pub fn start_with(browser: &Path, driver: &Path, profile: &Path, extra: &[&str]) -> Self {
        let port = crate::common::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut b = Self {
            driver: child,
            port,
            session: String::new(),
        };
        assert!(
            crate::common::eventually(Duration::from_secs(20), || b
                .call("GET", "/status", None)
                .is_ok()),
            "chromedriver did not answer on port {port}"
        );
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ]
        .iter()
        .chain(extra)
        .map(|a| (*a).to_owned())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": browser.display().to_string(), "args": args }
        }}});
        let v = b
            .call("POST", "/session", Some(&caps))
            .expect("a browser session");
        v["sessionId"]
            .as_str()
            .expect("a session id")
            .clone_into(&mut b.session);
        b
    }

    /// One WebDriver command; returns `value`, or the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_mins(1)))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let json_text = read_response(&mut s)?;
        let v: Value = serde_json::from_str(&json_text).map_err(|e| format!("{e}: {json_text}"))?;
        if v["value"]["error"].is_string() {
            return Err(v["value"]["message"].as_str().unwrap_or("").to_owned());
        }
        Ok(v["value"].clone())
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        self.call(method, &p, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// Opens a URL.
    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs a script and returns its value.
    pub fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        self.js("return document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Clicks the first element matching a CSS selector.
    pub fn click(&self, css: &str) {
        let el = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_owned();
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types into the first element matching a CSS selector (`\n` is the Enter key).
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_owned();
        let keys = text.replace('\n', "\u{E007}");
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": keys })),
        );
    }

    /// Presses keys on whatever has the focus (`\t` is Tab, `\n` Enter), as a keyboard does.
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            let key = match c {
                '\t' => '\u{E004}',
                '\n' => '\u{E007}',
                c => c,
            };
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Waits (bounded) until the page's text contains `needle`; panics with the last text.
    pub fn wait_text(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.text();
            if last.contains(needle) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the page never showed {needle:?}; last text:\n{last}");
    }

    /// Sets the window size (CSS pixels).
    pub fn size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Saves a PNG screenshot under `target/ui-screenshots/`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// Reads one response body: chromedriver keeps the connection open, so read exactly
/// `Content-Length` bytes after the head.
fn read_response(s: &mut std::net::TcpStream) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length in {head}"))?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the driver closed the connection early".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("no response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
