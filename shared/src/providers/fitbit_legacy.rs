//! The legacy Fitbit Web API, turned off on 2 November 2026. Every sync of an old `fitbit`
//! connection ends in "reconnect Fitbit through Google"; nothing is fetched. Its webhook
//! format is still verified, for notifications replayed or sent before the shutdown.

use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{DataNotice, ProviderError, StepSource, WebhookError, WebhookMessage, WebhookVerifier};
use crate::providers::webhook::{header, json_items, malformed_item, merge_notice, refuse_unless_small_post};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Fitbit's notifications were a few hundred bytes; far larger is not Fitbit.
const MAX_BODY_BYTES: usize = 256 * 1024;
const SIGNATURE_HEADER: &str = "x-fitbit-signature";

/// `FitbitLegacy::default()` has no secrets: syncs still answer `Retired`, and every
/// webhook is refused as unverifiable.
#[derive(Debug, Default, Clone)]
pub struct FitbitLegacy {
    /// The legacy app's client secret, which keyed `X-Fitbit-Signature`.
    pub client_secret: Option<SecretString>,
    /// The subscriber verification code Fitbit's `GET ?verify=` handshake checked.
    pub verification_code: Option<String>,
}

impl FitbitLegacy {
    pub fn new(client_secret: Option<SecretString>, verification_code: Option<String>) -> Self {
        Self { client_secret, verification_code }
    }

    /// The answer to Fitbit's subscriber check `GET ?verify={code}`: 204 for the configured
    /// code, 404 for any other (Fitbit sent both, and expected both answers).
    pub fn verification_status(&self, code: &str) -> u16 {
        let matches = self
            .verification_code
            .as_deref()
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(code.as_bytes())));
        if matches { 204 } else { 404 }
    }

    /// base64(HMAC-SHA1(body, client_secret + "&")), compared in constant time.
    fn signature_matches(&self, secret: &SecretString, signature: &str, body: &[u8]) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else { return false };
        let key = format!("{}&", secret.expose_secret());
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else { return false };
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    }
}

#[async_trait]
impl StepSource for FitbitLegacy {
    fn provider(&self) -> Provider {
        Provider::Fitbit
    }

    async fn daily_steps(
        &self,
        _connection: &Connection,
        _tokens: Option<&TokenSet>,
        _start: LocalDate,
        _end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        Err(ProviderError::Retired)
    }
}

#[async_trait]
impl WebhookVerifier for FitbitLegacy {
    /// Notifications only: the `GET ?verify=` check carries its code in the query, which
    /// this port does not see (see `verification_status`).
    async fn verify(
        &self,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookMessage, WebhookError> {
        refuse_unless_small_post(method, body, MAX_BODY_BYTES, || "Fitbit notifications are POSTs".into())?;
        let signature = header(headers, &[SIGNATURE_HEADER]).ok_or(WebhookError::MissingSignature)?;
        // Without the secret nothing can be verified, so nothing is believed.
        let secret = self.client_secret.as_ref().ok_or(WebhookError::Unauthorized)?;
        if !self.signature_matches(secret, signature, body) {
            return Err(WebhookError::BadSignature);
        }
        parse_notifications(body).map(WebhookMessage::Notices)
    }
}

/// One entry of Fitbit's notification array.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    collection_type: String,
    date: LocalDate,
    owner_id: String,
}

/// Step changes (`activities`) become notices; revoked access and deleted users become
/// deletions; other collections (sleep, food, body) are ignored. One notice per owner.
fn parse_notifications(body: &[u8]) -> Result<Vec<DataNotice>, WebhookError> {
    // Fitbit always sent an array; a lone object is read the same way.
    let items = json_items(body, "the body is not JSON", "expected an array of notifications")?;
    let mut notices: Vec<DataNotice> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let entry: Notification =
            serde_json::from_value(item).map_err(|e| malformed_item("notification", index, &e.to_string()))?;
        let deleted = match entry.collection_type.as_str() {
            "activities" => false,
            "userRevokedAccess" | "deleteUser" => true,
            _ => continue,
        };
        if entry.owner_id.is_empty() {
            return Err(malformed_item("notification", index, "ownerId is empty"));
        }
        merge_notice(&mut notices, DataNotice { account_id: entry.owner_id, dates: vec![entry.date], deleted });
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        String::from_utf8(crate::testing::fixture("fitbit_legacy", name)).expect("a UTF-8 fixture")
    }

    fn fitbit() -> FitbitLegacy {
        FitbitLegacy::new(Some(SecretString::from("fixture-client-secret")), Some("verify-code-1".into()))
    }

    fn signed(signature: &str) -> Vec<(String, String)> {
        vec![("X-Fitbit-Signature".to_owned(), signature.trim().to_owned())]
    }

    fn sign(body: &str) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(b"fixture-client-secret&").unwrap();
        mac.update(body.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn syncs_are_refused_because_the_api_is_retired() {
        let connection = Connection::new(
            crate::domain::UserId::parse("u1").unwrap(),
            Provider::Fitbit,
            "2026-11-25T00:00:00Z".parse().unwrap(),
        );
        let answer =
            FitbitLegacy::default().daily_steps(&connection, None, date("2026-11-24"), date("2026-11-25")).await;
        assert!(matches!(answer, Err(ProviderError::Retired)));
    }

    #[tokio::test]
    async fn the_signed_fixture_verifies_and_names_the_owner_and_the_day() {
        let body = fixture("notification.json");
        let message = fitbit().verify("POST", &signed(&fixture("notification.signature")), body.as_bytes()).await;
        let expected = DataNotice { account_id: "228S74".into(), dates: vec![date("2026-10-25")], deleted: false };
        assert_eq!(message.unwrap(), WebhookMessage::Notices(vec![expected]));
    }

    #[tokio::test]
    async fn the_signature_header_is_found_in_any_case() {
        let body = fixture("notification.json");
        let headers = vec![("x-fitbit-signature".to_owned(), fixture("notification.signature").trim().to_owned())];
        assert!(fitbit().verify("POST", &headers, body.as_bytes()).await.is_ok());
    }

    #[tokio::test]
    async fn a_changed_body_or_another_secret_fails_verification() {
        let body = fixture("notification.json").replace("2026-10-25", "2026-10-26");
        let signature = fixture("notification.signature");
        assert_eq!(
            fitbit().verify("POST", &signed(&signature), body.as_bytes()).await,
            Err(WebhookError::BadSignature)
        );

        let other = FitbitLegacy::new(Some(SecretString::from("another-secret")), None);
        let body = fixture("notification.json");
        assert_eq!(other.verify("POST", &signed(&signature), body.as_bytes()).await, Err(WebhookError::BadSignature));
        assert_eq!(fitbit().verify("POST", &signed("***"), body.as_bytes()).await, Err(WebhookError::BadSignature));
    }

    #[tokio::test]
    async fn missing_signatures_secrets_and_oversized_bodies_are_refused() {
        let body = fixture("notification.json");
        let signature = fixture("notification.signature");
        assert_eq!(fitbit().verify("POST", &[], body.as_bytes()).await, Err(WebhookError::MissingSignature));
        let unconfigured = FitbitLegacy::default();
        assert_eq!(
            unconfigured.verify("POST", &signed(&signature), body.as_bytes()).await,
            Err(WebhookError::Unauthorized)
        );
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(fitbit().verify("POST", &signed(&signature), &huge).await, Err(WebhookError::TooLarge));
        assert!(matches!(fitbit().verify("GET", &[], b"").await, Err(WebhookError::Malformed(_))));
    }

    #[tokio::test]
    async fn notices_merge_per_owner_and_only_step_related_collections_count() {
        let body = r#"[
            {"collectionType":"activities","date":"2026-10-25","ownerId":"A1","ownerType":"user","subscriptionId":"s"},
            {"collectionType":"sleep","date":"2026-10-25","ownerId":"B2","ownerType":"user","subscriptionId":"s"},
            {"collectionType":"activities","date":"2026-10-24","ownerId":"A1","ownerType":"user","subscriptionId":"s"},
            {"collectionType":"userRevokedAccess","date":"2026-10-25","ownerId":"C3","ownerType":"user","subscriptionId":"s"}
        ]"#;
        let message = fitbit().verify("POST", &signed(&sign(body)), body.as_bytes()).await.unwrap();
        assert_eq!(
            message,
            WebhookMessage::Notices(vec![
                DataNotice {
                    account_id: "A1".into(),
                    dates: vec![date("2026-10-24"), date("2026-10-25")],
                    deleted: false
                },
                DataNotice { account_id: "C3".into(), dates: vec![date("2026-10-25")], deleted: true },
            ])
        );
    }

    #[tokio::test]
    async fn a_signed_but_malformed_body_is_refused_with_a_reason() {
        for (body, reason) in [
            ("{oops", "the body is not JSON"),
            ("\"text\"", "expected an array of notifications"),
            (r#"[{"collectionType":"activities","date":"25/10/2026","ownerId":"A1"}]"#, "notification 0: "),
        ] {
            let err = fitbit().verify("POST", &signed(&sign(body)), body.as_bytes()).await.unwrap_err();
            assert!(matches!(&err, WebhookError::Malformed(r) if r.starts_with(reason)), "{body}: {err:?}");
        }
    }

    #[test]
    fn the_subscriber_check_answers_204_only_for_the_configured_code() {
        assert_eq!(fitbit().verification_status("verify-code-1"), 204);
        assert_eq!(fitbit().verification_status("wrong"), 404);
        assert_eq!(FitbitLegacy::default().verification_status(""), 404);
    }
}
