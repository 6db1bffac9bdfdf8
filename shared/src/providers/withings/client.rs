//! `WithingsClient`: OAuth at `/v2/oauth2` (`action=requesttoken`), whose answer names the
//! account (`userid`), kept for `identity` since no endpoint tells it later; refresh tokens
//! rotate (the old one stays valid for a while after, so a peer's refresh is harmless);
//! daily activity from `/v2/measure` (`getactivity`, `more`/`offset` paging); the person's
//! notification subscription made on connect; and on disconnect that subscription revoked,
//! then the grant (`action=revoke`, signed with a nonce). Withings answers HTTP 200 with a
//! `status` in the body: that status is what is mapped. Every request first takes from the
//! app-wide budget.

use super::{ACTIVITY_APPLI, ACTIVITY_SCOPE, SetupError, WithingsSettings, http_client, parse_url};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{
    AuthorizeRequest, OAuthClient, PersonSubscriptions, ProviderError, ProviderIdentity, Revoker, StepSource,
};
use crate::providers::day_ranges;
use crate::providers::exchanged::ExchangedAccounts;
use crate::providers::http::{answered, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use jiff::SignedDuration;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const MAX_DAYS_PER_REQUEST: i32 = 31;
const MAX_PAGES: usize = 20;
const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Withings' access tokens last three hours.
const DEFAULT_EXPIRES_IN: i64 = 10_800;
/// What a spent Withings minute asks when it names no time.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

struct Endpoints {
    authorize: Url,
    oauth2: Url,
    measure: Url,
    signature: Url,
    notify: Url,
}

/// The Withings adapter behind `StepSource`, `OAuthClient` and `Revoker`.
pub struct WithingsClient {
    settings: WithingsSettings,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    quota: AppQuota,
    clock: Arc<dyn Clock>,
    /// The `userid` each exchange named, for `identity`.
    accounts: ExchangedAccounts,
}

/// Which endpoint answered: the token endpoint's refusals are about the grant.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Token,
    Api,
}

impl WithingsClient {
    pub fn new(settings: WithingsSettings, quota: AppQuota, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        if !settings.scopes.iter().any(|s| s == ACTIVITY_SCOPE) {
            return Err(SetupError::InvalidSetting { name: "scopes", why: "user.activity is needed for steps" });
        }
        let base = settings.api_base.trim_end_matches('/');
        let api = |path: &str| parse_url("api_base", &format!("{base}{path}"));
        let endpoints = Endpoints {
            authorize: parse_url("auth_url", &settings.auth_url)?,
            oauth2: api("/v2/oauth2")?,
            measure: api("/v2/measure")?,
            signature: api("/v2/signature")?,
            notify: api("/notify")?,
        };
        let http = http_client(&settings)?;
        let client_secret = settings.client_secret.clone().ok_or(SetupError::NoClientSecret)?;
        Ok(Self { settings, client_secret, endpoints, http, quota, clock, accounts: ExchangedAccounts::default() })
    }

    /// Sends a form, reads Withings' envelope, and returns its `body` when `status` is 0.
    async fn call(&self, call: Call, what: &str, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        self.quota.take().await?;
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))?;
        if answer.status.as_u16() == 429 {
            let wait = retry_after(&answer.headers, self.clock.now()).unwrap_or(RATE_LIMIT_WAIT);
            return Err(ProviderError::RateLimited { retry_after: Some(wait) });
        }
        if !answer.status.is_success() {
            return Err(answered(what, answer.status));
        }
        let envelope: Envelope = serde_json::from_slice(&answer.body).map_err(|_| unreadable(what))?;
        match (envelope.status, call) {
            (0, _) => Ok(envelope.body),
            (601, _) => Err(ProviderError::RateLimited { retry_after: Some(RATE_LIMIT_WAIT) }),
            // A refused code or refresh token (revoked, expired, or replaced and expired).
            (100..=102 | 200 | 401 | 503, Call::Token) => Err(ProviderError::InvalidGrant),
            (100..=102 | 200 | 401, Call::Api) => Err(ProviderError::Unauthorized),
            // Our client id, secret or signature refused: only an operator can fix that.
            (342 | 2553, _) => {
                Err(ProviderError::AppRefused { reason: format!("the {what} refused our app ({})", envelope.status) })
            }
            (status @ (2554 | 2555 | 500..=599), _) => {
                Err(ProviderError::Unavailable(format!("the {what} answered status {status}")))
            }
            (status, _) => Err(ProviderError::BadRequest(format!("the {what} answered status {status}"))),
        }
    }

    fn hmac_hex(&self, values: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.client_secret.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(values.join(",").as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn token_request(&self, what: &str, grant: &[(&str, &str)]) -> Result<TokenSet, ProviderError> {
        let mut form = vec![("action", "requesttoken")];
        form.extend_from_slice(grant);
        form.push(("client_id", self.settings.client_id.as_str()));
        form.push(("client_secret", self.client_secret.expose_secret()));
        let body = self.call(Call::Token, what, self.http.post(self.endpoints.oauth2.clone()).form(&form)).await?;
        let answer: TokenAnswer = serde_json::from_value(body).map_err(|_| unreadable(what))?;
        if answer.access_token.is_empty() {
            return Err(unreadable(what));
        }
        if let Some(userid) = answer.userid.as_ref().and_then(account_id) {
            self.accounts.remember(&answer.access_token, userid);
        }
        let now = self.clock.now();
        let lifetime = answer.expires_in.filter(|s| *s > 0).unwrap_or(DEFAULT_EXPIRES_IN);
        let scope = answer
            .scope
            .map(|s| s.split([',', ' ']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| self.settings.scopes.join(" "));
        Ok(TokenSet {
            access_token: SecretString::from(answer.access_token),
            refresh_token: answer.refresh_token.filter(|t| !t.is_empty()).map(SecretString::from),
            expires_at: now.checked_add(SignedDuration::from_secs(lifetime)).unwrap_or(now),
            scope: Some(scope),
        })
    }

    /// The callback Withings notifies: ours, with our secret in its query.
    fn callback_url(&self) -> Option<String> {
        let token = self.settings.notify_token.as_ref()?;
        let mut url = Url::parse(&self.settings.callback_base).ok()?;
        url.query_pairs_mut().append_pair("token", token.expose_secret());
        Some(url.into())
    }

    fn our_callback(&self) -> Result<String, ProviderError> {
        self.callback_url().ok_or_else(|| ProviderError::AppRefused {
            reason: "no notification token is configured for Withings".into(),
        })
    }

    async fn notify(&self, action: &str, tokens: &TokenSet) -> Result<(), ProviderError> {
        let callback = self.our_callback()?;
        let mut form = vec![("action", action), ("callbackurl", callback.as_str()), ("appli", ACTIVITY_APPLI)];
        if action == "subscribe" {
            form.push(("comment", "StepSync"));
        }
        let request =
            self.http.post(self.endpoints.notify.clone()).bearer_auth(tokens.access_token.expose_secret()).form(&form);
        self.call(Call::Api, &format!("notify {action}"), request).await.map(|_| ())
    }

    /// Ends the grant at Withings: a fresh nonce, then `action=revoke` signed with it.
    async fn revoke_grant(&self, userid: &str) -> Result<(), ProviderError> {
        let timestamp = self.clock.now().as_second().to_string();
        let client_id = self.settings.client_id.as_str();
        let signature = self.hmac_hex(&["getnonce", client_id, &timestamp]);
        let form =
            [("action", "getnonce"), ("client_id", client_id), ("timestamp", &timestamp), ("signature", &signature)];
        let body = self.call(Call::Api, "nonce", self.http.post(self.endpoints.signature.clone()).form(&form)).await?;
        let nonce = body.get("nonce").and_then(Value::as_str).ok_or_else(|| unreadable("nonce"))?.to_owned();
        let signature = self.hmac_hex(&["revoke", client_id, &nonce]);
        let form = [
            ("action", "revoke"),
            ("client_id", client_id),
            ("nonce", &nonce),
            ("signature", &signature),
            ("userid", userid),
        ];
        self.call(Call::Api, "revoke", self.http.post(self.endpoints.oauth2.clone()).form(&form)).await.map(|_| ())
    }

    async fn activity_chunk(
        &self,
        tokens: &TokenSet,
        start: LocalDate,
        end: LocalDate,
        days: &mut BTreeMap<LocalDate, i64>,
    ) -> Result<(), ProviderError> {
        let (start_text, end_text) = (start.to_string(), end.to_string());
        let mut offset: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut form = vec![
                ("action", "getactivity"),
                ("startdateymd", start_text.as_str()),
                ("enddateymd", end_text.as_str()),
                ("data_fields", "steps"),
            ];
            if let Some(offset) = offset.as_deref() {
                form.push(("offset", offset));
            }
            let request = self
                .http
                .post(self.endpoints.measure.clone())
                .bearer_auth(tokens.access_token.expose_secret())
                .form(&form);
            let body = self.call(Call::Api, "activity", request).await?;
            let page: ActivityPage = serde_json::from_value(body).map_err(|_| unreadable("activity"))?;
            for entry in &page.activities {
                if let Some((date, steps)) = activity_day(entry).filter(|(date, _)| (start..=end).contains(date)) {
                    // Two trackers can report one day: they counted the same walk, so the
                    // larger count is the day's, never their sum.
                    let day = days.entry(date).or_insert(steps);
                    *day = (*day).max(steps);
                }
            }
            let next = page.offset.as_ref().map(|o| o.to_string().trim_matches('"').to_owned());
            match (page.more, next) {
                (true, Some(next)) if Some(&next) != offset.as_ref() => offset = Some(next),
                (true, _) => return Err(ProviderError::Unavailable("withings repeated its paging offset".into())),
                (false, _) => return Ok(()),
            }
        }
        Err(ProviderError::Unavailable(format!("withings' activity ran past {MAX_PAGES} pages")))
    }
}

#[async_trait]
impl OAuthClient for WithingsClient {
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        if request.state.is_empty() || request.redirect_uri.is_empty() {
            return Err(ProviderError::BadRequest("state and redirect URI are required".into()));
        }
        let mut url = self.endpoints.authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("scope", &self.settings.scopes.join(","))
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("state", &request.state);
        Ok(url.into())
    }

    fn required_scopes(&self) -> &[&str] {
        &[ACTIVITY_SCOPE]
    }

    async fn exchange_code(&self, code: &str, _verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let grant = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        self.token_request("token exchange", &grant).await
    }

    /// A new access token and refresh token; the old refresh token stays valid at Withings
    /// until the new access token is used (or hours pass), so a peer's concurrent refresh
    /// still gets an answer and the engine keeps whichever was stored first.
    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        let refresh_token = tokens.refresh_token.as_ref().ok_or(ProviderError::InvalidGrant)?;
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        let mut refreshed = self.token_request("token refresh", &grant).await?;
        if refreshed.refresh_token.is_none() {
            refreshed.refresh_token = tokens.refresh_token.clone();
        }
        Ok(refreshed)
    }

    /// The `userid` the code exchange named (Withings has no endpoint that tells it).
    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let account_id =
            self.accounts.account_for(&tokens.access_token).ok_or_else(|| unreadable("token exchange's userid"))?;
        Ok(ProviderIdentity { account_id, legacy_account_id: None, time_zone: None })
    }

    /// The person's activity notifications, pointed at our callback.
    async fn connected(&self, tokens: &TokenSet, _identity: &ProviderIdentity) -> Result<(), ProviderError> {
        self.notify("subscribe", tokens).await
    }
}

#[async_trait]
impl Revoker for WithingsClient {
    /// Without the account, only the notification subscription can be given back.
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        self.notify("revoke", tokens).await
    }

    async fn revoke_account(&self, tokens: &TokenSet, account_id: Option<&str>) -> Result<(), ProviderError> {
        let unsubscribed = self.notify("revoke", tokens).await;
        if let Some(userid) = account_id {
            self.revoke_grant(userid).await?;
        }
        unsubscribed
    }
}

/// The syncs' check (`engine::subscription`): `notify?action=list` for the activity category names every callback the
/// person is subscribed with; ours (with our current secret) must be among them. Withings
/// drops a subscription whose callback kept failing, and a subscribe can fail on connect.
#[async_trait]
impl PersonSubscriptions for WithingsClient {
    async fn subscribed(&self, tokens: &TokenSet) -> Result<bool, ProviderError> {
        let callback = self.our_callback()?;
        let form = [("action", "list"), ("appli", ACTIVITY_APPLI)];
        let request =
            self.http.post(self.endpoints.notify.clone()).bearer_auth(tokens.access_token.expose_secret()).form(&form);
        let body = self.call(Call::Api, "notify list", request).await?;
        let listed: NotifyList = serde_json::from_value(body).map_err(|_| unreadable("notify list"))?;
        Ok(listed.profiles.iter().any(|p| p.callbackurl == callback && p.appli.to_string() == ACTIVITY_APPLI))
    }

    async fn subscribe(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        self.notify("subscribe", tokens).await
    }
}

#[async_trait]
impl StepSource for WithingsClient {
    fn provider(&self) -> Provider {
        Provider::Withings
    }

    async fn daily_steps(
        &self,
        _connection: &Connection,
        tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let tokens = tokens.ok_or(ProviderError::Unauthorized)?;
        let mut days = BTreeMap::new();
        for (chunk_start, chunk_end) in day_ranges::chunks(start, end, MAX_DAYS_PER_REQUEST) {
            self.activity_chunk(tokens, chunk_start, chunk_end, &mut days).await?;
        }
        Ok(days.into_iter().map(|(date, steps)| DailyValue { date, steps, observed_at: None }).collect())
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: i64,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    userid: Option<Value>,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct NotifyList {
    #[serde(default)]
    profiles: Vec<NotifyProfile>,
}

#[derive(Deserialize)]
struct NotifyProfile {
    #[serde(default)]
    appli: i64,
    #[serde(default)]
    callbackurl: String,
}

#[derive(Deserialize)]
struct ActivityPage {
    #[serde(default)]
    activities: Vec<Value>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    offset: Option<Value>,
}

fn account_id(raw: &Value) -> Option<String> {
    let id = match raw {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

fn activity_day(entry: &Value) -> Option<(LocalDate, i64)> {
    let date = LocalDate::parse(entry.get("date")?.as_str()?.trim()).ok()?;
    let steps = entry.get("steps")?.as_i64().filter(|s| *s >= 0)?;
    Some((date, steps))
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_QUOTA, fixture};
    use super::*;
    use crate::domain::UserId;
    use crate::providers::test_server::{Recorded, Reply, TestServer, pairs};
    use crate::testing::{FixedClock, InMemoryStore};

    const NOW: &str = "2026-12-03T12:00:00Z";

    fn client(base: &str) -> WithingsClient {
        let mut settings =
            WithingsSettings::new("client-1", SecretString::from("secret-1"), "https://api.example/webhooks/withings");
        settings.api_base = base.to_owned();
        settings.auth_url = format!("{base}/oauth2_user/authorize2");
        settings.notify_token = Some(SecretString::from("our-secret"));
        let clock = Arc::new(FixedClock::at(NOW));
        let quota =
            AppQuota::new("quota#withings", DEFAULT_QUOTA.to_vec(), Arc::new(InMemoryStore::default()), clock.clone());
        WithingsClient::new(settings, quota, clock).unwrap()
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: SecretString::from(access.to_owned()),
            refresh_token: Some(SecretString::from("refresh-1")),
            expires_at: "2026-12-03T15:00:00Z".parse().unwrap(),
            scope: Some("user.activity".into()),
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::Withings, NOW.parse().unwrap())
    }

    #[tokio::test]
    async fn the_exchange_names_the_account_that_identity_then_tells() {
        let server = TestServer::replying(Reply::json(200, fixture("token.json"))).await;
        let client = client(&server.base);
        let tokens = client.exchange_code("code-1", "", "https://api.example/oauth/withings/callback").await.unwrap();
        let answer: Value = serde_json::from_str(&fixture("token.json")).unwrap();
        let identity = client.identity(&tokens).await.unwrap();
        assert_eq!(Some(identity.account_id), account_id(&answer["body"]["userid"]));
        let form = server.requests()[0].form();
        assert_eq!((form["action"].as_str(), form["grant_type"].as_str()), ("requesttoken", "authorization_code"));
        assert_eq!(form["client_id"], "client-1");
        assert!(tokens.scope.unwrap().split(' ').any(|s| s == ACTIVITY_SCOPE));
        assert!(client.identity(&super::tests::tokens("unknown")).await.is_err(), "an access token it never saw");
    }

    #[tokio::test]
    async fn pages_of_activity_are_read_to_the_end_and_two_trackers_count_once() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("getactivity_page1.json")),
            Reply::json(200, fixture("getactivity_page2.json")),
        ])
        .await;
        let mut expected: BTreeMap<LocalDate, i64> = BTreeMap::new();
        for page in ["getactivity_page1.json", "getactivity_page2.json"] {
            let page: Value = serde_json::from_str(&fixture(page)).unwrap();
            for entry in page["body"]["activities"].as_array().unwrap() {
                let (date, steps) = activity_day(entry).unwrap();
                let day = expected.entry(date).or_insert(steps);
                *day = (*day).max(steps);
            }
        }
        let (first, last) = (*expected.keys().next().unwrap(), *expected.keys().last().unwrap());
        let values = client(&server.base).daily_steps(&connection(), Some(&tokens("a")), first, last).await.unwrap();
        assert_eq!(values.iter().map(|v| (v.date, v.steps)).collect::<BTreeMap<_, _>>(), expected);
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let (one, two) = (requests[0].form(), requests[1].form());
        assert_eq!(one["action"], "getactivity");
        assert_eq!(one["startdateymd"], first.to_string());
        assert!(!one.contains_key("offset") && two.contains_key("offset"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer a"));
    }

    #[tokio::test]
    async fn withings_statuses_become_the_outcomes_the_engine_knows() {
        let error_for = |reply: Reply| async move {
            let server = TestServer::replying(reply).await;
            let date = LocalDate::parse("2026-12-01").unwrap();
            client(&server.base).daily_steps(&connection(), Some(&tokens("a")), date, date).await.unwrap_err()
        };
        assert!(matches!(error_for(Reply::json(200, fixture("error_401.json"))).await, ProviderError::Unauthorized));
        assert!(matches!(
            error_for(Reply::json(200, fixture("error_601.json"))).await,
            ProviderError::RateLimited { retry_after: Some(_) }
        ));
        assert!(matches!(error_for(Reply::json(200, r#"{"status":2555}"#)).await, ProviderError::Unavailable(_)));
        assert!(matches!(error_for(Reply::json(502, "")).await, ProviderError::Unavailable(_)));
        let server = TestServer::replying(Reply::json(200, fixture("token_invalid.json"))).await;
        assert!(matches!(client(&server.base).refresh(&tokens("a")).await, Err(ProviderError::InvalidGrant)));
    }

    #[tokio::test]
    async fn connecting_subscribes_and_disconnecting_unsubscribes_then_revokes_with_a_signed_nonce() {
        let server = TestServer::start(|request: &Recorded| {
            match (request.path.as_str(), request.form().get("action").map(String::as_str)) {
                ("/v2/signature", Some("getnonce")) => Reply::json(200, r#"{"status":0,"body":{"nonce":"nonce-1"}}"#),
                _ => Reply::json(200, r#"{"status":0,"body":{}}"#),
            }
        })
        .await;
        let client = client(&server.base);
        let identity = ProviderIdentity { account_id: "123".into(), legacy_account_id: None, time_zone: None };
        client.connected(&tokens("a"), &identity).await.unwrap();
        client.revoke_account(&tokens("a"), Some("123")).await.unwrap();
        let requests = server.requests();
        let forms: Vec<_> = requests.iter().map(Recorded::form).collect();
        assert_eq!(forms[0]["action"], "subscribe");
        assert_eq!(forms[0]["appli"], "16");
        let callback = Url::parse(&forms[0]["callbackurl"]).unwrap();
        assert_eq!(pairs(callback.query().unwrap())["token"], "our-secret");
        assert_eq!(forms[1]["action"], "revoke");
        assert_eq!(requests[1].path, "/notify");
        assert_eq!(forms[2]["action"], "getnonce");
        assert_eq!(forms[2]["signature"], client.hmac_hex(&["getnonce", "client-1", &forms[2]["timestamp"]]));
        assert_eq!(forms[3]["action"], "revoke");
        assert_eq!(requests[3].path, "/v2/oauth2");
        assert_eq!(forms[3]["userid"], "123");
        assert_eq!(forms[3]["signature"], client.hmac_hex(&["revoke", "client-1", "nonce-1"]));
    }

    #[tokio::test]
    async fn the_check_finds_our_callback_among_the_listed_subscriptions() {
        let ours = client("http://unused").callback_url().unwrap();
        let listing = |callbacks: &[&str]| {
            let profiles: Vec<Value> = callbacks
                .iter()
                .map(|url| serde_json::json!({"appli": 16, "callbackurl": url, "comment": "StepSync"}))
                .collect();
            Reply::json(200, serde_json::json!({"status": 0, "body": {"profiles": profiles}}).to_string())
        };
        let server = TestServer::sequence(vec![
            listing(&[&ours]),
            listing(&["https://api.example/webhooks/withings?token=an-old-secret"]),
            listing(&[]),
            Reply::json(200, fixture("error_401.json")),
        ])
        .await;
        let client = client(&server.base);
        assert!(client.subscribed(&tokens("a")).await.unwrap());
        assert!(!client.subscribed(&tokens("a")).await.unwrap(), "a callback with another secret is not ours");
        assert!(!client.subscribed(&tokens("a")).await.unwrap());
        assert!(matches!(client.subscribed(&tokens("a")).await, Err(ProviderError::Unauthorized)));
        let form = server.requests()[0].form();
        assert_eq!((form["action"].as_str(), form["appli"].as_str()), ("list", "16"));
        assert_eq!(server.requests()[0].header("authorization"), Some("Bearer a"));
    }

    #[tokio::test]
    async fn withings_list_answer_is_read_as_published() {
        let server = TestServer::replying(Reply::json(200, fixture("notify_list.json"))).await;
        let mut settings = WithingsSettings::new(
            "client-1",
            SecretString::from("secret-1"),
            "https://stepsync.example/webhooks/withings",
        );
        settings.api_base = server.base.clone();
        settings.notify_token = Some(SecretString::from("fixture-webhook-token"));
        let clock = Arc::new(FixedClock::at(NOW));
        let quota = AppQuota::new("q", DEFAULT_QUOTA.to_vec(), Arc::new(InMemoryStore::default()), clock.clone());
        let client = WithingsClient::new(settings, quota, clock).unwrap();
        assert!(client.subscribed(&tokens("a")).await.unwrap());
    }

    #[test]
    fn signatures_match_the_known_answers() {
        for name in ["signature_getnonce.json", "signature_revoke.json"] {
            let known: Value = serde_json::from_str(&fixture(name)).unwrap();
            let mut settings = WithingsSettings::new(
                known["values"]["client_id"].as_str().unwrap(),
                SecretString::from(known["client_secret"].as_str().unwrap().to_owned()),
                "https://x/webhooks/withings",
            );
            settings.api_base = "https://withings.test".into();
            let clock = Arc::new(FixedClock::at(NOW));
            let quota = AppQuota::new("q", vec![], Arc::new(InMemoryStore::default()), clock.clone());
            let client = WithingsClient::new(settings, quota, clock).unwrap();
            let values = &known["values"];
            let third = values.get("timestamp").or_else(|| values.get("nonce")).unwrap();
            let third = third.as_str().map(str::to_owned).unwrap_or_else(|| third.to_string());
            let signed =
                client.hmac_hex(&[values["action"].as_str().unwrap(), values["client_id"].as_str().unwrap(), &third]);
            assert_eq!(signed, known["signature"].as_str().unwrap(), "{name}");
        }
    }
}
