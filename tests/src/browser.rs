//! A real browser for tests: Debian's headless Chromium, driven through the
//! DevTools protocol over its WebSocket, to read what a page's script did.

use futures::SinkExt;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// A headless Chromium showing one page; killed on drop.
pub struct Browser {
    child: tokio::process::Child,
    devtools: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Opens `url` in a new headless Chromium.
    pub async fn open(url: &str) -> Self {
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut child = tokio::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("chromium's stderr");
        let mut lines = BufReader::new(stderr).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("chromium's stderr is readable") {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    return rest.split('/').next().and_then(|port| port.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromium announces its DevTools port");
        // Keep draining stderr so chromium never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools answers")
            .json()
            .await
            .expect("a target list");
        let page = targets
            .as_array()
            .and_then(|targets| targets.iter().find(|target| target["type"] == "page"))
            .and_then(|target| target["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (devtools, _) = tokio_tungstenite::connect_async(page).await.expect("DevTools WebSocket");
        Browser { child, devtools, next_id: 0, _profile: profile }
    }

    /// Evaluates `expression` in the page; its value.
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({"id": id, "method": "Runtime.evaluate", "params": {"expression": expression, "returnByValue": true}});
        self.devtools.send(Message::Text(call.to_string().into())).await.expect("DevTools takes the call");
        while let Some(message) = futures::StreamExt::next(&mut self.devtools).await {
            if let Ok(Message::Text(text)) = message {
                let answer: Value = serde_json::from_str(&text).expect("DevTools answers JSON");
                if answer["id"] == id {
                    return answer["result"]["result"]["value"].clone();
                }
            }
        }
        panic!("DevTools closed before answering");
    }

    /// Waits until `expression` is true in the page; false after `limit`.
    pub async fn wait_until(&mut self, expression: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.evaluate(expression).await == Value::Bool(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
