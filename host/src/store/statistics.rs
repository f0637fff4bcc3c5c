//! Table statistics on PostgreSQL. Its planner estimates rows from what
//! `ANALYZE` gathered; a table never analyzed (autovacuum off, or a new
//! database before autovacuum's first round, a minute) is guessed at, and an
//! org's events are taken for a handful of rows. A delivery batch is then read
//! by fetching and sorting every event after the cursor instead of the next
//! hundred in order, a cost that grows with the backlog, which is what a new
//! installation replaying its history has most of. So the host analyzes its
//! own tables when they have changed as much as autovacuum would wait for.

use super::StoreError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::time::Duration;

/// How often the host looks for tables to analyze.
const EVERY: Duration = Duration::from_secs(5);

/// Tables of this database whose changes since they were last analyzed pass
/// autovacuum's default analyze threshold (50 rows and a tenth of the table).
const STALE: &str = "SELECT s.relname AS name FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname = current_schema() \
       AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0) \
     ORDER BY s.relname";

/// Analyzes every stale table (see [`STALE`]); the names of those analyzed.
/// Nothing on SQLite, whose planner reads the indexes as they are.
pub async fn refresh(db: &impl ConnectionTrait) -> Result<Vec<String>, StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Vec::new());
    }
    let rows = db.query_all(Statement::from_string(DbBackend::Postgres, STALE)).await?;
    let mut analyzed = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        db.execute_unprepared(&format!("ANALYZE {quoted}")).await?;
        analyzed.push(name);
    }
    Ok(analyzed)
}

/// Keeps the statistics fresh for as long as the server runs.
pub async fn keep_fresh(db: DatabaseConnection) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match refresh(&db).await {
            Ok(tables) if !tables.is_empty() => tracing::debug!(?tables, "analyzed"),
            Ok(_) => {}
            Err(err) => tracing::warn!("could not refresh table statistics: {err}"),
        }
    }
}
