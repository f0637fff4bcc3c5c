//! The host's own happenings as `system.*` events, so plugins, alerts and the
//! live stream can subscribe to them like any input: plugins loading, failing
//! or being switched (recorded in every org's log), events dead-lettered and
//! webhook sources receiving bad signatures (in the org concerned).

use super::Bus;
use super::log::{self, NewEntry};
use super::wake::News;
use crate::runtime::Runtime;
use crate::store::StoreError;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

/// The source of every `system.*` event.
pub const SOURCE: &str = "system";

/// How long a source's bad signatures are summed up in one event.
pub const BAD_SIGNATURE_WINDOW_MS: i64 = 60_000;

/// A `system.*` event for `org`; `dedupe` makes repeats within a window one event.
pub fn entry(org: &str, kind: &str, payload: Value, dedupe: Option<String>) -> NewEntry {
    NewEntry::arriving(org, SOURCE, kind, payload, dedupe)
}

/// Appends one event of `kind` to every org's log, in one transaction; what
/// it appended, to wake those it concerns.
pub async fn record_everywhere(db: &impl TransactionTrait, kind: &str, payload: &Value) -> Result<News, StoreError> {
    let txn = db.begin().await?;
    let orgs = all_orgs(&txn).await?;
    let entries: Vec<NewEntry> = orgs.iter().map(|org| entry(org, kind, payload.clone(), None)).collect();
    let news = News::of(&entries);
    log::append(&txn, entries).await?;
    txn.commit().await?;
    Ok(news)
}

async fn all_orgs(db: &impl ConnectionTrait) -> Result<Vec<String>, StoreError> {
    let mut orgs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = crate::identity::list_orgs(db, after.as_deref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        orgs.extend(page.into_iter().map(|org| org.id));
    }
    Ok(orgs)
}

/// Records what happens to plugins until the task is aborted. Subscribe
/// before installing the bundled plugins so their loading is recorded too.
pub async fn follow(mut happenings: tokio::sync::broadcast::Receiver<crate::runtime::happenings::Happening>, bus: Bus) {
    loop {
        match happenings.recv().await {
            Ok(happening) => {
                let (kind, payload) = happening.event();
                match record_everywhere(bus.db(), &kind, &payload).await {
                    Ok(news) => bus.wake().appended(news),
                    Err(err) => tracing::warn!(kind, "recording a system event failed: {err}"),
                }
            }
            Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "system events were missed"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Subscribes now; the returned task body records from this point on.
pub fn listen(runtime: &Runtime, bus: Bus) -> impl std::future::Future<Output = ()> + use<> {
    follow(runtime.happenings(), bus)
}
