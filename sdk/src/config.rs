//! The operator's settings for this plugin (`[plugins.NAME.settings]`).

use crate::bindings::devpulse::plugin::config as raw;
use serde::de::DeserializeOwned;

/// The setting `key` parsed into `T`; `None` when unset or of another shape.
pub fn get<T: DeserializeOwned>(key: &str) -> Option<T> {
    raw::get(key).and_then(|text| serde_json::from_str(&text).ok())
}
