//! Turning bytes into a running plugin: compile (or load from the cache), check
//! the WIT version, link, read the manifest, check it, and install it.

use super::Runtime;
use super::call::{CallError, Callee};
use super::happenings::Happening;
use super::manifest::{ManifestError, PluginManifest};
use super::plugin::{Limits, LoadedPlugin, Origin};
use super::registry::Failure;
use super::routes::RouteTable;
use super::version::{self, VersionError};
use crate::capabilities::Grants;
use crate::capabilities::state::CallState;
use crate::config::settings_json;
use crate::wit::PluginPre;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Why a plugin was not loaded. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly file")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("the component's imports cannot be satisfied: {0}")]
    Link(String),
    #[error("describe() failed: {0}")]
    Describe(CallError),
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("plugin name {name:?} is already used by {other}")]
    NameClash { name: String, other: String },
    #[error("cannot read the file: {0}")]
    Io(String),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Runtime {
    /// Validates `bytes` as a plugin without installing it.
    pub async fn prepare(&self, bytes: Arc<[u8]>, origin: Origin) -> Result<LoadedPlugin, LoadError> {
        if wasmparser::Parser::is_core_wasm(&bytes) {
            return Err(LoadError::CoreModule);
        }
        if !wasmparser::Parser::is_component(&bytes) {
            return Err(LoadError::NotWasm);
        }
        let sha256 = sha256_hex(&bytes);
        let inner = self.inner.clone();
        let digest = sha256.clone();
        let component =
            tokio::task::spawn_blocking(move || inner.cache.load_or_compile(&inner.engine, &bytes, &digest))
                .await
                .map_err(|err| LoadError::Compile(err.to_string()))?
                .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        let wit_version = version::detect(&self.inner.engine, &component)?;
        let instance_pre =
            self.inner.linker.instantiate_pre(&component).map_err(|err| LoadError::Link(format!("{err:#}")))?;
        let pre = PluginPre::new(instance_pre).map_err(|err| LoadError::Link(format!("{err:#}")))?;

        let (raw_manifest, watches) = self.describe(&pre).await.map_err(LoadError::Describe)?;
        let config = self.inner.config.plugin(&raw_manifest.name);
        let mut manifest = PluginManifest::from_wit(raw_manifest, watches, &config.manifest)?;
        manifest.override_intervals(&config.schedules)?;
        let routes = RouteTable::compile(&manifest.routes)?;
        let grants = Grants::resolve(&manifest.capabilities, &config);
        Ok(LoadedPlugin {
            stats: self.registry().stats_for(&manifest.name),
            wit_version,
            sha256,
            origin,
            routes,
            grants: Arc::new(grants),
            limits: Limits {
                deadline_ms: config.deadline_ms,
                memory_bytes: config.memory_mib << 20,
                response_bytes: config.max_response_bytes,
            },
            settings: Arc::new(settings_json(&config.settings)),
            loaded_at: chrono::Utc::now(),
            manifest,
            pre,
        })
    }

    /// Reads the manifest, and the watches when the plugin exports them, in a
    /// sandbox with default limits and no capabilities.
    async fn describe(
        &self,
        pre: &PluginPre<CallState>,
    ) -> Result<(crate::wit::Manifest, Vec<crate::wit::Watch>), CallError> {
        let defaults = crate::config::PluginConfig::default();
        let callee = Callee {
            name: "(loading)",
            pre,
            limits: Limits {
                deadline_ms: defaults.deadline_ms,
                memory_bytes: defaults.memory_mib << 20,
                response_bytes: defaults.max_response_bytes,
            },
            grants: Arc::default(),
            settings: Arc::default(),
            stats: None,
        };
        let mut call = self.instantiate(&callee, None, None).await?;
        let handler = call.bindings.devpulse_plugin_handler();
        let watches = call.bindings.devpulse_plugin_watches();
        let budget = callee.limits.deadline();
        let raw = tokio::time::timeout(budget, async {
            let manifest = handler.call_describe(&mut call.store).await?;
            let watches = match watches {
                Some(watches) => watches.call_describe_watches(&mut call.store).await?,
                None => Vec::new(),
            };
            Ok(Ok((manifest, watches)))
        })
        .await;
        self.settle(&callee, "describe", call, raw).await.map(|(described, _)| described)
    }

    /// Loads `bytes` and makes it the running version of its plugin. On failure the
    /// previous version from the same origin (if any) keeps running and the reason
    /// is listed.
    pub async fn install(&self, bytes: Arc<[u8]>, origin: Origin) -> Result<String, LoadError> {
        let source = origin.describe();
        let result = match self.prepare(bytes, origin.clone()).await {
            Ok(plugin) => match self.registry().get(plugin.name()) {
                Some(other) if other.origin != origin => {
                    Err(LoadError::NameClash { name: plugin.name().to_owned(), other: other.origin.describe() })
                }
                _ => Ok(plugin),
            },
            Err(err) => Err(err),
        };
        match result {
            Ok(plugin) => {
                let name = plugin.name().to_owned();
                // A file whose plugin was renamed leaves its old name behind.
                if let Some(previous) = self.registry().by_origin(&origin)
                    && previous.name() != name
                {
                    self.registry().remove_origin(&origin);
                }
                tracing::info!(plugin = %name, version = %plugin.manifest.version, wit = %plugin.wit_version, %source, "plugin loaded");
                self.tell(Happening::Loaded {
                    plugin: name.clone(),
                    version: plugin.manifest.version.clone(),
                    wit_version: plugin.wit_version.to_string(),
                    source: source.clone(),
                });
                self.registry().install(plugin);
                self.registry().clear_failure(&source);
                Ok(name)
            }
            Err(err) => {
                let running = self.registry().by_origin(&origin).map(|p| p.name().to_owned());
                let plugin = match &err {
                    LoadError::NameClash { name, .. } => Some(name.clone()),
                    _ => running.clone(),
                };
                match &running {
                    Some(name) => {
                        tracing::warn!(plugin = %name, %source, "replacement rejected, the previous version keeps running: {err}")
                    }
                    None => tracing::warn!(%source, "plugin not loaded: {err}"),
                }
                self.inner.telemetry.load_failure(&source);
                self.tell(Happening::Failed {
                    source: source.clone(),
                    plugin: plugin.clone(),
                    reason: err.to_string(),
                });
                self.registry().record_failure(Failure {
                    source,
                    plugin,
                    reason: err.to_string(),
                    at: chrono::Utc::now(),
                });
                Err(err)
            }
        }
    }
}
