//! What a plugin call carries in its wasmtime `Store`: the sandbox's WASI context,
//! the memory cap, the caller's scope and the call's pending writes.

use super::output::LogBudget;
use crate::capabilities::Grants;
use crate::capabilities::writes::WriteSet;
use crate::store::documents::Scope;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Caps linear memory growth and remembers whether the cap was hit, so the trap
/// that follows can be reported as "memory limit exceeded".
pub struct MemoryCap {
    pub limit: usize,
    pub exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Host services a call may use; shared by every call of the runtime.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    /// Where reads outside a transaction go (see [`crate::store::readers`]).
    pub read: DatabaseConnection,
    pub http: reqwest::Client,
    /// Longest cause chain an emitted event may extend.
    pub max_event_depth: i32,
    /// Series of each metric, for queries.
    pub series: crate::metrics::series::SeriesIndex,
    /// The cluster `[kube]` names, if any.
    pub cluster: Option<Arc<crate::kube::Cluster>>,
    /// Counters of what capabilities do (kube calls).
    pub telemetry: crate::telemetry::Telemetry,
}

/// The event being handled, so emitted events can name their cause.
#[derive(Clone, Debug)]
pub struct Cause {
    pub event_id: String,
    pub depth: i32,
    /// A rebuild replays the event: what it did outside DevPulse (in a
    /// cluster) happened when it was first handled, and is not done again.
    pub rebuilding: bool,
}

/// The store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryCap,
    pub services: Services,
    /// `None` while the host reads the manifest: no storage then.
    pub scope: Option<Scope>,
    pub grants: Arc<Grants>,
    pub settings: Arc<serde_json::Map<String, serde_json::Value>>,
    pub cause: Option<Cause>,
    pub writes: WriteSet,
    pub log: LogBudget,
    pub deadline: Instant,
    /// This call's metric reads, newest last: a second aggregation of the same
    /// figure (p90 after p50) is computed from the first read.
    pub metric_reads: Vec<crate::metrics::query::Reading>,
}

impl CallState {
    /// A state whose WASI context grants nothing but clocks, random, and output
    /// streams into the log: no files, no environment, no sockets.
    pub fn new(
        plugin: &str,
        services: Services,
        grants: Arc<Grants>,
        settings: Arc<serde_json::Map<String, serde_json::Value>>,
        memory_limit: usize,
        deadline: Instant,
    ) -> Self {
        let log = LogBudget::new(plugin);
        let wasi = WasiCtx::builder().stdout(log.stdout()).stderr(log.stderr()).build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap { limit: memory_limit, exceeded: false },
            services,
            scope: None,
            grants,
            settings,
            cause: None,
            writes: WriteSet::default(),
            log,
            deadline,
            metric_reads: Vec::new(),
        }
    }

    pub fn plugin(&self) -> &str {
        self.log.plugin()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
