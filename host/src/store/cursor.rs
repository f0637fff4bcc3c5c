//! Opaque cursors, shared by every paginated list (HTTP and plugin imports): a
//! cursor encodes the sort key of the last item of a page.

use base64::Engine as _;

pub fn encode(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// The key a cursor stands for, or `None` when it is not one of ours.
pub fn decode(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

/// Given up to `limit + 1` rows (one more than a page, fetched to learn whether
/// another page follows), drops the extra one and returns the next page's cursor.
pub fn next_page<T>(rows: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> &str) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|row| encode(key(row)))
}
