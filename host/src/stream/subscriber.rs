//! One subscription: the events of one org that its caller may read and that
//! match its patterns, in log order from a position, each exactly once.
//!
//! It reads from the replica's ring while it keeps up and from the log while
//! it catches up (from an old position, or after falling behind the ring).
//! Every event is judged by position, so the two sources never give one
//! twice nor leave a gap between them.

use super::limits::{Place, Refused};
use super::{Frame, Hub, PAGE};
use crate::auth::Principal;
use crate::bus::log::{self, Filter, Reader};
use crate::store::StoreError;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

/// What to subscribe to.
#[derive(Clone, Debug)]
pub struct Request {
    /// Kinds or patterns such as `github.*`; empty: every kind.
    pub kinds: Vec<String>,
    /// Start after this position; `None`: from now on.
    pub since: Option<i64>,
}

/// Why a subscription could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("position {asked} is past the end of the log, which ends at {end}")]
    PastTheEnd { asked: i64, end: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a subscription ended on the server's side.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    #[error("the server is stopping")]
    Stopping,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Subscriber {
    hub: Hub,
    principal: Principal,
    filter: Filter,
    /// The last position handed out (or skipped as not wanted, while catching up).
    position: i64,
    ring: broadcast::Receiver<Arc<Frame>>,
    /// Events read from the log, not handed out yet.
    backlog: VecDeque<Arc<Frame>>,
    catching_up: bool,
    /// The transport's label in the metrics (`ws`, `sse`).
    transport: &'static str,
    stopping: watch::Receiver<bool>,
    _place: Place,
}

impl Subscriber {
    /// Opens a subscription for `principal`, counting it against the limits.
    pub async fn start(
        hub: &Hub,
        principal: Principal,
        request: Request,
        transport: &'static str,
    ) -> Result<Self, StartError> {
        let place = hub.limits().admit(&principal.token_id, &principal.org_id)?;
        // Listening first: whatever is published from here on is in the ring,
        // and what was published before is in the log.
        let ring = hub.subscribe();
        let position = match request.since {
            Some(asked) => {
                let end = log::end(hub.db()).await?;
                if asked > end {
                    return Err(StartError::PastTheEnd { asked, end });
                }
                asked
            }
            None => hub.head(),
        };
        hub.telemetry().stream_connection(transport, 1);
        Ok(Subscriber {
            hub: hub.clone(),
            principal,
            filter: Filter { kinds: request.kinds, ..Filter::default() },
            position,
            ring,
            backlog: VecDeque::new(),
            catching_up: request.since.is_some(),
            transport,
            stopping: hub.stopping(),
            _place: place,
        })
    }

    /// The position to resume from: the last event handed out.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The next event for this subscriber, waiting for one if need be.
    pub async fn next(&mut self) -> Result<Arc<Frame>, Ended> {
        loop {
            if *self.stopping.borrow() {
                return Err(Ended::Stopping);
            }
            if let Some(frame) = self.backlog.pop_front() {
                self.position = frame.seq();
                return Ok(frame);
            }
            if self.catching_up {
                self.read_log().await?;
                continue;
            }
            let received = tokio::select! {
                received = self.ring.recv() => received,
                _ = self.stopping.changed() => return Err(Ended::Stopping),
            };
            match received {
                Ok(frame) if frame.seq() > self.position && self.wants(&frame) => {
                    self.position = frame.seq();
                    return Ok(frame);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    self.hub.telemetry().stream_catch_up(self.transport);
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return Err(Ended::Stopping),
            }
        }
    }

    /// Reads the next page of the log after the position; a short page means caught up.
    async fn read_log(&mut self) -> Result<(), StoreError> {
        let reader = self.reader();
        let org = &self.principal.org_id;
        let rows = log::list(self.hub.db(), org, &reader, &self.filter, self.position, PAGE).await?;
        if (rows.len() as u64) < PAGE {
            self.catching_up = false;
        }
        self.backlog.extend(rows.into_iter().map(|row| Arc::new(Frame::of(row))));
        Ok(())
    }

    fn reader(&self) -> Reader<'_> {
        Reader::of(&self.principal)
    }

    /// The in-memory form of the query [`read_log`](Self::read_log) runs.
    fn wants(&self, frame: &Frame) -> bool {
        let event = &frame.event;
        event.org == self.principal.org_id
            && log::may_read(&self.reader(), event)
            && (self.filter.kinds.is_empty() || log::matches(&self.filter.kinds, &event.kind))
    }

    /// Records how the subscription ended, for the metrics.
    pub fn close(self, reason: &str) {
        self.hub.telemetry().stream_close(self.transport, reason);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.hub.telemetry().stream_connection(self.transport, -1);
    }
}
