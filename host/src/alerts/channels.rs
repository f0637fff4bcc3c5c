//! Notification channels: where an org's alerts go, which ones, and how often
//! an alert still firing is repeated. Targets are checked against the
//! operator's network policy here and again when sending (`targets`).

use super::matchers::{Matcher, Matchers};
use super::model::{AlertError, Severity, matchable_labels};
use super::targets;
use crate::store::entities::{alert, alert_channel, notification};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

/// Repeat interval when a channel names none: 4 hours.
pub const DEFAULT_REPEAT_SECONDS: i64 = 4 * 3600;

/// How a channel delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// JSON, signed with HMAC-SHA256 in `X-DevPulse-Signature-256` as GitHub signs webhooks.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// Prometheus Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Webhook, Kind::Slack, Kind::Alertmanager];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Alertmanager => "alertmanager",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn of(channel: &alert_channel::Model) -> Kind {
        Kind::parse(&channel.kind).unwrap_or(Kind::Webhook)
    }
}

/// A channel as an admin defines it.
pub struct ChannelSpec {
    pub kind: Kind,
    pub url: String,
    /// Webhooks only; `None` keeps the stored one.
    pub secret: Option<String>,
    pub matchers: Vec<Matcher>,
    pub min_severity: Severity,
    pub repeat_interval_s: i64,
}

/// Channel names: what URLs and the audit log show.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
}

/// Creates or replaces a channel; true when it was created.
pub async fn put(
    db: &impl ConnectionTrait,
    org: &str,
    name: &str,
    spec: ChannelSpec,
    allow_private: bool,
    now: i64,
) -> Result<(alert_channel::Model, bool), AlertError> {
    if !valid_name(name) {
        return Err(AlertError::Invalid("channel names are 1 to 64 of a-z, 0-9, '-' and '_'".into()));
    }
    targets::check_url(&spec.url, allow_private).map_err(|err| match err {
        targets::TargetError::ForbiddenAddress(_) | targets::TargetError::LocalName(_) => {
            AlertError::Forbidden(format!("{err}: the operator does not allow private targets"))
        }
        other => AlertError::Invalid(other.to_string()),
    })?;
    let matchers = Matchers::compile(spec.matchers).map_err(|err| AlertError::Invalid(err.to_string()))?;
    if !(0..=30 * 86_400).contains(&spec.repeat_interval_s) {
        return Err(AlertError::Invalid("repeat_interval_seconds is 0 (never) to 30 days".into()));
    }
    let existing = get(db, org, name).await?;
    let secret = match (spec.kind, spec.secret, existing.as_ref().and_then(|channel| channel.secret.clone())) {
        (Kind::Webhook, Some(secret), _) if (16..=256).contains(&secret.len()) => Some(secret),
        (Kind::Webhook, Some(_), _) => return Err(AlertError::Invalid("webhook secrets are 16 to 256 bytes".into())),
        (Kind::Webhook, None, Some(kept)) => Some(kept),
        (Kind::Webhook, None, None) => {
            return Err(AlertError::Invalid("a webhook channel needs a secret to sign with".into()));
        }
        (_, Some(_), _) => return Err(AlertError::Invalid("only webhook channels take a secret".into())),
        (_, None, _) => None,
    };
    let matchers = serde_json::to_value(matchers.list()).map_err(crate::store::StoreError::from)?;
    match existing {
        Some(existing) => {
            let mut row: alert_channel::ActiveModel = existing.into();
            row.kind = Set(spec.kind.as_str().to_owned());
            row.url = Set(spec.url);
            row.secret = Set(secret);
            row.matchers = Set(matchers);
            row.min_severity = Set(spec.min_severity.as_str().to_owned());
            row.repeat_interval_s = Set(spec.repeat_interval_s);
            row.updated_at = Set(now);
            Ok((row.update(db).await?, false))
        }
        None => {
            let row = alert_channel::ActiveModel {
                id: Set(ulid::Ulid::new().to_string()),
                org: Set(org.to_owned()),
                name: Set(name.to_owned()),
                kind: Set(spec.kind.as_str().to_owned()),
                url: Set(spec.url),
                secret: Set(secret),
                matchers: Set(matchers),
                min_severity: Set(spec.min_severity.as_str().to_owned()),
                repeat_interval_s: Set(spec.repeat_interval_s),
                created_at: Set(now),
                updated_at: Set(now),
                last_success_at: Set(None),
                last_failure_at: Set(None),
                last_error: Set(None),
                delivered: Set(0),
                failed: Set(0),
            };
            Ok((row.insert(db).await?, true))
        }
    }
}

/// Deletes a channel and what it still had to send; false when there was none.
pub async fn delete(db: &impl ConnectionTrait, org: &str, name: &str) -> Result<bool, AlertError> {
    let Some(channel) = get(db, org, name).await? else { return Ok(false) };
    notification::Entity::delete_many()
        .filter(notification::Column::ChannelId.eq(channel.id.as_str()))
        .exec(db)
        .await?;
    alert_channel::Entity::delete_by_id(channel.id).exec(db).await?;
    Ok(true)
}

pub async fn get(db: &impl ConnectionTrait, org: &str, name: &str) -> Result<Option<alert_channel::Model>, AlertError> {
    Ok(alert_channel::Entity::find()
        .filter(alert_channel::Column::Org.eq(org))
        .filter(alert_channel::Column::Name.eq(name))
        .one(db)
        .await?)
}

pub async fn by_id(db: &impl ConnectionTrait, id: &str) -> Result<Option<alert_channel::Model>, AlertError> {
    Ok(alert_channel::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// The org's channels in name order, `limit` of them after `after`.
pub async fn list(
    db: &impl ConnectionTrait,
    org: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<alert_channel::Model>, AlertError> {
    let mut query = alert_channel::Entity::find().filter(alert_channel::Column::Org.eq(org));
    if let Some(after) = after {
        query = query.filter(alert_channel::Column::Name.gt(after));
    }
    Ok(query.order_by_asc(alert_channel::Column::Name).limit(limit).all(db).await?)
}

/// Every channel of an org, for routing a transition.
pub async fn of_org(db: &impl ConnectionTrait, org: &str) -> Result<Vec<alert_channel::Model>, AlertError> {
    Ok(alert_channel::Entity::find().filter(alert_channel::Column::Org.eq(org)).all(db).await?)
}

/// Every channel with a repeat interval or an Alertmanager to keep informed.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<alert_channel::Model>, AlertError> {
    Ok(alert_channel::Entity::find().all(db).await?)
}

/// The channel's filter.
pub fn filter(channel: &alert_channel::Model) -> Matchers {
    serde_json::from_value::<Vec<Matcher>>(channel.matchers.clone())
        .ok()
        .and_then(|list| Matchers::compile(list).ok())
        .unwrap_or_default()
}

/// True when the channel wants to hear about `alert`.
pub fn accepts(channel: &alert_channel::Model, alert: &alert::Model) -> bool {
    let minimum = Severity::parse(&channel.min_severity).unwrap_or(Severity::Info);
    let severity = Severity::parse(&alert.severity).unwrap_or(Severity::Warning);
    severity.at_least(minimum) && filter(channel).matches(&matchable_labels(alert))
}

/// Notes a delivery outcome on the channel, where admins look for failures.
pub async fn record_outcome(
    db: &impl ConnectionTrait,
    channel_id: &str,
    outcome: Result<(), &str>,
    gave_up: bool,
    now: i64,
) -> Result<(), AlertError> {
    let mut update = alert_channel::Entity::update_many().filter(alert_channel::Column::Id.eq(channel_id));
    update = match outcome {
        Ok(()) => update
            .col_expr(alert_channel::Column::LastSuccessAt, Expr::value(now))
            .col_expr(alert_channel::Column::Delivered, Expr::col(alert_channel::Column::Delivered).add(1)),
        Err(error) => update
            .col_expr(alert_channel::Column::LastFailureAt, Expr::value(now))
            .col_expr(alert_channel::Column::LastError, Expr::value(error.chars().take(1024).collect::<String>())),
    };
    if gave_up {
        update = update.col_expr(alert_channel::Column::Failed, Expr::col(alert_channel::Column::Failed).add(1));
    }
    update.exec(db).await?;
    Ok(())
}

/// Notifications the channel still has to send.
pub async fn pending(db: &impl ConnectionTrait, channel_id: &str) -> Result<u64, AlertError> {
    Ok(notification::Entity::find()
        .filter(notification::Column::ChannelId.eq(channel_id))
        .filter(notification::Column::State.eq(super::notify::outbox::PENDING))
        .count(db)
        .await?)
}
