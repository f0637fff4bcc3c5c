//! Per-plugin call statistics for `GET /api/v1/plugins/{name}`.

use poem_openapi::Object;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The plugin returned a typed error.
    Error,
    Trap,
    Timeout,
    Memory,
    Unavailable,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Memory => "memory",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Counters for one export of one plugin.
#[derive(Clone, Debug, Default, Serialize, Object)]
pub struct ExportStats {
    pub calls: u64,
    pub ok: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_exceeded: u64,
    pub unavailable: u64,
    pub total_micros: u64,
    pub max_micros: u64,
}

/// Counters for every export of one plugin; kept across reloads of the plugin.
#[derive(Default)]
pub struct CallStats {
    exports: Mutex<BTreeMap<String, ExportStats>>,
}

impl CallStats {
    pub fn record(&self, export: &str, outcome: Outcome, took: Duration) {
        let Ok(mut exports) = self.exports.lock() else {
            return;
        };
        let stats = exports.entry(export.to_owned()).or_default();
        let micros = took.as_micros() as u64;
        stats.calls += 1;
        stats.total_micros += micros;
        stats.max_micros = stats.max_micros.max(micros);
        *match outcome {
            Outcome::Ok => &mut stats.ok,
            Outcome::Error => &mut stats.errors,
            Outcome::Trap => &mut stats.traps,
            Outcome::Timeout => &mut stats.timeouts,
            Outcome::Memory => &mut stats.memory_exceeded,
            Outcome::Unavailable => &mut stats.unavailable,
        } += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, ExportStats> {
        self.exports.lock().map(|exports| exports.clone()).unwrap_or_default()
    }
}
