//! The `github` plugin's figures in docs/performance.md (`scripts/bench-github`):
//! a year of history for 50 repositories and 200 authors, sent as 100,000
//! signed webhook deliveries (pushes, pull requests opened and merged, reviews,
//! review comments, production deployments, in the shapes GitHub sends), timed
//! until the plugin has handled the last one, while a dashboard reads `summary`,
//! `dora` and `metrics/query` over that year; then the same reads idle, p50 and
//! p99, and a rebuild of the whole log.

use clap::Parser;
use devpulse_e2e::{Backend, Options, TestServer, delivery_to, github_headers, latency_summary, percentile_ms};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Requests per route for the latency figures.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Disables the health plugin first, to measure what folding github's
    /// announcements costs the pipeline.
    #[arg(long)]
    without_health: bool,
}

const SECRET: &str = "bench-secret";

/// What the pipeline is doing while the dashboard reads.
const INGESTING: u8 = 0;
const FOLDING: u8 = 1;
const DONE: u8 = 2;
const REPOS: usize = 50;
const AUTHORS: usize = 200;
const YEAR_START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400_000;
const H: i64 = 3_600_000;

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

fn user(index: usize) -> Value {
    json!({"login": format!("dev{index:03}"), "type": "User"})
}

fn repository(index: usize) -> Value {
    let name = format!("svc{index:02}");
    json!({"full_name": format!("acme/{name}"), "name": name, "default_branch": "main", "owner": {"login": "acme"}})
}

/// The deliveries of one merged pull request (and every tenth one's
/// deployment): `(kind, payload)`.
fn pull_history(index: usize) -> Vec<(&'static str, Value)> {
    let repo = repository(index % REPOS);
    let author = index % AUTHORS;
    let reviewer = (index * 7 + 3) % AUTHORS;
    let number = index / REPOS + 1;
    // Spread over the year; each step of the pull request a few hours apart.
    let start = YEAR_START + (index as i64 * 7_919 % 360) * DAY + (index as i64 % 8) * H;
    let branch = format!("feature-{index}");
    let pr = |updated: i64, merged: bool| {
        json!({
            "number": number, "title": format!("Change {index}"), "user": user(author), "draft": false,
            "created_at": at(start + H), "updated_at": at(updated),
            "closed_at": if merged { json!(at(start + 9 * H)) } else { Value::Null },
            "merged_at": if merged { json!(at(start + 9 * H)) } else { Value::Null },
            "merge_commit_sha": if merged { json!(format!("m{index}")) } else { Value::Null },
            "head": {"ref": branch, "sha": format!("h{index}")}, "base": {"ref": "main", "sha": "base"},
            "additions": 10 + index % 300, "deletions": index % 40,
        })
    };
    let mut history = vec![
        (
            "push",
            json!({"ref": format!("refs/heads/{branch}"), "after": format!("c{index}"),
                   "commits": [{"id": format!("c{index}"), "timestamp": at(start)}], "repository": repo}),
        ),
        (
            "pull_request",
            json!({"action": "opened", "number": number, "pull_request": pr(start + H, false), "repository": repo, "sender": user(author)}),
        ),
        (
            "pull_request_review_comment",
            json!({"action": "created", "comment": {"id": index, "user": user(reviewer), "created_at": at(start + 3 * H)},
                   "pull_request": pr(start + 3 * H, false), "repository": repo}),
        ),
        (
            "pull_request_review",
            json!({"action": "submitted", "review": {"id": index, "user": user(reviewer), "submitted_at": at(start + 5 * H), "state": "approved"},
                   "pull_request": pr(start + 5 * H, false), "repository": repo, "sender": user(reviewer)}),
        ),
        (
            "pull_request",
            json!({"action": "closed", "number": number, "pull_request": pr(start + 9 * H, true), "repository": repo, "sender": user(author)}),
        ),
    ];
    if index.is_multiple_of(10) {
        let state = if index.is_multiple_of(70) { "failure" } else { "success" };
        let deployment = json!({"id": index, "sha": format!("m{index}"), "environment": "production", "created_at": at(start + 10 * H)});
        history.push((
            "deployment_status",
            json!({"action": "created", "deployment_status": {"state": state, "environment": "production", "created_at": at(start + 10 * H)},
                   "deployment": deployment, "repository": repo}),
        ));
    }
    history
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = Backend::named(&args.backend);
    // The benchmark measures the pipeline, not the rate limiter: limits off.
    let options =
        Options { config: "[rate_limits]\nper_token = 0\nper_webhook_source = 0\n".into(), ..Options::default() };
    let server = TestServer::start_with(backend, options)
        .await
        .ok_or_else(|| anyhow::anyhow!("{} is unavailable", args.backend))?;
    let hook = server.configure_hook("github", SECRET).await;
    let url = server.url(&hook);
    if args.without_health {
        let (status, answer) = server.post_empty("/api/v1/plugins/health/disable").await;
        anyhow::ensure!((200..300).contains(&status), "disabling health: {status} {answer}");
    }

    let mut deliveries = Vec::with_capacity(args.events);
    let mut index = 0;
    while deliveries.len() < args.events {
        for (kind, payload) in pull_history(index) {
            if deliveries.len() < args.events {
                deliveries.push((kind, serde_json::to_vec(&payload)?));
            }
        }
        index += 1;
    }
    let bytes: usize = deliveries.iter().map(|(_, body)| body.len()).sum();
    eprintln!(
        "{}: {} deliveries ({} pull requests, {} bytes on average), {} in flight",
        args.backend,
        deliveries.len(),
        index,
        bytes / deliveries.len(),
        args.concurrency
    );

    // A dashboard reading while the pipeline is busy: the year's summary, dora
    // and weekly metrics in turn, one request after another, while deliveries
    // are acknowledged, then while the plugin still folds them.
    let year = "from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z";
    let routes = dashboard_routes(year);
    let phase = Arc::new(AtomicU8::new(INGESTING));
    let dashboard = {
        let (http, phase, token) = (reqwest::Client::new(), phase.clone(), server.token.clone());
        let urls: Vec<String> = routes.iter().map(|(_, path)| server.url(path)).collect();
        tokio::spawn(async move {
            let mut times = vec![[Vec::new(), Vec::new()]; urls.len()];
            for route in (0..urls.len()).cycle() {
                let now = phase.load(Ordering::Relaxed);
                if now == DONE {
                    break;
                }
                let began = Instant::now();
                let response = http.get(&urls[route]).bearer_auth(&token).send().await.expect("the dashboard answers");
                assert_eq!(response.status(), 200, "{}", urls[route]);
                response.bytes().await.expect("the dashboard's body");
                times[route][usize::from(now)].push(began.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            times
        })
    };

    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut last_ids: VecDeque<String> = VecDeque::new();
    for (number, (kind, body)) in deliveries.into_iter().enumerate() {
        if in_flight.len() >= args.concurrency
            && let Some(done) = in_flight.join_next().await
        {
            remember(&mut last_ids, done?);
        }
        let (http, url) = (http.clone(), url.clone());
        in_flight.spawn(async move {
            let headers = github_headers(SECRET, kind, &format!("bench-{number}"), &body);
            devpulse_e2e::deliver(&http, &url, &headers, body).await
        });
    }
    while let Some(done) = in_flight.join_next().await {
        remember(&mut last_ids, done?);
    }
    let acked = started.elapsed();
    phase.store(FOLDING, Ordering::Relaxed);
    // Delivery to a plugin follows the log's order: once the last acknowledged
    // events are handled, all are.
    for id in &last_ids {
        loop {
            let (_, event) = server.get(&format!("/api/v1/events/{id}")).await;
            if delivery_to(&event, "github")["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let handled = started.elapsed();
    // The health plugin folds github's announcements behind it.
    if !args.without_health {
        server.delivered("health", Duration::from_secs(3600)).await;
    }
    let health_done = started.elapsed();
    phase.store(DONE, Ordering::Relaxed);
    for ((name, _), [while_ingesting, while_folding]) in routes.iter().zip(dashboard.await?) {
        for (phase, times) in
            [("while deliveries are acknowledged", while_ingesting), ("while the fold alone goes on", while_folding)]
        {
            println!("{}: {}", args.backend, latency_summary(&format!("{name} {phase}"), times));
        }
    }
    let events = args.events as f64;
    println!(
        "{}: ingest {} events: all acknowledged in {:.1} s, handled by the plugin in {:.1} s: {:.0} events/s end to end",
        args.backend,
        args.events,
        acked.as_secs_f64(),
        handled.as_secs_f64(),
        events / handled.as_secs_f64()
    );
    if !args.without_health {
        println!(
            "{}: health caught up with github's announcements {:.1} s after github handled the last delivery",
            args.backend,
            (health_done - handled).as_secs_f64()
        );
    }

    let (_, count) =
        server.get(&format!("/api/v1/metrics/query?plugin=github&name=pr_cycle_time_s&{year}&agg=count")).await;
    println!("{}: merged pull requests recorded: {}", args.backend, count["series"][0]["buckets"][0]["value"]);
    let by_repo = ("summary by repo", format!("/api/v1/github/summary?{year}&group_by=repo"));
    for (name, path) in routes.into_iter().chain([by_repo]) {
        let (status, body) = server.get(&path).await;
        anyhow::ensure!(status == 200, "{path}: {status} {body}");
        let mut times = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let began = Instant::now();
            let (status, _) = server.get(&path).await;
            times.push(began.elapsed());
            anyhow::ensure!(status == 200, "{path}: {status}");
        }
        times.sort();
        println!(
            "{}: {name}: p50 {:.1} ms, p99 {:.1} ms ({} requests)",
            args.backend,
            percentile_ms(&times, 0.5),
            percentile_ms(&times, 0.99),
            args.samples
        );
    }
    rebuild(&server, &args.backend, args.events).await?;
    server.stop().await;
    Ok(())
}

/// Replays the log into a new generation of the `github` plugin (nothing else
/// arrives meanwhile) and reports its rate.
async fn rebuild(server: &TestServer, backend: &str, events: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let (status, answer) = server.post_empty("/api/v1/plugins/github/rebuild").await;
    anyhow::ensure!(status == 202, "starting the rebuild: {status} {answer}");
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, progress) = server.get("/api/v1/plugins/github/rebuild").await;
        if progress["status"] == "done" {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(3600), "the rebuild never finished: {progress}");
    }
    let took = started.elapsed().as_secs_f64();
    println!("{backend}: rebuild of {events} events: {took:.1} s, {:.0} events/s", events as f64 / took);
    Ok(())
}

/// What a dashboard over `year` reads: the routes the metrics issue set p99 targets for.
fn dashboard_routes(year: &str) -> Vec<(&'static str, String)> {
    vec![
        ("summary", format!("/api/v1/github/summary?{year}")),
        ("dora", format!("/api/v1/github/dora?{year}")),
        (
            "metrics/query (weekly p90 by repo)",
            format!("/api/v1/metrics/query?plugin=github&name=pr_cycle_time_s&{year}&step=1w&agg=p90&group_by=repo"),
        ),
    ]
}

/// Keeps the ids of the last acknowledged events.
fn remember(last: &mut VecDeque<String>, (status, ack): (u16, Value)) {
    assert_eq!(status, 202, "a delivery was refused: {ack}");
    if let Some(id) = ack["event_id"].as_str() {
        last.push_back(id.to_owned());
        if last.len() > 64 {
            last.pop_front();
        }
    }
}
