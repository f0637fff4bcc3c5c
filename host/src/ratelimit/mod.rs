//! Rate limits at the edge: a fixed window of requests per key (an API token,
//! a webhook source of an org). With Redis every replica counts in the same
//! window; without it each process counts on its own.
//!
//! A fixed window is what the `RateLimit-*` headers describe exactly: how many
//! requests the window allows, how many are left, and when it resets. A client
//! may send up to twice the limit across a window boundary; the limits are for
//! protecting the server from a runaway client, not for billing.

use crate::store::redis::Redis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many requests a key may make per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub requests: u64,
    pub window: Duration,
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// Requests left in this window after this one.
    pub remaining: u64,
    /// Until the window resets.
    pub reset: Duration,
}

/// Counts requests per key. Cheap to clone; clones share the counts.
#[derive(Clone)]
pub struct RateLimiter {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    InProcess(Arc<Mutex<HashMap<String, (u64, u64)>>>),
    Redis(Redis),
}

/// Keys counted in process at most; past it, counts of older windows go.
const MAX_KEYS: usize = 100_000;

/// Counts a key's requests in its window and returns the count, atomically:
/// the key names the window, so it expires on its own shortly after.
const COUNT_SCRIPT: &str = "local n = redis.call('INCR', KEYS[1]) \
    if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
    return n";

impl RateLimiter {
    /// Counts in this process only.
    pub fn in_process() -> Self {
        RateLimiter { backend: Backend::InProcess(Arc::default()) }
    }

    /// Counts in Redis, shared by every replica using it.
    pub fn shared(redis: Redis) -> Self {
        RateLimiter { backend: Backend::Redis(redis) }
    }

    /// Counts one request of `key` against `limit`. When Redis does not answer
    /// the request is allowed (and logged): an outage of the counter should not
    /// become an outage of the API.
    pub async fn check(&self, key: &str, limit: Limit) -> Decision {
        let window_ms = limit.window.as_millis().max(1) as u64;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64);
        let window = now / window_ms;
        let reset = Duration::from_millis((window + 1) * window_ms - now);
        let count = match &self.backend {
            Backend::InProcess(counts) => count_in_process(counts, key, window),
            Backend::Redis(redis) => {
                let key = format!("devpulse:ratelimit:{key}:{window}");
                match redis.eval_count(COUNT_SCRIPT, &key, window_ms * 2).await {
                    Ok(count) => count,
                    Err(err) => {
                        tracing::warn!("rate limit not checked, Redis failed: {err}");
                        0
                    }
                }
            }
        };
        Decision {
            allowed: count <= limit.requests,
            limit: limit.requests,
            remaining: limit.requests.saturating_sub(count),
            reset,
        }
    }
}

fn count_in_process(counts: &Mutex<HashMap<String, (u64, u64)>>, key: &str, window: u64) -> u64 {
    let mut counts = counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if counts.len() >= MAX_KEYS && !counts.contains_key(key) {
        counts.retain(|_, (seen, _)| *seen == window);
    }
    let entry = counts.entry(key.to_owned()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 += 1;
    entry.1
}

#[cfg(test)]
mod tests {
    use super::{Limit, RateLimiter};
    use std::time::Duration;

    #[tokio::test]
    async fn a_key_is_refused_past_its_limit_and_others_are_not() {
        let limiter = RateLimiter::in_process();
        let limit = Limit { requests: 3, window: Duration::from_secs(3600) };
        let decisions: Vec<_> = futures::future::join_all((0..4).map(|_| limiter.check("a", limit))).await;
        assert_eq!(decisions.iter().map(|d| d.allowed).collect::<Vec<_>>(), [true, true, true, false]);
        assert_eq!(decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert!(decisions.iter().all(|d| d.reset <= Duration::from_secs(3600) && d.limit == 3));
        assert!(limiter.check("b", limit).await.allowed, "keys count apart");
    }
}
