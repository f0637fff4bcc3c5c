//! The host's copy of a plugin manifest: checked against the operator's
//! limits, with schemas parsed and closed sets as enums, and independent of the
//! WIT version it came from. Names become strings only at the API edge.

use crate::auth::Role;
use crate::auth::signature::Scheme;
use crate::capabilities;
use crate::config::ManifestLimits;
use crate::wit::devpulse::plugin::types as wit;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Names a plugin may not take: they are host resources under `/api/v1`.
pub const RESERVED_NAMES: &[&str] = &[
    "alerts",
    "audit",
    "dead-letters",
    "docs",
    "events",
    "hooks",
    "me",
    "metrics",
    "openapi",
    "orgs",
    "plugins",
    "ready",
    "silences",
    "stream",
    "tokens",
    "users",
    "version",
];

/// Why a manifest was rejected. Each names what to change.
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
    #[error("watch {name:?}: {reason}")]
    Watch { name: String, reason: String },
    #[error("plugin config: {0}")]
    Configured(String),
    #[error("unknown capability {0:?}; the host offers: {known}", known = capabilities::KNOWN.join(", "))]
    Capability(String),
    #[error(
        "the manifest declares {count} {what}; this host allows at most {limit} (`manifest.max_{what}` in the plugin's config)"
    )]
    TooMany { what: &'static str, count: usize, limit: usize },
    #[error("{what} is {length} bytes long; at most {limit} are allowed (`manifest.{setting}` in the plugin's config)")]
    TooLong { what: String, length: usize, limit: usize, setting: &'static str },
}

/// An HTTP method a route may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, poem_openapi::Enum)]
#[serde(rename_all = "UPPERCASE")]
#[oai(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// The method of an HTTP request, if routes can declare it.
    pub fn parse(method: &str) -> Option<Self> {
        Some(match method {
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
}

/// Where a parameter is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
}

impl ParamLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
        }
    }
}

/// A route as documented in the plugin list and the OpenAPI document.
#[derive(Clone, Debug, Serialize)]
pub struct RouteDoc {
    pub method: Method,
    /// Template relative to `/api/v1/{plugin}`.
    pub path: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<ParamDoc>,
    pub body_schema: Option<Value>,
    /// The body may be left out: its schema takes `null`.
    pub body_optional: bool,
    pub responses: Vec<ResponseDoc>,
    pub min_role: Role,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParamDoc {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub description: String,
    pub schema: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResponseDoc {
    pub status: u16,
    pub description: String,
    pub schema: Option<Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScheduleDoc {
    pub name: String,
    pub interval_seconds: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookSourceDoc {
    pub name: String,
    pub scheme: Scheme,
    pub kind_header: String,
    pub delivery_header: String,
    pub signature_header: String,
}

/// Kubernetes objects the plugin follows; each change arrives as an event of
/// kind [`WatchDoc::event_kind`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchDoc {
    pub name: String,
    pub api_version: String,
    pub kind: String,
    /// A label selector; empty selects every object of the kind the plugin made.
    pub labels: String,
}

impl WatchDoc {
    /// `kube.{plugin}.{watch}`: the host emits it and subscribes the plugin to it.
    pub fn event_kind(plugin: &str, watch: &str) -> String {
        format!("kube.{plugin}.{watch}")
    }
}

/// What a plugin declares about itself.
#[derive(Clone, Debug, Serialize)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub routes: Vec<RouteDoc>,
    pub subscriptions: Vec<String>,
    pub schedules: Vec<ScheduleDoc>,
    pub webhook_sources: Vec<WebhookSourceDoc>,
    pub capabilities: Vec<String>,
    pub watches: Vec<WatchDoc>,
}

impl From<wit::Method> for Method {
    fn from(method: wit::Method) -> Self {
        match method {
            wit::Method::Get => Method::Get,
            wit::Method::Head => Method::Head,
            wit::Method::Post => Method::Post,
            wit::Method::Put => Method::Put,
            wit::Method::Patch => Method::Patch,
            wit::Method::Delete => Method::Delete,
            wit::Method::Options => Method::Options,
        }
    }
}

impl From<Method> for wit::Method {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => wit::Method::Get,
            Method::Head => wit::Method::Head,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
            Method::Options => wit::Method::Options,
        }
    }
}

fn role(role: wit::Role) -> Role {
    match role {
        wit::Role::Developer => Role::Developer,
        wit::Role::Manager => Role::Manager,
        wit::Role::Admin => Role::Admin,
        wit::Role::Owner => Role::Owner,
    }
}

fn scheme(scheme: wit::SignatureScheme) -> Scheme {
    match scheme {
        wit::SignatureScheme::GithubHmacSha256 => Scheme::GithubHmacSha256,
        wit::SignatureScheme::HmacSha256 => Scheme::HmacSha256,
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

/// A subscription pattern: `*`, a kind, or a kind stem and `.*`.
pub fn valid_pattern(pattern: &str) -> bool {
    let stem = pattern.strip_suffix(".*").unwrap_or(pattern);
    pattern == "*" || crate::capabilities::events::valid_kind(stem)
}

/// Checks one manifest against the operator's limits while converting it.
struct Checker<'a> {
    limits: &'a ManifestLimits,
}

impl Checker<'_> {
    fn count(&self, what: &'static str, count: usize, limit: usize) -> Result<(), ManifestError> {
        if count > limit { Err(ManifestError::TooMany { what, count, limit }) } else { Ok(()) }
    }

    fn name(&self, what: impl FnOnce() -> String, name: &str) -> Result<(), ManifestError> {
        self.length(what, name.len(), self.limits.max_name_bytes, "max_name_bytes")
    }

    fn text(&self, what: impl FnOnce() -> String, text: &str) -> Result<(), ManifestError> {
        self.length(what, text.len(), self.limits.max_text_bytes, "max_text_bytes")
    }

    fn length(
        &self,
        what: impl FnOnce() -> String,
        length: usize,
        limit: usize,
        setting: &'static str,
    ) -> Result<(), ManifestError> {
        if length > limit { Err(ManifestError::TooLong { what: what(), length, limit, setting }) } else { Ok(()) }
    }

    /// Parses a schema after checking its size and nesting, so a plugin cannot
    /// make the host hold or walk an enormous document.
    fn schema(&self, route: &str, what: &str, text: &str) -> Result<Value, ManifestError> {
        let label = || format!("route {route}: {what}");
        self.length(label, text.len(), self.limits.max_schema_bytes, "max_schema_bytes")?;
        let value: Value = serde_json::from_str(text).map_err(|err| ManifestError::Route {
            route: route.to_owned(),
            reason: format!("{what} is not valid JSON: {err}"),
        })?;
        let depth = depth(&value);
        if depth > self.limits.max_schema_depth {
            return Err(ManifestError::Route {
                route: route.to_owned(),
                reason: format!(
                    "{what} nests {depth} levels deep; at most {} are allowed (`manifest.max_schema_depth` in the plugin's config)",
                    self.limits.max_schema_depth
                ),
            });
        }
        Ok(value)
    }

    fn route(&self, route: wit::Route) -> Result<RouteDoc, ManifestError> {
        let method = Method::from(route.method);
        let label = format!("{} {}", method.as_str(), route.path);
        self.length(
            || format!("the path of route {label}"),
            route.path.len(),
            self.limits.max_text_bytes,
            "max_text_bytes",
        )?;
        self.text(|| format!("the summary of route {label}"), &route.summary)?;
        self.text(|| format!("the description of route {label}"), &route.description)?;
        let params = route
            .params
            .into_iter()
            .map(|param| {
                self.name(|| format!("a parameter name of route {label}"), &param.name)?;
                self.text(
                    || format!("the description of parameter {} of route {label}", param.name),
                    &param.description,
                )?;
                let location = match param.location {
                    wit::ParamLocation::Path => ParamLocation::Path,
                    wit::ParamLocation::Query => ParamLocation::Query,
                };
                Ok(ParamDoc {
                    schema: self.schema(&label, &format!("the schema of parameter {}", param.name), &param.schema)?,
                    required: param.required || location == ParamLocation::Path,
                    name: param.name,
                    location,
                    description: param.description,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let body_schema =
            route.body_schema.as_deref().map(|s| self.schema(&label, "the body schema", s)).transpose()?;
        let responses = route
            .responses
            .into_iter()
            .map(|response| {
                self.text(
                    || format!("the description of response {} of route {label}", response.status),
                    &response.description,
                )?;
                Ok(ResponseDoc {
                    schema: response
                        .schema
                        .as_deref()
                        .map(|s| self.schema(&label, &format!("the schema of response {}", response.status), s))
                        .transpose()?,
                    status: response.status,
                    description: response.description,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        let body_optional = body_schema
            .as_ref()
            .and_then(|schema| jsonschema::validator_for(schema).ok())
            .is_some_and(|validator| validator.is_valid(&Value::Null));
        Ok(RouteDoc {
            method,
            path: route.path,
            summary: route.summary,
            description: route.description,
            params,
            body_schema,
            body_optional,
            responses,
            min_role: role(route.min_role),
        })
    }
}

impl Checker<'_> {
    fn watches(&self, watches: Vec<crate::wit::Watch>) -> Result<Vec<WatchDoc>, ManifestError> {
        self.count("watches", watches.len(), self.limits.max_watches)?;
        let mut checked: Vec<WatchDoc> = Vec::with_capacity(watches.len());
        for watch in watches {
            let refuse = |reason: &str| ManifestError::Watch { name: watch.name.clone(), reason: reason.to_owned() };
            if !valid_name(&watch.name) {
                return Err(refuse("its name must be 1 to 63 of a-z, 0-9 and '-', starting with a letter"));
            }
            if checked.iter().any(|other| other.name == watch.name) {
                return Err(refuse("another watch has the same name"));
            }
            let word = |text: &str| !text.is_empty() && !text.chars().any(char::is_whitespace);
            if !word(&watch.api_version) || !word(&watch.kind) {
                return Err(refuse("it needs an api-version (`v1`, `apps/v1`) and a kind (`Pod`)"));
            }
            self.name(|| format!("the api-version of watch {}", watch.name), &watch.api_version)?;
            self.name(|| format!("the kind of watch {}", watch.name), &watch.kind)?;
            self.text(|| format!("the labels of watch {}", watch.name), &watch.labels)?;
            checked.push(WatchDoc {
                name: watch.name,
                api_version: watch.api_version,
                kind: watch.kind,
                labels: watch.labels.trim().to_owned(),
            });
        }
        Ok(checked)
    }
}

/// How deeply a JSON value nests: 1 for a scalar.
fn depth(value: &Value) -> usize {
    let children = match value {
        Value::Array(items) => items.iter().map(depth).max(),
        Value::Object(fields) => fields.values().map(depth).max(),
        _ => None,
    };
    1 + children.unwrap_or(0)
}

impl PluginManifest {
    /// Replaces declared schedule intervals with the operator's; naming a
    /// schedule the plugin does not declare, or zero seconds, is refused.
    pub fn override_intervals(&mut self, intervals: &BTreeMap<String, u32>) -> Result<(), ManifestError> {
        for (name, &seconds) in intervals {
            let schedule = self.schedules.iter_mut().find(|schedule| &schedule.name == name);
            match schedule {
                Some(schedule) if seconds > 0 => schedule.interval_seconds = seconds,
                _ => {
                    return Err(ManifestError::Configured(format!(
                        "`schedules.{name}` = {seconds}: the plugin declares no such schedule, or the interval is zero"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks a manifest and the watches read from a plugin against `limits`
    /// and converts them. Each watch's event kind joins the subscriptions.
    pub fn from_wit(
        manifest: wit::Manifest,
        watches: Vec<crate::wit::Watch>,
        limits: &ManifestLimits,
    ) -> Result<Self, ManifestError> {
        let check = Checker { limits };
        check_name(&manifest.name)?;
        check.name(|| "the version".into(), &manifest.version)?;
        check.text(|| "the description".into(), &manifest.description)?;
        check.count("routes", manifest.routes.len(), limits.max_routes)?;
        check.count("subscriptions", manifest.subscriptions.len(), limits.max_subscriptions)?;
        check.count("schedules", manifest.schedules.len(), limits.max_schedules)?;
        check.count("webhook_sources", manifest.webhook_sources.len(), limits.max_webhook_sources)?;
        if let Some(bad) = manifest.subscriptions.iter().find(|s| !valid_pattern(s)) {
            return Err(ManifestError::Subscription(bad.clone()));
        }
        for schedule in &manifest.schedules {
            check.name(|| "a schedule name".into(), &schedule.name)?;
            if schedule.name.is_empty() || schedule.interval_seconds == 0 {
                return Err(ManifestError::Schedule(schedule.name.clone()));
            }
        }
        if let Some(bad) = manifest.capabilities.iter().find(|c| !capabilities::KNOWN.contains(&c.as_str())) {
            return Err(ManifestError::Capability(bad.clone()));
        }
        let mut webhook_sources = Vec::with_capacity(manifest.webhook_sources.len());
        for source in manifest.webhook_sources {
            for (what, value) in [
                ("name", &source.name),
                ("kind header", &source.kind_header),
                ("delivery header", &source.delivery_header),
                ("signature header", &source.signature_header),
            ] {
                check.name(|| format!("the {what} of webhook source {}", source.name), value)?;
            }
            webhook_sources.push(WebhookSourceDoc {
                name: source.name,
                scheme: scheme(source.scheme),
                kind_header: source.kind_header,
                delivery_header: source.delivery_header,
                signature_header: source.signature_header,
            });
        }
        let routes = manifest.routes.into_iter().map(|route| check.route(route)).collect::<Result<Vec<_>, _>>()?;
        let watches = check.watches(watches)?;
        let mut subscriptions = manifest.subscriptions;
        subscriptions.extend(watches.iter().map(|watch| WatchDoc::event_kind(&manifest.name, &watch.name)));
        Ok(PluginManifest {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            routes,
            subscriptions,
            schedules: manifest
                .schedules
                .into_iter()
                .map(|s| ScheduleDoc { name: s.name, interval_seconds: s.interval_seconds })
                .collect(),
            webhook_sources,
            capabilities: manifest.capabilities,
            watches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ManifestError, PluginManifest};
    use crate::config::ManifestLimits;
    use crate::wit::devpulse::plugin::types::{Manifest, Method, Role, Route};

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

    fn route(path: &str, body_schema: Option<String>) -> Route {
        Route {
            method: Method::Post,
            path: path.into(),
            summary: String::new(),
            description: String::new(),
            params: Vec::new(),
            body_schema,
            responses: Vec::new(),
            min_role: Role::Developer,
        }
    }

    fn check(manifest: Manifest) -> Result<PluginManifest, ManifestError> {
        PluginManifest::from_wit(manifest, Vec::new(), &ManifestLimits::default())
    }

    #[test]
    fn names_must_be_slugs_and_not_host_resources() {
        assert!(check(named("my-plugin2")).is_ok());
        for reserved in ["plugins", "users", "tokens", "hooks", "metrics", "audit"] {
            assert!(matches!(check(named(reserved)), Err(ManifestError::Reserved(_))), "{reserved}");
        }
        for bad in ["", "Hello", "9lives", "with space", "under_score"] {
            assert!(matches!(check(named(bad)), Err(ManifestError::BadName(_))), "{bad:?}");
        }
    }

    fn watch(name: &str, kind: &str) -> crate::wit::Watch {
        crate::wit::Watch {
            name: name.into(),
            api_version: "apps/v1".into(),
            kind: kind.into(),
            labels: " app=ide ".into(),
        }
    }

    #[test]
    fn watches_are_checked_and_their_events_subscribed() {
        let limits = ManifestLimits::default();
        let checked = PluginManifest::from_wit(named("ws"), vec![watch("deployments", "Deployment")], &limits).unwrap();
        assert_eq!(checked.watches[0].labels, "app=ide");
        assert!(checked.subscriptions.contains(&"kube.ws.deployments".to_owned()), "{:?}", checked.subscriptions);
        let refused = |watches| PluginManifest::from_wit(named("ws"), watches, &limits).unwrap_err().to_string();
        assert!(refused(vec![watch("Pods!", "Pod")]).contains("its name must be"));
        assert!(refused(vec![watch("pods", "Pod"), watch("pods", "Pod")]).contains("same name"));
        assert!(refused(vec![watch("pods", "")]).contains("needs an api-version"));
        let many = (0..=limits.max_watches).map(|i| watch(&format!("w{i}"), "Pod")).collect();
        assert!(refused(many).contains("watches"));
    }

    #[test]
    fn subscriptions_and_capabilities_are_checked() {
        let mut manifest = named("ok");
        manifest.subscriptions = vec!["GitHub PR".into()];
        assert!(matches!(check(manifest), Err(ManifestError::Subscription(_))));
        let mut manifest = named("ok");
        manifest.capabilities = vec!["filesystem".into()];
        assert!(matches!(check(manifest), Err(ManifestError::Capability(_))));
    }

    #[test]
    fn counts_texts_and_schemas_stay_within_the_limits() {
        let limits = ManifestLimits::default();
        let mut manifest = named("ok");
        manifest.routes = (0..=limits.max_routes).map(|i| route(&format!("/r{i}"), None)).collect();
        let err = check(manifest).unwrap_err();
        assert!(err.to_string().contains(&format!("declares {} routes", limits.max_routes + 1)), "{err}");

        let mut manifest = named("ok");
        manifest.description = "x".repeat(limits.max_text_bytes + 1);
        assert!(matches!(check(manifest), Err(ManifestError::TooLong { setting: "max_text_bytes", .. })));

        let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(limits.max_schema_bytes));
        let mut manifest = named("ok");
        manifest.routes = vec![route("/big", Some(huge))];
        let err = check(manifest).unwrap_err();
        assert!(err.to_string().contains("route POST /big: the body schema is"), "{err}");

        let deep = "{\"items\": ".repeat(limits.max_schema_depth) + "{}" + &"}".repeat(limits.max_schema_depth);
        let mut manifest = named("ok");
        manifest.routes = vec![route("/deep", Some(deep))];
        let err = check(manifest).unwrap_err();
        assert!(err.to_string().contains("levels deep"), "{err}");

        // Raised by the operator, the same manifest loads.
        let mut manifest = named("ok");
        manifest.routes = (0..100).map(|i| route(&format!("/r{i}"), None)).collect();
        let roomy = ManifestLimits { max_routes: 100, ..ManifestLimits::default() };
        assert!(PluginManifest::from_wit(manifest, Vec::new(), &roomy).is_ok());
    }

    #[test]
    fn the_operator_replaces_declared_intervals_and_only_those() {
        use crate::wit::devpulse::plugin::types::Schedule;
        let mut manifest = named("ok");
        manifest.schedules = vec![Schedule { name: "evaluate".into(), interval_seconds: 300 }];
        let mut checked = PluginManifest::from_wit(manifest, Vec::new(), &ManifestLimits::default()).unwrap();
        checked.override_intervals(&[("evaluate".to_owned(), 60)].into()).unwrap();
        assert_eq!(checked.schedules[0].interval_seconds, 60);
        for wrong in [("evaluate", 0), ("nightly", 60)] {
            let err = checked.override_intervals(&[(wrong.0.to_owned(), wrong.1)].into()).unwrap_err();
            assert!(err.to_string().contains(&format!("`schedules.{}`", wrong.0)), "{err}");
        }
    }
}
