//! Metric points, committed with the call that recorded them.

use crate::bindings::devpulse::plugin::metrics as raw;
use crate::{Error, Timestamp};

/// Records `value` for metric `name` with `labels` at `time` (ms since the epoch).
pub fn record(name: &str, labels: &[(&str, &str)], time: Timestamp, value: f64) -> Result<(), Error> {
    raw::record(&raw::Point {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        time,
        value,
    })
}
