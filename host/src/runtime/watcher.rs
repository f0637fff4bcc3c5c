//! Hot reload: keeps the running plugins in step with the `*.wasm` files of the
//! plugins folder. Filesystem notifications trigger a rescan; a slow periodic
//! rescan catches anything a notification missed.

use super::Runtime;
use super::plugin::Origin;
use notify::Watcher as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Mutex, mpsc};

/// Quiet time after a notification before rescanning, so a file being copied is
/// read once it is complete.
const DEBOUNCE: Duration = Duration::from_millis(150);
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// What was last seen of one file, to skip unchanged files cheaply.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    sha256: String,
    loaded: bool,
}

/// The plugins folder and what was loaded from it.
pub struct PluginDir {
    dir: PathBuf,
    seen: Mutex<BTreeMap<PathBuf, Seen>>,
}

impl PluginDir {
    pub fn new(dir: &Path) -> Arc<Self> {
        Arc::new(PluginDir { dir: dir.to_owned(), seen: Mutex::default() })
    }

    /// Loads new and changed files and unloads removed ones.
    pub async fn rescan(&self, runtime: &Runtime) {
        let mut seen = self.seen.lock().await;
        let files = match wasm_files(&self.dir) {
            Ok(files) => files,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), "cannot list the plugins folder: {err}");
                return;
            }
        };
        let mut unloaded_any = false;
        let gone: Vec<PathBuf> = seen.keys().filter(|path| !files.contains(path)).cloned().collect();
        for path in gone {
            seen.remove(&path);
            let origin = Origin::File(path.clone());
            runtime.registry().clear_failure(&origin.describe());
            if let Some(name) = runtime.registry().remove_origin(&origin) {
                tracing::info!(plugin = %name, file = %path.display(), "plugin unloaded: its file was removed");
                unloaded_any = true;
            }
        }
        if unloaded_any {
            // A file refused for a name clash may load now that the name is free.
            seen.retain(|_, record| record.loaded);
        }
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let (len, modified) = (meta.len(), meta.modified().ok());
            if seen.get(&path).is_some_and(|record| record.len == len && record.modified == modified) {
                continue;
            }
            let bytes: Arc<[u8]> = match std::fs::read(&path) {
                Ok(bytes) => bytes.into(),
                Err(err) => {
                    tracing::warn!(file = %path.display(), "cannot read plugin file: {err}");
                    continue;
                }
            };
            let sha256 = super::loader::sha256_hex(&bytes);
            if let Some(record) = seen.get_mut(&path)
                && record.sha256 == sha256
            {
                record.len = len;
                record.modified = modified;
                continue;
            }
            let loaded = runtime.install(bytes, Origin::File(path.clone())).await.is_ok();
            seen.insert(path, Seen { len, modified, sha256, loaded });
        }
    }

    /// Rescans on every change in the folder until the task is dropped.
    pub async fn watch(self: Arc<Self>, runtime: Runtime) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        });
        let _watcher = match watcher {
            Ok(mut watcher) => match watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => Some(watcher),
                Err(err) => {
                    tracing::warn!(dir = %self.dir.display(), "cannot watch the plugins folder, rescanning every {RESCAN_EVERY:?}: {err}");
                    None
                }
            },
            Err(err) => {
                tracing::warn!("no filesystem notifications, rescanning every {RESCAN_EVERY:?}: {err}");
                None
            }
        };
        let mut interval = tokio::time::interval(RESCAN_EVERY);
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = interval.tick() => {}
            }
            self.rescan(&runtime).await;
        }
    }
}

fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}
