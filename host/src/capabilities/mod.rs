//! Host interfaces a plugin imports, one module per WIT interface.
//!
//! Storage, events, metrics, alerts, identity, log and config are always linked. Capabilities that
//! reach outside the host (`http`, `kube`) are allowed only when the manifest asks for
//! them AND the operator grants them; otherwise every call returns `denied`.

pub mod alerts;
pub mod config;
pub mod events;
pub mod http;
pub mod identity;
pub mod kube;
pub mod log;
pub mod metrics;
pub mod output;
pub mod state;
pub mod storage;
pub mod writes;

use crate::capabilities::state::CallState;
use crate::config::{KubeGrant, PluginConfig};
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::types;
use serde::Serialize;

/// Capabilities the host knows how to grant.
pub const KNOWN: &[&str] = &["http", "kube"];

/// Most writes (documents, points, events) one call may stage.
pub const MAX_WRITES_PER_CALL: usize = 10_000;

/// What one plugin may do beyond the always-available interfaces, computed once
/// at load time from its manifest and the operator's config.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Grants {
    /// Capabilities both requested and granted.
    pub granted: Vec<String>,
    /// Hosts `http` may reach (exact names, or `*.example.com`).
    pub http_hosts: Vec<String>,
    /// Namespaces and kinds `kube` may touch.
    pub kube: KubeGrant,
}

impl Grants {
    /// Intersects what the manifest requests with what the operator granted.
    pub fn resolve(requested: &[String], operator: &PluginConfig) -> Self {
        let granted: Vec<String> = requested.iter().filter(|cap| operator.grants.contains(cap)).cloned().collect();
        let has = |capability: &str| granted.iter().any(|cap| cap == capability);
        let http_hosts = if has("http") { operator.http_allow.clone() } else { Vec::new() };
        let kube = if has("kube") { operator.kube.clone() } else { KubeGrant::default() };
        Grants { granted, http_hosts, kube }
    }

    pub fn allows(&self, capability: &str) -> bool {
        self.granted.iter().any(|cap| cap == capability)
    }
}

/// Logs a refused capability call and builds the error the plugin sees.
pub(crate) fn deny(state: &CallState, capability: &str, why: String) -> PluginError {
    tracing::warn!(plugin = state.plugin(), capability, "denied: {why}");
    PluginError::Denied(why)
}

/// Refuses a write when the call already staged too many.
pub(crate) fn check_write_budget(state: &CallState) -> Result<(), PluginError> {
    if state.writes.len() >= MAX_WRITES_PER_CALL {
        return Err(PluginError::Unavailable(format!("a call may stage at most {MAX_WRITES_PER_CALL} writes")));
    }
    Ok(())
}

impl types::Host for CallState {}

impl From<crate::auth::Role> for types::Role {
    fn from(role: crate::auth::Role) -> Self {
        match role {
            crate::auth::Role::Developer => types::Role::Developer,
            crate::auth::Role::Manager => types::Role::Manager,
            crate::auth::Role::Admin => types::Role::Admin,
            crate::auth::Role::Owner => types::Role::Owner,
        }
    }
}

/// The caller as plugins see it.
impl From<&crate::auth::Principal> for types::Principal {
    fn from(principal: &crate::auth::Principal) -> Self {
        types::Principal {
            user_id: principal.user_id.clone(),
            org_id: principal.org_id.clone(),
            role: principal.role.into(),
        }
    }
}
