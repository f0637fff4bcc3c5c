//! Kubernetes watches delivered as events: each watch a plugin declares
//! (`describe-watches`, WIT 0.1.7) runs as a kube-rs watcher on the replica
//! holding its lease, and every change of a matching object becomes an event
//! `kube.{plugin}.{watch}` in the object's org (from the `devpulse.dev/org`
//! label the host stamps on what plugins apply). Events go through the log, so
//! they are durable, ordered and replayed by rebuilds like any input.
//!
//! What a watch last saw is kept beside the log (`watched_object`), in the same
//! transaction as its events: after a restart, a lost lease or a `410 Gone`
//! the watcher lists again, and the list is compared with it, so a change made
//! while nobody watched arrives as one event with the object's current state
//! and an object deleted meanwhile as a `deleted` event. Intermediate states
//! nobody saw are not invented.

mod follow;
mod seen;

use super::Bus;
use crate::runtime::Runtime;
use crate::runtime::manifest::WatchDoc;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the running watches are matched with the held leases.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// The lease under which one replica at a time runs a plugin's watch.
pub fn lease_key(plugin: &str, watch: &str) -> String {
    format!("watch/{plugin}/{watch}")
}

/// A watch as it should run: what to watch and where the plugin may look.
#[derive(Clone, Debug, PartialEq)]
struct Wanted {
    plugin: String,
    watch: WatchDoc,
    /// Namespace patterns of the plugin's `kube` grant.
    namespaces: Vec<String>,
}

/// Every watch that should run somewhere: those of enabled plugins granted
/// `kube` whose kind the grant names, when a cluster is configured. Keyed by
/// lease key. A watch of a kind outside the grant never runs.
fn wanted(runtime: &Runtime) -> BTreeMap<String, Wanted> {
    if runtime.cluster().is_none() {
        return BTreeMap::new();
    }
    let registry = runtime.registry();
    let mut wanted = BTreeMap::new();
    for plugin in registry.all() {
        if registry.is_disabled(plugin.name()) || !plugin.grants.allows("kube") {
            continue;
        }
        for watch in &plugin.manifest.watches {
            if plugin.grants.kube.kinds.contains(&watch.kind) {
                wanted.insert(
                    lease_key(plugin.name(), &watch.name),
                    Wanted {
                        plugin: plugin.name().to_owned(),
                        watch: watch.clone(),
                        namespaces: plugin.grants.kube.namespaces.clone(),
                    },
                );
            }
        }
    }
    wanted
}

/// The lease keys of [`wanted`], for the lease round.
pub fn lease_keys(runtime: &Runtime) -> impl Iterator<Item = String> {
    wanted(runtime).into_keys()
}

struct Running {
    wanted: Wanted,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the watches whose leases this replica holds, until the task is
/// aborted: a follower starts when a lease is taken (or its watch changed with
/// a new version of the plugin, or the follower stopped on an error) and stops
/// when the lease goes.
pub async fn run(runtime: Runtime, bus: Bus) {
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    loop {
        let mut wanted = wanted(&runtime);
        wanted.retain(|key, _| bus.leases().runs(key));
        running.retain(|key, follower| wanted.get(key) == Some(&follower.wanted) && !follower.task.is_finished());
        for (key, watch) in wanted {
            if let Entry::Vacant(slot) = running.entry(key) {
                let task =
                    tokio::spawn(follow::follow(runtime.clone(), bus.clone(), slot.key().clone(), watch.clone()));
                slot.insert(Running { wanted: watch, task });
            }
        }
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}
