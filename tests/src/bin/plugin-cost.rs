//! What one small plugin costs in each language: the same `greetings` plugin
//! (the `plugin new` templates) built in Rust, Python and JavaScript. For each
//! `.wasm` given: its size, the time to load it with an empty compile cache
//! (compile to native code, link, `describe`) and with a warm one, the first
//! call after loading, and the median of later calls (a fresh instance each):
//! `POST /greetings`, whose storage write, metric point and event commit to
//! SQLite, and `GET /greetings/{name}`, a read that commits nothing.
//!
//! `scripts/bench-authoring` builds the three files and runs this.

use clap::Parser;
use devpulse::bus::Bus;
use devpulse::config::FileConfig;
use devpulse::runtime::Runtime;
use devpulse::runtime::plugin::{LoadedPlugin, Origin};
use devpulse::telemetry::Telemetry;
use devpulse::wit::devpulse::plugin::types::Method;
use devpulse::wit::{Principal, Request, Role};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The components to measure.
    files: Vec<PathBuf>,
    /// Later calls timed per file.
    #[arg(long, default_value_t = 300)]
    calls: usize,
}

fn greet(name: &str) -> Request {
    Request {
        method: Method::Post,
        path: "/greetings".into(),
        route: "/greetings".into(),
        path_params: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: Some(format!(r#"{{"name":"{name}"}}"#)),
        principal: Principal { user_id: "bench".into(), org_id: "bench".into(), role: Role::Owner },
    }
}

fn read(name: &str) -> Request {
    Request {
        method: Method::Get,
        path: format!("/greetings/{name}"),
        route: "/greetings/{name}".into(),
        path_params: vec![("name".into(), name.into())],
        body: None,
        ..greet(name)
    }
}

struct Cost {
    bytes: u64,
    cold_load: Duration,
    warm_load: Duration,
    first_call: Duration,
    write_p50: Duration,
    read_p50: Duration,
}

/// Loads `file` into a fresh runtime whose compile cache is `cache`; the load time and the runtime.
async fn load(file: &Path, cache: &Path, data: &Path) -> anyhow::Result<(Duration, Runtime, Bus)> {
    std::fs::create_dir_all(data)?;
    let db = devpulse::store::connect(&devpulse::store::default_url(data)).await?;
    let leases = devpulse::bus::leases::Leases::new(db.clone(), Duration::from_secs(5), Telemetry::new());
    let bus = Bus::new(db.clone(), Default::default(), leases);
    let runtime = Runtime::new(cache, db, FileConfig::default(), Telemetry::new())?;
    let bytes = std::fs::read(file)?;
    let started = Instant::now();
    runtime.install(bytes.into(), Origin::File(file.to_owned())).await?;
    Ok((started.elapsed(), runtime, bus))
}

/// One route call as the server makes it: in the live generation, its writes committed.
async fn call_route(runtime: &Runtime, bus: &Bus, plugin: &LoadedPlugin, request: Request) -> anyhow::Result<u16> {
    let scope = bus.live_scope(plugin.name(), &request.principal.org_id).await?;
    let (response, writes) = runtime.request(plugin, scope.clone(), request).await?;
    bus.commit(writes, &scope).await?;
    Ok(response.status)
}

async fn measure(file: &Path, calls: usize) -> anyhow::Result<Cost> {
    let scratch = tempfile::tempdir()?;
    let cache = scratch.path().join("cache");
    let (cold_load, _, _) = load(file, &cache, &scratch.path().join("cold")).await?;
    let (warm_load, runtime, bus) = load(file, &cache, &scratch.path().join("warm")).await?;
    let plugin = runtime.registry().all().into_iter().next().ok_or_else(|| anyhow::anyhow!("nothing loaded"))?;
    let started = Instant::now();
    let status = call_route(&runtime, &bus, &plugin, greet("first")).await?;
    let first_call = started.elapsed();
    anyhow::ensure!(status == 201, "the first greeting answered {status}");
    let mut writes = Vec::with_capacity(calls);
    let mut reads = Vec::with_capacity(calls);
    for call in 0..calls {
        let name = format!("n{}", call % 10);
        let started = Instant::now();
        call_route(&runtime, &bus, &plugin, greet(&name)).await?;
        writes.push(started.elapsed());
        let started = Instant::now();
        let status = call_route(&runtime, &bus, &plugin, read(&name)).await?;
        reads.push(started.elapsed());
        anyhow::ensure!(status == 200, "a read answered {status}");
    }
    Ok(Cost {
        bytes: std::fs::metadata(file)?.len(),
        cold_load,
        warm_load,
        first_call,
        write_p50: median(writes),
        read_p50: median(reads),
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.calls > 0, "--calls must be at least 1");
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| plugin | size | load, empty cache | load, cached | first call | POST (writes), p50 | GET (read), p50 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for file in &args.files {
        let cost = measure(file, args.calls).await?;
        println!(
            "| {} | {:.2} MB | {} | {} | {} | {} | {} |",
            file.file_name().unwrap_or_default().to_string_lossy(),
            cost.bytes as f64 / 1e6,
            ms(cost.cold_load),
            ms(cost.warm_load),
            ms(cost.first_call),
            ms(cost.write_p50),
            ms(cost.read_p50),
        );
    }
    Ok(())
}
