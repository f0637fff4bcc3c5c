//! Everything one plugin call writes, held in memory until the call succeeds;
//! the bus then commits it in one transaction (see `crate::bus::commit`). A
//! trap, a timeout or an error drops it, so a call's effects happen entirely or
//! not at all. Reads during the call see its own writes.

use crate::alerts::AlertWrite;
use crate::metrics::rollup::NewPoint;
use crate::store::StoreError;
use crate::store::documents::{self, Scope};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Bound;

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
}

impl WriteSet {
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
        self.alerts.iter().rev().find_map(|write| match write {
            AlertWrite::Raise(alert) if alert.key == key => Some(true),
            AlertWrite::Resolve(resolved) if resolved == key => Some(false),
            _ => None,
        })
    }

    /// Drops the emitted events and alert writes: a rebuild replays history,
    /// and what it would emit or raise the live generation did already.
    pub fn without_side_effects(mut self) -> Self {
        self.events.clear();
        self.alerts.clear();
        self
    }

    /// True when committing may append to the event log (emitted events, alert
    /// transitions), so deliveries and the live stream should wake.
    pub fn emits(&self) -> bool {
        !self.events.is_empty() || !self.alerts.is_empty()
    }

    /// The document as this call sees it.
    pub async fn get(&self, db: &DatabaseConnection, scope: &Scope, key: &str) -> Result<Option<Value>, StoreError> {
        match self.documents.get(key) {
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
        // Each pending deletion can hide at most one stored row, so fetching that
        // many more rows than asked always leaves enough after merging.
        let deletions = self.documents.values().filter(|value| value.is_none()).count();
        let stored = documents::scan(db, scope, prefix, after, (limit + deletions) as u64).await?;
        let lower = match after {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Included(prefix.to_owned()),
        };
        let mut merged: BTreeMap<String, Option<Value>> =
            stored.into_iter().map(|(key, value)| (key, Some(value))).collect();
        let pending = self.documents.range((lower, Bound::Unbounded)).take_while(|(key, _)| key.starts_with(prefix));
        for (key, value) in pending {
            merged.insert(key.clone(), value.clone());
        }
        Ok(merged.into_iter().filter_map(|(key, value)| value.map(|value| (key, value))).take(limit).collect())
    }

    /// Counts documents under `prefix` as this call sees them.
    pub async fn count(&self, db: &DatabaseConnection, scope: &Scope, prefix: &str) -> Result<u64, StoreError> {
        let mut count = documents::count(db, scope, prefix).await? as i64;
        for (key, value) in self.documents.range(prefix.to_owned()..) {
            if !key.starts_with(prefix) {
                break;
            }
            let stored = documents::get(db, scope, key).await?.is_some();
            count += match (stored, value.is_some()) {
                (false, true) => 1,
                (true, false) => -1,
                _ => 0,
            };
        }
        Ok(count.max(0) as u64)
    }

    /// The pending writes, for the bus to commit.
    pub fn into_staged(self) -> Staged {
        Staged { documents: self.documents, points: self.points, events: self.events, alerts: self.alerts }
    }
}
