//! Calls to plugin routes, `/api/v1/{plugin}/...`: match the route, validate
//! parameters and body against the declared schemas, call the plugin, and turn
//! its answer (or its failure) into HTTP.

use super::error::ApiError;
use super::problem::Problem;
use super::{AppState, RouteLabel};
use crate::auth::{self, AuthError, Role};
use crate::runtime::call::CallError;
use crate::runtime::manifest::RESERVED_NAMES;
use crate::runtime::routes::RouteMatch;
use crate::runtime::wit::devpulse::plugin::types::Method;
use crate::runtime::wit::{PluginError, Request as WitRequest, Response as WitResponse};
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

fn wit_method(method: &poem::http::Method) -> Option<Method> {
    Some(match method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        _ => return None,
    })
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
    let principal = match auth::bearer(&request) {
        None => return refused(AuthError::Missing),
        Some(secret) => match state.auth.authenticate(secret).await {
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
    let (route, path_params) = match plugin.routes.find(&method, rest) {
        RouteMatch::Found { route, path_params } => (route, path_params),
        RouteMatch::MethodNotAllowed { allowed } => {
            let mut response = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("{method} is not allowed here; allowed: {}", allowed.join(", ")),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        RouteMatch::NotFound => {
            return Problem::not_found(format!("plugin {name} has no route {method} {rest}")).into_response();
        }
    };
    let label = RouteLabel(format!("/api/v1/{name}{}", route.doc.path));
    if let Err(err) = principal.require(Role::parse(&route.doc.min_role).unwrap_or(Role::Owner)) {
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
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let body = match route.validate(&path_params, &query, &bytes) {
        Ok(body) => body,
        Err(errors) => {
            let mut response = Problem::new(
                StatusCode::BAD_REQUEST,
                "validation-failed",
                format!("the request does not match the schema of {} {}", route.doc.method, route.doc.path),
            )
            .with_errors(errors)
            .into_response();
            response.set_data(label);
            return response;
        }
    };
    let Some(wit_method) = wit_method(request.method()) else {
        return Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", method).into_response();
    };
    let headers = request
        .headers()
        .iter()
        .filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let call = WitRequest {
        method: wit_method,
        path: rest.to_owned(),
        route: route.doc.path.clone(),
        path_params,
        query,
        headers,
        body,
        principal: principal.to_wit(),
    };
    let mut response = match state.runtime.request(&plugin, call).await {
        Ok(answer) => into_http(name, answer),
        Err(err) => call_problem(name, err).into_response(),
    };
    response.set_data(label);
    response
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
