//! `/api/v1/stream`: the live stream of the log as a WebSocket and as
//! Server-Sent Events, and the tickets browsers subscribe with.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::events::EventView;
use super::params::{Grammar, Pattern};
use super::problem::Problem;
use crate::auth::{Principal, Role};
use crate::store::entities::event;
use crate::store::now_ms;
use crate::stream::subscriber::{Ended, Request, StartError, Subscriber};
use crate::stream::tickets::Tickets;
use crate::stream::{Frame, Hub};
use futures::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::sse::{Event, SSE};
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{IntoResponse, Response};
use poem_openapi::auth::ApiKey;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, SecurityScheme, Tags};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Tags)]
enum StreamTag {
    /// The event log, live: WebSocket and Server-Sent Events, resumable by position.
    Stream,
}

/// `?ticket=` from `POST /api/v1/stream/tickets`: for browsers, whose
/// `EventSource` and `WebSocket` cannot send an `Authorization` header.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "ticket", key_in = "query")]
pub struct TicketAuth(pub ApiKey);

/// A bearer token, or a ticket.
#[derive(SecurityScheme)]
pub enum StreamAuth {
    Bearer(BearerAuth),
    Ticket(TicketAuth),
}

/// A single-use ticket to subscribe with.
#[derive(Object)]
pub struct Ticket {
    /// Pass as `?ticket=` to `GET /api/v1/stream` or `/api/v1/stream/sse`, once.
    #[oai(validator(pattern = r"^dpt_[A-Za-z0-9_-]{43}$"))]
    pub ticket: String,
    /// After this the ticket no longer works.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ApiResponse)]
enum TicketIssued {
    /// The ticket, bound to the caller.
    #[oai(status = 201)]
    Created(Json<Ticket>),
}

/// Why the server ended a subscription.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum CloseReason {
    /// The server is stopping; reconnect (to any replica).
    Stopping,
    /// The subscriber took no message within the send timeout.
    Slow,
    /// The log could not be read.
    Error,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Stopping => "stopping",
            CloseReason::Slow => "slow",
            CloseReason::Error => "error",
        }
    }

    /// The WebSocket close code: 1001 going away, 4008 too slow, 1011 server error.
    fn code(self) -> CloseCode {
        match self {
            CloseReason::Stopping => CloseCode::Away,
            CloseReason::Slow => CloseCode::Reserved(4008),
            CloseReason::Error => CloseCode::Error,
        }
    }
}

/// The last message of a subscription the server ends: an SSE `close` event,
/// and the WebSocket close frame's reason.
#[derive(Object)]
pub struct StreamClosed {
    pub reason: CloseReason,
    /// Subscribe again after this position (`since`, or `Last-Event-ID`) to miss nothing.
    pub resume_from: i64,
}

/// A kind, or a pattern such as `github.*`, or `*`.
pub type KindPattern = Pattern<KindGrammar>;

/// The grammar of subscription patterns, as plugins' manifests use them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindGrammar;

impl Grammar for KindGrammar {
    const NAME: &'static str = "KindPattern";
    const PATTERN: &'static str = r"^(\*|[a-z0-9._-]{1,128}(\.\*)?)$";
    const MAX_LENGTH: usize = 130;
    const DESCRIPTION: &'static str = "An event kind (`github.pull.updated`), a kind stem and `.*` (`github.*`), or `*`: lowercase letters, \
         digits, `.`, `_` and `-`.";

    fn check(value: &str) -> bool {
        crate::runtime::manifest::valid_pattern(value)
    }
}

/// Why a subscription could not start.
#[derive(ApiResponse, Debug)]
pub enum StreamError {
    /// `since` or `Last-Event-ID` lies past the end of the log (`urn:devpulse:problem:invalid-input`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid bearer token, or a ticket that is unknown, used or expired (`urn:devpulse:problem:unauthorized`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token or its org holds as many subscriptions as it may on this replica, or the token is over its
    /// rate limit (`urn:devpulse:problem:too-many-subscriptions`, `urn:devpulse:problem:rate-limited`).
    #[oai(status = 429, content_type = "application/problem+json")]
    TooMany(Json<Problem>),
    /// The database did not answer (`urn:devpulse:problem:unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<ApiError> for StreamError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::BadRequest(problem) => StreamError::BadRequest(problem),
            ApiError::Unauthorized(problem) | ApiError::Forbidden(problem) => StreamError::Unauthorized(problem),
            ApiError::NotFound(problem) | ApiError::Conflict(problem) => StreamError::BadRequest(problem),
            ApiError::Unavailable(problem) => StreamError::Unavailable(problem),
        }
    }
}

impl From<StartError> for StreamError {
    fn from(err: StartError) -> Self {
        match err {
            StartError::Refused(refused) => StreamError::TooMany(Json(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-subscriptions",
                refused.to_string(),
            ))),
            StartError::PastTheEnd { .. } => StreamError::BadRequest(Json(Problem::bad_request(err.to_string()))),
            StartError::Store(err) => ApiError::unavailable(err).into(),
        }
    }
}

/// The SSE response: documented as a stream of events, built by poem.
pub struct EventStream(SSE);

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl ApiResponse for EventStream {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "`text/event-stream`: a `retry:` line, then one `message` per event (`id:` its position, \
                              `data:` the event as `GET /api/v1/events/{id}` shows it), comments as keep-alives, and \
                              a `close` event (`StreamClosed`) when the server ends the stream.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "text/event-stream",
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                        items: Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema {
                            one_of: vec![EventView::schema_ref(), StreamClosed::schema_ref()],
                            ..MetaSchema::ANY
                        })))),
                        ..MetaSchema::new_with_format("array", "event-stream")
                    })),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        EventView::register(registry);
        StreamClosed::register(registry);
    }
}

/// The WebSocket handshake's answer; the subscription runs on the upgraded connection.
pub struct Upgrade(Response);

impl IntoResponse for Upgrade {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for Upgrade {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Switching to the WebSocket protocol. The server then sends one text message per event \
                              (the event as `GET /api/v1/events/{id}` shows it, with its `position`) and pings as \
                              keep-alives; when it ends the subscription, a close frame (1001 stopping, 4008 too \
                              slow, 1011 error) whose reason is a `StreamClosed` document.",
                status: Some(101),
                status_range: None,
                content: vec![],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        EventView::register(registry);
        StreamClosed::register(registry);
    }
}

pub struct StreamApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "StreamTag::Stream")]
impl StreamApi {
    /// A single-use ticket bound to the caller, for a browser to subscribe with
    /// (`?ticket=`), so its token never appears in a URL. It works once, within
    /// `[stream] ticket_seconds` (30 s by default).
    #[oai(path = "/stream/tickets", method = "post", operation_id = "createStreamTicket")]
    async fn ticket(&self, auth: BearerAuth) -> Result<TicketIssued, ApiError> {
        let principal = self.state.authorize(&auth, Role::Developer).await?;
        let issued = self.state.tickets.issue(&principal).await.map_err(ApiError::unavailable)?;
        let expires_at = chrono::DateTime::from_timestamp_millis(issued.expires_at).unwrap_or_default();
        Ok(TicketIssued::Created(Json(Ticket { ticket: issued.ticket, expires_at })))
    }

    /// The org's events as they are committed, over a WebSocket: what the
    /// caller may read through `GET /api/v1/events` (alert transitions under
    /// the alerts' visibility rule), matching `kind`, in log order. With
    /// `since`, the subscription starts after that position and first receives
    /// every event the log holds from there, then continues live, none missed
    /// and none twice; reconnect with the last position received. Concurrent
    /// subscriptions are limited per token and per org on each replica.
    #[oai(path = "/stream", method = "get", operation_id = "streamWebSocket")]
    async fn websocket(
        &self,
        auth: StreamAuth,
        socket: WebSocket,
        /// Kinds or patterns to receive (repeat the parameter); none: every kind.
        #[oai(validator(max_items = 32))]
        kind: Query<Vec<KindPattern>>,
        /// Start after this log position.
        #[oai(validator(minimum(value = "0")))]
        since: Query<Option<i64>>,
    ) -> Result<Upgrade, StreamError> {
        let subscriber = self.subscribe(auth, kind.0, since.0, "ws").await?;
        let hub = self.state.stream.clone();
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_message_size(Some(64 << 10))
            .max_frame_size(Some(64 << 10));
        let upgraded = socket.config(config).on_upgrade(move |socket| serve_websocket(hub, subscriber, socket));
        Ok(Upgrade(upgraded.into_response()))
    }

    /// The same stream as Server-Sent Events, for `EventSource`: each event's
    /// `id` is its position, so a browser that reconnects sends it back as
    /// `Last-Event-ID` and resumes exactly where it stopped.
    #[oai(path = "/stream/sse", method = "get", operation_id = "streamServerSentEvents")]
    async fn sse(
        &self,
        auth: StreamAuth,
        /// Kinds or patterns to receive (repeat the parameter); none: every kind.
        #[oai(validator(max_items = 32))]
        kind: Query<Vec<KindPattern>>,
        /// Start after this log position.
        #[oai(validator(minimum(value = "0")))]
        since: Query<Option<i64>>,
        /// Sent by a reconnecting `EventSource`: resume after this position (it wins over `since`).
        #[oai(name = "Last-Event-ID", validator(minimum(value = "0")))]
        last_event_id: Header<Option<i64>>,
    ) -> Result<EventStream, StreamError> {
        let subscriber = self.subscribe(auth, kind.0, last_event_id.0.or(since.0), "sse").await?;
        let (retry_ms, keep_alive) = {
            let config = self.state.stream.config();
            (config.retry_ms, Duration::from_secs(config.keep_alive_seconds))
        };
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(feed_sse(self.state.stream.clone(), subscriber, sender));
        let retry = futures::stream::once(async move { Event::retry(retry_ms) });
        let sse = SSE::new(retry.chain(tokio_stream_of(receiver))).keep_alive(keep_alive);
        Ok(EventStream(sse))
    }
}

impl StreamApi {
    async fn subscribe(
        &self,
        auth: StreamAuth,
        kinds: Vec<KindPattern>,
        since: Option<i64>,
        transport: &'static str,
    ) -> Result<Subscriber, StreamError> {
        let principal = self.principal(auth).await?;
        let request = Request { kinds: kinds.into_iter().map(|kind| kind.0).collect(), since };
        Ok(Subscriber::start(&self.state.stream, principal, request, transport).await?)
    }

    async fn principal(&self, auth: StreamAuth) -> Result<Principal, StreamError> {
        match auth {
            StreamAuth::Bearer(bearer) => Ok(self.state.authorize(&bearer, Role::Developer).await?),
            StreamAuth::Ticket(ticket) => redeem(&self.state.tickets, &ticket.0.key).await,
        }
    }
}

async fn redeem(tickets: &Tickets, ticket: &str) -> Result<Principal, StreamError> {
    tickets.redeem(ticket).await.map_err(|err| StreamError::from(ApiError::unavailable(err)))?.ok_or_else(|| {
        StreamError::Unauthorized(Json(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the ticket is unknown, already used or expired; ask POST /api/v1/stream/tickets for another",
        )))
    })
}

/// The event as subscribers receive it: as `GET /api/v1/events/{id}` shows it.
fn render(event: &event::Model) -> String {
    EventView::from(event.clone()).to_json_string()
}

/// How long ago the event was received, for the lag metric.
fn age(frame: &Frame) -> Duration {
    Duration::from_millis(u64::try_from(now_ms() - frame.event.received_at).unwrap_or(0))
}

fn closing(reason: CloseReason, subscriber: &Subscriber) -> String {
    StreamClosed { reason, resume_from: subscriber.position() }.to_json_string()
}

/// Why a subscription ended, on either side.
enum Outcome {
    /// The client closed or dropped the connection.
    Client,
    Server(CloseReason),
}

fn server_end(ended: Ended) -> Outcome {
    match ended {
        Ended::Stopping => Outcome::Server(CloseReason::Stopping),
        Ended::Store(err) => {
            tracing::warn!("a live-stream subscription could not read the log: {err}");
            Outcome::Server(CloseReason::Error)
        }
    }
}

/// Sends events, pings and finally a close frame over the upgraded connection.
async fn serve_websocket(hub: Hub, mut subscriber: Subscriber, socket: WebSocketStream) {
    let send_timeout = Duration::from_secs(hub.config().send_timeout_seconds);
    let keep_alive = Duration::from_secs(hub.config().keep_alive_seconds);
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    let outcome = loop {
        tokio::select! {
            next = subscriber.next() => match next {
                Ok(frame) => {
                    let text = frame.rendered(render).to_owned();
                    match tokio::time::timeout(send_timeout, sink.send(Message::Text(text))).await {
                        Ok(Ok(())) => hub.telemetry().stream_message("ws", age(&frame)),
                        Ok(Err(_)) => break Outcome::Client,
                        Err(_) => break Outcome::Server(CloseReason::Slow),
                    }
                }
                Err(ended) => break server_end(ended),
            },
            _ = ping.tick() => match tokio::time::timeout(send_timeout, sink.send(Message::Ping(Vec::new()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break Outcome::Client,
                Err(_) => break Outcome::Server(CloseReason::Slow),
            },
            message = incoming.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break Outcome::Client,
                // Pongs, and anything a client says: nothing to answer.
                Some(Ok(_)) => {}
            },
        }
    };
    match outcome {
        Outcome::Client => subscriber.close("client"),
        Outcome::Server(reason) => {
            let close = Message::close_with(reason.code(), closing(reason, &subscriber));
            // Best effort: a slow client may not take even this.
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
            subscriber.close(reason.as_str());
        }
    }
}

/// Feeds an SSE response through a small bounded channel, so a client that
/// stops reading is noticed (the channel stays full) and let go.
async fn feed_sse(hub: Hub, mut subscriber: Subscriber, sender: mpsc::Sender<Event>) {
    let send_timeout = Duration::from_secs(hub.config().send_timeout_seconds);
    let outcome = loop {
        let frame = tokio::select! {
            next = subscriber.next() => match next {
                Ok(frame) => frame,
                Err(ended) => break server_end(ended),
            },
            () = sender.closed() => break Outcome::Client,
        };
        let event = Event::message(frame.rendered(render)).id(frame.seq().to_string());
        match tokio::time::timeout(send_timeout, sender.send(event)).await {
            Ok(Ok(())) => hub.telemetry().stream_message("sse", age(&frame)),
            Ok(Err(_)) => break Outcome::Client,
            Err(_) => break Outcome::Server(CloseReason::Slow),
        }
    };
    match outcome {
        Outcome::Client => subscriber.close("client"),
        Outcome::Server(reason) => {
            let close = Event::message(closing(reason, &subscriber)).event_type("close");
            let _ = sender.try_send(close);
            subscriber.close(reason.as_str());
        }
    }
}

/// The receiving end of a channel as a stream.
fn tokio_stream_of<T: Send + 'static>(mut receiver: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::{Grammar, KindGrammar};

    /// The documented pattern and the server's check accept the same patterns.
    #[test]
    fn the_kind_pattern_and_its_check_agree() {
        let pattern = regex::Regex::new(KindGrammar::PATTERN).unwrap();
        for (text, valid) in [
            ("*", true),
            ("github.*", true),
            ("github.pull.updated", true),
            ("system.plugin_failed", true),
            ("..*", true),
            ("", false),
            (".*", false),
            ("github*", false),
            ("Github.*", false),
            ("a.*.*", false),
            ("a b", false),
        ] {
            assert_eq!(KindGrammar::check(text), valid, "check {text:?}");
            assert_eq!(pattern.is_match(text), valid, "pattern {text:?}");
        }
    }
}
