//! Prometheus metrics for `/metrics`, and log setup.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
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
    ingest: IntCounterVec,
    delivery_retries: IntCounterVec,
    delivery_batches: HistogramVec,
    dead_letters: IntCounterVec,
    delivery_behind: IntGaugeVec,
    delivery_oldest: GaugeVec,
    alerts: IntGaugeVec,
    notifications: IntCounterVec,
    stream_connections: IntGaugeVec,
    stream_messages: IntCounterVec,
    stream_lag: HistogramVec,
    stream_catch_ups: IntCounterVec,
    stream_closes: IntCounterVec,
    replica_info: IntGaugeVec,
    replicas_live: IntGauge,
    leases_held: IntGaugeVec,
    lease_changes: IntCounterVec,
    kube_calls: IntCounterVec,
    kube_duration: HistogramVec,
    kube_watch: IntCounterVec,
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
        let ingest = IntCounterVec::new(
            Opts::new("devpulse_ingest_total", "Webhook deliveries by source and outcome"),
            &["source", "outcome"],
        )
        .expect("valid metric");
        let delivery_retries = IntCounterVec::new(
            Opts::new("devpulse_delivery_retries_total", "Failed event deliveries that will be retried, by plugin"),
            &["plugin"],
        )
        .expect("valid metric");
        let delivery_batches = HistogramVec::new(
            HistogramOpts::new(
                "devpulse_delivery_batch_events",
                "Events per committed delivery batch, by plugin (one transaction each)",
            )
            .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]),
            &["plugin"],
        )
        .expect("valid metric");
        let dead_letters = IntCounterVec::new(
            Opts::new("devpulse_dead_letters_total", "Events a plugin gave up on after every attempt"),
            &["plugin"],
        )
        .expect("valid metric");
        let delivery_behind = IntGaugeVec::new(
            Opts::new("devpulse_delivery_lag_events", "Events in the log a plugin has not handled yet, all orgs"),
            &["plugin"],
        )
        .expect("valid metric");
        let delivery_oldest = GaugeVec::new(
            Opts::new("devpulse_delivery_lag_seconds", "Age of the oldest event a plugin has not handled yet"),
            &["plugin"],
        )
        .expect("valid metric");
        let alerts = IntGaugeVec::new(
            Opts::new("devpulse_alerts", "Alerts by state and severity, all orgs (open ones, and resolved in history)"),
            &["state", "severity"],
        )
        .expect("valid metric");
        let notifications = IntCounterVec::new(
            Opts::new(
                "devpulse_alert_notifications_total",
                "Notification attempts by channel type and outcome (delivered, retried, failed)",
            ),
            &["channel_type", "outcome"],
        )
        .expect("valid metric");
        let stream_connections = IntGaugeVec::new(
            Opts::new("devpulse_stream_connections", "Open live-stream subscriptions by transport (ws, sse)"),
            &["transport"],
        )
        .expect("valid metric");
        let stream_messages = IntCounterVec::new(
            Opts::new("devpulse_stream_messages_total", "Events sent to live-stream subscribers by transport"),
            &["transport"],
        )
        .expect("valid metric");
        let stream_lag = HistogramVec::new(
            HistogramOpts::new(
                "devpulse_stream_lag_seconds",
                "Time from an event's receipt to its sending to a live-stream subscriber",
            )
            .buckets(BUCKETS.to_vec()),
            &["transport"],
        )
        .expect("valid metric");
        let stream_catch_ups = IntCounterVec::new(
            Opts::new(
                "devpulse_stream_catch_ups_total",
                "Subscribers that fell behind the replica's buffer and caught up from the log",
            ),
            &["transport"],
        )
        .expect("valid metric");
        let stream_closes = IntCounterVec::new(
            Opts::new(
                "devpulse_stream_closes_total",
                "Live-stream subscriptions ended, by reason (client, slow, shutdown, error)",
            ),
            &["transport", "reason"],
        )
        .expect("valid metric");
        let replica_info = IntGaugeVec::new(
            Opts::new("devpulse_replica_info", "This replica's id, as the lease table names it (always 1)"),
            &["replica"],
        )
        .expect("valid metric");
        let replicas_live =
            IntGauge::new("devpulse_replicas_live", "Replicas with a recent heartbeat, this one included")
                .expect("valid metric");
        let leases_held = IntGaugeVec::new(
            Opts::new(
                "devpulse_leases_held",
                "Work this replica runs under a lease: delivery partitions and schedules, by plugin",
            ),
            &["kind", "plugin"],
        )
        .expect("valid metric");
        let lease_changes = IntCounterVec::new(
            Opts::new(
                "devpulse_lease_changes_total",
                "Leases this replica acquired (free), took over (expired), released (handed over) or lost",
            ),
            &["kind", "change"],
        )
        .expect("valid metric");
        let kube_calls = IntCounterVec::new(
            Opts::new(
                "devpulse_kube_calls_total",
                "Calls of the kube capability by plugin, verb (apply, get, list, delete) and outcome (ok or the error)",
            ),
            &["plugin", "verb", "outcome"],
        )
        .expect("valid metric");
        let kube_duration = HistogramVec::new(
            HistogramOpts::new("devpulse_kube_call_duration_seconds", "Duration of kube capability calls, by verb")
                .buckets(BUCKETS.to_vec()),
            &["verb"],
        )
        .expect("valid metric");
        let kube_watch = IntCounterVec::new(
            Opts::new(
                "devpulse_kube_watch_events_total",
                "What Kubernetes watches saw, by plugin, watch and what: applied or deleted (appended to the log), unchanged, or error",
            ),
            &["plugin", "watch", "what"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(alerts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(kube_calls.clone()),
            Box::new(kube_duration.clone()),
            Box::new(kube_watch.clone()),
            Box::new(replica_info.clone()),
            Box::new(replicas_live.clone()),
            Box::new(leases_held.clone()),
            Box::new(lease_changes.clone()),
            Box::new(stream_connections.clone()),
            Box::new(stream_messages.clone()),
            Box::new(stream_lag.clone()),
            Box::new(stream_catch_ups.clone()),
            Box::new(stream_closes.clone()),
            Box::new(notifications.clone()),
            Box::new(ingest.clone()),
            Box::new(delivery_retries.clone()),
            Box::new(delivery_batches.clone()),
            Box::new(dead_letters.clone()),
            Box::new(delivery_behind.clone()),
            Box::new(delivery_oldest.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(plugin_calls.clone()),
            Box::new(plugin_duration.clone()),
            Box::new(load_failures.clone()),
        ] {
            registry.register(collector).expect("metric registered once");
        }
        Telemetry {
            registry,
            http_requests,
            http_duration,
            plugin_calls,
            plugin_duration,
            load_failures,
            ingest,
            delivery_retries,
            delivery_batches,
            dead_letters,
            delivery_behind,
            delivery_oldest,
            alerts,
            notifications,
            stream_connections,
            stream_messages,
            stream_lag,
            stream_catch_ups,
            stream_closes,
            replica_info,
            replicas_live,
            leases_held,
            lease_changes,
            kube_calls,
            kube_duration,
            kube_watch,
        }
    }

    /// Counts what a Kubernetes watch saw.
    pub fn kube_watch(&self, plugin: &str, watch: &str, what: &str, count: u64) {
        self.kube_watch.with_label_values(&[plugin, watch, what]).inc_by(count);
    }

    /// Counts a call of the kube capability: `ok` or the error's kind.
    pub fn kube_call(&self, plugin: &str, verb: &str, outcome: &str, took: Duration) {
        self.kube_calls.with_label_values(&[plugin, verb, outcome]).inc();
        self.kube_duration.with_label_values(&[verb]).observe(took.as_secs_f64());
    }

    /// Names this replica.
    pub fn replica(&self, id: &str) {
        self.replica_info.with_label_values(&[id]).set(1);
    }

    /// Counts a lease change: `acquired`, `taken_over`, `released` or `lost`.
    pub fn lease_change(&self, kind: &str, change: &str) {
        self.lease_changes.with_label_values(&[kind, change]).inc();
    }

    /// Sets the live replicas and what this one runs, one (kind, plugin) per lease.
    pub fn leases_held<'a>(&self, replicas: u64, held: impl Iterator<Item = (&'a str, &'a str)>) {
        self.replicas_live.set(replicas as i64);
        self.leases_held.reset();
        for (kind, plugin) in held {
            self.leases_held.with_label_values(&[kind, plugin]).inc();
        }
    }

    /// A live-stream subscription opened (+1) or ended (-1).
    pub fn stream_connection(&self, transport: &str, delta: i64) {
        self.stream_connections.with_label_values(&[transport]).add(delta);
    }

    /// An event sent to a subscriber, `age` after it was received.
    pub fn stream_message(&self, transport: &str, age: Duration) {
        self.stream_messages.with_label_values(&[transport]).inc();
        self.stream_lag.with_label_values(&[transport]).observe(age.as_secs_f64());
    }

    pub fn stream_catch_up(&self, transport: &str) {
        self.stream_catch_ups.with_label_values(&[transport]).inc();
    }

    pub fn stream_close(&self, transport: &str, reason: &str) {
        self.stream_closes.with_label_values(&[transport, reason]).inc();
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

    /// Counts a webhook delivery: `stored`, `duplicate`, `unauthorized`, `rejected`, `unavailable`.
    pub fn ingest(&self, source: &str, outcome: &str) {
        self.ingest.with_label_values(&[source, outcome]).inc();
    }

    pub fn delivery_retry(&self, plugin: &str) {
        self.delivery_retries.with_label_values(&[plugin]).inc();
    }

    /// Counts a committed delivery batch of `events`.
    pub fn delivery_batch(&self, plugin: &str, events: usize) {
        self.delivery_batches.with_label_values(&[plugin]).observe(events as f64);
    }

    pub fn dead_letter(&self, plugin: &str) {
        self.dead_letters.with_label_values(&[plugin]).inc();
    }

    /// Sets a plugin's backlog: events behind and the age of the oldest.
    pub fn delivery_lag(&self, plugin: &str, behind: u64, oldest_age: Duration) {
        self.delivery_behind.with_label_values(&[plugin]).set(behind as i64);
        self.delivery_oldest.with_label_values(&[plugin]).set(oldest_age.as_secs_f64());
    }

    /// Sets how many alerts are in each state and severity.
    pub fn alerts(&self, state: &str, severity: &str, count: u64) {
        self.alerts.with_label_values(&[state, severity]).set(count as i64);
    }

    /// Counts a notification attempt: `delivered`, `retried` or `failed` (given up).
    pub fn notification(&self, channel_type: &str, outcome: &str) {
        self.notifications.with_label_values(&[channel_type, outcome]).inc();
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
