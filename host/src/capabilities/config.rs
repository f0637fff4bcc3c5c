//! `config`: the operator's `[plugins.NAME.settings]` table, read-only.

use crate::runtime::state::CallState;
use crate::runtime::wit::devpulse::plugin::config::Host;

impl Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.settings.get(&key).map(|value| value.to_string()))
    }
}
