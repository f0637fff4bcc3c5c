//! The operator's settings for this plugin (`[plugins.NAME.settings]` in the
//! config file).

use crate::host::config as raw;
use crate::{Error, Result};
use serde::de::DeserializeOwned;

/// The setting `key` parsed into `T`, `None` when unset; a setting of another
/// shape is an error naming the key, so a typo in the config file is visible.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    raw::get(key)
        .map(|text| serde_json::from_str(&text).map_err(|err| Error::internal(format!("setting `{key}`: {err}"))))
        .transpose()
}
