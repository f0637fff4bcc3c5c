//! The `tally` test plugin's side of the delivery tests: the deliveries it
//! counts and how to read its counts consistently.

use serde_json::{Value, json};
use std::time::Duration;

/// A 2 KB GitHub-like body for delivery `n`; tally fails on a poisoned one.
pub fn payload(n: usize, poison: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({ "number": n, "poison": poison, "pad": "p".repeat(2000) })).expect("JSON")
}

/// The GitHub event name of delivery `n`: tally counts per kind.
pub fn kind_of(n: usize) -> &'static str {
    ["push", "pull_request", "issues"][n % 3]
}

/// The total of a `/counts` read whose per-kind counts add up to it; `None`
/// when a commit landed between the two reads.
pub fn consistent_total(counts: &Value) -> Option<u64> {
    let kinds: u64 = counts["kinds"].as_object()?.values().filter_map(Value::as_u64).sum();
    counts["total"].as_u64().filter(|total| *total == kinds)
}

/// Waits until tally is running on the server at `base`.
pub async fn wait_loaded(http: &reqwest::Client, base: &str, token: &str) {
    for _ in 0..300 {
        let plugin: Value = match http.get(format!("{base}/api/v1/plugins/tally")).bearer_auth(token).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        if plugin["status"] == "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tally did not load in the child server at {base}");
}

/// Reads `/api/v1/tally/counts` at `base` until its total is `total` (or 90 s pass).
pub async fn counts_reaching(http: &reqwest::Client, base: &str, token: &str, total: u64) -> Value {
    let started = std::time::Instant::now();
    loop {
        let counts: Value = http
            .get(format!("{base}/api/v1/tally/counts"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET counts")
            .json()
            .await
            .expect("counts JSON");
        if consistent_total(&counts) == Some(total) || started.elapsed() > Duration::from_secs(90) {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
