//! A small Chrome DevTools Protocol client: starts headless Chromium, opens a page, clicks
//! with real mouse events, types, evaluates and takes screenshots. Enough for desk tests
//! without Node or a WebDriver server.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    /// One browser at a time per test binary: a Chromium takes both cores of this machine
    /// while it starts and renders, and two more beside it made a call's pop miss its seconds.
    _turn: tokio::sync::MutexGuard<'static, ()>,
    _child: Child,
    ws: Ws,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

/// Where Debian puts Chromium.
pub fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens one 1280×860 tab.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// Like [`Browser::start`], with extra Chromium flags.
    pub async fn start_with(extra: &[&str]) -> Browser {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let turn = TURN.lock().await;
        let exe = chromium().expect("chromium is installed (apt-get install chromium)");
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,860",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let port_file = profile.path().join("DevToolsActivePort");
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&port_file).unwrap_or_default();
            if text.lines().count() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut lines = text.lines();
        let (port, path) = (
            lines.next().expect("DevTools port"),
            lines.next().expect("DevTools path"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .expect("DevTools socket");
        let mut b = Browser {
            _turn: turn,
            _child: child,
            ws,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let t = b
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target = t["targetId"].as_str().unwrap().to_string();
        let s = b
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        b.session = s["sessionId"].as_str().unwrap().to_string();
        b.call("Page.enable", json!({})).await;
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        b
    }

    /// One CDP command; events in between are skipped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string()))
            .await
            .expect("CDP send");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("CDP {method}: no answer"));
            let Some(Ok(Message::Text(t))) = m else {
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("CDP {method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Opens the desk at `url`, logs in as `id` and waits until the desk shows.
    pub async fn log_in_to_desk(&mut self, url: &str, id: &str, password: &str, limit: Duration) {
        self.goto(url).await;
        self.wait(
            "!document.getElementById('login-box').classList.contains('hidden')",
            limit,
        )
        .await;
        self.type_into("#login-id", id).await;
        self.type_into("#login-pw", password).await;
        self.click("#login-btn").await;
        self.wait(
            "!document.getElementById('desk').classList.contains('hidden')",
            limit,
        )
        .await;
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait(
            "document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await;
    }

    /// Evaluates `js` in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("page threw on {js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls until `js` is truthy; panics with `js` after `limit`.
    pub async fn wait(&mut self, js: &str, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        loop {
            if self.eval(&format!("!!({js})")).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > end {
                let page = self
                    .eval("document.body ? document.body.innerText.slice(0, 800) : ''")
                    .await;
                panic!("page never satisfied: {js}\npage text: {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A real left click (mouse pressed and released) at the middle of `selector`.
    pub async fn click(&mut self, selector: &str) {
        let r = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel:?}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                sel = selector
            ))
            .await;
        let (x, y) = (
            r[0].as_f64()
                .unwrap_or_else(|| panic!("no element {selector}")),
            r[1].as_f64().unwrap(),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks into `selector` and types `text` as keyboard input.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Picks an option of a `<select>` as a user would (the change event fires).
    pub async fn select(&mut self, selector: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.value = {value:?}; e.dispatchEvent(new Event('change')); }})()"
        ))
        .await;
    }

    pub async fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({selector:?}) || {{}}).textContent || ''"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn screenshot(&mut self, path: &Path) {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
