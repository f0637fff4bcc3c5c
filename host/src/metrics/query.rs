//! The read side. One query serves the HTTP API (`GET /api/v1/metrics/query`)
//! and plugins (the WIT `metrics.query` import): a metric's points between two
//! instants, filtered by labels, grouped by labels, bucketed by hour, day or
//! week in a time zone (or one bucket for the whole range), and aggregated.
//!
//! Each output bucket is assembled from the coarsest rollups that fit inside
//! it, finer ones and raw points towards its edges (see `plan`).

use super::plan::Plan;
use super::rollup::Level;
use super::series::{self, Labels, Projection, SeriesIndex};
use super::sketch::Sketch;
use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::{metric_point, metric_rollup, metric_rollup_bin, metric_series};
use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use sea_orm::sea_query::{
    Alias, Expr, Func, FunctionCall, IntoTableRef, Query as SqlQuery, SelectStatement, SimpleExpr,
};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, QueryResult};
use std::collections::HashMap;
use std::str::FromStr;

/// Most buckets one query may return per series.
pub const MAX_BUCKETS: usize = 10_000;

/// The width of output buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
pub enum Step {
    #[oai(rename = "1h")]
    Hour,
    #[oai(rename = "1d")]
    Day,
    /// Weeks start on Monday.
    #[oai(rename = "1w")]
    Week,
}

/// How the points of one bucket become one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Agg {
    #[default]
    Count,
    Sum,
    Avg,
    Min,
    Max,
    P50,
    P90,
    P95,
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

    /// The aggregate of the points in `sketch` (`None` when it is empty).
    pub fn of(self, sketch: &Sketch) -> Option<f64> {
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
pub async fn run(
    db: &impl ConnectionTrait,
    index: &SeriesIndex,
    scope: &Scope,
    query: &Query,
) -> Result<Vec<Series>, QueryError> {
    Ok(read(db, index, scope, query).await?.series(query.agg))
}

/// What a query read: per group and output bucket, the merged sketch of its
/// points. Every aggregation it covers comes from it (see [`Reading::answers`]),
/// so a caller asking for p50 and then p90 of the same figure reads it once.
#[derive(Debug)]
pub struct Reading {
    query: Query,
    edges: Vec<i64>,
    groups: Vec<Labels>,
    /// Sorted by (group, bucket).
    cells: Vec<((usize, usize), Sketch)>,
}

impl Reading {
    /// True when this reading answers `query` too: the same points, groups and
    /// buckets, from the same projection, with sketch bins if `query` needs them.
    pub fn answers(&self, query: &Query) -> bool {
        let read = &self.query;
        let same_points = (&read.name, read.from, read.to, read.step, read.tz, &read.group_by, &read.filter)
            == (&query.name, query.from, query.to, query.step, query.tz, &query.group_by, &query.filter);
        same_points
            && read.projection() == query.projection()
            && (query.agg.quantile().is_none() || read.agg.quantile().is_some())
    }

    /// The groups and their non-empty buckets, aggregated by `agg`.
    pub fn series(&self, agg: Agg) -> Vec<Series> {
        let mut series: Vec<Series> =
            self.groups.iter().map(|labels| Series { labels: labels.clone(), buckets: Vec::new() }).collect();
        for ((group, bucket), sketch) in &self.cells {
            if let Some(value) = agg.of(sketch) {
                series[*group].buckets.push(Bucket { start: self.edges[*bucket], value, count: sketch.count });
            }
        }
        series.retain(|group| !group.buckets.is_empty());
        series
    }
}

/// Reads what `query` needs from the rollups and raw points of `scope`.
pub async fn read(
    db: &impl ConnectionTrait,
    index: &SeriesIndex,
    scope: &Scope,
    query: &Query,
) -> Result<Reading, QueryError> {
    // A range ending at or before its start holds no point.
    if query.from >= query.to {
        let edges = vec![query.from, query.to];
        return Ok(Reading { query: query.clone(), edges, groups: Vec::new(), cells: Vec::new() });
    }
    let edges = edges(query)?;
    let plan = Plan::cover(&edges);
    let projection = query.projection();
    let (rollup_members, rollup_all) = members(db, index, scope, query, &projection).await?;
    // Raw points belong to recorded series.
    let (raw_members, raw_all) = match (plan.spans(None).is_empty(), &projection) {
        (true, _) => (Vec::new(), false),
        (false, Projection::Recorded) => (rollup_members.clone(), rollup_all),
        (false, _) => members(db, index, scope, query, &Projection::Recorded).await?,
    };
    let mut groups: Vec<Labels> = rollup_members.iter().chain(&raw_members).map(|(_, labels)| labels.clone()).collect();
    groups.sort();
    groups.dedup();
    let rollups = Selection::new(projection, rollup_members, rollup_all, &groups);
    let raw = Selection::new(Projection::Recorded, raw_members, raw_all, &groups);

    let mut cells: HashMap<(usize, usize), Sketch> = HashMap::new();
    let reader = Reader { db, scope, query, plan, groups: groups.len(), rollups: &rollups, raw: &raw, edges: &edges };
    if !rollups.group_of.is_empty() {
        reader.rollups(&mut cells).await?;
        if query.agg.quantile().is_some() {
            reader.bins(&mut cells).await?;
        }
    }
    if !raw.group_of.is_empty() {
        reader.raw_points(&mut cells).await?;
    }

    let mut cells: Vec<((usize, usize), Sketch)> = cells.into_iter().collect();
    cells.sort_by_key(|(key, _)| *key);
    Ok(Reading { query: query.clone(), edges, groups, cells })
}

impl Query {
    /// The projection whose series answer this query (see `series`): the one
    /// keeping the labels it groups and filters by, when there is at most one;
    /// recorded series otherwise, and for min and max, which only recorded
    /// series keep exactly.
    fn projection(&self) -> Projection {
        if matches!(self.agg, Agg::Min | Agg::Max) {
            return Projection::Recorded;
        }
        let mut labels: Vec<String> =
            self.group_by.iter().chain(self.filter.iter().map(|(label, _)| label)).cloned().collect();
        labels.sort();
        labels.dedup();
        Projection::for_labels(&labels)
    }
}

/// The series of `projection` that pass the query's filter, each with its
/// `group_by` labels, and whether that is every series of the projection.
async fn members(
    db: &impl ConnectionTrait,
    index: &SeriesIndex,
    scope: &Scope,
    query: &Query,
    projection: &Projection,
) -> Result<(Vec<(i64, Labels)>, bool), QueryError> {
    let series = index.of_metric(db, scope, &query.name, projection).await?;
    let mut members: Vec<(i64, Labels)> = Vec::new();
    for (id, labels) in series.iter() {
        if query.filter.iter().all(|(name, value)| labels.get(name) == Some(value)) {
            let group = labels.iter().filter(|(name, _)| query.group_by.contains(name));
            members.push((*id, group.map(|(name, value)| (name.clone(), value.clone())).collect()));
        }
    }
    let all = members.len() == series.len();
    Ok((members, all))
}

/// Series of one projection a query reads, and the output group of each.
struct Selection {
    projection: Projection,
    group_of: HashMap<i64, usize>,
    /// True when every series of the projection is selected (no filter excluded one).
    all: bool,
}

impl Selection {
    /// `members` with their labels numbered as in `groups` (sorted).
    fn new(projection: Projection, members: Vec<(i64, Labels)>, all: bool, groups: &[Labels]) -> Self {
        let group_of =
            members.into_iter().filter_map(|(id, labels)| Some((id, groups.binary_search(&labels).ok()?))).collect();
        Selection { projection, group_of, all }
    }

    /// The selected series' ids for a SQL filter: every series of the
    /// projection as a subquery, or the chosen ones in lists short enough to bind.
    fn id_filters(&self, scope: &Scope, name: &str, column: impl ColumnTrait) -> Vec<Condition> {
        if self.all {
            return vec![Condition::all().add(column.in_subquery(series_ids(scope, name, &self.projection)))];
        }
        let mut ids: Vec<i64> = self.group_of.keys().copied().collect();
        ids.sort_unstable();
        ids.chunks(ID_CHUNK).map(|chunk| Condition::all().add(column.is_in(chunk.iter().copied()))).collect()
    }
}

/// Most series ids bound in one statement.
const ID_CHUNK: usize = 1_000;

/// Reads a query's rows into its cells (group, output bucket).
///
/// With one output bucket the database merges each series' rows (and, when
/// all series fall in one group, every row) before sending them: a summary
/// over a year is a handful of rows, whatever the number of points.
struct Reader<'a, C> {
    db: &'a C,
    scope: &'a Scope,
    query: &'a Query,
    plan: Plan,
    /// How many output groups there are.
    groups: usize,
    rollups: &'a Selection,
    raw: &'a Selection,
    edges: &'a [i64],
}

impl<C: ConnectionTrait> Reader<'_, C> {
    fn merged(&self) -> bool {
        self.edges.len() == 2
    }

    /// True when rows keep their series apart (several groups, or buckets).
    fn keeps_series(&self) -> bool {
        !self.merged() || self.groups > 1
    }

    /// The cell a row lands in: its series' group (the only one when rows are
    /// not kept apart by series) and the output bucket holding `at` (a source
    /// and a time; the only bucket when merged). `None` when the plan does not
    /// read that source at that time.
    fn cell(
        &self,
        selection: &Selection,
        series_id: Option<i64>,
        at: Option<(Option<Level>, i64)>,
    ) -> Option<(usize, usize)> {
        let group = match series_id {
            Some(id) => *selection.group_of.get(&id)?,
            None => 0,
        };
        let bucket = match at {
            Some((source, time)) if self.plan.covers(source, time) => {
                self.edges.partition_point(|edge| *edge <= time).saturating_sub(1)
            }
            Some(_) => return None,
            None => 0,
        };
        Some((group, bucket))
    }

    /// The cell of a rollup row, reading the key columns `rollup_select` kept.
    fn rollup_cell(&self, row: &QueryResult) -> Result<Option<(usize, usize)>, QueryError> {
        let series_id = if self.keeps_series() { Some(row.try_get::<i64>("", "series_id")?) } else { None };
        let at = if self.merged() {
            None
        } else {
            // Rows come only from the levels the statement asked for.
            let Some(level) = Level::from_code(row.try_get::<i16>("", "level")?) else { return Ok(None) };
            Some((Some(level), row.try_get::<i64>("", "bucket")?))
        };
        Ok(self.cell(self.rollups, series_id, at))
    }

    /// The rollup rows of the plan, as `(series, level, bucket, aggregates...)`
    /// selects over `table`: the key columns the merge keeps, then `aggregates`.
    fn rollup_select(
        &self,
        table: impl IntoTableRef + Copy,
        series_column: impl ColumnTrait + Copy,
        level_column: impl ColumnTrait + Copy,
        bucket_column: impl ColumnTrait + Copy,
        extra_keys: &[SimpleExpr],
        aggregates: &[(SimpleExpr, &str)],
    ) -> Vec<SelectStatement> {
        let mut sources = Condition::any();
        for level in Level::ALL {
            let ranges = self.plan.sql_ranges(Some(level));
            if !ranges.is_empty() {
                sources = sources
                    .add(Condition::all().add(level_column.eq(level as i16)).add(in_ranges(bucket_column, &ranges)));
            }
        }
        if sources.is_empty() {
            return Vec::new();
        }
        let mut keys: Vec<(SimpleExpr, &str)> = Vec::new();
        if self.keeps_series() {
            keys.push((Expr::col(series_column).into(), "series_id"));
        }
        if !self.merged() {
            keys.push((Expr::col(level_column).into(), "level"));
            keys.push((Expr::col(bucket_column).into(), "bucket"));
        }
        keys.extend(extra_keys.iter().map(|key| (key.clone(), "bin")));
        self.rollups
            .id_filters(self.scope, &self.query.name, series_column)
            .into_iter()
            .map(|ids| {
                let mut select = SqlQuery::select();
                select.from(table).cond_where(ids).cond_where(sources.clone());
                for (expr, alias) in keys.iter().chain(aggregates) {
                    select.expr_as(expr.clone(), Alias::new(*alias));
                }
                for (expr, _) in &keys {
                    select.add_group_by([expr.clone()]);
                }
                select.to_owned()
            })
            .collect()
    }

    async fn rollups(&self, cells: &mut HashMap<(usize, usize), Sketch>) -> Result<(), QueryError> {
        use metric_rollup::Column;
        let aggregates = [
            (bigint(Func::sum(Expr::col(Column::Count))), "count"),
            (Func::sum(Expr::col(Column::Sum)).into(), "sum"),
            (Func::min(Expr::col(Column::Min)).into(), "min"),
            (Func::max(Expr::col(Column::Max)).into(), "max"),
        ];
        let selects = self.rollup_select(
            metric_rollup::Entity,
            Column::SeriesId,
            Column::Level,
            Column::Bucket,
            &[],
            &aggregates,
        );
        for row in self.rows(selects).await? {
            // Merging no rows at all gives one row of nulls.
            let Some(count) = row.try_get::<Option<i64>>("", "count")? else { continue };
            if let Some(cell) = self.rollup_cell(&row)? {
                let (sum, min, max) =
                    (row.try_get::<f64>("", "sum")?, row.try_get::<f64>("", "min")?, row.try_get::<f64>("", "max")?);
                cells.entry(cell).or_default().add_summary(count as u64, sum, min, max);
            }
        }
        Ok(())
    }

    async fn bins(&self, cells: &mut HashMap<(usize, usize), Sketch>) -> Result<(), QueryError> {
        use metric_rollup_bin::Column;
        let aggregates = [(bigint(Func::sum(Expr::col(Column::Count))), "count")];
        let selects = self.rollup_select(
            metric_rollup_bin::Entity,
            Column::SeriesId,
            Column::Level,
            Column::Bucket,
            &[Expr::col(Column::Bin).into()],
            &aggregates,
        );
        for row in self.rows(selects).await? {
            if let Some(cell) = self.rollup_cell(&row)? {
                let (bin, count) = (row.try_get::<i32>("", "bin")?, row.try_get::<i64>("", "count")?);
                cells.entry(cell).or_default().add_bin(bin, count as u64);
            }
        }
        Ok(())
    }

    /// Points in the plan's raw spans (within an hour of a bucket edge that is
    /// not on the hour), one by one: their values make the bins.
    async fn raw_points(&self, cells: &mut HashMap<(usize, usize), Sketch>) -> Result<(), QueryError> {
        use metric_point::Column;
        let ranges = self.plan.sql_ranges(None);
        if ranges.is_empty() {
            return Ok(());
        }
        let selects = self.raw.id_filters(self.scope, &self.query.name, Column::SeriesId).into_iter().map(|ids| {
            SqlQuery::select()
                .columns([Column::SeriesId, Column::Time, Column::Value])
                .from(metric_point::Entity)
                .and_where(Column::Plugin.eq(self.scope.plugin.as_str()))
                .and_where(Column::Org.eq(self.scope.org.as_str()))
                .and_where(Column::Generation.eq(self.scope.generation))
                .and_where(Column::Name.eq(self.query.name.as_str()))
                .cond_where(ids)
                .cond_where(in_ranges(Column::Time, &ranges))
                .to_owned()
        });
        for row in self.rows(selects.collect()).await? {
            let (series_id, time, value) = (
                row.try_get::<Option<i64>>("", "series_id")?,
                row.try_get::<i64>("", "time")?,
                row.try_get::<f64>("", "value")?,
            );
            if let Some(cell) = series_id.and_then(|id| self.cell(self.raw, Some(id), Some((None, time)))) {
                cells.entry(cell).or_default().add(value);
            }
        }
        Ok(())
    }

    async fn rows(&self, selects: Vec<SelectStatement>) -> Result<Vec<QueryResult>, QueryError> {
        let backend = self.db.get_database_backend();
        let mut rows = Vec::new();
        for select in selects {
            rows.extend(self.db.query_all(backend.build(&select)).await?);
        }
        Ok(rows)
    }
}

/// `column` within any of `ranges` (each `[from, to)`).
fn in_ranges(column: impl ColumnTrait + Copy, ranges: &[(i64, i64)]) -> Condition {
    ranges
        .iter()
        .fold(Condition::any(), |any, (from, to)| any.add(Condition::all().add(column.gte(*from)).add(column.lt(*to))))
}

/// A sum cast to a 64-bit integer (PostgreSQL sums `bigint` as `numeric`).
fn bigint(sum: FunctionCall) -> SimpleExpr {
    Func::cast_as(sum, Alias::new("BIGINT")).into()
}

/// The ids of every series of `name` and `projection` in `scope`, as a subquery.
fn series_ids(scope: &Scope, name: &str, projection: &Projection) -> SelectStatement {
    SqlQuery::select()
        .column(metric_series::Column::Id)
        .from(metric_series::Entity)
        .cond_where(series::in_scope(scope))
        .cond_where(series::of_projection(name, projection))
        .to_owned()
}

/// Where a range holding more than [`MAX_BUCKETS`] buckets has to end to hold
/// exactly that many; `None` when it holds no more.
pub fn capped_end(query: &Query) -> Option<i64> {
    let step = query.step?;
    let mut boundary = query.from;
    for _ in 0..MAX_BUCKETS {
        boundary = next_boundary(step, query.tz, boundary);
        if boundary >= query.to {
            return None;
        }
    }
    Some(boundary)
}

/// Bucket edges: `from`, every step boundary in between, `to`.
pub fn edges(query: &Query) -> Result<Vec<i64>, QueryError> {
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
            let hour = Level::Hour.next(0);
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
}
