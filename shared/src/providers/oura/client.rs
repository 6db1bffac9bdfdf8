//! `OuraClient`: OAuth against Oura's token endpoint (refresh tokens are single-use: each
//! refresh answers a new one, which replaces the old), the personal info as identity, daily
//! activity read page by page, and revocation; Oura's errors mapped to `ProviderError`. Every
//! request first takes from the app-wide budget.

use super::{DAILY_SCOPE, OuraSettings, SetupError, client_secret, http_client, parse_url};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, Revoker, StepSource};
use crate::providers::day_ranges;
use crate::providers::http::{Answer, answered, error_code, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use jiff::SignedDuration;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Oura publishes no range limit for daily collections; a month per request keeps pages few
/// and answers small.
const MAX_DAYS_PER_REQUEST: i32 = 31;
/// A month of days is one or two pages; more than this is a server looping its `next_token`.
const MAX_PAGES: usize = 20;
const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Ids end up in store keys.
const MAX_ACCOUNT_ID_LEN: usize = 128;
/// Oura's access tokens last a day; an answer without `expires_in` is given this.
const DEFAULT_EXPIRES_IN: i64 = 86_400;

#[derive(Debug)]
struct Endpoints {
    authorize: Url,
    token: Url,
    revoke: Url,
    personal_info: Url,
    daily_activity: Url,
}

impl Endpoints {
    fn from_settings(settings: &OuraSettings) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        let api = |path: &str| parse_url("api_base", &format!("{base}{path}"));
        Ok(Self {
            authorize: parse_url("auth_url", &settings.auth_url)?,
            token: parse_url("token_url", &settings.token_url)?,
            revoke: parse_url("revoke_url", &settings.revoke_url)?,
            personal_info: api("/v2/usercollection/personal_info")?,
            daily_activity: api("/v2/usercollection/daily_activity")?,
        })
    }
}

/// The Oura adapter behind `StepSource`, `OAuthClient` and `Revoker`. Build it once and share
/// it: it holds one connection pool.
pub struct OuraClient {
    settings: OuraSettings,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    quota: AppQuota,
    clock: Arc<dyn Clock>,
}

impl OuraClient {
    pub fn new(settings: OuraSettings, quota: AppQuota, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        check_scopes(&settings.scopes)?;
        let endpoints = Endpoints::from_settings(&settings)?;
        let http = http_client(&settings)?;
        let client_secret = client_secret(&settings)?;
        Ok(Self { settings, client_secret, endpoints, http, quota, clock })
    }

    /// Takes from the budget, sends, and returns the body of a 2xx answer or the failure mapped.
    async fn call(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, ProviderError> {
        self.quota.take().await?;
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        Err(api_error(what, &answer, self.clock.now()))
    }

    async fn authorized<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        tokens: &TokenSet,
    ) -> Result<T, ProviderError> {
        let body = self.call(what, request.bearer_auth(tokens.access_token.expose_secret())).await?;
        serde_json::from_slice(&body).map_err(|_| unreadable(what))
    }

    /// One token request: the grant's fields and the app's credentials, as a form.
    async fn token_request(&self, what: &str, grant: &[(&str, &str)]) -> Result<TokenAnswer, ProviderError> {
        let mut form = grant.to_vec();
        form.push(("client_id", self.settings.client_id.as_str()));
        form.push(("client_secret", self.client_secret.expose_secret()));
        let body = self.call(what, self.http.post(self.endpoints.token.clone()).form(&form)).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| unreadable(what))?;
        if answer.access_token.is_empty() {
            return Err(unreadable(what));
        }
        Ok(answer)
    }

    fn token_set(&self, answer: TokenAnswer, previous: Option<&TokenSet>) -> TokenSet {
        let now = self.clock.now();
        let lifetime = answer.expires_in.filter(|secs| *secs > 0).unwrap_or(DEFAULT_EXPIRES_IN);
        let scope = answer
            .scope
            .map(|s| s.split([' ', ',', '+']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .or_else(|| previous.and_then(|p| p.scope.clone()))
            .unwrap_or_else(|| self.settings.scopes.join(" "));
        TokenSet {
            access_token: SecretString::from(answer.access_token),
            // Single-use refresh tokens: the new one replaces the old, which Oura now refuses.
            refresh_token: answer
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from)
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: now.checked_add(SignedDuration::from_secs(lifetime)).unwrap_or(now),
            scope: Some(scope),
        }
    }

    /// The days of `start..=end` (at most a month), every page of them.
    async fn activity_chunk(
        &self,
        tokens: &TokenSet,
        start: LocalDate,
        end: LocalDate,
        days: &mut BTreeMap<LocalDate, i64>,
    ) -> Result<(), ProviderError> {
        // `end_date` is asked one day later and the answer kept to `start..=end`: right whether
        // Oura reads the end as inclusive or not.
        let (start_text, end_text) = (start.to_string(), end.add_days(1).to_string());
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("start_date", start_text.as_str()), ("end_date", end_text.as_str())];
            if let Some(token) = next_token.as_deref() {
                query.push(("next_token", token));
            }
            let request = self.http.get(self.endpoints.daily_activity.clone()).query(&query);
            let page: ActivityPage = self.authorized("daily activity", request, tokens).await?;
            let mut skipped = 0;
            for entry in &page.data {
                match activity_day(entry) {
                    Some((date, steps)) if (start..=end).contains(&date) => {
                        days.insert(date, steps);
                    }
                    Some(_) => {}
                    None => skipped += 1,
                }
            }
            if skipped > 0 {
                tracing::warn!(
                    skipped,
                    "oura: daily activity entries without a readable day or step count were skipped"
                );
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) if Some(&token) != next_token.as_ref() => next_token = Some(token),
                Some(_) => return Err(ProviderError::Unavailable("oura repeated its next_token".into())),
                None => return Ok(()),
            }
        }
        Err(ProviderError::Unavailable(format!("oura's daily activity ran past {MAX_PAGES} pages")))
    }
}

fn check_scopes(scopes: &[String]) -> Result<(), SetupError> {
    let plain = scopes.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace));
    if !plain {
        return Err(SetupError::InvalidSetting { name: "scopes", why: "each scope must be one word" });
    }
    if !scopes.iter().any(|s| s == DAILY_SCOPE) {
        return Err(SetupError::InvalidSetting { name: "scopes", why: "the daily scope is needed for steps" });
    }
    Ok(())
}

#[async_trait]
impl OAuthClient for OuraClient {
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        if request.state.is_empty() || request.redirect_uri.is_empty() {
            return Err(ProviderError::BadRequest("state and redirect URI are required".into()));
        }
        let mut url = self.endpoints.authorize.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", &request.redirect_uri)
                .append_pair("scope", &self.settings.scopes.join(" "))
                .append_pair("state", &request.state);
            // Oura documents no PKCE; a server that honours it gets the verifier at the exchange.
            if !request.code_challenge.is_empty() {
                query
                    .append_pair("code_challenge", &request.code_challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url.into())
    }

    fn required_scopes(&self) -> &[&str] {
        &[DAILY_SCOPE]
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let mut grant = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if !verifier.is_empty() {
            grant.push(("code_verifier", verifier));
        }
        let answer = self.token_request("token exchange", &grant).await?;
        Ok(self.token_set(answer, None))
    }

    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        let refresh_token = tokens.refresh_token.as_ref().ok_or(ProviderError::InvalidGrant)?;
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        let answer = self.token_request("token refresh", &grant).await?;
        Ok(self.token_set(answer, Some(tokens)))
    }

    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let request = self.http.get(self.endpoints.personal_info.clone());
        let info: PersonalInfo = self.authorized("personal info", request, tokens).await?;
        let account_id = info.id.as_ref().and_then(account_id).ok_or_else(|| unreadable("personal info"))?;
        // Oura tells no time zone; each day's own `day` is already the person's local date.
        Ok(ProviderIdentity { account_id, legacy_account_id: None, time_zone: None })
    }
}

#[async_trait]
impl Revoker for OuraClient {
    /// Oura's revoke takes the access token in the query; it ends the whole grant.
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        let request = self
            .http
            .get(self.endpoints.revoke.clone())
            .query(&[("access_token", tokens.access_token.expose_secret())]);
        self.call("revoke endpoint", request).await.map(|_| ())
    }
}

#[async_trait]
impl StepSource for OuraClient {
    fn provider(&self) -> Provider {
        Provider::Oura
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
struct TokenAnswer {
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
struct PersonalInfo {
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
struct ActivityPage {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(default)]
    next_token: Option<String>,
}

/// An id as a string, fit for a store key.
fn account_id(raw: &Value) -> Option<String> {
    let id = raw.as_str()?.trim().to_owned();
    let usable =
        !id.is_empty() && id.len() <= MAX_ACCOUNT_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    usable.then_some(id)
}

/// One daily activity's `day` and `steps`; `None` when either is unreadable or negative.
fn activity_day(entry: &Value) -> Option<(LocalDate, i64)> {
    let date = LocalDate::parse(entry.get("day")?.as_str()?.trim()).ok()?;
    let steps = entry.get("steps")?.as_i64().filter(|s| *s >= 0)?;
    Some((date, steps))
}

/// Oura's error bodies: `{"detail": ...}` for the API, `{"error": ...}` for OAuth. Only a
/// code-like value is ever echoed.
fn body_error_code(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    body.get("error").and_then(Value::as_str).and_then(error_code)
}

/// Whether an error body's `title` or `detail` speaks of scopes (Oura's "Missing Scopes").
fn mentions_scope(body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<Value>(body) else { return false };
    ["title", "detail"]
        .iter()
        .filter_map(|field| body.get(field).and_then(Value::as_str))
        .any(|text| text.to_ascii_lowercase().contains("scope"))
}

fn api_error(what: &str, answer: &Answer, now: jiff::Timestamp) -> ProviderError {
    let status = answer.status.as_u16();
    let code = body_error_code(&answer.body);
    match (status, code.as_deref()) {
        (400 | 401, Some("invalid_grant")) => ProviderError::InvalidGrant,
        // Our client id or secret refused: no person can fix that.
        (400 | 401, Some("invalid_client" | "unauthorized_client")) => {
            ProviderError::AppRefused { reason: format!("the {what} refused our client credentials") }
        }
        // A grant without the daily scope is refused as "Missing Scopes": no refresh adds it.
        (401, _) if mentions_scope(&answer.body) => ProviderError::MissingScope { scope: DAILY_SCOPE.to_owned() },
        (401, _) => ProviderError::Unauthorized,
        // Oura answers 403 when the person did not share the data type (or their membership
        // no longer covers API access): only they can change it.
        (403, _) => ProviderError::MissingScope { scope: DAILY_SCOPE.to_owned() },
        (429, _) => ProviderError::RateLimited { retry_after: retry_after(&answer.headers, now) },
        (400..=499, code) => ProviderError::BadRequest(code.map_or_else(|| status.to_string(), str::to_owned)),
        _ => answered(what, answer.status),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_QUOTA, fixture};
    use super::*;
    use crate::domain::UserId;
    use crate::providers::quota::QuotaWindow;
    use crate::providers::test_server::{Reply, TestServer, pairs};
    use crate::testing::{FixedClock, InMemoryStore};
    use std::time::Duration;

    const NOW: &str = "2026-12-03T12:00:00Z";

    fn settings(base: &str) -> OuraSettings {
        let mut settings =
            OuraSettings::new("client-1", SecretString::from("client-secret-1"), "https://api.example/webhooks/oura");
        settings.auth_url = format!("{base}/oauth/authorize");
        settings.token_url = format!("{base}/oauth/token");
        settings.revoke_url = format!("{base}/oauth/revoke");
        settings.api_base = base.to_owned();
        settings.request_timeout = Duration::from_millis(500);
        settings
    }

    fn client_with_quota(base: &str, windows: Vec<QuotaWindow>) -> OuraClient {
        let clock = Arc::new(FixedClock::at(NOW));
        let quota = AppQuota::new("quota#oura", windows, Arc::new(InMemoryStore::default()), clock.clone());
        OuraClient::new(settings(base), quota, clock).unwrap()
    }

    fn client(base: &str) -> OuraClient {
        client_with_quota(base, DEFAULT_QUOTA.to_vec())
    }

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: SecretString::from("oura-access-1"),
            refresh_token: Some(SecretString::from("oura-refresh-1")),
            expires_at: "2026-12-04T12:00:00Z".parse().unwrap(),
            scope: Some("daily personal".into()),
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::Oura, NOW.parse().unwrap())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    async fn error_for(reply: Reply) -> ProviderError {
        let server = TestServer::replying(reply).await;
        client(&server.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-12-01"), date("2026-12-02"))
            .await
            .unwrap_err()
    }

    #[test]
    fn the_authorize_url_asks_for_daily_and_personal_with_the_state() {
        let client = client("https://oura.test");
        let request = AuthorizeRequest {
            state: "state-1".into(),
            code_challenge: "challenge-1".into(),
            redirect_uri: "https://api.example/oauth/oura/callback".into(),
        };
        let url = Url::parse(&client.authorize_url(&request).unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        let query = pairs(url.query().unwrap());
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["scope"], "daily personal");
        assert_eq!(query["state"], "state-1");
        assert_eq!(query["redirect_uri"], "https://api.example/oauth/oura/callback");
        assert_eq!(client.required_scopes(), &["daily"]);
    }

    #[test]
    fn settings_without_the_daily_scope_are_refused() {
        let mut settings = settings("https://oura.test");
        settings.scopes = vec!["personal".into()];
        let clock = Arc::new(FixedClock::at(NOW));
        let quota = AppQuota::new("q", vec![], Arc::new(InMemoryStore::default()), clock.clone());
        assert!(matches!(OuraClient::new(settings, quota, clock), Err(SetupError::InvalidSetting { .. })));
    }

    #[tokio::test]
    async fn the_pages_of_daily_activity_are_read_to_the_end_and_kept_to_the_range() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("daily_activity_page1.json")),
            Reply::json(200, fixture("daily_activity_page2.json")),
        ])
        .await;
        let client = client(&server.base);
        let page1: Value = serde_json::from_str(&fixture("daily_activity_page1.json")).unwrap();
        let page2: Value = serde_json::from_str(&fixture("daily_activity_page2.json")).unwrap();
        let mut expected: BTreeMap<LocalDate, i64> = BTreeMap::new();
        for entry in page1["data"].as_array().unwrap().iter().chain(page2["data"].as_array().unwrap()) {
            let (day, steps) = activity_day(entry).unwrap();
            expected.insert(day, steps);
        }
        let (first, last) = (*expected.keys().next().unwrap(), *expected.keys().last().unwrap());
        let values = client.daily_steps(&connection(), Some(&tokens()), first, last).await.unwrap();
        let got: BTreeMap<LocalDate, i64> = values.iter().map(|v| (v.date, v.steps)).collect();
        assert_eq!(got, expected);
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].path, "/v2/usercollection/daily_activity");
        let query = pairs(&requests[0].query);
        assert_eq!(query["start_date"], first.to_string());
        assert_eq!(query["end_date"], last.add_days(1).to_string(), "asked one day past the end");
        assert!(!query.contains_key("next_token"));
        let token = page1["next_token"].as_str().unwrap();
        assert_eq!(pairs(&requests[1].query)["next_token"], token);
        assert_eq!(requests[0].header("authorization"), Some("Bearer oura-access-1"));
    }

    #[tokio::test]
    async fn oura_errors_become_the_outcomes_the_engine_knows() {
        assert!(matches!(error_for(Reply::json(401, fixture("error_401.json"))).await, ProviderError::Unauthorized));
        assert!(matches!(
            error_for(Reply::json(401, r#"{"status":401,"title":"Missing Scopes","detail":"daily"}"#)).await,
            ProviderError::MissingScope { .. }
        ));
        assert!(matches!(
            error_for(Reply::json(403, r#"{"detail":"forbidden"}"#)).await,
            ProviderError::MissingScope { .. }
        ));
        match error_for(Reply::json(429, fixture("error_429.json")).with_header("retry-after", "42")).await {
            ProviderError::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(42))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_for(Reply::json(503, "{}")).await, ProviderError::Unavailable(_)));
        assert!(matches!(error_for(Reply::json(400, r#"{"detail":"bad"}"#)).await, ProviderError::BadRequest(_)));
    }

    #[tokio::test]
    async fn a_refresh_stores_the_new_single_use_refresh_token_and_invalid_grant_is_reported() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("token.json")),
            Reply::json(400, fixture("token_invalid_grant.json")),
        ])
        .await;
        let client = client(&server.base);
        let answer: Value = serde_json::from_str(&fixture("token.json")).unwrap();
        let refreshed = client.refresh(&tokens()).await.unwrap();
        assert_eq!(refreshed.access_token.expose_secret(), answer["access_token"].as_str().unwrap());
        assert_eq!(
            refreshed.refresh_token.as_ref().unwrap().expose_secret(),
            answer["refresh_token"].as_str().unwrap(),
            "the old refresh token is spent"
        );
        let form = server.requests()[0].form();
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "oura-refresh-1");
        assert_eq!(form["client_id"], "client-1");
        assert!(matches!(client.refresh(&tokens()).await, Err(ProviderError::InvalidGrant)));
    }

    #[tokio::test]
    async fn identity_is_the_personal_info_id() {
        let server = TestServer::replying(Reply::json(200, fixture("personal_info.json"))).await;
        let info: Value = serde_json::from_str(&fixture("personal_info.json")).unwrap();
        let identity = client(&server.base).identity(&tokens()).await.unwrap();
        assert_eq!(identity.account_id, info["id"].as_str().unwrap());
        assert_eq!(identity.time_zone, None);
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_before_anything_is_sent() {
        let server = TestServer::replying(Reply::json(200, fixture("daily_activity_page2.json"))).await;
        let client = client_with_quota(&server.base, vec![QuotaWindow::per_minute(1)]);
        let (start, end) = (date("2026-12-01"), date("2026-12-02"));
        client.daily_steps(&connection(), Some(&tokens()), start, end).await.unwrap();
        let refused = client.daily_steps(&connection(), Some(&tokens()), start, end).await.unwrap_err();
        assert!(matches!(refused, ProviderError::RateLimited { retry_after: Some(_) }));
        assert_eq!(server.requests().len(), 1, "the second request never left");
    }
}
