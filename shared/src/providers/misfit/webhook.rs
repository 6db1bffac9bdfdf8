//! `MisfitWebhooks`: Misfit's notifications arrive as Amazon SNS messages. Every URL a
//! message names is checked against the allow-list before anything is fetched; then the
//! signature is verified with the certificate from `SigningCertURL`, and the signed
//! `Timestamp` must be within the hour; then a confirmation is confirmed, or a notification's
//! changes become notices: whose data changed and around which dates.

use super::sns::{CertCache, MessageKind, SnsMessage, SnsUrls};
use super::{MisfitSettings, SetupError};
use crate::clock::Clock;
use crate::domain::LocalDate;
use crate::ports::{DataNotice, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::fetch_limits::{KEY_FETCH_CONNECT_TIMEOUT, KEY_FETCH_TIMEOUT};
use crate::providers::http::{HttpFailure, Redirects, build_client, read_limited};
use crate::providers::webhook::{header, json_items, malformed_item, merge_notice, refuse_unless_small_post};
use async_trait::async_trait;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// SNS names the kind of message in this header too; it must agree with the body.
const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";
/// The confirmation answer is a small XML document nobody reads.
const MAX_CONFIRMATION_BYTES: usize = 64 * 1024;
/// SNS wants an answer within 15 s and `provider-webhook` has 10 s: a confirmation, fetched
/// after the certificate (`KEY_FETCH_TIMEOUT`), gets at most this.
const MAX_CONFIRMATION_TIME: Duration = Duration::from_secs(5);
/// SNS retries an HTTP(S) delivery for an hour at most (a hard limit of its delivery
/// policies) and every retry keeps the message's `Timestamp`: anything older is a replay.
const MAX_MESSAGE_AGE: SignedDuration = SignedDuration::from_hours(1);
/// How far ahead of this function's clock SNS's may run.
const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// The Misfit adapter behind `WebhookVerifier`. Build it once and share it: it holds one
/// connection pool and the cached SNS certificates.
pub struct MisfitWebhooks {
    max_body_bytes: usize,
    /// The SNS topics Misfit notifies through; a message (or a subscription to confirm) from
    /// any other topic is refused. Empty accepts none.
    allowed_topic_arns: Vec<String>,
    sns_urls: SnsUrls,
    certs: CertCache,
    /// For confirmations; the certificate cache fetches through a clone (one pool).
    http: reqwest::Client,
    confirmation_timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl MisfitWebhooks {
    /// A verifier with the settings' allow-lists and topics; its fetches use the settings'
    /// timeouts, capped so that a request is answered well within the function's own.
    pub fn new(settings: MisfitSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let sns_urls = SnsUrls::from_settings(&settings)?;
        // It does not follow redirects: one could lead a fetch off the allow-list.
        let connect_timeout = settings.connect_timeout.min(KEY_FETCH_CONNECT_TIMEOUT);
        let http = build_client(connect_timeout, settings.request_timeout, Redirects::Stop)
            .map_err(|e| SetupError::HttpClient(e.to_string()))?;
        let cert_timeout = settings.request_timeout.min(KEY_FETCH_TIMEOUT);
        Ok(Self {
            max_body_bytes: settings.max_body_bytes,
            allowed_topic_arns: settings.allowed_topic_arns,
            sns_urls,
            certs: CertCache::new(http.clone(), cert_timeout, clock.clone()),
            http,
            confirmation_timeout: settings.request_timeout.min(MAX_CONFIRMATION_TIME),
            clock,
        })
    }

    /// Visiting `SubscribeURL` is how SNS subscriptions are confirmed.
    async fn confirm_subscription(&self, url: reqwest::Url) -> Result<(), WebhookError> {
        let failed = |why: &str| WebhookError::Unavailable(format!("the SNS subscription confirmation {why}"));
        let response = self
            .http
            .get(url)
            .timeout(self.confirmation_timeout)
            .send()
            .await
            .map_err(|e| failed(HttpFailure::of(&e).describe()))?;
        let status = response.status();
        // Read (and drop) the answer so the connection can be reused.
        let _ = read_limited(response, MAX_CONFIRMATION_BYTES).await;
        if status.is_success() { Ok(()) } else { Err(failed(&format!("answered {}", status.as_u16()))) }
    }
}

#[async_trait]
impl WebhookVerifier for MisfitWebhooks {
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_post(method, body, self.max_body_bytes, || "SNS messages are POSTs".into())?;
        // SNS signs fields, not bytes: the body must be read to know what to verify.
        let message = SnsMessage::parse(body)?;
        if header(headers, &[MESSAGE_TYPE_HEADER]).is_some_and(|kind| kind.trim() != message.kind.as_str()) {
            return Err(WebhookError::Malformed("the message type header and the body disagree".into()));
        }
        // Only the configured topics: none configured accepts none (fail closed).
        if !self.allowed_topic_arns.contains(&message.topic_arn) {
            return Err(WebhookError::Unauthorized);
        }
        // Every URL is checked before the first fetch, so a refused message fetches nothing.
        let cert_url = self.sns_urls.signing_cert(&message.signing_cert_url)?;
        let subscribe_url = match message.kind {
            MessageKind::SubscriptionConfirmation => {
                Some(self.sns_urls.subscribe(message.subscribe_url.as_deref().unwrap_or_default())?)
            }
            _ => None,
        };

        let cert = self.certs.signing_cert(&cert_url).await?;
        let now = self.clock.now();
        if !cert.is_valid_at(now) || !cert.verifies(message.canonical().as_bytes(), &message.signature, message.version)
        {
            return Err(WebhookError::BadSignature);
        }
        // Only a verified `Timestamp` is believed. An old message, validly signed, would
        // otherwise confirm a subscription again or make someone's days be re-read at will.
        let age = now.duration_since(message.sent_at);
        if age > MAX_MESSAGE_AGE || age < -MAX_CLOCK_SKEW {
            return Err(WebhookError::Stale);
        }

        match (message.kind, subscribe_url) {
            (MessageKind::SubscriptionConfirmation, Some(url)) => {
                self.confirm_subscription(url.fetch).await?;
                tracing::info!(topic = %message.topic_arn, "misfit: SNS subscription confirmed");
                Ok(WebhookMessage::Handshake { status: 200, body: String::new() })
            }
            (MessageKind::UnsubscribeConfirmation, _) => {
                // Nothing to do but notice: notifications stop until someone subscribes again.
                tracing::warn!(topic = %message.topic_arn, "misfit: SNS subscription ended");
                Ok(WebhookMessage::Handshake { status: 200, body: String::new() })
            }
            _ => parse_changes(&message.message).map(WebhookMessage::Notices),
        }
    }
}

/// One entry of a notification's `Message`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    owner_id: String,
    #[serde(default)]
    action: Option<String>,
    updated_at: Value,
}

/// The changes in a verified notification: a JSON array (a lone object is read the same
/// way). Every resource type counts, since a session or a goal can move the day's steps and
/// re-reading a day is harmless. One notice per owner.
fn parse_changes(message: &str) -> Result<Vec<DataNotice>, WebhookError> {
    let items = json_items(message.as_bytes(), "the message is not JSON", "the message is not a list of changes")?;
    let mut notices: Vec<DataNotice> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let malformed = |why: &str| malformed_item("change", index, why);
        let change: Change = serde_json::from_value(item).map_err(|e| malformed(&e.to_string()))?;
        let owner = change.owner_id.trim();
        if owner.is_empty() {
            return Err(malformed("ownerId is empty"));
        }
        let updated = updated_date(&change.updated_at).ok_or_else(|| malformed("updatedAt is unreadable"))?;
        // `updatedAt` is an instant and the person's zone is unknown here: the day before
        // and after cover every zone, and the sync re-reads those dates.
        let dates: Vec<LocalDate> = updated.add_days(-1).through(updated.add_days(1)).collect();
        let deleted = change.action.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("deleted"));
        merge_notice(&mut notices, DataNotice { account_id: owner.to_owned(), dates, deleted });
    }
    Ok(notices)
}

/// The UTC date of an RFC 3339 instant; a date-time without offset is read as UTC, and a
/// bare date as itself.
fn updated_date(raw: &Value) -> Option<LocalDate> {
    let raw = raw.as_str()?.trim();
    if let Ok(at) = raw.parse::<Timestamp>() {
        return Some(LocalDate::from_date(at.to_zoned_datetime(TimeZone::UTC).date()));
    }
    raw.parse::<DateTime>().map(|at| at.date()).or_else(|_| raw.parse::<Date>()).ok().map(LocalDate::from_date)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::providers::test_server::{Reply, TestServer};
    use crate::testing::FixedClock;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use secrecy::SecretString;
    use std::str::FromStr;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::der::EncodePem;
    use x509_cert::der::pem::LineEnding;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::{Time, Validity};

    const OWNER: &str = "51a4189acf12e53f80000001";
    /// The verifier's "now": ten minutes after the notification fixture was sent, half an hour
    /// after the confirmation fixture.
    const NOW: &str = "2026-11-23T18:30:00Z";
    /// When the messages signed with the test key were sent.
    const SENT: &str = "2026-11-23T18:25:00.000Z";
    const FIXTURE_CERT_PATH: &str = "/SimpleNotificationService-fixture.pem";
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:misfit-fixture";

    /// A key of our own with two certificates, to sign messages the fixtures do not cover.
    struct TestKey {
        signer: SigningKey<sha1::Sha1>,
        signer_v2: SigningKey<sha2::Sha256>,
        valid_pem: String,
        expired_pem: String,
    }

    fn test_key() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| {
            // 1024 bits keeps the test fast; the verifier does not care about the size.
            let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
            let certificate = |from: u64, to: u64| {
                let at = |secs: u64| Time::try_from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
                let validity = Validity { not_before: at(from), not_after: at(to) };
                let spki = SubjectPublicKeyInfoOwned::from_key(private.to_public_key()).unwrap();
                let issuer = SigningKey::<sha2::Sha256>::new(private.clone());
                let subject = Name::from_str("CN=sns.fixture.test").unwrap();
                let builder =
                    CertificateBuilder::new(Profile::Root, SerialNumber::from(7u32), validity, subject, spki, &issuer)
                        .unwrap();
                builder.build::<rsa::pkcs1v15::Signature>().unwrap().to_pem(LineEnding::LF).unwrap()
            };
            TestKey {
                signer: SigningKey::new(private.clone()),
                signer_v2: SigningKey::new(private.clone()),
                // 2026-01-01 to 2027-01-01, and 2020-01-01 to 2021-01-01.
                valid_pem: certificate(1_767_225_600, 1_798_761_600),
                expired_pem: certificate(1_577_836_800, 1_609_459_200),
            }
        })
    }

    /// A message signed (version 1) with the test key: `signed` are the canonical fields in
    /// SNS's order.
    fn signed_message(signed: &[(&str, &str)], cert_url: &str) -> Vec<u8> {
        signed_message_as("1", signed, cert_url)
    }

    /// As `signed_message`, with SignatureVersion `version`: "2" signs with SHA-256, any
    /// other with SHA-1.
    fn signed_message_as(version: &str, signed: &[(&str, &str)], cert_url: &str) -> Vec<u8> {
        let canonical: String = signed.iter().map(|(key, value)| format!("{key}\n{value}\n")).collect();
        let signature = match version {
            "2" => test_key().signer_v2.sign(canonical.as_bytes()).to_bytes(),
            _ => test_key().signer.sign(canonical.as_bytes()).to_bytes(),
        };
        let signature = STANDARD.encode(signature);
        let mut message = serde_json::Map::new();
        for (key, value) in signed {
            message.insert((*key).to_owned(), Value::from(*value));
        }
        message.insert("SignatureVersion".into(), version.into());
        message.insert("Signature".into(), signature.into());
        message.insert("SigningCertURL".into(), cert_url.into());
        serde_json::to_vec(&message).unwrap()
    }

    fn own_notification(message: &str) -> Vec<u8> {
        own_notification_sent_at(message, SENT)
    }

    fn own_notification_sent_at(message: &str, timestamp: &str) -> Vec<u8> {
        signed_message(
            &[
                ("Message", message),
                ("MessageId", "m-1"),
                ("Timestamp", timestamp),
                ("TopicArn", TOPIC),
                ("Type", "Notification"),
            ],
            "https://sns.fixture.test/own.pem",
        )
    }

    /// Serves the fixture certificate, the test key's certificates and the confirmation,
    /// counting every request.
    async fn sns_server() -> TestServer {
        TestServer::start(|request| match request.path.as_str() {
            FIXTURE_CERT_PATH => Reply::new(200, fixture("sns_signing_cert.pem")),
            "/own.pem" => Reply::new(200, test_key().valid_pem.clone()),
            "/expired.pem" => Reply::new(200, test_key().expired_pem.clone()),
            "/" => Reply::new(200, "<ConfirmSubscriptionResponse/>"),
            _ => Reply::new(404, ""),
        })
        .await
    }

    fn settings(server: &str) -> MisfitSettings {
        let mut settings = MisfitSettings::new("client-1", SecretString::from("client-secret-1"));
        settings.allowed_sns_hosts = vec!["sns.fixture.test".into()];
        settings.allow_aws_sns_hosts = false;
        settings.cert_url_rewrites = vec![("https://sns.fixture.test/".into(), format!("{server}/"))];
        settings.request_timeout = Duration::from_millis(500);
        // A second listed topic, so that changing a message's topic is refused by its
        // signature (the point of the tampering tests), not by the list.
        settings.allowed_topic_arns = vec![TOPIC.into(), "arn:aws:sns:us-east-1:123456789012:misfit-other".into()];
        settings
    }

    fn verifier(server: &TestServer) -> MisfitWebhooks {
        verifier_with(settings(&server.base))
    }

    fn verifier_with(settings: MisfitSettings) -> MisfitWebhooks {
        MisfitWebhooks::new(settings, Arc::new(FixedClock::at(NOW))).unwrap()
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn dates(raw: &[&str]) -> Vec<LocalDate> {
        raw.iter().map(|d| date(d)).collect()
    }

    fn sns_headers(kind: &str) -> Vec<(String, String)> {
        vec![
            ("Content-Type".into(), "text/plain; charset=UTF-8".into()),
            ("x-amz-sns-message-type".into(), kind.into()),
        ]
    }

    async fn verify(verifier: &MisfitWebhooks, body: &[u8]) -> Result<WebhookMessage, WebhookError> {
        verifier.verify("POST", &[], body).await
    }

    /// A fixture with one field replaced.
    fn with_field(name: &str, field: &str, value: &str) -> Vec<u8> {
        let mut message: Value = serde_json::from_str(&fixture(name)).unwrap();
        message[field] = Value::from(value);
        serde_json::to_vec(&message).unwrap()
    }

    fn paths(server: &TestServer) -> Vec<String> {
        server.requests().iter().map(|r| r.path.clone()).collect()
    }

    #[test]
    fn an_unusable_sns_allow_list_is_refused_at_setup() {
        let mut unusable = settings("http://127.0.0.1:9");
        unusable.allowed_sns_hosts = vec!["https://sns.fixture.test".into()];
        let err = MisfitWebhooks::new(unusable, Arc::new(FixedClock::at(NOW))).err().unwrap();
        assert!(matches!(err, SetupError::InvalidSetting { name: "allowed_sns_hosts", .. }), "{err:?}");
    }

    #[tokio::test]
    async fn the_signed_notification_fixture_verifies_and_names_the_owner_around_the_update_date() {
        let server = sns_server().await;
        let body = fixture("sns_notification.json");
        let message = verifier(&server).verify("POST", &sns_headers("Notification"), body.as_bytes()).await;
        let expected = DataNotice {
            account_id: OWNER.into(),
            dates: dates(&["2026-11-22", "2026-11-23", "2026-11-24"]),
            deleted: false,
        };
        assert_eq!(message.unwrap(), WebhookMessage::Notices(vec![expected]));
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH], "only the certificate was fetched, through the rewrite");
    }

    #[tokio::test]
    async fn the_signed_confirmation_fixture_is_confirmed_by_fetching_its_subscribe_url_exactly_once() {
        let server = sns_server().await;
        let body = fixture("sns_subscription_confirmation.json");
        let headers = sns_headers("SubscriptionConfirmation");
        let message = verifier(&server).verify("POST", &headers, body.as_bytes()).await;
        assert_eq!(message.unwrap(), WebhookMessage::Handshake { status: 200, body: String::new() });

        let sent = server.requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].path, FIXTURE_CERT_PATH);
        assert_eq!((sent[1].method.as_str(), sent[1].path.as_str()), ("GET", "/"));
        assert_eq!(sent[1].query, "Action=ConfirmSubscription&Token=fixture-token-2336412f37");
    }

    #[tokio::test]
    async fn the_certificate_is_fetched_once_and_cached_across_requests() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for _ in 0..3 {
            assert!(verify(&verifier, fixture("sns_notification.json").as_bytes()).await.is_ok());
        }
        assert!(verify(&verifier, fixture("sns_subscription_confirmation.json").as_bytes()).await.is_ok());
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH, "/"]);
    }

    #[tokio::test]
    async fn changing_any_signed_field_of_the_notification_fails_verification() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let original: Value = serde_json::from_str(&fixture("sns_notification.json")).unwrap();
        let changed_message = original["Message"].as_str().unwrap().replace("updated", "deleted");
        for (field, value) in [
            ("Message", changed_message.as_str()),
            ("MessageId", "6f1d0a6e-8a0b-5b3e-9c5e-0d1e2f3a4b5d"),
            ("Timestamp", "2026-11-23T18:20:13.000Z"),
            ("TopicArn", "arn:aws:sns:us-east-1:123456789012:misfit-other"),
            ("Subject", "added"),
        ] {
            let body = with_field("sns_notification.json", field, value);
            assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::BadSignature, "{field}");
        }
        let other_signature =
            serde_json::from_str::<Value>(&fixture("sns_subscription_confirmation.json")).unwrap()["Signature"]
                .as_str()
                .unwrap()
                .to_owned();
        let body = with_field("sns_notification.json", "Signature", &other_signature);
        assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::BadSignature);
        assert!(
            verify(&verifier, fixture("sns_notification.json").as_bytes()).await.is_ok(),
            "the original still does"
        );
    }

    #[tokio::test]
    async fn changing_any_signed_field_of_the_confirmation_fails_verification_and_confirms_nothing() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for (field, value) in [
            ("Message", "You have chosen to subscribe to another topic."),
            ("MessageId", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8fa"),
            ("SubscribeURL", "https://sns.fixture.test/?Action=ConfirmSubscription&Token=another-token"),
            ("Timestamp", "2026-11-23T18:00:01.000Z"),
            ("Token", "fixture-token-2336412f38"),
            ("TopicArn", "arn:aws:sns:us-east-1:123456789012:misfit-other"),
            ("Type", "UnsubscribeConfirmation"),
        ] {
            let body = with_field("sns_subscription_confirmation.json", field, value);
            assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::BadSignature, "{field}");
        }
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH], "no subscribe URL was visited");
    }

    #[tokio::test]
    async fn a_signing_cert_url_off_the_allow_list_is_refused_and_nothing_is_fetched() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let local = format!("{}{FIXTURE_CERT_PATH}", server.base);
        for url in [
            "https://evil.example/SimpleNotificationService-fixture.pem",
            "http://sns.fixture.test/SimpleNotificationService-fixture.pem",
            "https://sns.fixture.test.evil.example/SimpleNotificationService-fixture.pem",
            "https://sns.fixture.test:4443/SimpleNotificationService-fixture.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-fixture.pem",
            local.as_str(),
        ] {
            for name in ["sns_notification.json", "sns_subscription_confirmation.json"] {
                let body = with_field(name, "SigningCertURL", url);
                assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::Unauthorized, "{name}: {url}");
            }
        }
        assert!(server.requests().is_empty(), "nothing was fetched");
    }

    #[tokio::test]
    async fn a_subscribe_url_off_the_allow_list_is_refused_and_not_fetched() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let local = format!("{}/?Action=ConfirmSubscription&Token=fixture-token-2336412f37", server.base);
        for url in [
            "https://evil.example/?Action=ConfirmSubscription&Token=fixture-token-2336412f37",
            "http://sns.fixture.test/?Action=ConfirmSubscription&Token=fixture-token-2336412f37",
            local.as_str(),
        ] {
            let body = with_field("sns_subscription_confirmation.json", "SubscribeURL", url);
            assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::Unauthorized, "{url}");
        }
        assert!(server.requests().is_empty(), "neither the URL nor the certificate was fetched");
    }

    #[tokio::test]
    async fn aws_hosts_are_allowed_by_default_and_the_rewrite_applies_only_after_the_check() {
        let server = sns_server().await;
        let mut settings = settings(&server.base);
        settings.allow_aws_sns_hosts = true;
        settings.allowed_sns_hosts.clear();
        settings.cert_url_rewrites.push(("https://sns.us-east-1.amazonaws.com/".into(), format!("{}/", server.base)));
        let verifier = verifier_with(settings);
        // The fixture host is no longer allowed, even though a rewrite for it exists.
        let err = verify(&verifier, fixture("sns_notification.json").as_bytes()).await.unwrap_err();
        assert_eq!(err, WebhookError::Unauthorized);
        assert!(server.requests().is_empty());
        // An AWS host passes and is fetched through its rewrite; the fixture signature holds.
        let aws = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-fixture.pem";
        let body = with_field("sns_notification.json", "SigningCertURL", aws);
        assert!(verify(&verifier, &body).await.is_ok());
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH]);
    }

    #[tokio::test]
    async fn a_certificate_fetch_that_failed_is_not_tried_again_for_a_minute() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let flaky = TestServer::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::new(503, "busy"),
            1 => Reply::new(200, "not a certificate"),
            _ => Reply::new(200, fixture("sns_signing_cert.pem")),
        })
        .await;
        let clock = Arc::new(FixedClock::at(NOW));
        let verifier = MisfitWebhooks::new(settings(&flaky.base), clock.clone()).unwrap();
        let body = fixture("sns_notification.json");
        for _ in 0..3 {
            let err = verify(&verifier, body.as_bytes()).await.unwrap_err();
            assert!(matches!(err, WebhookError::Unavailable(_)), "{err:?}");
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "SNS's retries within the minute fetch nothing");

        clock.advance(Duration::from_secs(60));
        let err = verify(&verifier, body.as_bytes()).await.unwrap_err();
        assert!(matches!(&err, WebhookError::Unavailable(m) if m.contains("unusable")), "{err:?}");
        clock.advance(Duration::from_secs(60));
        assert!(verify(&verifier, body.as_bytes()).await.is_ok(), "a retry after the minute fetches again");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);

        let nowhere = TestServer::closed_port().await;
        let err = verify(&verifier_with(settings(&nowhere)), body.as_bytes()).await.unwrap_err();
        assert!(matches!(&err, WebhookError::Unavailable(m) if m.contains("certificate")), "{err:?}");
    }

    #[tokio::test]
    async fn a_failed_certificate_url_is_held_back_on_its_own() {
        let server = sns_server().await;
        let clock = Arc::new(FixedClock::at(NOW));
        let verifier = MisfitWebhooks::new(settings(&server.base), clock.clone()).unwrap();
        let mut missing: Value = serde_json::from_slice(&own_notification("[]")).unwrap();
        missing["SigningCertURL"] = "https://sns.fixture.test/missing.pem".into();
        let missing = serde_json::to_vec(&missing).unwrap();

        for _ in 0..5 {
            assert!(matches!(verify(&verifier, &missing).await, Err(WebhookError::Unavailable(_))));
        }
        assert!(verify(&verifier, &own_notification("[]")).await.is_ok(), "another URL is fetched as usual");
        assert_eq!(paths(&server), ["/missing.pem", "/own.pem"]);

        clock.advance(Duration::from_secs(60));
        assert!(matches!(verify(&verifier, &missing).await, Err(WebhookError::Unavailable(_))));
        assert_eq!(paths(&server), ["/missing.pem", "/own.pem", "/missing.pem"]);
    }

    #[tokio::test]
    async fn a_certificate_fetch_is_cut_off_well_inside_the_webhook_functions_timeout() {
        let hanging =
            TestServer::replying(Reply::new(200, fixture("sns_signing_cert.pem")).after(Duration::from_secs(8))).await;
        let mut slow_settings = settings(&hanging.base);
        slow_settings.request_timeout = Duration::from_secs(10);
        let verifier = verifier_with(slow_settings);

        let started = std::time::Instant::now();
        let err = verify(&verifier, fixture("sns_notification.json").as_bytes()).await.unwrap_err();
        let took = started.elapsed();

        assert!(matches!(&err, WebhookError::Unavailable(m) if m.contains("timed out")), "{err:?}");
        assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(4), "took {took:?}");
    }

    #[tokio::test]
    async fn a_signature_that_is_not_base64_or_from_another_key_is_bad() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for signature in ["not base64!", "", "AAAA"] {
            let body = with_field("sns_notification.json", "Signature", signature);
            assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::BadSignature, "{signature:?}");
        }
        // Signed by our own key but pointing at the fixture certificate.
        let mut body: Value = serde_json::from_slice(&own_notification("[]")).unwrap();
        body["SigningCertURL"] = format!("https://sns.fixture.test{FIXTURE_CERT_PATH}").into();
        let err = verify(&verifier, &serde_json::to_vec(&body).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn version_2_signatures_verify_with_sha256_and_a_version_that_does_not_match_the_hash_fails() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let changes =
            r#"[{"type": "sessions", "ownerId": "A1", "action": "updated", "updatedAt": "2026-11-23T10:00:00Z"}]"#;
        let fields = [
            ("Message", changes),
            ("MessageId", "m-4"),
            ("Timestamp", SENT),
            ("TopicArn", TOPIC),
            ("Type", "Notification"),
        ];
        let cert_url = "https://sns.fixture.test/own.pem";
        let expected = DataNotice {
            account_id: "A1".into(),
            dates: dates(&["2026-11-22", "2026-11-23", "2026-11-24"]),
            deleted: false,
        };
        let answer = verify(&verifier, &signed_message_as("2", &fields, cert_url)).await;
        assert_eq!(answer, Ok(WebhookMessage::Notices(vec![expected])));

        // A SHA-256 signature called version 1, and a SHA-1 one called version 2.
        let mut relabelled: Value = serde_json::from_slice(&signed_message_as("2", &fields, cert_url)).unwrap();
        relabelled["SignatureVersion"] = "1".into();
        let err = verify(&verifier, &serde_json::to_vec(&relabelled).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
        let mut relabelled: Value = serde_json::from_slice(&signed_message_as("1", &fields, cert_url)).unwrap();
        relabelled["SignatureVersion"] = "2".into();
        let err = verify(&verifier, &serde_json::to_vec(&relabelled).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);

        // The known-answer vector made by scripts/fixtures.py.
        let answer = verify(&verifier, fixture("sns_notification_v2.json").as_bytes()).await.unwrap();
        let owner = DataNotice {
            account_id: OWNER.into(),
            dates: dates(&["2026-11-22", "2026-11-23", "2026-11-24"]),
            deleted: false,
        };
        assert_eq!(answer, WebhookMessage::Notices(vec![owner]));
    }

    #[tokio::test]
    async fn a_signature_version_other_than_1_or_2_is_refused_before_any_fetch() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let fields = [
            ("Message", "[]"),
            ("MessageId", "m-5"),
            ("Timestamp", SENT),
            ("TopicArn", TOPIC),
            ("Type", "Notification"),
        ];
        for version in ["3", "0", "", "v2"] {
            let body = signed_message_as(version, &fields, "https://sns.fixture.test/own.pem");
            assert_eq!(verify(&verifier, &body).await.unwrap_err(), WebhookError::BadSignature, "{version:?}");
        }
        assert!(server.requests().is_empty(), "no certificate was fetched");
    }

    #[tokio::test]
    async fn a_message_sent_over_an_hour_ago_or_ahead_of_our_clock_is_refused_once_its_signature_holds() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for (sent, fresh) in [
            ("2026-11-23T17:30:00.000Z", true),
            ("2026-11-23T17:29:59.999Z", false),
            ("2026-11-22T18:30:00.000Z", false),
            ("2026-11-23T18:35:00.000Z", true),
            ("2026-11-23T18:35:00.001Z", false),
            ("2026-11-24T18:30:00.000Z", false),
        ] {
            let answer = verify(&verifier, &own_notification_sent_at("[]", sent)).await;
            let expected = if fresh { Ok(WebhookMessage::Notices(vec![])) } else { Err(WebhookError::Stale) };
            assert_eq!(answer, expected, "sent {sent}");
        }
        // The signature comes first: an old message that was tampered with is a bad signature.
        let mut tampered: Value =
            serde_json::from_slice(&own_notification_sent_at("[]", "2026-11-22T18:30:00.000Z")).unwrap();
        tampered["MessageId"] = "m-2".into();
        let err = verify(&verifier, &serde_json::to_vec(&tampered).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn a_subscription_confirmation_sent_over_an_hour_ago_is_refused_and_not_confirmed() {
        let server = sns_server().await;
        let clock = Arc::new(FixedClock::at("2026-11-23T19:00:01Z"));
        let verifier = MisfitWebhooks::new(settings(&server.base), clock.clone()).unwrap();
        let body = fixture("sns_subscription_confirmation.json");

        assert_eq!(verify(&verifier, body.as_bytes()).await.unwrap_err(), WebhookError::Stale);
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH], "the subscribe URL was not visited");

        clock.set("2026-11-23T19:00:00Z".parse().unwrap());
        assert!(verify(&verifier, body.as_bytes()).await.is_ok(), "an hour old is still in time");
        assert_eq!(paths(&server), [FIXTURE_CERT_PATH, "/"]);
    }

    #[tokio::test]
    async fn an_unreadable_timestamp_is_malformed_and_nothing_is_fetched() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for timestamp in ["yesterday", "2026-11-23 18:20", ""] {
            let body = with_field("sns_notification.json", "Timestamp", timestamp);
            let err = verify(&verifier, &body).await.unwrap_err();
            assert!(matches!(&err, WebhookError::Malformed(m) if m.contains("Timestamp")), "{timestamp:?}: {err:?}");
        }
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn an_expired_signing_certificate_is_refused() {
        let server = sns_server().await;
        let mut body: Value = serde_json::from_slice(&own_notification("[]")).unwrap();
        body["SigningCertURL"] = "https://sns.fixture.test/expired.pem".into();
        let err = verify(&verifier(&server), &serde_json::to_vec(&body).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn changes_become_one_notice_per_owner_with_merged_dates_and_any_deletion() {
        let server = sns_server().await;
        let changes = r#"[
            {"type": "sessions", "id": "s1", "ownerId": "A1", "action": "created", "updatedAt": "2026-11-23T23:30:00Z"},
            {"type": "goals", "id": "g1", "ownerId": "B2", "action": "updated", "updatedAt": "2026-11-20T08:00:00+09:00"},
            {"type": "sessions", "id": "s2", "ownerId": "A1", "action": "deleted", "updatedAt": "2026-11-24T01:00:00Z"}
        ]"#;
        let message = verify(&verifier(&server), &own_notification(changes)).await.unwrap();
        assert_eq!(
            message,
            WebhookMessage::Notices(vec![
                DataNotice {
                    account_id: "A1".into(),
                    dates: dates(&["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"]),
                    deleted: true,
                },
                DataNotice {
                    account_id: "B2".into(),
                    dates: dates(&["2026-11-18", "2026-11-19", "2026-11-20"]),
                    deleted: false,
                },
            ])
        );
    }

    #[tokio::test]
    async fn a_lone_change_and_an_empty_list_are_read_too() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let lone = r#"{"type": "sessions", "ownerId": "A1", "action": "updated", "updatedAt": "2026-11-24T10:00:00"}"#;
        let expected = DataNotice {
            account_id: "A1".into(),
            dates: dates(&["2026-11-23", "2026-11-24", "2026-11-25"]),
            deleted: false,
        };
        assert_eq!(verify(&verifier, &own_notification(lone)).await.unwrap(), WebhookMessage::Notices(vec![expected]));
        assert_eq!(verify(&verifier, &own_notification("[]")).await.unwrap(), WebhookMessage::Notices(vec![]));
    }

    #[tokio::test]
    async fn a_signed_message_that_is_not_a_list_of_changes_is_malformed() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        for (changes, reason) in [
            ("{oops", "the message is not JSON"),
            ("\"text\"", "the message is not a list of changes"),
            (r#"[{"action": "updated", "updatedAt": "2026-11-24T10:00:00Z"}]"#, "change 0: "),
            (r#"[{"ownerId": " ", "updatedAt": "2026-11-24T10:00:00Z"}]"#, "change 0: ownerId is empty"),
            (r#"[{"ownerId": "A1", "updatedAt": "yesterday"}]"#, "change 0: updatedAt is unreadable"),
            (r#"[{"ownerId": "A1", "updatedAt": 1764000000}]"#, "change 0: updatedAt is unreadable"),
        ] {
            let err = verify(&verifier, &own_notification(changes)).await.unwrap_err();
            assert!(matches!(&err, WebhookError::Malformed(r) if r.starts_with(reason)), "{changes}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_notification_subject_is_signed_when_present() {
        let server = sns_server().await;
        let verifier = verifier(&server);
        let fields = [
            ("Message", "[]"),
            ("MessageId", "m-2"),
            ("Subject", "Misfit update"),
            ("Timestamp", SENT),
            ("TopicArn", TOPIC),
            ("Type", "Notification"),
        ];
        let body = signed_message(&fields, "https://sns.fixture.test/own.pem");
        assert!(verify(&verifier, &body).await.is_ok());
        let mut changed: Value = serde_json::from_slice(&body).unwrap();
        changed["Subject"] = "Another subject".into();
        let err = verify(&verifier, &serde_json::to_vec(&changed).unwrap()).await.unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[tokio::test]
    async fn an_unsubscribe_confirmation_is_acknowledged_without_visiting_its_url() {
        let server = sns_server().await;
        let url = "https://sns.fixture.test/?Action=ConfirmSubscription&Token=t-9";
        let body = signed_message(
            &[
                ("Message", "You have chosen to deactivate subscription."),
                ("MessageId", "m-3"),
                ("SubscribeURL", url),
                ("Timestamp", SENT),
                ("Token", "t-9"),
                ("TopicArn", TOPIC),
                ("Type", "UnsubscribeConfirmation"),
            ],
            "https://sns.fixture.test/own.pem",
        );
        let message = verify(&verifier(&server), &body).await.unwrap();
        assert_eq!(message, WebhookMessage::Handshake { status: 200, body: String::new() });
        assert_eq!(paths(&server), ["/own.pem"]);
    }

    #[tokio::test]
    async fn a_failed_confirmation_is_unavailable_so_that_sns_sends_it_again() {
        let server = TestServer::start(|request| match request.path.as_str() {
            FIXTURE_CERT_PATH => Reply::new(200, fixture("sns_signing_cert.pem")),
            _ => Reply::new(500, ""),
        })
        .await;
        let err =
            verify(&verifier(&server), fixture("sns_subscription_confirmation.json").as_bytes()).await.unwrap_err();
        assert!(matches!(&err, WebhookError::Unavailable(m) if m.contains("answered 500")), "{err:?}");
    }

    #[tokio::test]
    async fn a_topic_off_the_configured_list_is_refused_before_any_fetch() {
        let server = sns_server().await;
        let mut settings = settings(&server.base);
        settings.allowed_topic_arns = vec!["arn:aws:sns:us-east-1:123456789012:misfit-real".into()];
        let err = verify(&verifier_with(settings.clone()), fixture("sns_notification.json").as_bytes()).await;
        assert_eq!(err.unwrap_err(), WebhookError::Unauthorized);
        assert!(server.requests().is_empty());

        settings.allowed_topic_arns.push(TOPIC.into());
        assert!(verify(&verifier_with(settings.clone()), fixture("sns_notification.json").as_bytes()).await.is_ok());

        // None configured accepts none: a subscription to someone's own topic is never confirmed.
        settings.allowed_topic_arns.clear();
        let before = server.requests().len();
        let (verifier, body) = (verifier_with(settings), fixture("sns_subscription_confirmation.json"));
        assert_eq!(verify(&verifier, body.as_bytes()).await.unwrap_err(), WebhookError::Unauthorized);
        assert_eq!(server.requests().len(), before, "nothing fetched, nothing confirmed");
    }

    #[tokio::test]
    async fn oversized_non_post_non_sns_and_mislabelled_requests_are_refused_before_any_fetch() {
        let server = sns_server().await;
        let mut small = settings(&server.base);
        small.max_body_bytes = 100;
        let body = fixture("sns_notification.json");
        assert_eq!(verify(&verifier_with(small), body.as_bytes()).await.unwrap_err(), WebhookError::TooLarge);

        let verifier = verifier(&server);
        let err = verifier.verify("GET", &[], body.as_bytes()).await.unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
        for junk in ["", "{oops", "[]", r#"{"Type": 1}"#] {
            let err = verify(&verifier, junk.as_bytes()).await.unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{junk:?}: {err:?}");
        }
        let err = verifier.verify("POST", &sns_headers("SubscriptionConfirmation"), body.as_bytes()).await;
        assert!(matches!(err, Err(WebhookError::Malformed(_))), "{err:?}");
        assert!(server.requests().is_empty());
    }
}
