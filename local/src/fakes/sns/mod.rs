//! A fake Amazon SNS on loopback, as Misfit uses it for notifications, for tests and the local
//! stack: messages signed per SNS SignatureVersion 1 (or 2, a setting) with a certificate it
//! serves, dated by the
//! clock it is given, delivery to subscribers as SNS posts them, and a `ConfirmSubscription`
//! endpoint. Faithful to Amazon SNS's documented HTTP(S) delivery and message formats.

mod api;
mod signing;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use rsa::RsaPrivateKey;
use serde::Serialize;
use serde_json::Value;
use stepsync::clock::{Clock, SystemClock};

use super::common::{status_or_zero, subscriber_client};
use super::misfit::{MisfitEvent, notification_message};
pub use super::server::FakeError;
use super::server::FakeServer;
pub use signing::SignatureVersion;
use signing::{forger, new_rsa_key, self_signed_pem, sign_with};
use state::SnsState;
pub use wire::{CERT_PATH, MESSAGE_TYPE_HEADER, SNS_CONTENT_TYPE, canonical_string};
use wire::{NotificationJson, SubscriptionConfirmationJson, random_hex, random_uuid, sns_timestamp};

/// A running fake SNS with its own RSA key and self-signed certificate; stops serving when
/// dropped or on [`FakeSns::stop`].
pub struct FakeSns {
    /// The base the messages advertise (`SigningCertURL`, `SubscribeURL`); `base_url` unless
    /// set with `advertise_as`, so a verifier that insists on https hosts can be tested.
    public_base: Option<String>,
    host: String,
    signing_key: RsaPrivateKey,
    /// What "now" is for `Timestamp` and the certificate's validity: the clock of the app the
    /// messages are for, so that a verifier's freshness check sees them as just sent.
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    server: FakeServer<SnsState>,
}

impl FakeSns {
    /// Makes a key and certificate and serves on an ephemeral loopback port, dating messages
    /// by the machine's clock.
    ///
    /// # Panics
    /// If loopback cannot be bound or the key cannot be made: a broken test machine.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// As [`FakeSns::start`], dating messages by `clock`: give it the clock of the app under
    /// test (a test's `FixedClock`), whose verifier refuses messages far from its "now".
    ///
    /// # Panics
    /// If loopback cannot be bound or the key cannot be made: a broken test machine.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::start_on_port(0, clock).await.unwrap_or_else(|e| panic!("fake SNS: {e}"))
    }

    /// Serves on `port` (0: any free port), dating messages by `clock`.
    pub async fn start_on_port(port: u16, clock: Arc<dyn Clock>) -> Result<Self, FakeError> {
        // RSA key generation takes a while: keep it off the runtime's threads.
        let key = tokio::task::spawn_blocking(new_rsa_key).await.map_err(|e| FakeError::Key(e.to_string()))??;
        let cert_pem = self_signed_pem(&key, clock.now())?;
        // SNS gives up on a subscriber that takes longer than 15 s to answer.
        let http = subscriber_client(Duration::from_secs(15))
            .user_agent("Amazon Simple Notification Service Agent")
            .build()
            .map_err(FakeError::Client)?;
        let state = SnsState {
            cert_pem,
            signature_version: SignatureVersion::default(),
            issued: HashMap::new(),
            confirmed: Vec::new(),
        };
        let server = FakeServer::start("fake SNS", port, state, api::router).await?;
        Ok(Self {
            public_base: None,
            host: format!("127.0.0.1:{}", server.port()),
            signing_key: key,
            clock,
            http,
            server,
        })
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// `127.0.0.1:PORT`: the host a subscriber must allow for `SigningCertURL` and `SubscribeURL`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Where the certificate is served: every message's `SigningCertURL`.
    pub fn cert_url(&self) -> String {
        format!("{}{CERT_PATH}", self.advertised_base())
    }

    /// Messages name `public_base` (e.g. `https://sns.fake.test`) instead of the loopback URL;
    /// the subscriber maps it back with a URL rewrite, as the local stack does.
    pub fn advertise_as(&mut self, public_base: &str) {
        self.public_base = Some(public_base.trim_end_matches('/').to_owned());
    }

    fn advertised_base(&self) -> &str {
        self.public_base.as_deref().unwrap_or(self.server.base_url())
    }

    /// The certificate as served (PEM).
    pub fn cert_pem(&self) -> String {
        self.server.lock().cert_pem.clone()
    }

    /// Subscription tokens confirmed through `SubscribeURL`, in order.
    pub fn confirmed(&self) -> Vec<String> {
        self.server.lock().confirmed.clone()
    }

    /// Requests received of `kind`: "cert", "confirm" (valid or not), "other".
    pub fn calls(&self, kind: &str) -> u64 {
        self.server.calls(kind)
    }

    /// Signs the messages made from now on with `version` (version 1 until told otherwise,
    /// as an SNS topic does).
    pub fn set_signature_version(&self, version: SignatureVersion) {
        self.server.lock().signature_version = version;
    }

    fn signature_version(&self) -> SignatureVersion {
        self.server.lock().signature_version
    }

    /// Base64 of this fake's RSA PKCS#1 v1.5 signature of `canonical` (see
    /// [`canonical_string`]), SHA-1 or SHA-256 as the signature version set says.
    pub fn sign(&self, canonical: &str) -> String {
        sign_with(&self.signing_key, self.signature_version(), canonical)
    }

    /// A signed `SubscriptionConfirmation` for `topic_arn`, shaped as SNS sends one, whose
    /// `SubscribeURL` confirms at this fake.
    pub fn subscription_confirmation(&self, topic_arn: &str) -> String {
        let token = random_hex(64);
        self.server.lock().issued.insert(token.clone(), topic_arn.to_owned());
        let mut message = SubscriptionConfirmationJson {
            kind: "SubscriptionConfirmation",
            message_id: random_uuid(),
            subscribe_url: format!("{}/?Action=ConfirmSubscription&Token={token}", self.advertised_base()),
            token,
            topic_arn: topic_arn.to_owned(),
            message: format!(
                "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
            ),
            timestamp: sns_timestamp(self.clock.now()),
            signature_version: self.signature_version().as_str(),
            signing_cert_url: self.cert_url(),
            signature: String::new(),
        };
        message.signature = self.sign_fields(&message);
        serde_json::to_string_pretty(&message).unwrap_or_default()
    }

    /// A signed `Notification` on `topic_arn` carrying `events`, shaped as SNS sends one for
    /// Misfit (`Message` as [`notification_message`]).
    pub fn notification(&self, topic_arn: &str, events: &[MisfitEvent]) -> String {
        let mut message = NotificationJson {
            kind: "Notification",
            message_id: random_uuid(),
            topic_arn: topic_arn.to_owned(),
            message: notification_message(events),
            timestamp: sns_timestamp(self.clock.now()),
            signature_version: self.signature_version().as_str(),
            signing_cert_url: self.cert_url(),
            signature: String::new(),
        };
        message.signature = self.sign_fields(&message);
        serde_json::to_string_pretty(&message).unwrap_or_default()
    }

    /// The signature of a message whose `SignatureVersion` is already set.
    fn sign_fields(&self, message: &impl Serialize) -> String {
        let fields = serde_json::to_value(message).unwrap_or_default();
        let version = version_of(&fields);
        canonical_string(&fields).map(|canonical| sign_with(&self.signing_key, version, &canonical)).unwrap_or_default()
    }

    /// `body` with its `Signature` replaced by a valid-looking one from another key: every
    /// other byte is unchanged, so only a verifier that checks against the served certificate
    /// tells. The other key is made on the first call in the process.
    ///
    /// # Panics
    /// If `body` is not an SNS message with a `Signature` (a test bug).
    pub fn forge(&self, body: &str) -> String {
        let message: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("forge: the body is not JSON: {e}"));
        let old = message
            .get("Signature")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("forge: the body has no Signature"));
        let canonical = canonical_string(&message).unwrap_or_else(|| panic!("forge: not a signable SNS message"));
        let version = version_of(&message);
        // Base64 needs no JSON escaping, so the value appears verbatim after its key.
        let at = body
            .find("\"Signature\"")
            .and_then(|key| body[key..].find(old).map(|offset| key + offset))
            .unwrap_or_else(|| panic!("forge: the Signature is not written verbatim"));
        format!("{}{}{}", &body[..at], sign_with(forger(), version, &canonical), &body[at + old.len()..])
    }

    /// POSTs `body` to a subscriber as SNS does (`x-amz-sns-message-type` from its `Type`,
    /// `text/plain; charset=UTF-8`, SNS's user agent and message headers). Returns the status,
    /// or 0 when no HTTP answer came (refused, timed out after 15 s).
    pub async fn deliver(&self, url: &str, body: &str) -> u16 {
        let mut request = self.http.post(url).header(header::CONTENT_TYPE, SNS_CONTENT_TYPE);
        if let Ok(message) = serde_json::from_str::<Value>(body) {
            let headers = [
                (MESSAGE_TYPE_HEADER, "Type"),
                ("x-amz-sns-message-id", "MessageId"),
                ("x-amz-sns-topic-arn", "TopicArn"),
            ];
            for (name, key) in headers {
                if let Some(value) = message.get(key).and_then(Value::as_str) {
                    request = request.header(name, value);
                }
            }
        }
        status_or_zero(request.body(body.to_owned()), url, "SNS delivery").await
    }
}

/// The signature version a message says it has ("2", or else 1).
fn version_of(message: &Value) -> SignatureVersion {
    match message.get("SignatureVersion").and_then(Value::as_str) {
        Some("2") => SignatureVersion::V2,
        _ => SignatureVersion::V1,
    }
}
