//! `storage`: the plugin's documents in the caller's org, through the call's
//! write set so that writes commit with the call.

use super::check_write_budget;
use crate::capabilities::state::CallState;
use crate::store::StoreError;
use crate::store::cursor;
use crate::store::documents::Scope;
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::storage::{Entry, Host, Page};

const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 1 << 20;
const MAX_PAGE: u32 = 1000;

type Answer<T> = wasmtime::Result<Result<T, PluginError>>;

fn scope(state: &CallState) -> Result<Scope, PluginError> {
    state
        .scope
        .clone()
        .ok_or_else(|| PluginError::Denied("storage is not available while describing the plugin".into()))
}

fn check_key(key: &str) -> Result<(), PluginError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(PluginError::InvalidInput(format!("keys are 1 to {MAX_KEY_BYTES} bytes long")));
    }
    Ok(())
}

fn unavailable(err: StoreError) -> PluginError {
    tracing::error!("plugin storage failed: {err}");
    PluginError::Unavailable("storage is unavailable".into())
}

/// The key a plugin's cursor stands for.
pub(crate) fn decode_cursor(cursor: &str) -> Result<String, PluginError> {
    cursor::decode(cursor).ok_or_else(|| PluginError::InvalidInput("malformed cursor".into()))
}

// The bodies live in `&mut self` methods: `CallState` is `Send` but not `Sync`,
// so a future holding `&CallState` could not move between threads.
impl CallState {
    async fn storage_get(&mut self, key: String) -> Result<Option<String>, PluginError> {
        let scope = scope(self)?;
        check_key(&key)?;
        let value = self.writes.get(&self.services.read, &scope, &key).await.map_err(unavailable)?;
        Ok(value.map(|value| value.to_string()))
    }

    fn storage_put(&mut self, key: String, value: String) -> Result<(), PluginError> {
        scope(self)?;
        check_key(&key)?;
        check_write_budget(self)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(PluginError::InvalidInput(format!("documents are at most {MAX_VALUE_BYTES} bytes")));
        }
        let value = serde_json::from_str(&value)
            .map_err(|err| PluginError::InvalidInput(format!("documents are JSON: {err}")))?;
        self.writes.put(key, value);
        Ok(())
    }

    async fn storage_delete(&mut self, key: String) -> Result<bool, PluginError> {
        let scope = scope(self)?;
        check_key(&key)?;
        check_write_budget(self)?;
        self.writes.delete(&self.services.read, &scope, &key).await.map_err(unavailable)
    }

    async fn storage_scan(&mut self, prefix: String, cursor: Option<String>, limit: u32) -> Result<Page, PluginError> {
        let scope = scope(self)?;
        let after = cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        // One extra row tells whether another page follows.
        let mut rows = self
            .writes
            .scan(&self.services.read, &scope, &prefix, after.as_deref(), limit + 1)
            .await
            .map_err(unavailable)?;
        let next_cursor = cursor::next_page(&mut rows, limit, |(key, _)| key);
        let entries = rows.into_iter().map(|(key, value)| Entry { key, value: value.to_string() }).collect();
        Ok(Page { entries, next_cursor })
    }

    async fn storage_count(&mut self, prefix: String) -> Result<u64, PluginError> {
        let scope = scope(self)?;
        self.writes.count(&self.services.read, &scope, &prefix).await.map_err(unavailable)
    }
}

impl Host for CallState {
    async fn get(&mut self, key: String) -> Answer<Option<String>> {
        Ok(self.storage_get(key).await)
    }

    async fn put(&mut self, key: String, value: String) -> Answer<()> {
        Ok(self.storage_put(key, value))
    }

    async fn delete(&mut self, key: String) -> Answer<bool> {
        Ok(self.storage_delete(key).await)
    }

    async fn scan(&mut self, prefix: String, cursor: Option<String>, limit: u32) -> Answer<Page> {
        Ok(self.storage_scan(prefix, cursor, limit).await)
    }

    async fn count(&mut self, prefix: String) -> Answer<u64> {
        Ok(self.storage_count(prefix).await)
    }
}
