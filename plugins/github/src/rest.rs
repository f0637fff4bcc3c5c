//! GitHub's REST API through the host's `http` capability: the token and base
//! URL from the plugin's settings, `Link` pagination, and the rate limits
//! (primary: `X-RateLimit-Remaining`/`X-RateLimit-Reset`; secondary: `403` or
//! `429` with `Retry-After`, or a minute when GitHub gives no time).

use crate::settings::Settings;
use devpulse_sdk::http::{IncomingResponse, OutgoingRequest};
use devpulse_sdk::prelude::*;
use devpulse_sdk::{Method, http};
use serde::de::DeserializeOwned;

/// How long to wait after a secondary rate limit that names no time (GitHub:
/// "wait at least one minute").
const SECONDARY_WAIT_MS: i64 = 60_000;

/// An authenticated client for one API base URL.
pub struct Api {
    base: String,
    token: String,
}

/// A successful answer.
pub struct Page {
    pub body: Vec<u8>,
    /// The `rel="next"` URL of a paginated list.
    pub next: Option<String>,
    /// The page number of `rel="last"`, for estimates.
    pub last_page: Option<u32>,
    /// Set when this answer used the last request of the rate-limit window:
    /// no request should be made before this time.
    pub exhausted_until: Option<Timestamp>,
}

impl Page {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::invalid(format!("GitHub sent unexpected JSON: {err}")))
    }
}

/// What became of a request.
pub enum Reply {
    Ok(Page),
    /// Rate limited: try again at this time.
    Wait(Timestamp),
}

impl Api {
    /// The client the settings describe; a conflict when no token is set.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let token = settings.token.clone().ok_or_else(|| {
            Error::conflict("the github plugin has no `token` setting ([plugins.github.settings] in the config file)")
        })?;
        Ok(Api { base: settings.api_url.trim_end_matches('/').to_owned(), token })
    }

    /// A full URL for an API path such as `repos/o/r/pulls`; full URLs (from
    /// `Link` headers) pass through.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    pub fn get(&self, path: &str, now: Timestamp) -> Result<Reply> {
        self.send(Method::Get, path, now)
    }

    pub fn post(&self, path: &str, now: Timestamp) -> Result<Reply> {
        self.send(Method::Post, path, now)
    }

    fn send(&self, method: Method, path: &str, now: Timestamp) -> Result<Reply> {
        let request = OutgoingRequest::new(method, &self.url(path))
            .header("accept", "application/vnd.github+json")
            .header("authorization", &format!("Bearer {}", self.token))
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "devpulse-github-plugin");
        classify(&http::fetch(&request)?, now)
    }
}

/// Sorts an answer into a page, a wait, or an error that says what went wrong.
pub fn classify(response: &IncomingResponse, now: Timestamp) -> Result<Reply> {
    let number = |name: &str| response.header(name).and_then(|value| value.trim().parse::<i64>().ok());
    let remaining = number("x-ratelimit-remaining");
    let reset_at = number("x-ratelimit-reset").map(|seconds| seconds * 1000);
    let status = response.status;
    if (200..300).contains(&status) {
        let links = response.header("link").unwrap_or_default();
        return Ok(Reply::Ok(Page {
            body: response.body.clone(),
            next: link(links, "next"),
            last_page: link(links, "last").and_then(|url| page_number(&url)),
            exhausted_until: if remaining == Some(0) { reset_at.filter(|at| *at > now) } else { None },
        }));
    }
    let text = response.text();
    if status == 403 || status == 429 {
        if let Some(seconds) = number("retry-after") {
            return Ok(Reply::Wait(now + seconds.max(1) * 1000));
        }
        if remaining == Some(0) {
            return Ok(Reply::Wait(reset_at.unwrap_or(now + SECONDARY_WAIT_MS).max(now + 1000)));
        }
        if status == 429 || text.to_ascii_lowercase().contains("rate limit") {
            return Ok(Reply::Wait(now + SECONDARY_WAIT_MS));
        }
    }
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| body["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    Err(match status {
        401 => Error::Denied(format!("GitHub rejected the token: {message}")),
        403 => Error::Denied(format!("GitHub refused: {message}")),
        404 => Error::not_found(format!("GitHub has no such resource (or the token cannot see it): {message}")),
        400..500 => Error::invalid(format!("GitHub answered {status}: {message}")),
        _ => Error::Unavailable(format!("GitHub answered {status}: {message}")),
    })
}

/// The URL of `rel` in a `Link` header (`<url>; rel="next", <url>; rel="last"`).
fn link(header: &str, rel: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let wanted = params.split(';').any(|param| param.trim() == format!("rel=\"{rel}\""));
        wanted.then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

fn page_number(url: &str) -> Option<u32> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("page=")?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> IncomingResponse {
        IncomingResponse {
            status,
            headers: headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn pages_carry_their_links_and_an_exhausted_window() {
        let links = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=7>; rel="last""#;
        let headers = [("Link", links), ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "2000")];
        let Ok(Reply::Ok(page)) = classify(&response(200, &headers, "[]"), 1_000_000) else { panic!("a page") };
        assert_eq!(page.next.as_deref(), Some("https://api.github.com/repositories/1/pulls?page=2"));
        assert_eq!(page.last_page, Some(7));
        assert_eq!(page.exhausted_until, Some(2_000_000));
    }

    #[test]
    fn rate_limits_become_waits() {
        let now = 1_000_000;
        let wait = |status, headers: &[(&str, &str)], body| match classify(&response(status, headers, body), now) {
            Ok(Reply::Wait(until)) => until,
            _ => panic!("a wait"),
        };
        assert_eq!(wait(429, &[("Retry-After", "30")], ""), now + 30_000);
        assert_eq!(wait(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1100")], ""), 1_100_000);
        let secondary = r#"{"message":"You have exceeded a secondary rate limit"}"#;
        assert_eq!(wait(403, &[("x-ratelimit-remaining", "12")], secondary), now + SECONDARY_WAIT_MS);
    }

    #[test]
    fn other_failures_are_errors_that_name_the_reason() {
        let denied = classify(&response(401, &[], r#"{"message":"Bad credentials"}"#), 0);
        assert!(matches!(denied, Err(Error::Denied(why)) if why.contains("Bad credentials")));
        assert!(matches!(classify(&response(404, &[], "{}"), 0), Err(Error::NotFound(_))));
        assert!(matches!(classify(&response(502, &[], "bad gateway"), 0), Err(Error::Unavailable(_))));
        let forbidden = classify(&response(403, &[("x-ratelimit-remaining", "10")], r#"{"message":"no"}"#), 0);
        assert!(matches!(forbidden, Err(Error::Denied(_))));
    }
}
