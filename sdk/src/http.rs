//! Outbound HTTP to hosts the operator allow-listed for this plugin; anything
//! else, or a plugin without the `http` grant, gets [`crate::Error::Denied`].
//!
//! ```ignore
//! let repo: Repo = http::OutgoingRequest::get("https://api.github.com/repos/o/r")
//!     .header("accept", "application/vnd.github+json")
//!     .send()?
//!     .json()?;
//! ```

use crate::error::{decode, encode};
use crate::host::http as raw;
use crate::{Error, Method, Result};
use serde::{Serialize, de::DeserializeOwned};

pub use raw::{IncomingResponse, OutgoingRequest};

/// Sends a request and waits for the whole response.
pub fn fetch(request: &OutgoingRequest) -> Result<IncomingResponse> {
    raw::fetch(request)
}

/// A `GET` of `url` with no extra headers.
pub fn get(url: &str) -> Result<IncomingResponse> {
    OutgoingRequest::get(url).send()
}

impl OutgoingRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: &str) -> Self {
        OutgoingRequest { method, url: url.into(), headers: Vec::new(), body: None }
    }

    pub fn get(url: &str) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: &str) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize>(self, body: &T) -> Result<Self> {
        let mut request = self.header("content-type", "application/json");
        request.body = Some(serde_json::to_vec(body).map_err(encode)?);
        Ok(request)
    }

    /// Sends it; see [`fetch`].
    pub fn send(&self) -> Result<IncomingResponse> {
        fetch(self)
    }
}

impl IncomingResponse {
    /// A response header by name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON; a non-2xx status is an [`Error::Unavailable`]
    /// naming the status.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        if !(200..300).contains(&self.status) {
            return Err(Error::Unavailable(format!("the remote answered {}", self.status)));
        }
        serde_json::from_slice(&self.body).map_err(decode)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
