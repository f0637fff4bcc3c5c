//! `log`: into the host's log with the plugin's name, within the call's line budget.

use crate::capabilities::state::CallState;
use crate::wit::devpulse::plugin::log::{Host, Level};

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if !self.log.take() {
            return Ok(());
        }
        let plugin = self.plugin();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}
