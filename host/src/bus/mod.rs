//! The event bus: the durable log and everything that moves along it.
//!
//! `log` (append and read, with group commit in `writer` and the `wake` signal),
//! `ingest` (signed webhooks into the log), `delivery` (the log to subscribed
//! plugins, in order, exactly once, with retries and dead letters),
//! `schedules` (`on-tick`), `generations` (rebuilds beside the live state),
//! `commit` (a call's writes with the claim that allows them), `leases` (which
//! replica runs each partition, schedule and watch), `watches` (Kubernetes
//! objects' changes as `kube.*` events) and `system` (the host's own
//! happenings as `system.*` events). The bus decides
//! what commits; the runtime only runs plugins and hands back their writes.

pub mod commit;
pub mod delivery;
pub mod generations;
pub mod ingest;
pub mod leases;
pub mod log;
pub mod schedules;
pub mod system;
pub mod wake;
pub mod watches;
pub mod writer;

use crate::capabilities::writes::WriteSet;
use crate::store::StoreError;
use crate::store::documents::Scope;
use generations::LiveGenerations;
use leases::Leases;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use wake::{News, Wake};

/// What the request path, delivery and schedules share. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    db: DatabaseConnection,
    wake: Wake,
    generations: LiveGenerations,
    leases: Leases,
}

impl Bus {
    pub fn new(db: DatabaseConnection, wake: Wake, leases: Leases) -> Self {
        Bus { generations: LiveGenerations::new(db.clone()), db, wake, leases }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Told whenever the log may have grown.
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// Which partitions, schedules and watches this replica runs.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Which generation of plugin state requests and ticks use.
    pub fn generations(&self) -> &LiveGenerations {
        &self.generations
    }

    /// Where a request or tick of `plugin` in `org` reads and writes: the live generation.
    pub async fn live_scope(&self, plugin: &str, org: &str) -> Result<Scope, StoreError> {
        let generation = self.generations.live(plugin, org).await?;
        Ok(Scope { plugin: plugin.to_owned(), org: org.to_owned(), generation })
    }

    /// Commits a request's writes on their own.
    pub async fn commit(&self, writes: WriteSet, scope: &Scope) -> Result<(), StoreError> {
        let news = news_of(&writes, &scope.org);
        commit::commit(&self.db, writes, scope).await?;
        self.wake.appended(news);
        Ok(())
    }

    /// Commits `writes` in one transaction with `claim`, which records why they
    /// may commit (a cursor move, a schedule run, a replayed dead letter) and
    /// answers false when someone else got there first: then nothing commits.
    /// Wakes the delivery workers when the writes emitted events.
    pub async fn commit_claimed(
        &self,
        writes: WriteSet,
        scope: &Scope,
        claim: impl AsyncFnOnce(&DatabaseTransaction) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let news = news_of(&writes, &scope.org);
        let txn = self.db.begin().await?;
        if !claim(&txn).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        commit::apply(&txn, writes, scope).await?;
        txn.commit().await?;
        self.wake.appended(news);
        Ok(true)
    }
}

/// What committing `writes` appends to `org`'s log: the emitted events, and
/// for alert writes anything (their transitions are events of several kinds).
fn news_of(writes: &WriteSet, org: &str) -> News {
    if writes.writes_alerts() { News::org(org) } else { News::kinds(org, writes.emitted_kinds()) }
}
