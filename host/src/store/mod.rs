//! Storage: sea-orm over SQLite (the embedded default) or PostgreSQL.

pub mod cursor;
pub mod delivery;
pub mod documents;
pub mod entities;
pub mod event_log;
pub mod generations;
pub mod hooks;
pub mod migration;
pub mod plugin_state;
pub mod redis;
pub mod schedule_runs;
pub mod ttl_cache;
pub mod writes;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use std::path::Path;
use std::time::Duration;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

/// Rows per multi-row statement, well under every backend's bind-parameter limit.
pub const ROWS_PER_STATEMENT: usize = 500;

/// The SQLite URL used when the operator names no database.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("devpulse.db").display())
}

/// Connects and applies pending migrations. SQLite runs in WAL mode with a busy
/// timeout and one pooled connection, so other processes (the CLI) can read
/// while the server writes, and writers queue instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        // One connection: SQLite has one writer anyway, and a transaction that
        // reads before it writes fails at once (SQLITE_BUSY, no waiting) when
        // another connection wrote in between. Serialising in the pool avoids it.
        options.max_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(16);
    }
    let db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    Ok(db)
}

/// A cheap round trip, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
