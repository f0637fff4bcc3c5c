//! Paging of HTTP lists, with the opaque cursors of [`crate::store::cursor`].

use crate::store::cursor::encode;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Takes up to `limit` items with keys after `after`, from items sorted by key;
/// returns them and the cursor of the next page.
pub fn page<T>(items: Vec<(String, T)>, after: Option<&str>, limit: u32) -> (Vec<T>, Option<String>) {
    let limit = limit.clamp(1, MAX_LIMIT) as usize;
    let mut rest = items.into_iter().filter(|(key, _)| after.is_none_or(|after| key.as_str() > after));
    let taken: Vec<(String, T)> = rest.by_ref().take(limit).collect();
    let next = match rest.next() {
        Some(_) => taken.last().map(|(key, _)| encode(key)),
        None => None,
    };
    (taken.into_iter().map(|(_, item)| item).collect(), next)
}

/// Given `limit + 1` rows, drops the extra one and returns the cursor of the next page.
pub fn next<T>(rows: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> &str) -> Option<String> {
    crate::store::cursor::next_page(rows, limit as usize, key)
}
