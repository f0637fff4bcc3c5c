//! When each schedule last ran per org. A run is claimed by a compare-and-set
//! in the transaction that commits the tick's writes, so one replica runs it.

use crate::store::StoreError;
use crate::store::entities::schedule_run::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

/// Every recorded run.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find().all(db).await?)
}

/// Records a run at `at`, if the last run is still `previous` (`None`: never ran).
/// False when another process got there first.
pub async fn claim(
    db: &impl ConnectionTrait,
    plugin: &str,
    org: &str,
    schedule: &str,
    previous: Option<i64>,
    at: i64,
) -> Result<bool, StoreError> {
    let rows = match previous {
        None => {
            let row = ActiveModel {
                plugin: Set(plugin.to_owned()),
                org: Set(org.to_owned()),
                schedule: Set(schedule.to_owned()),
                last_run_at: Set(at),
            };
            Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([Column::Plugin, Column::Org, Column::Schedule]).do_nothing().to_owned(),
                )
                .exec_without_returning(db)
                .await?
        }
        Some(previous) => {
            Entity::update_many()
                .col_expr(Column::LastRunAt, Expr::value(at))
                .filter(Column::Plugin.eq(plugin))
                .filter(Column::Org.eq(org))
                .filter(Column::Schedule.eq(schedule))
                .filter(Column::LastRunAt.eq(previous))
                .exec(db)
                .await?
                .rows_affected
        }
    };
    Ok(rows == 1)
}
