//! Notification receivers on a free port: a signed-webhook receiver that
//! checks each signature with its own HMAC code, and a Slack-format one. Each
//! records what it was sent, and can be told to fail for a while.

use hmac::{Hmac, Mac};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Response, Server, http::StatusCode};
use serde_json::Value;
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One request a receiver took.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// For the signed webhook: whether `x-devpulse-signature-256` matched the body.
    pub signature_ok: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Requests answered with a failure while this is set.
    failing: AtomicBool,
    /// Every request that arrived, answered or not, failures included.
    attempts: Mutex<u64>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A webhook receiver verifying signatures made with `secret`.
    pub async fn webhook(secret: &str) -> Self {
        Self::start(Some(secret.to_owned())).await
    }

    /// A Slack incoming-webhook stand-in: answers `ok` as Slack does.
    pub async fn slack() -> Self {
        Self::start(None).await
    }

    async fn start(secret: Option<String>) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("a free port");
        let port = acceptor.local_addr().remove(0).as_socket_addr().expect("a TCP address").port();
        let shared = Arc::new(Shared::default());
        let app = poem::endpoint::make({
            let shared = shared.clone();
            move |mut request: Request| {
                let (shared, secret) = (shared.clone(), secret.clone());
                async move {
                    let body = request.take_body().into_vec().await.unwrap_or_default();
                    take(&shared, secret.as_deref(), &request, &body)
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Receiver { url: format!("http://127.0.0.1:{port}/hook"), shared, task }
    }

    /// What was taken (answered 2xx), oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("receiver").clone()
    }

    /// How many were taken, without copying them.
    pub fn count(&self) -> usize {
        self.shared.received.lock().expect("receiver").len()
    }

    /// How many requests arrived, failed ones included.
    pub fn attempts(&self) -> u64 {
        *self.shared.attempts.lock().expect("receiver")
    }

    /// While true, every request is answered 503 and not recorded.
    pub fn fail(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn take(shared: &Shared, secret: Option<&str>, request: &Request, body: &[u8]) -> Response {
    *shared.attempts.lock().expect("receiver") += 1;
    if shared.failing.load(Ordering::SeqCst) {
        return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body("down for a test");
    }
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    let signature_ok = secret.is_some_and(|secret| {
        let sent = request.headers().get("x-devpulse-signature-256").and_then(|value| value.to_str().ok());
        sent.is_some_and(|sent| sent == sign(secret, body))
    });
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    shared.received.lock().expect("receiver").push(Received { headers, body, signature_ok });
    Response::builder().status(StatusCode::OK).body("ok")
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
