//! DevPulse: a developer-productivity server whose integrations and metrics are
//! sandboxed WebAssembly components.
//!
//! One folder per concern, dependencies pointing down:
//! `api` (HTTP) → `bus` (event log, ingest, delivery, schedules, generations)
//! → `runtime` (wasmtime, loading, hot reload, calls) → `capabilities` (host
//! interfaces plugins import) → `alerts`, `metrics`, `identity`, `audit`, `auth` →
//! `store` (database). Beside them: `wit` (the contract's bindings), `config`,
//! `telemetry` (metrics and logs), `authoring` (`plugin new|build|inspect`),
//! `server` (wires it all together) and `cli`.

pub mod alerts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authoring;
pub mod bundled;
pub mod bus;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod identity;
pub mod kube;
pub mod metrics;
pub mod ratelimit;
pub mod runtime;
pub mod server;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod wit;

/// Every request and event allocates and frees many small buffers (JSON, SQL,
/// strings) across the runtime's threads: under load glibc's malloc and free
/// were about a sixth of the server's CPU samples, and rebuilds, which are
/// CPU-bound in the host, ran faster with mimalloc (docs/performance.md).
/// Declared here so the server and every binary embedding it use it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
