//! Generations of a plugin's state per org: which one serves reads, and the
//! rebuild writing the next one. Requests and ticks write to the live one.

use super::log;
use crate::store::entities::{
    delivery_cursor, metric_point, metric_rollup, metric_rollup_bin, metric_series, plugin_document, plugin_generation,
};
use crate::store::ttl_cache::TtlCache;
use crate::store::{StoreError, now_ms};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait};

pub use plugin_generation::Model as Generation;

/// How long a cached live generation is trusted; another replica's switch is
/// seen within this time (the previous generation stays readable meanwhile).
const TTL_MS: i64 = 1_000;

/// The row for (`plugin`, `org`), if a rebuild ever ran there.
pub async fn get(db: &impl ConnectionTrait, plugin: &str, org: &str) -> Result<Option<Generation>, StoreError> {
    Ok(plugin_generation::Entity::find_by_id((plugin.to_owned(), org.to_owned())).one(db).await?)
}

/// The live generation; 0 until the first rebuild switches over.
pub async fn live(db: &impl ConnectionTrait, plugin: &str, org: &str) -> Result<i64, StoreError> {
    Ok(get(db, plugin, org).await?.map_or(0, |row| row.live))
}

/// Every (plugin, org) that ever had a rebuild: live generations and rebuilds in progress.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Generation>, StoreError> {
    Ok(plugin_generation::Entity::find().all(db).await?)
}

/// Why a rebuild could not start.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("a rebuild of generation {0} is already running")]
    Running(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a rebuild into a fresh generation with its cursor at the start of the log.
pub async fn start_rebuild(db: &DatabaseConnection, plugin: &str, org: &str) -> Result<Generation, RebuildError> {
    let txn = db.begin().await.map_err(StoreError::from)?;
    let current = get(&txn, plugin, org).await?;
    if let Some(building) = current.as_ref().and_then(|row| row.building) {
        return Err(RebuildError::Running(building));
    }
    let live = current.as_ref().map_or(0, |row| row.live);
    // Leftovers of an older generation would mix into the new one: start clean.
    let next = live + 1;
    delete_generation(&txn, plugin, org, |generation| generation.gte(next)).await?;
    let now = now_ms();
    let row = plugin_generation::ActiveModel {
        plugin: Set(plugin.to_owned()),
        org: Set(org.to_owned()),
        live: Set(live),
        building: Set(Some(next)),
        rebuild_started_at: Set(Some(now)),
        rebuild_target_seq: Set(Some(log::head(&txn, org).await?)),
        rebuild_finished_at: Set(None),
        updated_at: Set(now),
    };
    plugin_generation::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([plugin_generation::Column::Plugin, plugin_generation::Column::Org])
                .update_columns([
                    plugin_generation::Column::Building,
                    plugin_generation::Column::RebuildStartedAt,
                    plugin_generation::Column::RebuildTargetSeq,
                    plugin_generation::Column::RebuildFinishedAt,
                    plugin_generation::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await
        .map_err(StoreError::from)?;
    super::delivery::cursors::cursor(&txn, plugin, org, next).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(get(db, plugin, org).await?.ok_or_else(|| StoreError::Db(sea_orm::DbErr::RecordNotFound(plugin.into())))?)
}

/// Makes `building` live if its cursor has reached the live cursor; true when
/// it switched. The live cursor is deleted only if it has not moved past the
/// rebuilt one, and a worker advancing it concurrently fails its own update,
/// so no event is handled by one generation and missed by the other.
pub async fn try_switch(
    db: &DatabaseConnection,
    plugin: &str,
    org: &str,
    building: i64,
    position: i64,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    let Some(row) = get(&txn, plugin, org).await? else { return Ok(false) };
    if row.building != Some(building) {
        return Ok(false);
    }
    let old = row.live;
    let deleted = delivery_cursor::Entity::delete_many()
        .filter(delivery_cursor::Column::Plugin.eq(plugin))
        .filter(delivery_cursor::Column::Org.eq(org))
        .filter(delivery_cursor::Column::Generation.eq(old))
        .filter(delivery_cursor::Column::Position.lte(position))
        .exec(&txn)
        .await?;
    let live_cursor_exists =
        delivery_cursor::Entity::find_by_id((plugin.to_owned(), org.to_owned(), old)).one(&txn).await?;
    if deleted.rows_affected == 0 && live_cursor_exists.is_some() {
        return Ok(false);
    }
    let now = now_ms();
    plugin_generation::Entity::update(plugin_generation::ActiveModel {
        plugin: Set(plugin.to_owned()),
        org: Set(org.to_owned()),
        live: Set(building),
        building: Set(None),
        rebuild_finished_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    // The generation before the old one goes; the old one stays readable for
    // replicas that have not noticed the switch yet.
    delete_generation(&txn, plugin, org, |generation| generation.lt(old)).await?;
    txn.commit().await?;
    Ok(true)
}

async fn delete_generation(
    db: &impl ConnectionTrait,
    plugin: &str,
    org: &str,
    which: impl Fn(sea_orm::sea_query::Expr) -> sea_orm::sea_query::SimpleExpr,
) -> Result<(), StoreError> {
    use sea_orm::sea_query::Expr;
    plugin_document::Entity::delete_many()
        .filter(plugin_document::Column::Plugin.eq(plugin))
        .filter(plugin_document::Column::Org.eq(org))
        .filter(which(Expr::col(plugin_document::Column::Generation)))
        .exec(db)
        .await?;
    metric_point::Entity::delete_many()
        .filter(metric_point::Column::Plugin.eq(plugin))
        .filter(metric_point::Column::Org.eq(org))
        .filter(which(Expr::col(metric_point::Column::Generation)))
        .exec(db)
        .await?;
    let series = sea_orm::sea_query::Query::select()
        .column(metric_series::Column::Id)
        .from(metric_series::Entity)
        .and_where(metric_series::Column::Plugin.eq(plugin))
        .and_where(metric_series::Column::Org.eq(org))
        .and_where(which(Expr::col(metric_series::Column::Generation)))
        .to_owned();
    metric_rollup::Entity::delete_many()
        .filter(metric_rollup::Column::SeriesId.in_subquery(series.clone()))
        .exec(db)
        .await?;
    metric_rollup_bin::Entity::delete_many()
        .filter(metric_rollup_bin::Column::SeriesId.in_subquery(series))
        .exec(db)
        .await?;
    metric_series::Entity::delete_many()
        .filter(metric_series::Column::Plugin.eq(plugin))
        .filter(metric_series::Column::Org.eq(org))
        .filter(which(Expr::col(metric_series::Column::Generation)))
        .exec(db)
        .await?;
    delivery_cursor::Entity::delete_many()
        .filter(delivery_cursor::Column::Plugin.eq(plugin))
        .filter(delivery_cursor::Column::Org.eq(org))
        .filter(which(Expr::col(delivery_cursor::Column::Generation)))
        .exec(db)
        .await?;
    Ok(())
}

/// Live generations cached for the request path, so a plugin route costs no
/// extra query. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct LiveGenerations {
    db: DatabaseConnection,
    cache: TtlCache<(String, String), i64>,
}

impl LiveGenerations {
    pub fn new(db: DatabaseConnection) -> Self {
        LiveGenerations { db, cache: TtlCache::new(TTL_MS) }
    }

    /// The generation requests and ticks of `plugin` in `org` read and write.
    pub async fn live(&self, plugin: &str, org: &str) -> Result<i64, StoreError> {
        let key = (plugin.to_owned(), org.to_owned());
        if let Some(generation) = self.cache.get(&key) {
            return Ok(generation);
        }
        let generation = live(&self.db, plugin, org).await?;
        self.cache.insert(key, generation);
        Ok(generation)
    }

    /// Forgets the cached value after this process switched generations.
    pub fn forget(&self, plugin: &str, org: &str) {
        self.cache.forget(|(cached_plugin, cached_org), _| cached_plugin == plugin && cached_org == org);
    }
}
