//! Per-plugin call statistics for `GET /api/v1/plugins/{name}`.

use poem_openapi::Object;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
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
    /// Events handled per second of the last minute: (unix second, events).
    folded: Mutex<VecDeque<(u64, u64)>>,
}

/// The window the fold rate is averaged over.
const FOLD_WINDOW_S: u64 = 60;

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

    /// Counts `events` handled now (a committed delivery batch).
    pub fn record_folded(&self, events: u64) {
        self.record_folded_at(unix_second(), events);
    }

    fn record_folded_at(&self, second: u64, events: u64) {
        let Ok(mut folded) = self.folded.lock() else { return };
        match folded.back_mut() {
            Some((at, count)) if *at == second => *count += events,
            _ => folded.push_back((second, events)),
        }
        while folded.front().is_some_and(|(at, _)| at + FOLD_WINDOW_S <= second) {
            folded.pop_front();
        }
    }

    /// Events handled per second over the last minute, or since the first
    /// one if that is more recent.
    pub fn fold_rate(&self) -> f64 {
        self.fold_rate_at(unix_second())
    }

    fn fold_rate_at(&self, now: u64) -> f64 {
        let Ok(folded) = self.folded.lock() else { return 0.0 };
        let recent = folded.iter().filter(|(at, _)| at + FOLD_WINDOW_S > now);
        let (first, events) = recent.fold((now, 0), |(first, sum), (at, count)| (first.min(*at), sum + count));
        events as f64 / (now - first + 1).min(FOLD_WINDOW_S) as f64
    }

    pub fn snapshot(&self) -> BTreeMap<String, ExportStats> {
        self.exports.lock().map(|exports| exports.clone()).unwrap_or_default()
    }
}

fn unix_second() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::CallStats;

    #[test]
    fn the_fold_rate_averages_the_last_minute() {
        let stats = CallStats::default();
        assert_eq!(stats.fold_rate_at(1_000), 0.0);
        stats.record_folded_at(1_000, 100);
        stats.record_folded_at(1_000, 20);
        assert_eq!(stats.fold_rate_at(1_000), 120.0, "one second so far");
        stats.record_folded_at(1_009, 180);
        assert_eq!(stats.fold_rate_at(1_009), 30.0, "300 events over 10 seconds");
        assert_eq!(stats.fold_rate_at(1_059), 5.0, "300 events over the minute");
        let rate = stats.fold_rate_at(1_060);
        assert!((rate - 180.0 / 52.0).abs() < 1e-9, "the first second left the window: {rate}");
        assert_eq!(stats.fold_rate_at(1_200), 0.0, "an idle minute");
    }
}
