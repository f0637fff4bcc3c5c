//! Faster metric queries (see `metrics::plan` and `metrics::series`):
//! - monthly rollups beside the hourly and daily ones, so a year is a dozen
//!   rows per series; filled from the daily rollups, which merge exactly;
//! - projections: series of each metric's total and of each label alone,
//!   filled from the recorded series' rollups;
//! - on SQLite, `WITHOUT ROWID` rollup tables: a series' buckets lie together
//!   in primary-key order and a query reads them in one pass (about half the
//!   time);
//! - keyed points found by an index that starts with the key, the only one
//!   left that starts with the plugin going: PostgreSQL, without statistics on
//!   a young table, took that one and read every point of a plugin to find a
//!   few keys. Raw points are read by `metric_point_org_name_time`.

use frozen::{CHUNK, DAY, MONTH, SeriesKey, month_start};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use sea_orm_migration::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub struct M0005MetricQueries;

impl MigrationName for M0005MetricQueries {
    fn name(&self) -> &str {
        "m0005_metric_queries"
    }
}

#[derive(Iden, Clone, Copy)]
enum MetricPoint {
    Table,
    Plugin,
    Org,
    Generation,
    Name,
    Time,
    Key,
}

/// The index m0003 made for points by plugin, org and generation.
const BY_GENERATION: &str = "metric_point_plugin_generation";

#[derive(Iden, Clone, Copy)]
enum MetricSeries {
    Table,
    Id,
    Plugin,
    Org,
    Generation,
    Name,
    Projection,
    Labels,
    LabelsKey,
}

/// The unique index m0004 made on a series' identity.
const SERIES_IDENTITY: &str = "metric_series_identity";

#[derive(Iden, Clone, Copy)]
enum MetricRollup {
    Table,
    SeriesId,
    Level,
    Bucket,
    Count,
    Sum,
    Min,
    Max,
}

#[derive(Iden, Clone, Copy)]
enum MetricRollupBin {
    Table,
    SeriesId,
    Level,
    Bucket,
    Bin,
    Count,
}

/// A rollup row's place: series, level code, bucket.
type Place = (i64, i16, i64);

#[async_trait::async_trait]
impl MigrationTrait for M0005MetricQueries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One transaction on every backend (sea-orm-migration opens one only on
        // PostgreSQL): a crash never leaves a rollup table half rebuilt.
        let txn = manager.get_connection().begin().await?;
        up(&SchemaManager::new(&txn)).await?;
        txn.commit().await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        key_index(manager, [MetricPoint::Plugin, MetricPoint::Org, MetricPoint::Generation, MetricPoint::Key]).await?;
        let by_generation = Index::create()
            .name(BY_GENERATION)
            .table(MetricPoint::Table)
            .col(MetricPoint::Plugin)
            .col(MetricPoint::Org)
            .col(MetricPoint::Generation)
            .col(MetricPoint::Name)
            .col(MetricPoint::Time)
            .to_owned();
        manager.create_index(by_generation).await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let projections = Query::select()
            .column(MetricSeries::Id)
            .from(MetricSeries::Table)
            .and_where(Expr::col(MetricSeries::Projection).ne(""))
            .to_owned();
        for (table, series, level) in [
            (MetricRollup::Table.into_iden(), MetricRollup::SeriesId.into_iden(), MetricRollup::Level.into_iden()),
            (
                MetricRollupBin::Table.into_iden(),
                MetricRollupBin::SeriesId.into_iden(),
                MetricRollupBin::Level.into_iden(),
            ),
        ] {
            let delete = Query::delete()
                .from_table(table)
                .cond_where(
                    Condition::any()
                        .add(Expr::col(level).eq(MONTH))
                        .add(Expr::col(series).in_subquery(projections.clone())),
                )
                .to_owned();
            db.execute(backend.build(&delete)).await?;
        }
        let delete = Query::delete()
            .from_table(MetricSeries::Table)
            .and_where(Expr::col(MetricSeries::Projection).ne(""))
            .to_owned();
        db.execute(backend.build(&delete)).await?;
        series_identity(manager, false).await?;
        manager
            .alter_table(Table::alter().table(MetricSeries::Table).drop_column(MetricSeries::Projection).to_owned())
            .await
    }
}

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    key_index(manager, [MetricPoint::Key, MetricPoint::Plugin, MetricPoint::Org, MetricPoint::Generation]).await?;
    manager.drop_index(Index::drop().name(BY_GENERATION).table(MetricPoint::Table).to_owned()).await?;
    if manager.get_database_backend() == DbBackend::Sqlite {
        clustered(manager, "metric_rollup").await?;
        clustered(manager, "metric_rollup_bin").await?;
    }
    let projection = ColumnDef::new(MetricSeries::Projection).string().not_null().default("").to_owned();
    manager.alter_table(Table::alter().table(MetricSeries::Table).add_column(projection).to_owned()).await?;
    series_identity(manager, true).await?;

    // Months from days.
    let days = Condition::all().add(Expr::col(MetricRollup::Level).eq(DAY));
    derive(manager, days, |(series, _, bucket)| vec![(series, MONTH, month_start(bucket))]).await?;

    // Projections from the recorded series, at every level.
    let projections = projections(manager).await?;
    let recorded = Condition::all().add(Expr::col(MetricRollup::SeriesId).is_in(projections.keys().copied()));
    derive(manager, recorded, |(series, level, bucket)| {
        projections.get(&series).into_iter().flatten().map(|projection| (*projection, level, bucket)).collect()
    })
    .await
}

/// Creates the projection series of every recorded series; the ids of each
/// recorded series' projections.
async fn projections(manager: &SchemaManager<'_>) -> Result<HashMap<i64, Vec<i64>>, DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let columns = [
        MetricSeries::Id,
        MetricSeries::Plugin,
        MetricSeries::Org,
        MetricSeries::Generation,
        MetricSeries::Name,
        MetricSeries::Labels,
    ];
    let recorded = Query::select().columns(columns).from(MetricSeries::Table).to_owned();
    let mut wanted: BTreeMap<(String, String, i64, SeriesKey), Vec<i64>> = BTreeMap::new();
    for row in db.query_all(backend.build(&recorded)).await? {
        let labels = serde_json::from_value(row.try_get::<serde_json::Value>("", "labels")?).unwrap_or_default();
        let scope = (
            row.try_get::<String>("", "plugin")?,
            row.try_get::<String>("", "org")?,
            row.try_get::<i64>("", "generation")?,
        );
        for key in SeriesKey::projections_of(&row.try_get::<String>("", "name")?, &labels) {
            wanted
                .entry((scope.0.clone(), scope.1.clone(), scope.2, key))
                .or_default()
                .push(row.try_get::<i64>("", "id")?);
        }
    }
    let rows: Vec<Vec<SimpleExpr>> = wanted
        .keys()
        .map(|(plugin, org, generation, key)| {
            let labels: serde_json::Value = serde_json::from_str(&key.labels_key).unwrap_or_default();
            vec![
                plugin.into(),
                org.into(),
                (*generation).into(),
                key.name.clone().into(),
                key.projection.clone().into(),
                Expr::val(labels).cast_as(Alias::new(if backend == DbBackend::Postgres { "jsonb" } else { "text" })),
                key.labels_key.clone().into(),
            ]
        })
        .collect();
    let columns = [
        MetricSeries::Plugin,
        MetricSeries::Org,
        MetricSeries::Generation,
        MetricSeries::Name,
        MetricSeries::Projection,
        MetricSeries::Labels,
        MetricSeries::LabelsKey,
    ];
    let conflict = OnConflict::columns(identity()).do_nothing().to_owned();
    insert(db, backend, MetricSeries::Table, columns, conflict, rows).await?;

    let columns = [
        MetricSeries::Id,
        MetricSeries::Plugin,
        MetricSeries::Org,
        MetricSeries::Generation,
        MetricSeries::Name,
        MetricSeries::Projection,
        MetricSeries::LabelsKey,
    ];
    let stored = Query::select()
        .columns(columns)
        .from(MetricSeries::Table)
        .and_where(Expr::col(MetricSeries::Projection).ne(""))
        .to_owned();
    let mut of_recorded: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in db.query_all(backend.build(&stored)).await? {
        let key = SeriesKey {
            name: row.try_get("", "name")?,
            projection: row.try_get("", "projection")?,
            labels_key: row.try_get("", "labels_key")?,
        };
        let place = (
            row.try_get::<String>("", "plugin")?,
            row.try_get::<String>("", "org")?,
            row.try_get::<i64>("", "generation")?,
            key,
        );
        for recorded in wanted.get(&place).into_iter().flatten() {
            of_recorded.entry(*recorded).or_default().push(row.try_get::<i64>("", "id")?);
        }
    }
    Ok(of_recorded)
}

/// Adds the rollup and bin rows selected by `source` (a condition on their
/// series, level and bucket columns) into the places `targets` maps each to,
/// overwriting what the target rows held: running it again gives the same rows.
async fn derive(
    manager: &SchemaManager<'_>,
    source: Condition,
    targets: impl Fn(Place) -> Vec<Place>,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let place = |row: &sea_orm::QueryResult| -> Result<Place, DbErr> {
        Ok((row.try_get("", "series_id")?, row.try_get("", "level")?, row.try_get("", "bucket")?))
    };

    let mut summaries: BTreeMap<Place, (i64, f64, f64, f64)> = BTreeMap::new();
    let select = Query::select()
        .columns([
            MetricRollup::SeriesId,
            MetricRollup::Level,
            MetricRollup::Bucket,
            MetricRollup::Count,
            MetricRollup::Sum,
            MetricRollup::Min,
            MetricRollup::Max,
        ])
        .from(MetricRollup::Table)
        .cond_where(source.clone())
        .to_owned();
    for row in db.query_all(backend.build(&select)).await? {
        let (count, sum, min, max) = (
            row.try_get::<i64>("", "count")?,
            row.try_get::<f64>("", "sum")?,
            row.try_get::<f64>("", "min")?,
            row.try_get::<f64>("", "max")?,
        );
        for target in targets(place(&row)?) {
            let summary = summaries.entry(target).or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
            *summary = (summary.0 + count, summary.1 + sum, summary.2.min(min), summary.3.max(max));
        }
    }
    let rows: Vec<Vec<SimpleExpr>> = summaries
        .into_iter()
        .map(|((series, level, bucket), (count, sum, min, max))| {
            vec![series.into(), level.into(), bucket.into(), count.into(), sum.into(), min.into(), max.into()]
        })
        .collect();
    let columns = [
        MetricRollup::SeriesId,
        MetricRollup::Level,
        MetricRollup::Bucket,
        MetricRollup::Count,
        MetricRollup::Sum,
        MetricRollup::Min,
        MetricRollup::Max,
    ];
    let conflict = OnConflict::columns([MetricRollup::SeriesId, MetricRollup::Level, MetricRollup::Bucket])
        .update_columns([MetricRollup::Count, MetricRollup::Sum, MetricRollup::Min, MetricRollup::Max])
        .to_owned();
    insert(db, backend, MetricRollup::Table, columns, conflict, rows).await?;

    // The same condition names the bin table's columns of the same names.
    let mut bins: BTreeMap<(Place, i32), i64> = BTreeMap::new();
    let select = Query::select()
        .columns([
            MetricRollupBin::SeriesId,
            MetricRollupBin::Level,
            MetricRollupBin::Bucket,
            MetricRollupBin::Bin,
            MetricRollupBin::Count,
        ])
        .from(MetricRollupBin::Table)
        .cond_where(source)
        .to_owned();
    for row in db.query_all(backend.build(&select)).await? {
        let (bin, count) = (row.try_get::<i32>("", "bin")?, row.try_get::<i64>("", "count")?);
        for target in targets(place(&row)?) {
            *bins.entry((target, bin)).or_default() += count;
        }
    }
    let rows: Vec<Vec<SimpleExpr>> = bins
        .into_iter()
        .map(|(((series, level, bucket), bin), count)| {
            vec![series.into(), level.into(), bucket.into(), bin.into(), count.into()]
        })
        .collect();
    let columns = [
        MetricRollupBin::SeriesId,
        MetricRollupBin::Level,
        MetricRollupBin::Bucket,
        MetricRollupBin::Bin,
        MetricRollupBin::Count,
    ];
    let conflict = OnConflict::columns([
        MetricRollupBin::SeriesId,
        MetricRollupBin::Level,
        MetricRollupBin::Bucket,
        MetricRollupBin::Bin,
    ])
    .update_column(MetricRollupBin::Count)
    .to_owned();
    insert(db, backend, MetricRollupBin::Table, columns, conflict, rows).await
}

fn identity() -> Vec<MetricSeries> {
    vec![
        MetricSeries::Plugin,
        MetricSeries::Org,
        MetricSeries::Generation,
        MetricSeries::Name,
        MetricSeries::Projection,
        MetricSeries::LabelsKey,
    ]
}

/// Recreates the unique index on a series' identity, with its projection or without.
async fn series_identity(manager: &SchemaManager<'_>, with_projection: bool) -> Result<(), DbErr> {
    manager.drop_index(Index::drop().name(SERIES_IDENTITY).table(MetricSeries::Table).to_owned()).await?;
    let mut index = Index::create();
    index.name(SERIES_IDENTITY).table(MetricSeries::Table).unique();
    for column in identity().into_iter().filter(|column| with_projection || !matches!(column, MetricSeries::Projection))
    {
        index.col(column);
    }
    manager.create_index(index.to_owned()).await
}

/// Rebuilds the SQLite table `name` as a `WITHOUT ROWID` table (rows stored in
/// primary-key order) from its own stored definition, keeping its rows.
async fn clustered(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let stored = Query::select()
        .column(Alias::new("sql"))
        .from(Alias::new("sqlite_master"))
        .and_where(Expr::col(Alias::new("type")).eq("table"))
        .and_where(Expr::col(Alias::new("name")).eq(name))
        .to_owned();
    let row = db.query_one(manager.get_database_backend().build(&stored)).await?;
    let create: String = row.ok_or_else(|| DbErr::Custom(format!("no table {name}")))?.try_get("", "sql")?;
    let rebuilt = format!("{name}_clustered");
    let quoted = format!("\"{name}\"");
    if !create.contains(&quoted) {
        return Err(DbErr::Custom(format!("unexpected definition of {name}: {create}")));
    }
    let create = format!("{} WITHOUT ROWID", create.replacen(&quoted, &format!("\"{rebuilt}\""), 1));
    db.execute_unprepared(&create).await?;
    db.execute_unprepared(&format!("INSERT INTO \"{rebuilt}\" SELECT * FROM \"{name}\"")).await?;
    manager.drop_table(Table::drop().table(Alias::new(name)).to_owned()).await?;
    manager.rename_table(Table::rename().table(Alias::new(&rebuilt), Alias::new(name)).to_owned()).await
}

/// Recreates the unique index on keyed points with `columns` in this order.
async fn key_index(manager: &SchemaManager<'_>, columns: [MetricPoint; 4]) -> Result<(), DbErr> {
    manager.drop_index(Index::drop().name("metric_point_key").table(MetricPoint::Table).to_owned()).await?;
    let mut index = Index::create();
    index.name("metric_point_key").table(MetricPoint::Table).unique();
    for column in columns {
        index.col(column);
    }
    manager.create_index(index.to_owned()).await
}

/// Inserts `rows` into `table` in chunks; a row that exists is overwritten, so
/// running the migration again after a crash gives the same rows.
async fn insert<T: IntoIden + Copy + 'static, const N: usize>(
    db: &impl ConnectionTrait,
    backend: DbBackend,
    table: T,
    columns: [T; N],
    conflict: OnConflict,
    rows: Vec<Vec<SimpleExpr>>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(table).columns(columns).on_conflict(conflict.clone());
        for row in chunk {
            insert.values(row.clone()).map_err(|err| DbErr::Custom(err.to_string()))?;
        }
        db.execute(backend.build(&insert)).await?;
    }
    Ok(())
}

/// What this migration needs of the metrics store, as it was when the
/// migration was released: later changes to `crate::metrics` must not change
/// what an old migration does, so nothing here imports live code.
mod frozen {
    use chrono::Datelike;
    use std::collections::BTreeMap;

    /// Rows per multi-row statement.
    pub const CHUNK: usize = 500;

    /// Rollup level codes.
    pub const DAY: i16 = 1;
    pub const MONTH: i16 = 2;

    /// Start of the calendar month (UTC) holding `time`, in ms.
    pub fn month_start(time: i64) -> i64 {
        chrono::DateTime::from_timestamp_millis(time)
            .and_then(|at| at.date_naive().with_day(1))
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map_or(time.div_euclid(86_400_000) * 86_400_000, |start| start.and_utc().timestamp_millis())
    }

    /// A series' identity: metric name, projection code and labels as JSON.
    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct SeriesKey {
        pub name: String,
        pub projection: String,
        pub labels_key: String,
    }

    impl SeriesKey {
        /// The projections a recorded series of metric `name` with `labels`
        /// feeds: the metric's total (`[]`) and one per label (`["label"]`).
        pub fn projections_of(name: &str, labels: &BTreeMap<String, String>) -> Vec<SeriesKey> {
            let key = |kept: Vec<&String>, labels: BTreeMap<&String, &String>| SeriesKey {
                name: name.to_owned(),
                projection: serde_json::to_string(&kept).unwrap_or_default(),
                labels_key: serde_json::to_string(&labels).unwrap_or_default(),
            };
            let mut keys = vec![key(Vec::new(), BTreeMap::new())];
            keys.extend(labels.iter().map(|(label, value)| key(vec![label], BTreeMap::from([(label, value)]))));
            keys
        }
    }
}
