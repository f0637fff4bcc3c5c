//! The load-test target of `scripts/bench` and `scripts/bench-ingest`: DevPulse
//! with the `echo` plugin at `POST /api/v1/echo/echo`, the same route
//! implemented natively in the host at `POST /native/echo` (same schema check,
//! same logic), so one `wrk` run compares them on the same server; and the
//! `tally` plugin, subscribed to GitHub webhooks, for the ingest benchmark.

use clap::Parser;
use devpulse::config::{FileConfig, RateLimitConfig, Settings};
use devpulse_e2e::fixtures;
use poem::http::StatusCode;
use poem::{EndpointExt, Response};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: SocketAddr,
    /// Scratch directory for the database and plugins (emptied first).
    #[arg(long, default_value = "/var/tmp/devpulse-bench")]
    dir: PathBuf,
    /// The database; SQLite in `dir` when absent.
    #[arg(long)]
    database_url: Option<String>,
}

/// The echo route's body schema, as the plugin declares it.
const SCHEMA: &str = r#"{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}"#;

fn native_echo() -> anyhow::Result<poem::endpoint::BoxEndpoint<'static>> {
    let validator = std::sync::Arc::new(jsonschema::validator_for(&serde_json::from_str(SCHEMA)?)?);
    let endpoint = poem::endpoint::make(move |request: poem::Request| {
        let validator = validator.clone();
        async move {
            let body = request.into_body().into_bytes_limit(1 << 20).await?;
            let valid =
                serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|value| validator.is_valid(&value));
            let text = std::str::from_utf8(&body).unwrap_or_default();
            Ok::<Response, poem::Error>(match (valid, echo::respond(text)) {
                (true, Ok(answer)) => Response::builder().content_type("application/json").body(answer),
                _ => Response::builder().status(StatusCode::BAD_REQUEST).finish(),
            })
        }
    });
    Ok(endpoint.boxed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    devpulse::telemetry::init_logging();
    let _ = std::fs::remove_dir_all(&args.dir);
    let plugins_dir = args.dir.join("plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    std::fs::copy(fixtures::ECHO, plugins_dir.join("echo.wasm"))?;
    std::fs::copy(fixtures::TALLY_V1, plugins_dir.join("tally.wasm"))?;
    let data_dir = args.dir.join("data");
    let settings = Settings {
        listen: args.listen,
        database_url: args.database_url.unwrap_or_else(|| devpulse::store::default_url(&data_dir)),
        data_dir,
        plugins_dir,
        redis_url: None,
        // The benchmarks measure the server, not its rate limiter: limits off.
        file: FileConfig { rate_limits: RateLimitConfig::unlimited(), ..FileConfig::default() },
    };
    let mut extras = devpulse::api::Extras::new();
    extras.insert("/native/echo".into(), native_echo()?);
    let server = devpulse::server::start_with(settings, extras).await?;
    tokio::signal::ctrl_c().await?;
    server.stop().await
}
