//! Typed JSON documents in this plugin's storage, scoped to the caller's org.
//! Writes become visible to the rest of the call at once and commit with it.

use crate::Result;
use crate::error::{decode, encode};
use crate::host::storage as raw;
use serde::{Serialize, de::DeserializeOwned};

/// One page of a prefix scan; pass `next_cursor` back to get the next page.
pub struct Page<T> {
    pub entries: Vec<(String, T)>,
    pub next_cursor: Option<String>,
}

/// The document at `key`, if any.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    raw::get(key)?.map(|text| serde_json::from_str(&text).map_err(decode)).transpose()
}

/// Stores `value` at `key`, replacing what was there.
pub fn put<T: Serialize>(key: &str, value: &T) -> Result<()> {
    raw::put(key, &serde_json::to_string(value).map_err(encode)?)
}

/// Reads `key` (or `default` when absent), lets `change` modify it and stores
/// the result, which it also returns.
pub fn update<T: Serialize + DeserializeOwned>(key: &str, default: T, change: impl FnOnce(&mut T)) -> Result<T> {
    let mut value = get(key)?.unwrap_or(default);
    change(&mut value);
    put(key, &value)?;
    Ok(value)
}

/// Removes `key`; true when it existed.
pub fn delete(key: &str) -> Result<bool> {
    raw::delete(key)
}

/// Up to `limit` documents whose key starts with `prefix`, in key order.
pub fn scan<T: DeserializeOwned>(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page<T>> {
    let page = raw::scan(prefix, cursor, limit)?;
    let entries = page
        .entries
        .into_iter()
        .map(|entry| Ok((entry.key, serde_json::from_str(&entry.value).map_err(decode)?)))
        .collect::<Result<_>>()?;
    Ok(Page { entries, next_cursor: page.next_cursor })
}

/// Every document whose key starts with `prefix`, in key order, read page by page.
pub fn scan_all<T: DeserializeOwned>(prefix: &str) -> Result<Vec<(String, T)>> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = scan(prefix, cursor.as_deref(), 500)?;
        all.extend(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// How many documents have a key starting with `prefix`.
pub fn count(prefix: &str) -> Result<u64> {
    raw::count(prefix)
}
