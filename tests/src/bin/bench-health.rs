//! The health plugin's figure in docs/performance.md (`scripts/bench-health`):
//! an org of 200 developers with 2,000 open pull requests in 50 repositories
//! (sent as signed `pull_request` webhooks, folded by `github` and announced
//! to `health`), then the time of the scheduled evaluation of every rule over
//! them, from the host's own histogram of `on-tick` calls (the wasm call; its
//! commit is not included), as the mean of the ticks that follow.

use clap::Parser;
use devpulse_e2e::{Backend, Options, TestServer, github_headers};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 2_000)]
    pulls: usize,
    #[arg(long, default_value_t = 200)]
    developers: usize,
    #[arg(long, default_value_t = 50)]
    repos: usize,
    /// Scheduled evaluations to average.
    #[arg(long, default_value_t = 5)]
    ticks: u64,
}

const SECRET: &str = "bench-secret";
const H: i64 = 3_600_000;

fn login(index: usize) -> String {
    format!("dev{index}")
}

/// An open pull request, ready some hours ago, with two reviewers requested.
fn opened(args: &Args, number: usize) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    let ready = now - ((number * 7919) % (14 * 24)) as i64 * H;
    let at = chrono::DateTime::from_timestamp_millis(ready).unwrap().to_rfc3339();
    let author = number % args.developers;
    let reviewers = [(author + 1) % args.developers, (author + 17) % args.developers];
    json!({
        "action": "opened",
        "pull_request": {
            "number": number, "title": format!("Change {number}"),
            "user": {"login": login(author), "type": "User"}, "draft": false,
            "created_at": at, "updated_at": at, "closed_at": null, "merged_at": null,
            "head": {"ref": format!("change-{number}"), "sha": format!("{number:040}")},
            "base": {"ref": "main", "sha": "0".repeat(40)},
            "additions": (number * 31) % 900, "deletions": (number * 7) % 100,
            "requested_reviewers": reviewers.iter().map(|r| json!({"login": login(*r), "type": "User"})).collect::<Vec<_>>(),
        },
        "repository": {"full_name": format!("acme/repo-{}", number % args.repos), "default_branch": "main"},
        "sender": {"login": login(author), "type": "User"},
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = Backend::named(&args.backend);
    let config = "[rate_limits]\nper_token = 0\nper_webhook_source = 0\n[plugins.health.schedules]\nevaluate = 2\n";
    let server = TestServer::start_with(backend, Options { config: config.into(), ..Options::default() })
        .await
        .ok_or_else(|| anyhow::anyhow!("{} is unavailable", args.backend))?;
    for index in 0..args.developers {
        let body = json!({
            "display_name": login(index), "email": format!("{}@example.com", login(index)), "role": "developer",
            "identities": [{"provider": "github", "login": login(index)}],
        });
        let (status, user) = server.post("/api/v1/users", &body).await;
        anyhow::ensure!(status == 201, "creating a user: {user}");
    }
    let hook = server.configure_hook("github", SECRET).await;
    let url = server.url(&hook);
    let http = reqwest::Client::new();
    let started = Instant::now();
    for number in 1..=args.pulls {
        let body = serde_json::to_vec(&opened(&args, number))?;
        let headers = github_headers(SECRET, "pull_request", &format!("bench-{number}"), &body);
        let (status, ack) = devpulse_e2e::deliver(&http, &url, &headers, body).await;
        anyhow::ensure!(status == 202, "a delivery was refused: {ack}");
    }
    server.delivered("github", Duration::from_secs(600)).await;
    server.delivered("health", Duration::from_secs(600)).await;
    eprintln!(
        "{}: {} open pull requests by {} developers in {} repositories folded by github and health in {:.1} s",
        args.backend,
        args.pulls,
        args.developers,
        args.repos,
        started.elapsed().as_secs_f64()
    );

    let (sum_before, count_before) = server.call_histogram("health", "on-tick").await;
    let (mut sum, mut count) = (sum_before, count_before);
    let waited = Instant::now();
    while count < count_before + args.ticks {
        anyhow::ensure!(waited.elapsed() < Duration::from_secs(300), "the schedule did not run {} times", args.ticks);
        tokio::time::sleep(Duration::from_millis(500)).await;
        (sum, count) = server.call_histogram("health", "on-tick").await;
    }
    let (_, alerts) = server.get("/api/v1/health/overview").await;
    println!(
        "{}: scheduled evaluation over {} open pull requests, {} developers, {} repositories: {:.0} ms on average over {} ticks ({} open conditions)",
        args.backend,
        args.pulls,
        args.developers,
        args.repos,
        1000.0 * (sum - sum_before) / (count - count_before) as f64,
        count - count_before,
        alerts["team"]["total"]
    );
    server.stop().await;
    Ok(())
}
