//! JSON Schemas derived from Rust types with `schemars`, in the form the host
//! validates against and merges into the OpenAPI document.

use crate::bindings::devpulse::plugin::types::{Param, ParamLocation};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// The schema of `T` with every subschema inline (the host documents each
/// route's schemas on their own); `None` for `()`, meaning "nothing".
pub fn of<T: JsonSchema>() -> Option<Value> {
    let generator = SchemaSettings::draft2020_12().with(|settings| settings.inline_subschemas = true).into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    (schema.get("type") != Some(&Value::from("null"))).then_some(schema)
}

/// One parameter per field of `P`: a path parameter when the template names
/// it (`{name}`), a query parameter otherwise. An `Option` field is optional.
pub fn params<P: JsonSchema>(template: &str) -> Vec<Param> {
    let Some(schema) = of::<P>() else {
        return Vec::new();
    };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.as_object().cloned().unwrap_or_default();
            let description = property.remove("description").and_then(|text| text.as_str().map(String::from));
            let in_path = template.contains(&format!("{{{name}}}"));
            Param {
                name: name.clone(),
                location: if in_path { ParamLocation::Path } else { ParamLocation::Query },
                required: in_path || required.contains(&name.as_str()),
                description: description.unwrap_or_default(),
                schema: Value::Object(without_null(property)).to_string(),
            }
        })
        .collect()
}

/// A parameter is either present or absent, never `null`: `["integer", "null"]`
/// becomes `"integer"`, so the host can turn the text into the right JSON type.
fn without_null(mut property: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Array(types)) = property.get("type") {
        let types: Vec<Value> = types.iter().filter(|kind| *kind != "null").cloned().collect();
        let single = if types.len() == 1 { types[0].clone() } else { Value::Array(types) };
        property.insert("type".into(), single);
    }
    property
}
