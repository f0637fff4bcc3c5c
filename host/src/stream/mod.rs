//! The live stream: the event log, tailed once per replica and fanned out to
//! WebSocket and SSE subscribers, each seeing what its caller may read.
//!
//! One task per replica follows the log (woken by [`Wake`], which Redis
//! extends to every replica) and publishes each new event, serialized once,
//! into a bounded ring shared by this replica's subscribers. A subscriber that
//! falls further behind than the ring holds, or that starts from an older
//! position, reads the log itself until it has caught up, so it misses nothing
//! and gets nothing twice, whatever its pace.

pub mod limits;
pub mod subscriber;
pub mod tickets;

use crate::bus::log;
use crate::bus::wake::Wake;
use crate::config::StreamConfig;
use crate::store::entities::event;
use crate::telemetry::Telemetry;
use sea_orm::DatabaseConnection;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events read from the log per query, by the tail and by a catching-up subscriber.
const PAGE: u64 = 500;

/// How often the tail looks at the log without being woken, in case a wake was lost.
const POLL: Duration = Duration::from_secs(1);

/// One event as subscribers get it: the row, and its wire form, rendered by
/// the first subscriber that sends it and shared by the others.
#[derive(Debug)]
pub struct Frame {
    pub event: event::Model,
    rendered: OnceLock<String>,
}

impl Frame {
    pub fn of(event: event::Model) -> Self {
        Frame { event, rendered: OnceLock::new() }
    }

    pub fn seq(&self) -> i64 {
        self.event.seq
    }

    /// The wire form, made by `render` the first time it is asked for.
    pub fn rendered(&self, render: impl FnOnce(&event::Model) -> String) -> &str {
        self.rendered.get_or_init(|| render(&self.event))
    }
}

/// The replica's stream. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    config: StreamConfig,
    telemetry: Telemetry,
    frames: broadcast::Sender<Arc<Frame>>,
    /// The last position published to the ring.
    head: AtomicI64,
    limits: limits::Limits,
    /// Set when the server stops, so open subscriptions end.
    stopping: watch::Sender<bool>,
}

impl Hub {
    pub fn new(db: DatabaseConnection, config: StreamConfig, telemetry: Telemetry) -> Self {
        let (frames, _) = broadcast::channel(config.buffer_events);
        let limits = limits::Limits::new(config.max_per_token, config.max_per_org);
        Hub {
            inner: Arc::new(Inner {
                db,
                config,
                telemetry,
                frames,
                head: AtomicI64::new(0),
                limits,
                stopping: watch::channel(false).0,
            }),
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.inner.config
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn limits(&self) -> &limits::Limits {
        &self.inner.limits
    }

    /// The last position this replica has published.
    pub fn head(&self) -> i64 {
        self.inner.head.load(Ordering::Acquire)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.inner.frames.subscribe()
    }

    fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Ends every open subscription (the server is stopping).
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Follows the log from its current end, publishing every new event, until
    /// the task is aborted.
    pub async fn run(self, wake: Wake) {
        let listener = wake.listen_to_everything();
        loop {
            match log::end(self.db()).await {
                Ok(end) => {
                    self.inner.head.store(end, Ordering::Release);
                    break;
                }
                Err(err) => {
                    tracing::warn!("the live stream cannot read the log's end: {err}");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
        loop {
            if let Err(err) = self.publish_new().await {
                tracing::warn!("the live stream cannot read the log: {err}");
            }
            let _ = tokio::time::timeout(POLL, listener.woken()).await;
        }
    }

    /// Publishes every event after the head, in log order.
    async fn publish_new(&self) -> Result<(), crate::store::StoreError> {
        loop {
            let rows = log::after(self.db(), self.head(), PAGE).await?;
            let full = rows.len() as u64 == PAGE;
            for row in rows {
                let seq = row.seq;
                // Nobody listening is no error: the event is in the log.
                let _ = self.inner.frames.send(Arc::new(Frame::of(row)));
                self.inner.head.store(seq, Ordering::Release);
            }
            if !full {
                return Ok(());
            }
        }
    }
}
