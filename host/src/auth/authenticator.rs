//! Turns bearer tokens into principals without a database round trip per request.
//!
//! Principals are cached in memory for a short time. Expiry is checked on every
//! request against the cached expiry, so it is exact. Revoking a token, deleting
//! a user or changing a role drops the affected entries at once in this process
//! and, through Redis pub/sub, in every other replica. Without Redis a single
//! replica is assumed; other processes' changes (the CLI only creates tokens) are
//! seen within `TTL`.

use super::{AuthError, Principal, lookup, tokens};
use crate::store::entities::token;
use crate::store::now_ms;
use crate::store::redis::Redis;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a principal is trusted without asking the database again.
const TTL_MS: i64 = 30_000;

/// How stale `last_used_at` may get; refreshing on every request would turn
/// every read into a write.
const LAST_USED_PRECISION_MS: i64 = 60_000;

/// The Redis channel replicas announce invalidations on.
const CHANNEL: &str = "devpulse:auth:invalidate";

struct Cached {
    principal: Principal,
    expires_at: Option<i64>,
    cached_at: i64,
    last_used_written: i64,
}

/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Authenticator {
    db: DatabaseConnection,
    redis: Option<Redis>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

/// What an invalidation names.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Token(&'a str),
    User(&'a str),
}

impl Authenticator {
    pub fn new(db: DatabaseConnection, redis: Option<Redis>) -> Self {
        Authenticator { db, redis, cache: Arc::default() }
    }

    /// The principal behind `secret`, if the token is valid now.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, AuthError> {
        let hash = tokens::hash(secret);
        let now = now_ms();
        let hit = self.cache.lock().ok().and_then(|cache| {
            cache
                .get(&hash)
                .filter(|entry| now - entry.cached_at < TTL_MS)
                .map(|entry| (entry.principal.clone(), entry.expires_at, entry.last_used_written))
        });
        let (principal, expires_at, last_used_written) = match hit {
            Some(hit) => hit,
            None => {
                let (principal, expires_at) = lookup(&self.db, &hash).await?;
                (principal, expires_at, 0)
            }
        };
        if expires_at.is_some_and(|at| at <= now) {
            self.forget(|entry| entry.principal.token_id == principal.token_id);
            return Err(AuthError::Invalid);
        }
        let refresh = now - last_used_written > LAST_USED_PRECISION_MS;
        if refresh {
            self.record_use(&principal.token_id, now);
        }
        if let Ok(mut cache) = self.cache.lock() {
            let cached_at =
                cache.get(&hash).filter(|entry| now - entry.cached_at < TTL_MS).map_or(now, |e| e.cached_at);
            let last_used_written = if refresh { now } else { last_used_written };
            cache.insert(hash, Cached { principal: principal.clone(), expires_at, cached_at, last_used_written });
        }
        Ok(principal)
    }

    fn record_use(&self, token_id: &str, now: i64) {
        let db = self.db.clone();
        let token_id = token_id.to_owned();
        tokio::spawn(async move {
            let update = token::Entity::update_many()
                .col_expr(token::Column::LastUsedAt, Expr::value(now))
                .filter(token::Column::Id.eq(token_id))
                .exec(&db)
                .await;
            if let Err(err) = update {
                tracing::warn!("recording token use failed: {err}");
            }
        });
    }

    fn forget(&self, matches: impl Fn(&Cached) -> bool) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, entry| !matches(entry));
        }
    }

    fn forget_subject(&self, subject: Subject<'_>) {
        match subject {
            Subject::Token(id) => self.forget(|entry| entry.principal.token_id == id),
            Subject::User(id) => self.forget(|entry| entry.principal.user_id == id),
        }
    }

    /// Drops cached principals of a revoked token or a changed or removed user,
    /// here and (with Redis) in every replica. Call it after the change committed.
    pub async fn invalidate(&self, subject: Subject<'_>) {
        self.forget_subject(subject);
        if let Some(redis) = &self.redis {
            let message = match subject {
                Subject::Token(id) => format!("token:{id}"),
                Subject::User(id) => format!("user:{id}"),
            };
            if let Err(err) = redis.publish(CHANNEL, &message).await {
                tracing::error!(
                    "announcing an auth invalidation failed; other replicas may trust it for {TTL_MS} ms: {err}"
                );
            }
        }
    }

    /// Applies invalidations announced by other replicas until the subscription ends.
    pub async fn follow(self, redis_url: String) {
        let result = Redis::subscribe(&redis_url, CHANNEL, |message| match message.split_once(':') {
            Some(("token", id)) => self.forget_subject(Subject::Token(id)),
            Some(("user", id)) => self.forget_subject(Subject::User(id)),
            _ => tracing::warn!("ignoring malformed auth invalidation {message:?}"),
        })
        .await;
        if let Err(err) = result {
            tracing::error!("auth invalidations from other replicas stopped: {err}");
        }
    }
}
