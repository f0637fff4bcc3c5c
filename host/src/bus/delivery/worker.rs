//! One partition: a plugin's events in one org, for one generation of its
//! state. Events are handled in log order, in batches; a batch's writes commit
//! in the transaction that moves the cursor and checks the partition's lease,
//! so effects happen exactly once, and only on the replica holding the lease.
//! After a batch that reached the end of the log the partition lingers a
//! moment (`delivery.linger_ms`) before reading on, so a steady stream is
//! folded in a few large transactions instead of one per event or two.
//! During a rebuild, while one batch commits the next is read and handed to
//! the plugin, its calls reading the committing batch's documents as if they
//! were stored; it commits only after that commit landed, so the order of
//! effects is the log's.

use super::cursors::{self, Cursor, DEAD, REPLAYED, REPLAYING};
use super::{Partition, backoff};
use crate::bus::Bus;
use crate::bus::generations;
use crate::bus::log;
use crate::bus::system;
use crate::bus::wake::News;
use crate::capabilities::writes::{Committing, WriteSet};
use crate::config::DeliveryConfig;
use crate::runtime::Runtime;
use crate::runtime::call::CallError;
use crate::runtime::plugin::LoadedPlugin;
use crate::store::documents::Scope;
use crate::store::entities::event;
use crate::store::{StoreError, now_ms};
use crate::wit::{Event, Principal, Role};
use sea_orm::DbErr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long an idle partition sleeps when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How many events of other plugins an idle partition lets pass before it
/// moves its cursor past them (a write, so not after every one).
const SKIP_AHEAD: i64 = 1_000;

/// How far the log is known to hold nothing for a partition beyond its cursor,
/// as seen by one loaded plugin (another version may subscribe to more). An
/// idle partition then reads only what arrived since it last looked, instead
/// of scanning other plugins' events again after every append; the cursor
/// itself moves past them only every [`SKIP_AHEAD`] events, since that is a
/// write. Kept in memory: after a restart the first look scans once more.
#[derive(Default)]
struct Scanned {
    plugin: Weak<LoadedPlugin>,
    to: i64,
}

impl Scanned {
    /// Where the next batch starts reading.
    fn start(&self, plugin: &Arc<LoadedPlugin>, cursor: &Cursor) -> i64 {
        if std::ptr::eq(self.plugin.as_ptr(), Arc::as_ptr(plugin)) {
            self.to.max(cursor.position)
        } else {
            cursor.position
        }
    }

    fn reached(&mut self, plugin: &Arc<LoadedPlugin>, head: i64) {
        *self = Scanned { plugin: Arc::downgrade(plugin), to: head };
    }
}

/// What one step of the loop found.
enum Step {
    /// Work was done and more may be waiting; look again at once.
    Busy,
    /// Work was done up to the end of the log; look again after the linger,
    /// so that what arrives meanwhile is folded in one batch.
    CaughtUp,
    /// Nothing to do for this long (unless woken).
    Idle(Duration),
    /// The partition's generation was switched out or retired: stop.
    Retired,
}

/// Runs the partition until `stop` is set, the plugin goes away or its generation retires.
pub(crate) async fn run(
    runtime: Runtime,
    bus: Bus,
    config: DeliveryConfig,
    partition: Partition,
    stop: Arc<AtomicBool>,
) {
    let listener = bus.wake().listen(&partition.org);
    let mut scanned = Scanned::default();
    while !stop.load(Ordering::Acquire) {
        let Some(plugin) = runtime.registry().get(&partition.plugin) else { return };
        if runtime.registry().is_disabled(&partition.plugin) {
            return;
        }
        // Before the step reads the log: whatever is appended from here on wakes it.
        listener.follow(&plugin.manifest.subscriptions);
        match step(&runtime, &bus, &config, &partition, &plugin, &mut scanned, &stop).await {
            Ok(Step::Busy) => {}
            Ok(Step::CaughtUp) => tokio::time::sleep(Duration::from_millis(config.linger_ms)).await,
            // Capped, so a worker told to stop (its lease handed over) stops soon.
            Ok(Step::Idle(wait)) => {
                tokio::select! {
                    () = listener.woken() => {}
                    () = tokio::time::sleep(wait.min(IDLE_POLL)) => {}
                }
            }
            Ok(Step::Retired) => return,
            Err(err) => {
                tracing::error!(plugin = partition.plugin, org = partition.org, "delivery failed: {err}");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

async fn step(
    runtime: &Runtime,
    bus: &Bus,
    config: &DeliveryConfig,
    partition: &Partition,
    plugin: &Arc<LoadedPlugin>,
    scanned: &mut Scanned,
    stop: &AtomicBool,
) -> Result<Step, StoreError> {
    let db = runtime.db();
    let cursor = match cursors::find(db, &partition.plugin, &partition.org, partition.generation).await? {
        Some(cursor) => cursor,
        // Live partitions start at the beginning of the log; a building one's
        // cursor is made with the rebuild, so a missing one means it retired.
        None if !partition.building
            && generations::live(db, &partition.plugin, &partition.org).await? == partition.generation =>
        {
            cursors::cursor(db, &partition.plugin, &partition.org, partition.generation).await?
        }
        None => return Ok(Step::Retired),
    };
    let scope =
        Scope { plugin: partition.plugin.clone(), org: partition.org.clone(), generation: partition.generation };
    if !partition.building && replay_queued(runtime, bus, plugin, &scope).await? {
        return Ok(Step::Busy);
    }
    let now = now_ms();
    if let Some(retry_at) = cursor.retry_at
        && retry_at > now
    {
        return Ok(Step::Idle(Duration::from_millis((retry_at - now) as u64)));
    }
    // Read before the batch: every event up to the head is committed (writers
    // append under the log lock), so an empty batch means none of them is ours.
    let head = log::head(db, &partition.org).await?;
    let start = scanned.start(plugin, &cursor);
    let events = log::next_batch(db, &partition.org, start, &plugin.manifest.subscriptions, config.batch_size).await?;
    if events.is_empty() {
        if partition.building
            && generations::try_switch(db, &partition.plugin, &partition.org, partition.generation, cursor.position)
                .await?
        {
            bus.generations().forget(&partition.plugin, &partition.org);
            tracing::info!(
                plugin = partition.plugin,
                org = partition.org,
                generation = partition.generation,
                "rebuild caught up; switched over"
            );
            return Ok(Step::Retired);
        }
        scanned.reached(plugin, head);
        if head - cursor.position >= SKIP_AHEAD {
            cursors::advance(db, &cursor, cursor.position, head).await?;
        }
        return Ok(Step::Idle(IDLE_POLL));
    }
    // Stop handing batches on when told to stop, or once the plugin was reloaded or disabled.
    let still_wanted = || {
        !stop.load(Ordering::Acquire)
            && !runtime.registry().is_disabled(&partition.plugin)
            && runtime.registry().get(&partition.plugin).is_some_and(|current| Arc::ptr_eq(&current, plugin))
    };
    let mut cursor = cursor;
    let mut events = events;
    let mut in_flight: Option<InFlight> = None;
    loop {
        let committing = in_flight.as_ref().map(|flight| flight.committing.clone()).unwrap_or_default();
        let handled = handle_batch(runtime, plugin, partition, &scope, &events, committing).await;
        let reached_end = (events.len() as u64) < config.batch_size;
        // The batch before lands first: this one commits after it, or fails counting from it.
        if let Some(flight) = in_flight.take() {
            let landed = flight.to;
            match land(runtime, bus, plugin, flight).await? {
                Claim::Committed => cursor = landed_at(&cursor, landed),
                Claim::Moved => return Ok(Step::Busy),
                Claim::LeaseLost => return Ok(Step::Retired),
            }
        }
        let (writes, to, count) = match handled {
            Ok(handled) => handled,
            Err(err) => {
                fail(runtime, bus, config, partition, &cursor, &events[0], &err).await?;
                return Ok(Step::Busy);
            }
        };
        // A rebuild replays history: what it would emit or raise, the live generation did already.
        let writes = if partition.building { writes.without_side_effects() } else { writes };
        // A rebuild reads and handles the next batch while this one commits. Live
        // partitions do not: there the overlap slowed webhook acknowledgements
        // (measured in docs/performance.md), so they commit before reading on.
        let read_on = partition.building && still_wanted();
        let committing = if read_on { writes.committing() } else { Arc::default() };
        let from = cursor.position;
        let task = tokio::spawn(commit(bus.clone(), partition.clone(), cursor.clone(), to, writes, scope.clone()));
        let flight = InFlight { task, committing, from, to, count, lease: partition.lease_key() };
        events = if read_on {
            log::next_batch(runtime.reader(), &partition.org, to, &plugin.manifest.subscriptions, config.batch_size)
                .await?
        } else {
            Vec::new()
        };
        if events.is_empty() {
            return Ok(match land(runtime, bus, plugin, flight).await? {
                Claim::LeaseLost => Step::Retired,
                Claim::Committed if reached_end => Step::CaughtUp,
                Claim::Committed | Claim::Moved => Step::Busy,
            });
        }
        in_flight = Some(flight);
    }
}

/// A batch whose writes commit while the next batch is handled.
struct InFlight {
    task: tokio::task::JoinHandle<Result<Claim, StoreError>>,
    /// What the next batch reads as stored until the commit lands.
    committing: Arc<Committing>,
    from: i64,
    to: i64,
    count: usize,
    lease: String,
}

/// Waits for a batch's commit and counts it.
async fn land(runtime: &Runtime, bus: &Bus, plugin: &LoadedPlugin, flight: InFlight) -> Result<Claim, StoreError> {
    let claim =
        flight.task.await.map_err(|err| StoreError::Db(DbErr::Custom(format!("a commit task failed: {err}"))))??;
    // One line per batch handled, so a test can count work done twice.
    tracing::debug!(
        lease = flight.lease,
        replica = bus.leases().replica(),
        from = flight.from,
        to = flight.to,
        events = flight.count,
        outcome = claim.as_str(),
        "batch handled"
    );
    if let Claim::Committed = claim {
        plugin.stats.record_folded(flight.count as u64);
        runtime.telemetry().delivery_batch(plugin.name(), flight.count);
    }
    Ok(claim)
}

/// The cursor as a commit that moved it to `position` left it (retry state cleared).
fn landed_at(cursor: &Cursor, position: i64) -> Cursor {
    Cursor { position, failing_seq: None, attempts: 0, last_error: None, retry_at: None, ..cursor.clone() }
}

/// Hands `events` to the plugin one by one, each call seeing the writes of the
/// ones before and of the committing batch. When one fails, the events before
/// it are handled again on their own (their writes were mixed with the failed
/// call's); the writes, the last position handled and how many events, or the
/// first event's failure.
async fn handle_batch(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    partition: &Partition,
    scope: &Scope,
    events: &[event::Model],
    committing: Arc<Committing>,
) -> Result<(WriteSet, i64, usize), CallError> {
    let mut handled = events.len();
    'attempt: loop {
        let mut writes = WriteSet::after(committing.clone());
        for (index, event) in events[..handled].iter().enumerate() {
            match runtime.event(plugin, scope.clone(), &to_wit(event), event.depth, partition.building, writes).await {
                Ok(after) => writes = after,
                Err(_) if index > 0 => {
                    handled = index;
                    continue 'attempt;
                }
                Err(err) => return Err(err),
            }
        }
        return Ok((writes, events[handled - 1].seq, handled));
    }
}

/// What became of a batch's commit.
enum Claim {
    Committed,
    /// The cursor was moved by someone else (a generation switch, an admin): nothing committed.
    Moved,
    /// Another replica holds the partition now: nothing committed, and this worker stops.
    LeaseLost,
}

impl Claim {
    fn as_str(&self) -> &'static str {
        match self {
            Claim::Committed => "committed",
            Claim::Moved => "moved",
            Claim::LeaseLost => "lease_lost",
        }
    }
}

/// Commits a batch's writes with the cursor moving to `to`, if this replica
/// still holds the partition's lease and the cursor is where it was read.
async fn commit(
    bus: Bus,
    partition: Partition,
    cursor: Cursor,
    to: i64,
    writes: WriteSet,
    scope: Scope,
) -> Result<Claim, StoreError> {
    let mut outcome = Claim::Moved;
    let committed = bus
        .commit_claimed(writes, &scope, async |txn| {
            if !bus.leases().fence(txn, &partition.lease_key()).await? {
                outcome = Claim::LeaseLost;
                return Ok(false);
            }
            cursors::advance(txn, &cursor, cursor.position, to).await
        })
        .await?;
    Ok(if committed { Claim::Committed } else { outcome })
}

/// The event announcing a dead letter.
const DEAD_LETTERED: &str = "system.event.dead_lettered";

/// Counts a failed attempt at `event`: schedules a retry, or after the last
/// attempt stores a dead letter and moves past it in one transaction.
async fn fail(
    runtime: &Runtime,
    bus: &Bus,
    config: &DeliveryConfig,
    partition: &Partition,
    cursor: &Cursor,
    event: &event::Model,
    err: &CallError,
) -> Result<(), StoreError> {
    let attempts = if cursor.failing_seq == Some(event.seq) { cursor.attempts + 1 } else { 1 };
    let error = err.to_string();
    let telemetry = runtime.telemetry();
    if attempts >= config.max_attempts {
        let scope =
            Scope { plugin: partition.plugin.clone(), org: partition.org.clone(), generation: partition.generation };
        let buried = bus
            .commit_claimed(WriteSet::default(), &scope, async |txn| {
                if !bus.leases().fence(txn, &partition.lease_key()).await?
                    || !cursors::advance(txn, cursor, cursor.position, event.seq).await?
                {
                    return Ok(false);
                }
                cursors::bury(txn, cursor, event.seq, &event.id, attempts, &error).await?;
                // A dead letter of a dead-letter event is not announced again: no loops.
                if !partition.building && event.kind != DEAD_LETTERED {
                    let payload = serde_json::json!({
                        "plugin": partition.plugin, "event_id": event.id, "event_kind": event.kind,
                        "attempts": attempts, "error": error,
                    });
                    let entry = system::entry(&partition.org, DEAD_LETTERED, payload, None);
                    crate::bus::log::append(txn, vec![entry]).await?;
                }
                Ok(true)
            })
            .await?;
        if buried {
            bus.wake().appended(News::kinds(&partition.org, [DEAD_LETTERED]));
            telemetry.dead_letter(&partition.plugin);
            tracing::warn!(
                plugin = partition.plugin,
                org = partition.org,
                event = event.id,
                attempts,
                "event moved to dead letters: {error}"
            );
        }
        return Ok(());
    }
    let wait = backoff(config, attempts);
    cursors::record_failure(runtime.db(), cursor, event.seq, attempts, &error, now_ms() + wait.as_millis() as i64)
        .await?;
    telemetry.delivery_retry(&partition.plugin);
    tracing::info!(
        plugin = partition.plugin,
        org = partition.org,
        event = event.id,
        attempts,
        retry_in_ms = wait.as_millis() as u64,
        "event delivery failed; will retry: {error}"
    );
    Ok(())
}

/// Handles dead letters an admin queued for replay; true if there were any.
async fn replay_queued(runtime: &Runtime, bus: &Bus, plugin: &LoadedPlugin, scope: &Scope) -> Result<bool, StoreError> {
    let db = runtime.db();
    let queued = cursors::queued_replays(db, &scope.plugin, &scope.org).await?;
    for letter in &queued {
        let Some(event) = log::at(db, letter.event_seq).await? else {
            cursors::set_status(db, &letter.id, REPLAYING, DEAD, Some("the event is no longer in the log")).await?;
            continue;
        };
        match runtime.event(plugin, scope.clone(), &to_wit(&event), event.depth, false, WriteSet::default()).await {
            Ok(writes) => {
                let claim = async |txn: &_| cursors::set_status(txn, &letter.id, REPLAYING, REPLAYED, None).await;
                if bus.commit_claimed(writes, scope, claim).await? {
                    tracing::info!(plugin = scope.plugin, event = event.id, "dead letter replayed");
                }
            }
            Err(err) => {
                cursors::set_status(db, &letter.id, REPLAYING, DEAD, Some(&err.to_string())).await?;
                tracing::warn!(plugin = scope.plugin, event = event.id, "replaying a dead letter failed: {err}");
            }
        }
    }
    Ok(!queued.is_empty())
}

/// The event as plugins see it. Events act with the least role, on behalf of their source.
pub(crate) fn to_wit(event: &event::Model) -> Event {
    Event {
        id: event.id.clone(),
        source: event.source.clone(),
        kind: event.kind.clone(),
        occurred_at: event.occurred_at,
        payload: event.payload.to_string(),
        cause: event.cause.clone(),
        principal: Principal {
            user_id: format!("source:{}", event.source),
            org_id: event.org.clone(),
            role: Role::Developer,
        },
    }
}
