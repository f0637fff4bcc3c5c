//! The write side: a call's points go in raw and into hourly and daily rollups
//! (count, sum, min, max and sketch bins) in the call's transaction. Upserts add
//! to what is stored, so concurrent writers never lose a point and a rollup is
//! always the exact merge of its points.

use super::series::{self, Labels, labels_key};
use super::sketch;
use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::{metric_point, metric_rollup, metric_rollup_bin};
use sea_orm::sea_query::{Expr, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Set,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Granularities rollups are kept at. Coarser queries merge these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Hour = 0,
    Day = 1,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::Hour, Level::Day];

    pub fn millis(self) -> i64 {
        match self {
            Level::Hour => 3_600_000,
            Level::Day => 86_400_000,
        }
    }

    /// Start of the bucket holding `time` (UTC).
    pub fn bucket(self, time: i64) -> i64 {
        time.div_euclid(self.millis()) * self.millis()
    }
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

type SeriesKey = (String, String);
type RollupKey = (i64, Level, i64);
type BinKey = (i64, Level, i64, i32);

/// Stores `points` raw and in the rollups, on the caller's transaction. Keyed
/// points first take the earlier point with their key out of the rollups.
pub async fn record(db: &impl ConnectionTrait, scope: &Scope, points: Vec<NewPoint>) -> Result<(), StoreError> {
    if points.is_empty() {
        return Ok(());
    }
    let points = last_per_key(points);
    let replaced = replaced_points(db, scope, &points).await?;
    let keyed: Vec<(SeriesKey, NewPoint)> =
        points.into_iter().map(|point| ((point.name.clone(), labels_key(&point.labels)), point)).collect();
    let wanted: BTreeSet<SeriesKey> = keyed.iter().map(|(key, _)| key.clone()).collect();
    let ids = series::ensure(db, scope, &wanted).await?;
    retract(db, replaced).await?;

    // Sorted keys: concurrent writers touch rows in the same order (no deadlocks).
    let mut summaries: BTreeMap<RollupKey, sketch::Sketch> = BTreeMap::new();
    let mut bins: BTreeMap<BinKey, i64> = BTreeMap::new();
    let mut raw = Vec::with_capacity(keyed.len());
    for (key, point) in keyed {
        let Some(&series) = ids.get(&key) else { continue };
        for level in Level::ALL {
            let bucket = level.bucket(point.time);
            summaries.entry((series, level, bucket)).or_default().add_summary(1, point.value, point.value, point.value);
            *bins.entry((series, level, bucket, sketch::bin(point.value))).or_default() += 1;
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
            series_id: Set(Some(series)),
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
/// bins subtract exactly; a bucket's min and max are read again from its
/// remaining points; emptied rows go.
async fn retract(db: &impl ConnectionTrait, old: Vec<metric_point::Model>) -> Result<(), StoreError> {
    let mut summaries: BTreeMap<RollupKey, (i64, f64)> = BTreeMap::new();
    let mut bins: BTreeMap<BinKey, i64> = BTreeMap::new();
    for point in &old {
        let Some(series) = point.series_id else { continue };
        for level in Level::ALL {
            let bucket = level.bucket(point.time);
            let summary = summaries.entry((series, level, bucket)).or_default();
            summary.0 += 1;
            summary.1 += point.value;
            *bins.entry((series, level, bucket, sketch::bin(point.value))).or_default() += 1;
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
        let width = level.millis();
        let (min, max): (Option<f64>, Option<f64>) = metric_point::Entity::find()
            .select_only()
            .column_as(Expr::col(metric_point::Column::Value).min(), "min")
            .column_as(Expr::col(metric_point::Column::Value).max(), "max")
            .filter(metric_point::Column::SeriesId.eq(series))
            .filter(metric_point::Column::Time.gte(bucket))
            .filter(metric_point::Column::Time.lt(bucket + width))
            .into_tuple()
            .one(db)
            .await?
            .unwrap_or((None, None));
        match (min, max) {
            (Some(min), Some(max)) => {
                metric_rollup::Entity::update_many()
                    .col_expr(metric_rollup::Column::Count, Expr::col(metric_rollup::Column::Count).sub(count))
                    .col_expr(metric_rollup::Column::Sum, Expr::col(metric_rollup::Column::Sum).sub(sum))
                    .col_expr(metric_rollup::Column::Min, Expr::value(min))
                    .col_expr(metric_rollup::Column::Max, Expr::value(max))
                    .filter(row)
                    .exec(db)
                    .await?;
            }
            _ => {
                metric_rollup::Entity::delete_many().filter(row).exec(db).await?;
            }
        }
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
