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
    bound_integers(&mut schema);
    (schema.get("type") != Some(&Value::from("null"))).then_some(schema)
}

/// Gives every integer schema the range of its Rust type (`format: uint32`
/// and so on): without `maximum` a client may send a number no Rust integer
/// holds, which the schema allows and the plugin cannot read.
fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let range = match object.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, i128::from(u8::MAX))),
                Some("uint16") => Some((0, i128::from(u16::MAX))),
                Some("uint32") => Some((0, i128::from(u32::MAX))),
                Some("uint64" | "uint") => Some((0, i128::from(u64::MAX))),
                Some("int8") => Some((i128::from(i8::MIN), i128::from(i8::MAX))),
                Some("int16") => Some((i128::from(i16::MIN), i128::from(i16::MAX))),
                Some("int32") => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
                Some("int64" | "int") => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
                _ => None,
            };
            if let Some((min, max)) = range {
                object.entry("minimum").or_insert_with(|| number(min));
                object.entry("maximum").or_insert_with(|| number(max));
            }
            object.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

fn number(value: i128) -> Value {
    match (u64::try_from(value), i64::try_from(value)) {
        (Ok(unsigned), _) => Value::from(unsigned),
        (_, Ok(signed)) => Value::from(signed),
        _ => Value::Null,
    }
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
