//! Metric points, committed with the call that recorded them, and queries over
//! the plugin's own committed points (the host answers from rollups, so a route
//! can report a year of figures without scanning documents).

use crate::host::metrics as raw;
use crate::{Result, Timestamp};

pub use raw::{Aggregation, Bucket, MetricQuery, Point, Series, Step};

/// Records `value` for metric `name` with `labels` at `time` (ms since the epoch).
pub fn record(name: &str, labels: &[(&str, &str)], time: Timestamp, value: f64) -> Result<()> {
    raw::record(&point(name, labels, time, value))
}

/// Records `value` under `key`, replacing the point recorded earlier under the
/// same key (name, labels, time and value may all change). For figures that
/// change as late facts arrive: a pull request's review time, a deployment's outcome.
pub fn put(key: &str, name: &str, labels: &[(&str, &str)], time: Timestamp, value: f64) -> Result<()> {
    raw::put(key, &point(name, labels, time, value))
}

fn point(name: &str, labels: &[(&str, &str)], time: Timestamp, value: f64) -> Point {
    Point {
        name: name.into(),
        labels: labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        time,
        value,
    }
}

/// A query over this plugin's committed points of one metric, `since <= time < until`.
///
/// ```ignore
/// let weekly = metrics::Query::new("pr_cycle_time_s", Aggregation::P50, from, to)
///     .step(Step::Week)
///     .group_by("repo")
///     .filter("repo", "acme/api")
///     .run()?;
/// ```
pub struct Query(MetricQuery);

impl Query {
    pub fn new(name: &str, aggregation: Aggregation, since: Timestamp, until: Timestamp) -> Self {
        Query(MetricQuery {
            name: name.into(),
            since,
            until,
            step: None,
            aggregation,
            group_by: Vec::new(),
            filter: Vec::new(),
            time_zone: None,
        })
    }

    /// Buckets of an hour, day or week; without it, one bucket for the range.
    pub fn step(mut self, step: Step) -> Self {
        self.0.step = Some(step);
        self
    }

    pub fn group_by(mut self, label: &str) -> Self {
        self.0.group_by.push(label.into());
        self
    }

    /// Only points whose `label` is `value`; every filter must match.
    pub fn filter(mut self, label: &str, value: &str) -> Self {
        self.0.filter.push((label.into(), value.into()));
        self
    }

    /// IANA zone for bucket edges (UTC by default).
    pub fn time_zone(mut self, zone: &str) -> Self {
        self.0.time_zone = Some(zone.into());
        self
    }

    /// The groups holding points, in label order, each with its buckets.
    pub fn run(self) -> Result<Vec<Series>> {
        raw::query(&self.0)
    }
}
