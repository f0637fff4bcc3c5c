//! The plugin runtime: one wasmtime engine, the linker with every host interface,
//! the registry of loaded plugins, and hot reload of the plugins folder.

pub mod cache;
pub mod call;
pub mod engine;
pub mod happenings;
pub mod loader;
pub mod manifest;
pub mod plugin;
pub mod registry;
pub mod routes;
pub mod stats;
pub mod version;
pub mod watcher;

use crate::capabilities::state::{CallState, Services};
use crate::config::FileConfig;
use crate::store::plugin_state;
use crate::telemetry::Telemetry;
use crate::wit;
use cache::CompileCache;
use registry::Registry;
use std::path::Path;
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// Happenings a slow listener may fall behind by before it misses some.
const HAPPENINGS_BUFFERED: usize = 1024;

/// Default longest chain of events caused by events.
pub const DEFAULT_MAX_EVENT_DEPTH: i32 = 8;

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    cache: CompileCache,
    services: Services,
    config: FileConfig,
    registry: Registry,
    telemetry: Telemetry,
    happenings: tokio::sync::broadcast::Sender<happenings::Happening>,
}

/// Cheap to clone; every clone is the same runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    pub fn new(
        data_dir: &Path,
        db: sea_orm::DatabaseConnection,
        config: FileConfig,
        telemetry: Telemetry,
    ) -> anyhow::Result<Self> {
        let engine = engine::new_engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wit::WatchingPlugin::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
        let services = Services {
            read: crate::store::readers(&db),
            db,
            http: reqwest::Client::builder().user_agent(concat!("devpulse/", env!("CARGO_PKG_VERSION"))).build()?,
            max_event_depth: config.max_event_depth.unwrap_or(DEFAULT_MAX_EVENT_DEPTH),
            series: crate::metrics::series::SeriesIndex::default(),
            cluster: crate::kube::Cluster::configured(&config.kube).map(Arc::new),
            telemetry: telemetry.clone(),
        };
        Ok(Runtime {
            inner: Arc::new(Inner {
                cache: CompileCache::new(data_dir, &engine),
                engine,
                linker,
                services,
                config,
                registry: Registry::default(),
                telemetry,
                happenings: tokio::sync::broadcast::channel(HAPPENINGS_BUFFERED).0,
            }),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.inner.services.db
    }

    /// For reads outside a transaction: they then never queue behind commits.
    pub fn reader(&self) -> &sea_orm::DatabaseConnection {
        &self.inner.services.read
    }

    /// The metric series index every metrics query of this process shares.
    pub fn series_index(&self) -> &crate::metrics::series::SeriesIndex {
        &self.inner.services.series
    }

    /// The cluster `[kube]` names, if any.
    pub fn cluster(&self) -> Option<&Arc<crate::kube::Cluster>> {
        self.inner.services.cluster.as_ref()
    }

    pub fn config(&self) -> &FileConfig {
        &self.inner.config
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// What happens to plugins from now on.
    pub fn happenings(&self) -> tokio::sync::broadcast::Receiver<happenings::Happening> {
        self.inner.happenings.subscribe()
    }

    /// Tells listeners; nobody listening is fine (the CLI, tests).
    pub(crate) fn tell(&self, happening: happenings::Happening) {
        let _ = self.inner.happenings.send(happening);
    }

    /// Restores the operator's enable/disable switches from the database.
    pub async fn restore_switches(&self) -> Result<(), crate::store::StoreError> {
        self.registry().set_disabled(plugin_state::disabled(self.db()).await?);
        Ok(())
    }

    /// Enables or disables a plugin, durably.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), crate::store::StoreError> {
        plugin_state::set_enabled(self.db(), name, enabled).await?;
        self.registry().set_enabled(name, enabled);
        tracing::info!(plugin = name, enabled, "plugin switched by the operator");
        let plugin = name.to_owned();
        self.tell(if enabled {
            happenings::Happening::Enabled { plugin }
        } else {
            happenings::Happening::Disabled { plugin }
        });
        Ok(())
    }
}
