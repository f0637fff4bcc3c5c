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
                "schema": param.schema,
            })
        })
        .collect();
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(schema) = &route.body_schema {
        op.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": schema}}}));
    }
    let mut responses = Map::new();
    for response in &route.responses {
        let mut entry = Map::new();
        entry.insert("description".into(), json!(response.description));
        if let Some(schema) = &response.schema {
            entry.insert("content".into(), json!({"application/json": {"schema": schema}}));
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
