//! Starting and stopping the server: storage, runtime, bundled plugins, the
//! plugins folder watcher, and the HTTP listener.

use crate::alerts::notify::Notifier;
use crate::api::{self, AppState, Extras};
use crate::auth::Authenticator;
use crate::bus::Bus;
use crate::bus::ingest::Ingest;
use crate::bus::leases::Leases;
use crate::bus::wake::Wake;
use crate::bus::writer::LogWriter;
use crate::config::Settings;
use crate::ratelimit::RateLimiter;
use crate::runtime::Runtime;
use crate::runtime::plugin::Origin;
use crate::runtime::watcher::PluginDir;
use crate::store::redis::Redis;
use crate::stream::Hub;
use crate::stream::tickets::Tickets;
use crate::telemetry::Telemetry;
use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    shutdown: oneshot::Sender<()>,
    http: JoinHandle<std::io::Result<()>>,
    /// The watcher, delivery, lag reports, schedules, table statistics, notifications, the stream's tail and Redis followers.
    background: Vec<JoinHandle<()>>,
    redis: Option<Redis>,
    stream: Hub,
    leases: Leases,
}

/// Opens storage, loads plugins and starts serving on `settings.listen`.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    start_with(settings, Extras::new()).await
}

/// Like [`start`], with extra endpoints.
pub async fn start_with(settings: Settings, extras: Extras) -> anyhow::Result<RunningServer> {
    settings.file.validate()?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    std::fs::create_dir_all(&settings.plugins_dir)
        .with_context(|| format!("creating the plugins dir {}", settings.plugins_dir.display()))?;
    let db = crate::store::connect(&settings.database_url)
        .await
        .with_context(|| format!("opening the database {}", redact(&settings.database_url)))?;
    crate::identity::bootstrap::run(&db, &settings.data_dir).await.context("bootstrapping the first org")?;
    let redis = match &settings.redis_url {
        Some(url) => {
            Some(Redis::connect(url).await.with_context(|| format!("connecting to Redis at {}", redact(url)))?)
        }
        None => None,
    };
    let telemetry = Telemetry::new();
    let wake = Wake::default();
    let writer = LogWriter::start(db.clone(), wake.clone());
    let lease_lifetime = Duration::from_secs(settings.file.delivery.lease_seconds.max(2));
    let leases = Leases::new(db.clone(), lease_lifetime, telemetry.clone());
    let bus = Bus::new(db.clone(), wake.clone(), leases.clone());
    let runtime = Runtime::new(&settings.data_dir, db, settings.file.clone(), telemetry.clone())?;
    runtime.restore_switches().await?;
    // Listening before the bundled plugins load records their loading too.
    let system_events = tokio::spawn(crate::bus::system::listen(&runtime, bus.clone()));
    for (name, bytes) in crate::bundled::PLUGINS {
        if let Err(err) = runtime.install((*bytes).into(), Origin::Bundled(name)).await {
            tracing::error!(plugin = name, "bundled plugin failed to load: {err}");
        }
    }
    let plugin_dir = PluginDir::new(&settings.plugins_dir);
    plugin_dir.rescan(&runtime).await;

    let mut background = vec![
        system_events,
        tokio::spawn(plugin_dir.watch(runtime.clone())),
        tokio::spawn(crate::bus::delivery::run(runtime.clone(), bus.clone())),
        tokio::spawn(crate::bus::delivery::report_lag(runtime.clone(), bus.clone())),
        tokio::spawn(crate::bus::schedules::run(runtime.clone(), bus.clone())),
        tokio::spawn(crate::bus::watches::run(runtime.clone(), bus.clone())),
        tokio::spawn(crate::store::statistics::keep_fresh(runtime.db().clone())),
    ];
    let auth = Authenticator::new(runtime.db().clone(), redis.clone());
    if let (Some(url), Some(redis)) = (&settings.redis_url, &redis) {
        background.push(tokio::spawn(auth.clone().follow(url.clone())));
        background.push(tokio::spawn(wake.clone().bridge(redis.clone(), url.clone())));
    }
    let ingest = Ingest::new(runtime.clone(), writer);
    let limiter = match &redis {
        Some(redis) => RateLimiter::shared(redis.clone()),
        None => RateLimiter::in_process(),
    };
    let notifier = Notifier::new(runtime.db().clone(), settings.file.alerts.clone(), telemetry.clone(), wake.clone())?;
    background.push(tokio::spawn(notifier.clone().run()));
    let stream = Hub::new(runtime.reader().clone(), settings.file.stream.clone(), telemetry.clone());
    background.push(tokio::spawn(stream.clone().run(wake)));
    let tickets = Tickets::new(redis.clone(), settings.file.stream.ticket_seconds);
    let state = AppState {
        runtime: runtime.clone(),
        bus,
        auth,
        telemetry,
        redis: redis.clone(),
        ingest,
        limiter,
        notifier,
        stream: stream.clone(),
        tickets,
    };
    let app = api::app(state, extras)?;
    let acceptor = TcpListener::bind(settings.listen)
        .into_acceptor()
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .context("the listener has no socket address")?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async {
                    let _ = stop.await;
                },
                Some(DRAIN_TIMEOUT),
            )
            .await
    });
    tracing::info!(%addr, plugins = runtime.registry().all().len(), "DevPulse is serving");
    Ok(RunningServer { addr, runtime, shutdown, http, background, redis, stream, leases })
}

impl RunningServer {
    /// Stops accepting connections and lets requests in flight finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        for task in &self.background {
            task.abort();
        }
        // Open subscriptions end with a close message telling where to resume.
        self.stream.stop();
        let _ = self.shutdown.send(());
        self.http.await??;
        if let Some(redis) = &self.redis {
            redis.quit().await;
        }
        // The other replicas take this one's work at once instead of after the leases expire.
        if let Err(err) = self.leases.leave().await {
            tracing::warn!("giving up the leases failed: {err}");
        }
        self.runtime.db().clone().close().await?;
        tracing::info!("DevPulse stopped");
        Ok(())
    }
}

/// Hides the password of a connection URL in messages.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
