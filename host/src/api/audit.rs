//! `/api/v1/audit`: the org's audit log, newest first (admin and above).

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use crate::audit::{self, Filter};
use crate::auth::Role;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

#[derive(Tags)]
enum AuditTag {
    /// Who changed users, tokens, grants and plugins.
    Audit,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditView {
    pub id: String,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The acting user; absent for the server itself.
    pub actor_user_id: Option<String>,
    /// The token the change was made with.
    pub actor_token_id: Option<String>,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

pub struct AuditApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "AuditTag::Audit")]
impl AuditApi {
    /// The audit log of the caller's org, newest first.
    #[oai(path = "/audit", method = "get", operation_id = "listAudit")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only this action, for example `token.revoke`.
        action: Query<Option<String>>,
        /// Only changes made by this user.
        actor: Query<Option<String>>,
        /// Only changes at or after this time.
        from: Query<Option<chrono::DateTime<chrono::Utc>>>,
        /// Only changes before this time.
        to: Query<Option<chrono::DateTime<chrono::Utc>>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let before = cursor.0.map(|cursor| cursor.0);
        let filter = Filter {
            action: action.0,
            actor_user_id: actor.0,
            from: from.0.map(|at| at.timestamp_millis()),
            to: to.0.map(|at| at.timestamp_millis()),
        };
        let mut rows =
            audit::list(self.state.runtime.db(), &principal.org_id, &filter, before.as_deref(), u64::from(limit.0) + 1)
                .await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |entry| &entry.id);
        let items = rows
            .into_iter()
            .map(|entry| AuditView {
                at: chrono::DateTime::from_timestamp_millis(entry.at),
                id: entry.id,
                actor_user_id: entry.actor_user_id,
                actor_token_id: entry.actor_token_id,
                action: entry.action,
                target: entry.target,
                details: entry.details,
            })
            .collect();
        Ok(Json(AuditPage { items, next_cursor }))
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
