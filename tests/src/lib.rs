//! Helpers for the end-to-end tests: a real server on a free port, backed by a
//! fresh SQLite file or a fresh PostgreSQL database, with the fixture plugins
//! compiled by this crate's build script.

use devpulse::config::{FileConfig, Settings};
use devpulse::server::RunningServer;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod alarm;
pub mod browser;
pub mod fake_github;
pub mod kube;
pub mod receiver;
pub mod stream;
pub mod tally;

/// Paths of the compiled fixture components, one constant per fixture crate.
pub mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// As the benchmarks' `--backend` names it: `postgres`, or SQLite for anything else.
    pub fn named(name: &str) -> Backend {
        if name == "postgres" { Backend::Postgres } else { Backend::Sqlite }
    }
}

/// True when CI runs the suite: missing services then fail the run instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// The PostgreSQL server used to create per-test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("DEVPULSE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("DEVPULSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where `scripts/setup --test` puts the Python and Node tools.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("DEVPULSE_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| "/var/tmp/devpulse-tools".into())
}

/// `PATH` with the project's tool folders first.
pub fn tool_path() -> std::ffi::OsString {
    let tools = tools_dir();
    let dirs = [tools.join("venv/bin"), tools.join("npm/node_modules/.bin")];
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(dirs.into_iter().chain(std::env::split_paths(&inherited))).expect("a valid PATH")
}

/// True when `tool --version` runs; when it is missing, false outside CI and a failure in CI.
pub fn have(tool: &str) -> bool {
    runs(tool, &["--version"])
}

/// True when `tool args` succeeds (for tools without `--version`); as [`have`] otherwise.
pub fn runs(tool: &str, args: &[&str]) -> bool {
    let found = std::process::Command::new(tool)
        .args(args)
        .env("PATH", tool_path())
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        unavailable(tool, "not installed; run scripts/setup --test");
    }
    found
}

/// The repository's root folder, for the files it commits (`docs/openapi.json`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_owned()
}

/// The `q` quantile of sorted latencies, in milliseconds (the nearest rank).
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(index).map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
}

/// `name: p50 …, p99 … (n requests)`, the line the benchmarks print per measure.
pub fn latency_summary(name: &str, mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    format!(
        "{name}: p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        latencies.len()
    )
}

/// Reports a missing service: a failure in CI, a skip on a developer's machine.
pub fn unavailable(service: &str, err: impl std::fmt::Display) {
    if in_ci() {
        panic!("{service} is unreachable and CI=true: {err}");
    }
    eprintln!("skipping: {service} is unreachable: {err}");
}

/// A PostgreSQL database that exists for one test.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a uniquely named database, or `None` (after [`unavailable`]) when
    /// PostgreSQL does not answer.
    pub async fn create() -> Option<Self> {
        let admin = postgres_admin_url();
        let db = match Database::connect(&admin).await {
            Ok(db) => db,
            Err(err) => {
                unavailable("PostgreSQL", err);
                return None;
            }
        };
        let name = format!("devpulse_test_{}", ulid::Ulid::new().to_string().to_lowercase());
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
        Some(PgDatabase { url: format!("{base}/{name}"), name })
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_now(&self) {
        if let Ok(db) = Database::connect(&postgres_admin_url()).await {
            let _ = db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await;
        }
    }
}

/// A fresh, empty database for tests that use the store directly: a SQLite
/// file in a temporary folder, or a new PostgreSQL database.
pub struct ScratchDatabase {
    pub url: String,
    postgres: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl ScratchDatabase {
    /// `None` (after [`unavailable`]) when PostgreSQL does not answer.
    pub async fn create(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (url, postgres) = match backend {
            Backend::Sqlite => (devpulse::store::default_url(dir.path()), None),
            Backend::Postgres => {
                let pg = PgDatabase::create().await?;
                (pg.url.clone(), Some(pg))
            }
        };
        Some(ScratchDatabase { url, postgres, _dir: dir })
    }

    /// Connects with every migration applied.
    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        devpulse::store::connect(&self.url).await.expect("open the scratch database")
    }

    /// Drops a PostgreSQL database (the SQLite file goes with its folder).
    pub async fn drop_now(self) {
        if let Some(pg) = self.postgres {
            pg.drop_now().await;
        }
    }
}

/// Options for [`TestServer::start_with`].
#[derive(Default)]
pub struct Options {
    /// The config file's TOML text.
    pub config: String,
    pub redis: bool,
    /// HTML pages served beside the API at these paths (for browser tests,
    /// which need the API's origin); not served again after a restart.
    pub pages: Vec<(String, String)>,
}

/// A DevPulse server on a free loopback port.
pub struct TestServer {
    pub base: String,
    /// The bootstrap token: owner of org `default`, operator.
    pub token: String,
    pub plugins_dir: PathBuf,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    pub backend: Backend,
    pub postgres: Option<PgDatabase>,
    settings: Settings,
    server: Option<RunningServer>,
    _tmp: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, Options::default()).await
    }

    /// Starts a server, or returns `None` when a service it needs is missing
    /// outside CI.
    pub async fn start_with(backend: Backend, options: Options) -> Option<Self> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let plugins_dir = tmp.path().join("plugins");
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await?),
        };
        let redis_url = if options.redis {
            let url = redis_url();
            if let Err(err) = devpulse::store::redis::Redis::connect(&url).await {
                unavailable("Redis", err);
                return None;
            }
            Some(url)
        } else {
            None
        };
        let settings = Settings {
            listen: "127.0.0.1:0".parse().expect("address"),
            database_url: match &postgres {
                Some(pg) => pg.url.clone(),
                None => devpulse::store::default_url(&data_dir),
            },
            data_dir: data_dir.clone(),
            plugins_dir: plugins_dir.clone(),
            redis_url,
            file: FileConfig::parse(&options.config).expect("test config is valid TOML"),
        };
        let mut extras = devpulse::api::Extras::new();
        for (path, html) in options.pages {
            let page = poem::endpoint::make_sync(move |_| poem::web::Html(html.clone()));
            extras.insert(path, poem::EndpointExt::boxed(poem::EndpointExt::map_to_response(page)));
        }
        let server = devpulse::server::start_with(settings.clone(), extras).await.expect("server starts");
        let token = std::fs::read_to_string(data_dir.join(devpulse::identity::bootstrap::TOKEN_FILE))
            .expect("the first start writes the bootstrap token")
            .trim()
            .to_owned();
        Some(TestServer {
            base: format!("http://{}", server.addr),
            token,
            plugins_dir,
            data_dir,
            http: reqwest::Client::new(),
            backend,
            postgres,
            settings,
            server: Some(server),
            _tmp: tmp,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` with the bootstrap token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(&self.token)
    }

    /// GET `path` with the bootstrap token; the status and the JSON body (`Null` when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(&self.token, path).await
    }

    /// GET `path` with `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        send(self.http.get(self.url(path)).bearer_auth(token)).await
    }

    /// POST a JSON body to `path` with the bootstrap token.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(&self.token, path, body).await
    }

    /// POST a JSON body to `path` with `token`.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        send(self.http.post(self.url(path)).bearer_auth(token).json(body)).await
    }

    /// Any request with `token`, and an optional JSON body.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// Creates a user of the bootstrap org with `role` living in time zone
    /// `zone`; their id and a token.
    pub async fn user_in_zone(&self, role: &str, zone: &str) -> (String, String) {
        let (id, token) = self.user_with_role(role).await;
        let path = format!("/api/v1/users/{id}");
        let (status, answer) = self
            .call_as(&self.token, reqwest::Method::PATCH, &path, Some(&serde_json::json!({"time_zone": zone})))
            .await;
        assert_eq!(status, 200, "setting {id}'s time zone: {answer}");
        (id, token)
    }

    /// Creates a user of the bootstrap org with `role` and returns their id and a token.
    pub async fn user_with_role(&self, role: &str) -> (String, String) {
        let email = format!("{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
        let (status, user) =
            self.post("/api/v1/users", &serde_json::json!({"display_name": role, "email": email, "role": role})).await;
        assert_eq!(status, 201, "{user}");
        let id = user["id"].as_str().expect("user id").to_owned();
        let (status, token) = self.post("/api/v1/tokens", &serde_json::json!({"name": "test", "user_id": id})).await;
        assert_eq!(status, 201, "{token}");
        (id, token["secret"].as_str().expect("secret").to_owned())
    }

    /// Creates another org (as the operator) with an owner of its own; the owner's token.
    pub async fn another_org(&self, slug: &str) -> String {
        create_org(&self.http, &self.base, &self.token, slug).await
    }

    /// GET `path` as text.
    pub async fn text(&self, path: &str) -> String {
        self.http.get(self.url(path)).send().await.expect("GET").text().await.expect("a text body")
    }

    /// The live OpenAPI document.
    pub async fn document(&self) -> Value {
        serde_json::from_str(&self.text("/openapi.json").await).expect("the document is JSON")
    }

    /// POST with no body.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, path)).await
    }

    /// Puts a file into the plugins folder the way an operator should: written
    /// beside it, then renamed into place.
    pub fn install_plugin(&self, source: &Path, file_name: &str) {
        self.install_bytes(&std::fs::read(source).expect("read fixture"), file_name);
    }

    pub fn install_bytes(&self, bytes: &[u8], file_name: &str) {
        let staging = self.plugins_dir.join(format!(".{file_name}.partial"));
        std::fs::write(&staging, bytes).expect("write plugin");
        std::fs::rename(&staging, self.plugins_dir.join(file_name)).expect("rename plugin into place");
    }

    /// The `GET /api/v1/plugins/{name}` document.
    pub async fn plugin(&self, name: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/plugins/{name}")).await
    }

    /// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
    pub async fn wait_for<T, F, Fut>(&self, limit: Duration, mut check: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(value) = check().await {
                return Some(value);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// `(sum, count)` of `plugin`'s calls of `export` (`on-event`, `on-tick`)
    /// in seconds, from the host's histogram in `/metrics`.
    pub async fn call_histogram(&self, plugin: &str, export: &str) -> (f64, u64) {
        let text = self.text("/metrics").await;
        let (plugin, export) = (format!("plugin=\"{plugin}\""), format!("export=\"{export}\""));
        let series = |name: &str| -> f64 {
            text.lines()
                .find(|line| line.starts_with(name) && line.contains(&plugin) && line.contains(&export))
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0)
        };
        (
            series("devpulse_plugin_call_duration_seconds_sum"),
            series("devpulse_plugin_call_duration_seconds_count") as u64,
        )
    }

    /// A connection to the server's database, to check what was committed.
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        devpulse::store::connect(&self.settings.database_url).await.expect("open the test database")
    }

    /// A second server on the same database (and Redis), as another replica.
    pub async fn replica(&self) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let server = devpulse::server::start(self.settings.clone()).await.expect("replica starts");
        TestServer {
            base: format!("http://{}", server.addr),
            token: self.token.clone(),
            plugins_dir: self.plugins_dir.clone(),
            data_dir: self.data_dir.clone(),
            http: reqwest::Client::new(),
            backend: self.backend,
            postgres: None,
            settings: self.settings.clone(),
            server: Some(server),
            _tmp: tmp,
        }
    }

    /// Stops the server and starts a new one on the same data dir and database.
    pub async fn restart(self) -> Self {
        self.restart_after(Duration::ZERO).await
    }

    /// Restarts the server with another config file, as an operator would.
    pub async fn restart_with_config(mut self, config: &str) -> Self {
        self.settings.file = FileConfig::parse(config).expect("test config is valid TOML");
        self.restart().await
    }

    /// Waits until `plugin` has handled every event of the bootstrap org it
    /// subscribes to, in its live generation; panics after `limit`.
    pub async fn delivered(&self, plugin: &str, limit: Duration) {
        let (_, me) = self.get("/api/v1/me").await;
        let org = me["org_id"].as_str().expect("the caller's org").to_owned();
        let (_, info) = self.plugin(plugin).await;
        let subscriptions: Vec<String> =
            serde_json::from_value(info["subscriptions"].clone()).expect("the plugin's subscriptions");
        let db = self.db().await;
        let done = self
            .wait_for(limit, || async {
                let generation = devpulse::bus::generations::live(&db, plugin, &org).await.ok()?;
                let cursor = devpulse::bus::delivery::cursors::find(&db, plugin, &org, generation).await.ok()?;
                let position = cursor.map_or(0, |cursor| cursor.position);
                let pending = devpulse::bus::log::next_batch(&db, &org, position, &subscriptions, 1).await.ok()?;
                pending.is_empty().then_some(())
            })
            .await;
        db.close().await.ok();
        assert!(done.is_some(), "{plugin} did not handle its events within {limit:?}");
    }

    /// Stops the server, waits `downtime`, and starts it again on the same data.
    pub async fn restart_after(mut self, downtime: Duration) -> Self {
        self.pause().await;
        tokio::time::sleep(downtime).await;
        self.resume().await;
        self
    }

    /// Stops the server, keeping its data, until [`TestServer::resume`].
    pub async fn pause(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
    }

    /// Starts the server again on the same data (at a new address).
    pub async fn resume(&mut self) {
        let server = devpulse::server::start(self.settings.clone()).await.expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
        if let Some(pg) = &self.postgres {
            pg.drop_now().await;
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the request reaches the server");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Declares each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Webhook senders: deliveries signed the way GitHub signs them.
impl TestServer {
    /// Sets `secret` for `source` in the caller's org (as `token`); returns the
    /// delivery path from the answer's URL.
    pub async fn configure_hook_as(&self, token: &str, source: &str, secret: &str) -> String {
        configure_hook(&self.http, &self.base, token, source, secret).await
    }

    /// [`Self::configure_hook_as`] for the bootstrap org.
    pub async fn configure_hook(&self, source: &str, secret: &str) -> String {
        self.configure_hook_as(&self.token, source, secret).await
    }

    /// POSTs `body` to a delivery path with the given headers, no token.
    pub async fn deliver(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
        deliver(&self.http, &self.url(path), headers, body).await
    }

    /// A GitHub delivery of `event` with id `delivery`, signed with `secret`.
    pub async fn deliver_github(
        &self,
        path: &str,
        secret: &str,
        event: &str,
        delivery: &str,
        body: &[u8],
    ) -> (u16, Value) {
        self.deliver(path, &github_headers(secret, event, delivery, body), body.to_vec()).await
    }

    /// Waits until `GET /api/v1/plugins/{name}` reports `version` running.
    pub async fn wait_for_plugin(&self, name: &str, version: &str) {
        let loaded = self
            .wait_for(Duration::from_secs(30), || async {
                let (status, plugin) = self.plugin(name).await;
                (status == 200 && plugin["status"] == "running" && plugin["version"] == version).then_some(())
            })
            .await;
        assert!(loaded.is_some(), "{name} {version} did not load: {:?}", self.plugin(name).await);
    }
}

/// Sets `secret` for webhook `source` on the server at `base`, as `token`;
/// the delivery path from the answer's URL.
pub async fn configure_hook(http: &reqwest::Client, base: &str, token: &str, source: &str, secret: &str) -> String {
    let body = serde_json::json!({ "secret": secret });
    let request = http.put(format!("{base}/api/v1/hooks/{source}")).bearer_auth(token).json(&body);
    let (status, hook) = send(request).await;
    assert!(status == 201 || status == 200, "configuring {source}: {status} {hook}");
    let url = hook["delivery_url"].as_str().expect("a delivery URL");
    let (_, path) = url.split_once("/api/v1/").expect("the URL has the API prefix");
    format!("/api/v1/{path}")
}

/// Creates the org `slug` as the holder of `token` (an operator); its owner's token.
pub async fn create_org(http: &reqwest::Client, base: &str, token: &str, slug: &str) -> String {
    let owner = serde_json::json!({"display_name": slug, "email": format!("{slug}@example.com")});
    let body = serde_json::json!({"slug": slug, "name": slug, "owner": owner});
    let (status, created) = send(http.post(format!("{base}/api/v1/orgs")).bearer_auth(token).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["owner_token"]["secret"].as_str().expect("the owner's token").to_owned()
}

/// An event's delivery status with one plugin, from `GET /api/v1/events/{id}`.
pub fn delivery_to<'a>(event: &'a Value, plugin: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .and_then(|deliveries| deliveries.iter().find(|delivery| delivery["plugin"] == plugin))
        .unwrap_or(&Value::Null)
}

/// The headers GitHub sends with a delivery.
pub fn github_headers(secret: &str, event: &str, delivery: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let signature = devpulse::auth::signature::Scheme::GithubHmacSha256.sign(secret.as_bytes(), body);
    vec![
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        ("x-hub-signature-256", signature),
        ("content-type", "application/json".to_owned()),
    ]
}

/// POSTs a delivery to `url`; the status and JSON answer.
pub async fn deliver(http: &reqwest::Client, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
    let mut request = http.post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    send(request).await
}

/// The `devpulse` binary cargo built beside this test or benchmark binary
/// (`cargo nextest run --workspace` builds it with the host's own tests).
pub fn devpulse_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // Tests live in target/<profile>/deps, benchmark binaries in target/<profile>.
    let mut dir = exe.parent().expect("target/<profile>");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let binary = dir.join("devpulse");
    assert!(binary.exists(), "{} is missing: build the workspace first (scripts/test does)", binary.display());
    binary
}

/// DevPulse as a child process, to be killed without warning.
pub struct ChildServer {
    pub base: String,
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub database_url: String,
    /// Redis, for replicas that share work through it.
    pub redis_url: Option<String>,
    /// Where the server's log goes (with delivery's debug lines), if anywhere.
    pub log: Option<PathBuf>,
    config: PathBuf,
    child: Option<std::process::Child>,
}

impl ChildServer {
    /// Starts `devpulse serve` on a free port over `data_dir`, `plugins_dir` and `database_url`.
    pub async fn start(data_dir: &Path, plugins_dir: &Path, database_url: &str, config: &str) -> Self {
        let mut server = Self::unstarted(data_dir, plugins_dir, database_url, config);
        server.spawn().await;
        server
    }

    /// Like [`Self::start`], with Redis at `redis_url` and the log (delivery's
    /// batches included) appended to `log`: a replica whose work a test counts.
    pub async fn start_logged(
        data_dir: &Path,
        plugins_dir: &Path,
        database_url: &str,
        config: &str,
        redis_url: &str,
        log: &Path,
    ) -> Self {
        let mut server = Self::unstarted(data_dir, plugins_dir, database_url, config);
        server.redis_url = Some(redis_url.to_owned());
        server.log = Some(log.to_owned());
        server.spawn().await;
        server
    }

    /// Like [`Self::start`], with Redis at `redis_url`.
    pub async fn start_with_redis(
        data_dir: &Path,
        plugins_dir: &Path,
        database_url: &str,
        config: &str,
        redis_url: &str,
    ) -> Self {
        let mut server = Self::unstarted(data_dir, plugins_dir, database_url, config);
        server.redis_url = Some(redis_url.to_owned());
        server.spawn().await;
        server
    }

    /// The server with its config file written, not running yet.
    fn unstarted(data_dir: &Path, plugins_dir: &Path, database_url: &str, config: &str) -> Self {
        let config_path = data_dir.with_extension("toml");
        std::fs::write(&config_path, config).expect("write config");
        ChildServer {
            base: String::new(),
            data_dir: data_dir.to_owned(),
            plugins_dir: plugins_dir.to_owned(),
            database_url: database_url.to_owned(),
            redis_url: None,
            log: None,
            config: config_path,
            child: None,
        }
    }

    async fn spawn(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut command = std::process::Command::new(devpulse_binary());
        if let Some(redis) = &self.redis_url {
            command.env("DEVPULSE_REDIS_URL", redis);
        }
        match &self.log {
            Some(log) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open the log");
                command.stderr(file).env("RUST_LOG", "warn,devpulse::bus::delivery=debug,devpulse::bus::leases=info");
            }
            None => {
                command.env("RUST_LOG", "warn");
            }
        }
        let child = command
            .arg("serve")
            .env("DEVPULSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DEVPULSE_DATA_DIR", &self.data_dir)
            .env("DEVPULSE_PLUGINS_DIR", &self.plugins_dir)
            .env("DEVPULSE_DATABASE_URL", &self.database_url)
            .env("DEVPULSE_CONFIG", &self.config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn devpulse");
        self.child = Some(child);
        self.base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(response) = http.get(format!("{}/health", self.base)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("devpulse did not start at {}", self.base);
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// Kills (if running) and starts again on the same data.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join(devpulse::identity::bootstrap::TOKEN_FILE))
            .expect("bootstrap token")
            .trim()
            .to_owned()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}
