//! A fake of the few GitHub REST endpoints the `github` plugin uses, answering
//! from a fixture (`tests/fixtures/github/scenario_rest.json`) with GitHub's
//! pagination (`Link`), primary rate limits (`X-RateLimit-*`, `403` once the
//! window is spent), secondary ones (`Retry-After`) on chosen requests, and
//! a webhook's delivery log with redelivery requests. It is a pure function of
//! (request, time), so a native test can drive it with a virtual clock and the
//! end-to-end tests can serve it over HTTP.

use serde_json::{Value, json};

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Self {
        Answer { status, headers: Vec::new(), body: serde_json::to_vec(body).unwrap_or_default() }
    }

    fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.into(), value.to_string()));
        self
    }
}

/// The primary rate limit: `per_window` requests, then nothing until the
/// window (started by its first request) has lasted `window_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub per_window: u32,
    pub window_ms: i64,
}

/// One delivery attempt of the watched webhook.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at_ms: i64,
    pub status_code: u16,
    pub redelivery: bool,
    /// The `X-GitHub-Event` and body GitHub sent (and sends again on redelivery).
    pub event: String,
    pub payload: Value,
}

pub struct FakeGithub {
    data: Value,
    /// Absolute base of `Link` URLs, such as `http://127.0.0.1:4000`.
    pub base: String,
    pub token: String,
    /// Most items per page, whatever `per_page` asks.
    pub page_size: usize,
    pub limit: Option<Limit>,
    remaining: u32,
    reset_at: i64,
    /// Requests (1-based, in arrival order) answered with a secondary limit:
    /// the status (`403` or `429`) and its `Retry-After` seconds.
    pub secondary: Vec<(u64, u16, u32)>,
    /// Every request served, as `METHOD path?query`.
    pub log: Vec<String>,
    pub deliveries: Vec<Delivery>,
    /// Delivery ids whose redelivery was asked for, in order; the server
    /// wrapping the fake performs them.
    pub redeliveries_asked: Vec<u64>,
}

fn not_found() -> Answer {
    Answer::json(404, &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}))
}

fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000) / 1000;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

impl FakeGithub {
    /// A fake serving `data` (the shape `make_scenario.py` writes) to `token`.
    pub fn new(data: Value, base: &str, token: &str) -> Self {
        FakeGithub {
            data,
            base: base.trim_end_matches('/').to_owned(),
            token: token.into(),
            page_size: 2,
            limit: None,
            remaining: 0,
            reset_at: i64::MIN,
            secondary: Vec::new(),
            log: Vec::new(),
            deliveries: Vec::new(),
            redeliveries_asked: Vec::new(),
        }
    }

    /// The fixture of this crate's scenario.
    pub fn scenario_data() -> Value {
        serde_json::from_str(include_str!("../../fixtures/github/scenario_rest.json")).expect("scenario_rest.json")
    }

    /// How many requests asked for `path` (query ignored).
    pub fn requests_for(&self, path: &str) -> usize {
        self.log
            .iter()
            .filter(|line| line.split_once(' ').is_some_and(|(_, rest)| rest.split('?').next() == Some(path)))
            .count()
    }

    /// Records a delivery attempt of the watched webhook.
    pub fn record_delivery(
        &mut self,
        guid: &str,
        event: &str,
        payload: Value,
        status_code: u16,
        redelivery: bool,
        now: i64,
    ) -> u64 {
        let id = 1000 + self.deliveries.len() as u64;
        self.deliveries.push(Delivery {
            id,
            guid: guid.into(),
            delivered_at_ms: now,
            status_code,
            redelivery,
            event: event.into(),
            payload,
        });
        id
    }

    /// Answers one request at time `now` (milliseconds since the epoch).
    pub fn respond(&mut self, method: &str, path_and_query: &str, authorization: Option<&str>, now: i64) -> Answer {
        self.log.push(format!("{method} {path_and_query}"));
        if authorization != Some(&format!("Bearer {}", self.token)) {
            return Answer::json(401, &json!({"message": "Bad credentials"}));
        }
        let served = self.log.len() as u64;
        if let Some(&(_, status, seconds)) = self.secondary.iter().find(|(at, _, _)| *at == served) {
            let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
            return Answer::json(status, &json!({"message": message})).header("retry-after", seconds);
        }
        let mut limit_headers = Vec::new();
        if let Some(limit) = self.limit {
            if now >= self.reset_at {
                self.remaining = limit.per_window;
                self.reset_at = now + limit.window_ms;
            }
            let reset_s = (self.reset_at + 999) / 1000;
            if self.remaining == 0 {
                return Answer::json(403, &json!({"message": "API rate limit exceeded"}))
                    .header("x-ratelimit-remaining", 0)
                    .header("x-ratelimit-reset", reset_s);
            }
            self.remaining -= 1;
            limit_headers.push(("x-ratelimit-remaining".to_owned(), self.remaining.to_string()));
            limit_headers.push(("x-ratelimit-reset".to_owned(), reset_s.to_string()));
        }
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let param = |name: &str| {
            query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).map(str::to_owned)
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut answer = self.route(method, path, &segments, &param, now);
        answer.headers.extend(limit_headers);
        answer
    }

    fn route(
        &mut self,
        method: &str,
        path: &str,
        segments: &[&str],
        param: &dyn Fn(&str) -> Option<String>,
        now: i64,
    ) -> Answer {
        let repo = &self.data["repository"];
        let full_name = repo["full_name"].as_str().unwrap_or_default().to_owned();
        let [repos, owner, name, rest @ ..] = segments else { return not_found() };
        if *repos != "repos" || format!("{owner}/{name}") != full_name {
            return not_found();
        }
        let by_number = |table: &str, key: &str| self.data[table].get(key).cloned().unwrap_or_else(|| json!([]));
        match (method, rest) {
            ("GET", []) => Answer::json(200, repo),
            ("GET", ["pulls"]) => self.paginate(path, param, self.data["pulls"].clone()),
            ("GET", ["pulls", number]) => {
                let pulls = self.data["pulls"].as_array().cloned().unwrap_or_default();
                match pulls.into_iter().find(|pull| number.parse().ok() == pull["number"].as_u64()) {
                    Some(pull) => Answer::json(200, &pull),
                    None => not_found(),
                }
            }
            ("GET", ["issues", number, "events"]) => self.paginate(path, param, by_number("draft_changes", number)),
            ("GET", ["pulls", number, "reviews"]) => self.paginate(path, param, by_number("reviews", number)),
            ("GET", ["pulls", number, "comments"]) => self.paginate(path, param, by_number("comments", number)),
            ("GET", ["pulls", number, "commits"]) => self.paginate(path, param, by_number("commits", number)),
            ("GET", ["deployments"]) => self.paginate(path, param, self.data["deployments"].clone()),
            ("GET", ["deployments", id, "statuses"]) => self.paginate(path, param, by_number("statuses", id)),
            ("GET", ["actions", "runs"]) => Answer::json(200, &json!({"total_count": 0, "workflow_runs": []})),
            ("GET", ["hooks", _, "deliveries"]) => {
                let mut listed: Vec<&Delivery> = self.deliveries.iter().collect();
                listed.sort_by_key(|delivery| std::cmp::Reverse((delivery.delivered_at_ms, delivery.id)));
                let items = listed
                    .into_iter()
                    .map(|delivery| {
                        json!({
                            "id": delivery.id,
                            "guid": delivery.guid,
                            "delivered_at": rfc3339(delivery.delivered_at_ms),
                            "redelivery": delivery.redelivery,
                            "status": if (200..300).contains(&delivery.status_code) { "OK" } else { "Failed" },
                            "status_code": delivery.status_code,
                            "event": delivery.event,
                        })
                    })
                    .collect();
                self.paginate(path, param, Value::Array(items))
            }
            ("POST", ["hooks", _, "deliveries", id, "attempts"]) => {
                match self.deliveries.iter().find(|delivery| delivery.id.to_string() == *id) {
                    Some(delivery) if delivery.delivered_at_ms >= now - 3 * 86_400_000 => {
                        self.redeliveries_asked.push(delivery.id);
                        Answer::json(202, &json!({}))
                    }
                    Some(_) => Answer::json(422, &json!({"message": "delivery is too old to redeliver"})),
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    /// One page of `items` with GitHub's `Link` header.
    fn paginate(&self, path: &str, param: &dyn Fn(&str) -> Option<String>, items: Value) -> Answer {
        let items = items.as_array().cloned().unwrap_or_default();
        let per_page = param("per_page").and_then(|n| n.parse().ok()).unwrap_or(30).min(self.page_size).max(1);
        let page: usize = param("page").and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let body: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut answer = Answer::json(200, &Value::Array(body));
        if page < last {
            let url = |page: usize| format!("<{}{path}?per_page={per_page}&page={page}>", self.base);
            answer = answer.header("link", format!("{}; rel=\"next\", {}; rel=\"last\"", url(page + 1), url(last)));
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_793_613_600_000), "2026-11-02T10:00:00Z");
    }

    #[test]
    fn lists_paginate_and_the_window_runs_out() {
        let mut fake = FakeGithub::new(FakeGithub::scenario_data(), "http://x", "t");
        fake.limit = Some(Limit { per_window: 2, window_ms: 1000 });
        let auth = Some("Bearer t");
        let first = fake.respond("GET", "/repos/acme/api/pulls?per_page=100", auth, 0);
        assert_eq!(first.status, 200);
        assert!(first.headers.iter().any(|(name, value)| name == "link" && value.contains("page=2>; rel=\"next\"")));
        let second = fake.respond("GET", "/repos/acme/api/pulls?per_page=100&page=2", auth, 10);
        assert!(second.headers.contains(&("x-ratelimit-remaining".into(), "0".into())));
        assert_eq!(fake.respond("GET", "/repos/acme/api", auth, 20).status, 403);
        assert_eq!(fake.respond("GET", "/repos/acme/api", auth, 1000).status, 200);
        assert_eq!(fake.respond("GET", "/repos/acme/api", Some("Bearer wrong"), 1000).status, 401);
    }
}
