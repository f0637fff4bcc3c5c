//! The live-stream figures in docs/performance.md (`scripts/bench-stream`),
//! against release builds of `devpulse serve` in child processes:
//!
//! 1. idle memory: the server's resident set before and after `--idle`
//!    WebSocket subscribers connect, divided by their number;
//! 2. fan-out: `--subscribers` WebSocket subscribers while signed GitHub
//!    deliveries arrive at `--rate` per second for `--seconds`; messages
//!    delivered per second in aggregate, and commit-to-client latency (from the
//!    event's `received_at` to its arrival at the client) p50/p99;
//! 3. the same across two replicas on PostgreSQL and Redis: deliveries to
//!    replica A, subscribers on replica B.

use clap::Parser;
use devpulse_e2e::stream::{Auth, Received, WsClient};
use devpulse_e2e::{ChildServer, PgDatabase, configure_hook, deliver, github_headers, latency_summary};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Idle subscribers for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Subscribers for the fan-out figures.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Deliveries per second during fan-out.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Length of each fan-out run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

const SECRET: &str = "a github secret of 16+ bytes";

fn config(subscribers: usize) -> String {
    format!(
        "[rate_limits]\nper_token = 0\nper_webhook_source = 0\n\
         [stream]\nmax_per_token = {limit}\nmax_per_org = {limit}\n",
        limit = subscribers + 1
    )
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Opens `count` WebSocket subscribers, 100 handshakes at a time.
async fn connect_many(base: &str, token: &str, count: usize) -> Vec<WsClient> {
    let mut clients = Vec::with_capacity(count);
    while clients.len() < count {
        let batch = (count - clients.len()).min(100);
        let handshakes = (0..batch).map(|_| WsClient::connect(base, Auth::Token(token), "kind=github.*"));
        for client in futures::future::join_all(handshakes).await {
            clients
                .push(client.map_err(|(status, problem)| anyhow::anyhow!("{status} {problem}")).expect("subscribed"));
        }
    }
    clients
}

/// Idle subscribers' memory on one server.
async fn idle_memory(args: &Args) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (data, plugins) = (tmp.path().join("data"), tmp.path().join("plugins"));
    let url = devpulse::store::default_url(&data);
    let server = ChildServer::start(&data, &plugins, &url, &config(args.idle)).await;
    let pid = server.pid().expect("the server runs");
    let token = server.token();
    // One subscriber first, so what every connection shares is in the baseline.
    let warm = connect_many(&server.base, &token, 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid);
    let clients = connect_many(&server.base, &token, args.idle).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 / args.idle as f64;
    println!(
        "idle: {} WebSocket subscribers, server RSS {before} KiB -> {after} KiB: {per:.1} KiB per subscriber",
        args.idle
    );
    drop((warm, clients));
}

/// Subscribers on `listen_base` while deliveries go to `ingest_base`.
async fn fan_out(label: &str, args: &Args, ingest_base: &str, listen_base: &str, token: &str) {
    let http = reqwest::Client::new();
    let path = configure_hook(&http, ingest_base, token, "github", SECRET).await;
    let clients = connect_many(listen_base, token, args.subscribers).await;
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for mut client in clients {
        let (received, done) = (received.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                match client.next(Duration::from_millis(500)).await {
                    Some(Received::Event(event)) => {
                        let sent = event["received_at"]
                            .as_str()
                            .and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok());
                        if let Some(sent) = sent {
                            let age = (chrono::Utc::now() - sent).to_std().unwrap_or_default();
                            latencies.push(age);
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Received::Closed { code, notice }) => panic!("closed: {code:?} {notice}"),
                    None => {}
                }
            }
            latencies
        }));
    }
    let total = args.rate * args.seconds;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    let url = format!("{ingest_base}{path}");
    let mut sends = Vec::new();
    for n in 0..total {
        ticker.tick().await;
        let body = serde_json::to_vec(&json!({"zen": format!("bench {n}"), "hook_id": n})).expect("JSON");
        let headers = github_headers(SECRET, "ping", &format!("{label}-{n}-{}", ulid::Ulid::new()), &body);
        let (http, url) = (http.clone(), url.clone());
        sends.push(tokio::spawn(async move { deliver(&http, &url, &headers, body).await.0 }));
    }
    for send in sends {
        assert_eq!(send.await.expect("a delivery"), 202);
    }
    let expected = total * args.subscribers as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.expect("a reader"));
    }
    let got = received.load(Ordering::Relaxed);
    println!(
        "{label}: {} subscribers x {} events ({}/s for {} s): {got}/{expected} messages, {:.0} messages/s; {}",
        args.subscribers,
        total,
        args.rate,
        args.seconds,
        got as f64 / elapsed,
        latency_summary("commit-to-client", latencies)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    idle_memory(&args).await;

    let tmp = tempfile::tempdir()?;
    let (data, plugins) = (tmp.path().join("data"), tmp.path().join("plugins"));
    let url = devpulse::store::default_url(&data);
    let one = ChildServer::start(&data, &plugins, &url, &config(args.subscribers)).await;
    fan_out("one server (SQLite)", &args, &one.base, &one.base, &one.token()).await;
    drop(one);

    let pg = PgDatabase::create().await.ok_or_else(|| anyhow::anyhow!("PostgreSQL is unavailable"))?;
    let redis = devpulse_e2e::redis_url();
    let config = format!("{}\n", config(args.subscribers));
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let a = ChildServer::start_with_redis(&data_a, &plugins, &pg.url, &config, &redis).await;
    let b = ChildServer::start_with_redis(&data_b, &plugins, &pg.url, &config, &redis).await;
    fan_out("two replicas (PostgreSQL, Redis)", &args, &a.base, &b.base, &a.token()).await;
    drop((a, b));
    pg.drop_now().await;
    Ok(())
}
