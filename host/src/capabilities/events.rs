//! `events`: plugins emit events into the caller's org; they commit with the call.

use super::check_write_budget;
use crate::capabilities::state::CallState;
use crate::capabilities::writes::NewEvent;
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::events::Host;

const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Longest subject: a user id.
const MAX_SUBJECT_BYTES: usize = 64;

/// Kinds only the host emits (its own happenings, Kubernetes watches), so a
/// plugin that receives one knows no other plugin made it up.
const HOST_KINDS: &[&str] = &["system.", "kube."];

/// Event kinds are dotted lowercase names such as `hello.greeted`.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 128
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl CallState {
    /// Stages an event, about `subject` when given.
    fn stage_event(&mut self, kind: String, payload: String, subject: Option<String>) -> Result<String, PluginError> {
        if self.scope.is_none() {
            return Err(PluginError::Denied("events are not available while describing the plugin".into()));
        }
        if !valid_kind(&kind) {
            return Err(PluginError::InvalidInput("event kinds are 1 to 128 of a-z, 0-9, '.', '_' and '-'".into()));
        }
        if let Some(prefix) = HOST_KINDS.iter().find(|prefix| kind.starts_with(*prefix)) {
            return Err(PluginError::Denied(format!(
                "event kinds starting with {prefix} are the host's: a plugin cannot emit {kind}"
            )));
        }
        if subject.as_ref().is_some_and(|subject| subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES) {
            return Err(PluginError::InvalidInput(format!("subjects are user ids of 1 to {MAX_SUBJECT_BYTES} bytes")));
        }
        check_write_budget(self)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(PluginError::InvalidInput(format!("payloads are at most {MAX_PAYLOAD_BYTES} bytes")));
        }
        let payload = serde_json::from_str(&payload)
            .map_err(|err| PluginError::InvalidInput(format!("payloads are JSON: {err}")))?;
        let depth = self.cause.as_ref().map_or(0, |cause| cause.depth + 1);
        if depth > self.services.max_event_depth {
            return Err(PluginError::Denied(format!(
                "cause chain deeper than {} events; refusing to emit {kind}",
                self.services.max_event_depth
            )));
        }
        let id = ulid::Ulid::new().to_string();
        self.writes.emit(NewEvent {
            id: id.clone(),
            kind,
            payload,
            cause: self.cause.as_ref().map(|cause| cause.event_id.clone()),
            depth,
            subject,
        });
        Ok(id)
    }
}

impl Host for CallState {
    async fn emit(&mut self, kind: String, payload: String) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.stage_event(kind, payload, None))
    }

    async fn emit_about(
        &mut self,
        kind: String,
        payload: String,
        subject: String,
    ) -> wasmtime::Result<Result<String, PluginError>> {
        Ok(self.stage_event(kind, payload, Some(subject)))
    }
}
