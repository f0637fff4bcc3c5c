//! Telling the `alarm` fixture plugin what to raise and resolve: one signed
//! `acme` delivery per instruction list, as the alerts tests and the alerts
//! benchmark both do.

use crate::TestServer;
use serde_json::Value;

/// The `acme` webhook source's secret the callers configure.
pub const SECRET: &str = "acme secret";

/// Delivers `said` (`{"raise": [...], "resolve": [...], ...}`) as delivery
/// `delivery` to the hook at `path`; returns the event id it became.
pub async fn tell(server: &TestServer, path: &str, delivery: &str, said: &Value) -> String {
    let body = serde_json::to_vec(said).expect("instructions are JSON");
    let signature = devpulse::auth::signature::Scheme::HmacSha256.sign(SECRET.as_bytes(), &body);
    let headers = [
        ("x-acme-event", "alarm".to_owned()),
        ("x-acme-delivery", delivery.to_owned()),
        ("x-acme-signature", signature),
    ];
    let (status, ack) = server.deliver(path, &headers, body).await;
    assert_eq!(status, 202, "{ack}");
    ack["event_id"].as_str().expect("an accepted delivery's event id").to_owned()
}
