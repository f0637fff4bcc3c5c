//! The metrics store on both backends: whatever mix of monthly, daily and
//! hourly rollups, projections and raw points a query is answered from, it
//! gives what computing it from the points themselves gives (counts, min and
//! max exactly, sums to rounding, percentiles within the sketch's 1%), for
//! keyed points that replaced earlier ones too; and the migration that adds
//! monthly rollups and projections fills them from what was recorded before.

use devpulse::metrics::query::{self, Agg, Query, Series, Step};
use devpulse::metrics::rollup::{self, NewPoint};
use devpulse::metrics::series::{Labels, SeriesIndex};
use devpulse::metrics::sketch::{RELATIVE_ACCURACY, Sketch};
use devpulse::store::documents::Scope;
use devpulse::store::migration::Migrator;
use devpulse_e2e::{Backend, ScratchDatabase, on_both_backends};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use std::collections::{BTreeMap, HashMap};

const NAME: &str = "lead_time_s";

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

fn scope() -> Scope {
    Scope { plugin: "github".into(), org: "acme".into(), generation: 0 }
}

/// A small deterministic generator (no seed to pass around, same points every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Batches of points as calls record them: over 2026, two authors, three
/// repositories (a fourth from the 16th batch on), values from zero to days,
/// some keyed and later replaced.
fn history() -> Vec<Vec<NewPoint>> {
    let mut random = Lcg(7);
    let year = ms("2026-01-01T00:00:00Z");
    let span = (ms("2027-01-01T00:00:00Z") - year) as u64;
    let point = |key: Option<String>, repos: u64, random: &mut Lcg| {
        let labels: Labels = [
            ("repo".to_owned(), format!("svc{}", random.next(repos))),
            ("author".to_owned(), ["ada", "bob"][random.next(2) as usize].to_owned()),
        ]
        .into();
        let value = match random.next(4) {
            0 => 0.0,
            1 => random.next(100) as f64 / 7.0,
            _ => random.next(5 * 86_400) as f64,
        };
        NewPoint { name: NAME.into(), labels, time: year + random.next(span) as i64, value, key }
    };
    let mut batches = Vec::new();
    for batch in 0..30 {
        let repos = if batch < 15 { 3 } else { 4 };
        let key = |index: u64| index.is_multiple_of(10).then(|| format!("k{}", (batch * 7 + index) % 40));
        batches.push((0..100).map(|index| point(key(index), repos, &mut random)).collect());
    }
    batches
}

/// The points that stand once `batches` are recorded: a keyed point replaces
/// the one recorded earlier under its key.
fn standing(batches: &[Vec<NewPoint>]) -> Vec<NewPoint> {
    let mut standing: Vec<NewPoint> = Vec::new();
    let mut keyed: HashMap<String, NewPoint> = HashMap::new();
    for point in batches.iter().flatten() {
        match &point.key {
            Some(key) => {
                keyed.insert(key.clone(), point.clone());
            }
            None => standing.push(point.clone()),
        }
    }
    standing.extend(keyed.into_values());
    standing
}

/// The query computed from the points themselves; percentiles are the exact
/// value at rank ⌊q·(n−1)⌋.
fn expected(points: &[NewPoint], query: &Query) -> Vec<Series> {
    let edges = query::edges(query).unwrap();
    let mut cells: BTreeMap<(Labels, usize), Vec<f64>> = BTreeMap::new();
    for point in points {
        let selected = query.filter.iter().all(|(name, value)| point.labels.get(name) == Some(value));
        if point.name != query.name || !selected || point.time < query.from || point.time >= query.to {
            continue;
        }
        let group = point.labels.iter().filter(|(name, _)| query.group_by.contains(name));
        let bucket = edges.partition_point(|edge| *edge <= point.time) - 1;
        let group = group.map(|(name, value)| (name.clone(), value.clone())).collect();
        cells.entry((group, bucket)).or_default().push(point.value);
    }
    let mut series: Vec<Series> = Vec::new();
    for ((labels, bucket), mut values) in cells {
        values.sort_by(f64::total_cmp);
        let at_rank = |q: f64| values[(q * (values.len() - 1) as f64).floor() as usize];
        let value = match query.agg {
            Agg::P50 => at_rank(0.5),
            Agg::P90 => at_rank(0.9),
            Agg::P95 => at_rank(0.95),
            other => {
                let mut sketch = Sketch::default();
                values.iter().for_each(|value| sketch.add(*value));
                other.of(&sketch).unwrap()
            }
        };
        let bucket = query::Bucket { start: edges[bucket], value, count: values.len() as u64 };
        match series.last_mut() {
            Some(last) if last.labels == labels => last.buckets.push(bucket),
            _ => series.push(Series { labels, buckets: vec![bucket] }),
        }
    }
    series
}

fn assert_same(actual: &[Series], expected: &[Series], query: &Query) {
    let what =
        format!("{:?} {:?} {:?} by {:?} where {:?}", query.agg, query.step, query.tz, query.group_by, query.filter);
    assert_eq!(actual.len(), expected.len(), "groups of {what}");
    for (actual, expected) in actual.iter().zip(expected) {
        assert_eq!(actual.labels, expected.labels, "{what}");
        let starts =
            |series: &Series| series.buckets.iter().map(|bucket| (bucket.start, bucket.count)).collect::<Vec<_>>();
        assert_eq!(starts(actual), starts(expected), "buckets and counts of {what}");
        for (got, want) in actual.buckets.iter().zip(&expected.buckets) {
            let tolerance = match query.agg {
                // Sums merge in another order (and subtract replaced points): rounding only.
                Agg::Sum | Agg::Avg => 1e-9 * want.value.abs().max(1.0),
                // The sketch's documented accuracy.
                Agg::P50 | Agg::P90 | Agg::P95 => RELATIVE_ACCURACY * want.value.abs(),
                Agg::Count | Agg::Min | Agg::Max => 0.0,
            };
            assert!(
                (got.value - want.value).abs() <= tolerance,
                "{what} at {}: {} != {}",
                got.start,
                got.value,
                want.value
            );
        }
    }
}

/// Labels to group by, and label filters.
type Grouping = (&'static [&'static str], &'static [(&'static str, &'static str)]);

fn queries() -> Vec<Query> {
    let windows = [
        (ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z")),
        (ms("2026-03-14T09:26:53.589Z"), ms("2026-08-02T17:05:00Z")),
        (ms("2026-10-24T00:00:00+02:00"), ms("2026-11-05T00:00:00+01:00")),
    ];
    let zones = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"];
    let steps = [None, Some(Step::Day), Some(Step::Week), Some(Step::Hour)];
    let aggs = [Agg::Count, Agg::Sum, Agg::P90, Agg::Min, Agg::Max, Agg::Avg, Agg::P50, Agg::P95];
    // Read from the total, a one-label projection, a filtered one, and recorded series.
    let groupings: [Grouping; 4] =
        [(&[], &[]), (&["repo"], &[]), (&[], &[("author", "ada")]), (&["repo", "author"], &[("author", "ada")])];
    let mut queries = Vec::new();
    let mut turn = 0;
    for (from, to) in windows {
        for zone in zones {
            for step in steps {
                // Hourly buckets over the short window only.
                if step == Some(Step::Hour) && to - from > 40 * 86_400_000 {
                    continue;
                }
                let (group_by, filter) = groupings[turn % groupings.len()];
                queries.push(Query {
                    name: NAME.into(),
                    from,
                    to,
                    step,
                    agg: aggs[turn % aggs.len()],
                    group_by: group_by.iter().map(|label| label.to_string()).collect(),
                    filter: filter.iter().map(|(label, value)| (label.to_string(), value.to_string())).collect(),
                    tz: query::time_zone(zone).unwrap(),
                });
                turn += 1;
            }
        }
    }
    // Every aggregation over the window that starts and ends off the hour, one bucket.
    let (from, to) = windows[1];
    for agg in aggs {
        let tz = query::time_zone("UTC").unwrap();
        queries.push(Query { name: NAME.into(), from, to, step: None, agg, group_by: vec![], filter: vec![], tz });
    }
    queries
}

async fn record(db: &DatabaseConnection, batches: &[Vec<NewPoint>]) {
    for batch in batches {
        rollup::record(db, &scope(), batch.clone()).await.unwrap();
    }
}

async fn queries_agree_with_the_points_they_cover(backend: Backend) {
    let Some(scratch) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = scratch.connect().await;
    let index = SeriesIndex::default();
    let batches = history();
    // Half the history, then all of it: the index notices the new series.
    let (first, rest) = batches.split_at(15);
    for (recording, upto) in [(first, 15), (rest, batches.len())] {
        record(&db, recording).await;
        let standing = standing(&batches[..upto]);
        for query in queries() {
            let actual = query::run(&db, &index, &scope(), &query).await.unwrap();
            assert_same(&actual, &expected(&standing, &query), &query);
        }
    }
    db.close().await.unwrap();
    scratch.drop_now().await;
}

/// One read answers every aggregation it holds what for: a percentile read
/// gives the other percentiles and the counts, a count read no percentile,
/// and min or max (recorded series) neither way.
async fn a_read_answers_the_aggregations_it_covers(backend: Backend) {
    let Some(scratch) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = scratch.connect().await;
    let batches = history();
    record(&db, &batches).await;
    let standing = standing(&batches);
    let index = SeriesIndex::default();
    let base = Query { group_by: vec!["repo".into()], ..queries()[0].clone() };
    let with = |agg| Query { agg, ..base.clone() };
    let p50 = query::read(&db, &index, &scope(), &with(Agg::P50)).await.unwrap();
    for agg in [Agg::P50, Agg::P90, Agg::P95, Agg::Count, Agg::Sum, Agg::Avg] {
        assert!(p50.answers(&with(agg)), "{agg:?}");
        assert_same(&p50.series(agg), &expected(&standing, &with(agg)), &with(agg));
    }
    for agg in [Agg::Min, Agg::Max] {
        assert!(!p50.answers(&with(agg)), "{agg:?} reads recorded series");
    }
    let count = query::read(&db, &index, &scope(), &with(Agg::Count)).await.unwrap();
    assert!(!count.answers(&with(Agg::P90)), "a count read has no bins");
    assert!(!p50.answers(&Query { filter: vec![("author".into(), "ada".into())], ..with(Agg::P90) }));
    db.close().await.unwrap();
    scratch.drop_now().await;
}

/// Writes `points` as the schema before monthly rollups and projections held
/// them: recorded series with hourly and daily rollups and bins.
async fn record_as_before_projections(db: &DatabaseConnection, points: &[NewPoint]) {
    let txn = db.begin().await.unwrap();
    let db = &txn;
    let mut series: BTreeMap<String, i64> = BTreeMap::new();
    let mut rollups: BTreeMap<(i64, i16, i64), Sketch> = BTreeMap::new();
    for point in points {
        let labels = serde_json::to_string(&point.labels).unwrap();
        if !series.contains_key(&labels) {
            let insert = format!(
                "INSERT INTO metric_series (plugin, org, generation, name, labels, labels_key) \
                 VALUES ('github', 'acme', 0, '{NAME}', '{labels}', '{labels}') RETURNING id"
            );
            let row = db.query_one(Statement::from_string(db.get_database_backend(), insert)).await.unwrap().unwrap();
            series.insert(labels.clone(), row.try_get::<i64>("", "id").unwrap());
        }
        for (level, width) in [(0, 3_600_000), (1, 86_400_000)] {
            let bucket = point.time.div_euclid(width) * width;
            rollups.entry((series[&labels], level, bucket)).or_default().add(point.value);
        }
    }
    for ((id, level, bucket), sketch) in &rollups {
        let (count, sum, min, max) = (sketch.count, sketch.sum, sketch.min, sketch.max);
        let insert =
            format!("INSERT INTO metric_rollup VALUES ({id}, {level}, {bucket}, {count}, {sum:?}, {min:?}, {max:?})");
        db.execute_unprepared(&insert).await.unwrap();
        for (bin, count) in sketch.bins() {
            let insert = format!("INSERT INTO metric_rollup_bin VALUES ({id}, {level}, {bucket}, {bin}, {count})");
            db.execute_unprepared(&insert).await.unwrap();
        }
    }
    txn.commit().await.unwrap();
}

async fn the_migration_fills_months_and_projections_from_what_was_recorded(backend: Backend) {
    let Some(scratch) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = Database::connect(&scratch.url).await.unwrap();
    Migrator::up(&db, Some(4)).await.unwrap();
    let standing = standing(&history());
    record_as_before_projections(&db, &standing).await;
    db.close().await.unwrap();

    let db = scratch.connect().await;
    let year = &queries()[0];
    for agg in [Agg::Count, Agg::Sum, Agg::Min, Agg::Max, Agg::P50, Agg::P95] {
        let groupings = [
            (vec![], vec![]),
            (vec!["repo".to_owned()], vec![]),
            (vec![], vec![("author".to_owned(), "ada".to_owned())]),
        ];
        for (group_by, filter) in groupings {
            let query = Query { agg, group_by, filter, ..year.clone() };
            let actual = query::run(&db, &SeriesIndex::default(), &scope(), &query).await.unwrap();
            assert_same(&actual, &expected(&standing, &query), &query);
        }
    }
    db.close().await.unwrap();
    scratch.drop_now().await;
}

on_both_backends!(
    queries_agree_with_the_points_they_cover,
    a_read_answers_the_aggregations_it_covers,
    the_migration_fills_months_and_projections_from_what_was_recorded
);
