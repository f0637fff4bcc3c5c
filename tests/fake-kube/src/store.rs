//! The objects, one resource version counter for all of them (as etcd keeps),
//! and the recent changes a watch replays from; older ones are forgotten, and
//! a watch from before them is told `410 Gone` so its client lists again.

use crate::kinds::Kind;
use crate::selector::Selector;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// `(group, plural, namespace, name)`; the namespace is empty for cluster-scoped kinds.
type Key = (&'static str, &'static str, String, String);

/// One committed change: the object before (absent when created) and after (absent when deleted).
#[derive(Debug)]
pub struct Change {
    pub revision: u64,
    pub kind: &'static Kind,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    /// The object as last seen: the new state, or the deleted one.
    pub fn object(&self) -> &Value {
        self.after.as_ref().or(self.before.as_ref()).unwrap_or(&Value::Null)
    }
}

/// What a watch starts from: the remembered changes it missed, and a receiver of those to come.
#[derive(Debug)]
pub struct Resumed {
    pub replay: Vec<Arc<Change>>,
    pub receiver: broadcast::Receiver<Arc<Change>>,
}

/// A watch asked to resume from a revision the store no longer remembers.
#[derive(Debug)]
pub struct Expired {
    pub oldest: u64,
}

pub struct Store {
    revision: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    changes: broadcast::Sender<Arc<Change>>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn key(kind: &'static Kind, namespace: &str, name: &str) -> Key {
    (kind.group, kind.plural, if kind.namespaced { namespace.to_owned() } else { String::new() }, name.to_owned())
}

/// Everything but the bookkeeping: what a change to `generation` is about.
fn desired_state(object: &Value) -> Value {
    let mut state = object.clone();
    if let Some(map) = state.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    state
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let mut store =
            Store { revision: 0, objects: BTreeMap::new(), history: VecDeque::new(), history_limit, changes };
        let namespace = crate::kinds::by_kind("v1", "Namespace").expect("namespaces are served");
        for name in ["default", "kube-system"] {
            store.put(namespace, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        }
        store
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, kind: &'static Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(kind, namespace, name))
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects.contains_key(&("", "namespaces", String::new(), name.to_owned()))
    }

    /// The kind's objects in `namespace` (all of them when `None`) that the selector picks, in name order.
    pub fn list(&self, kind: &'static Kind, namespace: Option<&str>, selector: &Selector) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((group, plural, ns, _), _)| {
                *group == kind.group && *plural == kind.plural && namespace.is_none_or(|wanted| wanted == ns)
            })
            .map(|(_, object)| object)
            .filter(|object| selector.matches(object["metadata"]["labels"].as_object()))
            .collect()
    }

    /// Stores an object, created or replaced, stamping what the server owns;
    /// returns it as stored.
    pub fn put(&mut self, kind: &'static Kind, mut object: Value) -> Value {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let key = key(kind, &namespace, &name);
        let before = self.objects.get(&key).cloned();
        self.revision += 1;
        let metadata = &mut object["metadata"];
        match &before {
            Some(old) => {
                for field in ["uid", "creationTimestamp"] {
                    metadata[field] = old["metadata"][field].clone();
                }
                let generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
                let changed = desired_state(old) != desired_state(&object);
                object["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
            }
            None => {
                metadata["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.revision));
                metadata["creationTimestamp"] = json!(now());
                metadata["generation"] = json!(1);
            }
        }
        if !kind.namespaced
            && let Some(metadata) = object["metadata"].as_object_mut()
        {
            metadata.remove("namespace");
        }
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(key, object.clone());
        self.record(kind, before, Some(object.clone()));
        object
    }

    /// Deletes an object and, as the garbage collector and the namespace
    /// controller would, everything it owns or contains; returns it as deleted.
    pub fn delete(&mut self, kind: &'static Kind, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self.objects.remove(&key(kind, namespace, name))?;
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        object["metadata"]["deletionTimestamp"] = json!(now());
        self.record(kind, Some(object.clone()), None);
        let uid = object["metadata"]["uid"].clone();
        let dependents: Vec<(&'static Kind, String, String)> = self
            .objects
            .iter()
            .filter(|((_, _, ns, _), child)| {
                let owned =
                    child["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|r| r["uid"] == uid);
                owned || (kind.kind == "Namespace" && ns == name)
            })
            .filter_map(|((group, plural, ns, child), _)| {
                let child_kind = crate::kinds::KINDS.iter().find(|k| k.group == *group && k.plural == *plural)?;
                Some((child_kind, ns.clone(), child.clone()))
            })
            .collect();
        for (child_kind, ns, child) in dependents {
            self.delete(child_kind, &ns, &child);
        }
        Some(object)
    }

    fn record(&mut self, kind: &'static Kind, before: Option<Value>, after: Option<Value>) {
        let change = Arc::new(Change { revision: self.revision, kind, before, after });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        let _ = self.changes.send(change);
    }

    /// Forgets every change so far: the next watch from an earlier revision is told it expired.
    pub fn compact(&mut self) {
        self.history.clear();
    }

    /// The changes after `revision` still remembered, and a receiver of those to come.
    pub fn watch_from(&self, revision: u64) -> Result<Resumed, Expired> {
        let oldest_known = self.history.front().map_or(self.revision + 1, |c| c.revision);
        if revision + 1 < oldest_known {
            return Err(Expired { oldest: oldest_known });
        }
        let replay = self.history.iter().filter(|c| c.revision > revision).cloned().collect();
        Ok(Resumed { replay, receiver: self.changes.subscribe() })
    }

    /// A receiver of every change from now on, for the controllers.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::by_kind;

    fn config_map(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": labels}})
    }

    #[test]
    fn revisions_grow_and_a_watch_too_far_back_expires() {
        let kind = by_kind("v1", "ConfigMap").expect("served");
        let mut store = Store::new(2);
        let first = store.put(kind, config_map("a", json!({"app": "ide"})));
        let updated = store.put(kind, config_map("a", json!({"app": "db"})));
        assert_eq!(first["metadata"]["uid"], updated["metadata"]["uid"]);
        assert!(updated["metadata"]["resourceVersion"].as_str() > first["metadata"]["resourceVersion"].as_str());
        store.put(kind, config_map("b", json!({"app": "ide"})));

        let resumed = store.watch_from(store.revision() - 2).expect("remembered");
        assert_eq!(resumed.replay.len(), 2);
        let err = store.watch_from(1).expect_err("forgotten");
        assert!(err.oldest > 2);
        assert_eq!(store.list(kind, Some("default"), &Selector::parse("app=ide").expect("parses")).len(), 1);
    }

    #[test]
    fn deleting_a_namespace_deletes_what_it_holds_and_owners_take_their_dependents() {
        let kind = by_kind("v1", "ConfigMap").expect("served");
        let namespace = by_kind("v1", "Namespace").expect("served");
        let mut store = Store::new(100);
        store.put(namespace, json!({"metadata": {"name": "ws"}}));
        let owner = store.put(kind, json!({"metadata": {"name": "owner", "namespace": "default"}}));
        store.put(
            kind,
            json!({"metadata": {"name": "child", "namespace": "default", "ownerReferences": [{"uid": owner["metadata"]["uid"]}]}}),
        );
        store.put(kind, json!({"metadata": {"name": "inside", "namespace": "ws"}}));
        store.delete(kind, "default", "owner");
        assert!(store.get(kind, "default", "child").is_none());
        store.delete(namespace, "", "ws");
        assert!(store.get(kind, "ws", "inside").is_none());
    }
}
