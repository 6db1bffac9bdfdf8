//! Amazon SNS on the wire: its headers, the JSON of the messages it posts, the string both
//! signature versions sign, and the XML its query API answers.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use super::super::common::escape_html;

/// The header SNS names the message type in (`SubscriptionConfirmation`, `Notification`).
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";
/// The content type SNS posts with, although the body is JSON.
pub const SNS_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
pub const CERT_PATH: &str = "/SimpleNotificationService-fake.pem";

const SNS_XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// The string SNS signs (SignatureVersion 1 with SHA-1, 2 with SHA-256): `key\nvalue\n` for each signed key in order. For
/// `Notification`: Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type;
/// for `SubscriptionConfirmation` and `UnsubscribeConfirmation`: Message, MessageId,
/// SubscribeURL, Timestamp, Token, TopicArn, Type. `None` for another type or a missing key.
pub fn canonical_string(message: &Value) -> Option<String> {
    let field = |key: &str| message.get(key).and_then(Value::as_str);
    let keys: &[&str] = match field("Type")? {
        "Notification" => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        }
        _ => return None,
    };
    let mut canonical = String::new();
    for key in keys {
        match field(key) {
            Some(value) => {
                canonical.push_str(key);
                canonical.push('\n');
                canonical.push_str(value);
                canonical.push('\n');
            }
            None if *key == "Subject" => {}
            None => return None,
        }
    }
    Some(canonical)
}

/// `len_bytes` random bytes in hex, as SNS subscription tokens are.
pub(super) fn random_hex(len_bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..len_bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// A random (version 4) UUID, as SNS message ids are.
pub(super) fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// SNS's `Timestamp`: UTC with milliseconds, `2026-11-23T18:20:12.000Z`.
pub(super) fn sns_timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// Field order as SNS sends them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SubscriptionConfirmationJson {
    #[serde(rename = "Type")]
    pub(super) kind: &'static str,
    pub(super) message_id: String,
    pub(super) token: String,
    pub(super) topic_arn: String,
    pub(super) message: String,
    #[serde(rename = "SubscribeURL")]
    pub(super) subscribe_url: String,
    pub(super) timestamp: String,
    pub(super) signature_version: &'static str,
    #[serde(rename = "SigningCertURL")]
    pub(super) signing_cert_url: String,
    pub(super) signature: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NotificationJson {
    #[serde(rename = "Type")]
    pub(super) kind: &'static str,
    pub(super) message_id: String,
    pub(super) topic_arn: String,
    pub(super) message: String,
    pub(super) timestamp: String,
    pub(super) signature_version: &'static str,
    #[serde(rename = "SigningCertURL")]
    pub(super) signing_cert_url: String,
    pub(super) signature: String,
}

/// `ConfirmSubscription`'s answer: the new subscription's ARN under `topic_arn`.
pub(super) fn confirmed_xml(topic_arn: &str) -> Response {
    let body = format!(
        "<ConfirmSubscriptionResponse xmlns=\"{SNS_XML_NAMESPACE}\">\n  <ConfirmSubscriptionResult>\n    <SubscriptionArn>{}:{}</SubscriptionArn>\n  </ConfirmSubscriptionResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</ConfirmSubscriptionResponse>\n",
        escape_html(topic_arn),
        random_uuid(),
        random_uuid(),
    );
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

pub(super) fn sns_error(code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"{SNS_XML_NAMESPACE}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        escape_html(message),
        random_uuid(),
    );
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}
