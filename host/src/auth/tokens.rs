//! Bearer tokens: random secrets shown once, stored as SHA-256.

use super::Role;
use crate::store::entities::token;
use crate::store::{StoreError, now_ms};
use base64::Engine as _;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use sha2::{Digest, Sha256};

/// Every secret starts with this, so a leaked one is easy to recognise in logs and scanners.
pub const PREFIX: &str = "dp_";

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// How a secret is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `dp_` and 256 random bits: easy to spot when leaked.
    #[default]
    Opaque,
    /// A random UUID (122 random bits), for clients that accept nothing else as
    /// a key, such as WakaTime's editor plugins.
    Uuid,
    /// `dpt_` and 256 random bits: a single-use live-stream ticket, which may
    /// travel in a URL where a token must not.
    Ticket,
}

/// A new random secret from the OS, in `format`.
pub fn generate(format: Format) -> Result<String, getrandom::Error> {
    match format {
        Format::Opaque | Format::Ticket => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)?;
            let prefix = if format == Format::Ticket { "dpt_" } else { PREFIX };
            Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
        }
        Format::Uuid => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes)?;
            Ok(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string())
        }
    }
}

/// What to create.
pub struct NewToken<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub expires_at: Option<i64>,
    pub operator: bool,
    pub format: Format,
}

/// A created token and its secret, which is never available again.
pub struct Created {
    pub token: token::Model,
    pub secret: String,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no randomness available: {0}")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for TokenError {
    fn from(err: sea_orm::DbErr) -> Self {
        TokenError::Store(err.into())
    }
}

pub async fn create(db: &impl ConnectionTrait, new: NewToken<'_>) -> Result<Created, TokenError> {
    let secret = generate(new.format)?;
    let token = token::ActiveModel {
        id: Set(ulid::Ulid::new().to_string()),
        org_id: Set(new.org_id.to_owned()),
        user_id: Set(new.user_id.to_owned()),
        name: Set(new.name.to_owned()),
        secret_hash: Set(hash(&secret)),
        operator: Set(new.operator),
        created_at: Set(now_ms()),
        expires_at: Set(new.expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Created { token, secret })
}

/// Roles that may act on tokens of other users in their org.
pub const MANAGES_TOKENS: Role = Role::Admin;
