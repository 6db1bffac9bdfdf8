//! Oura's side of the webhooks: the verification GET a new subscription's callback must pass,
//! and the signed notifications it POSTs when a person's data changes.

use std::time::Duration;

use axum::http::header;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::super::common::{random_token, subscriber_client};
use super::super::server::FakeError;
use super::wire::{EventType, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, utc_time};

/// One notification body: what changed (the document `object_id` of `data_type`), how, for whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event_type: EventType,
    pub data_type: String,
    pub object_id: String,
    /// As sent: `2026-11-24T07:12:09+00:00`.
    pub event_time: String,
    pub user_id: String,
}

// Field order is the fake's choice (Oura documents the fields, not their order): a subscriber
// verifies the signature over the exact bytes received, never a re-serialization.
#[derive(Serialize)]
struct NotificationJson<'a> {
    event_type: &'a str,
    data_type: &'a str,
    object_id: &'a str,
    event_time: &'a str,
    user_id: &'a str,
}

impl Notification {
    /// A notification of a change now.
    pub fn new(event_type: EventType, data_type: &str, object_id: &str, user_id: &str) -> Self {
        Self {
            event_type,
            data_type: data_type.to_owned(),
            object_id: object_id.to_owned(),
            event_time: utc_time(Timestamp::now()),
            user_id: user_id.to_owned(),
        }
    }

    /// The exact bytes sent: compact JSON, no trailing newline.
    pub fn body(&self) -> Vec<u8> {
        let json = NotificationJson {
            event_type: self.event_type.as_str(),
            data_type: &self.data_type,
            object_id: &self.object_id,
            event_time: &self.event_time,
            user_id: &self.user_id,
        };
        // Serializing this plain struct cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }
}

/// A notification ready to send: the body and the headers Oura sends it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNotification {
    pub body: Vec<u8>,
    /// `x-oura-timestamp`: Unix seconds.
    pub timestamp: String,
    /// `x-oura-signature`.
    pub signature: String,
}

impl SignedNotification {
    pub(super) fn new(client_secret: &str, timestamp: i64, body: Vec<u8>) -> Self {
        let timestamp = timestamp.to_string();
        let signature = signature(client_secret, &timestamp, &body);
        Self { body, timestamp, signature }
    }

    /// The headers as sent, content type included.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".to_owned()),
            (TIMESTAMP_HEADER, self.timestamp.clone()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

/// What one POST to a subscriber got: an HTTP status, or why there was none.
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

    fn from_result(result: Result<reqwest::Response, reqwest::Error>) -> Self {
        match result {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}

/// One notification sent to one subscription (no retries): where, what, and what came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub subscription_id: String,
    pub callback_url: String,
    pub notification: Notification,
    pub sent: SignedNotification,
    pub outcome: Attempt,
}

impl Delivery {
    /// The subscriber answered 2xx.
    pub fn delivered(&self) -> bool {
        self.outcome.status().is_some_and(|s| (200..300).contains(&s))
    }
}

/// What the verification GET found.
#[derive(Debug)]
pub(super) enum Verification {
    Passed,
    Failed(String),
}

/// The client Oura calls subscribers with.
pub(super) struct WebhookSender {
    http: reqwest::Client,
}

impl WebhookSender {
    pub(super) fn new() -> Result<Self, FakeError> {
        let http = subscriber_client(Duration::from_secs(10)).build().map_err(FakeError::Client)?;
        Ok(Self { http })
    }

    /// `GET callback_url?verification_token=..&challenge=..`; passes on a 200 whose JSON body is
    /// `{"challenge": <the same>}`.
    pub(super) async fn verify(&self, callback_url: &str, verification_token: &str) -> Verification {
        let challenge = random_token("challenge-");
        let request = self
            .http
            .get(callback_url)
            .query(&[("verification_token", verification_token), ("challenge", challenge.as_str())]);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Verification::Failed(format!("the callback did not answer: {e}")),
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Verification::Failed(format!("the callback answered {status}"));
        }
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(e) => return Verification::Failed(format!("the callback's answer is not JSON: {e}")),
        };
        if body.get("challenge").and_then(Value::as_str) == Some(challenge.as_str()) {
            Verification::Passed
        } else {
            Verification::Failed(format!("the callback answered {body} instead of the challenge"))
        }
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
        Attempt::from_result(request.body(body).send().await)
    }

    pub(super) async fn send(&self, url: &str, sent: &SignedNotification) -> Attempt {
        let headers = sent.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(url, sent.body.clone(), &headers).await
    }
}
