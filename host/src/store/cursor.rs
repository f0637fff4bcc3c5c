//! Opaque cursors, shared by every paginated list (HTTP and plugin imports): a
//! cursor encodes the sort key of the last item of a page, in lowercase hex.
//! Every string of that grammar decodes to some key, so a cursor is a position
//! even when no item has its key: the next page starts where it would sort.

/// The grammar of a cursor, as the OpenAPI document states it.
pub const PATTERN: &str = "^([0-9a-f]{2})+$";

/// The longest cursor accepted (keys of up to 4 KiB).
pub const MAX_LENGTH: usize = 8192;

pub fn encode(key: &str) -> String {
    hex::encode(key)
}

/// The key a cursor stands for, or `None` when it does not follow [`PATTERN`].
pub fn decode(cursor: &str) -> Option<String> {
    let well_formed = !cursor.is_empty()
        && cursor.len() <= MAX_LENGTH
        && cursor.len().is_multiple_of(2)
        && cursor.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    let bytes = hex::decode(cursor).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
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

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn keys_round_trip_and_every_well_formed_cursor_is_a_position() {
        for key in ["", "01JX", "plugin\u{0}metric\u{0}{\"repo\":\"a/b\"}", "é"] {
            if !key.is_empty() {
                assert_eq!(decode(&encode(key)).as_deref(), Some(key));
            }
        }
        assert_eq!(decode("ff00").as_deref(), Some("\u{fffd}\u{0}"), "bytes that are not UTF-8 still position");
        for bad in ["", "abc", "AB", "zz", "0g"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
