//! `metrics`: points in the caller's org; they commit with the call.

use super::check_write_budget;
use crate::runtime::state::CallState;
use crate::runtime::wit::PluginError;
use crate::runtime::wit::devpulse::plugin::metrics::{Host, Point};
use crate::store::writes::NewPoint;

const MAX_LABELS: usize = 16;

impl Host for CallState {
    async fn record(&mut self, point: Point) -> wasmtime::Result<Result<(), PluginError>> {
        let result = (|| {
            if self.scope.is_none() {
                return Err(PluginError::Denied("metrics are not available while describing the plugin".into()));
            }
            if point.name.is_empty() || point.name.len() > 128 {
                return Err(PluginError::InvalidInput("metric names are 1 to 128 bytes".into()));
            }
            if point.labels.len() > MAX_LABELS {
                return Err(PluginError::InvalidInput(format!("at most {MAX_LABELS} labels per point")));
            }
            if !point.value.is_finite() {
                return Err(PluginError::InvalidInput("metric values are finite numbers".into()));
            }
            check_write_budget(self)?;
            self.writes.record(NewPoint {
                name: point.name,
                labels: point.labels.into_iter().collect(),
                time: point.time,
                value: point.value,
            });
            Ok(())
        })();
        Ok(result)
    }
}
