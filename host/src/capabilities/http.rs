//! `http`: outbound requests to the hosts the operator allow-listed for this
//! plugin, bounded by the call's deadline and a response size cap.

use super::deny;
use crate::capabilities::state::CallState;
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::http::{Host, IncomingResponse, OutgoingRequest};
use crate::wit::devpulse::plugin::types::Method;
use std::time::Instant;

const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// True when `host` is listed exactly or matches a `*.domain` entry.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    allowed.iter().any(|pattern| match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() && host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.')
        }
        None => pattern.eq_ignore_ascii_case(host),
    })
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    }
}

impl CallState {
    async fn fetch_allowed(&mut self, request: OutgoingRequest) -> Result<IncomingResponse, PluginError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|err| PluginError::InvalidInput(format!("invalid URL {}: {err}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PluginError::InvalidInput("only http and https URLs".into()));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        if !host_allowed(&self.grants.http_hosts, &host) {
            return Err(deny(self, "http", format!("host {host} is not in this plugin's http allow-list")));
        }
        let timeout = self.deadline.saturating_duration_since(Instant::now());
        let mut builder = self.services.http.request(method(request.method), url).timeout(timeout);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response =
            builder.send().await.map_err(|err| PluginError::Unavailable(format!("request to {host} failed: {err}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| PluginError::Unavailable(format!("reading the response from {host} failed: {err}")))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(PluginError::Unavailable(format!(
                    "response from {host} exceeds {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(IncomingResponse { status, headers, body })
    }
}

impl Host for CallState {
    async fn fetch(&mut self, request: OutgoingRequest) -> wasmtime::Result<Result<IncomingResponse, PluginError>> {
        if !self.grants.allows("http") {
            return Ok(Err(deny(self, "http", "the http capability is not granted to this plugin".into())));
        }
        Ok(self.fetch_allowed(request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn allow_list_matches_exact_hosts_and_subdomain_wildcards() {
        let allowed = vec!["api.github.com".to_owned(), "*.example.com".to_owned()];
        assert!(host_allowed(&allowed, "api.github.com"));
        assert!(host_allowed(&allowed, "a.example.com"));
        assert!(!host_allowed(&allowed, "example.com"));
        assert!(!host_allowed(&allowed, "badexample.com"));
        assert!(!host_allowed(&allowed, "github.com"));
    }
}
