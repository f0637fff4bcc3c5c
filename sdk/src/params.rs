//! Parameter and field types whose derived schemas say exactly what they
//! accept, so the host checks them before the plugin runs and generated
//! clients send only what works: an RFC 3339 [`Time`], a [`Date`] and a page
//! [`Cursor`].
//! For closed sets, derive `JsonSchema` on an enum: its schema lists the values.

use crate::Timestamp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// An instant written as RFC 3339 (`2026-11-30T09:00:00Z`, any offset), read
/// as milliseconds since the Unix epoch. Its schema is `format: date-time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub Timestamp);

impl Time {
    /// Parses RFC 3339 text.
    pub fn parse(text: &str) -> Option<Time> {
        chrono::DateTime::parse_from_rfc3339(text).ok().map(|at| Time(at.timestamp_millis()))
    }

    /// The instant as RFC 3339 in UTC.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_millis(self.0).map(|at| at.to_rfc3339()).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Time::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl JsonSchema for Time {
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

/// A calendar date written `2026-11-30`. Its schema is `format: date`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub chrono::NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Date)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a date such as 2026-11-30")))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.format("%Y-%m-%d").to_string())
    }
}

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date"})
    }
}

/// A position in a storage scan: the `next_cursor` of the page before. The
/// host makes cursors (lowercase hex of a key); any string of that grammar is
/// a position, so a route taking one never refuses a well-formed cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl std::ops::Deref for Cursor {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl JsonSchema for Cursor {
    fn schema_name() -> Cow<'static, str> {
        "Cursor".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([0-9a-f]{2})+$",
            "maxLength": 8192,
            "description": "From `next_cursor` of the previous page."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, Time};

    #[test]
    fn times_read_rfc_3339_with_any_offset() {
        let time: Time = serde_json::from_str("\"2026-11-30T10:00:00+01:00\"").unwrap();
        assert_eq!(time, Time(1_796_029_200_000));
        assert_eq!(time.to_rfc3339(), "2026-11-30T09:00:00+00:00");
        assert!(serde_json::from_str::<Time>("\"yesterday\"").is_err());
        let schema = crate::schema::of::<Time>().unwrap();
        assert_eq!(schema["format"], "date-time");
        let schema = crate::schema::of::<Cursor>().unwrap();
        assert_eq!(schema["pattern"], "^([0-9a-f]{2})+$");
    }
}
