//! Single-use tickets for browsers, whose `EventSource` and `WebSocket` cannot
//! send an `Authorization` header: a caller trades its token for a ticket that
//! names it, valid for a short time and for one subscription, so the token
//! itself never appears in a URL. Kept in Redis when it is configured (any
//! replica redeems what another issued), else in this process.

use crate::auth::Principal;
use crate::auth::tokens::{self, Format};
use crate::store::now_ms;
use crate::store::redis::Redis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A ticket and when it stops working, in milliseconds since the epoch.
pub struct Issued {
    pub ticket: String,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("storing the ticket failed: {0}")]
    Store(String),
}

/// Cheap to clone; clones share the tickets.
#[derive(Clone)]
pub struct Tickets {
    ttl_ms: i64,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    InProcess(Arc<Mutex<HashMap<String, (Principal, i64)>>>),
    Redis(Redis),
}

impl Tickets {
    pub fn new(redis: Option<Redis>, ttl_seconds: u64) -> Self {
        let backend = match redis {
            Some(redis) => Backend::Redis(redis),
            None => Backend::InProcess(Arc::default()),
        };
        Tickets { ttl_ms: (ttl_seconds * 1000) as i64, backend }
    }

    /// A new ticket for `principal`.
    pub async fn issue(&self, principal: &Principal) -> Result<Issued, TicketError> {
        let ticket = tokens::generate(Format::Ticket).map_err(|err| TicketError::Store(err.to_string()))?;
        let key = tokens::hash(&ticket);
        let expires_at = now_ms() + self.ttl_ms;
        match &self.backend {
            Backend::InProcess(tickets) => {
                let mut tickets = tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = now_ms();
                tickets.retain(|_, (_, expires)| *expires > now);
                tickets.insert(key, (principal.clone(), expires_at));
            }
            Backend::Redis(redis) => {
                let value = serde_json::to_string(principal).map_err(|err| TicketError::Store(err.to_string()))?;
                redis
                    .put_for(&redis_key(&key), &value, self.ttl_ms as u64)
                    .await
                    .map_err(|err| TicketError::Store(err.to_string()))?;
            }
        }
        Ok(Issued { ticket, expires_at })
    }

    /// The principal a ticket was issued to, once: the ticket is gone after.
    /// `None` for an unknown, used or expired ticket.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<Principal>, TicketError> {
        let key = tokens::hash(ticket);
        match &self.backend {
            Backend::InProcess(tickets) => {
                let taken = tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
                Ok(taken.filter(|(_, expires)| *expires > now_ms()).map(|(principal, _)| principal))
            }
            Backend::Redis(redis) => {
                let taken = redis.take(&redis_key(&key)).await.map_err(|err| TicketError::Store(err.to_string()))?;
                Ok(taken.and_then(|value| serde_json::from_str(&value).ok()))
            }
        }
    }
}

fn redis_key(hash: &str) -> String {
    format!("devpulse:stream:ticket:{hash}")
}
