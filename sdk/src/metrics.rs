//! Metric points, committed with the call that recorded them and queryable by
//! any client of the host.

use crate::host::metrics as raw;
use crate::{Result, Timestamp};

pub use raw::Point;

/// Records `value` for metric `name` with `labels` at `time` (ms since the epoch).
pub fn record(name: &str, labels: &[(&str, &str)], time: Timestamp, value: f64) -> Result<()> {
    raw::record(&Point {
        name: name.into(),
        labels: labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        time,
        value,
    })
}
