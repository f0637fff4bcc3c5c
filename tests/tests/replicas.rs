//! Replicas share the work: three `devpulse serve` processes on one PostgreSQL
//! and Redis run each delivery partition on one replica at a time, under
//! leases. Newcomers take a share; a replica SIGKILLed mid-stream has its
//! partitions taken over within 10 seconds; no batch is handled twice apart
//! from the one the killed replica had not committed; and the figures equal
//! those of an org served by a single replica.

use devpulse::store::entities::{lease, metric_point, org};
use devpulse_e2e::tally::{counts_reaching, kind_of, payload, wait_loaded};
use devpulse_e2e::{ChildServer, PgDatabase, configure_hook, create_org, fixtures, github_headers, redis_url};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "replica test secret";

/// Deliveries per org; four orgs share the stream.
const EVENTS: usize = 240;

async fn replica(dir: &Path, name: &str, url: &str) -> ChildServer {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let log = dir.join(format!("{name}.log"));
    ChildServer::start_logged(&data, &dir.join("plugins"), url, "[delivery]\nbatch_size = 16\n", &redis_url(), &log)
        .await
}

/// The sum of a metric's samples whose line has every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(http: &reqwest::Client, server: &ChildServer) -> String {
    http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap()
}

/// The replica id a server's `/metrics` names.
async fn replica_id(http: &reqwest::Client, server: &ChildServer) -> String {
    let text = metrics(http, server).await;
    let line = text.lines().find(|line| line.starts_with("devpulse_replica_info{")).expect("devpulse_replica_info");
    line.split('"').nth(1).expect("the replica label").to_owned()
}

/// Partitions each server runs, by its `/metrics`.
async fn partitions_held(http: &reqwest::Client, servers: &[&ChildServer]) -> Vec<f64> {
    let mut held = Vec::new();
    for server in servers {
        held.push(metric(&metrics(http, server).await, "devpulse_leases_held", &["kind=\"partition\""]));
    }
    held
}

/// Every delivery partition: each plugin that subscribes to events, in each org.
async fn all_partitions(http: &reqwest::Client, server: &ChildServer, token: &str, orgs: usize) -> f64 {
    let page: Value = http
        .get(format!("{}/api/v1/plugins", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subscribing = page["items"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter(|plugin| plugin["subscriptions"].as_array().is_some_and(|kinds| !kinds.is_empty()))
        .count();
    (subscribing * orgs) as f64
}

/// Creates an org with a GitHub hook; its owner's token and the hook's path.
async fn org_with_hook(http: &reqwest::Client, server: &ChildServer, token: &str, slug: &str) -> (String, String) {
    let owner = create_org(http, &server.base, token, slug).await;
    let hook = configure_hook(http, &server.base, &owner, "github", SECRET).await;
    (owner, hook)
}

/// POSTs delivery `n` to the first of `bases` (rotated by `n`) that answers; the status.
async fn deliver_anywhere(http: &reqwest::Client, bases: &Mutex<Vec<String>>, hook: &str, n: usize) -> u16 {
    let body = payload(n, false);
    let headers = github_headers(SECRET, kind_of(n), &format!("{hook}-{n}"), &body);
    for attempt in 0..20 {
        let base = {
            let bases = bases.lock().unwrap();
            bases[(n + attempt) % bases.len()].clone()
        };
        let request = http.post(format!("{base}{hook}")).body(body.clone());
        let request = headers.iter().fold(request, |request, (name, value)| request.header(*name, value));
        if let Ok(response) = request.send().await {
            return response.status().as_u16();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no replica took delivery {n}");
}

/// One `batch handled` line of a replica's log.
#[derive(Debug)]
struct Batch {
    lease: String,
    from: i64,
    to: i64,
    outcome: String,
}

fn batches(log: &Path) -> Vec<Batch> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let field = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        let value = line[start..].split(' ').next()?;
        Some(value.trim_matches('"').to_owned())
    };
    text.lines()
        .filter(|line| line.contains("batch handled"))
        .filter_map(|line| {
            Some(Batch {
                lease: field(line, "lease")?,
                from: field(line, "from")?.parse().ok()?,
                to: field(line, "to")?.parse().ok()?,
                outcome: field(line, "outcome")?,
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_partitions_and_take_over_a_killed_one() {
    let Some(pg) = PgDatabase::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(fixtures::TALLY_V1, dir.path().join("plugins/tally.wasm")).unwrap();
    let http = reqwest::Client::new();

    // One replica first: it takes every partition.
    let a = replica(dir.path(), "a", &pg.url).await;
    let token = a.token();
    wait_loaded(&http, &a.base, &token).await;
    let mut orgs = vec![(token.clone(), configure_hook(&http, &a.base, &token, "github", SECRET).await)];
    for n in 0..3 {
        orgs.push(org_with_hook(&http, &a, &token, &format!("team{n}")).await);
    }
    let total = all_partitions(&http, &a, &token, orgs.len()).await;

    // Two more: each takes a share, handed over by the first.
    let mut b = replica(dir.path(), "b", &pg.url).await;
    let mut c = replica(dir.path(), "c", &pg.url).await;
    wait_loaded(&http, &b.base, &token).await;
    wait_loaded(&http, &c.base, &token).await;
    let started = Instant::now();
    loop {
        let held = partitions_held(&http, &[&a, &b, &c]).await;
        if held.iter().all(|count| *count > 0.0) && held.iter().sum::<f64>() == total {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the partitions were not shared: {held:?} of {total}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let released = metric(&metrics(&http, &a).await, "devpulse_lease_changes_total", &["change=\"released\""]);
    assert!(released > 0.0, "the first replica handed partitions over to the newcomers");
    let b_id = replica_id(&http, &b).await;

    // A stream of deliveries to all three, round robin; B dies a third of the way in.
    let bases = Arc::new(Mutex::new(vec![a.base.clone(), b.base.clone(), c.base.clone()]));
    let acked = Arc::new(Mutex::new(0usize));
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let (http, bases, acked, orgs) = (http.clone(), bases.clone(), acked.clone(), orgs.clone());
        lanes.spawn(async move {
            for n in (lane..EVENTS).step_by(4) {
                for (_, hook) in &orgs {
                    assert_eq!(deliver_anywhere(&http, &bases, hook, n).await, 202);
                    *acked.lock().unwrap() += 1;
                }
            }
        });
    }
    while *acked.lock().unwrap() < EVENTS * orgs.len() / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let db = devpulse::store::connect(&pg.url).await.unwrap();
    let held_by_b: BTreeSet<String> = lease::Entity::find()
        .filter(lease::Column::Holder.eq(&b_id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|lease| lease.key)
        .filter(|key| key.starts_with("partition/"))
        .collect();
    assert!(!held_by_b.is_empty(), "B ran partitions when it was killed");
    bases.lock().unwrap().retain(|base| *base != b.base);
    b.kill();
    let killed = Instant::now();

    // B's partitions move to A and C within 10 s.
    let moved = loop {
        let now = devpulse::store::now_ms();
        let rows = lease::Entity::find().all(&db).await.unwrap();
        let taken_over = held_by_b
            .iter()
            .all(|key| rows.iter().any(|row| &row.key == key && row.holder != b_id && row.expires_at >= now));
        if taken_over {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "B's partitions were never taken over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(moved < Duration::from_secs(10), "B's partitions moved after {moved:?}");
    eprintln!("B's {} partitions moved to the other replicas after {moved:?}", held_by_b.len());
    let started = Instant::now();
    while partitions_held(&http, &[&a, &c]).await.iter().sum::<f64>() != total {
        assert!(started.elapsed() < Duration::from_secs(10), "A and C's /metrics never showed every partition");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while let Some(lane) = lanes.join_next().await {
        lane.unwrap();
    }

    // Every org's figures are complete.
    let mut figures = Vec::new();
    for (owner, _) in &orgs {
        let counts = counts_reaching(&http, &a.base, owner, EVENTS as u64).await;
        assert_eq!(counts["total"], EVENTS as u64, "{counts}");
        figures.push(counts["kinds"].clone());
    }

    // The reference: one more org, served by a single replica (C is killed too).
    c.kill();
    let (reference, hook) = org_with_hook(&http, &a, &token, "reference").await;
    let single = Mutex::new(vec![a.base.clone()]);
    for n in 0..EVENTS {
        assert_eq!(deliver_anywhere(&http, &single, &hook, n).await, 202);
    }
    let counts = counts_reaching(&http, &a.base, &reference, EVENTS as u64).await;
    for kinds in &figures {
        assert_eq!(kinds, &counts["kinds"], "the replicas' figures equal the single replica's");
    }
    let points = metric_point::Entity::find().filter(metric_point::Column::Plugin.eq("tally")).all(&db).await.unwrap();
    let orgs_now = org::Entity::find().all(&db).await.unwrap();
    for org in &orgs_now {
        let in_org = points.iter().filter(|point| point.org == org.id).count();
        assert_eq!(in_org, EVENTS, "{}: one metric point per event", org.slug);
    }

    // No batch was handled twice: every batch any replica finished committed,
    // and the committed ranges of a partition do not overlap. (The batch B had
    // in hand when it died left no line and no effect.)
    let mut ranges: BTreeMap<String, Vec<(i64, i64, &str)>> = BTreeMap::new();
    let logs: Vec<(&str, Vec<Batch>)> =
        ["a", "b", "c"].iter().map(|name| (*name, batches(&dir.path().join(format!("{name}.log"))))).collect();
    for (name, batches) in &logs {
        assert!(!batches.is_empty(), "replica {name} handled batches");
        for batch in batches {
            assert_eq!(batch.outcome, "committed", "replica {name} did work it could not commit: {batch:?}");
            ranges.entry(batch.lease.clone()).or_default().push((batch.from, batch.to, name));
        }
    }
    let mut handled_by = BTreeMap::<&str, usize>::new();
    for (lease, mut ranges) in ranges {
        ranges.sort();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{lease}: {:?} and {:?} overlap", pair[0], pair[1]);
        }
        for (_, _, name) in ranges {
            *handled_by.entry(name).or_default() += 1;
        }
    }
    eprintln!("batches committed per replica: {handled_by:?}");
    db.close().await.unwrap();
    drop((a, b, c));
    pg.drop_now().await;
}
