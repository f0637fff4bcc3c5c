//! Kubernetes objects (WIT 0.1.6), and watches of them (0.1.7), for plugins the operator grants `kube` with
//! the namespaces and kinds they may touch; anything else is
//! [`crate::Error::Denied`]. Objects go in and come back as any type that
//! serializes as the API server writes them (k8s-openapi's types, or
//! `serde_json::Value`). The host labels what a plugin applies with the plugin
//! and the caller's org, and shows a plugin only its org's objects.
//!
//! Calls reach the cluster at once, not when the call commits: a retried
//! event applies again, which server-side apply makes harmless. Apply, never
//! create: the same object applied twice is the same object.
//!
//! ```ignore
//! let stored: Deployment = kube::apply(&deployment)?;
//! let found: Option<Deployment> = kube::get(&ObjectRef::namespaced("apps/v1", "Deployment", "ws-ada", "ide"))?;
//! ```

use crate::error::{decode, encode};
use crate::host::kube as raw;
use crate::{Error, Event, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use crate::bindings::exports::devpulse::plugin::watches::Watch;
pub use raw::{ObjectPage, ObjectRef, Selection};

fn encoded<T: Serialize>(object: &T) -> Result<String> {
    serde_json::to_string(object).map_err(encode)
}

/// Server-side apply under the plugin's field manager; a field another
/// manager owns is [`crate::Error::Conflict`]. Returns the object as stored.
pub fn apply<T: Serialize + DeserializeOwned>(object: &T) -> Result<T> {
    serde_json::from_str(&raw::apply(&encoded(object)?, false)?).map_err(decode)
}

/// [`apply`], taking over fields other managers own.
pub fn apply_forced<T: Serialize + DeserializeOwned>(object: &T) -> Result<T> {
    serde_json::from_str(&raw::apply(&encoded(object)?, true)?).map_err(decode)
}

/// The object, or `None` when absent or another org's.
pub fn get<T: DeserializeOwned>(target: &ObjectRef) -> Result<Option<T>> {
    raw::get(target)?.map(|text| serde_json::from_str(&text).map_err(decode)).transpose()
}

/// One page of at most `limit` objects, and the cursor of the next.
pub fn list<T: DeserializeOwned>(
    selection: &Selection,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<T>, Option<String>)> {
    let page = raw::list(selection, cursor, limit)?;
    let items = page.items.iter().map(|text| serde_json::from_str(text).map_err(decode)).collect::<Result<_>>()?;
    Ok((items, page.cursor))
}

/// Deletes the object and what it owns; `false` when it was not there.
pub fn delete(target: &ObjectRef) -> Result<bool> {
    raw::delete(target)
}

/// The last `tail_lines` lines a pod's container wrote (`None`: its only container).
pub fn logs(pod: &ObjectRef, container: Option<&str>, tail_lines: u32) -> Result<String> {
    raw::logs(pod, container, tail_lines)
}

impl ObjectRef {
    /// An object in a namespace.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A cluster-scoped object, such as a namespace.
    pub fn cluster(api_version: &str, kind: &str, name: &str) -> Self {
        ObjectRef { api_version: api_version.into(), kind: kind.into(), namespace: None, name: name.into() }
    }
}

impl Selection {
    /// Objects of a kind in a namespace (`None` for cluster-scoped kinds) that `labels` picks (empty: all).
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, labels: &str) -> Self {
        Selection {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            labels: labels.into(),
        }
    }
}

impl Watch {
    /// Objects of `kind` this plugin applied that `labels` picks (a label
    /// selector; empty: all). Each change arrives at `on_event` as an event of
    /// kind `kube.{plugin}.{name}`, in the org the object belongs to; read it
    /// with [`WatchEvent::read`].
    pub fn new(name: &str, api_version: &str, kind: &str, labels: &str) -> Self {
        Watch { name: name.into(), api_version: api_version.into(), kind: kind.into(), labels: labels.into() }
    }
}

/// What happened to a watched object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Created or changed; `object` is its state now.
    Applied,
    /// Gone; `object` is its last state.
    Deleted,
}

/// The payload of a watch's event.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WatchEvent<T> {
    #[serde(rename = "type")]
    pub change: Change,
    pub object: T,
}

impl<T: DeserializeOwned> WatchEvent<T> {
    /// The change in a `kube.*` event, which only the host emits.
    pub fn read(event: &Event) -> Result<Self> {
        if event.source != "kube" {
            return Err(Error::InvalidInput(format!("{} is not a Kubernetes watch event", event.kind)));
        }
        serde_json::from_str(&event.payload).map_err(decode)
    }
}
