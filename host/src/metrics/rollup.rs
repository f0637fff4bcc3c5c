//! The write side: a call's points go in raw and into hourly, daily and
//! monthly rollups (count, sum, min, max and sketch bins) of their series and
//! its projections, in the call's transaction. Upserts add to what is stored,
//! so concurrent writers never lose a point and a rollup is always the exact
//! merge of its points.

use super::series::{self, Labels, SeriesKey};
use super::sketch;
use crate::store::documents::Scope;
use crate::store::entities::{metric_point, metric_rollup, metric_rollup_bin};
use crate::store::{ROWS_PER_STATEMENT as CHUNK, StoreError};
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
    let replaced: Vec<(Vec<SeriesKey>, metric_point::Model)> = replaced_points(db, scope, &points)
        .await?
        .into_iter()
        .map(|point| (SeriesKey::of_point(&point.name, &series::labels_of_point(&point)), point))
        .collect();
    let keyed: Vec<(Vec<SeriesKey>, NewPoint)> =
        points.into_iter().map(|point| (SeriesKey::of_point(&point.name, &point.labels), point)).collect();
    // One lookup for the series of the new points and of those they replace.
    let wanted: BTreeSet<SeriesKey> =
        keyed.iter().map(|(keys, _)| keys).chain(replaced.iter().map(|(keys, _)| keys)).flatten().cloned().collect();
    let ids = series::ensure(db, scope, &wanted).await?;
    retract(db, &ids, replaced).await?;

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

    let summaries =
        summaries.into_iter().map(|(key, sketch)| (key, (sketch.count as i64, sketch.sum, sketch.min, sketch.max)));
    add_summaries(db, summaries.collect(), Extremes::Widen).await?;
    add_bins(db, bins).await
}

/// What an upsert does with a stored rollup's min and max.
#[derive(Clone, Copy, PartialEq)]
enum Extremes {
    /// Widen them to the incoming ones (points added).
    Widen,
    /// Leave them (points taken out: they become bounds).
    Keep,
}

/// Adds `summaries` (count, sum, min, max per bucket) to the stored rollups,
/// creating missing rows, many rows a statement.
async fn add_summaries(
    db: &impl ConnectionTrait,
    summaries: BTreeMap<RollupKey, (i64, f64, f64, f64)>,
    extremes: Extremes,
) -> Result<(), StoreError> {
    use metric_rollup::Column;
    let backend = db.get_database_backend();
    let rows: Vec<metric_rollup::ActiveModel> = summaries
        .into_iter()
        .map(|((series_id, level, bucket), (count, sum, min, max))| metric_rollup::ActiveModel {
            series_id: Set(series_id),
            level: Set(level as i16),
            bucket: Set(bucket),
            count: Set(count),
            sum: Set(sum),
            min: Set(min),
            max: Set(max),
        })
        .collect();
    let mut conflict = OnConflict::columns([Column::SeriesId, Column::Level, Column::Bucket]);
    conflict.value(Column::Count, added("metric_rollup", "count")).value(Column::Sum, added("metric_rollup", "sum"));
    if extremes == Extremes::Widen {
        conflict.value(Column::Min, extreme(backend, "min")).value(Column::Max, extreme(backend, "max"));
    }
    for chunk in rows.chunks(CHUNK) {
        metric_rollup::Entity::insert_many(chunk.to_vec()).on_conflict(conflict.clone()).exec(db).await?;
    }
    Ok(())
}

/// Adds `bins` (a count per bucket and bin) to the stored ones.
async fn add_bins(db: &impl ConnectionTrait, bins: BTreeMap<BinKey, i64>) -> Result<(), StoreError> {
    use metric_rollup_bin::Column;
    let rows: Vec<metric_rollup_bin::ActiveModel> = bins
        .into_iter()
        .map(|((series_id, level, bucket, bin), count)| metric_rollup_bin::ActiveModel {
            series_id: Set(series_id),
            level: Set(level as i16),
            bucket: Set(bucket),
            bin: Set(bin),
            count: Set(count),
        })
        .collect();
    let conflict = OnConflict::columns([Column::SeriesId, Column::Level, Column::Bucket, Column::Bin])
        .value(Column::Count, added("metric_rollup_bin", "count"))
        .to_owned();
    for chunk in rows.chunks(CHUNK) {
        metric_rollup_bin::Entity::insert_many(chunk.to_vec()).on_conflict(conflict.clone()).exec(db).await?;
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

/// Takes `old` points out of the rollups and deletes them, in a handful of
/// statements: counts, sums and bins subtract exactly (upserts of negative
/// amounts) and emptied rows go; the min and max of a recorded series' bucket
/// are read again from its remaining points, while a projection's stay as
/// they were (bounds: queries for min or max read recorded series).
/// `old` comes with the keys of its series (`SeriesKey::of_point`), `ids` with their ids.
async fn retract(
    db: &impl ConnectionTrait,
    ids: &HashMap<SeriesKey, i64>,
    old: Vec<(Vec<SeriesKey>, metric_point::Model)>,
) -> Result<(), StoreError> {
    if old.is_empty() {
        return Ok(());
    }
    let mut summaries: BTreeMap<RollupKey, (i64, f64, f64, f64)> = BTreeMap::new();
    let mut bins: BTreeMap<BinKey, i64> = BTreeMap::new();
    let mut recorded: BTreeSet<RollupKey> = BTreeSet::new();
    for (keys, point) in &old {
        let Some(series) = point.series_id else { continue };
        // Points stored before projections existed are only in their recorded series.
        let projections = keys[1..].iter().filter_map(|key| ids.get(key).copied());
        for target in std::iter::once(series).chain(projections) {
            for level in Level::ALL {
                let bucket = level.bucket(point.time);
                let summary = summaries.entry((target, level, bucket)).or_insert((0, 0.0, point.value, point.value));
                summary.0 -= 1;
                summary.1 -= point.value;
                *bins.entry((target, level, bucket, sketch::bin(point.value))).or_default() -= 1;
                if target == series {
                    recorded.insert((target, level, bucket));
                }
            }
        }
    }
    let points: Vec<i64> = old.iter().map(|(_, point)| point.id).collect();
    for chunk in points.chunks(CHUNK) {
        metric_point::Entity::delete_many()
            .filter(metric_point::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let emptied: Vec<RollupKey> = summaries.keys().copied().collect();
    let emptied_bins: Vec<BinKey> = bins.keys().copied().collect();
    add_summaries(db, summaries, Extremes::Keep).await?;
    add_bins(db, bins).await?;
    for chunk in emptied.chunks(CHUNK / 4) {
        let rows = chunk.iter().fold(Condition::any(), |any, (series, level, bucket)| {
            any.add(
                Condition::all()
                    .add(metric_rollup::Column::SeriesId.eq(*series))
                    .add(metric_rollup::Column::Level.eq(*level as i16))
                    .add(metric_rollup::Column::Bucket.eq(*bucket)),
            )
        });
        metric_rollup::Entity::delete_many().filter(rows).filter(metric_rollup::Column::Count.lte(0)).exec(db).await?;
    }
    for chunk in emptied_bins.chunks(CHUNK / 5) {
        let rows = chunk.iter().fold(Condition::any(), |any, (series, level, bucket, bin)| {
            any.add(
                Condition::all()
                    .add(metric_rollup_bin::Column::SeriesId.eq(*series))
                    .add(metric_rollup_bin::Column::Level.eq(*level as i16))
                    .add(metric_rollup_bin::Column::Bucket.eq(*bucket))
                    .add(metric_rollup_bin::Column::Bin.eq(*bin)),
            )
        });
        metric_rollup_bin::Entity::delete_many()
            .filter(rows)
            .filter(metric_rollup_bin::Column::Count.lte(0))
            .exec(db)
            .await?;
    }
    reread_extremes(db, recorded).await
}

/// Sets the min and max of these recorded-series buckets to those of their
/// remaining points, read in one pass over the series' points in the span.
async fn reread_extremes(db: &impl ConnectionTrait, buckets: BTreeSet<RollupKey>) -> Result<(), StoreError> {
    use metric_rollup::Column;
    let (Some(from), Some(to)) = (
        buckets.iter().map(|(_, _, bucket)| *bucket).min(),
        buckets.iter().map(|(_, level, bucket)| level.next(*bucket)).max(),
    ) else {
        return Ok(());
    };
    let series: BTreeSet<i64> = buckets.iter().map(|(series, _, _)| *series).collect();
    let mut extremes: BTreeMap<RollupKey, (f64, f64)> = BTreeMap::new();
    for chunk in series.iter().copied().collect::<Vec<_>>().chunks(CHUNK) {
        let points: Vec<(Option<i64>, i64, f64)> = metric_point::Entity::find()
            .select_only()
            .columns([metric_point::Column::SeriesId, metric_point::Column::Time, metric_point::Column::Value])
            .filter(metric_point::Column::SeriesId.is_in(chunk.iter().copied()))
            .filter(metric_point::Column::Time.gte(from))
            .filter(metric_point::Column::Time.lt(to))
            .into_tuple()
            .all(db)
            .await?;
        for (series, time, value) in points {
            let Some(series) = series else { continue };
            for level in Level::ALL {
                let key = (series, level, level.bucket(time));
                if buckets.contains(&key) {
                    let (min, max) = extremes.entry(key).or_insert((value, value));
                    (*min, *max) = (min.min(value), max.max(value));
                }
            }
        }
    }
    // Only buckets with points left: their rows exist, so these upserts update.
    let rows: Vec<metric_rollup::ActiveModel> = extremes
        .into_iter()
        .map(|((series_id, level, bucket), (min, max))| metric_rollup::ActiveModel {
            series_id: Set(series_id),
            level: Set(level as i16),
            bucket: Set(bucket),
            count: Set(0),
            sum: Set(0.0),
            min: Set(min),
            max: Set(max),
        })
        .collect();
    let conflict = OnConflict::columns([Column::SeriesId, Column::Level, Column::Bucket])
        .update_columns([Column::Min, Column::Max])
        .to_owned();
    for chunk in rows.chunks(CHUNK) {
        metric_rollup::Entity::insert_many(chunk.to_vec()).on_conflict(conflict.clone()).exec(db).await?;
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
