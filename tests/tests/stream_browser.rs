//! The live stream in a real browser: headless Chromium opens a page whose
//! script subscribes with `EventSource` and a ticket (a browser cannot send
//! an `Authorization` header), and shows the event delivered afterwards.
//! The test reads the page's title through the DevTools protocol.

use devpulse_e2e::browser::Browser;
use devpulse_e2e::{Backend, Options, TestServer, have};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "a github secret of 16+ bytes";

/// The page: subscribes with the ticket in its fragment, then names what came in its title.
const PAGE: &str = r#"<!doctype html>
<title>waiting</title>
<script>
  const ticket = new URLSearchParams(location.hash.slice(1)).get("ticket");
  const source = new EventSource("/api/v1/stream/sse?kind=github.*&ticket=" + encodeURIComponent(ticket));
  source.onopen = () => { document.title = "open"; };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    document.title = "received " + event.kind + " " + event.payload.zen + " at " + message.lastEventId;
    source.close();
  };
  source.onerror = () => { if (document.title !== "open" && !document.title.startsWith("received")) document.title = "error"; };
</script>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_receives_an_event_through_event_source_with_a_ticket() {
    if !have("chromium") {
        return;
    }
    let options = Options { pages: vec![("/test/stream.html".into(), PAGE.into())], ..Options::default() };
    let Some(server) = TestServer::start_with(Backend::Sqlite, options).await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let (status, issued) = server.post("/api/v1/stream/tickets", &json!({})).await;
    assert_eq!(status, 201, "{issued}");
    let ticket = issued["ticket"].as_str().unwrap();

    let mut browser = Browser::open(&server.url(&format!("/test/stream.html#ticket={ticket}"))).await;
    assert!(
        browser.wait_until("document.title === 'open'", Duration::from_secs(30)).await,
        "the page did not subscribe: {}",
        browser.evaluate("document.title").await
    );
    let body = serde_json::to_vec(&json!({"zen": "from the browser test", "hook_id": 1})).unwrap();
    let (status, ack) = server.deliver_github(&path, SECRET, "ping", "browser-1", &body).await;
    assert_eq!(status, 202, "{ack}");
    let (_, event) = server.get(&format!("/api/v1/events/{}", ack["event_id"].as_str().unwrap())).await;

    assert!(
        browser.wait_until("document.title.startsWith('received')", Duration::from_secs(30)).await,
        "the page received nothing: {}",
        browser.evaluate("document.title").await
    );
    let expected = format!("received github.ping from the browser test at {}", event["position"]);
    assert_eq!(browser.evaluate("document.title").await, expected);
    drop(browser);
    server.stop().await;
}
