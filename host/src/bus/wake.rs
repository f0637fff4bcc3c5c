//! Wakes the delivery workers and the live stream when the log grows, here and
//! (through Redis) in every other replica, so a new event is handled without
//! waiting for a poll.
//!
//! A wake says what was appended (each event's org and kind) where the
//! committer knows it, and wakes only the listeners it concerns: a partition
//! hears of its own org's events of the kinds its plugin subscribes to. Waking
//! every partition on every append sent each of them to the database to find
//! nothing, which grows with orgs times plugins. A listener that misses a wake
//! still looks at the log on its next poll, so a wake is never needed for
//! correctness, only for promptness.

use crate::bus::log::{self, NewEntry};
use crate::store::redis::Redis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// The Redis channel replicas announce new events on.
const CHANNEL: &str = "devpulse:events:appended";

/// What a commit may have added to the log (or queued for delivery).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct News {
    /// The org and kind of each event appended.
    events: BTreeSet<(String, String)>,
    /// Orgs where events of any kind may have been appended, or dead letters
    /// queued for replay.
    orgs: BTreeSet<String>,
    /// Anything, in every org.
    everywhere: bool,
}

impl News {
    /// The events of `entries`.
    pub fn of(entries: &[NewEntry]) -> Self {
        let events = entries.iter().map(|entry| (entry.org.clone(), entry.kind.clone())).collect();
        News { events, ..News::default() }
    }

    /// Events of `kinds` appended in `org`.
    pub fn kinds<'a>(org: &str, kinds: impl IntoIterator<Item = &'a str>) -> Self {
        let events = kinds.into_iter().map(|kind| (org.to_owned(), kind.to_owned())).collect();
        News { events, ..News::default() }
    }

    /// Anything in `org`, for committers that do not know what they appended.
    pub fn org(org: &str) -> Self {
        News { orgs: BTreeSet::from([org.to_owned()]), ..News::default() }
    }

    /// Anything anywhere: what a message from another version of DevPulse says.
    fn everywhere() -> Self {
        News { everywhere: true, ..News::default() }
    }

    fn is_empty(&self) -> bool {
        !self.everywhere && self.orgs.is_empty() && self.events.is_empty()
    }

    fn merge(&mut self, other: News) {
        self.everywhere |= other.everywhere;
        self.orgs.extend(other.orgs);
        self.events.extend(other.events);
    }

    /// True when it may hold something for a reader of `subscriptions` in `org`.
    fn concerns(&self, org: &str, subscriptions: &[String]) -> bool {
        self.everywhere
            || self.orgs.contains(org)
            || self.events.iter().any(|(at, kind)| at == org && log::matches(subscriptions, kind))
    }
}

/// A replica's news as it crosses Redis, naming the replica so it ignores its own.
#[derive(Serialize, Deserialize)]
struct Message {
    from: String,
    news: News,
}

/// Who wants waking, and for what.
struct Interest {
    /// `None`: every org and kind (the live stream).
    org: Option<String>,
    subscriptions: Mutex<Vec<String>>,
    notify: Notify,
}

impl Interest {
    fn concerned(&self, news: &News) -> bool {
        match &self.org {
            None => !news.is_empty(),
            Some(org) => news.concerns(org, &lock(&self.subscriptions)),
        }
    }
}

/// Wakes when news concerning it arrives. Dropping it stops the wakes.
pub struct Listener {
    interest: Arc<Interest>,
}

impl Listener {
    /// Sets the kinds this listener reads: a plugin's subscriptions, which
    /// change when it is reloaded.
    pub fn follow(&self, subscriptions: &[String]) {
        let mut current = lock(&self.interest.subscriptions);
        if current.as_slice() != subscriptions {
            *current = subscriptions.to_vec();
        }
    }

    /// Resolves on the next news that concerns this listener, or at once if
    /// some arrived since it last resolved.
    pub async fn woken(&self) {
        self.interest.notify.notified().await;
    }
}

/// Cheap to clone; clones share the listeners.
#[derive(Clone)]
pub struct Wake {
    inner: Arc<Inner>,
}

struct Inner {
    /// Names this process in its Redis messages.
    id: String,
    listeners: Mutex<Vec<Weak<Interest>>>,
    /// Set once news is published to other replicas; until then none is kept for them.
    bridged: AtomicBool,
    /// This process's news not yet published: bursts go out as one message.
    unpublished: Mutex<News>,
    publish: Notify,
}

impl Default for Wake {
    fn default() -> Self {
        Wake {
            inner: Arc::new(Inner {
                id: uuid::Uuid::new_v4().to_string(),
                listeners: Mutex::default(),
                bridged: AtomicBool::new(false),
                unpublished: Mutex::default(),
                publish: Notify::new(),
            }),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Wake {
    /// Called after a commit that appended what `news` says.
    pub fn appended(&self, news: News) {
        if news.is_empty() {
            return;
        }
        self.deliver(&news);
        if self.inner.bridged.load(Ordering::Acquire) {
            lock(&self.inner.unpublished).merge(news);
            self.inner.publish.notify_one();
        }
    }

    /// A listener for the partitions of `org`, reading no kind until it [follows](Listener::follow) some.
    pub fn listen(&self, org: &str) -> Listener {
        self.add(Some(org.to_owned()))
    }

    /// A listener woken by any news at all.
    pub fn listen_to_everything(&self) -> Listener {
        self.add(None)
    }

    fn add(&self, org: Option<String>) -> Listener {
        let interest = Arc::new(Interest { org, subscriptions: Mutex::new(Vec::new()), notify: Notify::new() });
        lock(&self.inner.listeners).push(Arc::downgrade(&interest));
        Listener { interest }
    }

    /// Wakes the listeners `news` concerns, forgetting those dropped.
    fn deliver(&self, news: &News) {
        lock(&self.inner.listeners).retain(|listener| match listener.upgrade() {
            Some(interest) => {
                if interest.concerned(news) {
                    interest.notify.notify_one();
                }
                true
            }
            None => false,
        });
    }

    /// Publishes this process's news and listens for other replicas'; runs
    /// until the connection ends.
    pub async fn bridge(self, redis: Redis, url: String) {
        self.inner.bridged.store(true, Ordering::Release);
        let publisher = async {
            loop {
                self.inner.publish.notified().await;
                let news = std::mem::take(&mut *lock(&self.inner.unpublished));
                if news.is_empty() {
                    continue;
                }
                let message = Message { from: self.inner.id.clone(), news };
                let text = serde_json::to_string(&message).unwrap_or_default();
                if let Err(err) = redis.publish(CHANNEL, &text).await {
                    tracing::warn!("announcing new events through Redis failed: {err}");
                }
            }
        };
        let subscriber = Redis::subscribe(&url, CHANNEL, |text| match serde_json::from_str::<Message>(text) {
            Ok(message) if message.from == self.inner.id => {}
            Ok(message) => self.deliver(&message.news),
            // Another version's message: it says something was appended, not what.
            Err(_) => self.deliver(&News::everywhere()),
        });
        tokio::select! {
            () = publisher => {}
            result = subscriber => if let Err(err) = result {
                tracing::warn!("listening for other replicas' events failed: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn was_woken(listener: &Listener) -> bool {
        tokio::time::timeout(Duration::from_millis(20), listener.woken()).await.is_ok()
    }

    fn subscriptions(kinds: &[&str]) -> Vec<String> {
        kinds.iter().map(|kind| kind.to_string()).collect()
    }

    #[tokio::test]
    async fn a_partition_wakes_for_its_orgs_events_of_its_kinds_only() {
        let wake = Wake::default();
        let github = wake.listen("acme");
        github.follow(&subscriptions(&["github.*"]));
        let health = wake.listen("acme");
        health.follow(&subscriptions(&["system.plugin.loaded"]));
        let elsewhere = wake.listen("initech");
        elsewhere.follow(&subscriptions(&["github.*"]));
        let stream = wake.listen_to_everything();

        wake.appended(News::kinds("acme", ["github.push"]));
        assert!(was_woken(&github).await);
        assert!(!was_woken(&health).await, "not a kind it reads");
        assert!(!was_woken(&elsewhere).await, "not its org");
        assert!(was_woken(&stream).await);

        wake.appended(News::org("initech"));
        assert!(was_woken(&elsewhere).await, "anything in its org");
        assert!(!was_woken(&github).await);

        wake.appended(News::everywhere());
        for listener in [&github, &health, &elsewhere, &stream] {
            assert!(was_woken(listener).await);
        }
        wake.appended(News::default());
        assert!(!was_woken(&stream).await, "no news wakes nobody");
    }

    #[tokio::test]
    async fn news_that_came_while_busy_is_not_lost_and_new_subscriptions_count() {
        let wake = Wake::default();
        let partition = wake.listen("acme");
        wake.appended(News::kinds("acme", ["hello.greeted"]));
        assert!(!was_woken(&partition).await, "it reads nothing yet");
        partition.follow(&subscriptions(&["hello.greeted"]));
        // Appended twice before it waits: one wake, then none.
        wake.appended(News::kinds("acme", ["hello.greeted"]));
        wake.appended(News::kinds("acme", ["hello.greeted"]));
        assert!(was_woken(&partition).await);
        assert!(!was_woken(&partition).await);
    }

    #[test]
    fn dropped_listeners_are_forgotten() {
        let wake = Wake::default();
        let kept = wake.listen("acme");
        drop(wake.listen("acme"));
        wake.appended(News::org("acme"));
        assert_eq!(lock(&wake.inner.listeners).len(), 1);
        drop(kept);
    }

    #[test]
    fn news_merges_and_crosses_the_wire_whole() {
        let mut news = News::kinds("acme", ["github.push"]);
        news.merge(News::org("initech"));
        let message = Message { from: "r1".into(), news: news.clone() };
        let read: Message = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
        assert_eq!(read.news, news);
        assert!(read.news.concerns("initech", &[]));
        assert!(read.news.concerns("acme", &subscriptions(&["github.*"])));
        assert!(!read.news.concerns("acme", &subscriptions(&["hello.greeted"])));
    }
}
