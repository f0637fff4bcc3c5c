//! The event log's SQL: appending in commit order, and reading it back.
//!
//! Every insert into the log holds the log lock until its transaction commits:
//! on PostgreSQL a statement trigger takes a transaction-scoped advisory lock
//! before the first row draws its `seq` (migration m0010); SQLite has one
//! writer anyway. So `seq` grows in commit order, and a delivery cursor that
//! has passed position N never misses a row committed later with a smaller N.

use crate::store::StoreError;
use crate::store::entities::event::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::{Expr, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, Set, TryInsertResult,
};
use serde_json::Value;
use std::collections::HashMap;

/// Any fixed number: the advisory lock every insert into the log takes on PostgreSQL.
pub const LOG_LOCK: i64 = 0x6465_7670_756c_7365; // "devpulse"

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub id: String,
    pub org: String,
    pub source: String,
    pub kind: String,
    /// Deliveries with the same key from the same source in the same org are stored once.
    pub dedupe_key: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub payload: Value,
    pub cause: Option<String>,
    pub depth: i32,
    /// The user the event is about, shown the event alone.
    pub subject: Option<String>,
}

impl NewEntry {
    /// An event arriving now from outside any plugin call (a webhook, the host
    /// itself): no cause, at depth 0, about no one.
    pub fn arriving(org: &str, source: &str, kind: &str, payload: Value, dedupe_key: Option<String>) -> Self {
        let now = crate::store::now_ms();
        NewEntry {
            id: ulid::Ulid::new().to_string(),
            org: org.to_owned(),
            source: source.to_owned(),
            kind: kind.to_owned(),
            dedupe_key,
            occurred_at: now,
            received_at: now,
            payload,
            cause: None,
            depth: 0,
            subject: None,
        }
    }
}

/// Where an appended entry ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The stored event's id: the new one, or the original's for a duplicate.
    pub id: String,
    pub seq: i64,
    pub duplicate: bool,
}

/// Appends `entries` on `db` in one statement: atomic by itself, or part of the
/// caller's transaction. Entries whose dedupe key is already stored (or
/// repeated within `entries`) are not stored again.
pub async fn append(db: &impl ConnectionTrait, entries: Vec<NewEntry>) -> Result<Vec<Appended>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // The first of several entries with one dedupe key is the one stored.
    let dedupe = |entry: &NewEntry| entry.dedupe_key.clone().map(|key| (entry.org.clone(), entry.source.clone(), key));
    let mut first_of: HashMap<(String, String, String), usize> = HashMap::new();
    let mut unique = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        match dedupe(entry) {
            Some(key) if first_of.contains_key(&key) => {}
            Some(key) => {
                first_of.insert(key, index);
                unique.push(entry);
            }
            None => unique.push(entry),
        }
    }
    let rows = unique.iter().map(|entry| ActiveModel {
        seq: NotSet,
        id: Set(entry.id.clone()),
        org: Set(entry.org.clone()),
        source: Set(entry.source.clone()),
        kind: Set(entry.kind.clone()),
        dedupe_key: Set(entry.dedupe_key.clone()),
        occurred_at: Set(entry.occurred_at),
        received_at: Set(entry.received_at),
        payload: Set(entry.payload.clone()),
        cause: Set(entry.cause.clone()),
        depth: Set(entry.depth),
        subject: Set(entry.subject.clone()),
    });
    let inserted = match Entity::insert_many(rows)
        .on_conflict(OnConflict::columns([Column::Org, Column::Source, Column::DedupeKey]).do_nothing().to_owned())
        .do_nothing()
        .exec_with_returning_many(db)
        .await?
    {
        TryInsertResult::Inserted(rows) => rows,
        TryInsertResult::Conflicted | TryInsertResult::Empty => Vec::new(),
    };
    let seq_of: HashMap<String, i64> = inserted.into_iter().map(|row| (row.id, row.seq)).collect();
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        if let Some(seq) = seq_of.get(&entry.id) {
            out.push(Appended { id: entry.id.clone(), seq: *seq, duplicate: false });
            continue;
        }
        // A duplicate: of an entry earlier in this batch, or of a stored event.
        let (org, source, key) = dedupe(entry).ok_or_else(|| {
            StoreError::Db(sea_orm::DbErr::Custom(format!("event {} was neither stored nor a duplicate", entry.id)))
        })?;
        let original = match first_of.get(&(org.clone(), source.clone(), key.clone())).map(|&i| &entries[i]) {
            Some(first) if first.id != entry.id && seq_of.contains_key(&first.id) => {
                Appended { id: first.id.clone(), seq: seq_of[&first.id], duplicate: true }
            }
            _ => {
                let stored = by_dedupe_key(db, &org, &source, &key).await?.ok_or_else(|| {
                    StoreError::Db(sea_orm::DbErr::Custom(format!("duplicate of {key} not found in the log")))
                })?;
                Appended { id: stored.id, seq: stored.seq, duplicate: true }
            }
        };
        out.push(original);
    }
    Ok(out)
}

async fn by_dedupe_key(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    key: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find()
        .filter(Column::Org.eq(org))
        .filter(Column::Source.eq(source))
        .filter(Column::DedupeKey.eq(key))
        .one(db)
        .await?)
}

/// The SQL form of subscription patterns: `kind`, `prefix.*` or `*`.
pub fn matching(patterns: &[String]) -> Condition {
    let mut any = Condition::any();
    for pattern in patterns {
        any = match pattern.strip_suffix('*') {
            Some("") => return Condition::all(),
            // Kinds are [a-z0-9._-]: only `_` needs escaping in LIKE.
            Some(prefix) => {
                any.add(Column::Kind.like(LikeExpr::new(format!("{}%", prefix.replace('_', "\\_"))).escape('\\')))
            }
            None => any.add(Column::Kind.eq(pattern.as_str())),
        };
    }
    any
}

/// True when `kind` matches one of `patterns`; the in-memory twin of [`matching`].
pub fn matches(patterns: &[String], kind: &str) -> bool {
    patterns.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == pattern,
    })
}

/// The next events of `org` after position `after` that match `patterns`, in log order.
pub async fn next_batch(
    db: &impl ConnectionTrait,
    org: &str,
    after: i64,
    patterns: &[String],
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    Ok(batch_query(org, after, patterns, limit).all(db).await?)
}

/// The query [`next_batch`] runs, public so its plan can be inspected.
pub fn batch_query(org: &str, after: i64, patterns: &[String], limit: u64) -> Select<Entity> {
    Entity::find()
        .filter(Column::Org.eq(org))
        .filter(Column::Seq.gt(after))
        .filter(matching(patterns))
        .order_by_asc(Column::Seq)
        .limit(limit)
}

/// How many events of `org` after `after` match `patterns`, and the oldest one's receipt time.
pub async fn backlog(
    db: &impl ConnectionTrait,
    org: &str,
    after: i64,
    patterns: &[String],
) -> Result<(u64, Option<i64>), StoreError> {
    let row: Option<(i64, Option<i64>)> = Entity::find()
        .select_only()
        .column_as(Expr::col(Column::Seq).count(), "behind")
        .column_as(Expr::col(Column::ReceivedAt).min(), "oldest")
        .filter(Column::Org.eq(org))
        .filter(Column::Seq.gt(after))
        .filter(matching(patterns))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map_or((0, None), |(behind, oldest)| (behind as u64, oldest)))
}

/// The highest position in the log of `org`, 0 when empty.
pub async fn head(db: &impl ConnectionTrait, org: &str) -> Result<i64, StoreError> {
    last_seq(db, Entity::find().filter(Column::Org.eq(org))).await
}

/// The last position `query` finds, 0 for none. Written as `ORDER BY seq DESC
/// LIMIT 1`, not `MAX(seq)`: PostgreSQL then reads one index entry whatever
/// its statistics say, where a `MAX` planned while the log looked empty (a new
/// database, before its first ANALYZE) aggregated every row of the org on each call.
async fn last_seq(db: &impl ConnectionTrait, query: sea_orm::Select<Entity>) -> Result<i64, StoreError> {
    let last: Option<i64> =
        query.select_only().column(Column::Seq).order_by_desc(Column::Seq).limit(1).into_tuple().one(db).await?;
    Ok(last.unwrap_or(0))
}

/// One event of `org` by its id, if `reader` may read it.
pub async fn get(
    db: &impl ConnectionTrait,
    org: &str,
    reader: &Reader<'_>,
    id: &str,
) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find().filter(Column::Org.eq(org)).filter(Column::Id.eq(id)).filter(readable_by(reader)).one(db).await?)
}

/// Events of every org after position `after`, in log order: what the live
/// stream fans out.
pub async fn after(db: &impl ConnectionTrait, after: i64, limit: u64) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find().filter(Column::Seq.gt(after)).order_by_asc(Column::Seq).limit(limit).all(db).await?)
}

/// The highest position of the whole log, 0 when empty.
pub async fn end(db: &impl ConnectionTrait) -> Result<i64, StoreError> {
    last_seq(db, Entity::find()).await
}

/// One event by its position.
pub async fn at(db: &impl ConnectionTrait, seq: i64) -> Result<Option<Model>, StoreError> {
    Ok(Entity::find_by_id(seq).one(db).await?)
}

/// Filters of the event list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub source: Option<String>,
    /// Kinds or patterns (`github.*`); empty: every kind.
    pub kinds: Vec<String>,
    /// Occurred at or after, in milliseconds since the epoch.
    pub from: Option<i64>,
    /// Occurred before.
    pub to: Option<i64>,
}

/// The source of alert transitions in the log (`alerts.raised`, ...).
pub const ALERTS_SOURCE: &str = "alerts";

/// Who reads the log, and what decides it.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    pub user: &'a str,
    /// Managers and above read every alert transition of the org.
    pub manager: bool,
}

impl<'a> Reader<'a> {
    pub fn of(principal: &'a crate::auth::Principal) -> Self {
        Reader { user: &principal.user_id, manager: principal.role >= crate::auth::Role::Manager }
    }
}

/// Who reads the log: events about a person are theirs alone, except alert
/// transitions, which follow the alerts' own rule: one about a person is theirs
/// and their managers', the others are for managers and above.
pub fn readable_by(reader: &Reader<'_>) -> Condition {
    let not_alert = Column::Source.ne(ALERTS_SOURCE);
    let own = Column::Subject.eq(reader.user);
    if reader.manager {
        return Condition::any().add(Column::Subject.is_null()).add(own).add(Column::Source.eq(ALERTS_SOURCE));
    }
    Condition::any().add(Condition::all().add(Column::Subject.is_null()).add(not_alert)).add(own)
}

/// True when `reader` may read `event`; the in-memory twin of [`readable_by`].
pub fn may_read(reader: &Reader<'_>, event: &Model) -> bool {
    match event.subject.as_deref() {
        Some(subject) if subject == reader.user => true,
        _ if event.source == ALERTS_SOURCE => reader.manager,
        Some(_) => false,
        None => true,
    }
}

/// Events of `org` that `reader` may read, in log order after position `after`.
pub async fn list(
    db: &impl ConnectionTrait,
    org: &str,
    reader: &Reader<'_>,
    filter: &Filter,
    after: i64,
    limit: u64,
) -> Result<Vec<Model>, StoreError> {
    let mut query =
        Entity::find().filter(Column::Org.eq(org)).filter(readable_by(reader)).filter(Column::Seq.gt(after));
    if let Some(source) = &filter.source {
        query = query.filter(Column::Source.eq(source.as_str()));
    }
    if !filter.kinds.is_empty() {
        query = query.filter(matching(&filter.kinds));
    }
    if let Some(from) = filter.from {
        query = query.filter(Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(Column::OccurredAt.lt(to));
    }
    Ok(query.order_by_asc(Column::Seq).limit(limit).all(db).await?)
}
