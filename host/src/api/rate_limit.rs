//! Rate limits on the API: per token for `/api/v1` calls, per webhook source
//! of an org for deliveries. Over the limit a request gets `429` with
//! `Retry-After`; every limited response carries the `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers
//! (draft-ietf-httpapi-ratelimit-headers).

use super::AppState;
use super::problem::Problem;
use crate::auth;
use crate::ratelimit::{Decision, Limit};
use poem::http::{HeaderValue, StatusCode};
use poem::{Request, Response};
use std::time::Duration;

/// The limit `request` counts against, and its key; `None` when it counts against none.
pub fn limit_for(state: &AppState, request: &Request) -> Option<(String, Limit)> {
    let config = &state.runtime.config().rate_limits;
    let window = Duration::from_secs(config.window_seconds);
    let path = request.uri().path();
    if request.method() == poem::http::Method::POST
        && let Some((source, org)) = super::hooks::delivery_path(path)
    {
        let requests = config.per_webhook_source;
        return (requests > 0).then(|| (format!("hook:{source}:{org}"), Limit { requests, window }));
    }
    let requests = config.per_token;
    if requests == 0 || !path.starts_with("/api/") {
        return None;
    }
    let token = auth::credential(request)?;
    Some((format!("token:{}", auth::tokens::hash(&token)), Limit { requests, window }))
}

/// Counts `request`; the decision, or `None` when no limit applies.
pub async fn admit(state: &AppState, request: &Request) -> Option<Decision> {
    let (key, limit) = limit_for(state, request)?;
    Some(state.limiter.check(&key, limit).await)
}

/// The `429` answer for a refused request.
pub fn refused(decision: &Decision) -> Response {
    let seconds = seconds(decision.reset);
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("more than {} requests in this window; retry in {seconds} s", decision.limit),
    )
    .into_response();
    response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    annotate(&mut response, decision);
    response
}

/// Adds the `RateLimit-*` headers.
pub fn annotate(response: &mut Response, decision: &Decision) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(seconds(decision.reset)));
}

/// Whole seconds, rounded up: a client waiting this long finds a new window.
fn seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}
