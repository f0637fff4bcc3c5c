//! Parameter and field types whose schemas say exactly what the server
//! accepts, so a generated client (or a property-based tester) that follows
//! the document is never refused: a page cursor and an IANA time zone.

use crate::store::cursor;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use serde_json::Value;
use std::borrow::Cow;
use std::str::FromStr;

/// Implements `Type` for a string-like parameter whose schema is a named component.
macro_rules! string_type {
    ($ty:ty, $name:literal) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($name.into())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>($name.into(), |_| <$ty>::schema());
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(text)) => Self::parse_from_parameter(&text),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }
    };
}

/// A position in a list: the `next_cursor` of the page before. Any string of
/// the documented grammar is a position; one that names no item starts after
/// where that item would sort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("An opaque page position: pass `next_cursor` of the previous page."),
            pattern: Some(cursor::PATTERN.into()),
            max_length: Some(cursor::MAX_LENGTH),
            ..MetaSchema::new("string")
        }
    }
}

string_type!(Cursor, "Cursor");

impl ParseFromParameter for Cursor {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        cursor::decode(value).map(Cursor).ok_or_else(|| ParseError::custom("not a cursor from `next_cursor`"))
    }
}

/// An IANA time zone such as `Europe/Berlin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl TimeZone {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("An IANA time zone name, such as `Europe/Berlin` or `UTC`."),
            enum_items: chrono_tz::TZ_VARIANTS.iter().map(|zone| Value::from(zone.name())).collect(),
            ..MetaSchema::new("string")
        }
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::UTC)
    }
}

string_type!(TimeZone, "TimeZone");

impl ParseFromParameter for TimeZone {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        chrono_tz::Tz::from_str(value)
            .map(TimeZone)
            .map_err(|_| ParseError::custom(format!("{value:?} is not an IANA time zone such as Europe/Berlin")))
    }
}

impl ToJSON for TimeZone {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.name()))
    }
}

/// A label filter, `label=value`: the label is everything before the first `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFilter {
    pub label: String,
    pub value: String,
}

impl LabelFilter {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("`label=value`: points whose label `label` is `value`."),
            pattern: Some("^[^=]+=".into()),
            ..MetaSchema::new("string")
        }
    }
}

string_type!(LabelFilter, "LabelFilter");

impl ParseFromParameter for LabelFilter {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        match value.split_once('=') {
            Some((label, value)) if !label.is_empty() => {
                Ok(LabelFilter { label: label.to_owned(), value: value.to_owned() })
            }
            _ => Err(ParseError::custom(format!("{value:?} is not label=value"))),
        }
    }
}

/// An email address: a local part and a domain around an `@`, no spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(pub String);

impl Email {
    fn schema() -> MetaSchema {
        MetaSchema { format: Some("email"), max_length: Some(320), ..MetaSchema::new("string") }
    }
}

string_type!(Email, "Email");

impl ParseFromParameter for Email {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        crate::identity::check_email(value).map(|()| Email(value.to_owned())).map_err(ParseError::custom)
    }
}

impl ToJSON for Email {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.as_str()))
    }
}

/// A string in a JSON body, and only a string: poem-openapi's `String` also
/// takes numbers and booleans, which the document does not allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.as_str()))
    }
}

impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.0
    }
}

/// A string in a JSON body of `MIN` to `MAX` characters, for places where
/// poem-openapi has no validator (list items, map values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BoundedText<const MIN: usize, const MAX: usize>(pub String);

impl<const MIN: usize, const MAX: usize> Type for BoundedText<MIN, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        format!("string({MIN}..={MAX})").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let min_length = (MIN > 0).then_some(MIN);
        MetaSchemaRef::Inline(Box::new(MetaSchema { min_length, max_length: Some(MAX), ..MetaSchema::new("string") }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<const MIN: usize, const MAX: usize> ParseFromJSON for BoundedText<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) if (MIN..=MAX).contains(&text.chars().count()) => Ok(BoundedText(text)),
            Some(Value::String(_)) => Err(ParseError::custom(format!("{MIN} to {MAX} characters"))),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<const MIN: usize, const MAX: usize> ToJSON for BoundedText<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.as_str()))
    }
}

/// A string grammar with a name in the document: its pattern (as Python's
/// `re.search` reads it) and the check the server runs, which must agree.
pub trait Grammar: Send + Sync + 'static {
    const NAME: &'static str;
    const PATTERN: &'static str;
    const MAX_LENGTH: usize;
    const DESCRIPTION: &'static str;
    fn check(value: &str) -> bool;
}

/// A string of grammar `G`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern<G: Grammar>(pub String, std::marker::PhantomData<G>);

impl<G: Grammar> Pattern<G> {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some(G::DESCRIPTION),
            pattern: Some(G::PATTERN.into()),
            max_length: Some(G::MAX_LENGTH),
            ..MetaSchema::new("string")
        }
    }
}

impl<G: Grammar> Type for Pattern<G> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        G::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(G::NAME.into())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(G::NAME.into(), |_| Self::schema());
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<G: Grammar> ParseFromJSON for Pattern<G> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) if text.chars().nth(G::MAX_LENGTH).is_none() && G::check(&text) => {
                Ok(Pattern(text, std::marker::PhantomData))
            }
            Some(Value::String(_)) => Err(ParseError::custom(G::DESCRIPTION)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<G: Grammar> ToJSON for Pattern<G> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.as_str()))
    }
}

impl<G: Grammar> ParseFromParameter for Pattern<G> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse_from_json(Some(Value::from(value))).map_err(ParseError::propagate)
    }
}
