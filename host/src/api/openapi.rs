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
        }
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
                    item.insert(route.method.to_lowercase(), operation(name, route));
                }
            }
        }
        document
    }
}

fn operation(plugin: &str, route: &RouteDoc) -> Value {
    let slug: String = route.path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let mut op = Map::new();
    op.insert("operationId".into(), json!(format!("{plugin}_{}{slug}", route.method.to_lowercase())));
    op.insert("tags".into(), json!([plugin]));
    op.insert("summary".into(), json!(route.summary));
    let role_note = format!("Minimum role: `{}`.", route.min_role);
    let description =
        if route.description.is_empty() { role_note } else { format!("{}\n\n{role_note}", route.description) };
    op.insert("description".into(), json!(description));
    op.insert("x-devpulse-min-role".into(), json!(route.min_role));
    let parameters: Vec<Value> = route
        .params
        .iter()
        .map(|param| {
            json!({
                "name": param.name,
                "in": param.location,
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
            json!({"required": true, "content": {"application/json": {"schema": openapi30(schema)}}}),
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
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    responses.entry("400").or_insert_with(
        || json!({"description": "The request does not match the declared schemas", "content": problem}),
    );
    responses.entry("default").or_insert_with(|| json!({"description": "A problem document", "content": problem}));
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
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
                "kept": {"type": "string", "default": "const", "examples": []}
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
                    "kept": {"type": "string", "default": "const"}
                }
            })
        );
    }
}
