//! The plugins the host knows: running versions, operator switches, and files
//! that failed to load with their reasons.

use super::plugin::{LoadedPlugin, Origin};
use super::stats::CallStats;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A source (bundled plugin or file) that could not be loaded.
#[derive(Clone, Debug)]
pub struct Failure {
    pub source: String,
    /// The plugin's name, when the manifest could be read.
    pub plugin: Option<String>,
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
pub struct Registry {
    plugins: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    disabled: RwLock<BTreeSet<String>>,
    failures: RwLock<BTreeMap<String, Failure>>,
    stats: Mutex<BTreeMap<String, Arc<CallStats>>>,
    /// Bumped on every change, so cached documents (OpenAPI) know to rebuild.
    generation: AtomicU64,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().map(|guard| guard.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
}

impl Registry {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The running version of `name`, enabled or not.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.read().ok()?.get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<LoadedPlugin>> {
        read(&self.plugins).into_values().collect()
    }

    /// The plugin running from `origin`, if any.
    pub fn by_origin(&self, origin: &Origin) -> Option<Arc<LoadedPlugin>> {
        self.all().into_iter().find(|plugin| &plugin.origin == origin)
    }

    /// Makes `plugin` the running version of its name; calls in flight keep the old one.
    pub fn install(&self, plugin: LoadedPlugin) {
        if let Ok(mut plugins) = self.plugins.write() {
            plugins.insert(plugin.name().to_owned(), Arc::new(plugin));
        }
        self.changed();
    }

    /// Unloads the plugin that came from `origin`; returns its name.
    pub fn remove_origin(&self, origin: &Origin) -> Option<String> {
        let name = self.by_origin(origin)?.name().to_owned();
        if let Ok(mut plugins) = self.plugins.write() {
            plugins.remove(&name);
        }
        self.changed();
        Some(name)
    }

    pub fn record_failure(&self, failure: Failure) {
        if let Ok(mut failures) = self.failures.write() {
            failures.insert(failure.source.clone(), failure);
        }
        self.changed();
    }

    pub fn clear_failure(&self, source: &str) {
        if let Ok(mut failures) = self.failures.write()
            && failures.remove(source).is_some()
        {
            self.changed();
        }
    }

    pub fn failures(&self) -> Vec<Failure> {
        read(&self.failures).into_values().collect()
    }

    pub fn is_disabled(&self, name: &str) -> bool {
        self.disabled.read().map(|disabled| disabled.contains(name)).unwrap_or(false)
    }

    pub fn set_disabled(&self, names: BTreeSet<String>) {
        if let Ok(mut disabled) = self.disabled.write() {
            *disabled = names;
        }
        self.changed();
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) {
        if let Ok(mut disabled) = self.disabled.write() {
            if enabled {
                disabled.remove(name);
            } else {
                disabled.insert(name.to_owned());
            }
        }
        self.changed();
    }

    /// The statistics of `name`, shared by all its versions.
    pub fn stats_for(&self, name: &str) -> Arc<CallStats> {
        let mut stats = self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        stats.entry(name.to_owned()).or_default().clone()
    }
}
