//! The host's copy of a plugin manifest: checked, with schemas parsed, and
//! independent of the WIT version it came from.

use super::wit::devpulse::plugin::types::{self as wit, Method, ParamLocation, Role, SignatureScheme};
use crate::capabilities;
use poem_openapi::Object;
use serde::Serialize;
use serde_json::Value;

/// Names a plugin may not take: they are host resources under `/api/v1`.
pub const RESERVED_NAMES: &[&str] = &[
    "alerts",
    "audit",
    "dead-letters",
    "docs",
    "events",
    "health",
    "hooks",
    "me",
    "metrics",
    "openapi",
    "orgs",
    "plugins",
    "ready",
    "stream",
    "tokens",
    "users",
    "version",
];

/// Why a manifest was rejected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManifestError {
    #[error("plugin name {0:?} must be 1 to 63 of a-z, 0-9 and '-', starting with a letter")]
    BadName(String),
    #[error("plugin name {0:?} is reserved for a host resource")]
    Reserved(String),
    #[error("route {route}: {reason}")]
    Route { route: String, reason: String },
    #[error("subscription {0:?} is not a kind pattern such as `github.pull_request` or `github.*`")]
    Subscription(String),
    #[error("schedule {0:?} needs a name and an interval of at least one second")]
    Schedule(String),
    #[error("unknown capability {0:?}; the host offers: {known}", known = capabilities::KNOWN.join(", "))]
    Capability(String),
}

/// A route as documented in the plugin list and the OpenAPI document.
#[derive(Clone, Debug, Serialize, Object)]
pub struct RouteDoc {
    pub method: String,
    /// Template relative to `/api/v1/{plugin}`.
    pub path: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<ParamDoc>,
    pub body_schema: Option<Value>,
    pub responses: Vec<ResponseDoc>,
    pub min_role: String,
}

#[derive(Clone, Debug, Serialize, Object)]
pub struct ParamDoc {
    pub name: String,
    /// `path` or `query`.
    pub location: String,
    pub required: bool,
    pub description: String,
    pub schema: Value,
}

#[derive(Clone, Debug, Serialize, Object)]
pub struct ResponseDoc {
    pub status: u16,
    pub description: String,
    pub schema: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Object)]
pub struct ScheduleDoc {
    pub name: String,
    pub interval_seconds: u32,
}

#[derive(Clone, Debug, Serialize, Object)]
pub struct WebhookSourceDoc {
    pub name: String,
    pub scheme: String,
    pub kind_header: String,
    pub delivery_header: String,
    pub signature_header: String,
}

/// What a plugin declares about itself.
#[derive(Clone, Debug, Serialize, Object)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub routes: Vec<RouteDoc>,
    pub subscriptions: Vec<String>,
    pub schedules: Vec<ScheduleDoc>,
    pub webhook_sources: Vec<WebhookSourceDoc>,
    pub capabilities: Vec<String>,
}

pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Developer => "developer",
        Role::Manager => "manager",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

/// Checks a plugin name as the loader does; `plugin new` checks it the same way.
pub fn check_name(name: &str) -> Result<(), ManifestError> {
    if !valid_name(name) {
        return Err(ManifestError::BadName(name.to_owned()));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(ManifestError::Reserved(name.to_owned()));
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() < 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_pattern(pattern: &str) -> bool {
    let stem = pattern.strip_suffix(".*").unwrap_or(pattern);
    pattern == "*" || crate::capabilities::events::valid_kind(stem)
}

fn parse_schema(route: &str, what: &str, text: &str) -> Result<Value, ManifestError> {
    serde_json::from_str(text).map_err(|err| ManifestError::Route {
        route: route.to_owned(),
        reason: format!("{what} is not valid JSON: {err}"),
    })
}

impl PluginManifest {
    /// Checks a manifest read from a plugin and converts it.
    pub fn from_wit(manifest: wit::Manifest) -> Result<Self, ManifestError> {
        check_name(&manifest.name)?;
        if let Some(bad) = manifest.subscriptions.iter().find(|s| !valid_pattern(s)) {
            return Err(ManifestError::Subscription(bad.clone()));
        }
        if let Some(bad) = manifest.schedules.iter().find(|s| s.name.is_empty() || s.interval_seconds == 0) {
            return Err(ManifestError::Schedule(bad.name.clone()));
        }
        if let Some(bad) = manifest.capabilities.iter().find(|c| !capabilities::KNOWN.contains(&c.as_str())) {
            return Err(ManifestError::Capability(bad.clone()));
        }
        let routes = manifest.routes.into_iter().map(route_doc).collect::<Result<Vec<_>, _>>()?;
        Ok(PluginManifest {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            routes,
            subscriptions: manifest.subscriptions,
            schedules: manifest
                .schedules
                .into_iter()
                .map(|s| ScheduleDoc { name: s.name, interval_seconds: s.interval_seconds })
                .collect(),
            webhook_sources: manifest
                .webhook_sources
                .into_iter()
                .map(|s| WebhookSourceDoc {
                    name: s.name,
                    scheme: match s.scheme {
                        SignatureScheme::GithubHmacSha256 => "github-hmac-sha256".into(),
                        SignatureScheme::HmacSha256 => "hmac-sha256".into(),
                    },
                    kind_header: s.kind_header,
                    delivery_header: s.delivery_header,
                    signature_header: s.signature_header,
                })
                .collect(),
            capabilities: manifest.capabilities,
        })
    }
}

fn route_doc(route: wit::Route) -> Result<RouteDoc, ManifestError> {
    let label = format!("{} {}", method_name(route.method), route.path);
    let params = route
        .params
        .into_iter()
        .map(|param| {
            Ok(ParamDoc {
                schema: parse_schema(&label, &format!("the schema of parameter {}", param.name), &param.schema)?,
                name: param.name,
                location: match param.location {
                    ParamLocation::Path => "path".into(),
                    ParamLocation::Query => "query".into(),
                },
                required: param.required || param.location == ParamLocation::Path,
                description: param.description,
            })
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let body_schema = route.body_schema.as_deref().map(|s| parse_schema(&label, "the body schema", s)).transpose()?;
    let responses = route
        .responses
        .into_iter()
        .map(|response| {
            Ok(ResponseDoc {
                schema: response
                    .schema
                    .as_deref()
                    .map(|s| parse_schema(&label, &format!("the schema of response {}", response.status), s))
                    .transpose()?,
                status: response.status,
                description: response.description,
            })
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    Ok(RouteDoc {
        method: method_name(route.method).into(),
        path: route.path,
        summary: route.summary,
        description: route.description,
        params,
        body_schema,
        responses,
        min_role: role_name(route.min_role).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::{ManifestError, PluginManifest};
    use crate::runtime::wit::devpulse::plugin::types::Manifest;

    fn named(name: &str) -> Manifest {
        Manifest {
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            routes: Vec::new(),
            subscriptions: vec!["github.*".into(), "hello.greeted".into()],
            schedules: Vec::new(),
            webhook_sources: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    #[test]
    fn names_must_be_slugs_and_not_host_resources() {
        assert!(PluginManifest::from_wit(named("my-plugin2")).is_ok());
        for reserved in ["plugins", "users", "tokens", "hooks", "metrics", "audit"] {
            assert!(matches!(PluginManifest::from_wit(named(reserved)), Err(ManifestError::Reserved(_))), "{reserved}");
        }
        for bad in ["", "Hello", "9lives", "with space", "under_score"] {
            assert!(matches!(PluginManifest::from_wit(named(bad)), Err(ManifestError::BadName(_))), "{bad:?}");
        }
    }

    #[test]
    fn subscriptions_and_capabilities_are_checked() {
        let mut manifest = named("ok");
        manifest.subscriptions = vec!["GitHub PR".into()];
        assert!(matches!(PluginManifest::from_wit(manifest), Err(ManifestError::Subscription(_))));
        let mut manifest = named("ok");
        manifest.capabilities = vec!["filesystem".into()];
        assert!(matches!(PluginManifest::from_wit(manifest), Err(ManifestError::Capability(_))));
    }
}
