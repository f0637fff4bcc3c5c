//! Operational endpoints outside `/api`: liveness, readiness, version, metrics.

use super::AppState;
use super::problem::Problem;
use crate::wit::{PACKAGE, SUPPORTED_VERSIONS};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::time::Duration;

#[derive(Tags)]
enum SystemTag {
    /// Health, readiness, version and metrics of this server.
    System,
}

#[derive(Object)]
struct Health {
    status: String,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct Check {
    name: String,
    ok: bool,
    error: Option<String>,
}

#[derive(Object)]
struct Readiness {
    status: String,
    checks: Vec<Check>,
}

#[derive(Object)]
struct VersionInfo {
    /// The server's version.
    version: String,
    /// The WIT package plugins are built against.
    wit_package: String,
    /// Every WIT version this server loads.
    wit_versions: Vec<String>,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Every dependency answers.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// At least one dependency does not answer; `checks` says which.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[derive(ApiResponse)]
#[allow(dead_code)]
enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200)]
    Ok(PlainText<String>),
    #[oai(status = 500, content_type = "application/problem+json")]
    Failed(Json<Problem>),
}

pub struct SystemApi {
    pub state: AppState,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn check<F, E>(name: &str, probe: F) -> Check
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let error = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    Check { name: name.to_owned(), ok: error.is_none(), error }
}

#[OpenApi(tag = "SystemTag::System")]
impl SystemApi {
    /// Liveness: the process is up and serving HTTP.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health { status: "ok".into() })
    }

    /// Readiness: the database (and Redis, when configured) answer.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self) -> ReadyResponse {
        let mut checks = vec![check("database", crate::store::ping(self.state.runtime.db())).await];
        if let Some(redis) = &self.state.redis {
            checks.push(check("redis", redis.ping()).await);
        }
        if checks.iter().all(|check| check.ok) {
            ReadyResponse::Ready(Json(Readiness { status: "ready".into(), checks }))
        } else {
            ReadyResponse::NotReady(Json(Readiness { status: "not-ready".into(), checks }))
        }
    }

    /// The server version and the WIT versions it loads.
    #[oai(path = "/version", method = "get", operation_id = "version")]
    async fn version(&self) -> Json<VersionInfo> {
        Json(VersionInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            wit_package: PACKAGE.into(),
            wit_versions: SUPPORTED_VERSIONS.iter().map(|v| v.to_string()).collect(),
        })
    }

    /// Prometheus metrics: HTTP requests by route and status, plugin calls by
    /// plugin, export and outcome, call durations, load failures.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> MetricsResponse {
        MetricsResponse::Ok(PlainText(self.state.telemetry.render()))
    }
}
