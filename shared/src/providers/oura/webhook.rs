//! `OuraWebhooks`: a subscription's verification GET answered only when it carries our
//! verification token; notifications verified by `x-oura-signature`, HMAC-SHA256 keyed with
//! the client secret over `x-oura-timestamp` followed by the raw body, before anything is
//! parsed, and refused when dated too far from now; then the notices: whose daily activity
//! changed. Oura names the changed document, not its day, so a notice asks for the week
//! around it (one request at Oura either way).

use super::{DATA_TYPE, OuraSettings, SetupError, client_secret};
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
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

const SIGNATURE_HEADER: &str = "x-oura-signature";
const TIMESTAMP_HEADER: &str = "x-oura-timestamp";
/// A notice asks for the days from this many before its event's UTC date ...
const DAYS_BEFORE: i32 = 6;
/// ... to this many after (the person's own date may be a day ahead of UTC's).
const DAYS_AFTER: i32 = 1;

/// The Oura adapter behind `WebhookVerifier`.
pub struct OuraWebhooks {
    client_secret: SecretString,
    verification_token: Option<SecretString>,
    max_clock_skew: Duration,
    max_body_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl OuraWebhooks {
    pub fn new(settings: &OuraSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        Ok(Self {
            client_secret: client_secret(settings)?,
            verification_token: settings.verification_token.clone(),
            max_clock_skew: settings.max_clock_skew,
            max_body_bytes: settings.max_body_bytes,
            clock,
        })
    }

    /// Whether `given` is the configured verification token. Both sides are hashed first, so
    /// the constant-time comparison does not leak the token's length either.
    fn is_our_token(&self, given: &str) -> bool {
        let Some(token) = self.verification_token.as_ref() else { return false };
        let expected = Sha256::digest(token.expose_secret().as_bytes());
        expected.ct_eq(&Sha256::digest(given.as_bytes())).into()
    }

    fn signature_verifies(&self, timestamp: &str, body: &[u8], signature: &str) -> bool {
        let Some(signature) = decode_hex(signature.trim()) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.client_secret.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    }
}

#[async_trait]
impl WebhookVerifier for OuraWebhooks {
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_post(method, body, self.max_body_bytes, || {
            format!("expected a POST (or the subscription's verification GET), not {}", short(method))
        })?;
        let signature = header(headers, &[SIGNATURE_HEADER]).ok_or(WebhookError::MissingSignature)?;
        let timestamp = header(headers, &[TIMESTAMP_HEADER]).ok_or(WebhookError::MissingSignature)?.trim();
        if !self.signature_verifies(timestamp, body, signature) {
            return Err(WebhookError::BadSignature);
        }
        let sent_at = parse_timestamp(timestamp).ok_or(WebhookError::Stale)?;
        let now = self.clock.now();
        if now.duration_since(sent_at).unsigned_abs() > self.max_clock_skew {
            return Err(WebhookError::Stale);
        }
        parse_notices(body, now).map(WebhookMessage::Notices)
    }

    /// Oura's verification GET: `?verification_token=...&challenge=...`, answered with the
    /// challenge as `{"challenge": ...}` when the token is ours.
    async fn verify_query(&self, query: &str, _headers: &[(String, String)]) -> Result<WebhookMessage, WebhookError> {
        let mut token = None;
        let mut challenge = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "verification_token" => token = Some(value.into_owned()),
                "challenge" => challenge = Some(value.into_owned()),
                _ => {}
            }
        }
        let token = token.ok_or(WebhookError::MissingSignature)?;
        if !self.is_our_token(&token) {
            return Err(WebhookError::Unauthorized);
        }
        let challenge = challenge
            .filter(|c| !c.is_empty() && c.len() <= 256)
            .ok_or_else(|| WebhookError::Malformed("the verification carries no challenge".into()))?;
        let body = serde_json::json!({ "challenge": challenge }).to_string();
        Ok(WebhookMessage::Handshake { status: 200, body })
    }
}

/// `x-oura-timestamp`: Unix seconds (milliseconds tolerated), or an RFC 3339 time.
fn parse_timestamp(raw: &str) -> Option<Timestamp> {
    match raw.parse::<i64>() {
        Ok(ms) if ms > 100_000_000_000 => Timestamp::from_millisecond(ms).ok(),
        Ok(seconds) => Timestamp::from_second(seconds).ok(),
        Err(_) => raw.parse().ok(),
    }
}

#[derive(Deserialize)]
struct Notification {
    event_type: String,
    data_type: String,
    user_id: String,
    #[serde(default)]
    event_time: Option<String>,
}

/// The notices in a verified body (one object, or a list of them). Data types other than
/// daily activity are ignored; notices for one account are merged.
fn parse_notices(body: &[u8], now: Timestamp) -> Result<Vec<DataNotice>, WebhookError> {
    let items = json_items(body, "the body is not JSON", "expected an object or an array of objects")?;
    let mut notices = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let malformed = |why: &str| malformed_item("notification", index, why);
        let notification: Notification = serde_json::from_value(item).map_err(|e| malformed(&e.to_string()))?;
        if notification.data_type != DATA_TYPE {
            continue;
        }
        let user = notification.user_id.trim();
        if user.is_empty() || user.len() > 128 {
            return Err(malformed("user_id is empty or too long"));
        }
        // When Oura saw the change; a missing or odd time is read as now.
        let at = notification.event_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or(now);
        let date = LocalDate::from_date(at.to_zoned_datetime(TimeZone::UTC).date());
        let dates = date.add_days(-DAYS_BEFORE).through(date.add_days(DAYS_AFTER)).collect();
        let deleted = notification.event_type.eq_ignore_ascii_case("delete");
        merge_notice(&mut notices, DataNotice { account_id: user.to_owned(), dates, deleted });
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::testing::FixedClock;

    const SECRET: &str = "fake-oura-secret";

    fn verifier(now: &str) -> OuraWebhooks {
        let mut settings = OuraSettings::new("fake-oura-client", SecretString::from(SECRET), "https://x/webhooks/oura");
        settings.verification_token = Some(SecretString::from("verify-me"));
        OuraWebhooks::new(&settings, Arc::new(FixedClock::at(now))).unwrap()
    }

    /// The fixture's body and headers, and a clock at the fixture's timestamp.
    fn fixture_request() -> (Vec<u8>, Vec<(String, String)>, Timestamp) {
        let body = fixture("notification_daily_activity.json").into_bytes();
        let headers: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&fixture("notification_daily_activity.headers.json")).unwrap();
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_owned())).collect();
        let at = parse_timestamp(header(&headers, &[TIMESTAMP_HEADER]).unwrap()).unwrap();
        (body, headers, at)
    }

    fn sign(timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02X}")).collect()
    }

    #[tokio::test]
    async fn the_known_answer_notification_verifies_and_names_the_week_around_its_event() {
        let (body, headers, at) = fixture_request();
        let message = verifier(&at.to_string()).verify("POST", &headers, &body).await.unwrap();
        let WebhookMessage::Notices(notices) = message else { panic!("expected notices") };
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].account_id, sent["user_id"].as_str().unwrap());
        assert_eq!(notices[0].dates.len(), 8, "six days before the event's date to one after");
        assert_eq!(notices[0].deleted, sent["event_type"] == "delete");
    }

    #[tokio::test]
    async fn forged_tampered_replayed_and_unsigned_notifications_are_refused() {
        let (body, headers, at) = fixture_request();
        let verifier = verifier(&at.to_string());
        let timestamp = header(&headers, &[TIMESTAMP_HEADER]).unwrap().to_owned();
        let with = |signature: &str, timestamp: &str| {
            vec![
                (SIGNATURE_HEADER.to_owned(), signature.to_owned()),
                (TIMESTAMP_HEADER.to_owned(), timestamp.to_owned()),
            ]
        };
        let good = sign(&timestamp, &body);
        // Lower-case hex of the same MAC is the same signature.
        assert!(verifier.verify("POST", &with(&good.to_lowercase(), &timestamp), &body).await.is_ok());

        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x01;
        assert_eq!(verifier.verify("POST", &headers, &tampered).await, Err(WebhookError::BadSignature));
        let forged = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"someone-elses-secret").unwrap();
            mac.update(timestamp.as_bytes());
            mac.update(&body);
            mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(verifier.verify("POST", &with(&forged, &timestamp), &body).await, Err(WebhookError::BadSignature));
        let moved = (at.as_second() + 1).to_string();
        assert_eq!(
            verifier.verify("POST", &with(&good, &moved), &body).await,
            Err(WebhookError::BadSignature),
            "the timestamp is signed too"
        );
        assert_eq!(verifier.verify("POST", &with("zz", &timestamp), &body).await, Err(WebhookError::BadSignature));
        assert_eq!(verifier.verify("POST", &with("", &timestamp), &body).await, Err(WebhookError::BadSignature));
        assert_eq!(verifier.verify("POST", &[], &body).await, Err(WebhookError::MissingSignature));
        let no_time = vec![(SIGNATURE_HEADER.to_owned(), good.clone())];
        assert_eq!(verifier.verify("POST", &no_time, &body).await, Err(WebhookError::MissingSignature));

        // A genuine notification replayed an hour later.
        let later = self::verifier(&(at + jiff::SignedDuration::from_hours(1)).to_string());
        assert_eq!(later.verify("POST", &headers, &body).await, Err(WebhookError::Stale));

        let huge = vec![b' '; 64 * 1024 + 1];
        assert_eq!(verifier.verify("POST", &headers, &huge).await, Err(WebhookError::TooLarge));
        assert!(matches!(verifier.verify("PUT", &headers, &body).await, Err(WebhookError::Malformed(_))));
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_a_notification_is_malformed_and_other_data_types_are_ignored() {
        let at = "2026-12-03T12:00:00Z";
        let verifier = verifier(at);
        let ts = Timestamp::from_second(at.parse::<Timestamp>().unwrap().as_second()).unwrap().as_second().to_string();
        let signed = |body: &str| {
            (
                vec![
                    (SIGNATURE_HEADER.to_owned(), sign(&ts, body.as_bytes())),
                    (TIMESTAMP_HEADER.to_owned(), ts.clone()),
                ],
                body.to_owned(),
            )
        };
        let (headers, body) = signed("not json");
        assert!(matches!(verifier.verify("POST", &headers, body.as_bytes()).await, Err(WebhookError::Malformed(_))));
        let (headers, body) = signed(r#"{"event_type":"create","data_type":"daily_activity","user_id":""}"#);
        assert!(matches!(verifier.verify("POST", &headers, body.as_bytes()).await, Err(WebhookError::Malformed(_))));
        let (headers, body) = signed(
            r#"{"event_type":"create","data_type":"sleep","object_id":"x","user_id":"u1","event_time":"2026-12-03T11:00:00Z"}"#,
        );
        assert_eq!(verifier.verify("POST", &headers, body.as_bytes()).await, Ok(WebhookMessage::Notices(vec![])));
    }

    #[tokio::test]
    async fn the_verification_get_echoes_the_challenge_only_for_our_token() {
        let verifier = verifier("2026-12-03T12:00:00Z");
        let answer = verifier.verify_query("verification_token=verify-me&challenge=abc%2B1", &[]).await.unwrap();
        assert_eq!(answer, WebhookMessage::Handshake { status: 200, body: r#"{"challenge":"abc+1"}"#.into() });
        assert_eq!(
            verifier.verify_query("verification_token=guess&challenge=abc", &[]).await,
            Err(WebhookError::Unauthorized)
        );
        assert_eq!(verifier.verify_query("challenge=abc", &[]).await, Err(WebhookError::MissingSignature));
        assert!(matches!(
            verifier.verify_query("verification_token=verify-me", &[]).await,
            Err(WebhookError::Malformed(_))
        ));
    }
}
