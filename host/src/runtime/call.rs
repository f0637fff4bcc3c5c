//! Calling a plugin: a fresh instance per call, a deadline and a memory cap.
//! A call that succeeds hands back its writes; the bus commits them.

use super::Runtime;
use super::plugin::{Limits, LoadedPlugin};
use super::stats::{CallStats, Outcome};
use crate::capabilities::Grants;
use crate::capabilities::state::{CallState, Cause};
use crate::capabilities::writes::WriteSet;
use crate::store::documents::Scope;
use crate::wit::{Event, Plugin, PluginError, PluginPre, Principal, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Plugin(PluginError),
    #[error("the plugin did not finish within its {0:?} deadline")]
    Timeout(Duration),
    #[error("the plugin exceeded its memory limit of {0} bytes")]
    Memory(u64),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("{0}")]
    Unavailable(String),
}

impl CallError {
    fn outcome(&self) -> Outcome {
        match self {
            CallError::Plugin(_) => Outcome::Error,
            CallError::Timeout(_) => Outcome::Timeout,
            CallError::Memory(_) => Outcome::Memory,
            CallError::Trap(_) => Outcome::Trap,
            CallError::Unavailable(_) => Outcome::Unavailable,
        }
    }
}

/// What identifies the plugin being called, before and after it is fully loaded.
pub(crate) struct Callee<'a> {
    pub name: &'a str,
    pub pre: &'a PluginPre<CallState>,
    pub limits: Limits,
    pub grants: Arc<Grants>,
    pub settings: Arc<serde_json::Map<String, serde_json::Value>>,
    /// Where outcomes are counted; `None` while loading, before the plugin has a name.
    pub stats: Option<Arc<CallStats>>,
}

impl<'a> From<&'a LoadedPlugin> for Callee<'a> {
    fn from(plugin: &'a LoadedPlugin) -> Self {
        Callee {
            name: plugin.name(),
            pre: &plugin.pre,
            limits: plugin.limits,
            grants: plugin.grants.clone(),
            settings: plugin.settings.clone(),
            stats: Some(plugin.stats.clone()),
        }
    }
}

/// A live instance for one call.
pub(crate) struct Invocation {
    pub store: Store<CallState>,
    pub bindings: Plugin,
    started: Instant,
    budget: Duration,
}

type Raw<T> = Result<wasmtime::Result<Result<T, PluginError>>, tokio::time::error::Elapsed>;

impl Runtime {
    /// Instantiates a fresh copy of the plugin with its limits applied.
    pub(crate) async fn instantiate(
        &self,
        callee: &Callee<'_>,
        scope: Option<Scope>,
        cause: Option<Cause>,
    ) -> Result<Invocation, CallError> {
        let started = Instant::now();
        let budget = callee.limits.deadline();
        let deadline = started + budget;
        let mut state = CallState::new(
            callee.name,
            self.inner.services.clone(),
            callee.grants.clone(),
            callee.settings.clone(),
            callee.limits.memory_bytes as usize,
            deadline,
        );
        state.scope = scope;
        state.cause = cause;
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.memory);
        // Check the clock at every epoch tick: yield to other tasks while time
        // remains, trap once the deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline { Ok(UpdateDeadline::Interrupt) } else { Ok(UpdateDeadline::Yield(1)) }
        });
        let bindings = callee
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| CallError::Unavailable(format!("could not instantiate {}: {err:#}", callee.name)))?;
        Ok(Invocation { store, bindings, started, budget })
    }

    /// Classifies the raw result and records stats; on success hands back the
    /// call's writes for the caller to commit.
    pub(crate) async fn settle<T>(
        &self,
        callee: &Callee<'_>,
        export: &'static str,
        invocation: Invocation,
        raw: Raw<T>,
    ) -> Result<(T, WriteSet), CallError> {
        let Invocation { store, started, budget, .. } = invocation;
        let state = store.into_data();
        let result = match raw {
            Err(_) => Err(CallError::Timeout(budget)),
            Ok(Err(trap)) => Err(classify_trap(&trap, &state, budget, callee.limits.memory_bytes)),
            Ok(Ok(Err(error))) => Err(CallError::Plugin(error)),
            Ok(Ok(Ok(value))) => Ok((value, state.writes)),
        };
        self.record(callee, export, started, result.as_ref().err());
        result
    }

    fn record(&self, callee: &Callee<'_>, export: &'static str, started: Instant, error: Option<&CallError>) {
        let took = started.elapsed();
        let outcome = error.map_or(Outcome::Ok, CallError::outcome);
        if let Some(stats) = &callee.stats {
            stats.record(export, outcome, took);
        }
        self.inner.telemetry.plugin_call(callee.name, export, outcome.label(), took);
        if let Some(err) = error
            && !matches!(err, CallError::Plugin(_))
        {
            tracing::warn!(plugin = callee.name, export, "call failed: {err}");
        }
    }

    /// Calls the route handler of `plugin` in `scope`; returns its answer and
    /// its writes for the caller to commit.
    pub async fn request(
        &self,
        plugin: &LoadedPlugin,
        scope: Scope,
        request: Request,
    ) -> Result<(Response, WriteSet), CallError> {
        let callee = Callee::from(plugin);
        let mut call = self.instantiate(&callee, Some(scope), None).await?;
        let handler = call.bindings.devpulse_plugin_handler();
        let raw = tokio::time::timeout(call.budget, handler.call_on_request(&mut call.store, &request)).await;
        self.settle(&callee, "on-request", call, raw).await
    }

    /// Delivers one event to `plugin` in `scope`, on top of `writes` (the earlier
    /// events of the batch, not committed yet), `rebuilding` when a rebuild
    /// replays it. Returns the writes with this call's added; the caller
    /// commits them with the cursor.
    pub async fn event(
        &self,
        plugin: &LoadedPlugin,
        scope: Scope,
        event: &Event,
        depth: i32,
        rebuilding: bool,
        writes: WriteSet,
    ) -> Result<WriteSet, CallError> {
        let callee = Callee::from(plugin);
        let cause = Cause { event_id: event.id.clone(), depth, rebuilding };
        let mut call = self.instantiate(&callee, Some(scope), Some(cause)).await?;
        call.store.data_mut().writes = writes;
        let handler = call.bindings.devpulse_plugin_handler();
        let raw = tokio::time::timeout(call.budget, handler.call_on_event(&mut call.store, event)).await;
        self.settle(&callee, "on-event", call, raw).await.map(|((), writes)| writes)
    }

    /// Runs one tick of `schedule` in `scope`; returns its writes for the
    /// scheduler to commit with the run's record.
    pub async fn tick(
        &self,
        plugin: &LoadedPlugin,
        scope: Scope,
        schedule: &str,
        now: i64,
        principal: Principal,
    ) -> Result<WriteSet, CallError> {
        let callee = Callee::from(plugin);
        let mut call = self.instantiate(&callee, Some(scope), None).await?;
        let handler = call.bindings.devpulse_plugin_handler();
        let raw =
            tokio::time::timeout(call.budget, handler.call_on_tick(&mut call.store, schedule, now, &principal)).await;
        self.settle(&callee, "on-tick", call, raw).await.map(|((), writes)| writes)
    }
}

fn classify_trap(err: &wasmtime::Error, state: &CallState, budget: Duration, memory: u64) -> CallError {
    if state.memory.exceeded {
        return CallError::Memory(memory);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout(budget),
        Some(trap) => {
            let stderr = state.log.stderr_tail();
            if stderr.is_empty() {
                CallError::Trap(trap.to_string())
            } else {
                CallError::Trap(format!("{trap}: {stderr}"))
            }
        }
        None => CallError::Trap(format!("{err:#}")),
    }
}
