//! `/api/v1/metrics`: the metric points plugins record, listed as series and
//! queried from rollups. Definitions of what each metric means live with the
//! plugin that records it (`docs/metrics.md` for the bundled ones).

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::{Cursor, LabelFilter, TimeZone};
use crate::auth::Role;
use crate::metrics::query::{self, Agg, QueryError, Step};
use crate::metrics::series;
use crate::store::documents::Scope;
use crate::store::entities::metric_series;
use chrono::Offset;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::BTreeMap;

#[derive(Tags)]
enum MetricTag {
    /// Metric points recorded by plugins, served from rollups.
    Metrics,
}

/// One series: a metric of a plugin and one set of label values.
#[derive(Object)]
pub struct SeriesView {
    pub plugin: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SeriesPage {
    pub items: Vec<SeriesView>,
    pub next_cursor: Option<String>,
}

/// One bucket holding points.
#[derive(Object)]
pub struct BucketView {
    /// Start of the bucket: a step boundary in the query's time zone, or `from`
    /// for the first bucket.
    pub start: chrono::DateTime<chrono::FixedOffset>,
    /// The aggregate of the bucket's points.
    pub value: f64,
    /// How many points the bucket holds.
    pub count: u64,
}

/// One group: the values of the `group_by` labels, and its buckets.
#[derive(Object)]
pub struct GroupView {
    pub labels: BTreeMap<String, String>,
    pub buckets: Vec<BucketView>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct QueryResult {
    pub plugin: String,
    pub name: String,
    pub agg: Agg,
    /// Absent for one bucket over the whole range.
    pub step: Option<Step>,
    pub tz: TimeZone,
    pub from: chrono::DateTime<chrono::FixedOffset>,
    /// The end of the range answered: `to` as asked, or where the 10,000th bucket ends.
    pub to: chrono::DateTime<chrono::FixedOffset>,
    /// True when the range held more buckets than one answer carries.
    pub truncated: bool,
    /// Groups in label order; groups without points are left out.
    pub series: Vec<GroupView>,
}

pub struct MetricsApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "MetricTag::Metrics")]
impl MetricsApi {
    /// The series (plugin, metric name and label values) recorded in the
    /// caller's org, ordered by plugin, name and labels. Manager or above.
    #[oai(path = "/metrics/series", method = "get", operation_id = "listMetricSeries")]
    async fn series(
        &self,
        auth: BearerAuth,
        /// Only this plugin's series.
        plugin: Query<Option<String>>,
        /// Only this metric.
        name: Query<Option<String>>,
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))] limit: Query<u32>,
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<SeriesPage>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let db = self.state.runtime.reader();
        let after = cursor.0.map(|cursor| cursor.0);
        let plugins: Vec<String> = metric_series::Entity::find()
            .select_only()
            .column(metric_series::Column::Plugin)
            .distinct()
            .filter(metric_series::Column::Org.eq(principal.org_id.as_str()))
            .into_tuple()
            .all(db)
            .await?;
        // Only the live generation of each plugin: a rebuild in progress is not shown.
        let mut live = Condition::any();
        for name in plugins.iter().filter(|name| plugin.0.as_ref().is_none_or(|wanted| wanted == *name)) {
            let generation = self.state.bus.generations().live(name, &principal.org_id).await?;
            live = live.add(
                Condition::all()
                    .add(metric_series::Column::Plugin.eq(name.as_str()))
                    .add(metric_series::Column::Generation.eq(generation)),
            );
        }
        if live.is_empty() {
            return Ok(Json(SeriesPage { items: Vec::new(), next_cursor: None }));
        }
        let mut select = metric_series::Entity::find()
            .filter(metric_series::Column::Org.eq(principal.org_id.as_str()))
            .filter(metric_series::Column::Projection.eq(series::Projection::Recorded.code()))
            .filter(live)
            .order_by_asc(metric_series::Column::Plugin)
            .order_by_asc(metric_series::Column::Name)
            .order_by_asc(metric_series::Column::LabelsKey);
        if let Some(name) = &name.0 {
            select = select.filter(metric_series::Column::Name.eq(name.as_str()));
        }
        let rows = select.all(db).await?;
        let keyed = rows
            .into_iter()
            .map(|row| {
                let key = format!("{}\u{0}{}\u{0}{}", row.plugin, row.name, row.labels_key);
                let labels = series::labels_of(&row);
                (key, SeriesView { plugin: row.plugin, name: row.name, labels })
            })
            .collect();
        let (items, next_cursor) = pagination::page(keyed, after.as_deref(), limit.0);
        Ok(Json(SeriesPage { items, next_cursor }))
    }

    /// A metric's points between `from` (inclusive) and `to` (exclusive),
    /// filtered and grouped by labels, in buckets of `step` in the time zone
    /// `tz`, each reduced by `agg`. Percentiles (`p50`, `p90`, `p95`) are the
    /// value at rank ⌊q·(n−1)⌋ of the sorted points, within 1% (a DDSketch
    /// merged from rollups). Day and week buckets follow the zone's midnights,
    /// so a day across a DST change lasts 23 or 25 hours. A range that holds
    /// more than 10,000 buckets is answered up to its 10,000th (`truncated`,
    /// with the `to` actually used); a `to` at or before `from` holds nothing.
    /// Manager or above.
    #[oai(path = "/metrics/query", method = "get", operation_id = "queryMetric")]
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &self,
        auth: BearerAuth,
        /// The plugin that records the metric.
        plugin: Query<String>,
        /// The metric name.
        name: Query<String>,
        /// Start of the range (RFC 3339).
        from: Query<chrono::DateTime<chrono::FixedOffset>>,
        /// End of the range, exclusive (RFC 3339).
        to: Query<chrono::DateTime<chrono::FixedOffset>>,
        /// Bucket width (weeks start on Monday); absent: one bucket for the range.
        step: Query<Option<Step>>,
        /// How each bucket's points become one number.
        #[oai(default)]
        agg: Query<Agg>,
        /// Labels to group by: repeat the parameter or separate with commas.
        group_by: Query<Vec<String>>,
        /// Repeatable; every one must match.
        filter: Query<Vec<LabelFilter>>,
        /// Time zone of the bucket edges.
        #[oai(default)]
        tz: Query<TimeZone>,
    ) -> Result<Json<QueryResult>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Manager).await?;
        let filter = filter.0.into_iter().map(|filter| (filter.label, filter.value)).collect();
        let mut query = query::Query {
            name: name.0.clone(),
            from: from.0.timestamp_millis(),
            to: to.0.timestamp_millis().max(from.0.timestamp_millis()),
            step: step.0,
            agg: agg.0,
            group_by: group_by.0.iter().flat_map(|labels| labels.split(',')).map(str::to_owned).collect(),
            filter,
            tz: tz.0.0,
        };
        let truncated = match query::capped_end(&query) {
            Some(end) => {
                query.to = end;
                true
            }
            None => false,
        };
        let groups = if query.from < query.to {
            let generation = self.state.bus.generations().live(&plugin.0, &principal.org_id).await?;
            let scope = Scope { plugin: plugin.0.clone(), org: principal.org_id.clone(), generation };
            query::run(self.state.runtime.reader(), self.state.runtime.series_index(), &scope, &query)
                .await
                .map_err(bad)?
        } else {
            Vec::new()
        };
        let local = |at: i64| {
            let utc = chrono::DateTime::from_timestamp_millis(at)?;
            Some(utc.with_timezone(&utc.with_timezone(&query.tz).offset().fix()))
        };
        let series = groups
            .into_iter()
            .map(|group| GroupView {
                labels: group.labels,
                buckets: group
                    .buckets
                    .into_iter()
                    .filter_map(|bucket| {
                        Some(BucketView { start: local(bucket.start)?, value: bucket.value, count: bucket.count })
                    })
                    .collect(),
            })
            .collect();
        Ok(Json(QueryResult {
            plugin: plugin.0,
            name: name.0,
            agg: agg.0,
            step: step.0,
            tz: tz.0,
            from: from.0,
            to: local(query.to).unwrap_or(to.0),
            truncated,
            series,
        }))
    }
}

fn bad(err: QueryError) -> ApiError {
    match err {
        QueryError::Invalid(why) => ApiError::bad_request(why),
        QueryError::Store(err) => err.into(),
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
