//! The live OpenAPI document: the host's operations (from poem-openapi) merged
//! with every enabled plugin's routes, rebuilt when the set of plugins changes.

use crate::runtime::manifest::RouteDoc;
use crate::runtime::registry::Registry;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

pub struct LiveDocument {
    host: Value,
    cached: Mutex<Option<(u64, Arc<String>)>>,
}

impl LiveDocument {
    /// `host_spec` is the JSON poem-openapi generated for the host's own operations.
    pub fn new(host_spec: &str) -> anyhow::Result<Self> {
        let mut host: Value = serde_json::from_str(host_spec)?;
        if let Some(paths) = host.get_mut("paths").and_then(Value::as_object_mut) {
            paths.insert("/api/v1/hooks/{source}/{org}".into(), super::hooks::delivery_operation());
            for (path, item) in paths.iter_mut() {
                let limited = path.starts_with("/api/");
                for op in item.as_object_mut().into_iter().flat_map(|item| item.values_mut()) {
                    if let Some(op) = op.as_object_mut() {
                        cross_cutting(op, limited);
                    }
                }
            }
        }
        if let Some(components) = host.get_mut("components").and_then(Value::as_object_mut) {
            components.insert("headers".into(), rate_limit_headers());
            if let Some(Value::Object(schemes)) = components.get_mut("securitySchemes") {
                schemes.insert(
                    BASIC.into(),
                    json!({
                        "type": "http",
                        "scheme": "basic",
                        "description": "Plugin routes also take a token as `Authorization: Basic base64(<token>)`, \
                            as WakaTime's clients send their key (from a `user:password` pair, the password).",
                    }),
                );
            }
        }
        lift_annotations(&mut host);
        Ok(LiveDocument { host, cached: Mutex::new(None) })
    }

    /// The merged document as JSON text; cached until the registry changes.
    pub fn render(&self, registry: &Registry) -> Arc<String> {
        let generation = registry.generation();
        if let Ok(cached) = self.cached.lock()
            && let Some((at, text)) = cached.as_ref()
            && *at == generation
        {
            return text.clone();
        }
        let text = Arc::new(self.merge(registry).to_string());
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((generation, text.clone()));
        }
        text
    }

    /// The methods the host's document declares for the path `path` matches,
    /// for the `Allow` header of a `405`.
    pub fn host_methods(&self, path: &str) -> Vec<String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let Some(paths) = self.host.get("paths").and_then(Value::as_object) else {
            return Vec::new();
        };
        let matching = paths.iter().find(|(template, _)| {
            let segments: Vec<&str> = template.trim_matches('/').split('/').collect();
            segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(segment, part)| segment.starts_with('{') || segment == part)
        });
        matching
            .and_then(|(_, item)| item.as_object())
            .map(|item| item.keys().map(|method| method.to_uppercase()).collect())
            .unwrap_or_default()
    }

    fn merge(&self, registry: &Registry) -> Value {
        let mut document = self.host.clone();
        let mut plugins = registry.all();
        plugins.sort_by(|a, b| a.name().cmp(b.name()));
        for plugin in plugins.iter().filter(|plugin| !registry.is_disabled(plugin.name())) {
            let name = plugin.name();
            if let Some(tags) = document.get_mut("tags").and_then(Value::as_array_mut) {
                tags.push(json!({
                    "name": name,
                    "description": format!("{} (plugin {} v{})", plugin.manifest.description, name, plugin.manifest.version),
                }));
            }
            for route in &plugin.manifest.routes {
                let path = format!("/api/v1/{name}{}", if route.path == "/" { "" } else { &route.path });
                let entry = document
                    .as_object_mut()
                    .map(|doc| doc.entry("paths").or_insert_with(|| json!({})))
                    .and_then(Value::as_object_mut)
                    .map(|paths| paths.entry(path).or_insert_with(|| json!({})));
                if let Some(Value::Object(item)) = entry {
                    item.insert(route.method.as_str().to_lowercase(), operation(name, route));
                }
            }
        }
        document
    }
}

fn operation(plugin: &str, route: &RouteDoc) -> Value {
    let slug: String = route.path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let mut op = Map::new();
    op.insert("operationId".into(), json!(format!("{plugin}_{}{slug}", route.method.as_str().to_lowercase())));
    op.insert("tags".into(), json!([plugin]));
    op.insert("summary".into(), json!(route.summary));
    let role_note = format!("Minimum role: `{}`.", route.min_role.as_str());
    let description =
        if route.description.is_empty() { role_note } else { format!("{}\n\n{role_note}", route.description) };
    op.insert("description".into(), json!(description));
    op.insert("x-devpulse-min-role".into(), json!(route.min_role.as_str()));
    let parameters: Vec<Value> = route
        .params
        .iter()
        .map(|param| {
            json!({
                "name": param.name,
                "in": param.location.as_str(),
                "required": param.required,
                "description": param.description,
                "schema": openapi30(&param.schema),
            })
        })
        .collect();
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(schema) = &route.body_schema {
        op.insert(
            "requestBody".into(),
            json!({"required": !route.body_optional, "content": {"application/json": {"schema": openapi30(schema)}}}),
        );
    }
    let mut responses = Map::new();
    for response in &route.responses {
        let mut entry = Map::new();
        entry.insert("description".into(), json!(response.description));
        if let Some(schema) = &response.schema {
            entry.insert("content".into(), json!({"application/json": {"schema": openapi30(schema)}}));
        }
        responses.insert(response.status.to_string(), Value::Object(entry));
    }
    if responses.is_empty() {
        responses.insert("200".into(), json!({"description": "Success"}));
    }
    for (status, description) in PLUGIN_PROBLEMS {
        responses.entry(status.to_string()).or_insert_with(|| problem(description));
    }
    op.insert("responses".into(), Value::Object(responses));
    op.insert("security".into(), json!([{ BEARER: [] }, { BASIC: [] }]));
    cross_cutting(&mut op, true);
    Value::Object(op)
}

/// The security scheme poem-openapi names after [`super::error::BearerAuth`].
const BEARER: &str = "BearerAuth";

/// Basic credentials carrying a token, which plugin routes accept too.
const BASIC: &str = "BasicAuth";

/// What a plugin route may answer besides its own responses, and the problem
/// types each status carries.
const PLUGIN_PROBLEMS: &[(u16, &str)] = &[
    (
        400,
        "The request does not match the declared schemas (`urn:devpulse:problem:validation-failed`, with \
         `errors`), or the plugin refused it (`urn:devpulse:problem:invalid-input`)",
    ),
    (
        403,
        "The caller's role is below the route's minimum (`urn:devpulse:problem:forbidden`) or the plugin denied the call (`urn:devpulse:problem:denied`)",
    ),
    (
        404,
        "No such route or resource (`urn:devpulse:problem:not-found`), or the plugin is disabled (`urn:devpulse:problem:plugin-disabled`)",
    ),
    (409, "The plugin found a conflict with the current state (`urn:devpulse:problem:conflict`)"),
    (
        500,
        "The plugin failed: it trapped (`urn:devpulse:problem:plugin-trap`), exceeded its memory limit \
         (`urn:devpulse:problem:plugin-memory-limit`) or reported an internal error (`urn:devpulse:problem:plugin-error`)",
    ),
    (
        502,
        "The plugin's answer was unusable: an invalid status (`urn:devpulse:problem:plugin-bad-response`) or a body \
         over its limit (`urn:devpulse:problem:plugin-response-too-large`)",
    ),
    (503, "Storage or the plugin is unavailable (`urn:devpulse:problem:unavailable`)"),
    (504, "The plugin did not answer within its deadline (`urn:devpulse:problem:plugin-timeout`)"),
];

/// A response carrying a problem document.
fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
}

/// Adds the statuses every operation of its kind may answer, so host and
/// plugin operations document them alike: `401` and `429` for operations
/// under `/api` (rate limits count per token and per webhook source), `413`
/// and `415` for those taking a body.
fn cross_cutting(op: &mut Map<String, Value>, limited: bool) {
    let secured = op.get("security").and_then(Value::as_array).is_some_and(|schemes| !schemes.is_empty());
    let takes_body = op.contains_key("requestBody");
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    if secured {
        responses.entry("401").or_insert_with(|| {
            let mut response = problem("No valid bearer token (`urn:devpulse:problem:unauthorized`)");
            response["headers"] =
                json!({"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}});
            response
        });
    }
    if takes_body {
        responses.entry("413").or_insert_with(|| {
            problem("The body is larger than this operation accepts (`urn:devpulse:problem:payload-too-large`)")
        });
        responses.entry("415").or_insert_with(|| {
            problem("The body is not declared as `application/json` (`urn:devpulse:problem:unsupported-media-type`)")
        });
    }
    if limited {
        responses.entry("429").or_insert_with(|| {
            let mut response = problem(
                "Over the rate limit of the token or webhook source; retry after `Retry-After` seconds \
                 (`urn:devpulse:problem:rate-limited`)",
            );
            response["headers"] = json!({
                "Retry-After": {"$ref": "#/components/headers/Retry-After"},
                "RateLimit-Limit": {"$ref": "#/components/headers/RateLimit-Limit"},
                "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimit-Remaining"},
                "RateLimit-Reset": {"$ref": "#/components/headers/RateLimit-Reset"},
            });
            response
        });
    }
}

/// Keywords that describe a schema without constraining it.
const ANNOTATIONS: &[&str] =
    &["description", "title", "nullable", "default", "example", "deprecated", "readOnly", "writeOnly"];

/// poem-openapi documents a field of a named type as `allOf: [{$ref}, {description}]`;
/// generators (openapi-python-client among them) refuse an `allOf` member that
/// is no schema of its own. The annotations move up beside the `allOf`, which
/// keeps only the reference: the same document, in the form tools accept.
fn lift_annotations(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(members)) = object.get_mut("allOf") {
                let mut lifted = Map::new();
                members.retain(|member| {
                    let annotation = member.as_object().is_some_and(|fields| {
                        !fields.is_empty() && fields.keys().all(|key| ANNOTATIONS.contains(&key.as_str()))
                    });
                    if annotation && let Some(fields) = member.as_object() {
                        lifted.extend(fields.clone());
                    }
                    !annotation
                });
                for (key, value) in lifted {
                    object.entry(key).or_insert(value);
                }
            }
            object.values_mut().for_each(lift_annotations);
        }
        Value::Array(items) => items.iter_mut().for_each(lift_annotations),
        _ => {}
    }
}

/// The headers of rate-limited responses.
fn rate_limit_headers() -> Value {
    let seconds = |description: &str| json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    json!({
        "Retry-After": seconds("Seconds until the window resets"),
        "RateLimit-Limit": seconds("Requests allowed per window"),
        "RateLimit-Remaining": seconds("Requests left in the current window"),
        "RateLimit-Reset": seconds("Seconds until the current window resets"),
    })
}

/// Plugins declare JSON Schema (2020-12, as `schemars` and most tools write
/// it); the document is OpenAPI 3.0, whose schema dialect spells a few things
/// differently. Validation keeps using the plugin's own schema.
fn openapi30(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        // A boolean schema: `true` accepts anything, `false` nothing.
        return if schema == &Value::Bool(false) { json!({"not": {}}) } else { json!({}) };
    };
    let mut converted = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "$schema" | "$id" => {}
            "const" => {
                converted.insert("enum".into(), json!([value]));
            }
            "examples" => {
                if let Some(first) = value.as_array().and_then(|examples| examples.first()) {
                    converted.insert("example".into(), first.clone());
                }
            }
            // `["string", "null"]` is `"string"` with `nullable`.
            "type" if value.is_array() => {
                let all = value.as_array().map_or(&[][..], Vec::as_slice);
                let types: Vec<&Value> = all.iter().filter(|kind| *kind != "null").collect();
                if types.len() < all.len() {
                    converted.insert("nullable".into(), Value::Bool(true));
                }
                if let [single] = types.as_slice() {
                    converted.insert("type".into(), (*single).clone());
                }
            }
            // `anyOf: [X, {"type": "null"}]` is X with `nullable`.
            "anyOf" | "oneOf" | "allOf" => {
                let variants = value.as_array().map_or(&[][..], Vec::as_slice);
                let others: Vec<Value> =
                    variants.iter().filter(|v| v.get("type") != Some(&json!("null"))).map(openapi30).collect();
                if others.len() < variants.len() {
                    converted.insert("nullable".into(), Value::Bool(true));
                }
                let key = if others.len() == 1 { "allOf" } else { key.as_str() };
                converted.insert(key.into(), Value::Array(others));
            }
            "properties" | "patternProperties" => {
                let children = value.as_object().into_iter().flatten();
                let children = children.map(|(name, child)| (name.clone(), openapi30(child))).collect();
                converted.insert(key.clone(), Value::Object(children));
            }
            // A tuple: OpenAPI 3.0 cannot say which item comes where, only what each may be.
            "prefixItems" => {
                let members = value.as_array().map_or(&[][..], Vec::as_slice).iter().map(openapi30).collect();
                converted.insert("items".into(), json!({ "anyOf": Value::Array(members) }));
            }
            // `items: false` closes a 2020-12 tuple; minItems and maxItems say as much.
            "items" if value.is_boolean() => {}
            "items" | "not" => {
                converted.insert(key.clone(), openapi30(value));
            }
            "additionalProperties" if value.is_object() => {
                converted.insert(key.clone(), openapi30(value));
            }
            _ => {
                converted.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(converted)
}

#[cfg(test)]
mod tests {
    use super::openapi30;
    use serde_json::json;

    #[test]
    fn json_schema_becomes_the_openapi_30_dialect() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "note": {"type": ["string", "null"]},
                "kind": {"const": "pr", "examples": ["pr"]},
                "owner": {"anyOf": [{"type": "object", "properties": {"id": {"type": ["integer", "null"]}}}, {"type": "null"}]},
                "anything": true,
                "counts": {"type": "object", "additionalProperties": {"type": "integer", "format": "uint64"}},
                "kept": {"type": "string", "default": "const", "examples": []},
                "pair": {"type": "array", "prefixItems": [{"type": "object"}, {"type": "integer"}], "items": false, "minItems": 2, "maxItems": 2}
            }
        });
        assert_eq!(openapi30(&json!(true)), json!({}));
        assert_eq!(
            openapi30(&schema),
            json!({
                "type": "object",
                "properties": {
                    "note": {"type": "string", "nullable": true},
                    "kind": {"enum": ["pr"], "example": "pr"},
                    "owner": {"nullable": true, "allOf": [{"type": "object", "properties": {"id": {"type": "integer", "nullable": true}}}]},
                    "anything": {},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer", "format": "uint64"}},
                    "kept": {"type": "string", "default": "const"},
                    "pair": {"type": "array", "items": {"anyOf": [{"type": "object"}, {"type": "integer"}]}, "minItems": 2, "maxItems": 2}
                }
            })
        );
    }
}
