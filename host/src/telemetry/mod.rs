//! Prometheus metrics for `/metrics`, and log setup.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::time::Duration;

/// The host's own metrics. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    plugin_calls: IntCounterVec,
    plugin_duration: HistogramVec,
    load_failures: IntCounterVec,
}

const BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("devpulse_http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("devpulse_http_request_duration_seconds", "HTTP request duration by route")
                .buckets(BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let plugin_calls = IntCounterVec::new(
            Opts::new("devpulse_plugin_calls_total", "Plugin calls by plugin, export and outcome"),
            &["plugin", "export", "outcome"],
        )
        .expect("valid metric");
        let plugin_duration = HistogramVec::new(
            HistogramOpts::new("devpulse_plugin_call_duration_seconds", "Plugin call duration, instantiation included")
                .buckets(BUCKETS.to_vec()),
            &["plugin", "export"],
        )
        .expect("valid metric");
        let load_failures = IntCounterVec::new(
            Opts::new("devpulse_plugin_load_failures_total", "Plugin files or bundles that failed to load"),
            &["source"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(plugin_calls.clone()),
            Box::new(plugin_duration.clone()),
            Box::new(load_failures.clone()),
        ] {
            registry.register(collector).expect("metric registered once");
        }
        Telemetry { registry, http_requests, http_duration, plugin_calls, plugin_duration, load_failures }
    }

    pub fn http_request(&self, route: &str, status: u16, took: Duration) {
        self.http_requests.with_label_values(&[route, &status.to_string()]).inc();
        self.http_duration.with_label_values(&[route]).observe(took.as_secs_f64());
    }

    pub fn plugin_call(&self, plugin: &str, export: &str, outcome: &str, took: Duration) {
        self.plugin_calls.with_label_values(&[plugin, export, outcome]).inc();
        self.plugin_duration.with_label_values(&[plugin, export]).observe(took.as_secs_f64());
    }

    pub fn load_failure(&self, source: &str) {
        self.load_failures.with_label_values(&[source]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!("encoding metrics failed: {err}");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); colours only on a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
