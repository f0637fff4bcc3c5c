//! Kubernetes watches: the objects each watch last saw, so that after a
//! restart (or a `410 Gone`) the relist tells what was deleted meanwhile.

use sea_orm_migration::prelude::*;

pub struct M0009WatchedObjects;

impl MigrationName for M0009WatchedObjects {
    fn name(&self) -> &str {
        "m0009_watched_objects"
    }
}

#[derive(Iden)]
enum WatchedObject {
    Table,
    Plugin,
    Watch,
    Uid,
    Org,
    ResourceVersion,
    Object,
}

#[async_trait::async_trait]
impl MigrationTrait for M0009WatchedObjects {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WatchedObject::Table)
                    .col(ColumnDef::new(WatchedObject::Plugin).string().not_null())
                    .col(ColumnDef::new(WatchedObject::Watch).string().not_null())
                    .col(ColumnDef::new(WatchedObject::Uid).string().not_null())
                    .col(ColumnDef::new(WatchedObject::Org).string().not_null())
                    .col(ColumnDef::new(WatchedObject::ResourceVersion).string().not_null())
                    .col(ColumnDef::new(WatchedObject::Object).json_binary().not_null())
                    .primary_key(
                        Index::create().col(WatchedObject::Plugin).col(WatchedObject::Watch).col(WatchedObject::Uid),
                    )
                    .to_owned(),
            )
            .await
    }
}
