//! The fake SNS's own tests, with an independent verifier, as a subscriber would verify.

use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use reqwest::Url;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;
use stepsync::testing::FixedClock;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

use super::super::misfit::EventAction;
use super::super::test_support::{self, Captured, http, receiver};
use super::*;

const PERSON: &str = "51a4189acf12e53f80000001";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:misfit-fake";

fn fixture(name: &str) -> String {
    String::from_utf8(test_support::fixture("misfit", name)).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// The keys of a JSON object text in the order they are written.
fn keys_in_order(body: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(body).unwrap();
    let mut keys: Vec<(usize, String)> =
        value.as_object().unwrap().keys().map(|k| (body.find(&format!("\"{k}\":")).unwrap(), k.clone())).collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

fn public_key_of(pem: &str) -> RsaPublicKey {
    let certificate = Certificate::from_pem(pem.as_bytes()).unwrap();
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der().unwrap();
    RsaPublicKey::from_public_key_der(&spki).unwrap()
}

/// RSA PKCS#1 v1.5 over the canonical string with the certificate's key: SHA-1 for
/// SignatureVersion 1, SHA-256 for 2.
fn verifies(pem: &str, body: &str) -> bool {
    let message: Value = serde_json::from_str(body).unwrap();
    let Some(canonical) = canonical_string(&message) else { return false };
    let raw = STANDARD.decode(message["Signature"].as_str().unwrap()).unwrap();
    let signature = Signature::try_from(raw.as_slice()).unwrap();
    let (key, canonical) = (public_key_of(pem), canonical.as_bytes());
    match message["SignatureVersion"].as_str() {
        Some("1") => VerifyingKey::<Sha1>::new(key).verify(canonical, &signature).is_ok(),
        Some("2") => VerifyingKey::<Sha256>::new(key).verify(canonical, &signature).is_ok(),
        other => panic!("SignatureVersion {other:?}"),
    }
}

fn with_version(body: &str, version: &str) -> String {
    with_field(body, "SignatureVersion", version)
}

fn with_field(body: &str, key: &str, value: &str) -> String {
    let mut message: Value = serde_json::from_str(body).unwrap();
    message[key] = json!(value);
    message.to_string()
}

fn fixture_event() -> MisfitEvent {
    MisfitEvent {
        kind: "sessions".to_owned(),
        id: "51a4189acf12e53f79000001".to_owned(),
        owner_id: PERSON.to_owned(),
        action: EventAction::Updated,
        updated_at: "2026-11-23T18:20:11Z".parse().unwrap(),
    }
}

async fn served_cert(sns: &FakeSns) -> String {
    let response = http().get(sns.cert_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[test]
fn the_canonical_builder_verifies_both_fixtures_against_the_fixture_certificate() {
    let pem = fixture("sns_signing_cert.pem");
    for name in ["sns_notification.json", "sns_subscription_confirmation.json"] {
        let body = fixture(name);
        assert!(verifies(&pem, &body), "{name} must verify");
        for key in ["Message", "MessageId", "Timestamp", "TopicArn"] {
            assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{name} with {key} changed");
        }
    }
    let confirmation = fixture("sns_subscription_confirmation.json");
    for key in ["Token", "SubscribeURL"] {
        assert!(!verifies(&pem, &with_field(&confirmation, key, "changed")), "{key} changed");
    }
    let notification = fixture("sns_notification.json");
    assert!(!verifies(&pem, &with_field(&notification, "Subject", "added")), "a Subject is signed when present");
}

#[test]
fn the_canonical_string_puts_subject_between_message_id_and_timestamp_and_refuses_other_types() {
    let message = json!({
        "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Subject": "s", "Message": "a\nb",
        "Timestamp": "ts", "SignatureVersion": "1", "Signature": "x", "UnsubscribeURL": "u",
    });

    assert_eq!(
        canonical_string(&message).unwrap(),
        "Message\na\nb\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    );
    assert_eq!(canonical_string(&json!({ "Type": "Other", "Message": "m" })), None);
    assert_eq!(canonical_string(&json!({ "Type": "SubscriptionConfirmation", "Message": "m" })), None);
}

#[test]
fn the_message_of_the_fixtures_event_is_the_fixtures_message_byte_for_byte() {
    assert_eq!(notification_message(&[fixture_event()]), fixture_json("sns_notification.json")["Message"]);
    let two = notification_message(&[fixture_event(), fixture_event()]);
    assert_eq!(serde_json::from_str::<Value>(&two).unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn timestamps_carry_milliseconds_like_snss() {
    let at: Timestamp = "2026-11-23T18:20:12.5Z".parse().unwrap();

    assert_eq!(sns_timestamp(at), "2026-11-23T18:20:12.500Z");
}

#[tokio::test]
async fn the_served_certificate_is_pem_and_matches_the_signing_key() {
    let sns = FakeSns::start().await;

    let pem = served_cert(&sns).await;

    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    assert_eq!(pem, sns.cert_pem());
    let canonical = "Message\nhello\n";
    let signature = STANDARD.decode(sns.sign(canonical)).unwrap();
    let signature = Signature::try_from(signature.as_slice()).unwrap();
    assert!(VerifyingKey::<Sha1>::new(public_key_of(&pem)).verify(canonical.as_bytes(), &signature).is_ok());
    assert_eq!(sns.calls("cert"), 1);
    assert_eq!(sns.host(), sns.base_url().trim_start_matches("http://"));
}

#[tokio::test]
async fn a_notification_has_the_fixtures_shape_and_verifies_with_the_served_certificate() {
    let sns = FakeSns::start().await;
    let pem = served_cert(&sns).await;

    let body = sns.notification(TOPIC, &[fixture_event()]);

    assert_eq!(keys_in_order(&body), keys_in_order(&fixture("sns_notification.json")));
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&message["Type"], &message["TopicArn"]), (&json!("Notification"), &json!(TOPIC)));
    assert_eq!(message["SigningCertURL"], sns.cert_url());
    let events: Value = serde_json::from_str(message["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        events,
        json!([{ "type": "sessions", "id": "51a4189acf12e53f79000001", "ownerId": PERSON,
                 "action": "updated", "updatedAt": "2026-11-23T18:20:11Z" }])
    );
    assert!(verifies(&pem, &body));
    for key in ["Message", "MessageId", "Timestamp", "TopicArn", "Type"] {
        assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{key} changed");
    }
    assert!(!verifies(&pem, &with_field(&body, "Subject", "added")));
}

#[tokio::test]
async fn messages_and_the_certificate_are_dated_by_the_clock_the_fake_was_given() {
    let clock = Arc::new(FixedClock::at("2026-11-25T18:00:00Z"));
    let sns = FakeSns::start_with_clock(clock.clone()).await;

    let notification: Value = serde_json::from_str(&sns.notification(TOPIC, &[fixture_event()])).unwrap();
    clock.advance(Duration::from_secs(90));
    let confirmation: Value = serde_json::from_str(&sns.subscription_confirmation(TOPIC)).unwrap();

    assert_eq!(notification["Timestamp"], "2026-11-25T18:00:00.000Z");
    assert_eq!(confirmation["Timestamp"], "2026-11-25T18:01:30.000Z");
    let validity = Certificate::from_pem(sns.cert_pem().as_bytes()).unwrap().tbs_certificate.validity;
    let at = |time: x509_cert::time::Time| Timestamp::from_second(time.to_unix_duration().as_secs() as i64).unwrap();
    let now: Timestamp = "2026-11-25T18:01:30Z".parse().unwrap();
    assert!(at(validity.not_before) < now && now < at(validity.not_after), "valid at the fake's now");
}

#[tokio::test]
async fn a_subscription_confirmation_verifies_and_its_subscribe_url_confirms_once_at_the_fake() {
    let sns = FakeSns::start().await;
    let pem = served_cert(&sns).await;

    let body = sns.subscription_confirmation(TOPIC);

    assert_eq!(keys_in_order(&body), keys_in_order(&fixture("sns_subscription_confirmation.json")));
    assert!(verifies(&pem, &body));
    for key in ["Token", "SubscribeURL", "Message"] {
        assert!(!verifies(&pem, &with_field(&body, key, "changed")), "{key} changed");
    }
    let message: Value = serde_json::from_str(&body).unwrap();
    let subscribe_url = Url::parse(message["SubscribeURL"].as_str().unwrap()).unwrap();
    assert_eq!(format!("{}:{}", subscribe_url.host_str().unwrap(), subscribe_url.port().unwrap()), sns.host());
    let response = http().get(subscribe_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let xml = response.text().await.unwrap();
    assert!(xml.contains(&format!("<SubscriptionArn>{TOPIC}:")), "{xml}");
    assert_eq!(sns.confirmed(), [message["Token"].as_str().unwrap()]);
}

#[tokio::test]
async fn messages_are_signed_with_version_1_until_version_2_is_asked_for() {
    let sns = FakeSns::start().await;
    let pem = sns.cert_pem();
    let v1 = sns.notification(TOPIC, &[fixture_event()]);

    sns.set_signature_version(SignatureVersion::V2);
    let v2 = sns.notification(TOPIC, &[fixture_event()]);
    let confirmation = sns.subscription_confirmation(TOPIC);

    assert_eq!(serde_json::from_str::<Value>(&v1).unwrap()["SignatureVersion"], "1");
    assert!(verifies(&pem, &v1));
    assert!(!verifies(&pem, &with_version(&v1, "2")), "a SHA-1 signature is not a version 2 one");
    for body in [&v2, &confirmation] {
        assert_eq!(serde_json::from_str::<Value>(body).unwrap()["SignatureVersion"], "2");
        assert!(verifies(&pem, body), "SHA-256 over the canonical string");
        assert!(!verifies(&pem, &with_version(body, "1")), "a SHA-256 signature is not a version 1 one");
        assert!(!verifies(&pem, &sns.forge(body)), "forged in its own version");
    }
    assert_eq!(keys_in_order(&v2), keys_in_order(&v1), "only the version differs");
}

#[tokio::test]
async fn confirming_an_unknown_token_or_another_action_is_refused() {
    let sns = FakeSns::start().await;

    for query in ["?Action=ConfirmSubscription&Token=made-up", "?Action=Subscribe&Token=x", ""] {
        let response = http().get(format!("{}/{query}", sns.base_url())).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains("<ErrorResponse"));
    }
    assert!(sns.confirmed().is_empty());
    assert_eq!(sns.calls("confirm"), 3);
}

#[tokio::test]
async fn a_forged_message_changes_only_the_signature_and_fails_verification() {
    let sns = FakeSns::start().await;
    let pem = sns.cert_pem();
    let body = sns.notification(TOPIC, &[fixture_event()]);

    let forged = sns.forge(&body);

    assert!(!verifies(&pem, &forged));
    let (mut original, mut fake): (Value, Value) =
        (serde_json::from_str(&body).unwrap(), serde_json::from_str(&forged).unwrap());
    assert_ne!(original["Signature"], fake["Signature"]);
    original.as_object_mut().unwrap().remove("Signature");
    fake.as_object_mut().unwrap().remove("Signature");
    assert_eq!(original, fake);
}

#[tokio::test]
async fn deliver_posts_the_body_as_sns_does_and_returns_the_status() {
    let sns = FakeSns::start().await;
    let subscriber = receiver(|_, _| 200).await;
    let body = sns.notification(TOPIC, &[fixture_event()]);

    let status = sns.deliver(&subscriber.url, &body).await;

    assert_eq!(status, 200);
    let Captured { headers, body: received } = subscriber.requests().pop().unwrap();
    assert_eq!(received, body.as_bytes());
    assert_eq!(headers[MESSAGE_TYPE_HEADER], "Notification");
    assert_eq!(headers[header::CONTENT_TYPE], SNS_CONTENT_TYPE);
    assert_eq!(headers["x-amz-sns-topic-arn"], TOPIC);
    assert_eq!(sns.deliver("http://127.0.0.1:9/", &body).await, 0, "no answer is 0");
}

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FakeSns>();
}
