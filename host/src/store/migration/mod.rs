//! Schema migrations, applied at start. Append new migrations; never edit a released one.

mod m0001_initial;
mod m0002_identity;
mod m0003_event_log;
mod m0004_metric_rollups;
mod m0005_metric_queries;
mod m0006_event_subject;
mod m0007_alerts;
mod m0008_leases;
mod m0009_watched_objects;
mod m0010_log_order_trigger;

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::M0001Initial),
            Box::new(m0002_identity::M0002Identity),
            Box::new(m0003_event_log::M0003EventLog),
            Box::new(m0004_metric_rollups::M0004MetricRollups),
            Box::new(m0005_metric_queries::M0005MetricQueries),
            Box::new(m0006_event_subject::M0006EventSubject),
            Box::new(m0007_alerts::M0007Alerts),
            Box::new(m0008_leases::M0008Leases),
            Box::new(m0009_watched_objects::M0009WatchedObjects),
            Box::new(m0010_log_order_trigger::M0010LogOrderTrigger),
        ]
    }
}

/// A text key compared byte by byte on every backend, so prefix scans and cursors
/// order the same on SQLite (binary by default) and PostgreSQL (locale by default).
fn byte_ordered_key<T: IntoIden>(backend: DbBackend, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string().not_null();
    if backend == DbBackend::Postgres {
        column.extra("COLLATE \"C\"");
    }
    column
}
