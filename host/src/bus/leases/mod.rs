//! Leases: with several replicas on one database, each piece of work (a
//! delivery partition, a plugin's schedules in an org) runs on one replica at
//! a time. A replica takes a fair share of the work under leases it renews
//! every round; a replica that dies stops renewing, and once its leases expire
//! the others take its work over. New replicas make the others' shares
//! smaller, and they hand the surplus over.
//!
//! Leases live in the database (`lease` rows, taken by compare-and-set), never
//! in process memory. Expiry times come from each replica's clock, so replicas
//! must agree on the time to well within `lease_seconds`. A commit also checks
//! its lease in its own transaction ([`Leases::fence`]), so work whose lease
//! moved on commits nothing even if the replica missed a round.

mod rows;

use crate::store::{StoreError, now_ms};
use crate::telemetry::Telemetry;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Replicas and leases unrenewed for this many lease lifetimes are deleted.
const FORGET_AFTER_LIFETIMES: i64 = 60;

/// This replica's leases. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    replica: String,
    lifetime: Duration,
    telemetry: Telemetry,
    /// The keys this replica holds and runs: held, wanted and not being handed over.
    running: RwLock<BTreeSet<String>>,
}

/// What a round decided.
#[derive(Debug, Default)]
pub struct Round {
    /// Held and to be run.
    pub run: BTreeSet<String>,
    /// Held, but to be stopped and then released: beyond this replica's share,
    /// or no longer wanted.
    pub hand_over: BTreeSet<String>,
}

impl Leases {
    /// Leases for a new replica with a fresh id, each lasting `lifetime` unless renewed.
    pub fn new(db: DatabaseConnection, lifetime: Duration, telemetry: Telemetry) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "devpulse".to_owned());
        let random = ulid::Ulid::new().to_string();
        let replica = format!("{host}-{}-{}", std::process::id(), &random[random.len() - 6..]);
        telemetry.replica(&replica);
        Leases { inner: Arc::new(Inner { db, replica, lifetime, telemetry, running: RwLock::default() }) }
    }

    /// This replica's id, as the `lease` rows name it.
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// True while this replica holds `key` and runs its work.
    pub fn runs(&self, key: &str) -> bool {
        self.inner.running.read().is_ok_and(|running| running.contains(key))
    }

    /// One round: a heartbeat, every held lease renewed, and this replica's
    /// share of `wanted` (an equal part for each live replica, rounded up)
    /// taken from the free and expired leases. Run it well within the lease lifetime.
    pub async fn round(&self, wanted: &BTreeSet<String>) -> Result<Round, StoreError> {
        let Inner { db, replica, lifetime, telemetry, .. } = &*self.inner;
        let lifetime_ms = lifetime.as_millis() as i64;
        let now = now_ms();
        let until = now + lifetime_ms;
        rows::heartbeat(db, replica, now).await?;
        rows::renew_all(db, replica, until).await?;
        rows::forget_stale(db, now - FORGET_AFTER_LIFETIMES * lifetime_ms).await?;
        let replicas = rows::live_replicas(db, now - lifetime_ms).await?.max(1);
        let leases = rows::all(db).await?;
        let mine: BTreeSet<String> =
            leases.iter().filter(|lease| &lease.holder == replica).map(|lease| lease.key.clone()).collect();
        let taken: BTreeSet<&str> =
            leases.iter().filter(|lease| lease.expires_at >= now).map(|lease| lease.key.as_str()).collect();
        let expired: BTreeSet<&str> =
            leases.iter().filter(|lease| lease.expires_at < now).map(|lease| lease.key.as_str()).collect();
        let previous = self.inner.running.read().map(|running| running.clone()).unwrap_or_default();
        for key in previous.difference(&mine) {
            tracing::warn!(key, "lease lost to another replica");
            telemetry.lease_change(kind_of(key), "lost");
        }

        let share = wanted.len().div_ceil(replicas as usize);
        let mut run: Vec<String> = by_preference(replica, mine.intersection(wanted).cloned());
        let mut hand_over: BTreeSet<String> = mine.difference(wanted).cloned().collect();
        if run.len() > share {
            hand_over.extend(run.split_off(share));
        }
        let free = by_preference(replica, wanted.iter().filter(|key| !taken.contains(key.as_str())).cloned());
        for key in free {
            if run.len() >= share {
                break;
            }
            if rows::acquire(db, &key, replica, now, until).await? {
                let change = if expired.contains(key.as_str()) { "taken_over" } else { "acquired" };
                tracing::info!(key, change, "lease taken");
                telemetry.lease_change(kind_of(&key), change);
                run.push(key);
            }
        }
        let run: BTreeSet<String> = run.into_iter().collect();
        if let Ok(mut running) = self.inner.running.write() {
            running.clone_from(&run);
        }
        telemetry.leases_held(replicas, run.iter().map(|key| (kind_of(key), plugin_of(key))));
        Ok(Round { run, hand_over })
    }

    /// Gives up `key` once its work has stopped, for another replica to take at once.
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        rows::release(&self.inner.db, key, &self.inner.replica).await?;
        tracing::info!(key, "lease handed over");
        self.inner.telemetry.lease_change(kind_of(key), "released");
        Ok(())
    }

    /// Gives up every lease and leaves the replicas, when the server stops.
    pub async fn leave(&self) -> Result<(), StoreError> {
        if let Ok(mut running) = self.inner.running.write() {
            running.clear();
        }
        rows::leave(&self.inner.db, &self.inner.replica).await
    }

    /// In the transaction that commits work done under `key`: renews the lease
    /// and answers whether this replica still holds it. False means another
    /// replica took the work over, and the transaction must not commit.
    pub async fn fence(&self, txn: &impl ConnectionTrait, key: &str) -> Result<bool, StoreError> {
        let until = now_ms() + self.inner.lifetime.as_millis() as i64;
        let held = rows::renew(txn, key, &self.inner.replica, until).await?;
        if !held && self.inner.running.write().is_ok_and(|mut running| running.remove(key)) {
            tracing::warn!(key, "lease lost to another replica before a commit");
            self.inner.telemetry.lease_change(kind_of(key), "lost");
        }
        Ok(held)
    }
}

/// `keys` in an order that differs per replica, so replicas racing for free
/// leases mostly try different ones first, and a replica hands over the same
/// surplus it would last take.
fn by_preference(replica: &str, keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<(u64, String)> = keys
        .map(|key| {
            let mut hasher = std::hash::DefaultHasher::new();
            (replica, &key).hash(&mut hasher);
            (hasher.finish(), key)
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, key)| key).collect()
}

/// `partition` or `schedule`: a key's first segment.
fn kind_of(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

/// The plugin a key is about: its second segment.
fn plugin_of(key: &str) -> &str {
    key.split('/').nth(1).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_is_stable_per_replica_and_differs_between_replicas() {
        let keys = || (0..20).map(|n| format!("partition/p/org{n}/0"));
        assert_eq!(by_preference("a", keys()), by_preference("a", keys()));
        assert_ne!(by_preference("a", keys()), by_preference("b", keys()));
    }

    #[test]
    fn keys_name_their_kind_and_plugin() {
        assert_eq!((kind_of("partition/github/org1/0"), plugin_of("partition/github/org1/0")), ("partition", "github"));
        assert_eq!((kind_of("schedule/health/org1"), plugin_of("schedule/health/org1")), ("schedule", "health"));
    }
}
