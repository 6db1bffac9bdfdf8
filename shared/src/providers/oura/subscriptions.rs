//! `OuraSubscriptions`: the app's webhook subscriptions at Oura, one per event type of daily
//! activity, pointed at our callback. The daily run lists them, renews each that expires
//! within `renew_within` (or already has), and creates any that is missing; Oura verifies a
//! new one by calling our webhook's GET with the verification token. The app authenticates
//! with `x-client-id` and `x-client-secret`.

use super::{DATA_TYPE, EVENT_TYPES, OuraSettings, SetupError, client_secret, http_client, parse_url};
use crate::ports::{ProviderError, SubscriptionKeeper, SubscriptionState};
use crate::providers::http::{answered, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The Oura adapter behind `SubscriptionKeeper`.
pub struct OuraSubscriptions {
    client_id: String,
    client_secret: SecretString,
    verification_token: Option<SecretString>,
    callback_url: String,
    renew_within: Duration,
    collection: Url,
    http: reqwest::Client,
    quota: AppQuota,
}

#[derive(Debug, Clone, Deserialize)]
struct Subscription {
    id: String,
    callback_url: String,
    event_type: String,
    data_type: String,
    #[serde(default)]
    expiration_time: Option<String>,
}

impl Subscription {
    fn expires_at(&self) -> Option<Timestamp> {
        self.expiration_time.as_deref().and_then(|t| t.parse().ok())
    }

    fn state(&self, note: &str) -> SubscriptionState {
        SubscriptionState {
            topic: topic(&self.event_type),
            id: Some(self.id.clone()),
            expires_at: self.expires_at(),
            note: note.to_owned(),
        }
    }
}

fn topic(event_type: &str) -> String {
    format!("{DATA_TYPE}/{event_type}")
}

impl OuraSubscriptions {
    pub fn new(settings: &OuraSettings, quota: AppQuota) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        Ok(Self {
            client_id: settings.client_id.clone(),
            client_secret: client_secret(settings)?,
            verification_token: settings.verification_token.clone(),
            callback_url: parse_url("callback_url", &settings.callback_url)?.to_string(),
            renew_within: settings.renew_within,
            collection: parse_url("api_base", &format!("{base}/v2/webhook/subscription"))?,
            http: http_client(settings)?,
            quota,
        })
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        Url::parse(&format!("{}{path}", self.collection))
            .map_err(|_| ProviderError::BadRequest("a subscription id that is not a path segment".into()))
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        now: Timestamp,
    ) -> Result<T, ProviderError> {
        self.quota.take().await?;
        let request = request
            .header("x-client-id", &self.client_id)
            .header("x-client-secret", self.client_secret.expose_secret());
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))?;
        match answer.status.as_u16() {
            200..=299 => serde_json::from_slice(&answer.body).map_err(|_| unreadable(what)),
            401 | 403 => {
                Err(ProviderError::AppRefused { reason: format!("the {what} refused our client credentials") })
            }
            429 => Err(ProviderError::RateLimited { retry_after: retry_after(&answer.headers, now) }),
            400..=499 => Err(ProviderError::BadRequest(format!("the {what} answered {}", answer.status.as_u16()))),
            _ => Err(answered(what, answer.status)),
        }
    }

    async fn create(&self, event_type: &str, now: Timestamp) -> Result<Subscription, ProviderError> {
        let token = self.verification_token.as_ref().ok_or_else(|| ProviderError::AppRefused {
            reason: "no verification token is configured for Oura's subscriptions".into(),
        })?;
        let body = serde_json::json!({
            "callback_url": self.callback_url,
            "verification_token": token.expose_secret(),
            "event_type": event_type,
            "data_type": DATA_TYPE,
        });
        self.call("subscription create", self.http.post(self.collection.clone()).json(&body), now).await
    }

    async fn renew(&self, id: &str, now: Timestamp) -> Result<Subscription, ProviderError> {
        let url = self.url(&format!("/renew/{}", path_segment(id)?))?;
        self.call("subscription renewal", self.http.put(url), now).await
    }
}

/// A subscription id as Oura gives it, refused if it could leave its path segment.
fn path_segment(id: &str) -> Result<&str, ProviderError> {
    let plain =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    plain.then_some(id).ok_or_else(|| ProviderError::BadRequest("an odd subscription id".into()))
}

#[async_trait]
impl SubscriptionKeeper for OuraSubscriptions {
    async fn keep(&self, now: Timestamp) -> Result<Vec<SubscriptionState>, ProviderError> {
        let listed: Vec<Subscription> =
            self.call("subscription list", self.http.get(self.collection.clone()), now).await?;
        let renew_by = now.checked_add(self.renew_within).unwrap_or(Timestamp::MAX);
        let mut states = Vec::new();
        for event_type in EVENT_TYPES {
            let ours = listed.iter().find(|s| {
                s.data_type == DATA_TYPE && s.event_type == event_type && s.callback_url == self.callback_url
            });
            let outcome = match ours {
                Some(existing) if existing.expires_at().is_some_and(|at| at > renew_by) => Ok(existing.state("kept")),
                Some(existing) => match self.renew(&existing.id, now).await {
                    Ok(renewed) => Ok(renewed.state("renewed")),
                    Err(error) => Err((Some(existing), error)),
                },
                None => match self.create(event_type, now).await {
                    Ok(created) => Ok(created.state("created")),
                    Err(error) => Err((None, error)),
                },
            };
            states.push(match outcome {
                Ok(state) => state,
                Err((existing, error)) => {
                    // A spent budget is not worth an alarm: a week of margin is left to retry.
                    if matches!(error, ProviderError::RateLimited { .. }) {
                        tracing::warn!(provider = "oura", topic = topic(event_type), %error, "an Oura subscription waits for the request budget");
                    } else {
                        tracing::error!(alarm = "subscription_not_kept", provider = "oura", topic = topic(event_type), %error, "an Oura subscription could not be renewed or created");
                    }
                    SubscriptionState {
                        topic: topic(event_type),
                        id: existing.map(|s| s.id.clone()),
                        expires_at: existing.and_then(Subscription::expires_at),
                        note: format!("not kept: {error}"),
                    }
                }
            });
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_server::{Recorded, Reply, TestServer};
    use crate::testing::{FixedClock, InMemoryStore};
    use std::sync::Arc;

    const CALLBACK: &str = "https://api.example/webhooks/oura";

    fn keeper(base: &str) -> OuraSubscriptions {
        let mut settings = OuraSettings::new("client-1", SecretString::from("secret-1"), CALLBACK);
        settings.api_base = base.to_owned();
        settings.verification_token = Some(SecretString::from("verify-me"));
        let clock = Arc::new(FixedClock::at("2026-12-03T12:00:00Z"));
        let quota = AppQuota::new("quota#oura", settings.quota.clone(), Arc::new(InMemoryStore::default()), clock);
        OuraSubscriptions::new(&settings, quota).unwrap()
    }

    fn listed(event_type: &str, expires: &str) -> serde_json::Value {
        serde_json::json!({"id": format!("sub-{event_type}"), "callback_url": CALLBACK, "event_type": event_type,
            "data_type": "daily_activity", "expiration_time": expires})
    }

    #[tokio::test]
    async fn live_ones_are_kept_expiring_ones_renewed_and_missing_ones_created() {
        let list = serde_json::json!([
            listed("create", "2027-03-01T00:00:00+00:00"),
            listed("update", "2026-12-05T00:00:00+00:00")
        ]);
        let server =
            TestServer::start(move |request: &Recorded| match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/v2/webhook/subscription") => Reply::json(200, list.to_string()),
                ("PUT", "/v2/webhook/subscription/renew/sub-update") => {
                    Reply::json(200, listed("update", "2027-03-05T00:00:00+00:00").to_string())
                }
                ("POST", "/v2/webhook/subscription") => {
                    let asked = request.json();
                    Reply::json(
                        201,
                        listed(asked["event_type"].as_str().unwrap(), "2027-03-05T00:00:00+00:00").to_string(),
                    )
                }
                _ => Reply::json(404, "{}"),
            })
            .await;
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let states = keeper(&server.base).keep(now).await.unwrap();
        let notes: Vec<(&str, &str)> = states.iter().map(|s| (s.topic.as_str(), s.note.as_str())).collect();
        assert_eq!(
            notes,
            [
                ("daily_activity/create", "kept"),
                ("daily_activity/update", "renewed"),
                ("daily_activity/delete", "created")
            ]
        );
        assert!(states.iter().all(|s| s.live(now)));
        let requests = server.requests();
        assert!(requests.iter().all(|r| r.header("x-client-id") == Some("client-1")
            && r.header("x-client-secret") == Some("secret-1")));
        let created = requests.iter().find(|r| r.method == "POST").unwrap().json();
        assert_eq!(created["callback_url"], CALLBACK);
        assert_eq!(created["verification_token"], "verify-me");
        assert_eq!(created["data_type"], "daily_activity");
    }

    #[tokio::test]
    async fn a_subscription_that_cannot_be_renewed_is_reported_not_live_once_expired() {
        let list = serde_json::json!([
            listed("create", "2026-12-01T00:00:00+00:00"),
            listed("update", "2027-03-01T00:00:00+00:00"),
            listed("delete", "2027-03-01T00:00:00+00:00")
        ]);
        let server = TestServer::start(move |request: &Recorded| match request.method.as_str() {
            "GET" => Reply::json(200, list.to_string()),
            _ => Reply::json(503, "{}"),
        })
        .await;
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let states = keeper(&server.base).keep(now).await.unwrap();
        assert!(!states[0].live(now));
        assert!(states[0].note.starts_with("not kept"));
        assert!(states[1].live(now) && states[2].live(now));
        let refused = TestServer::replying(Reply::json(401, "{}")).await;
        assert!(matches!(keeper(&refused.base).keep(now).await, Err(ProviderError::AppRefused { .. })));
    }
}
