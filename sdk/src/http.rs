//! Outbound HTTP to hosts the operator allow-listed; anything else is `denied`.

use crate::bindings::devpulse::plugin::http as raw;
use crate::{Error, Method};

pub use raw::{IncomingResponse, OutgoingRequest};

/// Sends a request and waits for the whole response.
pub fn fetch(request: &OutgoingRequest) -> Result<IncomingResponse, Error> {
    raw::fetch(request)
}

/// A `GET` of `url` with no extra headers.
pub fn get(url: &str) -> Result<IncomingResponse, Error> {
    fetch(&OutgoingRequest { method: Method::Get, url: url.into(), headers: Vec::new(), body: None })
}
