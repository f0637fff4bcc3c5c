//! Server-side apply: each field manager owns the fields it last applied
//! (kept in `metadata.managedFields` as `FieldsV1`, like the API server);
//! changing a field another manager owns is a conflict unless forced, and a
//! field its manager stops applying is removed when nobody else owns it.
//!
//! Lists of objects that all carry a `name` (containers, volumes, env, ...)
//! merge by that name, as the API server's list-map types do; every other
//! list is atomic. The real server knows each type's merge keys from its
//! schema: this is the rule that covers the kinds the fake serves.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A field's location in `FieldsV1` notation: `f:spec`, `k:{"name":"ide"}`.
pub type Path = Vec<String>;

/// Top-level and metadata fields the server owns, never a manager.
const SERVER_FIELDS: &[&str] = &["apiVersion", "kind", "status"];
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
];

/// Why an apply was refused.
#[derive(Debug, PartialEq)]
pub struct Conflicts(pub Vec<(String, Path)>);

impl Conflicts {
    /// The API server's wording, which `kubectl` shows as it is.
    pub fn message(&self) -> String {
        let list: Vec<String> =
            self.0.iter().map(|(manager, path)| format!("conflict with \"{manager}\": {}", readable(path))).collect();
        let count = self.0.len();
        let noun = if count == 1 { "conflict" } else { "conflicts" };
        format!("Apply failed with {count} {noun}: {}", list.join("\n"))
    }

    pub fn causes(&self) -> Vec<Value> {
        self.0
            .iter()
            .map(|(manager, path)| {
                json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{manager}\""), "field": readable(path)})
            })
            .collect()
    }
}

/// `.spec.template.spec.containers[name="ide"].image`.
pub fn readable(path: &Path) -> String {
    path.iter()
        .map(|segment| match segment.strip_prefix("f:") {
            Some(field) => format!(".{field}"),
            None => {
                let key: Map<String, Value> =
                    segment.strip_prefix("k:").and_then(|k| serde_json::from_str(k).ok()).unwrap_or_default();
                let inner: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", inner.join(","))
            }
        })
        .collect()
}

/// The fields an applied configuration sets.
pub fn fields_of(object: &Value) -> BTreeSet<Path> {
    let mut fields = BTreeSet::new();
    let Some(map) = object.as_object() else { return fields };
    for (key, value) in map {
        if SERVER_FIELDS.contains(&key.as_str()) {
            continue;
        }
        if key == "metadata" {
            for (meta_key, meta_value) in value.as_object().into_iter().flatten() {
                if !SERVER_METADATA.contains(&meta_key.as_str()) {
                    collect(meta_value, vec!["f:metadata".into(), format!("f:{meta_key}")], &mut fields);
                }
            }
        } else {
            collect(value, vec![format!("f:{key}")], &mut fields);
        }
    }
    fields
}

fn collect(value: &Value, path: Path, fields: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                collect(child, extend(&path, format!("f:{key}")), fields);
            }
        }
        Value::Array(items) if is_named_list(items) => {
            for item in items {
                collect(item, extend(&path, element_key(item)), fields);
            }
        }
        _ => {
            fields.insert(path);
        }
    }
}

fn extend(path: &Path, segment: String) -> Path {
    let mut longer = path.clone();
    longer.push(segment);
    longer
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|item| item.get("name").is_some_and(Value::is_string))
}

fn element_key(item: &Value) -> String {
    format!("k:{}", json!({"name": item["name"]}))
}

/// The value at `path`, if the object has one.
pub fn lookup<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |node, segment| match segment.strip_prefix("f:") {
        Some(field) => node.get(field),
        None => node.as_array()?.iter().find(|item| element_key(item) == *segment),
    })
}

fn lookup_mut<'a>(object: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(object, |node, segment| match segment.strip_prefix("f:") {
        Some(field) => node.get_mut(field),
        None => node.as_array_mut()?.iter_mut().find(|item| element_key(item) == *segment),
    })
}

/// Removes the field at `path`, then any parent left empty that no manager still owns.
fn remove(object: &mut Value, path: &[String], owned: &BTreeSet<Path>) {
    let Some((last, parent_path)) = path.split_last() else { return };
    if let Some(parent) = lookup_mut(object, parent_path) {
        match (last.strip_prefix("f:"), parent) {
            (Some(field), Value::Object(map)) => {
                map.remove(field);
            }
            (None, Value::Array(items)) => items.retain(|item| element_key(item) != *last),
            _ => return,
        }
    } else {
        return;
    }
    if parent_path.is_empty() || owned.iter().any(|p| p.starts_with(parent_path)) {
        return;
    }
    let empty = match lookup(object, parent_path) {
        Some(Value::Object(map)) => map.is_empty() || parent_path.last().is_some_and(|s| s.starts_with("k:")),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    if empty {
        remove(object, parent_path, owned);
    }
}

/// Merges an applied configuration into the live object: maps by key, named lists by name.
fn merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(live), Value::Object(applied)) => {
            for (key, value) in applied {
                match live.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        live.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(live), Value::Array(applied)) if is_named_list(applied) && is_named_list(live) => {
            for item in applied {
                match live.iter_mut().find(|existing| existing["name"] == item["name"]) {
                    Some(existing) => merge(existing, item),
                    None => live.push(item.clone()),
                }
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug)]
pub struct Manager {
    pub name: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: BTreeSet<Path>,
}

impl Manager {
    pub fn from_entry(entry: &Value) -> Option<Self> {
        let mut fields = BTreeSet::new();
        parse_fields(&entry["fieldsV1"], Vec::new(), &mut fields);
        Some(Manager {
            name: entry["manager"].as_str()?.to_owned(),
            operation: entry["operation"].as_str().unwrap_or("Apply").to_owned(),
            api_version: entry["apiVersion"].as_str().unwrap_or_default().to_owned(),
            time: entry["time"].as_str().unwrap_or_default().to_owned(),
            fields,
        })
    }

    pub fn to_entry(&self) -> Value {
        let mut tree = json!({});
        for path in &self.fields {
            let mut node = &mut tree;
            for segment in path {
                if segment.starts_with("k:") {
                    node[segment.as_str()]["."] = json!({});
                }
                node = &mut node[segment.as_str()];
                if !node.is_object() {
                    *node = json!({});
                }
            }
        }
        json!({
            "manager": self.name, "operation": self.operation, "apiVersion": self.api_version,
            "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": tree,
        })
    }
}

fn parse_fields(node: &Value, path: Path, fields: &mut BTreeSet<Path>) {
    let children: Vec<(&String, &Value)> = node.as_object().into_iter().flatten().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() {
        if !path.is_empty() && !path.last().is_some_and(|s| s.starts_with("k:")) {
            fields.insert(path);
        }
        return;
    }
    for (key, child) in children {
        parse_fields(child, extend(&path, key.clone()), fields);
    }
}

/// The managers recorded on an object.
pub fn managers_of(object: &Value) -> Vec<Manager> {
    object["metadata"]["managedFields"].as_array().into_iter().flatten().filter_map(Manager::from_entry).collect()
}

/// Applies `applied` as `manager` to `live` (an empty object when creating),
/// returning the new object with its `managedFields`, or the conflicts.
pub fn apply(live: &Value, applied: &Value, manager: &str, force: bool, now: &str) -> Result<Value, Conflicts> {
    let mut managers = managers_of(live);
    let wanted = fields_of(applied);
    let mut conflicts = Vec::new();
    for other in managers.iter_mut().filter(|m| m.name != manager) {
        let contested: Vec<Path> = other
            .fields
            .iter()
            .filter(|path| wanted.contains(*path) && lookup(live, path) != lookup(applied, path))
            .cloned()
            .collect();
        if force {
            other.fields.retain(|path| !contested.contains(path));
        } else {
            conflicts.extend(contested.into_iter().map(|path| (other.name.clone(), path)));
        }
    }
    if !conflicts.is_empty() {
        return Err(Conflicts(conflicts));
    }
    let previous = managers.iter().find(|m| m.name == manager).map(|m| m.fields.clone()).unwrap_or_default();
    managers.retain(|m| m.name != manager && !m.fields.is_empty());
    let still_owned: BTreeSet<Path> =
        managers.iter().flat_map(|m| m.fields.iter().cloned()).chain(wanted.iter().cloned()).collect();

    let mut result = live.clone();
    for dropped in previous.difference(&wanted).filter(|path| !still_owned.contains(*path)) {
        remove(&mut result, dropped, &still_owned);
    }
    let mut configuration = applied.clone();
    if let Some(map) = configuration.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.retain(|key, _| !SERVER_METADATA.contains(&key.as_str()) || key == "name" || key == "namespace");
        }
    }
    merge(&mut result, &configuration);
    let api_version = applied["apiVersion"].as_str().unwrap_or_default().to_owned();
    managers.push(Manager {
        name: manager.into(),
        operation: "Apply".into(),
        api_version,
        time: now.into(),
        fields: wanted,
    });
    result["metadata"]["managedFields"] = Value::Array(managers.iter().map(Manager::to_entry).collect());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn deployment(replicas: u32, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ide", "labels": {"app": "ide"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "ide", "image": image}]}}},
        })
    }

    #[test]
    fn a_second_manager_changing_an_owned_field_conflicts_unless_forced() {
        let created = apply(&json!({}), &deployment(1, "code-server"), "devpulse", false, NOW).expect("created");
        let same = apply(
            &created,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ide"}, "spec": {"replicas": 1}}),
            "kubectl",
            false,
            NOW,
        );
        assert!(same.is_ok(), "the same value is shared, not contested");

        let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ide"}, "spec": {"replicas": 3}});
        let refused = apply(&created, &scale, "kubectl", false, NOW).expect_err("a conflict");
        assert_eq!(refused.message(), "Apply failed with 1 conflict: conflict with \"devpulse\": .spec.replicas");

        let forced = apply(&created, &scale, "kubectl", true, NOW).expect("forced");
        assert_eq!(forced["spec"]["replicas"], 3);
        let managers = managers_of(&forced);
        let devpulse = managers.iter().find(|m| m.name == "devpulse").expect("still a manager");
        assert!(!devpulse.fields.contains(&vec!["f:spec".to_owned(), "f:replicas".to_owned()]));
    }

    #[test]
    fn a_field_no_longer_applied_is_removed_and_named_lists_merge_by_name() {
        let mut first = deployment(1, "code-server");
        first["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "sidecar", "image": "proxy"}));
        let live = apply(&json!({}), &first, "devpulse", false, NOW).expect("created");
        let live = apply(&live, &deployment(1, "code-server:4"), "devpulse", false, NOW).expect("updated");
        let containers = live["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "the sidecar it stopped applying is gone: {containers:?}");
        assert_eq!(containers[0]["image"], "code-server:4");
        assert_eq!(live["metadata"]["labels"]["app"], "ide");
    }

    #[test]
    fn managed_fields_round_trip_through_fields_v1() {
        let live = apply(&json!({}), &deployment(2, "x"), "devpulse", false, NOW).expect("created");
        let entry = &live["metadata"]["managedFields"][0];
        assert_eq!(
            entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"ide\"}"]["."],
            json!({})
        );
        let parsed = Manager::from_entry(entry).expect("parses");
        assert_eq!(parsed.fields, fields_of(&deployment(2, "x")));
    }
}
