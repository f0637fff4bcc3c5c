//! The HTTP API: host resources through poem-openapi, plugin routes through a
//! dispatcher in front of it, the merged OpenAPI document and Swagger UI.

pub mod alert_channels;
pub mod alerts;
pub mod audit;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod hooks;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod pagination;
pub mod params;
pub mod plugin_routes;
pub mod plugins;
pub mod problem;
pub mod rate_limit;
pub mod rebuilds;
pub mod silences;
pub mod stream;
pub mod system;
pub mod tokens;
pub mod users;

use crate::auth::{Principal, Role};
use crate::runtime::Runtime;
use crate::store::redis::Redis;
use crate::telemetry::Telemetry;
use openapi::LiveDocument;
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use poem_openapi::{OpenApiService, OperationId};
use std::sync::Arc;
use std::time::Instant;

/// Endpoints an embedder mounts at exact paths beside the API (the benchmarks
/// mount a native twin of a plugin route this way).
pub type Extras = std::collections::BTreeMap<String, poem::endpoint::BoxEndpoint<'static>>;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub runtime: Runtime,
    pub bus: crate::bus::Bus,
    pub auth: crate::auth::Authenticator,
    pub telemetry: Telemetry,
    pub redis: Option<Redis>,
    pub ingest: crate::bus::ingest::Ingest,
    /// Counts requests for the rate limits.
    pub limiter: crate::ratelimit::RateLimiter,
    /// Sends alert notifications; the API uses it for channel tests.
    pub notifier: crate::alerts::notify::Notifier,
    /// The live stream of the log.
    pub stream: crate::stream::Hub,
    pub tickets: crate::stream::tickets::Tickets,
}

/// The route label of a plugin operation, for metrics (the template, not the URL).
#[derive(Clone)]
pub struct RouteLabel(pub String);

type HostApi = (
    system::SystemApi,
    plugins::PluginsApi,
    rebuilds::RebuildsApi,
    hooks::HooksApi,
    events::EventsApi,
    metrics::MetricsApi,
    dead_letters::DeadLettersApi,
    users::UsersApi,
    tokens::TokensApi,
    orgs::OrgsApi,
    audit::AuditApi,
    alerts::AlertsApi,
    alert_channels::AlertChannelsApi,
    silences::SilencesApi,
    stream::StreamApi,
);

impl AppState {
    /// The caller behind a bearer token.
    pub async fn principal(&self, auth: &error::BearerAuth) -> Result<Principal, error::ApiError> {
        Ok(self.auth.authenticate(&auth.0.token).await?)
    }

    /// The caller, if their role is `role` or higher.
    pub async fn authorize(&self, auth: &error::BearerAuth, role: Role) -> Result<Principal, error::ApiError> {
        let principal = self.principal(auth).await?;
        principal.require(role)?;
        Ok(principal)
    }
}

fn service(state: &AppState) -> OpenApiService<HostApi, ()> {
    let api = (
        system::SystemApi { state: state.clone() },
        plugins::PluginsApi { state: state.clone() },
        rebuilds::RebuildsApi { state: state.clone() },
        hooks::HooksApi { state: state.clone() },
        events::EventsApi { state: state.clone() },
        metrics::MetricsApi { state: state.clone() },
        dead_letters::DeadLettersApi { state: state.clone() },
        users::UsersApi { state: state.clone() },
        tokens::TokensApi { state: state.clone() },
        orgs::OrgsApi { state: state.clone() },
        audit::AuditApi { state: state.clone() },
        alerts::AlertsApi { state: state.clone() },
        alert_channels::AlertChannelsApi { state: state.clone() },
        silences::SilencesApi { state: state.clone() },
        stream::StreamApi { state: state.clone() },
    );
    OpenApiService::new(api, "DevPulse", env!("CARGO_PKG_VERSION"))
        .description(
            "Developer-productivity server. Host resources live under `/api/v1`; every plugin's \
             routes are mounted at `/api/v1/{plugin}/...` and appear here as soon as the plugin loads. \
             Errors are RFC 9457 problem documents.",
        )
        .server("/")
}

/// Builds the whole HTTP application.
pub fn app(state: AppState, extras: Extras) -> anyhow::Result<impl Endpoint<Output = Response>> {
    let service = service(&state);
    let host_spec = service.spec();
    let swagger = service.swagger_ui_html();
    let document = Arc::new(LiveDocument::new(&host_spec)?);
    let api = service.boxed();
    let dispatcher = Dispatcher { api, state: state.clone(), document, host_spec, swagger, extras };
    let telemetry = state.telemetry.clone();
    Ok(dispatcher.around(move |endpoint, request| {
        let telemetry = telemetry.clone();
        async move {
            let started = Instant::now();
            let response = match endpoint.call(request).await {
                Ok(response) => response,
                Err(err) => problem::from_poem_error(err),
            };
            let route = response
                .data::<RouteLabel>()
                .map(|label| label.0.clone())
                .or_else(|| response.data::<OperationId>().map(|id| id.0.to_owned()))
                .unwrap_or_else(|| "unmatched".to_owned());
            telemetry.http_request(&route, response.status().as_u16(), started.elapsed());
            Ok(response)
        }
    }))
}

/// Sends plugin paths to the plugin, the live document and UI to their
/// renderers, and everything else to the host API.
struct Dispatcher {
    api: poem::endpoint::BoxEndpoint<'static>,
    state: AppState,
    document: Arc<LiveDocument>,
    host_spec: String,
    swagger: String,
    extras: Extras,
}

impl Endpoint for Dispatcher {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let Some(decision) = rate_limit::admit(&self.state, &request).await else {
            return self.route(request).await;
        };
        if !decision.allowed {
            return Ok(rate_limit::refused(&decision));
        }
        let mut response = self.route(request).await?;
        rate_limit::annotate(&mut response, &decision);
        Ok(response)
    }
}

impl Dispatcher {
    async fn route(&self, mut request: Request) -> poem::Result<Response> {
        let path = request.uri().path().to_owned();
        if let Some(extra) = self.extras.get(&path) {
            let mut response = extra.call(request).await?;
            response.set_data(RouteLabel(path));
            return Ok(response);
        }
        let method = request.method().clone();
        let readable = method == poem::http::Method::GET || method == poem::http::Method::HEAD;
        if let Some((source, org)) = hooks::delivery_path(&path) {
            if method != poem::http::Method::POST {
                return Ok(problem::method_not_allowed(method.as_str(), &["POST"]));
            }
            let body = request.take_body();
            let mut response = hooks::deliver(&self.state, source, org, &request, body).await;
            response.set_data(RouteLabel("/api/v1/hooks/{source}/{org}".into()));
            return Ok(response);
        }
        if let Some((name, rest)) = plugin_routes::plugin_path(&path) {
            let body = request.take_body();
            return Ok(plugin_routes::dispatch(&self.state, name, rest, request, body).await);
        }
        match path.as_str() {
            "/openapi.json" | "/docs" | "/docs/" if !readable => {
                Ok(problem::method_not_allowed(method.as_str(), &["GET", "HEAD"]))
            }
            "/openapi.json" => {
                let text = self.document.render(self.state.runtime.registry());
                let mut response = Response::builder().content_type("application/json").body(text.as_str().to_owned());
                response.set_data(RouteLabel("/openapi.json".into()));
                Ok(response)
            }
            "/docs" | "/docs/" => {
                let live = self.document.render(self.state.runtime.registry());
                let html = self.swagger.replacen(&self.host_spec, &live, 1);
                let mut response = Response::builder().content_type("text/html; charset=utf-8").body(html);
                response.set_data(RouteLabel("/docs".into()));
                Ok(response)
            }
            _ => {
                // poem-openapi reads JSON bodies whole: cap them first.
                match request.take_body().into_bytes_limit(plugin_routes::MAX_BODY_BYTES).await {
                    Ok(bytes) => request.set_body(bytes),
                    Err(_) => {
                        return Ok(problem::Problem::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload-too-large",
                            format!("request bodies are at most {} bytes", plugin_routes::MAX_BODY_BYTES),
                        )
                        .into_response());
                    }
                }
                self.host_api(request, &path, &method).await
            }
        }
    }

    /// The host's own operations, with poem's routing errors as problem documents.
    async fn host_api(&self, request: Request, path: &str, method: &poem::http::Method) -> poem::Result<Response> {
        match self.api.call(request).await {
            Ok(response) => Ok(response.into_response()),
            Err(err) if err.status() == StatusCode::NOT_FOUND && !err.is_from_response() => {
                Ok(problem::Problem::not_found(format!("no resource at {path}")).into_response())
            }
            Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED && !err.is_from_response() => {
                let allowed = self.document.host_methods(path);
                Ok(problem::method_not_allowed(
                    method.as_str(),
                    &allowed.iter().map(String::as_str).collect::<Vec<_>>(),
                ))
            }
            Err(err) => Ok(problem::from_poem_error(err)),
        }
    }
}
