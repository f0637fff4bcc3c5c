//! The alerts figures in docs/performance.md (`scripts/bench-alerts`): the
//! `alarm` fixture plugin raises, then resolves, alerts through the event
//! pipeline (signed webhook deliveries, each naming `--per-event` alerts), timed
//! from the first delivery until the plugin has handled the last; then
//! `GET /api/v1/alerts` p50/p99 over that history, with and without filters;
//! then notifications to a local signed-webhook receiver, per minute.

use clap::Parser;
use devpulse_e2e::receiver::Receiver;
use devpulse_e2e::{Backend, Options, TestServer, alarm, latency_summary};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Alerts raised (half are resolved after).
    #[arg(long, default_value_t = 100_000)]
    alerts: usize,
    /// Alerts each event raises or resolves.
    #[arg(long, default_value_t = 10)]
    per_event: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Requests per list query for the read latencies.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Alerts raised once a webhook channel listens, each one notification.
    #[arg(long, default_value_t = 2_000)]
    notifications: usize,
}

const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// Alert `n` of `phase` (`history` or `notify`).
fn raise(n: usize, phase: &str) -> Value {
    json!({
        "key": format!("bench/{n}"),
        "severity": SEVERITIES[n % SEVERITIES.len()],
        "summary": format!("Service {n} is failing its health check"),
        "labels": {"team": format!("team-{}", n % 20), "service": format!("svc-{n}"), "phase": phase},
    })
}

/// Sends every instruction list as its own delivery, `concurrency` at once,
/// and waits until the plugin has handled them all; the elapsed time.
async fn pipeline(server: &Arc<TestServer>, path: &str, prefix: &str, lists: Vec<Value>, concurrency: usize) -> f64 {
    let queue = Arc::new(std::sync::Mutex::new(lists.into_iter().enumerate().collect::<Vec<_>>()));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (server, queue, path, prefix) = (server.clone(), queue.clone(), path.to_owned(), prefix.to_owned());
        senders.push(tokio::spawn(async move {
            while let Some((n, said)) = queue.lock().ok().and_then(|mut queue| queue.pop()) {
                alarm::tell(&server, &path, &format!("{prefix}-{n}"), &said).await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender finished");
    }
    server.delivered("alarm", Duration::from_secs(3_600)).await;
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = if args.backend == "postgres" { Backend::Postgres } else { Backend::Sqlite };
    // The receiver is on loopback; the benchmark measures alerts, not the rate limiter.
    let config = "[alerts]\nallow_private_targets = true\n[rate_limits]\nper_token = 0\nper_webhook_source = 0\n";
    let server = TestServer::start_with(backend, Options { config: config.into(), ..Options::default() })
        .await
        .ok_or_else(|| anyhow::anyhow!("{} is unavailable", args.backend))?;
    server.install_plugin(devpulse_e2e::fixtures::ALARM.as_ref(), "alarm.wasm");
    server.wait_for_plugin("alarm", "1.0.0").await;
    let path = server.configure_hook("acme", alarm::SECRET).await;
    let server = Arc::new(server);
    let per_event = args.per_event.max(1);

    let raises: Vec<Value> = (0..args.alerts)
        .collect::<Vec<_>>()
        .chunks(per_event)
        .map(|chunk| json!({"raise": chunk.iter().map(|&n| raise(n, "history")).collect::<Vec<_>>()}))
        .collect();
    let events = raises.len();
    let took = pipeline(&server, &path, "raise", raises, args.concurrency).await;
    println!(
        "{}: raised {} alerts ({per_event} per event, {events} events) in {took:.1} s: {:.0} transitions/s",
        args.backend,
        args.alerts,
        args.alerts as f64 / took
    );
    let resolves: Vec<Value> = (0..args.alerts)
        .step_by(2)
        .collect::<Vec<_>>()
        .chunks(per_event)
        .map(|chunk| json!({"resolve": chunk.iter().map(|n| format!("bench/{n}")).collect::<Vec<_>>()}))
        .collect();
    let resolved = args.alerts.div_ceil(2);
    let took = pipeline(&server, &path, "resolve", resolves, args.concurrency).await;
    println!("resolved {resolved} in {took:.1} s: {:.0} transitions/s", resolved as f64 / took);

    let queries = [
        "/api/v1/alerts",
        "/api/v1/alerts?state=firing",
        "/api/v1/alerts?severity=critical&state=resolved",
        "/api/v1/alerts?label=team%3Dteam-7",
        "/api/v1/alerts?source=alarm&label=team%3Dteam-3&label=service%3Dsvc-63",
    ];
    let mut everything = Vec::new();
    for query in queries {
        let mut latencies = Vec::new();
        for _ in 0..args.samples {
            let sent = Instant::now();
            let (status, page) = server.get(query).await;
            latencies.push(sent.elapsed());
            anyhow::ensure!(status == 200 && page["items"].as_array().is_some_and(|items| !items.is_empty()), "{page}");
        }
        println!("{}", latency_summary(&format!("GET {query}"), latencies.clone()));
        everything.extend(latencies);
    }
    println!(
        "{}",
        latency_summary(&format!("GET /api/v1/alerts, all of the above, {} alerts", args.alerts), everything)
    );

    let receiver = Receiver::webhook("a receiver's secret, 16+ bytes").await;
    // Only the new alerts: a channel also tells of alerts already firing when it
    // was added, and those 50,000 would crowd the count.
    let channel = json!({
        "type": "webhook", "url": receiver.url, "secret": "a receiver's secret, 16+ bytes",
        "matchers": [{"name": "phase", "op": "equal", "value": "notify"}],
    });
    let (status, answer) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/alerts/channels/bench", Some(&channel)).await;
    anyhow::ensure!(status == 201, "{answer}");
    let fresh: Vec<Value> = (args.alerts..args.alerts + args.notifications)
        .collect::<Vec<_>>()
        .chunks(per_event)
        .map(|chunk| json!({"raise": chunk.iter().map(|&n| raise(n, "notify")).collect::<Vec<_>>()}))
        .collect();
    let started = Instant::now();
    pipeline(&server, &path, "notify", fresh, args.concurrency).await;
    let all_told = server
        .wait_for(Duration::from_secs(3_600), || async { (receiver.count() >= args.notifications).then_some(()) })
        .await;
    anyhow::ensure!(all_told.is_some(), "only {} of {} notifications arrived", receiver.count(), args.notifications);
    let took = started.elapsed().as_secs_f64();
    println!(
        "notified {} alerts to a signed webhook in {took:.1} s after the first was raised: {:.0} notifications/min",
        args.notifications,
        args.notifications as f64 / took * 60.0
    );
    Arc::try_unwrap(server).map_err(|_| anyhow::anyhow!("senders still hold the server"))?.stop().await;
    Ok(())
}
