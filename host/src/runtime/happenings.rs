//! What happens to plugins, told to whoever listens (the bus records each as a
//! `system.*` event in every org's log). The runtime itself writes nothing.

use serde::Serialize;

/// One thing that happened to a plugin.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Happening {
    /// A plugin loaded (or a new version replaced the running one).
    #[serde(rename = "system.plugin.loaded")]
    Loaded { plugin: String, version: String, wit_version: String, source: String },
    /// A file or bundle failed to load; `plugin` names what kept running, if anything.
    #[serde(rename = "system.plugin.failed")]
    Failed { source: String, plugin: Option<String>, reason: String },
    /// The operator disabled a plugin.
    #[serde(rename = "system.plugin.disabled")]
    Disabled { plugin: String },
    /// The operator enabled a plugin again.
    #[serde(rename = "system.plugin.enabled")]
    Enabled { plugin: String },
}

impl Happening {
    /// The event kind and payload it is recorded as.
    pub fn event(&self) -> (String, serde_json::Value) {
        let mut payload = serde_json::to_value(self).unwrap_or_default();
        let kind = payload
            .as_object_mut()
            .and_then(|fields| fields.remove("kind"))
            .and_then(|kind| kind.as_str().map(str::to_owned))
            .unwrap_or_default();
        (kind, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::Happening;

    #[test]
    fn a_happening_is_an_event_kind_and_payload() {
        let (kind, payload) = Happening::Disabled { plugin: "github".into() }.event();
        assert_eq!(kind, "system.plugin.disabled");
        assert_eq!(payload, serde_json::json!({"plugin": "github"}));
    }
}
