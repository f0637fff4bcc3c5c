//! DevPulse: a developer-productivity server whose integrations and metrics are
//! sandboxed WebAssembly components.
//!
//! One folder per concern: `api` (HTTP), `runtime` (wasmtime, loading, hot
//! reload), `capabilities` (host interfaces plugins import), `store` (database),
//! `config`, `telemetry` (metrics and logs), `auth` (who is calling),
//! `authoring` (`plugin new|build|inspect`), `webhooks` (signed ingest), `events` (appending to the log), `delivery`
//! (the log to plugins, dead letters, rebuilds), `schedules` (`on-tick`).

pub mod api;
pub mod audit;
pub mod auth;
pub mod authoring;
pub mod bundled;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod events;
pub mod identity;
pub mod metrics;
pub mod runtime;
pub mod schedules;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webhooks;
