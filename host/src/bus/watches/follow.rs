//! One watch, on the replica holding its lease: the cluster's changes turned
//! into events, committed with what the watch last saw.

use super::{Wanted, seen};
use crate::bus::Bus;
use crate::bus::log::{self, NewEntry};
use crate::bus::wake::News;
use crate::capabilities::kube::pattern_matches;
use crate::kube::{ClusterError, ORG_LABEL, PLUGIN_LABEL};
use crate::runtime::Runtime;
use crate::runtime::manifest::WatchDoc;
use crate::store::StoreError;
use crate::store::entities::watched_object::Model as Seen;
use ::kube::api::DynamicObject;
use ::kube::runtime::watcher::Event;
use futures::StreamExt;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The source of watch events in the log.
pub const SOURCE: &str = "kube";

/// Most changes committed in one transaction (a relist of many objects).
const BATCH: usize = 256;

/// How long a watch that failed waits before it is started again.
const RESTART_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error("the watch stream ended")]
    Ended,
}

/// A change that becomes an event.
enum Change {
    Applied { uid: String, org: String, resource_version: String, object: Value },
    Deleted { uid: String, org: String, object: Value },
}

/// Follows one watch until its lease moves to another replica; after a
/// failure it waits a little and ends, and the supervisor starts it again
/// (from a fresh list, compared with what was committed).
pub async fn follow(runtime: Runtime, bus: Bus, key: String, wanted: Wanted) {
    let watch = &wanted.watch.name;
    match follow_until_lost(&runtime, &bus, &key, &wanted).await {
        Ok(()) => tracing::info!(plugin = wanted.plugin, watch, "watch stopped: its lease moved to another replica"),
        Err(err) => {
            tracing::warn!(plugin = wanted.plugin, watch, "watch failed, starting it again: {err}");
            runtime.telemetry().kube_watch(&wanted.plugin, watch, "error", 1);
            tokio::time::sleep(RESTART_AFTER).await;
        }
    }
}

/// The label selector of a watch: the plugin's own objects that carry an org,
/// narrowed by the watch's selector.
fn selector(plugin: &str, labels: &str) -> String {
    let own = format!("{PLUGIN_LABEL}={plugin},{ORG_LABEL}");
    if labels.is_empty() { own } else { format!("{own},{labels}") }
}

/// What the watch knows and is doing: the objects committed last, and during a
/// list the uids it has listed so far.
struct Follower<'a> {
    wanted: &'a Wanted,
    known: HashMap<String, Seen>,
    listing: Option<HashSet<String>>,
}

async fn follow_until_lost(runtime: &Runtime, bus: &Bus, key: &str, wanted: &Wanted) -> Result<(), FollowError> {
    let Wanted { plugin, watch, .. } = wanted;
    let cluster = runtime.cluster().ok_or(ClusterError::NotConfigured)?.clone();
    let known = seen::all(bus.db(), plugin, &watch.name).await?.into_iter().map(|row| (row.uid.clone(), row)).collect();
    let mut follower = Follower { wanted, known, listing: None };
    let stream = cluster.watch(&watch.api_version, &watch.kind, &selector(plugin, &watch.labels)).await?;
    let mut chunks = std::pin::pin!(stream.ready_chunks(BATCH));
    while let Some(chunk) = chunks.next().await {
        let mut changes = Vec::new();
        for item in chunk {
            match item {
                Ok(event) => changes.extend(follower.see(event)),
                Err(err) => {
                    tracing::warn!(plugin, watch = watch.name, "watch error (it lists again after a pause): {err}");
                    runtime.telemetry().kube_watch(plugin, &watch.name, "error", 1);
                }
            }
        }
        if !changes.is_empty() && !commit(runtime, bus, key, wanted, changes).await? {
            return Ok(());
        }
    }
    Err(FollowError::Ended)
}

impl Follower<'_> {
    /// The changes one watcher event makes, with `known` brought up to date.
    fn see(&mut self, event: Event<DynamicObject>) -> Vec<Change> {
        match event {
            Event::Init => {
                self.listing = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(object) | Event::Apply(object) => self.applied(object).into_iter().collect(),
            Event::Delete(object) => self.deleted(object).into_iter().collect(),
            Event::InitDone => {
                // Whatever the list left out was deleted while nobody watched.
                let listed = self.listing.take().unwrap_or_default();
                let gone: Vec<String> = self.known.keys().filter(|uid| !listed.contains(*uid)).cloned().collect();
                gone.into_iter()
                    .filter_map(|uid| self.known.remove(&uid))
                    .map(|row| Change::Deleted { uid: row.uid, org: row.org, object: row.object })
                    .collect()
            }
        }
    }

    fn applied(&mut self, object: DynamicObject) -> Option<Change> {
        let (uid, org, resource_version, object) = self.readable(object)?;
        if let Some(listing) = &mut self.listing {
            listing.insert(uid.clone());
        }
        if self.known.get(&uid).is_some_and(|row| row.resource_version == resource_version) {
            return None;
        }
        self.known.insert(
            uid.clone(),
            Seen {
                plugin: self.wanted.plugin.clone(),
                watch: self.wanted.watch.name.clone(),
                uid: uid.clone(),
                org: org.clone(),
                resource_version: resource_version.clone(),
                object: object.clone(),
            },
        );
        Some(Change::Applied { uid, org, resource_version, object })
    }

    fn deleted(&mut self, object: DynamicObject) -> Option<Change> {
        let (uid, org, _, object) = self.readable(object)?;
        self.known.remove(&uid);
        Some(Change::Deleted { uid, org, object })
    }

    /// The object's uid, org, resource version and JSON (without
    /// `managedFields`), when it lies within the plugin's grant.
    fn readable(&self, object: DynamicObject) -> Option<(String, String, String, Value)> {
        let metadata = &object.metadata;
        let uid = metadata.uid.clone()?;
        let resource_version = metadata.resource_version.clone()?;
        let org = metadata.labels.as_ref()?.get(ORG_LABEL)?.clone();
        // A namespaced object by its namespace; a Namespace by its name; nothing else.
        let namespace = match (&metadata.namespace, self.wanted.watch.kind.as_str()) {
            (Some(namespace), _) => namespace,
            (None, "Namespace") => metadata.name.as_ref()?,
            (None, _) => return None,
        };
        if !self.wanted.namespaces.iter().any(|pattern| pattern_matches(pattern, namespace)) {
            return None;
        }
        let mut object = serde_json::to_value(object).ok()?;
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("managedFields");
        }
        Some((uid, org, resource_version, object))
    }
}

/// Appends the changes' events and records what the watch saw, in one
/// transaction that also checks the lease: false when another replica holds
/// it now, and then nothing commits.
async fn commit(
    runtime: &Runtime,
    bus: &Bus,
    key: &str,
    wanted: &Wanted,
    changes: Vec<Change>,
) -> Result<bool, FollowError> {
    let Wanted { plugin, watch, .. } = wanted;
    let txn = bus.db().begin().await?;
    if !bus.leases().fence(&txn, key).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    let kind = WatchDoc::event_kind(plugin, &watch.name);
    let (mut applied, mut deleted) = (0, 0);
    let mut entries = Vec::with_capacity(changes.len());
    for change in changes {
        let entry = match change {
            Change::Applied { uid, org, resource_version, object } => {
                applied += 1;
                seen::put(&txn, plugin, &watch.name, &uid, &org, &resource_version, &object).await?;
                let dedupe = format!("{plugin}/{}/{uid}/{resource_version}", watch.name);
                NewEntry::arriving(&org, SOURCE, &kind, json!({"type": "applied", "object": object}), Some(dedupe))
            }
            Change::Deleted { uid, org, object } => {
                deleted += 1;
                seen::remove(&txn, plugin, &watch.name, &uid).await?;
                let dedupe = format!("{plugin}/{}/{uid}/deleted", watch.name);
                NewEntry::arriving(&org, SOURCE, &kind, json!({"type": "deleted", "object": object}), Some(dedupe))
            }
        };
        entries.push(entry);
    }
    let news = News::of(&entries);
    log::append(&txn, entries).await?;
    txn.commit().await?;
    bus.wake().appended(news);
    let telemetry = runtime.telemetry();
    telemetry.kube_watch(plugin, &watch.name, "applied", applied);
    telemetry.kube_watch(plugin, &watch.name, "deleted", deleted);
    Ok(true)
}
