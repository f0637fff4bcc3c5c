//! Runs the `on-tick` schedules plugins declare: once per interval per org, on
//! time, and after a restart a missed tick runs once rather than once per
//! interval missed. A tick's writes commit with the record of its run. With
//! several replicas, a plugin's schedules in an org run on the replica holding
//! their lease (`bus::leases`); the record's compare-and-set still keeps a tick
//! that two replicas ran during a hand-over from committing twice.

pub mod runs;

use super::Bus;
use crate::runtime::Runtime;
use crate::runtime::plugin::LoadedPlugin;
use crate::store::entities::org;
use crate::store::{StoreError, now_ms};
use crate::wit::{Principal, Role};

use sea_orm::EntityTrait;
use std::collections::HashMap;
use std::time::Duration;

/// How often due schedules are looked for: the precision of a tick's timing.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// How long a failed tick waits before it is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(30);

/// When a schedule's next tick is due, given its last run.
///
/// The next tick keeps the cadence (`last + interval`) unless that is more
/// than one interval in the past, in which case the missed ticks collapse into
/// one that runs now.
pub fn next_due(last: Option<i64>, interval_ms: i64, now: i64) -> i64 {
    match last {
        None => now,
        Some(last) if last + 2 * interval_ms <= now => now,
        Some(last) => last + interval_ms,
    }
}

/// The lease under which one replica at a time runs `plugin`'s schedules in `org`.
pub fn lease_key(plugin: &str, org: &str) -> String {
    format!("schedule/{plugin}/{org}")
}

/// Runs due ticks of the schedules this replica holds a lease on, until the task is aborted.
pub async fn run(runtime: Runtime, bus: Bus) {
    let mut failed: HashMap<(String, String, String), tokio::time::Instant> = HashMap::new();
    loop {
        failed.retain(|_, until| tokio::time::Instant::now() < *until);
        if let Err(err) = run_due(&runtime, &bus, &mut failed).await {
            tracing::error!("running schedules failed: {err}");
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

async fn run_due(
    runtime: &Runtime,
    bus: &Bus,
    failed: &mut HashMap<(String, String, String), tokio::time::Instant>,
) -> Result<(), StoreError> {
    let registry = runtime.registry();
    let plugins: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|plugin| !plugin.manifest.schedules.is_empty() && !registry.is_disabled(plugin.name()))
        .collect();
    if plugins.is_empty() {
        return Ok(());
    }
    let db = runtime.db();
    let orgs = org::Entity::find().all(db).await?;
    let last: HashMap<(String, String, String), i64> =
        runs::all(db).await?.into_iter().map(|run| ((run.plugin, run.org, run.schedule), run.last_run_at)).collect();
    let now = now_ms();
    for plugin in &plugins {
        for schedule in &plugin.manifest.schedules {
            for org in &orgs {
                let key = (plugin.name().to_owned(), org.id.clone(), schedule.name.clone());
                if failed.contains_key(&key) || !bus.leases().runs(&lease_key(plugin.name(), &org.id)) {
                    continue;
                }
                let previous = last.get(&key).copied();
                let due = next_due(previous, i64::from(schedule.interval_seconds) * 1000, now);
                if due > now {
                    continue;
                }
                if let Err(err) = tick(runtime, bus, plugin, &schedule.name, &org.id, previous, due).await {
                    tracing::warn!(
                        plugin = plugin.name(),
                        org = org.id,
                        schedule = schedule.name,
                        "tick failed: {err}"
                    );
                    failed.insert(key, tokio::time::Instant::now() + RETRY_FAILED);
                }
            }
        }
    }
    Ok(())
}

/// Runs one tick scheduled at `at` and commits its writes with the run's record.
async fn tick(
    runtime: &Runtime,
    bus: &Bus,
    plugin: &LoadedPlugin,
    schedule: &str,
    org: &str,
    previous: Option<i64>,
    at: i64,
) -> anyhow::Result<()> {
    let principal =
        Principal { user_id: format!("schedule:{schedule}"), org_id: org.to_owned(), role: Role::Developer };
    let scope = bus.live_scope(plugin.name(), org).await?;
    let writes = runtime.tick(plugin, scope.clone(), schedule, at, principal).await?;
    // When another replica ran this tick first, its writes count and ours go.
    let claim = async |txn: &_| runs::claim(txn, plugin.name(), org, schedule, previous, at).await;
    if bus.commit_claimed(writes, &scope, claim).await? {
        tracing::debug!(plugin = plugin.name(), org, schedule, "tick ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::next_due;

    #[test]
    fn first_tick_runs_at_once() {
        assert_eq!(next_due(None, 60_000, 5), 5);
    }

    #[test]
    fn ticks_keep_their_cadence() {
        assert_eq!(next_due(Some(1_000), 60_000, 30_000), 61_000);
        assert_eq!(next_due(Some(1_000), 60_000, 61_500), 61_000);
    }

    #[test]
    fn missed_ticks_collapse_into_one() {
        // Down for ten intervals: one tick now, the next an interval later.
        let now = 1_000 + 10 * 60_000 + 7;
        assert_eq!(next_due(Some(1_000), 60_000, now), now);
        assert_eq!(next_due(Some(now), 60_000, now + 1), now + 60_000);
    }
}
