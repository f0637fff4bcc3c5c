//! The workspace figures in docs/performance.md (`scripts/bench-workspaces`):
//! a release build manages 1,000 workspaces (20 people, 50 each) against the
//! fake API server (in this process, pods ready after `--ready-ms`), then:
//! - create to running, beyond the fake's readiness delay: for a sample of
//!   workspaces created one at a time beside the thousand, from the create
//!   request to the first `GET /api/v1/k8s/workspaces/{id}` that says
//!   `running` (polled every 10 ms), minus the delay;
//! - a watch event reflected in `GET`: from the moment the host received the
//!   pod's readiness (the `at` of the `running` transition) to that `GET`;
//! - one lifecycle pass over all of them: the plugin's `on-event` time while
//!   only the lifecycle's passes arrive, from the host's own histogram (the
//!   wasm call; its commit is not included), and the pass's whole time, from
//!   the pass's event appended to the partition's cursor passing it.

use clap::Parser;
use devpulse_e2e::kube::Kubectl;
use devpulse_e2e::{Backend, Options, TestServer, latency_summary};
use fake_kube::{Config, FakeKube};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 1_000)]
    workspaces: usize,
    #[arg(long, default_value_t = 20)]
    people: usize,
    /// Workspaces created one at a time and timed.
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// How long the fake takes to make a pod ready.
    #[arg(long, default_value_t = 200)]
    ready_ms: u64,
    /// Lifecycle passes to time.
    #[arg(long, default_value_t = 5)]
    passes: u64,
}

const KINDS: &str = r#"["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service", "Pod"]"#;

/// How many of the fake's pods are ready.
fn ready_pods(fake: &FakeKube) -> usize {
    fake.objects("v1", "Pod", None)
        .iter()
        .filter(|pod| {
            pod["status"]["conditions"]
                .as_array()
                .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .count()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = Backend::named(&args.backend);
    let ready = Duration::from_millis(args.ready_ms);
    let fake = FakeKube::start("127.0.0.1:0", Config { ready_delay: ready, ..Config::default() }).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig("default"))?;
    let config = format!(
        "[rate_limits]\nper_token = 0\nper_webhook_source = 0\n\n[kube]\nkubeconfig = {path:?}\n\n\
         [plugins.k8s]\ngrants = [\"kube\"]\n\n[plugins.k8s.kube]\nnamespaces = [\"devpulse-ws-*\"]\nkinds = {KINDS}\n\n\
         [plugins.k8s.schedules]\nlifecycle = 2\n\n\
         [plugins.k8s.settings]\nmax_running_per_user = 100000\nmonthly_budget_usd = 0\n",
        path = kubeconfig.display().to_string(),
    );
    let server = TestServer::start_with(backend, Options { config, ..Options::default() })
        .await
        .ok_or_else(|| anyhow::anyhow!("{} is unavailable", args.backend))?;
    let mut people = Vec::new();
    for _ in 0..args.people {
        people.push(server.user_with_role("developer").await.1);
    }

    // The thousand, 16 requests at a time.
    let started = Instant::now();
    let bodies: Vec<(String, Value)> = (0..args.workspaces)
        .map(|n| {
            let body = json!({"repo": format!("acme/repo-{}", n % 50), "branch": format!("b-{n}")});
            (people[n % args.people].clone(), body)
        })
        .collect();
    for chunk in bodies.chunks(16) {
        let answers = futures::future::join_all(
            chunk.iter().map(|(token, body)| server.post_as(token, "/api/v1/k8s/workspaces", body)),
        )
        .await;
        for (status, answer) in answers {
            anyhow::ensure!(status == 201, "a create was refused: {answer}");
        }
    }
    let created = started.elapsed();
    // All running: every pod ready in the cluster, then every change folded by the plugin.
    let limit = Instant::now() + Duration::from_secs(900);
    while ready_pods(&fake) < args.workspaces {
        anyhow::ensure!(Instant::now() < limit, "the pods were not all ready within 15 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.delivered("k8s", Duration::from_secs(900)).await;
    let (_, running) = server.get("/api/v1/k8s/workspaces?owner=*&status=starting&limit=1").await;
    anyhow::ensure!(running["items"] == json!([]), "a workspace is still starting: {running}");
    println!(
        "{}: {} workspaces of {} people created in {:.1} s, all running {:.1} s after the first create (fake readiness {} ms)",
        args.backend,
        args.workspaces,
        args.people,
        created.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        args.ready_ms
    );
    let namespaces = {
        let kubectl = Kubectl::new(&fake, dir.path());
        tokio::task::spawn_blocking(move || {
            kubectl.json(&["get", "deployments", "-A", "-l", "app.kubernetes.io/name=devpulse-workspace"])
        })
        .await?
    };
    println!("kubectl lists {} workspace Deployments", namespaces["items"].as_array().map_or(0, Vec::len));

    // Lifecycle passes over all of them, with nothing else arriving.
    let (sum_before, count_before) = server.call_histogram("k8s", "on-event").await;
    let (mut sum, mut count) = (sum_before, count_before);
    let waited = Instant::now();
    while count < count_before + args.passes {
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(300),
            "the lifecycle did not pass {} times",
            args.passes
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        (sum, count) = server.call_histogram("k8s", "on-event").await;
    }
    println!(
        "{}: one lifecycle pass over {} workspaces: {:.0} ms on average over {} passes (the plugin's call, its commit excluded)",
        args.backend,
        args.workspaces,
        1000.0 * (sum - sum_before) / (count - count_before) as f64,
        count - count_before
    );

    // Create to running, and the watch to GET, one at a time beside the thousand.
    let owner = &people[0];
    let mut beyond = Vec::new();
    let mut reflected = Vec::new();
    for n in 0..args.sample {
        let asked = Instant::now();
        let asked_ms = chrono::Utc::now().timestamp_millis();
        let (status, created) = server
            .post_as(owner, "/api/v1/k8s/workspaces", &json!({"repo": "acme/sample", "branch": format!("s-{n}")}))
            .await;
        anyhow::ensure!(status == 201, "a sample create was refused: {created}");
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        let seen = loop {
            let (_, workspace) = server.get_as(owner, &format!("/api/v1/k8s/workspaces/{id}")).await;
            if workspace["status"] == "running" {
                break workspace;
            }
            anyhow::ensure!(asked.elapsed() < Duration::from_secs(60), "{id} did not run within a minute");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let seen_ms = chrono::Utc::now().timestamp_millis();
        beyond.push(asked.elapsed().saturating_sub(ready));
        let running_at = seen["history"]
            .as_array()
            .and_then(|history| history.iter().rev().find(|t| t["to"] == "running"))
            .and_then(|t| t["at"].as_str())
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or(asked_ms, |at| at.timestamp_millis());
        reflected.push(Duration::from_millis((seen_ms - running_at).max(0) as u64));
    }
    println!("{}: {}", args.backend, latency_summary("create to running, beyond the fake's readiness delay", beyond));
    println!("{}: {}", args.backend, latency_summary("a watch event (the pod ready) reflected in GET", reflected));
    server.stop().await;
    Ok(())
}
