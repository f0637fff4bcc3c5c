//! Wakes the delivery workers when the log grows, here and (through Redis) in
//! every other replica, so a new event is handled without waiting for a poll.

use crate::store::redis::Redis;
use std::sync::Arc;
use tokio::sync::watch;

/// The Redis channel replicas announce new events on.
const CHANNEL: &str = "devpulse:events:appended";

/// Cheap to clone; clones share the channels.
#[derive(Clone)]
pub struct Wake {
    /// Bumped for every append seen by this process, local or remote.
    all: Arc<watch::Sender<u64>>,
    /// Bumped only for this process's appends: what gets published.
    local: Arc<watch::Sender<u64>>,
}

impl Default for Wake {
    fn default() -> Self {
        Wake { all: Arc::new(watch::channel(0).0), local: Arc::new(watch::channel(0).0) }
    }
}

impl Wake {
    /// Called after a commit that appended events.
    pub fn appended(&self) {
        self.all.send_modify(|count| *count = count.wrapping_add(1));
        self.local.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that changes whenever the log may have grown.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.all.subscribe()
    }

    /// Publishes this process's appends and listens for other replicas'; runs
    /// until the connection ends. Bursts are coalesced into one message.
    pub async fn bridge(self, redis: Redis, url: String) {
        let mut local = self.local.subscribe();
        let publisher = async {
            while local.changed().await.is_ok() {
                if let Err(err) = redis.publish(CHANNEL, "1").await {
                    tracing::warn!("announcing new events through Redis failed: {err}");
                }
            }
        };
        let all = self.all.clone();
        let subscriber = Redis::subscribe(&url, CHANNEL, move |_| {
            all.send_modify(|count| *count = count.wrapping_add(1));
        });
        tokio::select! {
            () = publisher => {}
            result = subscriber => if let Err(err) = result {
                tracing::warn!("listening for other replicas' events failed: {err}");
            }
        }
    }
}
