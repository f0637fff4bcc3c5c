//! Group commit for ingest: deliveries queue here and are appended in one
//! transaction per batch, so a burst costs one sync, not one per delivery. A
//! delivery is answered only after its batch has committed.

use super::wake::{News, Wake};
use crate::bus::log::{self, Appended, NewEntry};
use sea_orm::DatabaseConnection;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most deliveries committed together.
const MAX_BATCH: usize = 512;

/// Why an entry was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the event log did not commit within {0:?}")]
    Timeout(Duration),
    #[error("the event log is unavailable: {0}")]
    Store(String),
}

type Reply = oneshot::Sender<Result<Appended, String>>;

/// Cheap to clone; every clone feeds the same writer task.
#[derive(Clone)]
pub struct LogWriter {
    queue: mpsc::Sender<(NewEntry, Reply)>,
}

impl LogWriter {
    /// Starts the writer task.
    pub fn start(db: DatabaseConnection, wake: Wake) -> Self {
        let (queue, incoming) = mpsc::channel(MAX_BATCH * 8);
        tokio::spawn(run(db, wake, incoming));
        LogWriter { queue }
    }

    /// Appends `entry` and waits until it is durably stored, at most `timeout`.
    /// After a timeout the entry may still commit; a retry is then a duplicate.
    pub async fn append(&self, entry: NewEntry, timeout: Duration) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        let work = async {
            self.queue.send((entry, reply)).await.map_err(|_| AppendError::Store("the writer stopped".into()))?;
            answer.await.map_err(|_| AppendError::Store("the writer stopped".into()))?.map_err(AppendError::Store)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| AppendError::Timeout(timeout))?
    }
}

async fn run(db: DatabaseConnection, wake: Wake, mut incoming: mpsc::Receiver<(NewEntry, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (entries, replies): (Vec<NewEntry>, Vec<Reply>) = std::mem::take(&mut batch).into_iter().unzip();
        // One statement, its own transaction: on PostgreSQL one round trip,
        // the log lock taken by the table's trigger.
        let news = News::of(&entries);
        match log::append(&db, entries).await {
            Ok(appended) => {
                if appended.iter().any(|entry| !entry.duplicate) {
                    wake.appended(news);
                }
                for (reply, appended) in replies.into_iter().zip(appended) {
                    let _ = reply.send(Ok(appended));
                }
            }
            Err(err) => {
                tracing::error!("appending {} events failed: {err}", replies.len());
                for reply in replies {
                    let _ = reply.send(Err(err.to_string()));
                }
            }
        }
    }
}
