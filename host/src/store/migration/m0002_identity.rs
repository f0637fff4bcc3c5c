//! Orgs, users, their external identities, tokens and the audit log.

use super::byte_ordered_key;
use sea_orm_migration::prelude::*;

pub struct M0002Identity;

impl MigrationName for M0002Identity {
    fn name(&self) -> &str {
        "m0002_identity"
    }
}

#[derive(Iden)]
enum Org {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(Iden)]
enum User {
    // `user` is a reserved word in PostgreSQL.
    #[iden = "user_account"]
    Table,
    Id,
    OrgId,
    DisplayName,
    Email,
    Role,
    TimeZone,
    CreatedAt,
}

#[derive(Iden)]
enum UserIdentity {
    Table,
    OrgId,
    Provider,
    Login,
    UserId,
}

#[derive(Iden)]
enum Token {
    Table,
    Id,
    OrgId,
    UserId,
    Name,
    SecretHash,
    Operator,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(Iden)]
enum AuditEntry {
    Table,
    Id,
    OrgId,
    ActorUserId,
    ActorTokenId,
    Action,
    Target,
    Details,
    At,
}

fn text<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string().not_null();
    column
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Identity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Org::Table)
                    .col(byte_ordered_key(backend, Org::Id).primary_key())
                    .col(text(Org::Slug).unique_key())
                    .col(text(Org::Name))
                    .col(ColumnDef::new(Org::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(User::Table)
                    .col(byte_ordered_key(backend, User::Id).primary_key())
                    .col(text(User::OrgId))
                    .col(text(User::DisplayName))
                    .col(text(User::Email))
                    .col(text(User::Role))
                    .col(text(User::TimeZone))
                    .col(ColumnDef::new(User::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("user_org").table(User::Table).col(User::OrgId).col(User::Id).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserIdentity::Table)
                    .col(text(UserIdentity::OrgId))
                    .col(text(UserIdentity::Provider))
                    .col(text(UserIdentity::Login))
                    .col(text(UserIdentity::UserId))
                    .primary_key(
                        Index::create().col(UserIdentity::OrgId).col(UserIdentity::Provider).col(UserIdentity::Login),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Token::Table)
                    .col(byte_ordered_key(backend, Token::Id).primary_key())
                    .col(text(Token::OrgId))
                    .col(text(Token::UserId))
                    .col(text(Token::Name))
                    .col(text(Token::SecretHash).unique_key())
                    .col(ColumnDef::new(Token::Operator).boolean().not_null())
                    .col(ColumnDef::new(Token::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Token::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Token::LastUsedAt).big_integer().null())
                    .col(ColumnDef::new(Token::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEntry::Table)
                    .col(byte_ordered_key(backend, AuditEntry::Id).primary_key())
                    .col(text(AuditEntry::OrgId))
                    .col(ColumnDef::new(AuditEntry::ActorUserId).string().null())
                    .col(ColumnDef::new(AuditEntry::ActorTokenId).string().null())
                    .col(text(AuditEntry::Action))
                    .col(text(AuditEntry::Target))
                    .col(ColumnDef::new(AuditEntry::Details).json_binary().not_null())
                    .col(ColumnDef::new(AuditEntry::At).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_org_id")
                    .table(AuditEntry::Table)
                    .col(AuditEntry::OrgId)
                    .col(AuditEntry::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEntry::Table.into_iden(),
            Token::Table.into_iden(),
            UserIdentity::Table.into_iden(),
            User::Table.into_iden(),
            Org::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
