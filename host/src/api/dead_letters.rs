//! `/api/v1/dead-letters`: events a plugin gave up on, and replaying them once
//! the plugin is fixed.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::bus::delivery::cursors::{self, DEAD, DeadLetter, REPLAYING};
use crate::bus::wake::News;
use poem::http::StatusCode;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Tags};

#[derive(Tags)]
enum DeadLetterTag {
    /// Events plugins failed to handle after every attempt.
    DeadLetters,
}

/// Where a dead letter stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum DeadLetterStatus {
    /// Every attempt failed; the plugin moved on.
    Dead,
    /// Queued for the plugin by an admin.
    Replaying,
    /// Handled on replay.
    Replayed,
}

impl DeadLetterStatus {
    fn stored(self) -> &'static str {
        match self {
            DeadLetterStatus::Dead => DEAD,
            DeadLetterStatus::Replaying => REPLAYING,
            DeadLetterStatus::Replayed => cursors::REPLAYED,
        }
    }

    fn of(stored: &str) -> Self {
        match stored {
            REPLAYING => DeadLetterStatus::Replaying,
            cursors::REPLAYED => DeadLetterStatus::Replayed,
            _ => DeadLetterStatus::Dead,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeadLetterView {
    pub id: String,
    pub plugin: String,
    pub event_id: String,
    /// The event's position in the org's log.
    pub event_position: i64,
    pub attempts: i32,
    /// The last failure.
    pub error: String,
    pub status: DeadLetterStatus,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(letter: DeadLetter) -> Self {
        DeadLetterView {
            id: letter.id,
            plugin: letter.plugin,
            event_id: letter.event_id,
            event_position: letter.event_seq,
            attempts: letter.attempts,
            error: letter.error,
            status: DeadLetterStatus::of(&letter.status),
            created_at: chrono::DateTime::from_timestamp_millis(letter.created_at),
            updated_at: chrono::DateTime::from_timestamp_millis(letter.updated_at),
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterView>,
    pub next_cursor: Option<String>,
}

pub struct DeadLettersApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "DeadLetterTag::DeadLetters")]
impl DeadLettersApi {
    /// Dead letters of the caller's org, newest first.
    #[oai(path = "/dead-letters", method = "get", operation_id = "listDeadLetters")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only this plugin's.
        plugin: Query<Option<String>>,
        /// Only dead letters in this state.
        status: Query<Option<DeadLetterStatus>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<DeadLetterPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let before = cursor.0.map(|cursor| cursor.0);
        let mut rows = cursors::dead_letters(
            self.state.runtime.db(),
            &principal.org_id,
            plugin.0.as_deref(),
            status.0.map(DeadLetterStatus::stored),
            before.as_deref(),
            u64::from(limit.0) + 1,
        )
        .await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |letter| &letter.id);
        Ok(Json(DeadLetterPage { items: rows.into_iter().map(DeadLetterView::from).collect(), next_cursor }))
    }

    /// Queues a dead letter for its plugin, which handles it once, in its own
    /// transaction, ahead of new events. Poll the dead letter (or the event) for
    /// the outcome: `replayed`, or `dead` again with the new error.
    #[oai(path = "/dead-letters/:id/replay", method = "post", operation_id = "replayDeadLetter")]
    async fn replay(&self, auth: BearerAuth, id: Path<String>) -> Result<ReplayResponse, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let db = self.state.runtime.db();
        let letter = cursors::dead_letter(db, &principal.org_id, &id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no dead letter {} in this org", id.0)))?;
        if !cursors::set_status(db, &letter.id, DEAD, REPLAYING, None).await? {
            return Err(ApiError::Conflict(Json(super::problem::Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("dead letter {} is {}, not dead", letter.id, letter.status),
            ))));
        }
        audit::record(db, Entry::by(&principal, "dead-letter.replay", &format!("dead-letter/{}", letter.id))).await?;
        self.state.bus.wake().appended(News::org(&principal.org_id));
        let queued = cursors::dead_letter(db, &principal.org_id, &id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no dead letter {} in this org", id.0)))?;
        Ok(ReplayResponse::Queued(Json(queued.into())))
    }
}

#[derive(poem_openapi::ApiResponse)]
pub enum ReplayResponse {
    /// Queued for the plugin.
    #[oai(status = 202)]
    Queued(Json<DeadLetterView>),
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
