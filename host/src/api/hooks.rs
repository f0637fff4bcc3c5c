//! `/api/v1/hooks`: webhook sources per org (admin), and the delivery endpoint
//! senders post to, authenticated by the body's signature instead of a token.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::params::Text;
use super::problem::Problem;
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::bus::ingest::sources;
use crate::bus::ingest::{Delivery, Rejection};
use poem::http::StatusCode;
use poem::{Body, Request, Response};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

#[derive(Tags)]
enum HookTag {
    /// Signed webhook sources and their deliveries.
    Webhooks,
}

/// The secret deliveries of a source are signed with. It is never returned.
#[derive(Object)]
pub struct HookSecret {
    #[oai(validator(min_length = 8, max_length = 256))]
    pub secret: Text,
}

/// A webhook source as the caller's org sees it.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HookView {
    pub source: String,
    /// How deliveries are signed.
    pub scheme: crate::auth::signature::Scheme,
    pub kind_header: String,
    pub delivery_header: String,
    pub signature_header: String,
    /// True once an admin set a secret for this org.
    pub configured: bool,
    /// Where the sender posts deliveries.
    pub delivery_url: String,
    /// Until when the secret before the last rotation is still accepted.
    pub previous_secret_valid_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Deliveries stored for this org.
    pub deliveries: u64,
    pub last_delivery_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct HookList {
    pub items: Vec<HookView>,
}

#[derive(ApiResponse)]
pub enum ConfigureResponse {
    /// The source is configured for the first time.
    #[oai(status = 201)]
    Created(Json<HookView>),
    /// The secret was replaced; the previous one stays valid for the grace period.
    #[oai(status = 200)]
    Rotated(Json<HookView>),
}

/// The answer to a stored delivery.
#[derive(Object, serde::Serialize)]
pub struct DeliveryAck {
    pub event_id: String,
    /// True when this delivery id was stored before; nothing was stored now.
    pub duplicate: bool,
}

pub struct HooksApi {
    pub state: AppState,
}

fn base_url(request: &Request) -> String {
    let headers = request.headers();
    let host = headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}")
}

impl HooksApi {
    async fn view(
        &self,
        base: &str,
        org: &str,
        source: &crate::runtime::manifest::WebhookSourceDoc,
    ) -> Result<HookView, ApiError> {
        let db = self.state.runtime.db();
        let slug = crate::identity::org_by_id(db, org).await?.map_or_else(|| org.to_owned(), |found| found.slug);
        let configured = sources::get(db, org, &source.name).await?;
        let (deliveries, last) = sources::deliveries(db, org, &source.name).await?;
        Ok(HookView {
            source: source.name.clone(),
            scheme: source.scheme,
            kind_header: source.kind_header.clone(),
            delivery_header: source.delivery_header.clone(),
            signature_header: source.signature_header.clone(),
            configured: configured.is_some(),
            delivery_url: format!("{base}/api/v1/hooks/{}/{slug}", source.name),
            previous_secret_valid_until: configured
                .as_ref()
                .filter(|row| row.previous_secret.is_some())
                .and_then(|row| row.previous_until)
                .and_then(chrono::DateTime::from_timestamp_millis),
            deliveries,
            last_delivery_at: last.and_then(chrono::DateTime::from_timestamp_millis),
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "HookTag::Webhooks")]
impl HooksApi {
    /// Sets the secret of a webhook source for the caller's org and returns the
    /// URL to give the sender. Setting a different secret rotates it: the
    /// previous one stays valid for the configured grace period.
    #[oai(path = "/hooks/:source", method = "put", operation_id = "configureHook")]
    async fn configure(
        &self,
        auth: BearerAuth,
        request: &Request,
        /// A source a loaded plugin declares, such as `github`.
        source: Path<String>,
        body: Json<HookSecret>,
    ) -> Result<ConfigureResponse, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let declared = self.state.ingest.declared(&source.0).ok_or_else(|| {
            ApiError::not_found(format!("no loaded plugin declares the webhook source {:?}", source.0))
        })?;
        let created = self.state.ingest.configure(&principal.org_id, &declared.name, &body.0.secret.0).await?;
        let action = if created { "hook.configure" } else { "hook.rotate" };
        audit::record(self.state.runtime.db(), Entry::by(&principal, action, &format!("hook/{}", declared.name)))
            .await?;
        let view = self.view(&base_url(request), &principal.org_id, &declared).await?;
        Ok(if created { ConfigureResponse::Created(Json(view)) } else { ConfigureResponse::Rotated(Json(view)) })
    }

    /// Every webhook source the loaded plugins declare, with whether the
    /// caller's org configured it, its delivery URL, and its deliveries so far.
    #[oai(path = "/hooks", method = "get", operation_id = "listHooks")]
    async fn list(&self, auth: BearerAuth, request: &Request) -> Result<Json<HookList>, ApiError> {
        let principal = self.state.authorize(&auth, Role::Admin).await?;
        let base = base_url(request);
        let mut items = Vec::new();
        for source in self.state.ingest.declared_all() {
            items.push(self.view(&base, &principal.org_id, &source).await?);
        }
        Ok(Json(HookList { items }))
    }
}

/// `POST /api/v1/hooks/{source}/{org}`: one delivery from a sender.
pub async fn deliver(state: &AppState, source: &str, org: &str, request: &Request, body: Body) -> Response {
    let telemetry = &state.telemetry;
    let outcome = receive(state, source, org, request, body).await;
    let (label, response) = match outcome {
        Ok(ack) => {
            let label = if ack.duplicate { "duplicate" } else { "stored" };
            let body = serde_json::to_string(&ack).unwrap_or_default();
            (label, Response::builder().status(StatusCode::ACCEPTED).content_type("application/json").body(body))
        }
        Err(rejection) => {
            let (status, kind, label) = match &rejection {
                Rejection::UnknownSource(_) | Rejection::NotConfigured(_) => {
                    (StatusCode::NOT_FOUND, "not-found", "unknown")
                }
                Rejection::BadSignature => (StatusCode::UNAUTHORIZED, "bad-signature", "unauthorized"),
                Rejection::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "too-large"),
                Rejection::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "rejected"),
                Rejection::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "unavailable"),
            };
            if matches!(rejection, Rejection::Unavailable(_)) {
                tracing::error!(source, org, "delivery not stored: {rejection}");
            } else {
                tracing::debug!(source, org, "delivery refused: {rejection}");
            }
            let mut response = Problem::new(status, kind, rejection.to_string()).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE
                && let Ok(value) = "5".parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            (label, response)
        }
    };
    telemetry.ingest(source, label);
    response
}

async fn receive(
    state: &AppState,
    source: &str,
    org: &str,
    request: &Request,
    body: Body,
) -> Result<DeliveryAck, Rejection> {
    let ingest = &state.ingest;
    let (declared, configured) = ingest.source_for(source, org).await?;
    let limit = ingest.max_body_bytes();
    let announced = request
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(Rejection::TooLarge(limit));
    }
    let body = body.into_bytes_limit(limit).await.map_err(|err| match err {
        poem::error::ReadBodyError::PayloadTooLarge => Rejection::TooLarge(limit),
        other => Rejection::BadRequest(format!("the body could not be read: {other}")),
    })?;
    let accepted = ingest.deliver(&declared, &configured, Delivery { headers: request.headers(), body }).await?;
    Ok(DeliveryAck { event_id: accepted.event_id, duplicate: accepted.duplicate })
}

/// The `/api/v1/hooks/{source}/{org}` path's parts, when `path` is one.
pub fn delivery_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/api/v1/hooks/")?;
    let (source, org) = rest.split_once('/')?;
    (!source.is_empty() && !org.is_empty() && !org.contains('/')).then_some((source, org))
}

/// The OpenAPI path item of the delivery endpoint, which is served outside
/// poem-openapi so the body can be read with a size limit and verified raw.
pub fn delivery_operation() -> serde_json::Value {
    let problem = serde_json::json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let text = |description: &str| serde_json::json!({"description": description, "content": problem});
    serde_json::json!({
        "post": {
            "operationId": "deliverHook",
            "tags": ["Webhooks"],
            "summary": "Receive one webhook delivery",
            "description": "Called by the sender, not by users: no token, the signature header authenticates \
                the raw body with the secret set through `PUT /api/v1/hooks/{source}`. The headers carrying \
                the event kind, the delivery id and the signature are the ones the source declares (GitHub: \
                `X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256`). Answered only once the event \
                is durably stored; a repeated delivery id is acknowledged with `duplicate: true` and not \
                stored again.",
            "parameters": [
                {"name": "source", "in": "path", "required": true, "description": "The webhook source, such as `github`", "schema": {"type": "string"}},
                {"name": "org", "in": "path", "required": true, "description": "The org's slug (or id), as in the delivery URL", "schema": {"type": "string"}}
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {}}}},
            "responses": {
                "202": {"description": "Stored (or a duplicate of a stored delivery)", "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["event_id", "duplicate"],
                    "properties": {"event_id": {"type": "string"}, "duplicate": {"type": "boolean"}}
                }}}},
                "400": text("The body is not JSON or a required header is missing"),
                "401": text("The signature is missing or wrong"),
                "404": text("No plugin declares the source, or the org has not configured it"),
                "413": text("The body is larger than the configured limit (25 MiB by default)"),
                "503": text("The event log did not commit in time; retry later"),
            }
        }
    })
}
