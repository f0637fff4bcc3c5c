//! Leases: which replica runs each delivery partition and schedule. A replica
//! announces itself in `replica` and renews its heartbeat; a `lease` row names
//! the replica holding a piece of work until `expires_at`, so a dead replica's
//! work is taken over once its leases run out.

use sea_orm_migration::prelude::*;

pub struct M0008Leases;

impl MigrationName for M0008Leases {
    fn name(&self) -> &str {
        "m0008_leases"
    }
}

#[derive(Iden)]
enum Replica {
    Table,
    Id,
    StartedAt,
    HeartbeatAt,
}

#[derive(Iden)]
enum Lease {
    Table,
    Key,
    Holder,
    AcquiredAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Leases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Replica::Table)
                    .col(ColumnDef::new(Replica::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Replica::StartedAt).big_integer().not_null())
                    .col(ColumnDef::new(Replica::HeartbeatAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Lease::Table)
                    .col(ColumnDef::new(Lease::Key).string().not_null().primary_key())
                    .col(ColumnDef::new(Lease::Holder).string().not_null())
                    .col(ColumnDef::new(Lease::AcquiredAt).big_integer().not_null())
                    .col(ColumnDef::new(Lease::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("lease_holder").table(Lease::Table).col(Lease::Holder).to_owned())
            .await
    }
}
