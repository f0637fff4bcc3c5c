//! Emitting events into the caller's org, and reading the ones delivered.

use crate::error::{decode, encode};
use crate::host::events as raw;
use crate::{Event, Result};
use serde::{Serialize, de::DeserializeOwned};

/// Emits an event of `kind` with a JSON payload, caused by the current input;
/// returns its id. Subscribed plugins (this one included) receive it after the
/// call commits.
pub fn emit<T: Serialize>(kind: &str, payload: &T) -> Result<String> {
    raw::emit(kind, &serde_json::to_string(payload).map_err(encode)?)
}

/// Like [`emit`], for an event about one user of the org (`subject`, their user
/// id): the event log shows it to that user alone, never to the rest of the
/// org. For personal inputs such as attendance records. (WIT 0.1.4.)
pub fn emit_about<T: Serialize>(kind: &str, payload: &T, subject: &str) -> Result<String> {
    raw::emit_about(kind, &serde_json::to_string(payload).map_err(encode)?, subject)
}

impl Event {
    /// The payload parsed into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.payload).map_err(decode)
    }
}
