//! Emitting events into the caller's org.

use crate::bindings::devpulse::plugin::events as raw;
use crate::{Error, invalid};
use serde::Serialize;

/// Emits an event of `kind` with a JSON payload; returns its id.
pub fn emit<T: Serialize>(kind: &str, payload: &T) -> Result<String, Error> {
    raw::emit(kind, &serde_json::to_string(payload).map_err(invalid)?)
}
