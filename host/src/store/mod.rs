//! Storage: sea-orm over SQLite (the embedded default) or PostgreSQL.

pub mod cursor;
pub mod documents;
pub mod entities;
pub mod migration;
pub mod plugin_state;
pub mod redis;
pub mod statistics;
pub mod ttl_cache;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    IsolationLevel, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use std::path::Path;
use std::str::FromStr;
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
    let db = if url.starts_with("sqlite:") { sqlite(url).await? } else { postgres(url).await? };
    migration::Migrator::up(&db, None).await?;
    Ok(db)
}

/// One connection: SQLite has one writer anyway, and a transaction that reads
/// before it writes fails at once (SQLITE_BUSY, no waiting) when another
/// connection wrote in between. Serialising in the pool avoids it. The
/// connection lives as long as the pool: with no idle timeout or lifetime,
/// sqlx runs no maintenance task, whose loop was seen spinning forever at
/// shutdown.
async fn sqlite(url: &str) -> Result<DatabaseConnection, DbErr> {
    use sea_orm::sqlx::ConnectOptions as _;
    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err)))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err)))?;
    Ok(sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// Connections that only read, beside `db` (from [`connect`]): on SQLite a
/// pool of read-only connections to the same file, so reads run beside the
/// one writer (WAL lets them) instead of queuing behind its commits; on
/// PostgreSQL, and for an in-memory SQLite database, `db` itself. Reads there
/// see every commit that returned before they began.
pub fn readers(db: &DatabaseConnection) -> DatabaseConnection {
    use sea_orm::sqlx::sqlite::SqlitePoolOptions;
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return db.clone();
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    if options.get_filename().to_string_lossy().starts_with("file:sqlx-in-memory") {
        return db.clone();
    }
    let options = (*options).clone().read_only(true).create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_READERS)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
}

/// Read-only SQLite connections: enough for the two cores of a laptop-sized
/// server, each with its own page cache.
const SQLITE_READERS: u32 = 4;

async fn postgres(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .max_connections(16);
    Database::connect(options).await
}

/// A read-only transaction whose reads all see one committed state, for a
/// reader that combines several queries while commits land beside it
/// (PostgreSQL needs repeatable read for that; a SQLite transaction has it).
pub async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await
        }
        _ => db.begin().await,
    }
}

/// A cheap round trip, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// A new ULID, greater than every one this process made before, even within
/// one millisecond: where id order is the order things happened (alerts,
/// their notifications), it stays so.
pub fn ordered_id() -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let generated = GENERATOR.lock().map(|mut generator| generator.generate());
    match generated {
        Ok(Ok(id)) => id.to_string(),
        // Overflow within one millisecond (2^80 ids) or a poisoned lock: a fresh one.
        _ => ulid::Ulid::new().to_string(),
    }
}

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::{connect, default_url, readers};
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

    async fn count(db: &impl ConnectionTrait) -> i64 {
        let statement = Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM org");
        let row = db.query_one(statement).await.expect("the read succeeds").expect("one row");
        row.try_get("", "n").expect("a count")
    }

    /// While a transaction holds SQLite's one writer connection, a read on the
    /// readers answers at once (it would otherwise wait for the connection
    /// and fail after the acquire timeout) and sees only what is committed.
    #[tokio::test]
    async fn reads_on_sqlite_do_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&default_url(dir.path())).await.unwrap();
        let reader = readers(&db);
        let before = count(&reader).await;
        let txn = db.begin().await.unwrap();
        let insert = "INSERT INTO org (id, slug, name, created_at) VALUES ('o-test', 'o-test', 'Test', 0)";
        txn.execute_unprepared(insert).await.unwrap();
        assert_eq!(count(&reader).await, before, "the open transaction is not seen");
        txn.commit().await.unwrap();
        assert_eq!(count(&reader).await, before + 1, "the commit is");
        let error = reader.execute_unprepared("DELETE FROM org").await.expect_err("readers do not write");
        assert!(error.to_string().contains("readonly"), "{error}");
    }
}
