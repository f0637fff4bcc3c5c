//! `alerts` (WIT 0.1.5): plugins raise and resolve alerts of the caller's org.
//! They are checked now and applied when the call commits, with its other
//! writes, so a trap raises nothing and a retried event raises once.

use super::check_write_budget;
use crate::alerts::{AlertWrite, Links, NewAlert, Severity};
use crate::capabilities::state::CallState;
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::alerts::{self, Host};

impl From<alerts::Severity> for Severity {
    fn from(severity: alerts::Severity) -> Self {
        match severity {
            alerts::Severity::Critical => Severity::Critical,
            alerts::Severity::Warning => Severity::Warning,
            alerts::Severity::Info => Severity::Info,
        }
    }
}

impl CallState {
    fn stage_alert(&mut self, write: AlertWrite) -> Result<(), PluginError> {
        if self.scope.is_none() {
            return Err(PluginError::Denied("alerts are not available while describing the plugin".into()));
        }
        check_write_budget(self)?;
        self.writes.alert(write);
        Ok(())
    }

    /// The plugin's alert as the host keeps it, linked to the event being handled.
    fn new_alert(&self, alert: alerts::Alert) -> Result<NewAlert, PluginError> {
        let details = match alert.details {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|err| PluginError::InvalidInput(format!("alert details are JSON: {err}")))?,
            ),
            None => None,
        };
        let mut event_ids: Vec<String> = self.cause.iter().map(|cause| cause.event_id.clone()).collect();
        event_ids
            .extend(alert.event_ids.into_iter().filter(|id| self.cause.as_ref().is_none_or(|c| &c.event_id != id)));
        let resolve_after_ms = match alert.resolve_after {
            Some(ms) => {
                Some(i64::try_from(ms).map_err(|_| PluginError::InvalidInput("resolve-after is too long".into()))?)
            }
            None => None,
        };
        let new = NewAlert {
            key: alert.key,
            severity: alert.severity.into(),
            summary: alert.summary,
            labels: alert.labels.into_iter().collect(),
            details,
            links: Links { event_ids, urls: alert.urls },
            resolve_after_ms,
        };
        new.validate().map_err(|err| PluginError::InvalidInput(err.to_string()))?;
        Ok(new)
    }
}

impl Host for CallState {
    async fn raise(&mut self, alert: alerts::Alert) -> wasmtime::Result<Result<(), PluginError>> {
        let staged = self.new_alert(alert).and_then(|new| self.stage_alert(AlertWrite::Raise(new)));
        Ok(staged)
    }

    async fn resolve(&mut self, key: String) -> wasmtime::Result<Result<bool, PluginError>> {
        if key.is_empty() || key.len() > crate::alerts::model::MAX_KEY_BYTES {
            return Ok(Err(PluginError::InvalidInput("alert keys are 1 to 256 bytes".into())));
        }
        let Some(scope) = self.scope.clone() else {
            return Ok(Err(PluginError::Denied("alerts are not available while describing the plugin".into())));
        };
        // Open when raised earlier in this call, or stored open and not resolved earlier in it.
        let open = match self.writes.alert_pending(&key) {
            Some(open) => open,
            None => match crate::alerts::lifecycle::open(&self.services.read, &scope.org, &scope.plugin, &key).await {
                Ok(found) => found.is_some(),
                Err(err) => return Ok(Err(PluginError::Unavailable(err.to_string()))),
            },
        };
        if !open {
            return Ok(Ok(false));
        }
        Ok(self.stage_alert(AlertWrite::Resolve(key)).map(|()| true))
    }
}
