//! `/api/v1/tokens`: bearer tokens. A secret is shown once, at creation.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::{Cursor, Text};
use crate::audit::{self, Entry};
use crate::auth::Principal;
use crate::auth::authenticator::Subject;
use crate::auth::tokens::{self, MANAGES_TOKENS, NewToken};
use crate::identity;
use crate::store::entities::token;
use crate::store::now_ms;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

#[derive(Tags)]
enum TokenTag {
    /// Bearer tokens for the API.
    Tokens,
}

fn time(ms: Option<i64>) -> Option<chrono::DateTime<chrono::Utc>> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
}

/// A token, without its secret.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub operator: bool,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<token::Model> for TokenView {
    fn from(token: token::Model) -> Self {
        TokenView {
            created_at: time(Some(token.created_at)),
            expires_at: time(token.expires_at),
            last_used_at: time(token.last_used_at),
            revoked_at: time(token.revoked_at),
            id: token.id,
            user_id: token.user_id,
            name: token.name,
            operator: token.operator,
        }
    }
}

/// A new token and its secret: store the secret now, it is never shown again.
#[derive(Object)]
pub struct CreatedToken {
    pub token: TokenView,
    pub secret: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenPage {
    pub items: Vec<TokenView>,
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct CreateToken {
    /// What it is for, for example `ci` or `laptop`: 1 to 100 characters, not all blank.
    #[oai(validator(min_length = 1, max_length = 100, pattern = r"[^\s\x1c-\x1f]"))]
    pub name: Text,
    /// When it stops working; never, when absent. A time already past makes a
    /// token that never works.
    #[oai(nullable)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whose token it is: the caller when absent; admins may name users of their org.
    #[oai(nullable)]
    pub user_id: Option<Text>,
    /// How the secret is written; `opaque` when absent.
    #[oai(nullable)]
    pub format: Option<SecretFormat>,
}

/// How a token's secret is written.
#[derive(Enum, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum SecretFormat {
    /// `dp_` and 256 random bits: easy to spot when leaked.
    #[default]
    Opaque,
    /// A random UUID, for clients that accept nothing else as a key (WakaTime's
    /// editor plugins, which send it as `Authorization: Basic base64(key)`).
    Uuid,
}

impl From<SecretFormat> for tokens::Format {
    fn from(format: SecretFormat) -> Self {
        match format {
            SecretFormat::Opaque => tokens::Format::Opaque,
            SecretFormat::Uuid => tokens::Format::Uuid,
        }
    }
}

#[derive(ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<CreatedToken>),
}

#[derive(ApiResponse)]
enum Revoked {
    /// The token no longer works, on every replica.
    #[oai(status = 204)]
    Revoked,
}

/// Whose tokens the caller may see or manage: their own, or any in their org for admins.
fn may_manage(principal: &Principal, user_id: &str) -> Result<(), ApiError> {
    if user_id == principal.user_id {
        return Ok(());
    }
    principal.require(MANAGES_TOKENS)?;
    Ok(())
}

pub struct TokensApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "TokenTag::Tokens")]
impl TokensApi {
    /// The caller's tokens; admins may ask for another user's with `user_id`.
    #[oai(path = "/tokens", method = "get", operation_id = "listTokens")]
    async fn list(
        &self,
        auth: BearerAuth,
        user_id: Query<Option<String>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<TokenPage>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let user_id = user_id.0.unwrap_or_else(|| principal.user_id.clone());
        may_manage(&principal, &user_id)?;
        let after = cursor.0.map(|cursor| cursor.0);
        let mut query = token::Entity::find()
            .filter(token::Column::OrgId.eq(principal.org_id.as_str()))
            .filter(token::Column::UserId.eq(user_id.as_str()));
        if let Some(after) = after {
            query = query.filter(token::Column::Id.gt(after));
        }
        let mut rows =
            query.order_by_asc(token::Column::Id).limit(u64::from(limit.0) + 1).all(self.state.runtime.db()).await?;
        let next_cursor = pagination::next(&mut rows, limit.0, |token| &token.id);
        Ok(Json(TokenPage { items: rows.into_iter().map(TokenView::from).collect(), next_cursor }))
    }

    /// Creates a token; the answer holds its secret, shown this once.
    #[oai(path = "/tokens", method = "post", operation_id = "createToken")]
    async fn create(&self, auth: BearerAuth, body: Json<CreateToken>) -> Result<Created, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let body = body.0;
        let user_id = body.user_id.map_or_else(|| principal.user_id.clone(), String::from);
        may_manage(&principal, &user_id)?;
        let expires_at = body.expires_at.map(|at| at.timestamp_millis());
        let txn = self.state.runtime.db().begin().await?;
        if identity::user_in_org(&txn, &principal.org_id, &user_id).await?.is_none() {
            return Err(ApiError::not_found(format!("no user {user_id}")));
        }
        let created = tokens::create(
            &txn,
            NewToken {
                org_id: &principal.org_id,
                user_id: &user_id,
                name: &body.name.0,
                expires_at,
                operator: false,
                format: body.format.unwrap_or_default().into(),
            },
        )
        .await
        .map_err(ApiError::unavailable)?;
        audit::record(
            &txn,
            Entry::by(&principal, "token.create", &format!("token/{}", created.token.id))
                .details(serde_json::json!({"user": user_id, "name": body.name.0, "expires_at": expires_at})),
        )
        .await?;
        txn.commit().await?;
        Ok(Created::Created(Json(CreatedToken { token: created.token.into(), secret: created.secret })))
    }

    /// Revokes a token: the caller's own, or any in the org for admins.
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "revokeToken")]
    async fn revoke(&self, auth: BearerAuth, id: Path<String>) -> Result<Revoked, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let txn = self.state.runtime.db().begin().await?;
        let token = token::Entity::find_by_id(id.0.clone())
            .one(&txn)
            .await?
            .filter(|token| token.org_id == principal.org_id)
            .ok_or_else(|| ApiError::not_found(format!("no token {}", id.0)))?;
        may_manage(&principal, &token.user_id)?;
        if token.revoked_at.is_none() {
            let mut row = token.into_active_model();
            row.revoked_at = Set(Some(now_ms()));
            row.update(&txn).await?;
            audit::record(&txn, Entry::by(&principal, "token.revoke", &format!("token/{}", id.0))).await?;
        }
        txn.commit().await?;
        self.state.auth.invalidate(Subject::Token(&id)).await;
        Ok(Revoked::Revoked)
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
