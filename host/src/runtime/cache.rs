//! Compiled plugins cached on disk, keyed by the engine's compatibility hash and
//! the component's sha256, so a restart does not recompile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache under `data_dir/cache/<engine hash>`: another wasmtime version or
    /// configuration gets its own folder instead of loading stale code.
    pub fn new(data_dir: &Path, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache { dir: data_dir.join("cache").join(format!("{:016x}", hasher.finish())) }
    }

    /// The compiled component, from the cache when present; compiles and stores it otherwise.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let path = self.dir.join(format!("{sha256}.cwasm"));
        if path.exists() {
            // SAFETY: the file was written by `store` below from `Component::serialize`
            // with an engine of the same compatibility hash (the folder name), in the
            // operator's data dir, and is replaced atomically.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unreadable compile cache entry: {err}")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "could not write the compile cache: {err}");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize()?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
