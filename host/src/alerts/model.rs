//! What an alert is made of, the checks every source of one goes through, and
//! the snapshot notifications carry.

use crate::store::StoreError;
use crate::store::entities::alert;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest key, summary, label value (in characters) and details (in bytes of JSON).
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_SUMMARY_BYTES: usize = 1024;
pub const MAX_LABELS: usize = 32;
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
pub const MAX_DETAILS_BYTES: usize = 64 << 10;
pub const MAX_LINKS: usize = 32;
pub const MAX_LINK_BYTES: usize = 2048;

/// The label that makes an alert one person's.
pub const SUBJECT_LABEL: &str = "user";

/// How urgent an alert is, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|severity| severity.as_str() == text)
    }

    /// True when `self` is at least as urgent as `minimum`.
    pub fn at_least(self, minimum: Severity) -> bool {
        self <= minimum
    }
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Firing,
    Acknowledged,
    Resolved,
}

impl State {
    pub const ALL: [State; 3] = [State::Firing, State::Acknowledged, State::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Firing => "firing",
            State::Acknowledged => "acknowledged",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// What an alert was raised from, so a person can trace it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub event_ids: Vec<String>,
    pub urls: Vec<String>,
}

impl Links {
    /// Adds what `other` names that `self` does not, up to the cap.
    pub fn merge(&mut self, other: &Links) {
        for id in &other.event_ids {
            if !self.event_ids.contains(id) && self.event_ids.len() < MAX_LINKS {
                self.event_ids.push(id.clone());
            }
        }
        for url in &other.urls {
            if !self.urls.contains(url) && self.urls.len() < MAX_LINKS {
                self.urls.push(url.clone());
            }
        }
    }

    pub fn of(stored: &Value) -> Links {
        serde_json::from_value(stored.clone()).unwrap_or_default()
    }
}

/// An alert as its source raises it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub key: String,
    pub severity: Severity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub details: Option<Value>,
    pub links: Links,
    /// Resolve it when not raised again for this long.
    pub resolve_after_ms: Option<i64>,
}

impl NewAlert {
    /// Refuses what the store or a receiver could not take.
    pub fn validate(&self) -> Result<(), AlertError> {
        let invalid = |why: String| Err(AlertError::Invalid(why));
        if self.key.is_empty() || chars(&self.key) > MAX_KEY_BYTES {
            return invalid(format!("alert keys are 1 to {MAX_KEY_BYTES} bytes"));
        }
        if self.summary.trim().is_empty() || chars(&self.summary) > MAX_SUMMARY_BYTES {
            return invalid(format!("summaries are 1 to {MAX_SUMMARY_BYTES} bytes, not blank"));
        }
        if self.labels.len() > MAX_LABELS {
            return invalid(format!("an alert has at most {MAX_LABELS} labels"));
        }
        for (name, value) in &self.labels {
            if chars(value) > MAX_LABEL_VALUE_BYTES {
                return invalid(format!("label {name} is longer than {MAX_LABEL_VALUE_BYTES} bytes"));
            }
        }
        if let Some(details) = &self.details
            && serde_json::to_string(details).map_or(0, |text| text.len()) > MAX_DETAILS_BYTES
        {
            return invalid(format!("details are at most {MAX_DETAILS_BYTES} bytes of JSON"));
        }
        if self.links.event_ids.len() > MAX_LINKS || self.links.urls.len() > MAX_LINKS {
            return invalid(format!("an alert links at most {MAX_LINKS} events and {MAX_LINKS} URLs"));
        }
        if self.links.event_ids.iter().any(|id| id.is_empty() || chars(id) > 64) {
            return invalid("linked event ids are 1 to 64 bytes".into());
        }
        if !self.links.urls.iter().all(|url| valid_link(url)) {
            return invalid(format!("links are http(s) URLs of at most {MAX_LINK_BYTES} bytes, without spaces"));
        }
        if self.resolve_after_ms.is_some_and(|ms| ms < 1_000) {
            return invalid("a resolve timeout is at least one second".into());
        }
        Ok(())
    }

    /// The person the alert is about, from the `user` label.
    pub fn subject(&self) -> Option<&str> {
        self.labels.get(SUBJECT_LABEL).map(String::as_str)
    }
}

/// The grammar of a link, as the API documents it: `http://` or `https://`
/// and printable ASCII without spaces, backslashes or square brackets
/// (other characters percent-encoded, as URLs carry them). Explicit ranges,
/// not `\s`, so every regex dialect reads it alike. Not checked further: a
/// link is only shown to people.
pub const LINK_PATTERN: &str = r"^https?://[!-Z^-~]+$";

pub fn valid_link(url: &str) -> bool {
    // `$` also matches before a final newline in the document's (Python) regex dialect.
    let body = url.strip_suffix('\n').unwrap_or(url);
    let rest = body.strip_prefix("https://").or_else(|| body.strip_prefix("http://"));
    chars(url) <= MAX_LINK_BYTES
        && rest.is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| (b'!'..=b'Z').contains(&b) || (b'^'..=b'~').contains(&b))
        })
}

/// Lengths are counted in characters, as JSON Schema's `maxLength` counts them.
fn chars(text: &str) -> usize {
    text.chars().count()
}

/// An alert write a plugin call staged, applied in order when the call commits.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertWrite {
    Raise(NewAlert),
    Resolve(String),
}

impl AlertWrite {
    /// The key the write is about.
    pub fn key(&self) -> &str {
        match self {
            AlertWrite::Raise(new) => &new.key,
            AlertWrite::Resolve(key) => key,
        }
    }
}

/// Why an alert operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for AlertError {
    fn from(err: sea_orm::DbErr) -> Self {
        AlertError::Store(StoreError::Db(err))
    }
}

/// An alert's labels as stored.
pub fn labels_of(alert: &alert::Model) -> BTreeMap<String, String> {
    serde_json::from_value(alert.labels.clone()).unwrap_or_default()
}

/// The labels silences and channel filters match: the alert's own, plus
/// `severity`, `source` and `key` unless the alert has labels of those names.
pub fn matchable_labels(alert: &alert::Model) -> BTreeMap<String, String> {
    let mut labels = labels_of(alert);
    for (name, value) in [("severity", &alert.severity), ("source", &alert.source), ("key", &alert.key)] {
        labels.entry(name.to_owned()).or_insert_with(|| value.clone());
    }
    labels
}

/// The alert as a notification describes it: what a receiver needs to show
/// it and to find it again in the API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub source: String,
    pub key: String,
    pub occurrence: i32,
    pub state: State,
    pub severity: Severity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    pub details: Option<Value>,
    pub links: Links,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub acknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub resolved_by: Option<String>,
    pub comment: Option<String>,
}

impl Snapshot {
    pub fn of(alert: &alert::Model) -> Snapshot {
        let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Snapshot {
            id: alert.id.clone(),
            source: alert.source.clone(),
            key: alert.key.clone(),
            occurrence: alert.occurrence,
            state: State::parse(&alert.state).unwrap_or(State::Firing),
            severity: Severity::parse(&alert.severity).unwrap_or(Severity::Warning),
            summary: alert.summary.clone(),
            labels: labels_of(alert),
            details: alert.details.clone(),
            links: Links::of(&alert.links),
            started_at: time(alert.started_at),
            acknowledged_at: alert.acknowledged_at.map(time),
            acknowledged_by: alert.acknowledged_by.clone(),
            resolved_at: alert.resolved_at.map(time),
            resolved_by: alert.resolved_by.clone(),
            comment: alert.resolve_comment.clone().or_else(|| alert.ack_comment.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> NewAlert {
        NewAlert {
            key: "k".into(),
            severity: Severity::Warning,
            summary: "s".into(),
            labels: BTreeMap::new(),
            details: None,
            links: Links::default(),
            resolve_after_ms: None,
        }
    }

    #[test]
    fn severities_order_by_urgency() {
        assert!(Severity::Critical.at_least(Severity::Warning));
        assert!(Severity::Warning.at_least(Severity::Warning));
        assert!(!Severity::Info.at_least(Severity::Warning));
    }

    #[test]
    fn invalid_alerts_are_refused_with_a_reason() {
        assert!(alert().validate().is_ok());
        let cases: [fn(&mut NewAlert); 7] = [
            |a| a.key.clear(),
            |a| a.summary = " ".into(),
            |a| {
                a.labels.insert("long".into(), "x".repeat(MAX_LABEL_VALUE_BYTES + 1));
            },
            |a| a.links.urls.push("https://a b".into()),
            |a| a.links.urls.push("https://[::1".into()),
            |a| a.links.urls.push("ftp://x".into()),
            |a| a.resolve_after_ms = Some(10),
        ];
        for change in cases {
            let mut refused = alert();
            change(&mut refused);
            assert!(matches!(refused.validate(), Err(AlertError::Invalid(_))), "{refused:?}");
        }
    }

    #[test]
    fn links_merge_without_repeats() {
        let mut links = Links { event_ids: vec!["a".into()], urls: vec![] };
        links.merge(&Links { event_ids: vec!["a".into(), "b".into()], urls: vec!["https://x".into()] });
        assert_eq!(links.event_ids, ["a", "b"]);
        assert_eq!(links.urls, ["https://x"]);
    }
}
