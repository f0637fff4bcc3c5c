//! The read side. One query serves the HTTP API (`GET /api/v1/metrics/query`)
//! and plugins (the WIT `metrics.query` import): a metric's points between two
//! instants, filtered by labels, grouped by labels, bucketed by hour, day or
//! week in a time zone (or one bucket for the whole range), and aggregated.
//!
//! Output buckets are assembled from the coarsest rollup whose buckets fit
//! inside them: UTC days when every bucket edge is a UTC midnight, hours when
//! every edge is a whole hour (any zone with whole-hour offsets), raw points
//! otherwise (zones such as Asia/Kolkata, or ranges not on the hour).

use super::rollup::Level;
use super::series::{self, Labels};
use super::sketch::Sketch;
use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::{metric_point, metric_rollup, metric_rollup_bin, metric_series};
use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use sea_orm::sea_query::{Query as SqlQuery, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::str::FromStr;

/// Most buckets one query may return per series.
pub const MAX_BUCKETS: usize = 10_000;

/// The width of output buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Hour,
    Day,
    /// Weeks start on Monday.
    Week,
}

impl FromStr for Step {
    type Err = QueryError;
    fn from_str(text: &str) -> Result<Self, QueryError> {
        match text {
            "1h" => Ok(Step::Hour),
            "1d" => Ok(Step::Day),
            "1w" => Ok(Step::Week),
            other => Err(QueryError::Invalid(format!("step `{other}` is not one of 1h, 1d, 1w"))),
        }
    }
}

/// How the points of one bucket become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    P50,
    P90,
    P95,
}

impl FromStr for Agg {
    type Err = QueryError;
    fn from_str(text: &str) -> Result<Self, QueryError> {
        Ok(match text {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "p50" => Agg::P50,
            "p90" => Agg::P90,
            "p95" => Agg::P95,
            other => {
                return Err(QueryError::Invalid(format!(
                    "agg `{other}` is not one of count, sum, avg, min, max, p50, p90, p95"
                )));
            }
        })
    }
}

impl Agg {
    fn quantile(self) -> Option<f64> {
        match self {
            Agg::P50 => Some(0.5),
            Agg::P90 => Some(0.9),
            Agg::P95 => Some(0.95),
            _ => None,
        }
    }

    fn of(self, sketch: &Sketch) -> Option<f64> {
        if sketch.count == 0 {
            return None;
        }
        match self {
            Agg::Count => Some(sketch.count as f64),
            Agg::Sum => Some(sketch.sum),
            Agg::Avg => Some(sketch.sum / sketch.count as f64),
            Agg::Min => Some(sketch.min),
            Agg::Max => Some(sketch.max),
            percentile => sketch.quantile(percentile.quantile()?),
        }
    }
}

/// A query: points of `name` with `from <= time < to`.
#[derive(Clone, Debug)]
pub struct Query {
    pub name: String,
    pub from: i64,
    pub to: i64,
    /// `None`: one bucket for the whole range.
    pub step: Option<Step>,
    pub agg: Agg,
    pub group_by: Vec<String>,
    /// Every `(label, value)` must match.
    pub filter: Vec<(String, String)>,
    pub tz: Tz,
}

/// One group of series and its buckets (only buckets holding points).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The `group_by` labels of this group (absent when its series lack one).
    pub labels: Labels,
    pub buckets: Vec<Bucket>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (the query's `from` for the first one).
    pub start: i64,
    pub value: f64,
    /// Points in the bucket.
    pub count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for QueryError {
    fn from(err: sea_orm::DbErr) -> Self {
        QueryError::Store(err.into())
    }
}

/// Parses an IANA time zone name.
pub fn time_zone(name: &str) -> Result<Tz, QueryError> {
    Tz::from_str(name).map_err(|_| QueryError::Invalid(format!("`{name}` is not an IANA time zone")))
}

/// Runs `query` over the series of `scope`.
pub async fn run(db: &impl ConnectionTrait, scope: &Scope, query: &Query) -> Result<Vec<Series>, QueryError> {
    if query.from >= query.to {
        return Err(QueryError::Invalid("`from` must be before `to`".into()));
    }
    let edges = edges(query)?;
    let level = [Level::Day, Level::Hour].into_iter().find(|level| edges.iter().all(|edge| edge % level.millis() == 0));

    // Each matching series' group (its `group_by` labels); groups numbered in label order.
    let mut grouped: Vec<(i64, Labels)> = Vec::new();
    for row in series::of_metric(db, scope, &query.name).await? {
        let labels = series::labels_of(&row);
        if query.filter.iter().all(|(name, value)| labels.get(name) == Some(value)) {
            grouped.push((row.id, labels.into_iter().filter(|(name, _)| query.group_by.contains(name)).collect()));
        }
    }
    let mut groups: Vec<Labels> = grouped.iter().map(|(_, labels)| labels.clone()).collect();
    groups.sort();
    groups.dedup();
    let group_of: HashMap<i64, usize> =
        grouped.into_iter().filter_map(|(id, labels)| Some((id, groups.binary_search(&labels).ok()?))).collect();

    let mut cells: HashMap<(usize, usize), Sketch> = HashMap::new();
    let bucket_of = |time: i64| edges.partition_point(|edge| *edge <= time).saturating_sub(1);
    if !group_of.is_empty() {
        match level {
            Some(level) => {
                let rollups = metric_rollup::Entity::find()
                    .filter(metric_rollup::Column::SeriesId.in_subquery(series_ids(scope, &query.name)))
                    .filter(metric_rollup::Column::Level.eq(level as i16))
                    .filter(metric_rollup::Column::Bucket.gte(query.from))
                    .filter(metric_rollup::Column::Bucket.lt(query.to))
                    .all(db)
                    .await?;
                for row in rollups {
                    if let Some(group) = group_of.get(&row.series_id) {
                        let cell = cells.entry((*group, bucket_of(row.bucket))).or_default();
                        cell.add_summary(row.count as u64, row.sum, row.min, row.max);
                    }
                }
                if query.agg.quantile().is_some() {
                    let bins = metric_rollup_bin::Entity::find()
                        .filter(metric_rollup_bin::Column::SeriesId.in_subquery(series_ids(scope, &query.name)))
                        .filter(metric_rollup_bin::Column::Level.eq(level as i16))
                        .filter(metric_rollup_bin::Column::Bucket.gte(query.from))
                        .filter(metric_rollup_bin::Column::Bucket.lt(query.to))
                        .all(db)
                        .await?;
                    for row in bins {
                        if let Some(group) = group_of.get(&row.series_id) {
                            let cell = cells.entry((*group, bucket_of(row.bucket))).or_default();
                            cell.add_bin(row.bin, row.count as u64);
                        }
                    }
                }
            }
            None => {
                let points = metric_point::Entity::find()
                    .filter(metric_point::Column::Plugin.eq(scope.plugin.as_str()))
                    .filter(metric_point::Column::Org.eq(scope.org.as_str()))
                    .filter(metric_point::Column::Generation.eq(scope.generation))
                    .filter(metric_point::Column::Name.eq(query.name.as_str()))
                    .filter(metric_point::Column::Time.gte(query.from))
                    .filter(metric_point::Column::Time.lt(query.to))
                    .all(db)
                    .await?;
                for point in points {
                    if let Some(group) = point.series_id.and_then(|id| group_of.get(&id)) {
                        cells.entry((*group, bucket_of(point.time))).or_default().add(point.value);
                    }
                }
            }
        }
    }

    let mut series: Vec<Series> = groups.into_iter().map(|labels| Series { labels, buckets: Vec::new() }).collect();
    let mut cells: Vec<((usize, usize), Sketch)> = cells.into_iter().collect();
    cells.sort_by_key(|(key, _)| *key);
    for ((group, bucket), sketch) in cells {
        if let Some(value) = query.agg.of(&sketch) {
            series[group].buckets.push(Bucket { start: edges[bucket], value, count: sketch.count });
        }
    }
    series.retain(|group| !group.buckets.is_empty());
    Ok(series)
}

/// The ids of every series of `name` in `scope`, as a subquery.
fn series_ids(scope: &Scope, name: &str) -> SelectStatement {
    SqlQuery::select()
        .column(metric_series::Column::Id)
        .from(metric_series::Entity)
        .cond_where(series::in_scope(scope))
        .and_where(metric_series::Column::Name.eq(name))
        .to_owned()
}

/// Bucket edges: `from`, every step boundary in between, `to`.
fn edges(query: &Query) -> Result<Vec<i64>, QueryError> {
    let mut edges = vec![query.from];
    if let Some(step) = query.step {
        let mut next = next_boundary(step, query.tz, query.from);
        while next < query.to {
            if edges.len() > MAX_BUCKETS {
                return Err(QueryError::Invalid(format!(
                    "the range holds more than {MAX_BUCKETS} buckets; use a larger step"
                )));
            }
            edges.push(next);
            next = next_boundary(step, query.tz, next);
        }
    }
    edges.push(query.to);
    Ok(edges)
}

/// The first step boundary in `tz` strictly after `time`.
fn next_boundary(step: Step, tz: Tz, time: i64) -> i64 {
    let Some(utc) = DateTime::from_timestamp_millis(time) else { return i64::MAX };
    let local = utc.with_timezone(&tz);
    match step {
        Step::Hour => {
            // Whole local hours, also in zones offset by a half or quarter hour.
            let offset = i64::from(local.offset().fix().local_minus_utc()) * 1000;
            let hour = Level::Hour.millis();
            let start = (time + offset).div_euclid(hour) * hour - offset;
            if start + hour > time { start + hour } else { start + 2 * hour }
        }
        Step::Day => local_midnight(tz, local.date_naive().and_hms_opt(0, 0, 0), 1),
        Step::Week => {
            let monday = local.date_naive() - Duration::days(i64::from(local.weekday().num_days_from_monday()));
            local_midnight(tz, monday.and_hms_opt(0, 0, 0), 7)
        }
    }
}

/// `days` after the local midnight `start`, as UTC milliseconds. Where that
/// midnight does not exist (a DST change at midnight) the day starts at the
/// first local time that does.
fn local_midnight(tz: Tz, start: Option<NaiveDateTime>, days: i64) -> i64 {
    let Some(start) = start else { return i64::MAX };
    let target = start + Duration::days(days);
    (0..=4)
        .map(|quarter| target + Duration::minutes(quarter * 15))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|instant| instant.timestamp_millis())
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn edges_of(from: &str, to: &str, step: Step, tz: &str) -> Vec<i64> {
        let query = Query {
            name: "m".into(),
            from: ms(from),
            to: ms(to),
            step: Some(step),
            agg: Agg::Count,
            group_by: vec![],
            filter: vec![],
            tz: time_zone(tz).unwrap(),
        };
        edges(&query).unwrap()
    }

    #[test]
    fn days_in_a_zone_follow_its_midnights_across_dst() {
        // Berlin leaves summer time on 2026-10-25: that day lasts 25 hours.
        let edges = edges_of("2026-10-24T00:00:00+02:00", "2026-10-27T00:00:00+01:00", Step::Day, "Europe/Berlin");
        assert_eq!(
            edges,
            vec![
                ms("2026-10-24T00:00:00+02:00"),
                ms("2026-10-25T00:00:00+02:00"),
                ms("2026-10-26T00:00:00+01:00"),
                ms("2026-10-27T00:00:00+01:00"),
            ]
        );
        assert_eq!(edges[2] - edges[1], 25 * 3_600_000);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-18 is a Wednesday.
        let edges = edges_of("2026-11-18T00:00:00Z", "2026-12-01T00:00:00Z", Step::Week, "UTC");
        assert_eq!(
            edges,
            vec![
                ms("2026-11-18T00:00:00Z"),
                ms("2026-11-23T00:00:00Z"),
                ms("2026-11-30T00:00:00Z"),
                ms("2026-12-01T00:00:00Z")
            ]
        );
    }

    #[test]
    fn hours_in_a_half_hour_zone_are_local_hours() {
        let edges = edges_of("2026-11-23T00:00:00Z", "2026-11-23T02:00:00Z", Step::Hour, "Asia/Kolkata");
        assert_eq!(
            edges,
            vec![
                ms("2026-11-23T00:00:00Z"),
                ms("2026-11-23T00:30:00Z"),
                ms("2026-11-23T01:30:00Z"),
                ms("2026-11-23T02:00:00Z")
            ]
        );
    }

    #[test]
    fn too_many_buckets_is_an_input_error() {
        let query = Query {
            name: "m".into(),
            from: 0,
            to: 3_600_000 * (MAX_BUCKETS as i64 + 5),
            step: Some(Step::Hour),
            agg: Agg::Count,
            group_by: vec![],
            filter: vec![],
            tz: Tz::UTC,
        };
        assert!(matches!(edges(&query), Err(QueryError::Invalid(_))));
    }

    #[test]
    fn steps_and_aggs_parse_and_refuse_others() {
        assert_eq!("1d".parse::<Step>().unwrap(), Step::Day);
        assert!("2d".parse::<Step>().is_err());
        assert_eq!("p95".parse::<Agg>().unwrap(), Agg::P95);
        assert!("p99".parse::<Agg>().unwrap_err().to_string().contains("p95"));
    }
}
