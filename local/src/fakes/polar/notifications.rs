//! Polar's side of the webhook: the signed notices it POSTs when a person's data is available,
//! and the PING a webhook's URL must answer 200 when it is created, reactivated or repointed.

use std::time::Duration;

use axum::http::header;
use jiff::Timestamp;
use serde::Serialize;

use super::super::common::subscriber_client;
use super::super::server::FakeError;
use super::wire::{ACTIVITY_SUMMARY, EVENT_HEADER, PING, SIGNATURE_HEADER, signature, utc_time};

/// One `ACTIVITY_SUMMARY` notice: whose summary of which day is available, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub user_id: u64,
    /// The device's own date of the summary, `yyyy-mm-dd`.
    pub date: String,
    /// When the notice is sent: `2026-11-24T07:12:09Z`.
    pub timestamp: String,
    /// `{api}/v3/users/activities/{date}`.
    pub url: String,
}

// Field order is the fake's choice (Polar documents the fields, not their order): a receiver
// verifies the signature over the exact bytes received, never a re-serialization.
#[derive(Serialize)]
struct NotificationJson<'a> {
    event: &'a str,
    user_id: u64,
    date: &'a str,
    timestamp: &'a str,
    url: &'a str,
}

impl Notification {
    /// The notice of the person's day, sent now, naming the day's URL under `api_base`.
    pub fn activity_summary(user_id: u64, date: &str, api_base: &str) -> Self {
        Self {
            user_id,
            date: date.to_owned(),
            timestamp: utc_time(Timestamp::now()),
            url: format!("{api_base}/v3/users/activities/{date}"),
        }
    }

    /// The exact bytes sent: compact JSON, no trailing newline.
    pub fn body(&self) -> Vec<u8> {
        let json = NotificationJson {
            event: ACTIVITY_SUMMARY,
            user_id: self.user_id,
            date: &self.date,
            timestamp: &self.timestamp,
            url: &self.url,
        };
        // Serializing this plain struct cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }
}

/// The PING's exact bytes, sent now.
pub(super) fn ping_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "event": PING, "timestamp": utc_time(Timestamp::now()) }))
        .unwrap_or_default()
}

/// A body ready to send: its event and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNotification {
    pub event: String,
    pub body: Vec<u8>,
    /// `Polar-Webhook-Signature`.
    pub signature: String,
}

impl SignedNotification {
    pub(super) fn new(signature_secret_key: &str, event: &str, body: Vec<u8>) -> Self {
        let signature = signature(signature_secret_key, &body);
        Self { event: event.to_owned(), body, signature }
    }

    /// The headers as sent, content type included.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".to_owned()),
            (EVENT_HEADER, self.event.clone()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

/// What one POST to the webhook's URL got: an HTTP status, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    Failed(String),
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(status) => Some(*status),
            Attempt::Failed(_) => None,
        }
    }
}

/// One notice sent to the webhook (no retries): where, what, and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub webhook_id: String,
    pub url: String,
    pub notification: Notification,
    pub sent: SignedNotification,
    pub outcome: Attempt,
}

impl Delivery {
    /// The receiver answered 2xx.
    pub fn delivered(&self) -> bool {
        self.outcome.status().is_some_and(|s| (200..300).contains(&s))
    }
}

/// The client Polar calls the webhook with.
pub(super) struct WebhookSender {
    http: reqwest::Client,
}

impl WebhookSender {
    pub(super) fn new() -> Result<Self, FakeError> {
        let http = subscriber_client(Duration::from_secs(10)).build().map_err(FakeError::Client)?;
        Ok(Self { http })
    }

    /// One POST of `body` with exactly `headers` (plus a JSON content type unless given).
    pub(super) async fn post(&self, url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Attempt {
        let mut request = self.http.post(url);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match request.body(body).send().await {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }

    pub(super) async fn send(&self, url: &str, sent: &SignedNotification) -> Attempt {
        let headers = sent.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(url, sent.body.clone(), &headers).await
    }

    /// The PING, signed with the webhook's key: the URL passes on 200 and nothing else.
    pub(super) async fn ping(&self, url: &str, signature_secret_key: &str) -> Result<(), String> {
        let sent = SignedNotification::new(signature_secret_key, PING, ping_body());
        match self.send(url, &sent).await {
            Attempt::Status(200) => Ok(()),
            Attempt::Status(status) => Err(format!("the webhook url answered {status} to the PING")),
            Attempt::Failed(why) => Err(format!("the webhook url did not answer the PING: {why}")),
        }
    }
}
