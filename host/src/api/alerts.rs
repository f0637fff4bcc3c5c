//! `/api/v1/alerts`: alerts raised by plugins and scripts, their history, and
//! acknowledging or resolving them.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::{BoundedText, Cursor, Grammar, LabelFilter, Pattern, Text};
use super::problem::Problem;
use crate::alerts::lifecycle::{self, Actor, Raised};
use crate::alerts::model::{LINK_PATTERN, Links, NewAlert, labels_of};
use crate::alerts::{AlertError, Severity, State, query, silences};
use crate::audit::{self, Entry};
use crate::auth::{Principal, Role};
use crate::bus::wake::News;
use crate::store::entities::{alert, alert_transition};
use crate::store::now_ms;
use poem::http::StatusCode;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::Value;
use std::collections::BTreeMap;

/// The source of alerts raised through `POST /api/v1/alerts`.
pub const API_SOURCE: &str = "api";

#[derive(Tags)]
enum AlertTag {
    /// Alerts raised by plugins and scripts; acknowledging, resolving and silencing them.
    Alerts,
}

/// How urgent an alert is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum AlertSeverity {
    Critical,
    Warning,
    Info,
}

impl From<AlertSeverity> for Severity {
    fn from(severity: AlertSeverity) -> Self {
        match severity {
            AlertSeverity::Critical => Severity::Critical,
            AlertSeverity::Warning => Severity::Warning,
            AlertSeverity::Info => Severity::Info,
        }
    }
}

impl From<Severity> for AlertSeverity {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::Critical => AlertSeverity::Critical,
            Severity::Warning => AlertSeverity::Warning,
            Severity::Info => AlertSeverity::Info,
        }
    }
}

/// Where an alert stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum AlertState {
    /// Open, and nobody said they are on it.
    Firing,
    /// Open, and someone is on it: not notified again.
    Acknowledged,
    Resolved,
}

impl From<AlertState> for State {
    fn from(state: AlertState) -> Self {
        match state {
            AlertState::Firing => State::Firing,
            AlertState::Acknowledged => State::Acknowledged,
            AlertState::Resolved => State::Resolved,
        }
    }
}

impl AlertState {
    fn of(stored: &str) -> Self {
        match State::parse(stored) {
            Some(State::Acknowledged) => AlertState::Acknowledged,
            Some(State::Resolved) => AlertState::Resolved,
            _ => AlertState::Firing,
        }
    }
}

/// Who acknowledged an alert, when, and what they said.
#[derive(Object)]
pub struct Acknowledgement {
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub comment: Option<String>,
}

/// How an alert was resolved.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ResolvedBy {
    /// Its source resolved it.
    Source,
    /// A person resolved it (`user_id`), with a comment.
    Person,
    /// Its source did not raise it again within its resolve timeout.
    Timeout,
}

#[derive(Object)]
pub struct Resolution {
    pub by: ResolvedBy,
    /// The person, when `by` is `person`.
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub comment: Option<String>,
}

/// An alert occurrence as the API shows it.
#[derive(Object)]
pub struct AlertView {
    /// Newest first is id order.
    pub id: String,
    /// The plugin that raised it, or `api`.
    pub source: String,
    /// The source's identity for the alert.
    pub key: String,
    /// 1 for the first occurrence of the key; one more each time it fired again after resolving.
    pub occurrence: i32,
    /// The occurrence before this one.
    #[oai(skip_serializing_if_is_none)]
    pub previous_id: Option<String>,
    pub state: AlertState,
    pub severity: AlertSeverity,
    pub summary: String,
    pub labels: BTreeMap<String, String>,
    /// What the source attached.
    #[oai(skip_serializing_if_is_none)]
    pub details: Option<Value>,
    /// Events it was raised from (`GET /api/v1/events/{id}`).
    pub event_ids: Vec<String>,
    /// Pages that explain it.
    pub urls: Vec<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When its source last raised it.
    pub last_raised_at: chrono::DateTime<chrono::Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub acknowledged: Option<Acknowledgement>,
    #[oai(skip_serializing_if_is_none)]
    pub resolved: Option<Resolution>,
    /// Resolved automatically when not raised again for this long.
    #[oai(skip_serializing_if_is_none)]
    pub resolve_after_seconds: Option<i64>,
    /// When that happens unless it is raised again.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// True while a silence covers it: it is recorded and listed, not notified.
    pub silenced: bool,
    /// The silences covering it now.
    pub silenced_by: Vec<String>,
}

/// One change in an alert's life.
#[derive(Object)]
pub struct TransitionView {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `raised`, `updated`, `acknowledged` or `resolved`.
    pub kind: TransitionKind,
    /// A user id, the source's name, or `timeout`.
    pub actor: String,
    #[oai(skip_serializing_if_is_none)]
    pub comment: Option<String>,
    /// For updates: each changed field, `{"before": ..., "after": ...}`.
    #[oai(skip_serializing_if_is_none)]
    pub changes: Option<BTreeMap<String, Value>>,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum TransitionKind {
    Raised,
    Updated,
    Acknowledged,
    Resolved,
}

/// An alert with its history.
#[derive(Object)]
pub struct AlertDetail {
    #[oai(flatten)]
    pub alert: AlertView,
    /// Every transition, oldest first.
    pub history: Vec<TransitionView>,
    /// The occurrence after this one, if the key fired again.
    #[oai(skip_serializing_if_is_none)]
    pub next_id: Option<String>,
}

#[derive(Object)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// An alert raised from outside, by a script or a monitoring system.
#[derive(Object)]
pub struct RaiseAlert {
    /// Raising a key that is open updates it; one that was resolved opens a new occurrence.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub key: Text,
    pub severity: AlertSeverity,
    /// One line for people.
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x1c-\x1f]"))]
    pub summary: Text,
    /// The label `user` (a user id) makes the alert that person's: they and managers see it.
    #[oai(nullable, validator(max_properties = 32))]
    pub labels: Option<BTreeMap<String, LabelValue>>,
    /// Anything the receiver should see; kept as sent.
    #[oai(skip_serializing_if_is_none)]
    pub details: Option<Value>,
    /// Events it was raised from.
    #[oai(nullable, validator(max_items = 32))]
    pub event_ids: Option<Vec<EventRef>>,
    /// Pages that explain it.
    #[oai(nullable, validator(max_items = 32))]
    pub urls: Option<Vec<Link>>,
    /// Resolve it when not raised again for this long.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "2592000")))]
    pub resolve_after_seconds: Option<u32>,
}

/// An event id an alert links to.
pub type EventRef = BoundedText<1, 64>;
/// A label value.
pub type LabelValue = BoundedText<0, 1024>;
/// An http(s) link.
pub type Link = Pattern<LinkGrammar>;

/// The grammar of alert links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkGrammar;

impl Grammar for LinkGrammar {
    const NAME: &'static str = "Link";
    const PATTERN: &'static str = LINK_PATTERN;
    const MAX_LENGTH: usize = crate::alerts::model::MAX_LINK_BYTES;
    const DESCRIPTION: &'static str =
        "An http(s) URL of printable ASCII: no spaces, backslashes or square brackets (percent-encode them).";

    fn check(value: &str) -> bool {
        crate::alerts::model::valid_link(value)
    }
}

#[derive(Object)]
pub struct Acknowledge {
    /// What the person is doing about it.
    #[oai(nullable, validator(max_length = 4096))]
    pub comment: Option<Text>,
}

#[derive(Object)]
pub struct Resolve {
    /// Why it is resolved; required, since its source did not resolve it.
    #[oai(validator(min_length = 1, max_length = 4096, pattern = r"[^\s\x1c-\x1f]"))]
    pub comment: Text,
}

#[derive(ApiResponse)]
pub enum RaiseResponse {
    /// A new occurrence opened.
    #[oai(status = 201)]
    Opened(Json<AlertView>),
    /// The open occurrence of the key was updated (or raised again as it was).
    #[oai(status = 200)]
    Updated(Json<AlertView>),
}

impl From<AlertError> for ApiError {
    fn from(err: AlertError) -> Self {
        match err {
            AlertError::Invalid(detail) => ApiError::bad_request(detail),
            AlertError::NotFound(detail) => ApiError::not_found(detail),
            AlertError::Conflict(detail) => {
                ApiError::Conflict(Json(Problem::new(StatusCode::CONFLICT, "conflict", detail)))
            }
            AlertError::Forbidden(detail) => {
                ApiError::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)))
            }
            AlertError::Store(err) => ApiError::unavailable(err),
        }
    }
}

fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The view of a stored alert, with the silences covering it now.
pub fn view(found: alert::Model, active: &[(String, crate::alerts::matchers::Matchers)]) -> AlertView {
    let silenced_by = silences::silencing(active, &crate::alerts::model::matchable_labels(&found));
    let links = Links::of(&found.links);
    let acknowledged = match (&found.acknowledged_by, found.acknowledged_at) {
        (Some(by), Some(at)) => {
            Some(Acknowledgement { by: by.clone(), at: time(at), comment: found.ack_comment.clone() })
        }
        _ => None,
    };
    let resolved = found.resolved_at.map(|at| {
        let (by, user_id) = match found.resolved_by.as_deref() {
            Some("source") | None => (ResolvedBy::Source, None),
            Some("timeout") => (ResolvedBy::Timeout, None),
            Some(user) => (ResolvedBy::Person, Some(user.to_owned())),
        };
        Resolution { by, user_id, at: time(at), comment: found.resolve_comment.clone() }
    });
    AlertView {
        labels: labels_of(&found),
        state: AlertState::of(&found.state),
        severity: Severity::parse(&found.severity).unwrap_or(Severity::Warning).into(),
        event_ids: links.event_ids,
        urls: links.urls,
        started_at: time(found.started_at),
        updated_at: time(found.updated_at),
        last_raised_at: time(found.last_raised_at),
        resolve_after_seconds: found.resolve_after_ms.map(|ms| ms / 1000),
        expires_at: found.expires_at.map(time),
        silenced: !silenced_by.is_empty(),
        silenced_by,
        acknowledged,
        resolved,
        id: found.id,
        source: found.source,
        key: found.key,
        occurrence: found.occurrence,
        previous_id: found.previous_id,
        summary: found.summary,
        details: found.details,
    }
}

fn transition(row: alert_transition::Model) -> TransitionView {
    let kind = match row.kind.as_str() {
        "updated" => TransitionKind::Updated,
        "acknowledged" => TransitionKind::Acknowledged,
        "resolved" => TransitionKind::Resolved,
        _ => TransitionKind::Raised,
    };
    TransitionView {
        at: time(row.at),
        kind,
        actor: row.actor,
        comment: row.comment,
        changes: row.changes.and_then(|changes| serde_json::from_value(changes).ok()),
    }
}

pub struct AlertsApi {
    pub state: AppState,
}

impl AlertsApi {
    fn db(&self) -> &DatabaseConnection {
        self.state.runtime.db()
    }

    fn reader(&self) -> &DatabaseConnection {
        self.state.runtime.reader()
    }

    async fn detail(&self, principal: &Principal, id: &str) -> Result<AlertDetail, ApiError> {
        let found = query::get(self.reader(), principal, id).await?;
        let history = query::history(self.reader(), &found.id).await?.into_iter().map(transition).collect();
        let next_id = query::next_occurrence(self.reader(), &found).await?;
        let active = silences::active(self.reader(), &principal.org_id, now_ms()).await?;
        Ok(AlertDetail { alert: view(found, &active), history, next_id })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "AlertTag::Alerts")]
impl AlertsApi {
    /// Alerts of the caller's org, newest first. Developers see the alerts
    /// about them (label `user`); managers and above see all of the org's.
    #[oai(path = "/alerts", method = "get", operation_id = "listAlerts")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only alerts in these states (repeatable).
        state: Query<Vec<AlertState>>,
        /// Only alerts of these severities (repeatable).
        severity: Query<Vec<AlertSeverity>>,
        /// Only alerts raised by this plugin, or `api`.
        source: Query<Option<String>>,
        /// `name=value`: only alerts with this label (repeatable; every one must match).
        label: Query<Vec<LabelFilter>>,
        /// Only alerts still open at or after this time (RFC 3339).
        since: Query<Option<chrono::DateTime<chrono::FixedOffset>>>,
        /// Only alerts that started before this time (RFC 3339).
        until: Query<Option<chrono::DateTime<chrono::FixedOffset>>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<AlertPage>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let filter = query::Filter {
            states: state.0.into_iter().map(State::from).collect(),
            severities: severity.0.into_iter().map(Severity::from).collect(),
            source: source.0,
            labels: label.0.into_iter().map(|filter| (filter.label, filter.value)).collect(),
            since: since.0.map(|at| at.timestamp_millis()),
            until: until.0.map(|at| at.timestamp_millis()),
        };
        let before = cursor.0.map(|cursor| cursor.0);
        let mut rows =
            query::list(self.reader(), &principal, &filter, before.as_deref(), u64::from(limit.0) + 1).await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |found| &found.id);
        let active = silences::active(self.reader(), &principal.org_id, now_ms()).await?;
        Ok(Json(AlertPage { items: rows.into_iter().map(|found| view(found, &active)).collect(), next_cursor }))
    }

    /// One alert with its history and links, if the caller may see it.
    #[oai(path = "/alerts/:id", method = "get", operation_id = "getAlert")]
    async fn get(&self, auth: BearerAuth, id: Path<String>) -> Result<Json<AlertDetail>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        Ok(Json(self.detail(&principal, &id.0).await?))
    }

    /// Raises an alert from outside (source `api`), or updates the open one
    /// with the same key. Notifications are queued with it. Manager or above.
    #[oai(path = "/alerts", method = "post", operation_id = "raiseAlert")]
    async fn raise(&self, auth: BearerAuth, body: Json<RaiseAlert>) -> Result<RaiseResponse, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let body = body.0;
        let new = NewAlert {
            key: body.key.0,
            severity: body.severity.into(),
            summary: body.summary.0,
            labels: body.labels.unwrap_or_default().into_iter().map(|(name, value)| (name, value.0)).collect(),
            details: body.details,
            links: Links {
                event_ids: body.event_ids.unwrap_or_default().into_iter().map(|id| id.0).collect(),
                urls: body.urls.unwrap_or_default().into_iter().map(|url| url.0).collect(),
            },
            resolve_after_ms: body.resolve_after_seconds.map(|seconds| i64::from(seconds) * 1000),
        };
        let txn = self.db().begin().await?;
        let (raised, outcome) = lifecycle::raise(&txn, &principal.org_id, API_SOURCE, &new, now_ms()).await?;
        audit::record(&txn, Entry::by(&principal, "alert.raise", &format!("alert/{}", raised.id))).await?;
        txn.commit().await?;
        self.state.bus.wake().appended(News::org(&principal.org_id));
        let active = silences::active(self.db(), &principal.org_id, now_ms()).await?;
        Ok(match outcome {
            Raised::Opened => RaiseResponse::Opened(Json(view(raised, &active))),
            Raised::Updated | Raised::Unchanged => RaiseResponse::Updated(Json(view(raised, &active))),
        })
    }

    /// Says someone is on a firing alert: it is not notified again, and
    /// channels that were told it fired hear who took it. Anyone who may see
    /// the alert may acknowledge it.
    #[oai(path = "/alerts/:id/ack", method = "post", operation_id = "acknowledgeAlert")]
    async fn acknowledge(
        &self,
        auth: BearerAuth,
        id: Path<String>,
        body: Json<Acknowledge>,
    ) -> Result<Json<AlertDetail>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let found = query::get(self.db(), &principal, &id.0).await?;
        let txn = self.db().begin().await?;
        let comment = body.0.comment.map(String::from);
        let acked = lifecycle::acknowledge(&txn, found, &principal.user_id, comment, now_ms()).await?;
        audit::record(&txn, Entry::by(&principal, "alert.acknowledge", &format!("alert/{}", acked.id))).await?;
        txn.commit().await?;
        self.state.bus.wake().appended(News::org(&principal.org_id));
        Ok(Json(self.detail(&principal, &id.0).await?))
    }

    /// Resolves an open alert by hand, with a comment. Anyone who may see the
    /// alert may resolve it; if its source raises the key again, a new
    /// occurrence opens.
    #[oai(path = "/alerts/:id/resolve", method = "post", operation_id = "resolveAlert")]
    async fn resolve(
        &self,
        auth: BearerAuth,
        id: Path<String>,
        body: Json<Resolve>,
    ) -> Result<Json<AlertDetail>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let found = query::get(self.db(), &principal, &id.0).await?;
        let txn = self.db().begin().await?;
        let resolved =
            lifecycle::resolve(&txn, found, Actor::User(&principal.user_id), Some(body.0.comment.0), now_ms()).await?;
        audit::record(&txn, Entry::by(&principal, "alert.resolve", &format!("alert/{}", resolved.id))).await?;
        txn.commit().await?;
        self.state.bus.wake().appended(News::org(&principal.org_id));
        Ok(Json(self.detail(&principal, &id.0).await?))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
