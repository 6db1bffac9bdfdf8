//! `GoogleHealthWebhooks`: the verification handshake, then for notifications the Tink ECDSA
//! signature over the raw body (before any parsing), the optional shared secret, and finally
//! the notices: whose data changed and on which civil dates.

use super::keyset::{KeyCache, Keyset};
use super::wire::CivilDateTime;
use super::{GoogleHealthSettings, SetupError};
use crate::clock::Clock;
use crate::domain::LocalDate;
use crate::ports::{DataNotice, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::webhook::{header, json_items, malformed_item, merge_notice, refuse_unless_small_post, short};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

const SIGNATURE_HEADERS: [&str; 2] = ["x-healthapi-signature", "google-health-api-signature"];
/// Tink's prefix for a TINK key: this byte, then the 4-byte big-endian key id.
const TINK_PREFIX: u8 = 0x01;
/// A handshake body is `{"type": "verification"}`; anything much longer is a notification
/// and must not be parsed before its signature is checked.
const MAX_HANDSHAKE_BYTES: usize = 256;
/// One notice never names more days than a challenge can last; a longer interval (say, a
/// deleted account's whole history) keeps its most recent days.
const MAX_NOTICE_DAYS: i32 = 366;

/// The Google Health adapter behind `WebhookVerifier`. Build it once and share it: it holds
/// the cached signing keys.
pub struct GoogleHealthWebhooks {
    /// The subscriber's `endpointAuthorization.secret`.
    secret: Option<SecretString>,
    require_authorization: bool,
    max_body_bytes: usize,
    keys: KeyCache,
}

impl GoogleHealthWebhooks {
    /// A verifier that fetches Google's keyset from `keyset_url` when it first needs a key.
    pub fn new(settings: GoogleHealthSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        Ok(Self {
            keys: KeyCache::new(&settings, clock)?,
            secret: settings.webhook_secret,
            require_authorization: settings.require_authorization,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// Starts with these webhook keys instead of fetching them first (tests, pinned keys).
    /// An unknown key id still triggers a fetch from `keyset_url`.
    pub fn with_keyset_json(mut self, json: &str) -> Result<Self, SetupError> {
        let keyset = Keyset::from_json(json.as_bytes()).map_err(|e| SetupError::Keyset(e.to_string()))?;
        self.keys.preload(keyset);
        Ok(self)
    }

    /// Whether `Authorization` is the configured secret. Both sides are hashed first, so the
    /// constant-time comparison does not leak the secret's length either.
    fn carries_secret(&self, headers: &[(String, String)]) -> bool {
        let (Some(secret), Some(given)) = (self.secret.as_ref(), header(headers, &["authorization"])) else {
            return false;
        };
        let expected = Sha256::digest(secret.expose_secret().as_bytes());
        let given = Sha256::digest(given.trim().as_bytes());
        expected.ct_eq(&given).into()
    }
}

#[async_trait]
impl WebhookVerifier for GoogleHealthWebhooks {
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_post(method, body, self.max_body_bytes, || {
            format!("expected a POST, not {}", short(method))
        })?;
        if is_handshake(body) {
            // Google checks that the secret gets 201 and its absence 401.
            let status = if self.carries_secret(headers) { 201 } else { 401 };
            return Ok(WebhookMessage::Handshake { status, body: String::new() });
        }

        let header = header(headers, &SIGNATURE_HEADERS).ok_or(WebhookError::MissingSignature)?;
        let (key_id, signature) = split_signature(header)?;
        let key = self.keys.signing_key(key_id).await?;
        if !key.verifies(body, &signature) {
            return Err(WebhookError::BadSignature);
        }
        if self.require_authorization && !self.carries_secret(headers) {
            return Err(WebhookError::Unauthorized);
        }
        parse_notices(body).map(WebhookMessage::Notices)
    }
}

fn is_handshake(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    body.len() <= MAX_HANDSHAKE_BYTES
        && serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.kind.as_deref() == Some("verification"))
}

/// The header value: base64 of Tink's prefix (0x01, key id) and the signature itself.
fn split_signature(header: &str) -> Result<(u32, Vec<u8>), WebhookError> {
    let raw = STANDARD.decode(header.trim()).map_err(|_| WebhookError::BadSignature)?;
    match raw.split_first() {
        Some((&TINK_PREFIX, rest)) if rest.len() > 4 => {
            let (id, signature) = rest.split_at(4);
            let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            Ok((key_id, signature.to_vec()))
        }
        _ => Err(WebhookError::BadSignature),
    }
}

#[derive(Deserialize)]
struct Envelope {
    data: Notification,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    health_user_id: String,
    operation: String,
    data_type: String,
    #[serde(default)]
    intervals: Vec<Interval>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interval {
    #[serde(default)]
    civil_date_time_interval: Option<CivilDateTimeInterval>,
    #[serde(default)]
    civil_iso8601_time_interval: Option<TextInterval>,
    #[serde(default)]
    physical_time_interval: Option<TextInterval>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CivilDateTimeInterval {
    start_date_time: CivilDateTime,
    end_date_time: CivilDateTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TextInterval {
    start_time: String,
    end_time: String,
}

/// The notices in a verified body: one object `{"data": ...}` or an array of them. Data
/// types other than steps are ignored; notices for one account are merged into one.
pub(super) fn parse_notices(body: &[u8]) -> Result<Vec<DataNotice>, WebhookError> {
    let items = json_items(body, "the body is not JSON", "expected an object or an array of objects")?;
    let mut notices: Vec<DataNotice> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let malformed = |why: &str| malformed_item("notification", index, why);
        let Envelope { data } = serde_json::from_value(item).map_err(|e| malformed(&e.to_string()))?;
        if !data.data_type.eq_ignore_ascii_case("steps") {
            continue;
        }
        if data.health_user_id.is_empty() {
            return Err(malformed("healthUserId is empty"));
        }
        let mut dates = Vec::new();
        for interval in &data.intervals {
            let (start, end) = interval_dates(interval).map_err(malformed)?;
            dates.extend(start.max(end.add_days(1 - MAX_NOTICE_DAYS)).through(end));
        }
        let deleted = data.operation.eq_ignore_ascii_case("DELETE");
        merge_notice(&mut notices, DataNotice { account_id: data.health_user_id, dates, deleted });
    }
    Ok(notices)
}

/// The first and last civil date an interval touches. The civil forms are the person's own
/// dates; a physical-only interval (the person's zone unknown) gets every UTC date it
/// touches and one more on each side, which covers any zone: re-reading a day is harmless.
fn interval_dates(interval: &Interval) -> Result<(LocalDate, LocalDate), &'static str> {
    let mut civil: Option<(LocalDate, LocalDate)> = None;
    let mut widen = |start: LocalDate, end: LocalDate| {
        civil = Some(civil.map_or((start, end), |(s, e)| (s.min(start), e.max(end))));
    };
    if let Some(range) = &interval.civil_date_time_interval {
        let start = range.start_date_time.date.to_local().ok_or("an interval has an impossible start date")?;
        let end = range.end_date_time.date.to_local().ok_or("an interval has an impossible end date")?;
        widen(start, end);
    }
    if let Some(range) = &interval.civil_iso8601_time_interval {
        widen(civil_date(&range.start_time)?, civil_date(&range.end_time)?);
    }
    let (start, end) = match (civil, &interval.physical_time_interval) {
        (Some(range), _) => range,
        (None, Some(range)) => {
            let utc_date = |raw: &str| {
                raw.trim()
                    .parse::<Timestamp>()
                    .map(|at| LocalDate::from_date(at.to_zoned_datetime(TimeZone::UTC).date()))
                    .map_err(|_| "an interval has an unreadable instant")
            };
            (utc_date(&range.start_time)?.add_days(-1), utc_date(&range.end_time)?.add_days(1))
        }
        (None, None) => return Err("an interval has no time range"),
    };
    if end < start {
        return Err("an interval ends before it starts");
    }
    Ok((start, end))
}

/// The date of a civil ISO 8601 time (`2026-11-24T09:05:00`), or a bare date.
fn civil_date(raw: &str) -> Result<LocalDate, &'static str> {
    let raw = raw.trim();
    raw.parse::<DateTime>()
        .map(|at| at.date())
        .or_else(|_| raw.parse::<Date>())
        .map(LocalDate::from_date)
        .map_err(|_| "an interval has an unreadable civil time")
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::providers::test_server::{Reply, TestServer};
    use crate::testing::FixedClock;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use serde_json::Value;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ACCOUNT: &str = "114477889900112233445";
    const SECRET: &str = "endpoint-secret-1";

    fn settings(keyset_url: &str) -> GoogleHealthSettings {
        let mut settings = GoogleHealthSettings::new("client-1", SecretString::from("client-secret"), keyset_url);
        settings.webhook_secret = Some(SecretString::from(SECRET));
        settings
    }

    fn verifier_with(settings: GoogleHealthSettings, keyset: Option<&str>) -> GoogleHealthWebhooks {
        let verifier = GoogleHealthWebhooks::new(settings, Arc::new(FixedClock::at("2026-11-25T12:00:00Z"))).unwrap();
        match keyset {
            Some(json) => verifier.with_keyset_json(json).unwrap(),
            None => verifier,
        }
    }

    /// A verifier holding the fixture keys; nothing listens at its keyset URL.
    async fn verifier() -> GoogleHealthWebhooks {
        let nowhere = TestServer::closed_port().await;
        verifier_with(settings(&format!("{nowhere}/keys")), Some(&fixture("webhook_keyset.json")))
    }

    fn signed(name: &str, value: &str) -> Vec<(String, String)> {
        vec![("content-type".into(), "application/json".into()), (name.into(), value.trim().into())]
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn notices(message: WebhookMessage) -> Vec<DataNotice> {
        match message {
            WebhookMessage::Notices(notices) => notices,
            other => panic!("expected notices, got {other:?}"),
        }
    }

    /// A keyset server that counts how often it is asked.
    async fn keyset_server(status: u16, keyset: String) -> (TestServer, Arc<AtomicUsize>) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let server = TestServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(status, keyset.clone())
        })
        .await;
        (server, fetches)
    }

    /// The fixture signature moved to another key id.
    fn signature_with_key_id(key_id: u32) -> String {
        let mut raw = STANDARD.decode(fixture("notification_array.signature").trim()).unwrap();
        raw[1..5].copy_from_slice(&key_id.to_be_bytes());
        STANDARD.encode(raw)
    }

    #[tokio::test]
    async fn the_signed_array_fixture_verifies_under_either_header_name_in_any_case() {
        let verifier = verifier().await;
        let body = fixture("notification_array.json");
        let signature = fixture("notification_array.signature");
        let expected = vec![DataNotice { account_id: ACCOUNT.into(), dates: vec![date("2026-11-24")], deleted: false }];
        for name in [
            "X-HEALTHAPI-SIGNATURE",
            "x-healthapi-signature",
            "Google-Health-Api-Signature",
            "GOOGLE-HEALTH-API-SIGNATURE",
        ] {
            let message = verifier.verify("POST", &signed(name, &signature), body.as_bytes()).await;
            assert_eq!(notices(message.unwrap()), expected, "header {name}");
        }
    }

    #[tokio::test]
    async fn a_tampered_body_with_the_original_signature_is_refused() {
        let body = fixture("notification_array_tampered.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        let err = verifier().await.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn a_re_serialised_body_no_longer_verifies() {
        let original: Value = serde_json::from_str(&fixture("notification_array.json")).unwrap();
        let pretty = serde_json::to_string_pretty(&original).unwrap();
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        let err = verifier().await.verify("POST", &headers, pretty.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn the_signed_delete_object_covers_the_utc_dates_widened_by_a_day() {
        let body = fixture("notification_object_delete.json");
        let headers = signed("x-healthapi-signature", &fixture("notification_object_delete.signature"));
        let message = verifier().await.verify("POST", &headers, body.as_bytes()).await.unwrap();
        let dates = ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"].map(date).to_vec();
        assert_eq!(notices(message), [DataNotice { account_id: ACCOUNT.into(), dates, deleted: true }]);
    }

    #[tokio::test]
    async fn a_notification_without_a_signature_header_is_refused() {
        let body = fixture("notification_array.json");
        let headers = vec![("authorization".to_owned(), SECRET.to_owned())];
        let err = verifier().await.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::MissingSignature);
    }

    #[tokio::test]
    async fn signatures_that_are_not_tink_prefixed_base64_are_bad() {
        let verifier = verifier().await;
        let body = fixture("notification_array.json");
        let mut raw = STANDARD.decode(fixture("notification_array.signature").trim()).unwrap();
        raw[0] = 0x00;
        for value in ["not base64!".to_owned(), STANDARD.encode(&raw), STANDARD.encode([1u8, 0, 0]), String::new()] {
            let err = verifier.verify("POST", &signed("X-HEALTHAPI-SIGNATURE", &value), body.as_bytes()).await;
            assert_eq!(err.unwrap_err(), WebhookError::BadSignature, "signature {value:?}");
        }
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_before_anything_else() {
        let mut settings = settings("http://127.0.0.1:9/keys");
        settings.max_body_bytes = 100;
        let verifier = verifier_with(settings, Some(&fixture("webhook_keyset.json")));
        let body = fixture("notification_array.json");
        let err = verifier.verify("POST", &[], body.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::TooLarge);
    }

    /// A keyset server whose keyset can be changed (Google rotating), counting fetches.
    async fn rotating_keyset_server(keyset: String) -> (TestServer, Arc<AtomicUsize>, Arc<Mutex<String>>) {
        let (fetches, published) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(keyset)));
        let (counter, serving) = (fetches.clone(), published.clone());
        let server = TestServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, serving.lock().unwrap().clone())
        })
        .await;
        (server, fetches, published)
    }

    async fn refused_key_id(verifier: &GoogleHealthWebhooks, key_id: u32) -> WebhookError {
        let headers = signed("X-HEALTHAPI-SIGNATURE", &signature_with_key_id(key_id));
        verifier.verify("POST", &headers, fixture("notification_array.json").as_bytes()).await.unwrap_err()
    }

    #[tokio::test]
    async fn an_unknown_key_id_refetches_the_keyset_once_then_is_remembered_for_ten_minutes() {
        let (keys, fetches) = keyset_server(200, fixture("webhook_keyset.json")).await;
        let clock = Arc::new(FixedClock::at("2026-11-25T12:00:00Z"));
        let verifier = GoogleHealthWebhooks::new(settings(&format!("{}/keys", keys.base)), clock.clone())
            .unwrap()
            .with_keyset_json(&fixture("webhook_keyset.json"))
            .unwrap();

        assert_eq!(refused_key_id(&verifier, 42).await, WebhookError::UnknownKey);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // The keyset that lacked it is a minute old: the id is still refused without asking.
        clock.advance(std::time::Duration::from_secs(61));
        assert_eq!(refused_key_id(&verifier, 42).await, WebhookError::UnknownKey);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Ten minutes on, it is asked about once more.
        clock.advance(std::time::Duration::from_secs(9 * 60));
        assert_eq!(refused_key_id(&verifier, 42).await, WebhookError::UnknownKey);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hundred_made_up_key_ids_cost_one_fetch_a_minute_and_a_rotated_key_is_picked_up_after_it() {
        let own = OwnKey::new();
        let (keys, fetches, published) = rotating_keyset_server(own.keyset_json()).await;
        let clock = Arc::new(FixedClock::at("2026-11-25T12:00:00Z"));
        let verifier = GoogleHealthWebhooks::new(settings(&format!("{}/keys", keys.base)), clock.clone())
            .unwrap()
            .with_keyset_json(&own.keyset_json())
            .unwrap();

        for key_id in 1000..1100 {
            assert_eq!(refused_key_id(&verifier, key_id).await, WebhookError::UnknownKey, "key id {key_id}");
            clock.advance(std::time::Duration::from_millis(500));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for the first made-up id, none for the rest");

        // Google publishes a new key and signs with it, within that minute: it waits its turn.
        *published.lock().unwrap() = fixture("webhook_keyset.json");
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        clock.advance(std::time::Duration::from_secs(5));
        let err = verifier.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::UnknownKey);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // A minute after the fetch, Google's retry brings the rotated key in.
        clock.advance(std::time::Duration::from_secs(6));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // The id the first fetch was made for is remembered: asked again, still no fetch.
        assert_eq!(refused_key_id(&verifier, 1000).await, WebhookError::UnknownKey);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn while_a_keyset_fetch_runs_other_unknown_key_ids_are_refused_at_once_rather_than_queued() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let slow = TestServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, fixture("webhook_keyset.json")).after(std::time::Duration::from_millis(1500))
        })
        .await;
        let verifier =
            Arc::new(verifier_with(settings(&format!("{}/keys", slow.base)), Some(&OwnKey::new().keyset_json())));

        let started = std::time::Instant::now();
        let requests: Vec<_> = (0..20u32)
            .map(|n| {
                let verifier = verifier.clone();
                tokio::spawn(async move {
                    let error = refused_key_id(&verifier, 5000 + n).await;
                    (error, started.elapsed())
                })
            })
            .collect();
        let mut waits = Vec::new();
        for request in requests {
            let (error, waited) = request.await.unwrap();
            assert_eq!(error, WebhookError::UnknownKey);
            waits.push(waited);
        }
        waits.sort();
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for twenty requests");
        // Each of the others waited a moment for the running fetch (it might have brought their
        // key), then was refused: none queued for the fetch's 1.5 s.
        assert!(waits[18] < std::time::Duration::from_millis(1000), "the others did not queue: {waits:?}");
        assert!(waits[19] >= std::time::Duration::from_millis(1500), "the one that fetched waited for it");
    }

    #[tokio::test]
    async fn requests_that_arrive_during_a_quick_fetch_are_served_by_it() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let quick = TestServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, fixture("webhook_keyset.json")).after(std::time::Duration::from_millis(100))
        })
        .await;
        // A cold start: no keys yet, and ten notifications at once.
        let verifier = Arc::new(verifier_with(settings(&format!("{}/keys", quick.base)), None));
        let requests: Vec<_> = (0..10)
            .map(|_| {
                let verifier = verifier.clone();
                tokio::spawn(async move {
                    let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
                    verifier.verify("POST", &headers, fixture("notification_array.json").as_bytes()).await
                })
            })
            .collect();
        for request in requests {
            assert!(request.await.unwrap().is_ok());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_keyset_fetch_is_cut_off_well_inside_the_webhook_functions_timeout() {
        let hanging = TestServer::replying(
            Reply::json(200, fixture("webhook_keyset.json")).after(std::time::Duration::from_secs(8)),
        )
        .await;
        // The settings' own request timeout (10 s) is longer than a webhook may wait.
        let settings = settings(&format!("{}/keys", hanging.base));
        assert_eq!(settings.request_timeout, std::time::Duration::from_secs(10));
        let verifier = verifier_with(settings, None);
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));

        let started = std::time::Instant::now();
        let err = verifier.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
        let took = started.elapsed();

        assert!(matches!(&err, WebhookError::Unavailable(m) if m.contains("timed out")), "{err:?}");
        assert!(took >= std::time::Duration::from_secs(3) && took < std::time::Duration::from_secs(4), "took {took:?}");
    }

    #[tokio::test]
    async fn a_failed_keyset_fetch_is_not_tried_again_within_the_minute() {
        let (failing, fetches) = keyset_server(503, "{}".into()).await;
        let clock = Arc::new(FixedClock::at("2026-11-25T12:00:00Z"));
        let verifier = GoogleHealthWebhooks::new(settings(&format!("{}/keys", failing.base)), clock.clone()).unwrap();
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));

        for _ in 0..5 {
            let err = verifier.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
            assert!(matches!(err, WebhookError::Unavailable(_)), "{err:?}");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        clock.advance(std::time::Duration::from_secs(60));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "a minute later it is tried again");
    }

    #[tokio::test]
    async fn keys_are_fetched_lazily_once_and_then_served_from_the_cache() {
        let (keys, fetches) = keyset_server(200, fixture("webhook_keyset.json")).await;
        let verifier = verifier_with(settings(&format!("{}/keys", keys.base)), None);
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        for _ in 0..3 {
            assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(keys.requests()[0].method, "GET");
    }

    #[tokio::test]
    async fn a_keyset_older_than_a_day_is_fetched_again() {
        let (keys, fetches) = keyset_server(200, fixture("webhook_keyset.json")).await;
        let clock = Arc::new(FixedClock::at("2026-11-25T12:00:00Z"));
        let verifier = GoogleHealthWebhooks::new(settings(&format!("{}/keys", keys.base)), clock.clone()).unwrap();
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));

        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        clock.advance(std::time::Duration::from_secs(23 * 3600));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        clock.advance(std::time::Duration::from_secs(2 * 3600));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_by_the_refetch() {
        let (keys, fetches) = keyset_server(200, fixture("webhook_keyset.json")).await;
        let own = OwnKey::new();
        // The verifier starts with only its own key; Google's new key is published later.
        let verifier = verifier_with(settings(&format!("{}/keys", keys.base)), Some(&own.keyset_json()));
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unreachable_or_broken_keyset_makes_verification_unavailable() {
        let body = fixture("notification_array.json");
        let headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));
        let (failing, _) = keyset_server(500, "{}".into()).await;
        let (garbled, _) = keyset_server(200, "{\"key\": []}".into()).await;
        for keys in [failing, garbled] {
            let verifier = verifier_with(settings(&format!("{}/keys", keys.base)), None);
            let err = verifier.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
            assert!(matches!(err, WebhookError::Unavailable(_)), "{err:?}");
        }
    }

    #[tokio::test]
    async fn the_handshake_answers_201_only_to_the_configured_secret() {
        let verifier = verifier().await;
        let body = fixture("verification.json");
        let with_secret = vec![("Authorization".to_owned(), SECRET.to_owned())];
        let wrong = vec![("authorization".to_owned(), "endpoint-secret-2".to_owned())];
        let created = WebhookMessage::Handshake { status: 201, body: String::new() };
        let refused = WebhookMessage::Handshake { status: 401, body: String::new() };
        assert_eq!(verifier.verify("POST", &with_secret, body.as_bytes()).await.unwrap(), created);
        assert_eq!(verifier.verify("POST", &wrong, body.as_bytes()).await.unwrap(), refused);
        assert_eq!(verifier.verify("POST", &[], body.as_bytes()).await.unwrap(), refused);

        let mut unconfigured = settings("http://127.0.0.1:9/keys");
        unconfigured.webhook_secret = None;
        let verifier = verifier_with(unconfigured, None);
        assert_eq!(verifier.verify("post", &with_secret, body.as_bytes()).await.unwrap(), refused);
    }

    #[tokio::test]
    async fn when_required_the_secret_must_accompany_a_valid_signature() {
        let nowhere = TestServer::closed_port().await;
        let mut strict = settings(&format!("{nowhere}/keys"));
        strict.require_authorization = true;
        let verifier = verifier_with(strict, Some(&fixture("webhook_keyset.json")));
        let body = fixture("notification_array.json");
        let mut headers = signed("X-HEALTHAPI-SIGNATURE", &fixture("notification_array.signature"));

        let err = verifier.verify("POST", &headers, body.as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::Unauthorized);
        headers.push(("Authorization".into(), SECRET.into()));
        assert!(verifier.verify("POST", &headers, body.as_bytes()).await.is_ok());
    }

    #[test]
    fn a_keyset_url_or_keyset_that_cannot_be_used_is_refused_at_setup() {
        let clock = Arc::new(FixedClock::at("2026-11-25T12:00:00Z"));
        let err = GoogleHealthWebhooks::new(settings("ftp://keys.example/keyset"), clock.clone()).err().unwrap();
        assert!(matches!(err, SetupError::InvalidUrl { name: "keyset_url" }), "{err:?}");
        let verifier = GoogleHealthWebhooks::new(settings("https://keys.example/keyset"), clock).unwrap();
        assert!(matches!(verifier.with_keyset_json("{\"key\": []}"), Err(SetupError::Keyset(_))));
    }

    #[tokio::test]
    async fn only_posts_are_accepted() {
        let err = verifier().await.verify("GET", &[], b"").await.unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)));
    }

    /// A key of our own, to sign bodies the fixtures do not have.
    struct OwnKey(SigningKey);

    impl OwnKey {
        const ID: u32 = 77;

        fn new() -> Self {
            Self(SigningKey::from_slice(&[7u8; 32]).unwrap())
        }

        fn keyset_json(&self) -> String {
            let point = self.0.verifying_key().to_encoded_point(false);
            let mut proto = vec![0x12, 0x06, 0x08, 0x03, 0x10, 0x02, 0x18, 0x02, 0x1a, 0x21, 0x00];
            proto.extend_from_slice(point.x().unwrap());
            proto.extend_from_slice(&[0x22, 0x21, 0x00]);
            proto.extend_from_slice(point.y().unwrap());
            serde_json::json!({
                "primaryKeyId": Self::ID,
                "key": [{
                    "keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.EcdsaPublicKey", "value": STANDARD.encode(proto)},
                    "status": "ENABLED",
                    "keyId": Self::ID,
                    "outputPrefixType": "TINK",
                }]
            })
            .to_string()
        }

        fn sign(&self, body: &str) -> String {
            let signature: p256::ecdsa::Signature = self.0.sign(body.as_bytes());
            let mut raw = vec![TINK_PREFIX];
            raw.extend_from_slice(&Self::ID.to_be_bytes());
            raw.extend_from_slice(signature.to_der().as_bytes());
            STANDARD.encode(raw)
        }
    }

    #[tokio::test]
    async fn a_body_signed_by_our_own_key_verifies_and_is_then_parsed() {
        let own = OwnKey::new();
        assert!(Keyset::from_json(own.keyset_json().as_bytes()).is_ok());
        let verifier = verifier_with(settings("http://127.0.0.1:9/keys"), Some(&own.keyset_json()));
        let body = r#"{"data":{"healthUserId":"9","operation":"UPSERT","dataType":"steps","intervals":[
            {"civilIso8601TimeInterval":{"startTime":"2026-11-20T23:00:00","endTime":"2026-11-21T01:00:00"}}]}}"#;
        let headers = signed("X-HEALTHAPI-SIGNATURE", &own.sign(body));
        let message = verifier.verify("POST", &headers, body.as_bytes()).await;
        let dates = vec![date("2026-11-20"), date("2026-11-21")];
        assert_eq!(notices(message.unwrap()), [DataNotice { account_id: "9".into(), dates, deleted: false }]);

        let unsigned_json = r#"{"data":"nope"}"#;
        let err = verifier
            .verify("POST", &signed("X-HEALTHAPI-SIGNATURE", &own.sign(unsigned_json)), unsigned_json.as_bytes())
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn notices_for_one_account_merge_and_other_data_types_are_ignored() {
        let body = r#"[
            {"data":{"healthUserId":"a","operation":"UPSERT","dataType":"steps","intervals":[
                {"civilDateTimeInterval":{"startDateTime":{"date":{"year":2026,"month":11,"day":24}},"endDateTime":{"date":{"year":2026,"month":11,"day":25}}}}]}},
            {"data":{"healthUserId":"b","operation":"UPSERT","dataType":"heartRate","intervals":[
                {"civilIso8601TimeInterval":{"startTime":"2026-11-01T00:00:00","endTime":"2026-11-01T01:00:00"}}]}},
            {"data":{"healthUserId":"a","operation":"DELETE","dataType":"steps","intervals":[
                {"civilIso8601TimeInterval":{"startTime":"2026-11-22T08:00:00","endTime":"2026-11-22T09:00:00"}},
                {"civilIso8601TimeInterval":{"startTime":"2026-11-24T08:00:00","endTime":"2026-11-24T09:00:00"}}]}}
        ]"#;
        let dates = ["2026-11-22", "2026-11-24", "2026-11-25"].map(date).to_vec();
        assert_eq!(
            parse_notices(body.as_bytes()).unwrap(),
            [DataNotice { account_id: "a".into(), dates, deleted: true }]
        );
        assert_eq!(parse_notices(b"[]").unwrap(), []);
    }

    #[test]
    fn very_long_intervals_keep_only_their_most_recent_days() {
        let body = r#"{"data":{"healthUserId":"a","operation":"DELETE","dataType":"steps","intervals":[
            {"physicalTimeInterval":{"startTime":"2000-01-01T00:00:00Z","endTime":"2026-11-24T05:00:00Z"}}]}}"#;
        let notice = &parse_notices(body.as_bytes()).unwrap()[0];
        assert_eq!(notice.dates.len(), MAX_NOTICE_DAYS as usize);
        assert_eq!(notice.dates.last(), Some(&date("2026-11-25")));
    }

    #[test]
    fn malformed_notifications_are_refused_with_a_short_reason() {
        let cases: [(&str, &str); 7] = [
            ("not json", "the body is not JSON"),
            ("42", "expected an object or an array of objects"),
            (r#"[{"nodata":{}}]"#, "notification 0: missing field `data`"),
            (
                r#"{"data":{"healthUserId":"","operation":"UPSERT","dataType":"steps"}}"#,
                "notification 0: healthUserId is empty",
            ),
            (
                r#"{"data":{"healthUserId":"a","operation":"UPSERT","dataType":"steps","intervals":[{}]}}"#,
                "notification 0: an interval has no time range",
            ),
            (
                r#"{"data":{"healthUserId":"a","operation":"UPSERT","dataType":"steps","intervals":[{"physicalTimeInterval":{"startTime":"2026-11-25T00:00:00Z","endTime":"2026-11-20T00:00:00Z"}}]}}"#,
                "notification 0: an interval ends before it starts",
            ),
            (
                r#"{"data":{"healthUserId":"a","operation":"UPSERT","dataType":"steps","intervals":[{"civilIso8601TimeInterval":{"startTime":"yesterday","endTime":"today"}}]}}"#,
                "notification 0: an interval has an unreadable civil time",
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(parse_notices(body.as_bytes()), Err(WebhookError::Malformed(reason.into())), "body {body}");
        }
    }
}
