//! `PolarWebhooks`: notices verified by `Polar-Webhook-Signature`, the hex HMAC-SHA256 of the
//! raw body keyed with the webhook's `signature_secret_key`, before anything is parsed; then
//! the notices: whose activity summary of which day is available. A notice only says what to
//! fetch (the numbers always come from the API), so a replayed one costs a fetch and nothing
//! more: no freshness window is enforced. The `PING` Polar sends when the webhook is created
//! (or reactivated, or its URL changed) is answered 200 even unsigned: at creation it is
//! signed with the key that the same creation is about to return, which we cannot hold yet,
//! and nothing is acted on for it.

use super::{ACTIVITY_SUMMARY, PolarSettings, SetupError, user_id};
use crate::clock::Clock;
use crate::domain::LocalDate;
use crate::ports::{DataNotice, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::webhook::{
    decode_hex, header, json_items, malformed_item, merge_notice, refuse_unless_small_post, short,
};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use std::sync::Arc;

const SIGNATURE_HEADER: &str = "polar-webhook-signature";
const EVENT_HEADER: &str = "polar-webhook-event";
const PING: &str = "PING";
/// A notice without its day asks for the days from this many before its timestamp's UTC
/// date ...
const DAYS_BEFORE: i32 = 6;
/// ... to this many after (the device's own date may be a day ahead of UTC's).
const DAYS_AFTER: i32 = 1;

/// The Polar adapter behind `WebhookVerifier`.
pub struct PolarWebhooks {
    /// `None` until an operator created the webhook and stored its key: then only PINGs pass.
    secret: Option<SecretString>,
    max_body_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl PolarWebhooks {
    pub fn new(settings: &PolarSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let secret = settings.webhook_secret.clone().filter(|s| !s.expose_secret().is_empty());
        Ok(Self { secret, max_body_bytes: settings.max_body_bytes, clock })
    }

    fn signature_verifies(&self, secret: &SecretString, body: &[u8], signature: &str) -> bool {
        let Some(signature) = decode_hex(signature.trim()) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&signature).is_ok()
    }
}

#[async_trait]
impl WebhookVerifier for PolarWebhooks {
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_post(method, body, self.max_body_bytes, || {
            format!("expected a POST, not {}", short(method))
        })?;
        let signature = header(headers, &[SIGNATURE_HEADER]);
        let verified = match (self.secret.as_ref(), signature) {
            (Some(secret), Some(signature)) => self.signature_verifies(secret, body, signature),
            _ => false,
        };
        if verified {
            return parse_body(body, self.clock.now());
        }
        if is_ping(headers, body) {
            return Ok(pong());
        }
        match (self.secret.as_ref(), signature) {
            (None, _) => Err(WebhookError::UnknownKey),
            (Some(_), None) => Err(WebhookError::MissingSignature),
            (Some(_), Some(_)) => Err(WebhookError::BadSignature),
        }
    }
}

fn pong() -> WebhookMessage {
    WebhookMessage::Handshake { status: 200, body: String::new() }
}

/// Whether an unverified request is Polar's PING: the event header says so and the body is a
/// PING naming nobody. Only such a body is read before its signature verifies, and only to be
/// answered.
fn is_ping(headers: &[(String, String)], body: &[u8]) -> bool {
    if header(headers, &[EVENT_HEADER]).is_none_or(|e| e.trim() != PING) {
        return false;
    }
    let Ok(Value::Object(ping)) = serde_json::from_slice::<Value>(body) else { return false };
    ping.get("event").and_then(Value::as_str) == Some(PING) && !ping.contains_key("user_id")
}

/// A verified body: a PING, or the notices in it (one object, or a list of them). Events
/// other than activity summaries are ignored; notices for one account are merged.
fn parse_body(body: &[u8], now: Timestamp) -> Result<WebhookMessage, WebhookError> {
    let items = json_items(body, "the body is not JSON", "expected an object or an array of objects")?;
    if let [item] = items.as_slice()
        && item.get("event").and_then(Value::as_str) == Some(PING)
    {
        return Ok(pong());
    }
    let mut notices = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let malformed = |why: &str| malformed_item("notice", index, why);
        let event = item.get("event").and_then(Value::as_str).ok_or_else(|| malformed("no event"))?;
        if event != ACTIVITY_SUMMARY {
            continue;
        }
        let account = match item.get("user_id") {
            Some(Value::Number(n)) => n.as_u64().map(|n| n.to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let account = account
            .as_deref()
            .and_then(user_id)
            .map(str::to_owned)
            .ok_or_else(|| malformed("user_id is not a Polar user id"))?;
        let dates = match item.get("date") {
            // The device's own date of the summary: the day to read.
            Some(Value::String(date)) => {
                vec![LocalDate::parse(date.trim()).map_err(|_| malformed("date is not yyyy-mm-dd"))?]
            }
            Some(_) => return Err(malformed("date is not yyyy-mm-dd")),
            None => {
                // When Polar sent it; a missing or odd time is read as now.
                let at = item.get("timestamp").and_then(Value::as_str).and_then(|t| t.parse().ok()).unwrap_or(now);
                let date = LocalDate::from_date(at.to_zoned_datetime(TimeZone::UTC).date());
                date.add_days(-DAYS_BEFORE).through(date.add_days(DAYS_AFTER)).collect()
            }
        };
        merge_notice(&mut notices, DataNotice { account_id: account, dates, deleted: false });
    }
    Ok(WebhookMessage::Notices(notices))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::testing::FixedClock;

    /// The key `fixtures/README.md` names for the signed fixture.
    const SECRET: &str = "0f8c6a52-3b1d-4e7f-9a2c-5d4e3f2a1b0c";

    fn verifier_with(secret: Option<&str>) -> PolarWebhooks {
        let mut settings = PolarSettings::new("c", SecretString::from("s"), "https://x/webhooks/polar");
        settings.webhook_secret = secret.map(|s| SecretString::from(s.to_owned()));
        PolarWebhooks::new(&settings, Arc::new(FixedClock::at("2026-11-24T07:12:09Z"))).unwrap()
    }

    fn verifier() -> PolarWebhooks {
        verifier_with(Some(SECRET))
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn headers(signature: &str, event: &str) -> Vec<(String, String)> {
        vec![
            ("Polar-Webhook-Signature".to_owned(), signature.to_owned()),
            ("Polar-Webhook-Event".to_owned(), event.to_owned()),
        ]
    }

    fn known() -> (Vec<u8>, String) {
        (fixture("notification_activity_summary.json").into_bytes(), fixture("notification_activity_summary.signature"))
    }

    #[tokio::test]
    async fn the_known_answer_notice_verifies_and_names_its_person_and_day() {
        let (body, signature) = known();
        let message = verifier().verify("POST", &headers(&signature, ACTIVITY_SUMMARY), &body).await.unwrap();
        let WebhookMessage::Notices(notices) = message else { panic!("expected notices") };
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].account_id, sent["user_id"].as_u64().unwrap().to_string());
        assert_eq!(notices[0].dates, [LocalDate::parse(sent["date"].as_str().unwrap()).unwrap()]);
        assert!(!notices[0].deleted);
        assert_eq!(signature, sign(SECRET, &body), "the fixture's signature is lower-case hex of the body");
    }

    #[tokio::test]
    async fn tampered_forged_unsigned_and_oversized_notices_are_refused() {
        let (body, signature) = known();
        let v = verifier();
        let event = ACTIVITY_SUMMARY;
        assert!(v.verify("POST", &headers(&signature.to_uppercase(), event), &body).await.is_ok(), "hex in any case");
        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x01;
        assert_eq!(v.verify("POST", &headers(&signature, event), &tampered).await, Err(WebhookError::BadSignature));
        let forged = sign("someone-elses-key", &body);
        assert_eq!(v.verify("POST", &headers(&forged, event), &body).await, Err(WebhookError::BadSignature));
        assert_eq!(v.verify("POST", &headers("zz", event), &body).await, Err(WebhookError::BadSignature));
        assert_eq!(v.verify("POST", &headers("", event), &body).await, Err(WebhookError::BadSignature));
        let unsigned = vec![("Polar-Webhook-Event".to_owned(), event.to_owned())];
        assert_eq!(v.verify("POST", &unsigned, &body).await, Err(WebhookError::MissingSignature));
        let huge = vec![b' '; 16 * 1024 + 1];
        assert_eq!(v.verify("POST", &headers(&signature, event), &huge).await, Err(WebhookError::TooLarge));
        assert!(matches!(v.verify("GET", &headers(&signature, event), &body).await, Err(WebhookError::Malformed(_))));
        // Without the key nothing but a PING can pass.
        let keyless = verifier_with(None);
        assert_eq!(keyless.verify("POST", &headers(&signature, event), &body).await, Err(WebhookError::UnknownKey));
    }

    #[tokio::test]
    async fn a_ping_is_answered_signed_or_not_and_nothing_else_passes_as_one() {
        let ping = fixture("ping.json").into_bytes();
        for v in [verifier(), verifier_with(None)] {
            assert_eq!(v.verify("POST", &headers("", PING), &ping).await, Ok(pong()), "unsigned, at creation");
            assert_eq!(v.verify("POST", &headers(&sign(SECRET, &ping), PING), &ping).await, Ok(pong()));
        }
        let v = verifier();
        // The header alone, or a body naming a person, is no PING.
        let (body, _) = known();
        assert_eq!(v.verify("POST", &headers("", PING), &body).await, Err(WebhookError::BadSignature));
        let sneaky = br#"{"event":"PING","user_id":1,"date":"2026-11-23"}"#;
        assert_eq!(v.verify("POST", &headers("", PING), sneaky).await, Err(WebhookError::BadSignature));
        assert_eq!(v.verify("POST", &headers("", ACTIVITY_SUMMARY), &ping).await, Err(WebhookError::BadSignature));
    }

    #[tokio::test]
    async fn signed_bodies_are_read_by_date_or_timestamp_and_odd_ones_refused() {
        let v = verifier();
        let read = |body: &'static str| {
            let signature = sign(SECRET, body.as_bytes());
            let v = &v;
            async move { v.verify("POST", &headers(&signature, ACTIVITY_SUMMARY), body.as_bytes()).await }
        };
        let Ok(WebhookMessage::Notices(n)) =
            read(r#"{"event":"ACTIVITY_SUMMARY","user_id":"475","timestamp":"2026-11-24T07:12:09Z"}"#).await
        else {
            panic!()
        };
        assert_eq!(n[0].account_id, "475");
        assert_eq!(n[0].dates.len(), 8, "six days before the timestamp's date to one after");
        assert_eq!(n[0].dates.last().unwrap().to_string(), "2026-11-25");
        assert_eq!(
            read(r#"{"event":"EXERCISE","user_id":475,"entity_id":"aQlC83"}"#).await,
            Ok(WebhookMessage::Notices(vec![]))
        );
        for odd in [
            "not json",
            r#"{"event":"ACTIVITY_SUMMARY","date":"2026-11-23"}"#,
            r#"{"event":"ACTIVITY_SUMMARY","user_id":"1/2","date":"2026-11-23"}"#,
            r#"{"event":"ACTIVITY_SUMMARY","user_id":-4,"date":"2026-11-23"}"#,
            r#"{"event":"ACTIVITY_SUMMARY","user_id":475,"date":"soon"}"#,
            r#"{"user_id":475}"#,
            "42",
        ] {
            assert!(matches!(read(odd).await, Err(WebhookError::Malformed(_))), "{odd}");
        }
    }
}
