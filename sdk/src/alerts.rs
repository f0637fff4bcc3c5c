//! Raising and resolving alerts of the caller's org (WIT 0.1.5). People
//! acknowledge and silence them, and the host notifies their channels; a
//! plugin only says what is wrong, and when it is not any more. Alerts commit
//! with the call: a failed call raises nothing, a retried event raises once.
//!
//! ```ignore
//! alerts::raise(
//!     Alert::new(format!("overtime/{user}/{date}"), Severity::Warning, "Worked more than 10 h")
//!         .label("user", &user)
//!         .details(&json!({"worked_hours": 11.5}))?,
//! )?;
//! ```

use crate::Result;
use crate::error::encode;
use crate::host::alerts as raw;
use serde::Serialize;

pub use crate::bindings::devpulse::plugin::alerts::Severity;

/// An alert to raise; built with [`Alert::new`] and the methods below.
#[derive(Clone, Debug)]
pub struct Alert(pub(crate) raw::Alert);

impl Alert {
    /// `key` is the plugin's identity for the alert: raising a key that is
    /// open updates it, raising one that was resolved opens a new occurrence.
    pub fn new(key: impl Into<String>, severity: Severity, summary: impl Into<String>) -> Self {
        Alert(raw::Alert {
            key: key.into(),
            severity,
            summary: summary.into(),
            labels: Vec::new(),
            details: None,
            event_ids: Vec::new(),
            urls: Vec::new(),
            resolve_after: None,
        })
    }

    /// A label; `user` (a user id) makes the alert that person's: they and
    /// their managers see it, nobody else below manager.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.labels.push((name.into(), value.into()));
        self
    }

    /// Anything a person or receiver should see, as JSON.
    pub fn details<T: Serialize>(mut self, details: &T) -> Result<Self> {
        self.0.details = Some(serde_json::to_string(details).map_err(encode)?);
        Ok(self)
    }

    /// An event it was raised from, besides the one being handled (linked by the host).
    pub fn event(mut self, id: impl Into<String>) -> Self {
        self.0.event_ids.push(id.into());
        self
    }

    /// A page that explains it.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.0.urls.push(url.into());
        self
    }

    /// Resolves it when it is not raised again for `ms` milliseconds.
    pub fn resolve_after(mut self, ms: u64) -> Self {
        self.0.resolve_after = Some(ms);
        self
    }
}

/// Raises `alert`, or updates the open alert with its key.
pub fn raise(alert: Alert) -> Result<()> {
    raw::raise(&alert.0)
}

/// Resolves the open alert with this key; false when none is open.
pub fn resolve(key: &str) -> Result<bool> {
    raw::resolve(key)
}
