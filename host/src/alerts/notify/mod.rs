//! Sending notifications: the outbox drained at least once, repeats of alerts
//! still firing, Alertmanager kept informed, resolve timeouts applied. Every
//! replica runs this; claims in the outbox and unique dedupe keys keep them
//! from sending one notification twice in the normal case (a replica that dies
//! mid-send may leave one to be sent again: receivers dedupe on its id).

pub mod outbox;
pub mod payloads;
mod repeats;

use super::channels::{self, Kind};
use super::lifecycle::{self, Actor};
use super::model::{AlertError, Snapshot};
use super::targets;
use crate::bus::wake::{News, Wake};
use crate::config::AlertsConfig;
use crate::store::entities::{alert, alert_channel, notification};
use crate::store::now_ms;
use crate::telemetry::Telemetry;
use futures::StreamExt;
use payloads::{Message, Outgoing};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use std::time::Duration;

/// How often the outbox is polled for due notifications.
const POLL: Duration = Duration::from_millis(200);
/// Notifications sent at once.
const CONCURRENCY: usize = 16;
/// Longest wait between two attempts at one notification.
const MAX_RETRY_MS: i64 = 10 * 60 * 1000;

/// What a channel answered.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Sends notifications for every org. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    db: DatabaseConnection,
    client: reqwest::Client,
    config: AlertsConfig,
    telemetry: Telemetry,
    /// Told when a timeout resolves an alert: the transition is in the log.
    wake: Wake,
}

impl Notifier {
    pub fn new(
        db: DatabaseConnection,
        config: AlertsConfig,
        telemetry: Telemetry,
        wake: Wake,
    ) -> Result<Self, AlertError> {
        let timeout = Duration::from_secs(config.send_timeout_seconds);
        let client = targets::client(config.allow_private_targets, timeout)
            .map_err(|err| AlertError::Invalid(err.to_string()))?;
        Ok(Notifier { db, client, config, telemetry, wake })
    }

    pub fn config(&self) -> &AlertsConfig {
        &self.config
    }

    /// Runs until the task is aborted.
    pub async fn run(self) {
        let mut last_scan = std::time::Instant::now() - Duration::from_secs(3600);
        let mut last_keepalive = last_scan;
        loop {
            if let Err(err) = self.drain().await {
                tracing::warn!("sending notifications failed: {err}");
            }
            if last_scan.elapsed() >= Duration::from_secs(self.config.scan_seconds) {
                last_scan = std::time::Instant::now();
                if let Err(err) = self.scan().await {
                    tracing::warn!("checking alert timeouts and repeats failed: {err}");
                }
            }
            if last_keepalive.elapsed() >= Duration::from_secs(self.config.alertmanager_resend_seconds) {
                last_keepalive = std::time::Instant::now();
                if let Err(err) = repeats::keep_alertmanagers_informed(&self).await {
                    tracing::warn!("re-sending alerts to Alertmanager failed: {err}");
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resolve timeouts, repeats, and the gauges.
    async fn scan(&self) -> Result<(), AlertError> {
        self.resolve_timed_out().await?;
        repeats::queue_repeats(&self.db).await?;
        self.refresh_gauges().await
    }

    /// Sends every due notification, several at once.
    async fn drain(&self) -> Result<(), AlertError> {
        loop {
            let now = now_ms();
            let due = outbox::due(&self.db, now, 64).await?;
            if due.is_empty() {
                return Ok(());
            }
            let hold = now + 2 * self.config.send_timeout_seconds as i64 * 1000;
            let results: Vec<Result<(), AlertError>> = futures::stream::iter(due)
                .map(|found| async move {
                    if outbox::claim(&self.db, &found, now, hold).await? {
                        self.deliver(&found).await?;
                    }
                    Ok(())
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for result in results {
                result?;
            }
        }
    }

    /// One attempt at a claimed notification, and its outcome recorded.
    async fn deliver(&self, found: &notification::Model) -> Result<(), AlertError> {
        let Some(channel) = channels::by_id(&self.db, &found.channel_id).await? else { return Ok(()) };
        let snapshot: Snapshot =
            serde_json::from_value(found.payload.clone()).map_err(crate::store::StoreError::from)?;
        let message = self.message(&found.id, &found.reason, &snapshot, found.created_at);
        let attempt = self.send(&channel, payloads::outgoing(&channel, &message)).await;
        let now = now_ms();
        let kind = Kind::of(&channel).as_str();
        let give_up_at = found.created_at + self.config.give_up_after_hours as i64 * 3_600_000;
        let retry_at = now + self.backoff_ms(found.attempts + 1);
        let txn = self.db.begin().await?;
        match &attempt.error {
            None => {
                outbox::settle(&txn, found, Ok(()), None, now).await?;
                channels::record_outcome(&txn, &channel.id, Ok(()), false, now).await?;
                self.telemetry.notification(kind, "delivered");
            }
            Some(error) if retry_at < give_up_at => {
                outbox::settle(&txn, found, Err(error), Some(retry_at), now).await?;
                channels::record_outcome(&txn, &channel.id, Err(error), false, now).await?;
                self.telemetry.notification(kind, "retried");
                tracing::info!(
                    channel = channel.name,
                    org = channel.org,
                    notification = found.id,
                    "notification failed, will retry: {error}"
                );
            }
            Some(error) => {
                outbox::settle(&txn, found, Err(error), None, now).await?;
                channels::record_outcome(&txn, &channel.id, Err(error), true, now).await?;
                self.telemetry.notification(kind, "failed");
                tracing::warn!(
                    channel = channel.name,
                    org = channel.org,
                    notification = found.id,
                    "notification given up: {error}"
                );
            }
        }
        txn.commit().await?;
        Ok(())
    }

    fn backoff_ms(&self, attempts: i32) -> i64 {
        let first = self.config.retry_seconds as i64 * 1000;
        first.saturating_mul(1_i64 << (attempts.clamp(1, 20) - 1)).min(MAX_RETRY_MS)
    }

    fn message<'a>(&'a self, id: &'a str, reason: &'a str, alert: &'a Snapshot, created_at: i64) -> Message<'a> {
        Message {
            id,
            reason,
            alert,
            created_at,
            public_url: &self.config.public_url,
            alertmanager_ttl_ms: 5 * self.config.alertmanager_resend_seconds as i64 * 1000,
        }
    }

    /// Sends one request; a 2xx answer is a delivery. The target is checked
    /// against the network policy again: names are checked by the resolver,
    /// but an address in the URL never reaches it.
    async fn send(&self, channel: &alert_channel::Model, outgoing: Outgoing) -> Attempt {
        if let Err(err) = targets::check_url(&outgoing.url, self.config.allow_private_targets) {
            return Attempt { status: None, error: Some(err.to_string()) };
        }
        let mut request = self.client.post(&outgoing.url).header("content-type", "application/json");
        for (name, value) in outgoing.headers {
            request = request.header(name, value);
        }
        match request.body(outgoing.body).send().await {
            Ok(response) if response.status().is_success() => {
                Attempt { status: Some(response.status().as_u16()), error: None }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let text: String = response.text().await.unwrap_or_default().chars().take(200).collect();
                Attempt { status: Some(status), error: Some(format!("{} answered {status}: {text}", channel.kind)) }
            }
            Err(err) => Attempt { status: None, error: Some(describe(&err)) },
        }
    }

    /// Sends a test notification to a channel now, outside the outbox, and
    /// records the outcome on the channel.
    pub async fn test(&self, channel: &alert_channel::Model, by: &str) -> Result<(String, Attempt), AlertError> {
        let now = now_ms();
        let id = ulid::Ulid::new().to_string();
        let when = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
        let snapshot = Snapshot {
            id: format!("test-{id}"),
            source: "devpulse".into(),
            key: "channel-test".into(),
            occurrence: 1,
            state: super::State::Firing,
            severity: super::Severity::Info,
            summary: format!("Test notification for channel {}", channel.name),
            labels: [("requested_by".to_owned(), by.to_owned())].into(),
            details: None,
            links: Default::default(),
            started_at: when,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            comment: None,
        };
        let message = self.message(&id, "test", &snapshot, now);
        let attempt = self.send(channel, payloads::outgoing(channel, &message)).await;
        let outcome = attempt.error.as_deref().map_or(Ok(()), Err);
        channels::record_outcome(&self.db, &channel.id, outcome, false, now_ms()).await?;
        Ok((id, attempt))
    }

    /// Resolves alerts nobody raised again within their timeout.
    async fn resolve_timed_out(&self) -> Result<(), AlertError> {
        loop {
            let now = now_ms();
            let due = lifecycle::timed_out(&self.db, now, 100).await?;
            if due.is_empty() {
                return Ok(());
            }
            for found in due {
                let news = News::org(&found.org);
                let txn = self.db.begin().await?;
                match lifecycle::resolve(&txn, found, Actor::Timeout, None, now).await {
                    Ok(_) => {
                        txn.commit().await?;
                        self.wake.appended(news);
                    }
                    // Raised again, or resolved by someone else, meanwhile.
                    Err(AlertError::Conflict(_)) => txn.rollback().await?,
                    Err(err) => return Err(err),
                }
            }
        }
    }

    /// Counts alerts by state and severity for `/metrics`, in one grouped read.
    async fn refresh_gauges(&self) -> Result<(), AlertError> {
        use sea_orm::QuerySelect;
        let counts: Vec<(String, String, i64)> = alert::Entity::find()
            .select_only()
            .column(alert::Column::State)
            .column(alert::Column::Severity)
            .column_as(alert::Column::Id.count(), "count")
            .group_by(alert::Column::State)
            .group_by(alert::Column::Severity)
            .into_tuple()
            .all(&self.db)
            .await?;
        for state in super::State::ALL {
            for severity in super::Severity::ALL {
                let count = counts
                    .iter()
                    .find(|(s, v, _)| s == state.as_str() && v == severity.as_str())
                    .map_or(0, |(_, _, count)| *count);
                self.telemetry.alerts(state.as_str(), severity.as_str(), count.max(0) as u64);
            }
        }
        Ok(())
    }
}

/// A transport error with its causes, which reqwest keeps in the source chain.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
