//! Typed JSON documents in this plugin's storage, scoped to the caller's org.

use crate::bindings::devpulse::plugin::storage as raw;
use crate::{Error, invalid};
use serde::{Serialize, de::DeserializeOwned};

/// One page of a prefix scan; pass `next_cursor` back to get the next page.
pub struct Page<T> {
    pub entries: Vec<(String, T)>,
    pub next_cursor: Option<String>,
}

/// The document at `key`, if any.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    raw::get(key)?.map(|text| serde_json::from_str(&text).map_err(invalid)).transpose()
}

/// Stores `value` at `key`, replacing what was there.
pub fn put<T: Serialize>(key: &str, value: &T) -> Result<(), Error> {
    raw::put(key, &serde_json::to_string(value).map_err(invalid)?)
}

/// Removes `key`; true when it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    raw::delete(key)
}

/// Documents whose key starts with `prefix`, in key order.
pub fn scan<T: DeserializeOwned>(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page<T>, Error> {
    let page = raw::scan(prefix, cursor, limit)?;
    let entries = page
        .entries
        .into_iter()
        .map(|entry| Ok((entry.key, serde_json::from_str(&entry.value).map_err(invalid)?)))
        .collect::<Result<_, Error>>()?;
    Ok(Page { entries, next_cursor: page.next_cursor })
}

/// How many documents have a key starting with `prefix`.
pub fn count(prefix: &str) -> Result<u64, Error> {
    raw::count(prefix)
}
