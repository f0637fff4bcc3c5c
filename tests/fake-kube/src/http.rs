//! The REST protocol: URL grammar, verbs, query parameters and `Status`
//! errors as the API server answers them, and watches as a stream of JSON
//! lines.

use crate::Shared;
use crate::kinds::{self, Kind};
use crate::selector::Selector;
use crate::store::{Change, Expired, Resumed};
use crate::{apply, controllers, openapi, store};
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// The whole server as one endpoint.
pub fn app(shared: Arc<Shared>) -> impl Endpoint {
    poem::endpoint::make(move |request: Request| {
        let shared = shared.clone();
        async move { Ok::<Response, poem::Error>(answer(shared, request).await.unwrap_or_else(Problem::into_response)) }
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder().status(status).content_type("application/json").body(body.to_string())
}

/// A refused request, answered as a `metav1.Status` failure like every error of the API server.
struct Problem {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: Value,
}

impl Problem {
    fn into_response(self) -> Response {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "details": self.details, "code": self.code.as_u16(),
        });
        json_response(self.code, &status)
    }
}

fn failure(code: StatusCode, reason: &'static str, message: impl Into<String>, details: Value) -> Problem {
    Problem { code, reason, message: message.into(), details }
}

fn not_found(kind: &Kind, name: &str) -> Problem {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "{}{} \"{name}\" not found",
            kind.plural,
            if kind.group.is_empty() { String::new() } else { format!(".{}", kind.group) }
        ),
        json!({"name": name, "group": kind.group, "kind": kind.plural}),
    )
}

fn no_resource() -> Problem {
    failure(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource", json!({}))
}

fn bad_request(message: impl Into<String>) -> Problem {
    failure(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
}

/// Where a resource request points.
struct Target {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, more @ ..] if kinds::by_plural(group, version, plural).is_some() => {
            (Some((*namespace).to_owned()), [&[*plural][..], more].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let kind = kinds::by_plural(group, version, rest.first()?)?;
    if rest.len() > 3
        || (kind.namespaced != namespace.is_some() && rest.len() > 1)
        || (!kind.namespaced && namespace.is_some())
    {
        return None;
    }
    Some(Target {
        kind,
        namespace,
        name: rest.get(1).map(|s| (*s).to_owned()),
        subresource: rest.get(2).map(|s| (*s).to_owned()),
    })
}

async fn answer(shared: Arc<Shared>, request: Request) -> Result<Response, Problem> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query: HashMap<String, String> = request.params().map_err(|e| bad_request(e.to_string()))?;
    let discovery =
        |document: Option<Value>| document.map(|d| json_response(StatusCode::OK, &d)).ok_or_else(no_resource);
    let resource = match (request.method(), segments.as_slice()) {
        (&Method::GET, ["version"]) => return discovery(Some(kinds::version())),
        (&Method::GET, ["api"]) => return discovery(Some(kinds::core_versions(&shared.server_address))),
        (&Method::GET, ["apis"]) => return discovery(Some(kinds::group_list())),
        (&Method::GET, ["api", version]) => return discovery(kinds::resource_list("", version)),
        (&Method::GET, ["apis", group, version]) => return discovery(kinds::resource_list(group, version)),
        (&Method::GET, ["openapi", "v3"]) => return discovery(Some(openapi::index())),
        (&Method::GET, ["openapi", "v3", rest @ ..]) => return discovery(openapi::group_version(&rest.join("/"))),
        (_, ["api", version, rest @ ..]) => target("", version, rest),
        (_, ["apis", group, version, rest @ ..]) => target(group, version, rest),
        _ => None,
    };
    let target = resource.ok_or_else(no_resource)?;
    let method = request.method().clone();
    let content_type = request.header(header::CONTENT_TYPE).unwrap_or_default().to_owned();
    let body = request.into_body().into_vec().await.map_err(|e| bad_request(e.to_string()))?;
    match (method, &target.name, target.subresource.as_deref()) {
        (Method::GET, None, None) if flag(&query, "watch") => watch(shared, &target, &query).await,
        (Method::GET, None, None) => list(&shared, &target, &query),
        (Method::GET, Some(name), None | Some("status")) => {
            let namespace = target.namespace.as_deref().unwrap_or_default();
            let store = shared.store();
            let object = store.get(target.kind, namespace, name).ok_or_else(|| not_found(target.kind, name))?;
            Ok(json_response(StatusCode::OK, object))
        }
        (Method::GET, Some(name), Some("log")) if target.kind.kind == "Pod" => {
            let namespace = target.namespace.as_deref().unwrap_or_default();
            let pod = shared
                .store()
                .get(target.kind, namespace, name)
                .cloned()
                .ok_or_else(|| not_found(target.kind, name))?;
            let log = controllers::pod_log(&pod, query.get("container").map(String::as_str)).map_err(bad_request)?;
            Ok(Response::builder().content_type("text/plain").body(log))
        }
        (Method::PATCH, Some(name), None) => patch(&shared, &target, name, &content_type, &body, &query),
        (Method::DELETE, Some(name), None) => {
            let namespace = target.namespace.as_deref().unwrap_or_default();
            let deleted =
                shared.store().delete(target.kind, namespace, name).ok_or_else(|| not_found(target.kind, name))?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        (method, _, _) => Err(failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "{method} is not supported on this path by the fake (it serves get, list, watch, server-side apply and delete)"
            ),
            json!({}),
        )),
    }
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// `?fieldSelector=` on the two fields every kind supports.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    namespace: Option<String>,
}

impl Fields {
    fn parse(text: &str) -> Result<Self, Problem> {
        let mut fields = Fields::default();
        for term in text.split(',').filter(|t| !t.is_empty()) {
            let (field, value) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .ok_or_else(|| bad_request(format!("invalid field selector: {term}")))?;
            match field {
                "metadata.name" => fields.name = Some(value.to_owned()),
                "metadata.namespace" => fields.namespace = Some(value.to_owned()),
                _ => return Err(bad_request(format!("field label not supported: {field}"))),
            }
        }
        Ok(fields)
    }

    fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        self.name.as_deref().is_none_or(|n| metadata["name"] == n)
            && self.namespace.as_deref().is_none_or(|n| metadata["namespace"] == n)
    }
}

/// What a list or watch selects.
struct Filter {
    kind: &'static Kind,
    namespace: Option<String>,
    labels: Selector,
    fields: Fields,
}

impl Filter {
    fn new(target: &Target, query: &HashMap<String, String>) -> Result<Self, Problem> {
        Ok(Filter {
            kind: target.kind,
            namespace: target.namespace.clone(),
            labels: Selector::parse(query.get("labelSelector").map_or("", String::as_str)).map_err(bad_request)?,
            fields: Fields::parse(query.get("fieldSelector").map_or("", String::as_str))?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object["metadata"]["labels"].as_object()) && self.fields.matches(object)
    }

    /// The watch event a change is for this watcher, if any: an object that
    /// stops matching the selector is `DELETED` for it, one that starts is `ADDED`.
    fn event(&self, change: &Change) -> Option<Value> {
        if change.kind != self.kind {
            return None;
        }
        let object = change.object();
        if self.namespace.as_deref().is_some_and(|ns| object["metadata"]["namespace"] != ns) {
            return None;
        }
        let before = change.before.as_ref().is_some_and(|o| self.matches(o));
        let after = change.after.as_ref().is_some_and(|o| self.matches(o));
        let kind = match (before, after) {
            (false, true) => "ADDED",
            (true, true) => "MODIFIED",
            (true, false) => "DELETED",
            (false, false) => return None,
        };
        Some(json!({"type": kind, "object": object}))
    }
}

fn list(shared: &Shared, target: &Target, query: &HashMap<String, String>) -> Result<Response, Problem> {
    let filter = Filter::new(target, query)?;
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None | Some(Ok(0)) => usize::MAX,
        Some(Ok(limit)) => limit,
        Some(Err(_)) => return Err(bad_request("limit must be a number")),
    };
    let after = query.get("continue").filter(|c| !c.is_empty()).cloned();
    let store = shared.store();
    let position = |object: &Value| {
        format!(
            "{}/{}",
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        )
    };
    let selected: Vec<&Value> = store
        .list(target.kind, filter.namespace.as_deref(), &Selector::default())
        .into_iter()
        .filter(|object| filter.matches(object))
        .filter(|object| after.as_ref().is_none_or(|after| position(object) > *after))
        .collect();
    let page: Vec<&Value> = selected.iter().take(limit).copied().collect();
    let mut metadata = json!({"resourceVersion": store.revision().to_string()});
    if page.len() < selected.len() {
        metadata["continue"] = json!(page.last().map(|o| position(o)));
        metadata["remainingItemCount"] = json!(selected.len() - page.len());
    }
    let list = json!({
        "kind": format!("{}List", target.kind.kind), "apiVersion": target.kind.api_version(),
        "metadata": metadata, "items": page,
    });
    Ok(json_response(StatusCode::OK, &list))
}

fn patch(
    shared: &Shared,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &[u8],
    query: &HashMap<String, String>,
) -> Result<Response, Problem> {
    if !content_type.starts_with("application/apply-patch+yaml") {
        return Err(failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the fake accepts server-side apply (application/apply-patch+yaml) only, not {content_type:?}"),
            json!({}),
        ));
    }
    let manager = query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
        failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "fieldManager: Required value: is required for apply patch",
            json!({}),
        )
    })?;
    let applied: Value = serde_json::from_slice(body).map_err(|e| {
        bad_request(format!("error decoding patch (the fake reads apply patches written as JSON): {e}"))
    })?;
    let kind = target.kind;
    if applied["apiVersion"] != kind.api_version().as_str() || applied["kind"] != kind.kind {
        return Err(bad_request(format!(
            "the object's apiVersion and kind ({} {}) do not match the URL ({} {})",
            applied["apiVersion"],
            applied["kind"],
            kind.api_version(),
            kind.kind
        )));
    }
    if applied["metadata"]["name"] != name {
        return Err(bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            applied["metadata"]["name"]
        )));
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    if kind.namespaced
        && !applied["metadata"]["namespace"].is_null()
        && applied["metadata"]["namespace"] != namespace.as_str()
    {
        return Err(bad_request("the namespace of the object does not match the namespace on the URL"));
    }
    let mut store = shared.store();
    if kind.namespaced && !store.namespace_exists(&namespace) {
        return Err(failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
            json!({"name": namespace, "kind": "namespaces"}),
        ));
    }
    let live = store.get(kind, &namespace, name).cloned();
    let base = live.clone().unwrap_or_else(|| json!({"metadata": {"name": name, "namespace": namespace}}));
    let result = apply::apply(&base, &applied, manager, flag(query, "force"), &store::now()).map_err(|conflicts| {
        failure(
            StatusCode::CONFLICT,
            "Conflict",
            conflicts.message(),
            json!({"name": name, "group": kind.group, "kind": kind.plural, "causes": conflicts.causes()}),
        )
    })?;
    let unchanged = live.as_ref().is_some_and(|live| without_times(live) == without_times(&result));
    let status = if live.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    if unchanged || query.get("dryRun").is_some_and(|d| d == "All") {
        return Ok(json_response(status, live.as_ref().unwrap_or(&result)));
    }
    let stored = store.put(kind, result);
    Ok(json_response(status, &stored))
}

/// An object with its managers' timestamps blanked: an apply that changes nothing else is a no-op.
fn without_times(object: &Value) -> Value {
    let mut copy = object.clone();
    for entry in copy["metadata"]["managedFields"].as_array_mut().into_iter().flatten() {
        entry["time"] = Value::Null;
    }
    copy
}

fn line(event: &Value) -> Result<bytes::Bytes, std::io::Error> {
    Ok(bytes::Bytes::from(format!("{event}\n")))
}

fn expired_event(revision: u64, oldest: u64) -> Value {
    json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {revision} ({oldest})"), "reason": "Expired", "code": 410,
    }})
}

fn bookmark(kind: &Kind, revision: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": metadata}})
}

/// `?watch=true`: the changes after `resourceVersion` (or the current objects
/// as `ADDED` when none is given), then every change as it happens, until
/// `timeoutSeconds` or the client leaves.
async fn watch(shared: Arc<Shared>, target: &Target, query: &HashMap<String, String>) -> Result<Response, Problem> {
    let filter = Filter::new(target, query)?;
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| bad_request(format!("invalid resource version: {text}")))?),
    };
    let initial_events = flag(query, "sendInitialEvents");
    let bookmarks = flag(query, "allowWatchBookmarks");
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs);
    let bookmark_every = shared.config().bookmark_every;

    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(256);
    let (first, subscription, mut seen) = {
        let store = shared.store();
        let mut first = Vec::new();
        let start = match from {
            Some(revision) if !initial_events => revision,
            _ => {
                let current = store.list(target.kind, filter.namespace.as_deref(), &Selector::default());
                first.extend(
                    current.into_iter().filter(|o| filter.matches(o)).map(|o| json!({"type": "ADDED", "object": o})),
                );
                store.revision()
            }
        };
        match store.watch_from(start) {
            Ok(Resumed { replay, receiver }) => {
                first.extend(replay.iter().filter_map(|change| filter.event(change)));
                let seen = replay.last().map_or(start, |change| change.revision);
                (first, Some(receiver), seen)
            }
            Err(Expired { oldest }) => (vec![expired_event(start, oldest)], None, start),
        }
    };
    let kind = target.kind;
    tokio::spawn(async move {
        for event in &first {
            if tx.send(line(event)).await.is_err() {
                return;
            }
        }
        let Some(mut changes) = subscription else { return };
        if initial_events && bookmarks && tx.send(line(&bookmark(kind, seen, true))).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::MAX / 4));
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval(bookmark_every);
        ticks.tick().await;
        loop {
            let event = tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = ticks.tick(), if bookmarks => bookmark(kind, seen, false),
                change = changes.recv() => match change {
                    Ok(change) if change.revision <= seen => continue,
                    Ok(change) => {
                        seen = change.revision;
                        match filter.event(&change) { Some(event) => event, None => continue }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(line(&expired_event(seen, seen + 1))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(line(&event)).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Response::builder().content_type("application/json").body(Body::from_bytes_stream(stream)))
}
