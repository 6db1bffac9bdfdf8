//! `PolarWebhookKeeper`: the client's one webhook at Polar, as the daily run checks it. Polar
//! switches a webhook off after seven days of failed deliveries; the keeper lists it
//! (`GET /v3/webhooks`) and reactivates it (`POST /v3/webhooks/activate`, which Polar grants
//! only once our callback answers its PING). It never creates one: the answer that creates a
//! webhook is the only one that ever shows its `signature_secret_key`, and a keeper that
//! created it would have to store that key itself, in the clear. Creating it is an operator's
//! step (the key goes into the secret store); a missing webhook is reported as such. Nor does
//! it repoint a webhook aimed elsewhere: another deployment sharing the client may own it.
//! The client authenticates with HTTP Basic (client id and secret).

use super::{ACTIVITY_SUMMARY, PolarSettings, SetupError, client_secret, http_client, parse_url};
use crate::ports::{ProviderError, SubscriptionKeeper, SubscriptionState};
use crate::providers::http::{Answer, answered, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::Url;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The Polar adapter behind `SubscriptionKeeper`.
pub struct PolarWebhookKeeper {
    client_id: String,
    client_secret: SecretString,
    callback_url: String,
    webhooks: Url,
    activate: Url,
    http: reqwest::Client,
    quota: AppQuota,
}

#[derive(Debug, Clone, Deserialize)]
struct Webhook {
    #[serde(default)]
    id: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    url: String,
    /// Older answers carry no `active`: a listed webhook is then taken as on.
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    data: Vec<Webhook>,
}

fn state(id: Option<&str>, note: String) -> SubscriptionState {
    SubscriptionState { topic: ACTIVITY_SUMMARY.to_owned(), id: id.map(str::to_owned), expires_at: None, note }
}

/// A webhook that delivers nothing to us: reported without an id, so it is not live, with its
/// id in the note for the operator.
fn not_live(webhook: &Webhook, why: &str) -> SubscriptionState {
    let id: String = webhook.id.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
    state(None, format!("{why} (Polar's webhook {id})"))
}

impl PolarWebhookKeeper {
    pub fn new(settings: &PolarSettings, quota: AppQuota) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        Ok(Self {
            client_id: settings.client_id.clone(),
            client_secret: client_secret(settings)?,
            callback_url: parse_url("callback_url", &settings.callback_url)?.to_string(),
            webhooks: parse_url("api_base", &format!("{base}/v3/webhooks"))?,
            activate: parse_url("api_base", &format!("{base}/v3/webhooks/activate"))?,
            http: http_client(settings)?,
            quota,
        })
    }

    async fn call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        now: Timestamp,
    ) -> Result<Answer, ProviderError> {
        self.quota.take().await?;
        let request = request
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .header(ACCEPT, "application/json");
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))?;
        match answer.status.as_u16() {
            200..=299 => Ok(answer),
            401 | 403 => {
                Err(ProviderError::AppRefused { reason: format!("the {what} refused our client credentials") })
            }
            429 => Err(ProviderError::RateLimited { retry_after: retry_after(&answer.headers, now) }),
            status @ 400..=499 => Err(ProviderError::BadRequest(format!("the {what} answered {status}"))),
            _ => Err(answered(what, answer.status)),
        }
    }

    /// Whether `url` is our callback (a trailing slash either way is the same place).
    fn is_ours(&self, url: &str) -> bool {
        url.trim_end_matches('/') == self.callback_url.trim_end_matches('/')
    }

    async fn reactivate(&self, webhook: &Webhook, now: Timestamp) -> SubscriptionState {
        match self.call("webhook activation", self.http.post(self.activate.clone()), now).await {
            // 204: Polar has no webhook to activate (deleted since it was listed).
            Ok(answer) if answer.status.as_u16() == 204 => missing(),
            Ok(_) => state(Some(&webhook.id), "reactivated".to_owned()),
            Err(error) => {
                if matches!(error, ProviderError::RateLimited { .. }) {
                    tracing::warn!(provider = "polar", %error, "polar's webhook waits for the request budget to be reactivated");
                } else {
                    tracing::error!(alarm = "subscription_not_kept", provider = "polar", %error, "polar's webhook is switched off and could not be reactivated");
                }
                not_live(webhook, &format!("inactive, not reactivated: {error}"))
            }
        }
    }
}

fn missing() -> SubscriptionState {
    tracing::error!(
        alarm = "subscription_not_kept",
        provider = "polar",
        "polar has no webhook for this client: an operator must create it and store its signature key"
    );
    state(None, "missing: an operator must create it (POST /v3/webhooks) and store its signature_secret_key".to_owned())
}

#[async_trait]
impl SubscriptionKeeper for PolarWebhookKeeper {
    async fn keep(&self, now: Timestamp) -> Result<Vec<SubscriptionState>, ProviderError> {
        let answer = self.call("webhook list", self.http.get(self.webhooks.clone()), now).await?;
        // An empty answer (204) is no webhook at all.
        let listed = if answer.body.iter().all(u8::is_ascii_whitespace) {
            Listed { data: Vec::new() }
        } else {
            serde_json::from_slice(&answer.body).map_err(|_| unreadable("webhook list"))?
        };
        // One webhook per client; should more be listed, ours is the one at our callback.
        let webhook = listed.data.iter().find(|w| self.is_ours(&w.url)).or(listed.data.first());
        let outcome = match webhook {
            None => missing(),
            Some(w) if !self.is_ours(&w.url) => {
                tracing::error!(
                    alarm = "subscription_not_kept",
                    provider = "polar",
                    "polar's webhook points elsewhere: an operator must update its url"
                );
                not_live(w, "points at another url: an operator must update it")
            }
            Some(w) if !w.events.iter().any(|e| e == ACTIVITY_SUMMARY) => {
                tracing::error!(
                    alarm = "subscription_not_kept",
                    provider = "polar",
                    "polar's webhook does not deliver ACTIVITY_SUMMARY: an operator must add it"
                );
                not_live(w, "not subscribed to ACTIVITY_SUMMARY: an operator must add it")
            }
            Some(w) if w.active => state(Some(&w.id), "kept".to_owned()),
            Some(w) => self.reactivate(w, now).await,
        };
        Ok(vec![outcome])
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::providers::test_server::{Recorded, Reply, TestServer};
    use crate::testing::{FixedClock, InMemoryStore};
    use std::sync::Arc;

    /// The callback the fixtures' webhooks point at.
    const CALLBACK: &str = "https://stepsync.example/webhooks/polar";

    fn keeper(base: &str) -> PolarWebhookKeeper {
        let mut settings = PolarSettings::new("client-1", SecretString::from("secret-1"), CALLBACK);
        settings.api_base = base.to_owned();
        let clock = Arc::new(FixedClock::at("2026-12-03T12:00:00Z"));
        let quota = AppQuota::new("quota#polar", settings.quota.clone(), Arc::new(InMemoryStore::default()), clock);
        PolarWebhookKeeper::new(&settings, quota).unwrap()
    }

    fn now() -> Timestamp {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    async fn kept_with(list: Reply, activate: Reply) -> (Vec<SubscriptionState>, Vec<Recorded>) {
        let server =
            TestServer::start(move |request: &Recorded| match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/v3/webhooks") => list.clone(),
                ("POST", "/v3/webhooks/activate") => activate.clone(),
                _ => Reply::json(404, "{}"),
            })
            .await;
        let states = keeper(&server.base).keep(now()).await.unwrap();
        (states, server.requests())
    }

    #[tokio::test]
    async fn an_active_webhook_at_our_callback_is_kept_untouched() {
        let (states, requests) = kept_with(Reply::json(200, fixture("webhook_list.json")), Reply::new(200, "")).await;
        let listed: serde_json::Value = serde_json::from_str(&fixture("webhook_list.json")).unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].topic, "ACTIVITY_SUMMARY");
        assert_eq!(states[0].id.as_deref(), listed["data"][0]["id"].as_str());
        assert_eq!((states[0].note.as_str(), states[0].expires_at), ("kept", None));
        assert!(states[0].live(now()));
        assert_eq!(requests.len(), 1, "nothing but the list");
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "client-1:secret-1")
        );
        assert_eq!(requests[0].header("authorization"), Some(basic.as_str()));
    }

    #[tokio::test]
    async fn a_switched_off_webhook_is_reactivated_and_one_that_cannot_be_is_not_live() {
        let inactive = Reply::json(200, fixture("webhook_list_inactive.json"));
        let (states, requests) = kept_with(inactive.clone(), Reply::new(200, "")).await;
        assert_eq!(states[0].note, "reactivated");
        assert!(states[0].live(now()));
        assert_eq!(requests.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["GET", "POST"]);
        assert_eq!(requests[1].path, "/v3/webhooks/activate");

        let (states, _) = kept_with(inactive.clone(), Reply::json(503, "{}")).await;
        assert!(!states[0].live(now()));
        assert!(states[0].note.starts_with("inactive, not reactivated"), "{}", states[0].note);
        let (states, _) = kept_with(inactive, Reply::new(204, "")).await;
        assert!(!states[0].live(now()) && states[0].note.starts_with("missing"), "gone since it was listed");
    }

    #[tokio::test]
    async fn a_missing_webhook_or_one_aimed_elsewhere_is_reported_for_an_operator_and_nothing_created() {
        for empty in [Reply::json(200, r#"{"data":[]}"#), Reply::new(204, "")] {
            let (states, requests) = kept_with(empty, Reply::new(200, "")).await;
            assert_eq!(states[0].id, None);
            assert!(states[0].note.contains("operator must create it"), "{}", states[0].note);
            assert_eq!(requests.len(), 1, "never created by the keeper");
        }
        let elsewhere = r#"{"data":[{"id":"abdf33","events":["ACTIVITY_SUMMARY"],"url":"https://old.example/hook","active":true}]}"#;
        let (states, _) = kept_with(Reply::json(200, elsewhere), Reply::new(200, "")).await;
        assert!(!states[0].live(now()));
        assert!(states[0].note.contains("abdf33") && states[0].note.contains("another url"));
        let no_activity =
            format!(r#"{{"data":[{{"id":"abdf33","events":["EXERCISE"],"url":"{CALLBACK}","active":true}}]}}"#);
        let (states, _) = kept_with(Reply::json(200, no_activity), Reply::new(200, "")).await;
        assert!(!states[0].live(now()) && states[0].note.contains("ACTIVITY_SUMMARY"));
    }

    #[tokio::test]
    async fn refused_credentials_and_an_unreadable_list_are_errors() {
        let refused = TestServer::replying(Reply::json(401, "{}")).await;
        assert!(matches!(keeper(&refused.base).keep(now()).await, Err(ProviderError::AppRefused { .. })));
        let odd = TestServer::replying(Reply::json(200, "[oops")).await;
        assert!(matches!(keeper(&odd.base).keep(now()).await, Err(ProviderError::Unavailable(_))));
    }
}
