//! Calls to plugin routes, `/api/v1/{plugin}/...`: match the route, validate
//! parameters and body against the declared schemas, call the plugin, and turn
//! its answer (or its failure) into HTTP.

use super::error::ApiError;
use super::problem::{self, Problem};
use super::{AppState, RouteLabel};
use crate::auth::{self, AuthError};
use crate::runtime::call::CallError;
use crate::runtime::manifest::Method;
use crate::runtime::manifest::RESERVED_NAMES;
use crate::runtime::plugin::LoadedPlugin;
use crate::runtime::routes::RouteMatch;
use crate::wit::{PluginError, Request as WitRequest, Response as WitResponse};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Request, Response};

/// Largest body a plugin route accepts.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Splits `/api/v1/{plugin}/rest` into the plugin name and the rest, unless the
/// name is a host resource.
pub fn plugin_path(path: &str) -> Option<(&str, &str)> {
    let tail = path.strip_prefix("/api/v1/")?;
    let (name, rest) = match tail.find('/') {
        Some(at) => (&tail[..at], &tail[at..]),
        None => (tail, ""),
    };
    (!name.is_empty() && !RESERVED_NAMES.contains(&name)).then_some((name, rest))
}

/// True when the request declares a JSON body (`application/json` or `application/*+json`).
fn is_json(request: &Request) -> bool {
    let Some(value) = request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Headers a plugin never sees: credentials and hop-by-hop.
const HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "connection", "transfer-encoding", "upgrade"];

/// A 401 or 403 problem response for a refused caller.
fn refused(err: AuthError) -> Response {
    let unauthorized = matches!(err, AuthError::Missing | AuthError::Invalid);
    let mut response = ApiError::from(err).into_problem().into_response();
    if unauthorized {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

pub async fn dispatch(state: &AppState, name: &str, rest: &str, request: Request, body: Body) -> Response {
    let principal = match auth::credential(&request) {
        None => return refused(AuthError::Missing),
        Some(secret) => match state.auth.authenticate(&secret).await {
            Ok(principal) => principal,
            Err(err) => return refused(err),
        },
    };
    let registry = state.runtime.registry();
    let Some(plugin) = registry.get(name) else {
        return Problem::not_found(format!("no plugin named {name}")).into_response();
    };
    if registry.is_disabled(name) {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "plugin-disabled",
            format!("plugin {name} is disabled by the operator"),
        )
        .into_response();
    }
    let method = request.method().as_str().to_owned();
    let (route, path_params) = match plugin.routes.find(Method::parse(&method), rest) {
        RouteMatch::Found { route, path_params } => (route, path_params),
        RouteMatch::MethodNotAllowed { allowed } => {
            let allowed: Vec<&str> = allowed.iter().map(|method| method.as_str()).collect();
            return problem::method_not_allowed(&method, &allowed);
        }
        RouteMatch::NotFound => {
            return Problem::not_found(format!("plugin {name} has no route {method} {rest}")).into_response();
        }
    };
    let label = RouteLabel(format!("/api/v1/{name}{}", route.doc.path));
    if let Err(err) = principal.require(route.doc.min_role) {
        let mut response = refused(err);
        response.set_data(label);
        return response;
    }
    let bytes = match body.into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("bodies of plugin routes are at most {MAX_BODY_BYTES} bytes"),
            )
            .into_response();
        }
    };
    if !bytes.is_empty() && !is_json(&request) {
        let mut response = Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as `Content-Type: application/json`",
        )
        .into_response();
        response.set_data(label);
        return response;
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let body = match route.validate(&path_params, &query, &bytes) {
        Ok(body) => body,
        Err(errors) => {
            let mut response = Problem::new(
                StatusCode::BAD_REQUEST,
                "validation-failed",
                format!("the request does not match the schema of {} {}", route.doc.method.as_str(), route.doc.path),
            )
            .with_errors(errors)
            .into_response();
            response.set_data(label);
            return response;
        }
    };
    let headers = request
        .headers()
        .iter()
        .filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let call = WitRequest {
        method: route.doc.method.into(),
        path: rest.to_owned(),
        route: route.doc.path.clone(),
        path_params,
        query,
        headers,
        body,
        principal: (&principal).into(),
    };
    let mut response = match call_plugin(state, &plugin, call).await {
        Ok(answer) => into_http(name, answer),
        Err(problem) => problem.into_response(),
    };
    response.set_data(label);
    response
}

/// Runs the route in the live generation and commits its writes.
async fn call_plugin(state: &AppState, plugin: &LoadedPlugin, call: WitRequest) -> Result<WitResponse, Problem> {
    let name = plugin.name();
    let scope = state.bus.live_scope(name, &call.principal.org_id).await.map_err(storage_problem)?;
    let (answer, writes) =
        state.runtime.request(plugin, scope.clone(), call).await.map_err(|err| call_problem(name, err))?;
    // An answer over the cap fails the call: nothing it wrote commits, and the
    // body is dropped here rather than copied into the response.
    let size = answer.body.as_ref().map_or(0, String::len);
    if size > plugin.limits.response_bytes {
        tracing::warn!(plugin = name, size, limit = plugin.limits.response_bytes, "response body over the limit");
        return Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "plugin-response-too-large",
            format!(
                "plugin {name} answered with {size} bytes; its limit is {} (`max_response_bytes`)",
                plugin.limits.response_bytes
            ),
        ));
    }
    state.bus.commit(writes, &scope).await.map_err(storage_problem)?;
    Ok(answer)
}

fn storage_problem(err: crate::store::StoreError) -> Problem {
    tracing::error!("plugin route storage failed: {err}");
    Problem::unavailable("storage is unavailable")
}

fn into_http(plugin: &str, answer: WitResponse) -> Response {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return Problem::new(
            StatusCode::BAD_GATEWAY,
            "plugin-bad-response",
            format!("plugin {plugin} answered with an invalid status {}", answer.status),
        )
        .into_response();
    };
    let mut builder = Response::builder().status(status);
    let mut has_type = false;
    for (name, value) in &answer.headers {
        has_type |= name.eq_ignore_ascii_case("content-type");
        if !HIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    if !has_type && answer.body.is_some() {
        builder = builder.content_type("application/json");
    }
    builder.body(answer.body.unwrap_or_default())
}

/// The problem document for a failed call. Plugin errors keep their meaning;
/// sandbox failures name the limit that was hit.
pub fn call_problem(plugin: &str, err: CallError) -> Problem {
    match err {
        CallError::Plugin(error) => match error {
            PluginError::NotFound(detail) => Problem::not_found(detail),
            PluginError::InvalidInput(detail) => Problem::bad_request(detail),
            PluginError::Denied(detail) => Problem::new(StatusCode::FORBIDDEN, "denied", detail),
            PluginError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            PluginError::Unavailable(detail) => Problem::unavailable(detail),
            PluginError::Internal(detail) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "plugin-error", detail),
        },
        CallError::Timeout(_) => {
            Problem::new(StatusCode::GATEWAY_TIMEOUT, "plugin-timeout", format!("plugin {plugin}: {err}"))
        }
        CallError::Memory(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "plugin-memory-limit", format!("plugin {plugin}: {err}"))
        }
        CallError::Trap(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "plugin-trap", format!("plugin {plugin}: {err}"))
        }
        CallError::Unavailable(_) => Problem::unavailable(format!("plugin {plugin}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_path;

    #[test]
    fn plugin_paths_skip_host_resources() {
        assert_eq!(plugin_path("/api/v1/hello/greetings/ann"), Some(("hello", "/greetings/ann")));
        assert_eq!(plugin_path("/api/v1/hello"), Some(("hello", "")));
        assert_eq!(plugin_path("/api/v1/plugins/hello"), None);
        assert_eq!(plugin_path("/health"), None);
    }
}
