//! `/api/v1/silences`: label matchers over a time span. Alerts they cover are
//! recorded and listed as silenced, and not notified.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::{Cursor, Text};
use crate::alerts::matchers::{MatchOp, Matcher};
use crate::alerts::silences::{self, NewSilence, Status};
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::store::entities::silence;
use crate::store::now_ms;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags, Union};
use sea_orm::TransactionTrait;

#[derive(Tags)]
enum SilenceTag {
    /// Keeping matching alerts quiet for a while.
    Silences,
}

/// One object type per matcher operator, so the document gives each `op`
/// its exact shape (a discriminator maps each value to its own schema).
macro_rules! matcher_type {
    ($name:ident, $value:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Object, Clone, Debug)]
        pub struct $name {
            /// A label name; `severity`, `source` and `key` are labels too.
            #[oai(validator(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$"))]
            pub name: String,
            #[oai(validator(max_length = 1024))]
            pub value: $value,
        }
    };
}

matcher_type!(EqualMatcher, Text, "The label equals `value` (a label an alert lacks counts as empty).");
matcher_type!(NotEqualMatcher, Text, "The label differs from `value` (a label an alert lacks counts as empty).");
matcher_type!(
    RegexMatcher,
    RegexText,
    "The whole label matches the regular expression `value` (anchored at both ends, RE2 syntax)."
);
matcher_type!(NotRegexMatcher, RegexText, "The whole label does not match the regular expression `value`.");

/// A label matcher, by `op`: `equal`, `not_equal`, `regex` or `not_regex`.
#[derive(Union, Clone, Debug)]
#[oai(discriminator_name = "op")]
pub enum MatcherBody {
    #[oai(mapping = "equal")]
    Equal(EqualMatcher),
    #[oai(mapping = "not_equal")]
    NotEqual(NotEqualMatcher),
    #[oai(mapping = "regex")]
    Regex(RegexMatcher),
    #[oai(mapping = "not_regex")]
    NotRegex(NotRegexMatcher),
}

impl From<MatcherBody> for Matcher {
    fn from(body: MatcherBody) -> Self {
        let (op, name, value) = match body {
            MatcherBody::Equal(m) => (MatchOp::Equal, m.name, m.value.0),
            MatcherBody::NotEqual(m) => (MatchOp::NotEqual, m.name, m.value.0),
            MatcherBody::Regex(m) => (MatchOp::Regex, m.name, m.value.0),
            MatcherBody::NotRegex(m) => (MatchOp::NotRegex, m.name, m.value.0),
        };
        Matcher { name, value, op }
    }
}

impl From<Matcher> for MatcherBody {
    fn from(matcher: Matcher) -> Self {
        let Matcher { name, value, op } = matcher;
        match op {
            MatchOp::Equal => MatcherBody::Equal(EqualMatcher { name, value: Text(value) }),
            MatchOp::NotEqual => MatcherBody::NotEqual(NotEqualMatcher { name, value: Text(value) }),
            MatchOp::Regex => MatcherBody::Regex(RegexMatcher { name, value: RegexText(value) }),
            MatchOp::NotRegex => MatcherBody::NotRegex(NotRegexMatcher { name, value: RegexText(value) }),
        }
    }
}

/// Stored matchers as the API shows them.
pub fn matcher_views(stored: &serde_json::Value) -> Vec<MatcherBody> {
    serde_json::from_value::<Vec<Matcher>>(stored.clone())
        .unwrap_or_default()
        .into_iter()
        .map(MatcherBody::from)
        .collect()
}

/// A regular expression, `format: regex` in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexText(pub String);

impl AsRef<str> for RegexText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl poem_openapi::types::Type for RegexText {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> std::borrow::Cow<'static, str> {
        "string(regex)".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(poem_openapi::registry::MetaSchema {
            format: Some("regex"),
            ..poem_openapi::registry::MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl poem_openapi::types::ParseFromJSON for RegexText {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(text)) => match regex::Regex::new(&text) {
                Ok(_) => Ok(RegexText(text)),
                Err(err) => Err(poem_openapi::types::ParseError::custom(format!("not a regular expression: {err}"))),
            },
            other => Err(poem_openapi::types::ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl poem_openapi::types::ToJSON for RegexText {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::from(self.0.as_str()))
    }
}

/// Where a silence stands now.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum SilenceStatus {
    /// Starts later.
    Pending,
    Active,
    /// Ended, or deleted.
    Expired,
}

impl From<Status> for SilenceStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => SilenceStatus::Pending,
            Status::Active => SilenceStatus::Active,
            Status::Expired => SilenceStatus::Expired,
        }
    }
}

impl From<SilenceStatus> for Status {
    fn from(status: SilenceStatus) -> Self {
        match status {
            SilenceStatus::Pending => Status::Pending,
            SilenceStatus::Active => Status::Active,
            SilenceStatus::Expired => Status::Expired,
        }
    }
}

#[derive(Object)]
pub struct SilenceView {
    pub id: String,
    /// Every matcher must match an alert's labels.
    pub matchers: Vec<MatcherBody>,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
    pub status: SilenceStatus,
    /// The user who created it.
    pub created_by: String,
    pub comment: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl SilenceView {
    fn of(row: silence::Model, now: i64) -> Self {
        SilenceView {
            matchers: matcher_views(&row.matchers),
            status: silences::status(&row, now).into(),
            starts_at: time(row.starts_at),
            ends_at: time(row.ends_at),
            created_at: time(row.created_at),
            id: row.id,
            created_by: row.created_by,
            comment: row.comment,
        }
    }
}

#[derive(Object)]
pub struct SilencePage {
    pub items: Vec<SilenceView>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct CreateSilence {
    /// Every matcher must match an alert's labels.
    #[oai(validator(min_items = 1, max_items = 32))]
    pub matchers: Vec<MatcherBody>,
    /// Now when absent; a silence that ended already is recorded as expired.
    #[oai(nullable)]
    pub starts_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// How long it lasts: a minute to a year.
    #[oai(validator(minimum(value = "60"), maximum(value = "31536000")))]
    pub duration_seconds: u32,
    /// Why; shown beside every alert it silences.
    #[oai(validator(min_length = 1, max_length = 4096, pattern = r"[^\s\x1c-\x1f]"))]
    pub comment: Text,
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<SilenceView>),
}

pub struct SilencesApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "SilenceTag::Silences")]
impl SilencesApi {
    /// The org's silences, newest first. Manager or above.
    #[oai(path = "/silences", method = "get", operation_id = "listSilences")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only silences in this state now.
        status: Query<Option<SilenceStatus>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<SilencePage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let now = now_ms();
        let before = cursor.0.map(|cursor| cursor.0);
        let db = self.state.runtime.db();
        let mut rows = silences::list(
            db,
            &principal.org_id,
            status.0.map(Status::from),
            before.as_deref(),
            u64::from(limit.0) + 1,
            now,
        )
        .await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |row| &row.id);
        Ok(Json(SilencePage { items: rows.into_iter().map(|row| SilenceView::of(row, now)).collect(), next_cursor }))
    }

    /// One silence. Manager or above.
    #[oai(path = "/silences/:id", method = "get", operation_id = "getSilence")]
    async fn get(&self, auth: BearerAuth, id: Path<String>) -> Result<Json<SilenceView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let found = silences::get(self.state.runtime.db(), &principal.org_id, &id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no silence {} in this org", id.0)))?;
        Ok(Json(SilenceView::of(found, now_ms())))
    }

    /// Silences alerts matching every matcher, from `starts_at` for
    /// `duration_seconds`. Matching alerts are still recorded and listed (as
    /// silenced); they are not notified. Manager or above.
    #[oai(path = "/silences", method = "post", operation_id = "createSilence")]
    async fn create(&self, auth: BearerAuth, body: Json<CreateSilence>) -> Result<Created, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let body = body.0;
        let now = now_ms();
        let starts_at = body.starts_at.map_or(now, |at| at.timestamp_millis());
        let new = NewSilence {
            matchers: body.matchers.into_iter().map(Matcher::from).collect(),
            starts_at,
            ends_at: starts_at.saturating_add(i64::from(body.duration_seconds) * 1000),
            created_by: principal.user_id.clone(),
            comment: body.comment.0,
        };
        let db = self.state.runtime.db();
        let txn = db.begin().await?;
        let created = silences::create(&txn, &principal.org_id, new, now).await?;
        audit::record(&txn, Entry::by(&principal, "silence.create", &format!("silence/{}", created.id))).await?;
        txn.commit().await?;
        Ok(Created::Created(Json(SilenceView::of(created, now))))
    }

    /// Ends a silence now, as Alertmanager's `DELETE` does (a silence that had
    /// ended is left as it was). It is not erased: it stays listed and
    /// readable as expired, so what was silenced and why remains on record.
    /// Manager or above.
    #[oai(path = "/silences/:id", method = "delete", operation_id = "expireSilence")]
    async fn expire(&self, auth: BearerAuth, id: Path<String>) -> Result<Json<SilenceView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let db = self.state.runtime.db();
        let txn = db.begin().await?;
        let now = now_ms();
        let expired = silences::expire(&txn, &principal.org_id, &id.0, now).await?;
        audit::record(&txn, Entry::by(&principal, "silence.expire", &format!("silence/{}", expired.id))).await?;
        txn.commit().await?;
        Ok(Json(SilenceView::of(expired, now)))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}

#[cfg(test)]
mod tests {
    /// The pattern the document gives matcher names (below, as in the
    /// validators above) is the rule the matchers enforce.
    #[test]
    fn label_name_pattern_agrees_with_the_matchers() {
        let pattern = regex::Regex::new(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$").unwrap();
        for name in ["a", "_x", "team_1", "A9", "1a", "a-b", "", "é"] {
            assert_eq!(pattern.is_match(name), crate::alerts::matchers::valid_label_name(name), "{name}");
        }
    }
}
