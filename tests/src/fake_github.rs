//! The fake GitHub of `tests/fake-github` served over HTTP on a free port, and
//! redeliveries performed as GitHub would: the stored delivery sent again,
//! signed, to the hook's DevPulse endpoint, and its outcome added to the log.

use crate::{deliver, github_headers};
use fake_github::FakeGithub;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Body, Request, Response, Server, http::StatusCode};
use std::sync::{Arc, Mutex};

/// Where GitHub delivers the watched hook: a DevPulse delivery URL and its secret.
#[derive(Clone)]
struct Target {
    url: String,
    secret: String,
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGithubServer {
    /// `http://127.0.0.1:PORT`: the plugin's `api_url`.
    pub url: String,
    pub fake: Arc<Mutex<FakeGithub>>,
    target: Arc<Mutex<Option<Target>>>,
    task: tokio::task::JoinHandle<()>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl FakeGithubServer {
    /// Serves the scenario's history to `token`; `configure` sets limits.
    pub async fn start(token: &str, configure: impl FnOnce(&mut FakeGithub)) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("a free port");
        let address = acceptor.local_addr().remove(0);
        let port = address.as_socket_addr().expect("a TCP address").port();
        let url = format!("http://127.0.0.1:{port}");
        let mut fake = FakeGithub::new(FakeGithub::scenario_data(), &url, token);
        configure(&mut fake);
        let fake = Arc::new(Mutex::new(fake));
        let target: Arc<Mutex<Option<Target>>> = Arc::default();
        let app = poem::endpoint::make({
            let (fake, target) = (fake.clone(), target.clone());
            move |request: Request| {
                let (fake, target) = (fake.clone(), target.clone());
                async move { answer(&fake, &target, &request) }
            }
        });
        let task = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        FakeGithubServer { url, fake, target, task }
    }

    /// Where redeliveries go.
    pub fn deliver_to(&self, url: &str, secret: &str) {
        *self.target.lock().expect("target") = Some(Target { url: url.into(), secret: secret.into() });
    }

    /// How many requests asked for `path`.
    pub fn requests_for(&self, path: &str) -> usize {
        self.fake.lock().expect("fake").requests_for(path)
    }
}

impl Drop for FakeGithubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers from the fake; a redelivery it was asked for is sent in the background.
fn answer(fake: &Arc<Mutex<FakeGithub>>, target: &Arc<Mutex<Option<Target>>>, request: &Request) -> Response {
    let authorization = request.headers().get("authorization").and_then(|value| value.to_str().ok());
    let path = request.uri().path_and_query().map(|path| path.as_str()).unwrap_or("/");
    let (answer, redelivery) = {
        let mut fake = fake.lock().expect("fake");
        let asked = fake.redeliveries_asked.len();
        let answer = fake.respond(request.method().as_str(), path, authorization, now_ms());
        let redelivery = fake.redeliveries_asked[asked..]
            .first()
            .and_then(|id| fake.deliveries.iter().find(|delivery| delivery.id == *id).cloned());
        (answer, redelivery)
    };
    if let (Some(delivery), Some(target)) = (redelivery, target.lock().expect("target").clone()) {
        let fake = fake.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&delivery.payload).expect("JSON");
            let headers = github_headers(&target.secret, &delivery.event, &delivery.guid, &body);
            let (status, _) = deliver(&reqwest::Client::new(), &target.url, &headers, body).await;
            let mut fake = fake.lock().expect("fake");
            fake.record_delivery(&delivery.guid, &delivery.event, delivery.payload, status, true, now_ms());
        });
    }
    let mut response = Response::builder().status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.content_type("application/json").body(Body::from(answer.body))
}
