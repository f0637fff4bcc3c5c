//! Live-stream clients as a dashboard would use them: a WebSocket
//! (tokio-tungstenite) and an SSE reader (reqwest and eventsource-stream).

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How a client authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    Token(&'a str),
    Ticket(&'a str),
}

impl Auth<'_> {
    fn query(&self) -> String {
        match self {
            Auth::Token(_) => String::new(),
            Auth::Ticket(ticket) => format!("ticket={ticket}"),
        }
    }
}

fn with_query(path: &str, auth: Auth<'_>, query: &str) -> String {
    let parts: Vec<String> = [auth.query(), query.to_owned()].into_iter().filter(|part| !part.is_empty()).collect();
    if parts.is_empty() { path.to_owned() } else { format!("{path}?{}", parts.join("&")) }
}

/// One message of a subscription: an event, or the server's closing notice.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// The event, as `GET /api/v1/events/{id}` shows it.
    Event(Value),
    /// SSE `close` event data, or a WebSocket close frame's code and reason.
    Closed { code: Option<u16>, notice: Value },
}

impl Received {
    /// The event, or a panic naming what came instead.
    pub fn event(self) -> Value {
        match self {
            Received::Event(event) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// A WebSocket subscription.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Subscribes at `base` (`http://host:port`) with `query` (`kind=...&since=...`);
    /// on refusal, the HTTP status and problem document.
    pub async fn connect(base: &str, auth: Auth<'_>, query: &str) -> Result<Self, (u16, Value)> {
        let url = format!("{}{}", base.replacen("http", "ws", 1), with_query("/api/v1/stream", auth, query));
        let mut request = url.into_client_request().expect("a valid WebSocket URL");
        if let Auth::Token(token) = auth {
            let value = format!("Bearer {token}").parse().expect("a header value");
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(WsClient { socket }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_deref().and_then(|body| serde_json::from_slice(body).ok());
                Err((status, body.unwrap_or(Value::Null)))
            }
            Err(err) => panic!("the WebSocket handshake failed: {err}"),
        }
    }

    /// The next message within `limit`, `None` if none came.
    pub async fn next(&mut self, limit: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()??;
            match message.expect("the WebSocket stays readable") {
                Message::Text(text) => return Some(Received::Event(serde_json::from_str(&text).expect("JSON"))),
                Message::Close(frame) => {
                    let (code, notice) = frame.map_or((None, Value::Null), |frame| {
                        (Some(u16::from(frame.code)), serde_json::from_str(&frame.reason).unwrap_or(Value::Null))
                    });
                    return Some(Received::Closed { code, notice });
                }
                _ => {}
            }
        }
    }

    /// Closes the connection as a client does.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

type SseEvents = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// A Server-Sent Events subscription.
pub struct SseClient {
    events: SseEvents,
}

impl SseClient {
    /// Subscribes at `base` with `query`, resuming after `last_event_id` as a
    /// reconnecting `EventSource` does; on refusal, the status and problem.
    pub async fn connect(
        http: &reqwest::Client,
        base: &str,
        auth: Auth<'_>,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<Self, (u16, Value)> {
        let mut request = http.get(format!("{base}{}", with_query("/api/v1/stream/sse", auth, query)));
        if let Auth::Token(token) = auth {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the request reaches the server");
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let events = response.bytes_stream().eventsource().map(|event| event.map_err(|err| err.to_string()));
        Ok(SseClient { events: Box::pin(events) })
    }

    /// The next message within `limit` (keep-alive comments are skipped), with
    /// its SSE `id` for events; `None` if none came or the stream ended.
    pub async fn next(&mut self, limit: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.next()).await.ok()??.ok()?;
            if event.data.is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data).expect("JSON data");
            if event.event == "close" {
                return Some(Received::Closed { code: None, notice: data });
            }
            assert_eq!(event.id, data["position"].to_string(), "the SSE id is the event's position");
            return Some(Received::Event(data));
        }
    }
}

/// What both clients do.
pub trait Subscription {
    /// The next message within `limit`, `None` if none came.
    fn next(&mut self, limit: Duration) -> impl std::future::Future<Output = Option<Received>> + Send;

    /// The next `count` events, panicking if one does not come within `limit`.
    fn take(&mut self, count: usize, limit: Duration) -> impl std::future::Future<Output = Vec<Value>> + Send
    where
        Self: Send,
    {
        async move {
            let mut events = Vec::with_capacity(count);
            for index in 0..count {
                let received =
                    self.next(limit).await.unwrap_or_else(|| panic!("event {} of {count} did not come", index + 1));
                events.push(received.event());
            }
            events
        }
    }
}

impl Subscription for WsClient {
    async fn next(&mut self, limit: Duration) -> Option<Received> {
        WsClient::next(self, limit).await
    }
}

impl Subscription for SseClient {
    async fn next(&mut self, limit: Duration) -> Option<Received> {
        SseClient::next(self, limit).await
    }
}
