//! Who is calling: bearer tokens to principals, role checks, and the
//! signatures webhook senders authenticate their deliveries with.
//!
//! Every `/api/v1` call carries `Authorization: Bearer <token>`, looked up by its
//! SHA-256 (see [`Authenticator`] for caching and how revocation stays immediate).

pub mod authenticator;
pub mod signature;
pub mod tokens;

pub use authenticator::Authenticator;

use crate::store::entities::{token, user};
use crate::store::{StoreError, now_ms};
use base64::Engine as _;
use poem_openapi::Enum;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

/// Roles, lowest first: each includes what the ones before it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Enum, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Developer,
    Manager,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "developer" => Role::Developer,
            "manager" => Role::Manager,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            _ => return None,
        })
    }
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub org_id: String,
    pub role: Role,
    pub token_id: String,
    /// May manage orgs across the instance.
    pub operator: bool,
}

impl Principal {
    /// Refuses callers below `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role { Ok(()) } else { Err(AuthError::Forbidden(role)) }
    }

    /// Refuses callers whose token is not an operator token.
    pub fn require_operator(&self) -> Result<(), AuthError> {
        if self.operator { Ok(()) } else { Err(AuthError::NotOperator) }
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is unknown, expired or revoked")]
    Invalid,
    #[error("this operation needs the {} role or higher", .0.as_str())]
    Forbidden(Role),
    #[error("this operation needs an operator token")]
    NotOperator,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for AuthError {
    fn from(err: sea_orm::DbErr) -> Self {
        AuthError::Store(err.into())
    }
}

/// The principal behind `secret`, read from the database, with the token's expiry.
pub(crate) async fn lookup(db: &DatabaseConnection, hash: &str) -> Result<(Principal, Option<i64>), AuthError> {
    tracing::debug!("token lookup in the database");
    let found = token::Entity::find().filter(token::Column::SecretHash.eq(hash)).one(db).await?;
    let Some(token) = found else { return Err(AuthError::Invalid) };
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(AuthError::Invalid);
    }
    let Some(user) = user::Entity::find_by_id(token.user_id.clone()).one(db).await? else {
        return Err(AuthError::Invalid);
    };
    let role = Role::parse(&user.role).ok_or(AuthError::Invalid)?;
    let principal =
        Principal { user_id: user.id, org_id: user.org_id, role, token_id: token.id, operator: token.operator };
    Ok((principal, token.expires_at))
}

/// The token a request carries: `Authorization: Bearer <token>`, or
/// `Basic base64(<token>)` as WakaTime's clients send it (from a
/// `user:password` pair, the password).
pub fn credential(request: &poem::Request) -> Option<String> {
    let value = request.headers().get(poem::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let token = match decoded.split_once(':') {
        Some((_, password)) => password,
        None => decoded.as_str(),
    };
    (!token.is_empty()).then(|| token.trim().to_owned())
}
