//! Amazon SNS message signatures, versions 1 (RSA-SHA1) and 2 (RSA-SHA256): the message's
//! fields, the canonical string either signature covers, which certificate and subscribe URLs
//! may be fetched, and the certificate cache.

use super::{MisfitSettings, SetupError};
use crate::clock::Clock;
use crate::ports::WebhookError;
use crate::providers::fetch_limits::{Expiring, REFETCH_INTERVAL, turn_to_fetch};
use crate::providers::http::{HttpFailure, http_url, read_limited};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use reqwest::Url;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde::Deserialize;
use sha1::Sha1;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Mutex;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;
use x509_cert::der::referenced::OwnedToRef;

/// AWS's certificates are about 2 KB; anything near this is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// Certificates are cached by URL and a new one comes with a new URL, so a handful is plenty;
/// only a certificate that parsed is kept, and the bound caps even a stream of real ones.
const MAX_CACHED_CERTS: usize = 16;
/// At most this many URLs whose fetch failed are remembered (made-up allowed URLs can be
/// endless); when full, the one closest to its minute's end is forgotten first.
const MAX_FAILED_CERT_URLS: usize = 64;

/// The three kinds of message SNS sends to an HTTP(S) subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MessageKind {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl MessageKind {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "SubscriptionConfirmation" => Some(MessageKind::SubscriptionConfirmation),
            "Notification" => Some(MessageKind::Notification),
            "UnsubscribeConfirmation" => Some(MessageKind::UnsubscribeConfirmation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageKind::Notification => "Notification",
            MessageKind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// How an SNS message is signed: RSA PKCS#1 v1.5 over the same canonical string, with SHA-1
/// (`SignatureVersion` "1", what a topic uses unless told otherwise) or SHA-256 ("2", a
/// topic's `SignatureVersion` attribute). No other version exists to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignatureVersion {
    Sha1,
    Sha256,
}

impl SignatureVersion {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "1" => Some(SignatureVersion::Sha1),
            "2" => Some(SignatureVersion::Sha256),
            _ => None,
        }
    }
}

/// An SNS message whose fields are all present for its kind; not yet verified.
#[derive(Debug, Clone)]
pub(super) struct SnsMessage {
    pub kind: MessageKind,
    pub message: String,
    pub message_id: String,
    pub subject: Option<String>,
    /// `Timestamp` as sent: the signature covers these exact characters.
    pub timestamp: String,
    /// `Timestamp` read: when SNS published the message (retries keep it).
    pub sent_at: Timestamp,
    pub topic_arn: String,
    /// Present for both confirmations.
    pub subscribe_url: Option<String>,
    pub token: Option<String>,
    pub version: SignatureVersion,
    pub signature: String,
    pub signing_cert_url: String,
}

/// The JSON as SNS sends it. A repeated key is an error (serde refuses duplicate fields), so
/// the fields verified are the fields used.
#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "SignatureVersion")]
    signature_version: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: Option<String>,
}

impl SnsMessage {
    /// Reads the fields a signature covers, and which signature it is. Only the shape is
    /// checked here; nothing in it is believed until `SigningCert::verifies` says so.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let raw: RawMessage =
            serde_json::from_slice(body).map_err(|_| WebhookError::Malformed("not an SNS message".into()))?;
        let missing = |field: &str| WebhookError::Malformed(format!("the SNS message has no {field}"));
        let kind_text = raw.kind.ok_or_else(|| missing("Type"))?;
        let kind = MessageKind::parse(&kind_text)
            .ok_or_else(|| WebhookError::Malformed("the SNS message has an unknown Type".into()))?;
        let version =
            raw.signature_version.as_deref().and_then(SignatureVersion::parse).ok_or(WebhookError::BadSignature)?;
        let confirmation = kind != MessageKind::Notification;
        if confirmation && raw.subscribe_url.is_none() {
            return Err(missing("SubscribeURL"));
        }
        if confirmation && raw.token.is_none() {
            return Err(missing("Token"));
        }
        let timestamp = raw.timestamp.ok_or_else(|| missing("Timestamp"))?;
        let sent_at = timestamp
            .trim()
            .parse::<Timestamp>()
            .map_err(|_| WebhookError::Malformed("the SNS message's Timestamp is unreadable".into()))?;
        Ok(Self {
            kind,
            message: raw.message.ok_or_else(|| missing("Message"))?,
            message_id: raw.message_id.ok_or_else(|| missing("MessageId"))?,
            // Only a notification's subject is signed.
            subject: raw.subject.filter(|_| !confirmation),
            timestamp,
            sent_at,
            topic_arn: raw.topic_arn.ok_or_else(|| missing("TopicArn"))?,
            subscribe_url: raw.subscribe_url,
            token: raw.token,
            version,
            signature: raw.signature.ok_or(WebhookError::MissingSignature)?,
            signing_cert_url: raw.signing_cert_url.ok_or_else(|| missing("SigningCertURL"))?,
        })
    }

    /// What the signature covers: each field as `key\nvalue\n`, in SNS's fixed order.
    pub fn canonical(&self) -> String {
        let fields: Vec<(&str, Option<&str>)> = match self.kind {
            MessageKind::Notification => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(self.kind.as_str())),
            ],
            MessageKind::SubscriptionConfirmation | MessageKind::UnsubscribeConfirmation => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", self.subscribe_url.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", self.token.as_deref()),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(self.kind.as_str())),
            ],
        };
        let mut canonical = String::new();
        for (key, value) in fields {
            if let Some(value) = value {
                canonical.push_str(key);
                canonical.push('\n');
                canonical.push_str(value);
                canonical.push('\n');
            }
        }
        canonical
    }
}

/// Where a URL from a message may lead: its original form (checked, the cache key) and what
/// is actually fetched (after the configured rewrite).
#[derive(Debug, Clone)]
pub(super) struct FetchTarget {
    pub original: Url,
    pub fetch: Url,
}

/// Which hosts SNS URLs may name, and how they are rewritten for a local stack.
#[derive(Debug, Clone)]
pub(super) struct SnsUrls {
    hosts: Vec<String>,
    aws: bool,
    rewrites: Vec<(String, String)>,
}

impl SnsUrls {
    pub fn from_settings(settings: &MisfitSettings) -> Result<Self, SetupError> {
        let mut hosts = Vec::new();
        for host in &settings.allowed_sns_hosts {
            let host = host.trim().to_ascii_lowercase();
            let plain = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !plain {
                return Err(SetupError::InvalidSetting {
                    name: "allowed_sns_hosts",
                    why: "each entry must be a bare host name, without scheme, port or path",
                });
            }
            hosts.push(host);
        }
        for (from, to) in &settings.cert_url_rewrites {
            // Only https URLs pass the allow-list, so any other prefix could never match; and
            // a prefix ending mid-host could match a neighbouring host.
            if !from.starts_with("https://") || !from.ends_with('/') || !to.ends_with('/') {
                return Err(SetupError::InvalidSetting {
                    name: "cert_url_rewrites",
                    why: "a rewrite maps https://host/ to another URL ending in /",
                });
            }
            if http_url(to).is_none() {
                return Err(SetupError::InvalidUrl { name: "cert_url_rewrites" });
            }
        }
        Ok(Self { hosts, aws: settings.allow_aws_sns_hosts, rewrites: settings.cert_url_rewrites.clone() })
    }

    /// An exact entry of the list, or (when enabled) AWS's `sns.<region>.amazonaws.com`.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.contains(&host) || (self.aws && is_aws_sns_host(&host))
    }

    /// A `SigningCertURL`: an allowed https URL of a `.pem` file.
    pub fn signing_cert(&self, raw: &str) -> Result<FetchTarget, WebhookError> {
        let original = self.allowed(raw)?;
        if !original.path().ends_with(".pem") {
            return Err(WebhookError::Unauthorized);
        }
        self.target(original)
    }

    /// A `SubscribeURL`: an allowed https URL whose action is `ConfirmSubscription`.
    pub fn subscribe(&self, raw: &str) -> Result<FetchTarget, WebhookError> {
        let original = self.allowed(raw)?;
        let confirms = original.query_pairs().any(|(key, value)| key == "Action" && value == "ConfirmSubscription");
        if !confirms {
            return Err(WebhookError::Unauthorized);
        }
        self.target(original)
    }

    /// https, an allowed host, the default port and no credentials: anything else might
    /// send the request somewhere the host name does not say.
    fn allowed(&self, raw: &str) -> Result<Url, WebhookError> {
        let url = Url::parse(raw.trim()).map_err(|_| WebhookError::Unauthorized)?;
        let plain =
            url.scheme() == "https" && url.port().is_none() && url.username().is_empty() && url.password().is_none();
        match url.host_str() {
            Some(host) if plain && self.host_allowed(host) => Ok(url),
            _ => Err(WebhookError::Unauthorized),
        }
    }

    fn target(&self, original: Url) -> Result<FetchTarget, WebhookError> {
        let rewritten = self
            .rewrites
            .iter()
            .find_map(|(from, to)| original.as_str().strip_prefix(from.as_str()).map(|rest| format!("{to}{rest}")));
        let fetch = match rewritten {
            None => original.clone(),
            Some(rewritten) => Url::parse(&rewritten)
                .map_err(|_| WebhookError::Unavailable("a URL rewrite produced an invalid URL".into()))?,
        };
        Ok(FetchTarget { original, fetch })
    }
}

/// `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`), the region shaped like `us-east-1`.
fn is_aws_sns_host(host: &str) -> bool {
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    let Some(region) = rest.and_then(|r| r.strip_prefix("sns.")) else { return false };
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// The public key of one SNS signing certificate, and when the certificate is valid.
#[derive(Debug)]
pub(super) struct SigningCert {
    key: RsaPublicKey,
    not_before: Timestamp,
    not_after: Timestamp,
}

impl SigningCert {
    /// The first certificate of a PEM file; it must hold an RSA key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, &'static str> {
        let block = first_pem_certificate(pem).ok_or("no certificate in the PEM file")?;
        let cert = Certificate::from_pem(block).map_err(|_| "not a PEM certificate")?;
        let tbs = &cert.tbs_certificate;
        let key = RsaPublicKey::try_from(tbs.subject_public_key_info.owned_to_ref())
            .map_err(|_| "the certificate's key is not an RSA key")?;
        let instant = |time: x509_cert::time::Time| {
            i64::try_from(time.to_unix_duration().as_secs()).ok().and_then(|s| Timestamp::from_second(s).ok())
        };
        let not_before = instant(tbs.validity.not_before).ok_or("the certificate's validity is unreadable")?;
        let not_after = instant(tbs.validity.not_after).ok_or("the certificate's validity is unreadable")?;
        Ok(Self { key, not_before, not_after })
    }

    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whether `signature` (base64) is this key's RSA PKCS#1 v1.5 signature of `message`,
    /// hashed as `version` says.
    pub fn verifies(&self, message: &[u8], signature: &str, version: SignatureVersion) -> bool {
        let Ok(raw) = STANDARD.decode(signature.trim()) else { return false };
        let Ok(signature) = Signature::try_from(raw.as_slice()) else { return false };
        let key = self.key.clone();
        match version {
            SignatureVersion::Sha1 => VerifyingKey::<Sha1>::new(key).verify(message, &signature).is_ok(),
            SignatureVersion::Sha256 => VerifyingKey::<Sha256>::new(key).verify(message, &signature).is_ok(),
        }
    }
}

/// The signing certificate cannot be had, for a reason a retry may overcome.
fn unavailable(why: &str) -> WebhookError {
    WebhookError::Unavailable(format!("the SNS signing certificate {why}"))
}

/// The first `BEGIN CERTIFICATE` block. (x509-cert's own chain loader panics on an empty
/// file, and the body here comes from the network.)
fn first_pem_certificate(pem: &[u8]) -> Option<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).position(|w| w == needle);
    let start = find(pem, BEGIN)?;
    let end = start + find(&pem[start..], END)? + END.len();
    pem.get(start..end)
}

/// Certificates by original URL, shared by every request, the URLs whose fetch failed in the
/// last minute, a lock so that one request at a time fetches, and what a fetch needs: an
/// HTTP client and how long a fetch may take.
pub(super) struct CertCache {
    http: reqwest::Client,
    fetch_timeout: Duration,
    clock: Arc<dyn Clock>,
    state: StdMutex<CertState>,
    fetching: Mutex<()>,
}

/// What the cache knows, behind one short lock that is never held across a fetch.
struct CertState {
    certs: HashMap<String, Arc<SigningCert>>,
    /// Original URLs whose fetch failed, until they may be fetched again.
    failed: Expiring<String>,
}

impl CertCache {
    /// An empty cache fetching with `http` (which must not follow redirects: one could lead
    /// off the allow-list), each fetch cut off after `fetch_timeout`; `clock` times the
    /// minute a failed URL waits before it is fetched again.
    pub fn new(http: reqwest::Client, fetch_timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        let state = CertState { certs: HashMap::new(), failed: Expiring::new(MAX_FAILED_CERT_URLS) };
        Self { http, fetch_timeout, clock, state: StdMutex::new(state), fetching: Mutex::default() }
    }

    /// The certificate behind `target`: from the cache, else from one fetch. A URL whose
    /// fetch failed is not fetched again for a minute: requests naming it meanwhile are
    /// unavailable at once, as are requests that would wait long for another's fetch.
    pub async fn signing_cert(&self, target: &FetchTarget) -> Result<Arc<SigningCert>, WebhookError> {
        let key = target.original.as_str();
        if let Some(cert) = self.cached(key)? {
            return Ok(cert);
        }
        let Some(_turn) = turn_to_fetch(&self.fetching).await else {
            return Err(unavailable("is being fetched for another request"));
        };
        // The fetch this request waited for may have been for the same URL.
        if let Some(cert) = self.cached(key)? {
            return Ok(cert);
        }
        let fetched = self.fetch_cert(&target.fetch).await;
        let now = self.clock.now();
        let mut state = self.state();
        match fetched {
            Ok(cert) => {
                let cert = Arc::new(cert);
                if state.certs.len() >= MAX_CACHED_CERTS {
                    state.certs.clear();
                }
                state.certs.insert(key.to_owned(), cert.clone());
                Ok(cert)
            }
            Err(error) => {
                state.failed.remember(key.to_owned(), now + REFETCH_INTERVAL, now);
                Err(error)
            }
        }
    }

    /// The cached certificate, `None` when it may be fetched, or an error while its last
    /// fetch failed less than a minute ago.
    fn cached(&self, key: &str) -> Result<Option<Arc<SigningCert>>, WebhookError> {
        let state = self.state();
        if let Some(cert) = state.certs.get(key) {
            return Ok(Some(cert.clone()));
        }
        if state.failed.contains(key, self.clock.now()) {
            return Err(unavailable("could not be fetched a moment ago"));
        }
        Ok(None)
    }

    fn state(&self) -> MutexGuard<'_, CertState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_cert(&self, url: &Url) -> Result<SigningCert, WebhookError> {
        let response = self
            .http
            .get(url.clone())
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|e| unavailable(HttpFailure::of(&e).describe()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(&format!("answered {}", status.as_u16())));
        }
        let pem = read_limited(response, MAX_CERT_BYTES).await.map_err(|f| unavailable(f.describe()))?;
        SigningCert::from_pem(&pem).map_err(|why| unavailable(&format!("is unusable: {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use secrecy::SecretString;

    fn urls(hosts: &[&str], aws: bool) -> SnsUrls {
        let mut settings = MisfitSettings::new("client", SecretString::from("secret"));
        settings.allowed_sns_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        settings.allow_aws_sns_hosts = aws;
        settings.cert_url_rewrites = vec![("https://sns.fixture.test/".into(), "http://127.0.0.1:9/certs/".into())];
        SnsUrls::from_settings(&settings).unwrap()
    }

    #[test]
    fn aws_sns_hosts_follow_the_region_pattern_and_nothing_else() {
        let aws = urls(&[], true);
        for host in ["sns.us-east-1.amazonaws.com", "sns.eu-central-2.amazonaws.com", "sns.us-gov-west-1.amazonaws.com"]
        {
            assert!(aws.host_allowed(host), "{host}");
        }
        assert!(aws.host_allowed("sns.cn-north-1.amazonaws.com.cn"));
        for host in [
            "sns.amazonaws.com",
            "sqs.us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.com.evil.example",
            "evil-sns.us-east-1.amazonaws.com",
            "sns.evil.amazonaws.com",
            "sns.us-east-x.amazonaws.com",
            "x.sns.us-east-1.amazonaws.com",
            "sns.fixture.test",
        ] {
            assert!(!aws.host_allowed(host), "{host}");
        }
        assert!(!urls(&[], false).host_allowed("sns.us-east-1.amazonaws.com"), "the pattern can be switched off");
    }

    #[test]
    fn listed_hosts_match_exactly_in_any_case() {
        let listed = urls(&["SNS.Fixture.Test"], false);
        assert!(listed.host_allowed("sns.fixture.test"));
        assert!(listed.host_allowed("SNS.FIXTURE.TEST"));
        assert!(!listed.host_allowed("a.sns.fixture.test"));
        assert!(!listed.host_allowed("sns.fixture.test.evil.example"));
    }

    #[test]
    fn a_certificate_url_must_be_an_https_pem_file_on_an_allowed_host_with_nothing_unusual() {
        let urls = urls(&["sns.fixture.test"], true);
        let target = urls.signing_cert("https://sns.fixture.test/SimpleNotificationService-1.pem").unwrap();
        assert_eq!(target.original.as_str(), "https://sns.fixture.test/SimpleNotificationService-1.pem");
        assert_eq!(target.fetch.as_str(), "http://127.0.0.1:9/certs/SimpleNotificationService-1.pem");

        let aws = urls.signing_cert("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-2.pem").unwrap();
        assert_eq!(aws.fetch, aws.original, "no rewrite matches: fetched as it is");

        for refused in [
            "http://sns.fixture.test/cert.pem",
            "https://sns.fixture.test:8443/cert.pem",
            "https://user@sns.fixture.test/cert.pem",
            "https://evil.example/cert.pem",
            "https://sns.fixture.test.evil.example/cert.pem",
            "https://evil.example/?https://sns.fixture.test/cert.pem",
            "https://sns.fixture.test/cert.txt",
            "file:///etc/cert.pem",
            "not a url",
        ] {
            assert_eq!(urls.signing_cert(refused).unwrap_err(), WebhookError::Unauthorized, "{refused}");
        }
    }

    #[test]
    fn a_subscribe_url_must_confirm_a_subscription_on_an_allowed_host() {
        let urls = urls(&["sns.fixture.test"], false);
        let target = urls.subscribe("https://sns.fixture.test/?Action=ConfirmSubscription&Token=t1").unwrap();
        assert_eq!(target.fetch.as_str(), "http://127.0.0.1:9/certs/?Action=ConfirmSubscription&Token=t1");
        for refused in [
            "https://sns.fixture.test/?Action=Publish&Token=t1",
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t1",
            "http://sns.fixture.test/?Action=ConfirmSubscription&Token=t1",
        ] {
            assert_eq!(urls.subscribe(refused).unwrap_err(), WebhookError::Unauthorized, "{refused}");
        }
    }

    #[test]
    fn settings_with_unusable_hosts_or_rewrites_are_refused() {
        let base = MisfitSettings::new("client", SecretString::from("secret"));
        for hosts in [vec!["https://sns.fixture.test".to_owned()], vec!["sns.fixture.test:443".into()], vec!["".into()]]
        {
            let settings = MisfitSettings { allowed_sns_hosts: hosts.clone(), ..base.clone() };
            assert!(SnsUrls::from_settings(&settings).is_err(), "{hosts:?}");
        }
        for rewrite in [
            ("http://sns.fixture.test/", "http://127.0.0.1:9/"),
            ("https://sns.fixture.test", "http://127.0.0.1:9/"),
            ("https://sns.fixture.test/", "http://127.0.0.1:9"),
            ("https://sns.fixture.test/", "nowhere/"),
        ] {
            let settings =
                MisfitSettings { cert_url_rewrites: vec![(rewrite.0.into(), rewrite.1.into())], ..base.clone() };
            assert!(SnsUrls::from_settings(&settings).is_err(), "{rewrite:?}");
        }
    }

    #[test]
    fn the_canonical_string_of_a_notification_lists_its_fields_in_order() {
        let message = SnsMessage::parse(fixture("sns_notification.json").as_bytes()).unwrap();
        assert_eq!(message.kind, MessageKind::Notification);
        let expected = format!(
            "Message\n{}\nMessageId\n6f1d0a6e-8a0b-5b3e-9c5e-0d1e2f3a4b5c\nTimestamp\n2026-11-23T18:20:12.000Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:misfit-fixture\nType\nNotification\n",
            message.message
        );
        assert_eq!(message.canonical(), expected);

        let with_subject = SnsMessage { subject: Some("Hi".into()), ..message };
        assert!(
            with_subject
                .canonical()
                .contains("MessageId\n6f1d0a6e-8a0b-5b3e-9c5e-0d1e2f3a4b5c\nSubject\nHi\nTimestamp\n")
        );
    }

    #[test]
    fn the_canonical_string_of_a_confirmation_includes_the_subscribe_url_and_token() {
        let message = SnsMessage::parse(fixture("sns_subscription_confirmation.json").as_bytes()).unwrap();
        assert_eq!(
            message.canonical(),
            "Message\nYou have chosen to subscribe to the topic.\nMessageId\n0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\n\
             SubscribeURL\nhttps://sns.fixture.test/?Action=ConfirmSubscription&Token=fixture-token-2336412f37\n\
             Timestamp\n2026-11-23T18:00:00.000Z\nToken\nfixture-token-2336412f37\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:misfit-fixture\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn the_fixture_certificate_verifies_its_signature_and_nothing_else() {
        let cert = SigningCert::from_pem(fixture("sns_signing_cert.pem").as_bytes()).unwrap();
        let message = SnsMessage::parse(fixture("sns_notification.json").as_bytes()).unwrap();
        let v1 = SignatureVersion::Sha1;
        assert_eq!(message.version, v1);
        assert!(cert.verifies(message.canonical().as_bytes(), &message.signature, v1));
        assert!(!cert.verifies(message.canonical().replace("updated", "deleted").as_bytes(), &message.signature, v1));
        assert!(!cert.verifies(message.canonical().as_bytes(), "not base64!", v1));
        assert!(!cert.verifies(message.canonical().as_bytes(), "AAAA", v1));
        assert!(!cert.verifies(message.canonical().as_bytes(), &message.signature, SignatureVersion::Sha256));
        assert!(cert.is_valid_at("2026-11-25T00:00:00Z".parse().unwrap()));
        assert!(!cert.is_valid_at("2025-12-31T23:59:59Z".parse().unwrap()));
        assert!(!cert.is_valid_at("2036-01-01T00:00:01Z".parse().unwrap()));
        assert!(SigningCert::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(SigningCert::from_pem(b"").is_err());
        assert!(SigningCert::from_pem(b"\n").is_err());
        assert!(SigningCert::from_pem(b"-----BEGIN CERTIFICATE-----\n").is_err());
        assert!(SigningCert::from_pem(b"-----END CERTIFICATE----------BEGIN CERTIFICATE-----").is_err());
        let chain = format!("{}\n{}", fixture("sns_signing_cert.pem"), fixture("sns_signing_cert.pem"));
        assert!(SigningCert::from_pem(chain.as_bytes()).is_ok(), "a chain is read for its first certificate");
    }

    #[test]
    fn the_version_2_fixture_verifies_with_sha256_over_the_same_canonical_string() {
        let cert = SigningCert::from_pem(fixture("sns_signing_cert.pem").as_bytes()).unwrap();
        let message = SnsMessage::parse(fixture("sns_notification_v2.json").as_bytes()).unwrap();
        assert_eq!(message.version, SignatureVersion::Sha256);
        let canonical = message.canonical();
        assert!(canonical.starts_with("Message\n") && canonical.ends_with("Type\nNotification\n"));
        assert!(cert.verifies(canonical.as_bytes(), &message.signature, SignatureVersion::Sha256));
        assert!(!cert.verifies(canonical.as_bytes(), &message.signature, SignatureVersion::Sha1));
        let changed = canonical.replace("updated", "deleted");
        assert!(!cert.verifies(changed.as_bytes(), &message.signature, SignatureVersion::Sha256));
    }

    proptest::proptest! {
        #[test]
        fn no_certificate_download_can_make_the_parser_panic(
            inner in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            base64_text in "[A-Za-z0-9+/=\n]{0,600}",
        ) {
            let _ = SigningCert::from_pem(&inner);
            let wrapped = format!("-----BEGIN CERTIFICATE-----\n{base64_text}\n-----END CERTIFICATE-----\n");
            proptest::prop_assert!(SigningCert::from_pem(wrapped.as_bytes()).is_err());
        }
    }

    #[test]
    fn messages_missing_a_signed_field_or_of_an_unknown_version_are_refused_before_any_fetch() {
        let original: serde_json::Value = serde_json::from_str(&fixture("sns_subscription_confirmation.json")).unwrap();
        for field in
            ["Type", "Message", "MessageId", "Timestamp", "TopicArn", "SubscribeURL", "Token", "SigningCertURL"]
        {
            let mut message = original.clone();
            message.as_object_mut().unwrap().remove(field);
            let err = SnsMessage::parse(message.to_string().as_bytes()).unwrap_err();
            assert!(matches!(err, WebhookError::Malformed(_)), "{field}: {err:?}");
        }
        let mut unsigned = original.clone();
        unsigned.as_object_mut().unwrap().remove("Signature");
        assert_eq!(SnsMessage::parse(unsigned.to_string().as_bytes()).unwrap_err(), WebhookError::MissingSignature);
        let mut version_2 = original.clone();
        version_2["SignatureVersion"] = "2".into();
        assert_eq!(SnsMessage::parse(version_2.to_string().as_bytes()).unwrap().version, SignatureVersion::Sha256);
        for version in [Some("3"), Some("0"), Some(""), Some(" 1"), Some("1.0"), None] {
            let mut other = original.clone();
            match version {
                Some(version) => other["SignatureVersion"] = version.into(),
                None => {
                    other.as_object_mut().unwrap().remove("SignatureVersion");
                }
            }
            let err = SnsMessage::parse(other.to_string().as_bytes()).unwrap_err();
            assert_eq!(err, WebhookError::BadSignature, "SignatureVersion {version:?}");
        }
        let mut unknown = original;
        unknown["Type"] = "Surprise".into();
        assert!(matches!(SnsMessage::parse(unknown.to_string().as_bytes()), Err(WebhookError::Malformed(_))));
    }

    #[test]
    fn a_repeated_key_is_refused_rather_than_guessed() {
        let body = fixture("sns_notification.json").replacen(
            "\"Type\": \"Notification\",",
            "\"Type\": \"Notification\", \"Type\": \"Notification\",",
            1,
        );
        assert!(matches!(SnsMessage::parse(body.as_bytes()), Err(WebhookError::Malformed(_))));
    }
}
