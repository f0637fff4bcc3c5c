//! Signed webhook ingest, generic over the sources plugins declare: which
//! headers carry the event kind, the delivery id and the signature, and how it
//! is signed. A delivery is acknowledged only once its event is durably in the log.

pub mod sources;

use crate::bus::log::NewEntry;
use crate::bus::system;
use crate::bus::writer::{AppendError, LogWriter};
use crate::config::IngestConfig;
use crate::runtime::Runtime;
use crate::runtime::manifest::WebhookSourceDoc;
use crate::store::ttl_cache::TtlCache;
use crate::store::{StoreError, now_ms};
use bytes::Bytes;
use sources::HookSource;
use std::time::Duration;

/// How long a source's secrets are cached; a rotation made through another
/// replica is seen within this time (the old secret stays valid far longer).
const SECRET_TTL_MS: i64 = 5_000;

/// Why a delivery was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("no loaded plugin declares the webhook source {0:?}")]
    UnknownSource(String),
    #[error("source {0:?} is not configured for this org")]
    NotConfigured(String),
    #[error("the signature is missing or does not match the configured secret")]
    BadSignature,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event_id: String,
    pub duplicate: bool,
}

/// What one delivery brings: its headers and raw body.
pub struct Delivery<'a> {
    pub headers: &'a poem::http::HeaderMap,
    pub body: Bytes,
}

impl Delivery<'_> {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    }
}

/// Cheap to clone; clones share the writer and the secret cache.
#[derive(Clone)]
pub struct Ingest {
    runtime: Runtime,
    writer: LogWriter,
    config: IngestConfig,
    /// (org slug or id, source) → the configured source, which names the org's id.
    secrets: TtlCache<(String, String), Option<HookSource>>,
}

impl Ingest {
    pub fn new(runtime: Runtime, writer: LogWriter) -> Self {
        let config = runtime.config().ingest.clone();
        Ingest { runtime, writer, config, secrets: TtlCache::new(SECRET_TTL_MS) }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.config.rotation_grace_seconds)
    }

    /// The source named `name` as an enabled plugin declares it.
    pub fn declared(&self, name: &str) -> Option<WebhookSourceDoc> {
        let registry = self.runtime.registry();
        registry
            .all()
            .into_iter()
            .filter(|plugin| !registry.is_disabled(plugin.name()))
            .find_map(|plugin| plugin.manifest.webhook_sources.iter().find(|source| source.name == name).cloned())
    }

    /// Every declared source, by name.
    pub fn declared_all(&self) -> Vec<WebhookSourceDoc> {
        let registry = self.runtime.registry();
        let mut sources: Vec<WebhookSourceDoc> = registry
            .all()
            .into_iter()
            .filter(|plugin| !registry.is_disabled(plugin.name()))
            .flat_map(|plugin| plugin.manifest.webhook_sources.clone())
            .collect();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        sources.dedup_by(|a, b| a.name == b.name);
        sources
    }

    /// Checks that `source` can receive deliveries for `org` (its slug or id)
    /// before the body is read. The configuration names the org's id.
    pub async fn source_for(&self, source: &str, org: &str) -> Result<(WebhookSourceDoc, HookSource), Rejection> {
        let declared = self.declared(source).ok_or_else(|| Rejection::UnknownSource(source.to_owned()))?;
        let configured = self
            .configured(org, source)
            .await
            .map_err(|err| Rejection::Unavailable(err.to_string()))?
            .ok_or_else(|| Rejection::NotConfigured(source.to_owned()))?;
        Ok((declared, configured))
    }

    /// Verifies and stores one delivery.
    pub async fn deliver(
        &self,
        declared: &WebhookSourceDoc,
        configured: &HookSource,
        delivery: Delivery<'_>,
    ) -> Result<Accepted, Rejection> {
        let scheme = declared.scheme;
        let signature = delivery.header(&declared.signature_header);
        let valid = signature.is_some_and(|signature| {
            secrets(configured, now_ms()).any(|secret| scheme.verify(secret.as_bytes(), &delivery.body, &signature))
        });
        if !valid {
            self.record_bad_signature(&configured.org, &declared.name).await;
            return Err(Rejection::BadSignature);
        }
        let payload: serde_json::Value = serde_json::from_slice(&delivery.body)
            .map_err(|err| Rejection::BadRequest(format!("the body is not JSON: {err}")))?;
        let required = |name: &str| {
            delivery
                .header(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| Rejection::BadRequest(format!("the {name} header is missing")))
        };
        let kind = format!("{}.{}", declared.name, required(&declared.kind_header)?.trim().to_ascii_lowercase());
        if !crate::capabilities::events::valid_kind(&kind) {
            return Err(Rejection::BadRequest(format!("{kind:?} is not a valid event kind")));
        }
        let delivery_id = required(&declared.delivery_header)?;
        if delivery_id.len() > 200 {
            return Err(Rejection::BadRequest("the delivery id is longer than 200 bytes".into()));
        }
        let entry = NewEntry::arriving(&configured.org, &declared.name, &kind, payload, Some(delivery_id));
        let timeout = Duration::from_millis(self.config.ack_timeout_ms);
        match self.writer.append(entry, timeout).await {
            Ok(appended) => Ok(Accepted { event_id: appended.id, duplicate: appended.duplicate }),
            Err(err @ (AppendError::Timeout(_) | AppendError::Store(_))) => {
                Err(Rejection::Unavailable(err.to_string()))
            }
        }
    }

    /// Notes a refused delivery as `system.webhook.bad_signature`, one event
    /// per source and minute however many arrive (a flood stays one event).
    async fn record_bad_signature(&self, org: &str, source: &str) {
        let now = now_ms();
        let window = now - now.rem_euclid(system::BAD_SIGNATURE_WINDOW_MS);
        let payload = serde_json::json!({
            "source": source,
            "window_start": chrono::DateTime::from_timestamp_millis(window).map(|at| at.to_rfc3339()),
        });
        let dedupe = Some(format!("bad-signature/{source}/{window}"));
        let entry = system::entry(org, "system.webhook.bad_signature", payload, dedupe);
        let timeout = Duration::from_millis(self.config.ack_timeout_ms);
        if let Err(err) = self.writer.append(entry, timeout).await {
            tracing::warn!(org, source, "recording a bad signature failed: {err}");
        }
    }

    /// The configuration of `source` in `org`, cached briefly.
    async fn configured(&self, org: &str, source: &str) -> Result<Option<HookSource>, StoreError> {
        let key = (org.to_owned(), source.to_owned());
        if let Some(row) = self.secrets.get(&key) {
            return Ok(row);
        }
        let db = self.runtime.db();
        let org_id = match crate::identity::org_by_slug(db, org).await? {
            Some(found) => found.id,
            None => org.to_owned(),
        };
        let row = sources::get(db, &org_id, source).await?;
        self.secrets.insert(key, row.clone());
        Ok(row)
    }

    /// Sets the secret of `source` for the org with id `org`; returns true when it was new.
    pub async fn configure(&self, org: &str, source: &str, secret: &str) -> Result<bool, StoreError> {
        let grace_ms = self.grace().as_millis() as i64;
        let created = sources::set_secret(self.runtime.db(), org, source, secret, grace_ms).await?;
        // Unconfigured entries are keyed by slug or id; drop every one of this source's.
        self.secrets
            .forget(|(_, cached_source), row| cached_source == source && row.as_ref().is_none_or(|row| row.org == org));
        Ok(created)
    }
}

/// The secrets a delivery may be signed with at `now`: the current one, and the
/// previous one during its grace period.
fn secrets(source: &HookSource, now: i64) -> impl Iterator<Item = &String> {
    let previous = match (&source.previous_secret, source.previous_until) {
        (Some(previous), Some(until)) if now < until => Some(previous),
        _ => None,
    };
    std::iter::once(&source.secret).chain(previous)
}
