//! Optional Redis (fred): the readiness check, waking other replicas when the
//! log grows, shared rate limits, stream tickets; cross-replica features build
//! on the same client.

use fred::prelude::*;

/// A connected client. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: Client,
}

impl Redis {
    /// Connects to `url` (`redis://host:port/db`), failing if it does not answer.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let config = Config::from_url(url)?;
        let client = Builder::from_config(config).build()?;
        client.init().await?;
        Ok(Redis { client })
    }

    /// A round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), Error> {
        self.client.ping::<String>(None).await.map(|_| ())
    }

    /// Runs a Lua `script` on one key with one argument, answering a count.
    pub async fn eval_count(&self, script: &str, key: &str, arg: u64) -> Result<u64, Error> {
        self.client.eval::<u64, _, _, _>(script, vec![key], vec![arg]).await
    }

    /// Stores `value` under `key` for `ttl_ms`.
    pub async fn put_for(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), Error> {
        let expire = Some(Expiration::PX(ttl_ms as i64));
        self.client.set::<(), _, _>(key, value, expire, None, false).await
    }

    /// Reads and deletes `key` in one step, so only one caller gets its value.
    pub async fn take(&self, key: &str) -> Result<Option<String>, Error> {
        self.client.getdel::<Option<String>, _>(key).await
    }

    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

impl Redis {
    /// Publishes `message` on `channel`.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), Error> {
        self.client.publish::<(), _, _>(channel, message).await
    }

    /// Calls `on_message` for every message on `channel` until the connection ends.
    pub async fn subscribe(url: &str, channel: &str, on_message: impl Fn(&str)) -> Result<(), Error> {
        let subscriber = Builder::from_config(Config::from_url(url)?).build()?;
        subscriber.init().await?;
        let mut messages = subscriber.message_rx();
        subscriber.subscribe(channel).await?;
        while let Ok(message) = messages.recv().await {
            if let Ok(text) = message.value.convert::<String>() {
                on_message(&text);
            }
        }
        Ok(())
    }
}
