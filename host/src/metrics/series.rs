//! Series identity: each (plugin, org, generation, metric, projection, label
//! set) gets one id, created on first use, so rollups refer to a small integer.
//!
//! A point lands in its recorded series (its exact labels) and in projections
//! of the metric: the total (no label kept) and one per label (that label
//! kept). A query that groups or filters by at most one label reads a
//! projection, so an org-wide figure is a dozen monthly rows however many
//! repositories and authors it spans.

use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::metric_point;
use crate::store::entities::metric_series::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Labels of a point or series, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// The canonical text of a label set: its JSON with keys in order.
pub fn labels_key(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_default()
}

/// Which points a series holds: those recorded with exactly its labels, or
/// every point of the metric with only the named labels kept.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Projection {
    Recorded,
    Keeping(Vec<String>),
}

impl Projection {
    /// How the projection is stored: `""` for recorded series, else the JSON
    /// list of the labels kept (`[]` for the metric's total).
    pub fn code(&self) -> String {
        match self {
            Projection::Recorded => String::new(),
            Projection::Keeping(names) => serde_json::to_string(names).unwrap_or_default(),
        }
    }

    /// The projection that answers a query grouping or filtering by `labels`
    /// (sorted, distinct): a kept label set when there is at most one label;
    /// recorded series otherwise.
    pub fn for_labels(labels: &[String]) -> Projection {
        if labels.len() <= 1 { Projection::Keeping(labels.to_vec()) } else { Projection::Recorded }
    }
}

/// A series as its identity: metric name, projection and label set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub name: String,
    pub projection: String,
    pub labels_key: String,
}

impl SeriesKey {
    /// Every series a point of metric `name` with `labels` is added to: its
    /// recorded series first, then the total and one per label.
    pub fn of_point(name: &str, labels: &Labels) -> Vec<SeriesKey> {
        let key = |projection: Projection, labels: &Labels| SeriesKey {
            name: name.to_owned(),
            projection: projection.code(),
            labels_key: labels_key(labels),
        };
        let mut keys = vec![key(Projection::Recorded, labels), key(Projection::Keeping(Vec::new()), &Labels::new())];
        for (label, value) in labels {
            let kept = Labels::from([(label.clone(), value.clone())]);
            keys.push(key(Projection::Keeping(vec![label.clone()]), &kept));
        }
        keys
    }
}

/// The ids of these series, creating the ones that do not exist yet.
pub async fn ensure(
    db: &impl ConnectionTrait,
    scope: &Scope,
    wanted: &BTreeSet<SeriesKey>,
) -> Result<HashMap<SeriesKey, i64>, StoreError> {
    let mut ids = find(db, scope, wanted).await?;
    let missing: Vec<&SeriesKey> = wanted.iter().filter(|key| !ids.contains_key(*key)).collect();
    if missing.is_empty() {
        return Ok(ids);
    }
    let rows = missing.iter().map(|key| ActiveModel {
        id: NotSet,
        plugin: Set(scope.plugin.clone()),
        org: Set(scope.org.clone()),
        generation: Set(scope.generation),
        name: Set(key.name.clone()),
        projection: Set(key.projection.clone()),
        labels: Set(serde_json::from_str(&key.labels_key).unwrap_or_default()),
        labels_key: Set(key.labels_key.clone()),
    });
    Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                Column::Plugin,
                Column::Org,
                Column::Generation,
                Column::Name,
                Column::Projection,
                Column::LabelsKey,
            ])
            .do_nothing()
            .to_owned(),
        )
        .do_nothing()
        .exec(db)
        .await?;
    ids.extend(find(db, scope, wanted).await?);
    Ok(ids)
}

async fn find(
    db: &impl ConnectionTrait,
    scope: &Scope,
    wanted: &BTreeSet<SeriesKey>,
) -> Result<HashMap<SeriesKey, i64>, StoreError> {
    let names: BTreeSet<&str> = wanted.iter().map(|key| key.name.as_str()).collect();
    let keys: BTreeSet<&str> = wanted.iter().map(|key| key.labels_key.as_str()).collect();
    let rows = Entity::find()
        .filter(in_scope(scope))
        .filter(Column::Name.is_in(names))
        .filter(Column::LabelsKey.is_in(keys))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (SeriesKey { name: row.name, projection: row.projection, labels_key: row.labels_key }, row.id))
        .filter(|(key, _)| wanted.contains(key))
        .collect())
}

/// The series of each metric, kept in memory so that a query's lookup is one
/// count instead of reading and parsing every series of the metric. Series
/// are only ever added to a scope (a retired generation goes as a whole), so an
/// unchanged count means an unchanged set, whichever replica added them.
/// Cheap to clone; clones share the entries.
#[derive(Clone, Default)]
pub struct SeriesIndex {
    entries: Arc<Mutex<HashMap<IndexKey, SeriesList>>>,
}

/// A metric's series of one projection in one scope.
type IndexKey = (Scope, String, String);

/// Series ids and labels.
pub type SeriesList = Arc<Vec<(i64, Labels)>>;

/// Metrics kept at most; past it the index starts again (a cache, not a store).
const MAX_INDEXED: usize = 4_096;

impl SeriesIndex {
    /// Every series of metric `name` and `projection` in `scope`: its id and labels.
    pub async fn of_metric(
        &self,
        db: &impl ConnectionTrait,
        scope: &Scope,
        name: &str,
        projection: &Projection,
    ) -> Result<SeriesList, StoreError> {
        let key = (scope.clone(), name.to_owned(), projection.code());
        let of_metric = || Entity::find().filter(in_scope(scope)).filter(of_projection(name, projection));
        let count = of_metric().count(db).await?;
        let cached = self.entries.lock().ok().and_then(|entries| entries.get(&key).cloned());
        if let Some(series) = cached
            && series.len() as u64 == count
        {
            return Ok(series);
        }
        let rows = of_metric().all(db).await?;
        let series = Arc::new(rows.iter().map(|row| (row.id, labels_of(row))).collect::<Vec<_>>());
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_INDEXED {
                entries.clear();
            }
            entries.insert(key, series.clone());
        }
        Ok(series)
    }
}

/// Rows of metric `name` and `projection`.
pub fn of_projection(name: &str, projection: &Projection) -> Condition {
    Condition::all().add(Column::Name.eq(name)).add(Column::Projection.eq(projection.code()))
}

/// Rows of `scope`'s plugin, org and generation.
pub fn in_scope(scope: &Scope) -> Condition {
    Condition::all()
        .add(Column::Plugin.eq(scope.plugin.as_str()))
        .add(Column::Org.eq(scope.org.as_str()))
        .add(Column::Generation.eq(scope.generation))
}

/// The labels of a stored point.
pub fn labels_of_point(point: &metric_point::Model) -> Labels {
    serde_json::from_value(point.labels.clone()).unwrap_or_default()
}

/// The labels of a stored series.
pub fn labels_of(row: &Model) -> Labels {
    serde_json::from_value(row.labels.clone()).unwrap_or_default()
}
