//! Rate limits at the edge: a token over its limit gets `429` with
//! `Retry-After` and the `RateLimit-*` headers, other tokens are untouched,
//! webhook sources are limited per org; in one process, and across two
//! replicas that count in the same Redis window.

use devpulse_e2e::{Backend, Options, TestServer, github_headers};
use std::time::Duration;

const CONFIG: &str = "[rate_limits]\nwindow_seconds = 3600\nper_token = 5\nper_webhook_source = 3\n";

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers().get(name).and_then(|value| value.to_str().ok()?.parse().ok()).unwrap_or_else(|| {
        panic!("{name} is missing from {:?}", response.headers());
    })
}

/// Spends a window with `send(n)` (the n-th request): each answer counts one
/// down, whichever replica gave it, and the requests after the last allowed
/// one (one per replica, `refusals`) are refused with the headers a client
/// needs to wait. A window about to end is waited out first.
async fn spend<F, Fut>(limit: u64, refusals: usize, send: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let first = send(0).await;
    assert!(first.status().is_success(), "{}", first.status());
    if header(&first, "ratelimit-reset") < 60 {
        tokio::time::sleep(Duration::from_secs(header(&first, "ratelimit-reset") + 1)).await;
        return Box::pin(spend(limit, refusals, send)).await;
    }
    assert_eq!(header(&first, "ratelimit-limit"), limit);
    let mut left = header(&first, "ratelimit-remaining");
    let mut sent = 1;
    while left > 0 {
        let response = send(sent).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(header(&response, "ratelimit-remaining"), left - 1, "every replica counts in one window");
        left -= 1;
        sent += 1;
    }
    for _ in 0..refusals {
        let response = send(sent).await;
        sent += 1;
        assert_eq!(response.status(), 429);
        let retry_after = header(&response, "retry-after");
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        assert_eq!(header(&response, "ratelimit-remaining"), 0);
        assert_eq!(header(&response, "ratelimit-reset"), retry_after);
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:devpulse:problem:rate-limited");
    }
}

async fn me(server: &TestServer, token: &str) -> reqwest::Response {
    server.http.get(server.url("/api/v1/me")).bearer_auth(token).send().await.expect("the server answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_limit_is_refused_in_one_process() {
    let options = Options { config: CONFIG.into(), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("sqlite needs nothing");
    let (_, admin) = server.user_with_role("admin").await;
    let (_, token) = server.user_with_role("developer").await;
    spend(5, 1, |_| me(&server, &token)).await;
    assert_eq!(me(&server, &admin).await.status(), 200, "another token has its own count");
    assert_eq!(server.text("/health").await, r#"{"status":"ok"}"#, "operational endpoints are not limited");

    // Deliveries count per webhook source of an org, with no token.
    let path = server.configure_hook_as(&admin, "github", "webhook-secret").await;
    let body = br#"{"zen": "Keep it logically awesome."}"#;
    spend(3, 1, |n| {
        let mut request = server.http.post(server.url(&path)).body(body.to_vec());
        for (name, value) in github_headers("webhook-secret", "ping", &format!("delivery-{n}"), body) {
            request = request.header(name, value);
        }
        async move { request.send().await.expect("the server answers") }
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_token_s_limit_through_redis() {
    let options = Options { config: CONFIG.into(), redis: true, ..Options::default() };
    let Some(first) = TestServer::start_with(Backend::Postgres, options).await else {
        return;
    };
    let second = first.replica().await;
    let (_, token) = first.user_with_role("developer").await;
    let replicas = [&first, &second];
    spend(5, 2, |n| me(replicas[n % 2], &token)).await;
    second.stop().await;
    first.stop().await;
}
