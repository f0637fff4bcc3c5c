//! `metrics`: points in the caller's org; they commit with the call. Queries
//! read the caller's committed points through the metrics store.

use super::check_write_budget;
use crate::capabilities::state::CallState;
use crate::metrics::query::{self, Agg, Query, QueryError, Step};
use crate::metrics::rollup::NewPoint;
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::metrics::{self as wit, Aggregation, Bucket, Host, MetricQuery, Point, Series};

const MAX_LABELS: usize = 16;

const MAX_KEY_BYTES: usize = 256;

/// Metric reads a call keeps for later aggregations of the same figure.
const MAX_READS_KEPT: usize = 8;

impl Host for CallState {
    async fn record(&mut self, point: Point) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self.stage_point(None, point))
    }

    async fn put(&mut self, key: String, point: Point) -> wasmtime::Result<Result<(), PluginError>> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Ok(Err(PluginError::InvalidInput(format!("point keys are 1 to {MAX_KEY_BYTES} bytes"))));
        }
        Ok(self.stage_point(Some(key), point))
    }

    async fn query(&mut self, request: MetricQuery) -> wasmtime::Result<Result<Vec<Series>, PluginError>> {
        Ok(self.metrics_query(request).await)
    }
}

impl CallState {
    fn stage_point(&mut self, key: Option<String>, point: Point) -> Result<(), PluginError> {
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
            key,
        });
        Ok(())
    }

    async fn metrics_query(&mut self, request: MetricQuery) -> Result<Vec<Series>, PluginError> {
        let Some(scope) = self.scope.clone() else {
            return Err(PluginError::Denied("metrics are not available while describing the plugin".into()));
        };
        let query = Query {
            name: request.name,
            from: request.since,
            to: request.until,
            step: request.step.map(|step| match step {
                wit::Step::Hour => Step::Hour,
                wit::Step::Day => Step::Day,
                wit::Step::Week => Step::Week,
            }),
            agg: match request.aggregation {
                Aggregation::Count => Agg::Count,
                Aggregation::Sum => Agg::Sum,
                Aggregation::Avg => Agg::Avg,
                Aggregation::Min => Agg::Min,
                Aggregation::Max => Agg::Max,
                Aggregation::P50 => Agg::P50,
                Aggregation::P90 => Agg::P90,
                Aggregation::P95 => Agg::P95,
            },
            group_by: request.group_by,
            filter: request.filter,
            tz: match request.time_zone {
                Some(name) => query::time_zone(&name).map_err(invalid)?,
                None => chrono_tz::UTC,
            },
        };
        let series = match self.metric_reads.iter().find(|read| read.answers(&query)) {
            Some(read) => read.series(query.agg),
            None => {
                let read =
                    query::read(&self.services.read, &self.services.series, &scope, &query).await.map_err(invalid)?;
                let series = read.series(query.agg);
                if self.metric_reads.len() == MAX_READS_KEPT {
                    self.metric_reads.remove(0);
                }
                self.metric_reads.push(read);
                series
            }
        };
        Ok(series
            .into_iter()
            .map(|series| Series {
                labels: series.labels.into_iter().collect(),
                buckets: series
                    .buckets
                    .into_iter()
                    .map(|bucket| Bucket { start: bucket.start, value: bucket.value, count: bucket.count })
                    .collect(),
            })
            .collect())
    }
}

fn invalid(err: QueryError) -> PluginError {
    match err {
        QueryError::Invalid(why) => PluginError::InvalidInput(why),
        QueryError::Store(err) => {
            tracing::error!("metrics query failed: {err}");
            PluginError::Unavailable("metrics are unavailable".into())
        }
    }
}
