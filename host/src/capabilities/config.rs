//! `config`: the operator's `[plugins.NAME.settings]` table, read-only.

use crate::capabilities::state::CallState;
use crate::wit::devpulse::plugin::config::Host;

impl Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.settings.get(&key).map(|value| value.to_string()))
    }
}
