//! `/api/v1/events`: the org's event log, and where each event stands with the
//! plugins subscribed to it.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use crate::auth::Role;
use crate::bus::delivery::cursors::{self, REPLAYED};
use crate::bus::generations;
use crate::bus::log::{self, Filter};
use crate::store::entities::event;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Tags};

#[derive(Tags)]
enum EventTag {
    /// The event log: webhook deliveries and events plugins emit.
    Events,
}

/// One event of the log.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventView {
    /// A ULID.
    pub id: String,
    /// The position in the org's log; delivery follows it.
    pub position: i64,
    /// The webhook source, or the plugin that emitted it.
    pub source: String,
    pub kind: String,
    /// The sender's delivery id (for GitHub, `X-GitHub-Delivery`).
    pub dedupe_key: Option<String>,
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
    pub payload: serde_json::Value,
    /// The event being handled when a plugin emitted this one.
    pub cause: Option<String>,
    /// Length of the cause chain.
    pub depth: i32,
    /// The user the event is about; only they see it.
    pub subject: Option<String>,
}

impl From<event::Model> for EventView {
    fn from(event: event::Model) -> Self {
        EventView {
            id: event.id,
            position: event.seq,
            source: event.source,
            kind: event.kind,
            dedupe_key: event.dedupe_key,
            occurred_at: chrono::DateTime::from_timestamp_millis(event.occurred_at),
            received_at: chrono::DateTime::from_timestamp_millis(event.received_at),
            payload: event.payload,
            cause: event.cause,
            depth: event.depth,
            subject: event.subject,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    pub items: Vec<EventView>,
    pub next_cursor: Option<String>,
}

/// Where an event stands with one plugin.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not handled yet.
    Pending,
    /// The last attempt failed; another follows after a backoff.
    Retrying,
    /// Handled; its effects are committed.
    Delivered,
    /// Every attempt failed; see dead letters.
    DeadLetter,
    /// A dead letter an admin queued for replay.
    Replaying,
    /// A dead letter handled on replay.
    Replayed,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryView {
    pub plugin: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub dead_letter_id: Option<String>,
}

#[derive(Object)]
pub struct EventDetail {
    #[oai(flatten)]
    pub event: EventView,
    /// One entry per loaded plugin subscribed to the event's kind.
    pub deliveries: Vec<DeliveryView>,
}

pub struct EventsApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "EventTag::Events")]
impl EventsApi {
    /// Events of the caller's org in log order (oldest first). An event about
    /// one person (an attendance record, say) is listed to that person alone.
    /// Alert transitions (source `alerts`) follow the alerts' rule: one about a
    /// person is listed to them and to managers, the others to managers and above.
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only events from this source (a webhook source or a plugin).
        source: Query<Option<String>>,
        /// Only this kind, or a pattern such as `github.*`.
        kind: Query<Option<String>>,
        /// Only events that occurred at or after this time.
        from: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Only events that occurred before this time.
        to: Query<Option<chrono::DateTime<chrono::Utc>>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Developer).await?;
        // A cursor holds a log position; one that holds none lies past the end.
        let after = cursor.0.map_or(0, |cursor| cursor.0.parse::<i64>().unwrap_or(i64::MAX));
        let filter = Filter {
            source: source.0,
            kinds: kind.0.into_iter().collect(),
            from: from.0.map(|at| at.timestamp_millis()),
            to: to.0.map(|at| at.timestamp_millis()),
        };
        let db = self.state.runtime.reader();
        let reader = log::Reader::of(&principal);
        let rows = log::list(db, &principal.org_id, &reader, &filter, after, u64::from(limit.0) + 1).await?;
        // The cursor is the position of the page's last event.
        let mut keyed: Vec<(String, event::Model)> = rows.into_iter().map(|row| (row.seq.to_string(), row)).collect();
        let next_cursor = pagination::next(&mut keyed, limit.0, |(key, _)| key);
        Ok(Json(EventPage { items: keyed.into_iter().map(|(_, row)| row.into()).collect(), next_cursor }))
    }

    /// One event, with its delivery status for every subscribed plugin.
    #[oai(path = "/events/:id", method = "get", operation_id = "getEvent")]
    async fn get(&self, auth: BearerAuth, id: Path<String>) -> Result<Json<EventDetail>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Developer).await?;
        let db = self.state.runtime.reader();
        let event = log::get(db, &principal.org_id, &log::Reader::of(&principal), &id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no event {} in this org", id.0)))?;
        let letters = cursors::dead_letters_of_event(db, event.seq).await?;
        let mut deliveries = Vec::new();
        let mut plugins = self.state.runtime.registry().all();
        plugins.sort_by(|a, b| a.name().cmp(b.name()));
        for plugin in plugins.iter().filter(|plugin| log::matches(&plugin.manifest.subscriptions, &event.kind)) {
            let generation = generations::live(db, plugin.name(), &event.org).await?;
            let cursor = cursors::find(db, plugin.name(), &event.org, generation).await?;
            let letter = letters.iter().find(|letter| letter.plugin == plugin.name());
            let mut view = DeliveryView {
                plugin: plugin.name().to_owned(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                last_error: None,
                next_attempt_at: None,
                dead_letter_id: letter.map(|letter| letter.id.clone()),
            };
            if let Some(letter) = letter {
                view.status = match letter.status.as_str() {
                    REPLAYED => DeliveryStatus::Replayed,
                    cursors::REPLAYING => DeliveryStatus::Replaying,
                    _ => DeliveryStatus::DeadLetter,
                };
                view.attempts = letter.attempts;
                view.last_error = Some(letter.error.clone());
            } else if let Some(cursor) = cursor {
                if cursor.position >= event.seq {
                    view.status = DeliveryStatus::Delivered;
                } else if cursor.failing_seq == Some(event.seq) {
                    view.status = DeliveryStatus::Retrying;
                    view.attempts = cursor.attempts;
                    view.last_error = cursor.last_error.clone();
                    view.next_attempt_at = cursor.retry_at.and_then(chrono::DateTime::from_timestamp_millis);
                }
            }
            deliveries.push(view);
        }
        Ok(Json(EventDetail { event: event.into(), deliveries }))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
