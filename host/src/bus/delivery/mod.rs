//! Delivery of the event log to subscribed plugins.
//!
//! A supervisor keeps one worker task per partition: (plugin, org) for the live
//! generation of the plugin's state, plus one per rebuild in progress. Each
//! worker is independent, so a slow or failing plugin delays only itself.
//! With several replicas, each runs the partitions it holds a lease on
//! (`bus::leases`).

pub mod cursors;
mod worker;

use super::Bus;
use crate::bus::generations;
use crate::bus::log;
use crate::bus::wake::News;
use crate::config::DeliveryConfig;
use crate::runtime::Runtime;
use crate::store::entities::org;
use crate::store::{StoreError, now_ms};

use sea_orm::EntityTrait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};

/// How often the supervisor reconciles partitions with plugins, orgs and
/// rebuilds, and renews its leases: well within `lease_seconds`.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// How often the lag gauges are refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// The unit of ordered delivery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Partition {
    pub plugin: String,
    pub org: String,
    pub generation: i64,
    /// True for a rebuild's generation, which is not live yet.
    pub building: bool,
}

impl Partition {
    /// The lease under which one replica at a time runs the partition.
    pub fn lease_key(&self) -> String {
        format!("partition/{}/{}/{}", self.plugin, self.org, self.generation)
    }
}

struct Worker {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// Workers end with the supervisor: aborting it (server stop) aborts them, and
/// a batch cut short commits nothing.
impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The wait before retry number `attempts` (1-based): doubling, capped.
pub(crate) fn backoff(config: &DeliveryConfig, attempts: i32) -> Duration {
    let factor = 1u64 << (attempts - 1).clamp(0, 30);
    Duration::from_millis(config.backoff_ms.saturating_mul(factor).min(config.max_backoff_ms))
}

/// Runs delivery until the task is aborted: each second, takes this
/// replica's share of the partitions, schedules and watches under leases, runs a worker
/// for each partition it holds, and stops the others' (a partition handed over
/// to another replica is released only once its worker has stopped).
pub async fn run(runtime: Runtime, bus: Bus) {
    let mut supervisor = Supervisor {
        config: runtime.config().delivery.clone(),
        runtime,
        bus,
        workers: BTreeMap::new(),
        hand_overs: JoinSet::new(),
        handing_over: HashMap::new(),
    };
    loop {
        if let Err(err) = supervisor.reconcile().await {
            tracing::error!("reconciling delivery partitions and leases failed: {err}");
        }
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}

/// The workers of this replica and the leases it is handing over. Dropping it
/// (the server stopping) aborts them all, and a batch cut short commits nothing.
struct Supervisor {
    runtime: Runtime,
    bus: Bus,
    config: DeliveryConfig,
    workers: BTreeMap<Partition, Worker>,
    hand_overs: JoinSet<()>,
    /// The lease key each hand-over task releases.
    handing_over: HashMap<tokio::task::Id, String>,
}

impl Supervisor {
    async fn reconcile(&mut self) -> Result<(), StoreError> {
        let (partitions, schedules) = wanted(&self.runtime).await?;
        let watches = crate::bus::watches::lease_keys(&self.runtime);
        let keys = partitions.iter().map(Partition::lease_key).chain(schedules).chain(watches).collect();
        let round = self.bus.leases().round(&keys).await?;
        while let Some(done) = self.hand_overs.try_join_next_with_id() {
            let id = done.map_or_else(|err| err.id(), |(id, ())| id);
            self.handing_over.remove(&id);
        }
        let mut stopped: BTreeMap<String, Worker> = self
            .workers
            .extract_if(.., |partition, worker| {
                !round.run.contains(&partition.lease_key()) || worker.task.is_finished()
            })
            .map(|(partition, worker)| (partition.lease_key(), worker))
            .collect();
        for key in round.hand_over {
            if !self.handing_over.values().any(|pending| *pending == key) {
                let worker = stopped.remove(&key);
                let task = self.hand_overs.spawn(hand_over(self.bus.clone(), key.clone(), worker));
                self.handing_over.insert(task.id(), key);
            }
        }
        // The rest were lost to another replica or finished: dropping aborts them.
        drop(stopped);
        for partition in partitions.into_iter().filter(|partition| round.run.contains(&partition.lease_key())) {
            if !self.workers.contains_key(&partition) {
                let stop = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(worker::run(
                    self.runtime.clone(),
                    self.bus.clone(),
                    self.config.clone(),
                    partition.clone(),
                    stop.clone(),
                ));
                self.workers.insert(partition, Worker { stop, task });
            }
        }
        Ok(())
    }
}

/// Stops `worker` after its batch (it commits or not, but never half) and
/// releases its lease, for another replica to take at once.
async fn hand_over(bus: Bus, key: String, worker: Option<Worker>) {
    if let Some(mut worker) = worker {
        worker.stop.store(true, Ordering::Release);
        let _ = (&mut worker.task).await;
    }
    if let Err(err) = bus.leases().release(&key).await {
        tracing::warn!(key, "releasing a lease failed: {err}");
    }
}

/// Samples the delivery lag until the task is aborted (see [`sample_lag`]).
pub async fn report_lag(runtime: Runtime, bus: Bus) {
    let config = runtime.config().delivery.clone();
    loop {
        tokio::time::sleep(LAG_EVERY).await;
        if let Err(err) = sample_lag(&runtime, &bus, &config).await {
            tracing::warn!("measuring delivery lag failed: {err}");
        }
    }
}

/// Every partition that should have a worker on some replica now, and the
/// lease keys of the schedules that should run.
async fn wanted(runtime: &Runtime) -> Result<(Vec<Partition>, Vec<String>), StoreError> {
    let registry = runtime.registry();
    let enabled: Vec<_> = registry.all().into_iter().filter(|plugin| !registry.is_disabled(plugin.name())).collect();
    if enabled.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let db = runtime.db();
    let orgs = org::Entity::find().all(db).await?;
    let schedules = enabled
        .iter()
        .filter(|plugin| !plugin.manifest.schedules.is_empty())
        .flat_map(|plugin| orgs.iter().map(|org| crate::bus::schedules::lease_key(plugin.name(), &org.id)))
        .collect();
    let plugins: Vec<_> = enabled.into_iter().filter(|plugin| !plugin.manifest.subscriptions.is_empty()).collect();
    let rows = generations::all(db).await?;
    let mut partitions = Vec::new();
    for row in &rows {
        if let Some(building) = row.building
            && plugins.iter().any(|loaded| loaded.name() == row.plugin)
        {
            let (plugin, org) = (row.plugin.clone(), row.org.clone());
            partitions.push(Partition { plugin, org, generation: building, building: true });
        }
    }
    let live = live_generations(rows);
    for plugin in &plugins {
        for org in &orgs {
            let generation = live.get(&(plugin.name().to_owned(), org.id.clone())).copied().unwrap_or(0);
            partitions.push(Partition {
                plugin: plugin.name().to_owned(),
                org: org.id.clone(),
                generation,
                building: false,
            });
        }
    }
    Ok((partitions, schedules))
}

/// The live generation of every (plugin, org) that has had a rebuild; absent means 0.
fn live_generations(rows: Vec<generations::Generation>) -> HashMap<(String, String), i64> {
    rows.into_iter().map(|row| ((row.plugin, row.org), row.live)).collect()
}

/// The event a plugin far behind in an org becomes, repeated while it lasts.
pub const LAGGING: &str = "system.delivery.lagging";

/// Sets each plugin's backlog gauges from its live cursors, and reports each
/// (plugin, org) whose oldest unhandled event is older than
/// `lag_report_seconds` as a `system.delivery.lagging` event: one per
/// `lag_report_every_seconds` however many replicas sample (the window is its
/// dedupe key), none once it has caught up. The report says when the next one
/// is due, so a consumer knows a lag is over when none comes.
async fn sample_lag(runtime: &Runtime, bus: &Bus, config: &DeliveryConfig) -> Result<(), StoreError> {
    let db = runtime.db();
    let now = now_ms();
    let live = live_generations(generations::all(db).await?);
    let mut per_plugin: BTreeMap<String, (u64, Option<i64>)> = BTreeMap::new();
    let mut reports = Vec::new();
    let every_s = config.lag_report_every_seconds.max(LAG_EVERY.as_secs());
    let window = now - now.rem_euclid(every_s as i64 * 1000);
    let report_after_s = config.lag_report_seconds;
    for cursor in cursors::all_cursors(db).await? {
        let Some(plugin) = runtime.registry().get(&cursor.plugin) else { continue };
        let key = (cursor.plugin.clone(), cursor.org.clone());
        if live.get(&key).copied().unwrap_or(0) != cursor.generation {
            continue;
        }
        let (behind, oldest) = log::backlog(db, &cursor.org, cursor.position, &plugin.manifest.subscriptions).await?;
        let lag_ms = oldest.map_or(0, |oldest| (now - oldest).max(0));
        // A disabled plugin is behind on purpose: `system.plugin.disabled` said so.
        let reported = report_after_s > 0 && !runtime.registry().is_disabled(&cursor.plugin);
        if reported && lag_ms >= (report_after_s * 1000) as i64 {
            let payload = serde_json::json!({
                "plugin": cursor.plugin,
                "behind": behind,
                "oldest_pending_at": oldest.and_then(chrono::DateTime::from_timestamp_millis),
                "lag_seconds": lag_ms / 1000,
                "next_report_within_seconds": every_s,
            });
            let dedupe = Some(format!("lagging/{}/{window}", cursor.plugin));
            reports.push(super::system::entry(&cursor.org, LAGGING, payload, dedupe));
        }
        let entry = per_plugin.entry(cursor.plugin.clone()).or_default();
        entry.0 += behind;
        entry.1 = match (entry.1, oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    if !reports.is_empty() {
        let news = News::of(&reports);
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        log::append(&txn, reports).await?;
        txn.commit().await?;
        bus.wake().appended(news);
    }
    for (plugin, (behind, oldest)) in per_plugin {
        let age = oldest.map_or(0, |oldest| (now - oldest).max(0) as u64);
        runtime.telemetry().delivery_lag(&plugin, behind, Duration::from_millis(age));
    }
    Ok(())
}
