//! The OpenAPI v3 documents (`/openapi/v3` and one per group version) that
//! clients read to learn what a server supports. `kubectl apply` looks up
//! whether the PATCH of a kind takes `fieldValidation` and, when it does,
//! leaves validation to the server instead of downloading every schema. The
//! fake announces its paths and parameters only: it has no schemas and does
//! not validate objects against them.

use crate::kinds::{KINDS, Kind};
use serde_json::{Map, Value, json};

/// `apis/apps/v1`, `api/v1`: the index key of a group version.
fn group_version_path(kind: &Kind) -> String {
    if kind.group.is_empty() {
        format!("api/{}", kind.version)
    } else {
        format!("apis/{}/{}", kind.group, kind.version)
    }
}

/// `GET /openapi/v3`.
pub fn index() -> Value {
    let paths: Map<String, Value> = KINDS
        .iter()
        .map(|kind| {
            let path = group_version_path(kind);
            let url = json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash=fake")});
            (path, url)
        })
        .collect();
    json!({"paths": paths})
}

fn parameter(name: &str, place: &str) -> Value {
    json!({"name": name, "in": place, "required": place == "path", "schema": {"type": if name == "force" { "boolean" } else { "string" }}})
}

/// An operation with its query parameters (`kubectl` looks for them on the operation, not the path).
fn operation(kind: &Kind, action: &str, query: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", kind.kind),
        "parameters": query.iter().map(|p| parameter(p, "query")).collect::<Vec<_>>(),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
        "responses": {"200": {"description": "OK"}},
    })
}

/// `GET /openapi/v3/{api/v1 | apis/GROUP/VERSION}`; `None` for a group version not served.
pub fn group_version(path: &str) -> Option<Value> {
    let served: Vec<&Kind> = KINDS.iter().filter(|k| group_version_path(k) == path).collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for kind in served {
        let base = if kind.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", kind.plural)
        } else {
            format!("/{path}/{}", kind.plural)
        };
        let scope: Vec<Value> = if kind.namespaced { vec![parameter("namespace", "path")] } else { Vec::new() };
        let mut item_parameters = scope.clone();
        item_parameters.push(parameter("name", "path"));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "parameters": item_parameters,
                "get": operation(kind, "get", &[]),
                "patch": operation(kind, "patch", &["fieldManager", "fieldValidation", "force", "dryRun"]),
                "delete": operation(kind, "delete", &["dryRun", "propagationPolicy"]),
            }),
        );
        let list = [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "watch",
            "allowWatchBookmarks",
            "timeoutSeconds",
        ];
        paths.insert(base, json!({"parameters": scope, "get": operation(kind, "list", &list)}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (DevPulse's fake API server)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
