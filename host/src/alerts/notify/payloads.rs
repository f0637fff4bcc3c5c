//! What each kind of channel receives. The body of a notification is the same
//! bytes on every attempt, so a signature or a receiver's dedupe holds.

use super::super::channels::Kind;
use super::super::model::{Severity, Snapshot, State};
use crate::auth::signature::Scheme;
use crate::store::entities::alert_channel;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Header carrying the webhook body's HMAC-SHA256, `sha256=<hex>` as GitHub signs.
pub const SIGNATURE_HEADER: &str = "x-devpulse-signature-256";
/// Header carrying the notification id, the same on every attempt.
pub const ID_HEADER: &str = "x-devpulse-notification";
/// Header naming what happened: `alert.firing`, `alert.resolved`, `test`...
pub const EVENT_HEADER: &str = "x-devpulse-event";

/// One notification, ready to send.
pub struct Outgoing {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// Where a notification's content comes from.
pub struct Message<'a> {
    /// The notification id.
    pub id: &'a str,
    /// `firing`, `repeat`, `acknowledged`, `resolved` or `test`.
    pub reason: &'a str,
    pub alert: &'a Snapshot,
    /// When the notification was queued.
    pub created_at: i64,
    /// The server's public URL, for links; empty when unknown.
    pub public_url: &'a str,
    /// Alertmanager: how long a firing alert stays active without being sent again.
    pub alertmanager_ttl_ms: i64,
}

impl Message<'_> {
    fn alert_url(&self) -> Option<String> {
        (!self.public_url.is_empty())
            .then(|| format!("{}/api/v1/alerts/{}", self.public_url.trim_end_matches('/'), self.alert.id))
    }

    fn event(&self) -> String {
        if self.reason == "test" { "test".to_owned() } else { format!("alert.{}", self.reason) }
    }
}

/// The request `channel` receives for `message`.
pub fn outgoing(channel: &alert_channel::Model, message: &Message<'_>) -> Outgoing {
    match Kind::of(channel) {
        Kind::Webhook => webhook(channel, message),
        Kind::Slack => slack(channel, message),
        Kind::Alertmanager => alertmanager(channel, std::slice::from_ref(message)),
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn webhook(channel: &alert_channel::Model, message: &Message<'_>) -> Outgoing {
    let body = json!({
        "id": message.id,
        "type": message.event(),
        "created_at": time(message.created_at),
        "channel": channel.name,
        "alert": message.alert,
        "url": message.alert_url(),
    });
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = vec![(ID_HEADER, message.id.to_owned()), (EVENT_HEADER, message.event())];
    if let Some(secret) = &channel.secret {
        headers.push((SIGNATURE_HEADER, Scheme::GithubHmacSha256.sign(secret.as_bytes(), &body)));
    }
    Outgoing { url: channel.url.clone(), body, headers }
}

fn slack(channel: &alert_channel::Model, message: &Message<'_>) -> Outgoing {
    let alert = message.alert;
    let (icon, status) = match (message.reason, alert.severity) {
        ("test", _) => (":wave:", "TEST".to_owned()),
        ("resolved", _) => (":white_check_mark:", "RESOLVED".to_owned()),
        ("acknowledged", _) => (":eyes:", "ACKNOWLEDGED".to_owned()),
        (_, Severity::Critical) => (":red_circle:", "FIRING".to_owned()),
        (_, Severity::Warning) => (":large_orange_circle:", "FIRING".to_owned()),
        (_, Severity::Info) => (":large_blue_circle:", "FIRING".to_owned()),
    };
    let title = format!("{icon} *[{status}] {}* ({})", escape(&alert.summary), alert.severity.as_str());
    let labels: Vec<String> = alert.labels.iter().map(|(name, value)| format!("`{name}={}`", escape(value))).collect();
    let mut detail = format!("source `{}` · key `{}`", escape(&alert.source), escape(&alert.key));
    if !labels.is_empty() {
        detail.push_str(&format!("\n{}", labels.join(" ")));
    }
    if let Some(comment) = &alert.comment {
        detail.push_str(&format!("\n> {}", escape(comment)));
    }
    let link = match message.alert_url() {
        Some(url) => format!("<{url}|alert {}>", alert.id),
        None => format!("alert {}", alert.id),
    };
    let body = json!({
        "text": format!("[{status}] {}", alert.summary),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": format!("{title}\n{detail}") } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!("DevPulse {link} · notification `{}`", message.id) }
            ] }
        ]
    });
    Outgoing { url: channel.url.clone(), body: serde_json::to_vec(&body).unwrap_or_default(), headers: Vec::new() }
}

/// Slack's three control characters in mrkdwn.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Alertmanager's `POST /api/v2/alerts` with every message's alert.
pub fn alertmanager(channel: &alert_channel::Model, messages: &[Message<'_>]) -> Outgoing {
    let alerts: Vec<Value> = messages.iter().map(alertmanager_alert).collect();
    let base = channel.url.trim_end_matches('/');
    let url = if base.ends_with("/api/v2/alerts") { base.to_owned() } else { format!("{base}/api/v2/alerts") };
    Outgoing { url, body: serde_json::to_vec(&alerts).unwrap_or_default(), headers: Vec::new() }
}

/// One alert as Alertmanager takes it: labels identify it (each occurrence is
/// its own alert), `endsAt` keeps it active until the next re-send, or closes it.
fn alertmanager_alert(message: &Message<'_>) -> Value {
    let alert = message.alert;
    let mut labels: BTreeMap<String, String> = alert.labels.clone();
    labels.entry("alertname".into()).or_insert_with(|| alert.key.clone());
    labels.insert("severity".into(), alert.severity.as_str().into());
    labels.insert("devpulse_source".into(), alert.source.clone());
    labels.insert("devpulse_alert".into(), alert.id.clone());
    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), alert.summary.clone()),
        ("devpulse_notification".to_owned(), message.id.to_owned()),
    ]);
    if let Some(details) = &alert.details {
        annotations.insert("details".into(), details.to_string());
    }
    let now = crate::store::now_ms();
    let ends_at = match (alert.state, alert.resolved_at) {
        (State::Resolved, Some(at)) => at.timestamp_millis(),
        _ => now + message.alertmanager_ttl_ms,
    };
    let mut out = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": time(alert.started_at.timestamp_millis()),
        "endsAt": time(ends_at.max(alert.started_at.timestamp_millis() + 1)),
    });
    if let Some(url) = message.alert_url() {
        out["generatorURL"] = json!(url);
    }
    out
}
