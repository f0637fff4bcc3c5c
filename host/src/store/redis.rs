//! Optional Redis (fred). Today it backs the readiness check; cross-replica
//! features (live-stream fan-out, leases) build on the same client.

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

    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}
