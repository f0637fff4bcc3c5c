//! Kubernetes objects (WIT 0.1.6), for plugins the operator grants `kube` with
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

use crate::Result;
use crate::error::{decode, encode};
use crate::host::kube as raw;
use serde::{Serialize, de::DeserializeOwned};

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
