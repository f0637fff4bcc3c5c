//! `/api/v1/alerts/channels`: where an org's alerts are notified, which ones,
//! and how each channel is doing. Admin or above.

use super::AppState;
use super::alerts::AlertSeverity;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::{Cursor, Grammar, Pattern, Text};
use super::problem::Problem;
use super::silences::{MatcherBody, matcher_views};
use crate::alerts::channels::{self, ChannelSpec, DEFAULT_REPEAT_SECONDS, Kind};
use crate::alerts::matchers::Matcher;
use crate::alerts::{AlertError, Severity};
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::store::entities::alert_channel;
use crate::store::now_ms;
use poem::http::StatusCode;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags, Union};
use sea_orm::TransactionTrait;

#[derive(Tags)]
enum ChannelTag {
    /// Where alerts are notified: signed webhooks, Slack, Alertmanager.
    AlertChannels,
}

/// The grammar of channel targets: an http(s) URL whose host is a name (its
/// last label not numeric) or an IPv4 address, with an optional port and a
/// path of printable ASCII (no spaces, `#`, `\\`, `[` or `]`).
/// Every string of it is a URL the server parses; the server checks both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGrammar;

const TARGET_PATTERN: &str = concat!(
    r"^https?://",
    r"(([a-zA-Z0-9-]+\.)*[a-zA-Z][a-zA-Z0-9-]*",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r##"(/[!"$-Z^-~]*)?$"##
);

static TARGET: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(TARGET_PATTERN).expect("the target pattern compiles"));

impl Grammar for TargetGrammar {
    const NAME: &'static str = "ChannelUrl";
    const PATTERN: &'static str = TARGET_PATTERN;
    const MAX_LENGTH: usize = 2048;
    const DESCRIPTION: &'static str = "An http(s) URL: a host name or IPv4 address, an optional port and path, no \
         credentials or fragment. Loopback, private and link-local targets are refused unless the operator \
         allows them (`alerts.allow_private_targets`).";

    fn check(value: &str) -> bool {
        // `$` also matches before a final newline in the document's (Python) regex dialect.
        TARGET.is_match(value.strip_suffix('\n').unwrap_or(value)) && reqwest::Url::parse(value).is_ok()
    }
}

/// What a channel notifies about and how often it repeats itself.
#[derive(Object, Clone, Debug)]
pub struct ChannelFilter {
    /// Only alerts matching every matcher; all alerts when absent or empty.
    #[oai(nullable, validator(max_items = 32))]
    pub matchers: Option<Vec<MatcherBody>>,
    /// Only alerts at least this urgent; `info` (all) when absent.
    #[oai(nullable)]
    pub min_severity: Option<AlertSeverity>,
    /// An alert still firing and unacknowledged is notified again after this
    /// long; 0 never; 4 hours when absent.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2592000")))]
    pub repeat_interval_seconds: Option<u32>,
}

/// A generic webhook: JSON, signed with HMAC-SHA256 of the body in
/// `X-DevPulse-Signature-256: sha256=<hex>` (as GitHub signs its webhooks),
/// the notification id in `X-DevPulse-Notification`.
#[derive(Object, Clone, Debug)]
pub struct WebhookChannel {
    pub url: Pattern<TargetGrammar>,
    /// The HMAC key; never shown again.
    #[oai(validator(min_length = 16, max_length = 256))]
    pub secret: Text,
    #[oai(flatten)]
    pub filter: ChannelFilter,
}

/// A Slack incoming webhook URL.
#[derive(Object, Clone, Debug)]
pub struct SlackChannel {
    pub url: Pattern<TargetGrammar>,
    #[oai(flatten)]
    pub filter: ChannelFilter,
}

/// A Prometheus Alertmanager: its base URL (alerts go to `/api/v2/alerts`).
/// Open alerts are re-sent so it does not time them out; resolving sends `endsAt`.
#[derive(Object, Clone, Debug)]
pub struct AlertmanagerChannel {
    pub url: Pattern<TargetGrammar>,
    #[oai(flatten)]
    pub filter: ChannelFilter,
}

/// A channel definition, by `type`.
#[derive(Union, Clone, Debug)]
#[oai(discriminator_name = "type")]
pub enum ChannelBody {
    #[oai(mapping = "webhook")]
    Webhook(WebhookChannel),
    #[oai(mapping = "slack")]
    Slack(SlackChannel),
    #[oai(mapping = "alertmanager")]
    Alertmanager(AlertmanagerChannel),
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ChannelType {
    Webhook,
    Slack,
    Alertmanager,
}

/// A channel as the API shows it: its definition (never its secret) and how
/// its deliveries went.
#[derive(Object)]
pub struct ChannelView {
    pub name: String,
    #[oai(rename = "type")]
    pub kind: ChannelType,
    pub url: String,
    /// True for webhooks: they sign with a stored secret.
    pub has_secret: bool,
    pub matchers: Vec<MatcherBody>,
    pub min_severity: AlertSeverity,
    /// 0: never repeated.
    pub repeat_interval_seconds: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub last_success_at: Option<chrono::DateTime<chrono::Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_failure_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last failure, for an admin to act on.
    #[oai(skip_serializing_if_is_none)]
    pub last_error: Option<String>,
    /// Notifications delivered since the channel was created.
    pub delivered: i64,
    /// Notifications given up on after retrying for `alerts.give_up_after_hours`.
    pub failed: i64,
    /// Notifications waiting to be sent or retried.
    pub pending: u64,
}

#[derive(Object)]
pub struct ChannelPage {
    pub items: Vec<ChannelView>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// What a test notification met.
#[derive(Object)]
pub struct TestResult {
    /// The test notification's id, as the receiver saw it.
    pub notification_id: String,
    pub delivered: bool,
    /// The receiver's HTTP status, if it answered.
    #[oai(skip_serializing_if_is_none)]
    pub status: Option<u16>,
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

#[derive(ApiResponse)]
enum Put {
    #[oai(status = 201)]
    Created(Json<ChannelView>),
    #[oai(status = 200)]
    Replaced(Json<ChannelView>),
    /// The operator's network policy refuses the target (`urn:devpulse:problem:forbidden-target`).
    #[oai(status = 403, content_type = "application/problem+json")]
    ForbiddenTarget(Json<Problem>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// The channel and the notifications it still had to send are gone.
    #[oai(status = 204)]
    Deleted,
}

fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn view(channel: alert_channel::Model, pending: u64) -> ChannelView {
    let kind = match Kind::of(&channel) {
        Kind::Webhook => ChannelType::Webhook,
        Kind::Slack => ChannelType::Slack,
        Kind::Alertmanager => ChannelType::Alertmanager,
    };
    ChannelView {
        kind,
        has_secret: channel.secret.is_some(),
        matchers: matcher_views(&channel.matchers),
        min_severity: Severity::parse(&channel.min_severity).unwrap_or(Severity::Info).into(),
        repeat_interval_seconds: channel.repeat_interval_s,
        created_at: time(channel.created_at),
        updated_at: time(channel.updated_at),
        last_success_at: channel.last_success_at.map(time),
        last_failure_at: channel.last_failure_at.map(time),
        last_error: channel.last_error,
        delivered: channel.delivered,
        failed: channel.failed,
        pending,
        name: channel.name,
        url: channel.url,
    }
}

fn spec(body: ChannelBody) -> ChannelSpec {
    let (kind, url, secret, filter) = match body {
        ChannelBody::Webhook(c) => (Kind::Webhook, c.url.0, Some(c.secret.0), c.filter),
        ChannelBody::Slack(c) => (Kind::Slack, c.url.0, None, c.filter),
        ChannelBody::Alertmanager(c) => (Kind::Alertmanager, c.url.0, None, c.filter),
    };
    ChannelSpec {
        kind,
        url,
        secret,
        matchers: filter.matchers.unwrap_or_default().into_iter().map(Matcher::from).collect(),
        min_severity: filter.min_severity.map_or(Severity::Info, Severity::from),
        repeat_interval_s: filter.repeat_interval_seconds.map_or(DEFAULT_REPEAT_SECONDS, i64::from),
    }
}

pub struct AlertChannelsApi {
    pub state: AppState,
}

impl AlertChannelsApi {
    async fn found(&self, org: &str, name: &str) -> Result<alert_channel::Model, ApiError> {
        channels::get(self.state.runtime.db(), org, name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no alert channel {name} in this org")))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ChannelTag::AlertChannels")]
impl AlertChannelsApi {
    /// The org's channels by name, with their delivery status.
    #[oai(path = "/alerts/channels", method = "get", operation_id = "listAlertChannels")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<ChannelPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let db = self.state.runtime.db();
        let after = cursor.0.map(|cursor| cursor.0);
        let mut rows = channels::list(db, &principal.org_id, after.as_deref(), u64::from(limit.0) + 1).await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |row| &row.name);
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let pending = channels::pending(db, &row.id).await?;
            items.push(view(row, pending));
        }
        Ok(Json(ChannelPage { items, next_cursor }))
    }

    /// One channel with its delivery status.
    #[oai(path = "/alerts/channels/:name", method = "get", operation_id = "getAlertChannel")]
    async fn get(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = "^[a-z0-9_-]{1,64}$"))] name: Path<String>,
    ) -> Result<Json<ChannelView>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let found = self.found(&principal.org_id, &name.0).await?;
        let pending = channels::pending(self.state.runtime.db(), &found.id).await?;
        Ok(Json(view(found, pending)))
    }

    /// Creates or replaces a channel. From now on, alerts it accepts are
    /// notified there as they fire, repeat, are acknowledged and resolve.
    #[oai(path = "/alerts/channels/:name", method = "put", operation_id = "putAlertChannel")]
    async fn put(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = "^[a-z0-9_-]{1,64}$"))] name: Path<String>,
        body: Json<ChannelBody>,
    ) -> Result<Put, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let allow_private = self.state.notifier.config().allow_private_targets;
        let db = self.state.runtime.db();
        let txn = db.begin().await?;
        let (channel, created) =
            match channels::put(&txn, &principal.org_id, &name.0, spec(body.0), allow_private, now_ms()).await {
                Ok(done) => done,
                Err(AlertError::Forbidden(detail)) => {
                    return Ok(Put::ForbiddenTarget(Json(Problem::new(
                        StatusCode::FORBIDDEN,
                        "forbidden-target",
                        detail,
                    ))));
                }
                Err(err) => return Err(err.into()),
            };
        let action = if created { "alert-channel.create" } else { "alert-channel.replace" };
        audit::record(&txn, Entry::by(&principal, action, &format!("alert-channel/{}", channel.name))).await?;
        txn.commit().await?;
        let pending = channels::pending(db, &channel.id).await?;
        Ok(if created {
            Put::Created(Json(view(channel, pending)))
        } else {
            Put::Replaced(Json(view(channel, pending)))
        })
    }

    /// Deletes a channel and the notifications it still had to send.
    #[oai(path = "/alerts/channels/:name", method = "delete", operation_id = "deleteAlertChannel")]
    async fn delete(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = "^[a-z0-9_-]{1,64}$"))] name: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let db = self.state.runtime.db();
        let txn = db.begin().await?;
        if !channels::delete(&txn, &principal.org_id, &name.0).await? {
            return Err(ApiError::not_found(format!("no alert channel {} in this org", name.0)));
        }
        audit::record(&txn, Entry::by(&principal, "alert-channel.delete", &format!("alert-channel/{}", name.0)))
            .await?;
        txn.commit().await?;
        Ok(Deleted::Deleted)
    }

    /// Sends a test notification now and answers with what the receiver
    /// said; the outcome is also recorded on the channel.
    #[oai(path = "/alerts/channels/:name/test", method = "post", operation_id = "testAlertChannel")]
    async fn test(
        &self,
        auth: BearerAuth,
        #[oai(validator(pattern = "^[a-z0-9_-]{1,64}$"))] name: Path<String>,
    ) -> Result<Json<TestResult>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let found = self.found(&principal.org_id, &name.0).await?;
        let (notification_id, attempt) = self.state.notifier.test(&found, &principal.user_id).await?;
        Ok(Json(TestResult {
            notification_id,
            delivered: attempt.delivered(),
            status: attempt.status,
            error: attempt.error,
        }))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}

#[cfg(test)]
mod tests {
    /// Path names (the validators above) and stored names follow one rule.
    #[test]
    fn the_name_pattern_is_the_stored_rule() {
        let pattern = regex::Regex::new("^[a-z0-9_-]{1,64}$").unwrap();
        for name in ["a", "team-1", "x_y", "", "A", "a b", &"a".repeat(65)] {
            assert_eq!(pattern.is_match(name), crate::alerts::channels::valid_name(name), "{name}");
        }
    }

    /// Every target the grammar takes parses as a URL, and the obvious others are refused.
    #[test]
    fn channel_targets_follow_the_grammar() {
        use super::{Grammar, TargetGrammar};
        for good in
            ["http://a", "https://hooks.slack.com/services/T/B/X", "http://10.0.0.1:9093", "http://a.b-c:65535/x?y=1"]
        {
            assert!(TargetGrammar::check(good), "{good}");
        }
        for bad in [
            "ftp://a",
            "http://",
            "http://1",
            "http://a.1",
            "http://u:p@a",
            "http://a:0",
            "http://a:65536",
            "http://[::1]/",
            "http://a b",
        ] {
            assert!(!TargetGrammar::check(bad), "{bad}");
        }
    }
}
