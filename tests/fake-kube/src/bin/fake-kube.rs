//! The fake Kubernetes API server on its own, for trying DevPulse's workspaces
//! or `kubectl` by hand: `fake-kube --listen 127.0.0.1:6443 --kubeconfig kubeconfig.yaml`.

use clap::Parser;
use fake_kube::{Config, FakeKube};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A fake Kubernetes API server (no real cluster: see docs/workspaces.md)")]
struct Args {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: String,
    /// Milliseconds a new pod takes to become ready.
    #[arg(long, default_value_t = 200)]
    ready_delay_ms: u64,
    /// An image no pod can pull (repeatable).
    #[arg(long = "unpullable")]
    unpullable: Vec<String>,
    /// Changes a watch can resume from before it is told 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Seconds between bookmarks on watches that allow them.
    #[arg(long, default_value_t = 5)]
    bookmark_seconds: u64,
    /// Write a kubeconfig for this server to this path.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = Config {
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        unpullable: args.unpullable.into_iter().collect(),
        history: args.history,
        bookmark_every: Duration::from_secs(args.bookmark_seconds),
    };
    let fake = FakeKube::start(&args.listen, config).await?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, fake.kubeconfig("default"))?;
    }
    eprintln!("fake-kube: serving {}", fake.url);
    fake.wait().await;
    Ok(())
}
