//! A plugin that passed validation and can be called.

use super::manifest::PluginManifest;
use super::routes::RouteTable;
use super::stats::CallStats;
use crate::capabilities::Grants;
use crate::capabilities::state::CallState;
use crate::wit::PluginPre;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a plugin came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary, under this name (each bundled plugin is its own origin).
    Bundled(&'static str),
    /// A `.wasm` file in the plugins folder.
    File(PathBuf),
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Bundled(_) => "bundled".into(),
            Origin::File(path) => path.display().to_string(),
        }
    }
}

/// The per-call limits the operator set for this plugin.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub deadline_ms: u64,
    pub memory_bytes: u64,
    /// Largest response body a route may answer with.
    pub response_bytes: usize,
}

impl Limits {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// One loaded version of a plugin. Calls hold an `Arc` to it, so a reload swaps
/// in the new version while calls in flight finish on this one.
pub struct LoadedPlugin {
    pub manifest: PluginManifest,
    pub wit_version: String,
    pub sha256: String,
    pub origin: Origin,
    pub routes: RouteTable,
    pub grants: Arc<Grants>,
    pub limits: Limits,
    pub settings: Arc<serde_json::Map<String, serde_json::Value>>,
    pub stats: Arc<CallStats>,
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    pub(crate) pre: PluginPre<CallState>,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}
