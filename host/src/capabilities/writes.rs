//! Everything one plugin call writes, held in memory until the call succeeds;
//! the bus then commits it in one transaction (see `crate::bus::commit`). A
//! trap, a timeout or an error drops it, so a call's effects happen entirely or
//! not at all. Reads during the call see its own writes, and those of the
//! batch before it while that batch's commit is still under way.

use crate::alerts::AlertWrite;
use crate::metrics::rollup::NewPoint;
use crate::store::documents::{self, Scope};
use crate::store::{self, StoreError};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// An event a plugin emitted, waiting to be committed.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub cause: Option<String>,
    pub depth: i32,
    /// The user the event is about (`emit-about`), who alone sees it in the log.
    pub subject: Option<String>,
}

/// A call's writes as the bus commits them.
pub struct Staged {
    /// Documents by key; `None` deletes.
    pub documents: BTreeMap<String, Option<Value>>,
    pub points: Vec<NewPoint>,
    pub events: Vec<NewEvent>,
    pub alerts: Vec<AlertWrite>,
}

/// The pending writes of one call.
#[derive(Debug, Default)]
pub struct WriteSet {
    /// `None` marks a deletion.
    documents: BTreeMap<String, Option<Value>>,
    points: Vec<NewPoint>,
    events: Vec<NewEvent>,
    alerts: Vec<AlertWrite>,
    /// What the batch before wrote, while its commit runs beside this one's
    /// calls: reads see it as if it were stored. Never committed from here.
    committing: Arc<Committing>,
}

/// The documents and alert writes of a batch whose commit is under way.
#[derive(Debug, Default)]
pub struct Committing {
    documents: BTreeMap<String, Option<Value>>,
    alerts: Vec<AlertWrite>,
}

impl WriteSet {
    /// An empty write set whose reads also see `committing`.
    pub fn after(committing: Arc<Committing>) -> Self {
        WriteSet { committing, ..WriteSet::default() }
    }

    /// What the batch handled next must see of these writes while they
    /// commit: only their own, since the batch before has committed by then.
    pub fn committing(&self) -> Arc<Committing> {
        Arc::new(Committing { documents: self.documents.clone(), alerts: self.alerts.clone() })
    }

    /// Pending documents under `prefix` from `lower` on, this call's over the committing batch's.
    fn pending_under(&self, prefix: &str, lower: Bound<&str>) -> BTreeMap<String, Option<Value>> {
        let mut pending = BTreeMap::new();
        for layer in [&self.committing.documents, &self.documents] {
            let range = layer
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(prefix))
                .map(|(key, value)| (key.clone(), value.clone()));
            pending.extend(range);
        }
        pending
    }

    /// The pending document under `key`, if any (`Some(None)` when deleted).
    fn pending(&self, key: &str) -> Option<&Option<Value>> {
        self.documents.get(key).or_else(|| self.committing.documents.get(key))
    }

    /// How many writes are pending; the caller caps it so a loop cannot exhaust memory.
    pub fn len(&self) -> usize {
        self.documents.len() + self.points.len() + self.events.len() + self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn put(&mut self, key: String, value: Value) {
        self.documents.insert(key, Some(value));
    }

    /// Marks `key` deleted; true when it existed (here or in the database).
    pub async fn delete(&mut self, db: &DatabaseConnection, scope: &Scope, key: &str) -> Result<bool, StoreError> {
        let existed = self.get(db, scope, key).await?.is_some();
        self.documents.insert(key.to_owned(), None);
        Ok(existed)
    }

    pub fn record(&mut self, point: NewPoint) {
        self.points.push(point);
    }

    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    pub fn alert(&mut self, write: AlertWrite) {
        self.alerts.push(write);
    }

    /// Whether this call left the alert `key` open (raised last) or closed
    /// (resolved last); `None` when it did neither.
    pub fn alert_pending(&self, key: &str) -> Option<bool> {
        let last = |alerts: &[AlertWrite]| {
            alerts.iter().rev().find_map(|write| match write {
                AlertWrite::Raise(alert) if alert.key == key => Some(true),
                AlertWrite::Resolve(resolved) if resolved == key => Some(false),
                _ => None,
            })
        };
        last(&self.alerts).or_else(|| last(&self.committing.alerts))
    }

    /// Drops the emitted events and alert writes: a rebuild replays history,
    /// and what it would emit or raise the live generation did already.
    pub fn without_side_effects(mut self) -> Self {
        self.events.clear();
        self.alerts.clear();
        self
    }

    /// The kinds of the emitted events, which committing appends to the log.
    pub fn emitted_kinds(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|event| event.kind.as_str())
    }

    /// True when committing writes alerts, whose transitions are appended to the log too.
    pub fn writes_alerts(&self) -> bool {
        !self.alerts.is_empty()
    }

    /// The document as this call sees it.
    pub async fn get(&self, db: &DatabaseConnection, scope: &Scope, key: &str) -> Result<Option<Value>, StoreError> {
        match self.pending(key) {
            Some(pending) => Ok(pending.clone()),
            None => documents::get(db, scope, key).await,
        }
    }

    /// A prefix scan that merges committed documents with this call's writes.
    pub async fn scan(
        &self,
        db: &DatabaseConnection,
        scope: &Scope,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let lower = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Included(prefix),
        };
        let pending = self.pending_under(prefix, lower);
        // Each pending deletion can hide at most one stored row, so fetching that
        // many more rows than asked always leaves enough after merging.
        let deletions = pending.values().filter(|value| value.is_none()).count();
        let stored = documents::scan(db, scope, prefix, after, (limit + deletions) as u64).await?;
        let mut merged: BTreeMap<String, Option<Value>> =
            stored.into_iter().map(|(key, value)| (key, Some(value))).collect();
        merged.extend(pending);
        Ok(merged.into_iter().filter_map(|(key, value)| value.map(|value| (key, value))).take(limit).collect())
    }

    /// Counts documents under `prefix` as this call sees them.
    pub async fn count(&self, db: &DatabaseConnection, scope: &Scope, prefix: &str) -> Result<u64, StoreError> {
        let pending = self.pending_under(prefix, Bound::Included(prefix));
        if pending.is_empty() {
            return documents::count(db, scope, prefix).await;
        }
        // One snapshot: the committing batch may land between the count and the lookups.
        let snapshot = store::snapshot(db).await?;
        let mut count = documents::count(&snapshot, scope, prefix).await? as i64;
        for (key, value) in pending {
            let stored = documents::get(&snapshot, scope, &key).await?.is_some();
            count += match (stored, value.is_some()) {
                (false, true) => 1,
                (true, false) => -1,
                _ => 0,
            };
        }
        snapshot.commit().await?;
        Ok(count.max(0) as u64)
    }

    /// The pending writes, for the bus to commit.
    pub fn into_staged(self) -> Staged {
        Staged { documents: self.documents, points: self.points, events: self.events, alerts: self.alerts }
    }
}

#[cfg(test)]
mod tests {
    use super::WriteSet;
    use crate::alerts::AlertWrite;
    use crate::store::documents::{self, Scope};
    use crate::store::{connect, default_url};
    use serde_json::json;

    /// A batch handled while the one before it commits reads the committing
    /// batch's documents and alert writes as if they were stored, its own over them.
    #[tokio::test]
    async fn reads_see_the_committing_batch_under_the_calls_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&default_url(dir.path())).await.unwrap();
        let scope = Scope { plugin: "p".into(), org: "o".into(), generation: 0 };
        let stored = vec![("a/1".into(), json!(1)), ("a/2".into(), json!(2)), ("a/3".into(), json!(3))];
        documents::put_many(&db, &scope, stored).await.unwrap();

        let mut before = WriteSet::default();
        before.put("a/2".into(), json!(20));
        before.put("a/4".into(), json!(4));
        before.delete(&db, &scope, "a/3").await.unwrap();
        before.alert(AlertWrite::Resolve("k".into()));
        let mut writes = WriteSet::after(before.committing());
        writes.put("a/4".into(), json!(40));
        writes.delete(&db, &scope, "a/1").await.unwrap();

        assert_eq!(writes.get(&db, &scope, "a/2").await.unwrap(), Some(json!(20)));
        assert_eq!(writes.get(&db, &scope, "a/3").await.unwrap(), None);
        assert_eq!(writes.get(&db, &scope, "a/4").await.unwrap(), Some(json!(40)));
        let page = writes.scan(&db, &scope, "a/", None, 10).await.unwrap();
        assert_eq!(page, vec![("a/2".into(), json!(20)), ("a/4".into(), json!(40))]);
        let page = writes.scan(&db, &scope, "a/", Some("a/2"), 1).await.unwrap();
        assert_eq!(page, vec![("a/4".into(), json!(40))]);
        assert_eq!(writes.count(&db, &scope, "a/").await.unwrap(), 2);
        assert_eq!(writes.alert_pending("k"), Some(false));
        assert_eq!(writes.alert_pending("other"), None);

        // The batch before lands: the same reads answer the same.
        documents::put_many(&db, &scope, vec![("a/2".into(), json!(20)), ("a/4".into(), json!(4))]).await.unwrap();
        documents::delete_many(&db, &scope, vec!["a/3".into()]).await.unwrap();
        assert_eq!(writes.get(&db, &scope, "a/4").await.unwrap(), Some(json!(40)));
        let page = writes.scan(&db, &scope, "a/", None, 10).await.unwrap();
        assert_eq!(page, vec![("a/2".into(), json!(20)), ("a/4".into(), json!(40))]);
        assert_eq!(writes.count(&db, &scope, "a/").await.unwrap(), 2);

        let staged = writes.into_staged();
        assert_eq!(staged.documents.len(), 2, "only the call's own writes commit");
    }
}
