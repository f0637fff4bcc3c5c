//! The write side: a call's points go in raw and into hourly, daily and
//! monthly rollups (count, sum, min, max and sketch bins) of their series and
//! its projections, in the call's transaction. Upserts add to what is stored,
//! so concurrent writers never lose a point and a rollup is always the exact
//! merge of its points.

use super::series::{self, Labels, SeriesKey};
use super::sketch;
use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::{metric_point, metric_rollup, metric_rollup_bin};
use chrono::Datelike;
use sea_orm::sea_query::{Expr, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Set,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Granularities rollups are kept at, all in UTC. A query covers its range
/// with the coarsest buckets that fit (see `plan`), so a year reads about a
/// dozen rows per series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Hour = 0,
    Day = 1,
    /// Calendar months.
    Month = 2,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Hour, Level::Day, Level::Month];

    /// The level stored as `code` in the rollup tables.
    pub fn from_code(code: i16) -> Option<Level> {
        Level::ALL.into_iter().find(|level| *level as i16 == code)
    }

    /// Start of the bucket holding `time`.
    pub fn bucket(self, time: i64) -> i64 {
        match self {
            Level::Hour | Level::Day => time.div_euclid(self.fixed_width()) * self.fixed_width(),
            Level::Month => month_start(time, 0).unwrap_or_else(|| Level::Day.bucket(time)),
        }
    }

    /// Start of the bucket after the one starting at `bucket`.
    pub fn next(self, bucket: i64) -> i64 {
        match self {
            Level::Hour | Level::Day => bucket.saturating_add(self.fixed_width()),
            Level::Month => month_start(bucket, 1).unwrap_or_else(|| Level::Day.next(bucket)),
        }
    }

    fn fixed_width(self) -> i64 {
        match self {
            Level::Hour => 3_600_000,
            _ => 86_400_000,
        }
    }
}

/// The first instant of the month `months` after the one holding `time`;
/// `None` outside the calendar's range.
fn month_start(time: i64, months: u32) -> Option<i64> {
    let day = chrono::DateTime::from_timestamp_millis(time)?.date_naive().with_day(1)?;
    Some(day.checked_add_months(chrono::Months::new(months))?.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// A metric point as a plugin records it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPoint {
    pub name: String,
    pub labels: Labels,
    pub time: i64,
    pub value: f64,
    /// Replaces the earlier point recorded under this key.
    pub key: Option<String>,
}

/// Rows per statement, well under every backend's bind-parameter limit.
const CHUNK: usize = 500;

type RollupKey = (i64, Level, i64);
type BinKey = (i64, Level, i64, i32);

/// Stores `points` raw and in the rollups of their series and projections, on
/// the caller's transaction. Keyed points first take the earlier point with
/// their key out of the rollups.
pub async fn record(db: &impl ConnectionTrait, scope: &Scope, points: Vec<NewPoint>) -> Result<(), StoreError> {
    if points.is_empty() {
        return Ok(());
    }
    let points = last_per_key(points);
    let replaced = replaced_points(db, scope, &points).await?;
    let keyed: Vec<(Vec<SeriesKey>, NewPoint)> =
        points.into_iter().map(|point| (SeriesKey::of_point(&point.name, &point.labels), point)).collect();
    let wanted: BTreeSet<SeriesKey> = keyed.iter().flat_map(|(keys, _)| keys.iter().cloned()).collect();
    let ids = series::ensure(db, scope, &wanted).await?;
    retract(db, scope, replaced).await?;

    // Sorted keys: concurrent writers touch rows in the same order (no deadlocks).
    let mut summaries: BTreeMap<RollupKey, sketch::Sketch> = BTreeMap::new();
    let mut bins: BTreeMap<BinKey, i64> = BTreeMap::new();
    let mut raw = Vec::with_capacity(keyed.len());
    for (keys, point) in keyed {
        let targets: Vec<i64> = keys.iter().filter_map(|key| ids.get(key).copied()).collect();
        // The recorded series comes first: the raw point refers to it.
        let Some(&recorded) = targets.first().filter(|_| targets.len() == keys.len()) else { continue };
        for series in targets {
            for level in Level::ALL {
                let bucket = level.bucket(point.time);
                let summary = summaries.entry((series, level, bucket)).or_default();
                summary.add_summary(1, point.value, point.value, point.value);
                *bins.entry((series, level, bucket, sketch::bin(point.value))).or_default() += 1;
            }
        }
        raw.push(metric_point::ActiveModel {
            id: NotSet,
            plugin: Set(scope.plugin.clone()),
            org: Set(scope.org.clone()),
            generation: Set(scope.generation),
            name: Set(point.name),
            labels: Set(serde_json::to_value(point.labels).unwrap_or_default()),
            time: Set(point.time),
            value: Set(point.value),
            series_id: Set(Some(recorded)),
            key: Set(point.key),
        });
    }
    for chunk in raw.chunks(CHUNK) {
        metric_point::Entity::insert_many(chunk.to_vec()).exec(db).await?;
    }

    let backend = db.get_database_backend();
    let rollups: Vec<metric_rollup::ActiveModel> = summaries
        .into_iter()
        .map(|((series_id, level, bucket), summary)| metric_rollup::ActiveModel {
            series_id: Set(series_id),
            level: Set(level as i16),
            bucket: Set(bucket),
            count: Set(summary.count as i64),
            sum: Set(summary.sum),
            min: Set(summary.min),
            max: Set(summary.max),
        })
        .collect();
    for chunk in rollups.chunks(CHUNK) {
        metric_rollup::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    metric_rollup::Column::SeriesId,
                    metric_rollup::Column::Level,
                    metric_rollup::Column::Bucket,
                ])
                .value(metric_rollup::Column::Count, added("metric_rollup", "count"))
                .value(metric_rollup::Column::Sum, added("metric_rollup", "sum"))
                .value(metric_rollup::Column::Min, extreme(backend, "min"))
                .value(metric_rollup::Column::Max, extreme(backend, "max"))
                .to_owned(),
            )
            .exec(db)
            .await?;
    }

    let bins: Vec<metric_rollup_bin::ActiveModel> = bins
        .into_iter()
        .map(|((series_id, level, bucket, bin), count)| metric_rollup_bin::ActiveModel {
            series_id: Set(series_id),
            level: Set(level as i16),
            bucket: Set(bucket),
            bin: Set(bin),
            count: Set(count),
        })
        .collect();
    for chunk in bins.chunks(CHUNK) {
        metric_rollup_bin::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    metric_rollup_bin::Column::SeriesId,
                    metric_rollup_bin::Column::Level,
                    metric_rollup_bin::Column::Bucket,
                    metric_rollup_bin::Column::Bin,
                ])
                .value(metric_rollup_bin::Column::Count, added("metric_rollup_bin", "count"))
                .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Of several points with one key in a call, the last one counts.
fn last_per_key(points: Vec<NewPoint>) -> Vec<NewPoint> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (index, point) in points.iter().enumerate() {
        if let Some(key) = &point.key {
            last.insert(key.clone(), index);
        }
    }
    points
        .into_iter()
        .enumerate()
        .filter(|(index, point)| point.key.as_ref().is_none_or(|key| last.get(key) == Some(index)))
        .map(|(_, point)| point)
        .collect()
}

/// The stored points the keyed ones replace.
async fn replaced_points(
    db: &impl ConnectionTrait,
    scope: &Scope,
    points: &[NewPoint],
) -> Result<Vec<metric_point::Model>, StoreError> {
    let keys: Vec<&str> = points.iter().filter_map(|point| point.key.as_deref()).collect();
    let mut found = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        found.extend(
            metric_point::Entity::find()
                .filter(metric_point::Column::Plugin.eq(scope.plugin.as_str()))
                .filter(metric_point::Column::Org.eq(scope.org.as_str()))
                .filter(metric_point::Column::Generation.eq(scope.generation))
                .filter(metric_point::Column::Key.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Takes `old` points out of the rollups and deletes them. Counts, sums and
/// bins subtract exactly; the min and max of a recorded series' bucket are
/// read again from its remaining points, while a projection's stay as they
/// were (bounds: queries for min or max read recorded series); emptied rows go.
async fn retract(db: &impl ConnectionTrait, scope: &Scope, old: Vec<metric_point::Model>) -> Result<(), StoreError> {
    if old.is_empty() {
        return Ok(());
    }
    let keyed: Vec<(Vec<SeriesKey>, &metric_point::Model)> =
        old.iter().map(|point| (SeriesKey::of_point(&point.name, &series::labels_of_point(point)), point)).collect();
    let wanted: BTreeSet<SeriesKey> = keyed.iter().flat_map(|(keys, _)| keys.iter().cloned()).collect();
    let ids = series::ensure(db, scope, &wanted).await?;
    let mut summaries: BTreeMap<RollupKey, (i64, f64)> = BTreeMap::new();
    let mut bins: BTreeMap<BinKey, i64> = BTreeMap::new();
    let mut recorded = BTreeSet::new();
    for (keys, point) in &keyed {
        let Some(series) = point.series_id else { continue };
        recorded.insert(series);
        // Points stored before projections existed are only in their recorded series.
        let projections = keys[1..].iter().filter_map(|key| ids.get(key).copied());
        for series in std::iter::once(series).chain(projections) {
            for level in Level::ALL {
                let bucket = level.bucket(point.time);
                let summary = summaries.entry((series, level, bucket)).or_default();
                summary.0 += 1;
                summary.1 += point.value;
                *bins.entry((series, level, bucket, sketch::bin(point.value))).or_default() += 1;
            }
        }
    }
    let ids: Vec<i64> = old.iter().map(|point| point.id).collect();
    for chunk in ids.chunks(CHUNK) {
        metric_point::Entity::delete_many()
            .filter(metric_point::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    for ((series, level, bucket, bin), count) in bins {
        let row = Condition::all()
            .add(metric_rollup_bin::Column::SeriesId.eq(series))
            .add(metric_rollup_bin::Column::Level.eq(level as i16))
            .add(metric_rollup_bin::Column::Bucket.eq(bucket))
            .add(metric_rollup_bin::Column::Bin.eq(bin));
        metric_rollup_bin::Entity::update_many()
            .col_expr(metric_rollup_bin::Column::Count, Expr::col(metric_rollup_bin::Column::Count).sub(count))
            .filter(row.clone())
            .exec(db)
            .await?;
        metric_rollup_bin::Entity::delete_many()
            .filter(row)
            .filter(metric_rollup_bin::Column::Count.lte(0))
            .exec(db)
            .await?;
    }
    for ((series, level, bucket), (count, sum)) in summaries {
        let row = Condition::all()
            .add(metric_rollup::Column::SeriesId.eq(series))
            .add(metric_rollup::Column::Level.eq(level as i16))
            .add(metric_rollup::Column::Bucket.eq(bucket));
        let mut update = metric_rollup::Entity::update_many()
            .col_expr(metric_rollup::Column::Count, Expr::col(metric_rollup::Column::Count).sub(count))
            .col_expr(metric_rollup::Column::Sum, Expr::col(metric_rollup::Column::Sum).sub(sum));
        if recorded.contains(&series) {
            let (min, max): (Option<f64>, Option<f64>) = metric_point::Entity::find()
                .select_only()
                .column_as(Expr::col(metric_point::Column::Value).min(), "min")
                .column_as(Expr::col(metric_point::Column::Value).max(), "max")
                .filter(metric_point::Column::SeriesId.eq(series))
                .filter(metric_point::Column::Time.gte(bucket))
                .filter(metric_point::Column::Time.lt(level.next(bucket)))
                .into_tuple()
                .one(db)
                .await?
                .unwrap_or((None, None));
            if let (Some(min), Some(max)) = (min, max) {
                update = update
                    .col_expr(metric_rollup::Column::Min, Expr::value(min))
                    .col_expr(metric_rollup::Column::Max, Expr::value(max));
            }
        }
        update.filter(row.clone()).exec(db).await?;
        metric_rollup::Entity::delete_many().filter(row).filter(metric_rollup::Column::Count.lte(0)).exec(db).await?;
    }
    Ok(())
}

/// `stored + incoming` for a conflicting upsert.
fn added(table: &str, column: &str) -> SimpleExpr {
    Expr::cust(format!("{table}.{column} + excluded.{column}"))
}

/// The smaller (`min`) or larger (`max`) of the stored and incoming value.
fn extreme(backend: DbBackend, column: &str) -> SimpleExpr {
    let function = match (backend, column) {
        (DbBackend::Postgres, "min") => "LEAST",
        (DbBackend::Postgres, _) => "GREATEST",
        (_, "min") => "MIN",
        _ => "MAX",
    };
    Expr::cust(format!("{function}(metric_rollup.{column}, excluded.{column})"))
}
