//! `GoogleHealthClient`: OAuth against Google's token endpoint, identity, the daily steps
//! roll-up and revocation, with Google's errors mapped to `ProviderError`. Webhooks are
//! `GoogleHealthWebhooks`' concern.

use super::wire::{CivilDate, CivilDateTime, int64};
use super::{ACTIVITY_SCOPE, GoogleHealthSettings, SETTINGS_SCOPE, SetupError, http_client, parse_url};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, Revoker, StepSource};
use crate::providers::day_ranges;
use crate::providers::http::{Answer, HttpFailure, answered, error_code, retry_after, send, unreadable};
use async_trait::async_trait;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The roll-up refuses longer ranges (`INVALID_ROLLUP_QUERY_DURATION`).
const MAX_DAYS_PER_ROLLUP: i32 = 90;
/// A guard against a server that never stops paging; 90 one-day windows need far fewer.
const MAX_PAGES_PER_ROLLUP: usize = 100;
/// No answer we read is anywhere near this; a larger one is not Google's.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Google's access tokens last an hour; used only if `expires_in` is missing.
const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 3600;

/// Every endpoint, parsed once.
#[derive(Debug)]
struct Endpoints {
    pub auth: Url,
    pub token: Url,
    pub revoke: Url,
    pub identity: Url,
    pub settings: Url,
    pub rollup: Url,
}

impl Endpoints {
    fn from_settings(settings: &GoogleHealthSettings) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        Ok(Self {
            auth: parse_url("auth_url", &settings.auth_url)?,
            token: parse_url("token_url", &settings.token_url)?,
            revoke: parse_url("revoke_url", &settings.revoke_url)?,
            identity: parse_url("api_base", &format!("{base}/v4/users/me/identity"))?,
            settings: parse_url("api_base", &format!("{base}/v4/users/me/settings"))?,
            rollup: parse_url("api_base", &format!("{base}/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp"))?,
        })
    }
}

/// The Google Health API adapter behind `StepSource`, `OAuthClient` and `Revoker`. Build it
/// once and share it: it holds one connection pool.
pub struct GoogleHealthClient {
    settings: GoogleHealthSettings,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl GoogleHealthClient {
    pub fn new(settings: GoogleHealthSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let endpoints = Endpoints::from_settings(&settings)?;
        let http = http_client(&settings)?;
        let client_secret = settings.client_secret.clone().ok_or(SetupError::NoClientSecret)?;
        Ok(Self { settings, client_secret, endpoints, http, clock })
    }

    /// Whether the person granted the activity scope (they can untick it on the consent page).
    pub fn has_required_scopes(&self, tokens: &TokenSet) -> bool {
        let granted = tokens.scope.as_deref().unwrap_or_default();
        self.required_scopes().iter().all(|needed| granted.split_whitespace().any(|scope| scope == *needed))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, ProviderError> {
        let request = self.http.post(self.endpoints.token.clone()).form(form);
        let body = self.call("token endpoint", request, oauth_error).await?;
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|_| unreadable("token endpoint"))?;
        if token.access_token.is_empty() {
            return Err(unreadable("token endpoint"));
        }
        Ok(token)
    }

    /// Sends a request and returns the body of a 2xx answer, or its error mapped by `refusal`
    /// (the OAuth endpoints and the Health API word their errors differently).
    async fn call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        refusal: fn(&str, &Answer, Option<Duration>) -> ProviderError,
    ) -> Result<Vec<u8>, ProviderError> {
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f))?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        Err(refusal(what, &answer, retry_after(&answer.headers, self.clock.now())))
    }

    fn token_set(&self, answer: TokenResponse, previous: Option<&TokenSet>) -> TokenSet {
        let lifetime = answer.expires_in.as_ref().and_then(int64).unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS).max(0);
        let now = self.clock.now();
        let expires_at = now.checked_add(jiff::SignedDuration::from_secs(lifetime)).unwrap_or(now);
        // Google rarely rotates refresh tokens: an answer without one keeps the old one.
        let refresh_token = answer
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .or_else(|| previous.and_then(|p| p.refresh_token.clone()));
        let scope = answer.scope.filter(|s| !s.is_empty()).or_else(|| previous.and_then(|p| p.scope.clone()));
        TokenSet { access_token: SecretString::from(answer.access_token), refresh_token, expires_at, scope }
    }

    /// Sends an authorized API request and returns the body of a 2xx answer.
    async fn api_call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        tokens: &TokenSet,
    ) -> Result<Vec<u8>, ProviderError> {
        self.call(what, request.bearer_auth(tokens.access_token.expose_secret()), api_error).await
    }

    /// One page of the roll-up for `start..=end` (at most 90 days).
    async fn rollup_page(
        &self,
        tokens: &TokenSet,
        start: LocalDate,
        end: LocalDate,
        page_token: Option<&str>,
    ) -> Result<RollupPage, ProviderError> {
        let mut body = serde_json::json!({
            "range": {
                "start": { "date": CivilDate::from_local(start).to_json() },
                // The API's end is exclusive.
                "end": { "date": CivilDate::from_local(end.add_days(1)).to_json() },
            },
            "windowSizeDays": 1,
        });
        if let Some(token) = page_token {
            body["pageToken"] = Value::from(token);
        }
        let request = self.http.post(self.endpoints.rollup.clone()).json(&body);
        let answer = self.api_call("daily roll-up", request, tokens).await?;
        serde_json::from_slice(&answer).map_err(|_| unreadable("daily roll-up"))
    }
}

#[async_trait]
impl OAuthClient for GoogleHealthClient {
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        if request.state.is_empty() || request.code_challenge.is_empty() || request.redirect_uri.is_empty() {
            return Err(ProviderError::BadRequest("state, code challenge and redirect URI are required".into()));
        }
        let mut url = self.endpoints.auth.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("response_type", "code")
            // The settings scope is optional: it tells the person's zone, the one Google's
            // civil dates are in; a person may untick it.
            .append_pair("scope", &format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}"))
            // Offline access plus a forced consent page: the only way to get a refresh token
            // again when the person reconnects.
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("state", &request.state)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    fn issuer(&self) -> Option<&str> {
        Some(super::ISSUER)
    }

    fn required_scopes(&self) -> &[&str] {
        &[ACTIVITY_SCOPE]
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let answer = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect_uri),
                ("client_id", &self.settings.client_id),
                ("client_secret", self.client_secret.expose_secret()),
            ])
            .await?;
        Ok(self.token_set(answer, None))
    }

    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        // Without a refresh token nothing can be renewed: only the person can fix that.
        let Some(refresh_token) = tokens.refresh_token.as_ref() else {
            return Err(ProviderError::InvalidGrant);
        };
        let answer = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
                ("client_id", &self.settings.client_id),
                ("client_secret", self.client_secret.expose_secret()),
            ])
            .await?;
        Ok(self.token_set(answer, Some(tokens)))
    }

    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let request = self.http.get(self.endpoints.identity.clone());
        let body = self.api_call("identity endpoint", request, tokens).await?;
        let identity: IdentityAnswer = serde_json::from_slice(&body).map_err(|_| unreadable("identity endpoint"))?;
        if identity.health_user_id.is_empty() {
            return Err(unreadable("identity endpoint"));
        }
        Ok(ProviderIdentity {
            account_id: identity.health_user_id,
            legacy_account_id: identity.legacy_user_id.filter(|id| !id.is_empty()),
            time_zone: self.time_zone(tokens).await,
        })
    }
}

impl GoogleHealthClient {
    /// The account's IANA zone from its settings, when the person granted the settings scope
    /// and the answer names a zone we know; otherwise `None` (the person's phone zone is used).
    async fn time_zone(&self, tokens: &TokenSet) -> Option<String> {
        let granted = tokens.scope.as_deref().is_some_and(|s| s.split(' ').any(|scope| scope == SETTINGS_SCOPE));
        if !granted {
            return None;
        }
        let request = self.http.get(self.endpoints.settings.clone());
        let answer = match self.api_call("settings endpoint", request, tokens).await {
            Ok(body) => serde_json::from_slice::<SettingsAnswer>(&body).ok(),
            Err(error) => {
                tracing::info!(%error, "time zone not read from the settings");
                None
            }
        };
        answer.and_then(|a| a.time_zone).filter(|zone| jiff::tz::TimeZone::get(zone).is_ok())
    }
}

#[async_trait]
impl StepSource for GoogleHealthClient {
    fn provider(&self) -> Provider {
        Provider::GoogleHealth
    }

    async fn daily_steps(
        &self,
        connection: &Connection,
        tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let tokens = tokens.ok_or(ProviderError::Unauthorized)?;
        tracing::debug!(user = %connection.user, %start, %end, "reading the google health daily roll-up");
        let mut days = BTreeMap::new();
        for (chunk_start, chunk_end) in day_ranges::chunks(start, end, MAX_DAYS_PER_ROLLUP) {
            let mut page_token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > MAX_PAGES_PER_ROLLUP {
                    return Err(ProviderError::Unavailable("the daily roll-up did not stop paging".into()));
                }
                let page = self.rollup_page(tokens, chunk_start, chunk_end, page_token.as_deref()).await?;
                for (date, steps) in page.rollup_data_points.iter().filter_map(rollup_point) {
                    if (chunk_start..=chunk_end).contains(&date) {
                        days.insert(date, steps);
                    }
                }
                match page.next_page_token.filter(|t| !t.is_empty()) {
                    Some(next) => page_token = Some(next),
                    None => break,
                }
            }
        }
        Ok(days.into_iter().map(|(date, steps)| DailyValue { date, steps, observed_at: None }).collect())
    }
}

#[async_trait]
impl Revoker for GoogleHealthClient {
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        let token = tokens.refresh_token.as_ref().unwrap_or(&tokens.access_token);
        let request = self.http.post(self.endpoints.revoke.clone()).form(&[("token", token.expose_secret())]);
        match self.call("revoke endpoint", request, oauth_error).await {
            // Already revoked or expired: the grant is gone, which is what was asked.
            Err(ProviderError::BadRequest(code)) if code == "invalid_token" => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// One roll-up point as (day, steps). A point whose date or count cannot be read is skipped
/// (logged), so one odd point never hides the other days.
fn rollup_point(point: &Value) -> Option<(LocalDate, i64)> {
    let parsed: RollupPoint = match serde_json::from_value(point.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            tracing::warn!("skipping a daily roll-up point of an unexpected shape");
            return None;
        }
    };
    let Some(date) = parsed.civil_start_time.and_then(|t| t.date.to_local()) else {
        tracing::warn!("skipping a daily roll-up point without a readable civil date");
        return None;
    };
    // No `steps` at all says nothing about the day; `steps: {}` is proto3 JSON for a zero count.
    let steps = match parsed.steps?.count_sum {
        None | Some(Value::Null) => 0,
        Some(count) => match int64(&count) {
            Some(steps) => steps,
            None => {
                tracing::warn!(%date, "skipping a daily roll-up point with an unreadable step count");
                return None;
            }
        },
    };
    Some((date, steps))
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsAnswer {
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityAnswer {
    #[serde(default)]
    health_user_id: String,
    #[serde(default)]
    legacy_user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollupPage {
    #[serde(default)]
    rollup_data_points: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollupPoint {
    #[serde(default)]
    civil_start_time: Option<CivilDateTime>,
    #[serde(default)]
    steps: Option<StepsRollup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepsRollup {
    #[serde(default)]
    count_sum: Option<Value>,
}

/// The OAuth endpoints' error body: `{"error": "invalid_grant", "error_description": ...}`.
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
}

/// The Health API's error body: `{"error": {"code", "status", "message", "details": [...]}}`.
#[derive(Deserialize)]
struct ApiErrorBody {
    error: ApiErrorDetail,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

/// Google is alive: a refused connection is one more passing failure to connect.
fn unavailable(what: &str, failure: HttpFailure) -> ProviderError {
    crate::providers::http::unavailable(what, failure.refused_as_connect())
}

fn oauth_error(what: &str, answer: &Answer, wait: Option<Duration>) -> ProviderError {
    let status = answer.status;
    let code = serde_json::from_slice::<OAuthErrorBody>(&answer.body).ok().and_then(|b| error_code(&b.error));
    match (status.as_u16(), code.as_deref()) {
        (400..=499, Some("invalid_grant")) => ProviderError::InvalidGrant,
        (429, _) => ProviderError::RateLimited { retry_after: wait },
        (400..=499, _) => ProviderError::BadRequest(code.unwrap_or_else(|| status.as_u16().to_string())),
        _ => answered(what, status),
    }
}

fn api_error(what: &str, answer: &Answer, wait: Option<Duration>) -> ProviderError {
    let status = answer.status;
    let detail = serde_json::from_slice::<ApiErrorBody>(&answer.body).ok().map(|b| b.error);
    let reason = detail.as_ref().and_then(|d| {
        d.details.iter().find_map(|entry| entry.get("reason").and_then(Value::as_str).and_then(error_code))
    });
    let grpc_status = detail.as_ref().and_then(|d| d.status.as_deref().and_then(error_code));
    let explanation = || reason.clone().or_else(|| grpc_status.clone()).unwrap_or_else(|| status.as_u16().to_string());
    match status.as_u16() {
        401 => ProviderError::Unauthorized,
        // Gone: the API (or this version of it) no longer serves us; retrying cannot help.
        410 => ProviderError::Retired,
        403 if matches!(reason.as_deref(), Some("MISSING_OAUTH_SCOPE" | "ACCESS_TOKEN_SCOPE_INSUFFICIENT")) => {
            ProviderError::MissingScope { scope: ACTIVITY_SCOPE.to_owned() }
        }
        // Every other 403 is about the project (`SERVICE_DISABLED`, preview access, a scope
        // the project may not use): the person's grant is fine and reconnecting fixes nothing.
        403 => ProviderError::AppRefused { reason: explanation() },
        429 => ProviderError::RateLimited { retry_after: wait },
        400 if reason.as_deref() == Some("ACCOUNT_NOT_LINKED") => {
            ProviderError::ReconnectRequired { reason: explanation() }
        }
        400..=499 => ProviderError::BadRequest(explanation()),
        _ => answered(what, status),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::domain::UserId;
    use crate::providers::test_server::{Reply, TestServer};
    use crate::testing::FixedClock;

    const NOW: &str = "2026-11-25T12:00:00Z";

    fn settings(base: &str) -> GoogleHealthSettings {
        let mut settings =
            GoogleHealthSettings::new("client-1", SecretString::from("client-secret-1"), format!("{base}/keys"));
        settings.auth_url = format!("{base}/auth");
        settings.token_url = format!("{base}/token");
        settings.revoke_url = format!("{base}/revoke");
        settings.api_base = base.to_owned();
        settings.request_timeout = Duration::from_millis(500);
        settings
    }

    fn client(base: &str) -> GoogleHealthClient {
        GoogleHealthClient::new(settings(base), Arc::new(FixedClock::at(NOW))).unwrap()
    }

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: SecretString::from("ya29.access-old"),
            refresh_token: Some(SecretString::from("1//refresh-old")),
            expires_at: NOW.parse().unwrap(),
            scope: Some(ACTIVITY_SCOPE.to_owned()),
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::GoogleHealth, NOW.parse().unwrap())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    /// A server that answers every request with one fixture body and status.
    async fn answering(status: u16, body: String) -> TestServer {
        TestServer::replying(Reply::json(status, body)).await
    }

    #[test]
    fn the_authorize_url_asks_for_offline_access_with_pkce_and_the_activity_scope() {
        let client = client("http://127.0.0.1:9");
        let request = AuthorizeRequest {
            state: "state-1".into(),
            code_challenge: "challenge-1".into(),
            redirect_uri: "https://app.example/callback?x=1&y=2".into(),
        };
        let url = Url::parse(&client.authorize_url(&request).unwrap()).unwrap();
        assert_eq!(url.path(), "/auth");
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["redirect_uri"], "https://app.example/callback?x=1&y=2");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["scope"], format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}"), "settings only for the zone");
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["prompt"], "consent");
        assert_eq!(query["state"], "state-1");
        assert_eq!(query["code_challenge"], "challenge-1");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(client.required_scopes(), &[ACTIVITY_SCOPE]);
    }

    #[test]
    fn the_real_google_endpoints_are_the_defaults_and_bad_urls_are_refused() {
        let settings = GoogleHealthSettings::new("id", SecretString::from("secret"), "https://keys.example/keyset");
        let client = GoogleHealthClient::new(settings.clone(), Arc::new(FixedClock::at(NOW))).unwrap();
        assert_eq!(client.endpoints.token.as_str(), "https://oauth2.googleapis.com/token");
        assert_eq!(
            client.endpoints.rollup.as_str(),
            "https://health.googleapis.com/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp"
        );
        let broken = GoogleHealthSettings { token_url: "not a url".into(), ..settings };
        let err = GoogleHealthClient::new(broken, Arc::new(FixedClock::at(NOW))).err().unwrap();
        assert!(matches!(err, SetupError::InvalidUrl { name: "token_url" }));
    }

    #[tokio::test]
    async fn a_code_exchange_posts_the_pkce_verifier_and_keeps_the_granted_scope() {
        let server = answering(200, fixture("token_code_exchange.json")).await;
        let client = client(&server.base);
        let tokens = client.exchange_code("code-1", "verifier-1", "https://app.example/callback").await.unwrap();

        assert_eq!(tokens.access_token.expose_secret(), "ya29.fixture-access-1");
        assert_eq!(tokens.refresh_token.as_ref().unwrap().expose_secret(), "1//fixture-refresh-1");
        assert_eq!(tokens.expires_at, "2026-11-25T12:59:59Z".parse().unwrap());
        assert_eq!(tokens.scope.as_deref(), Some(ACTIVITY_SCOPE));
        assert!(client.has_required_scopes(&tokens));

        let sent = server.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/token"));
        let form = sent[0].form();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "code-1");
        assert_eq!(form["code_verifier"], "verifier-1");
        assert_eq!(form["redirect_uri"], "https://app.example/callback");
        assert_eq!(form["client_id"], "client-1");
        assert_eq!(form["client_secret"], "client-secret-1");
    }

    #[tokio::test]
    async fn an_unticked_activity_scope_shows_in_the_token_set() {
        let server = answering(200, fixture("token_code_exchange_scope_unticked.json")).await;
        let client = client(&server.base);
        let tokens = client.exchange_code("code-2", "verifier-2", "https://app.example/callback").await.unwrap();
        assert_eq!(tokens.scope.as_deref(), Some("openid"));
        assert!(!client.has_required_scopes(&tokens));
    }

    #[tokio::test]
    async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
        let server = answering(200, fixture("token_refresh.json")).await;
        let client = client(&server.base);
        let renewed = client.refresh(&tokens()).await.unwrap();

        assert_eq!(renewed.access_token.expose_secret(), "ya29.fixture-access-3");
        assert_eq!(renewed.refresh_token.as_ref().unwrap().expose_secret(), "1//refresh-old");
        assert_eq!(renewed.expires_at, "2026-11-25T12:59:59Z".parse().unwrap());
        let form = server.requests()[0].form();
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "1//refresh-old");
        assert_eq!(form["client_secret"], "client-secret-1");
    }

    #[tokio::test]
    async fn a_refused_refresh_token_is_an_invalid_grant() {
        let server = answering(400, fixture("token_invalid_grant.json")).await;
        let err = client(&server.base).refresh(&tokens()).await.unwrap_err();
        assert!(matches!(err, ProviderError::InvalidGrant), "{err:?}");
    }

    #[tokio::test]
    async fn token_endpoint_failures_say_whether_a_retry_can_help() {
        let server = TestServer::start(|request| match request.body_text().contains("code=busy") {
            true => Reply::json(429, "{}").with_header("retry-after", "30"),
            false => Reply::json(401, r#"{"error":"invalid_client"}"#),
        })
        .await;
        let client = client(&server.base);
        let busy = client.exchange_code("busy", "v", "https://app.example/cb").await.unwrap_err();
        assert!(matches!(busy, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)));
        let refused = client.exchange_code("other", "v", "https://app.example/cb").await.unwrap_err();
        assert!(matches!(&refused, ProviderError::BadRequest(code) if code == "invalid_client"), "{refused:?}");

        let down = answering(503, "<html>down</html>".into()).await;
        let err = self::client(&down.base).refresh(&tokens()).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unavailable(_)) && err.is_retryable());
    }

    #[tokio::test]
    async fn identity_returns_the_health_user_id_and_the_legacy_fitbit_id() {
        let server = answering(200, fixture("identity.json")).await;
        let identity = client(&server.base).identity(&tokens()).await.unwrap();
        assert_eq!(
            identity,
            ProviderIdentity {
                account_id: "114477889900112233445".into(),
                legacy_account_id: Some("228S74".into()),
                time_zone: None,
            }
        );
        let sent = server.requests();
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("GET", "/v4/users/me/identity"));
        assert_eq!(sent[0].header("authorization"), Some("Bearer ya29.access-old"));
    }

    /// With the settings scope granted the account's zone comes from its settings; without
    /// it, or with a zone we do not know, or when the settings fail, there is none (and no
    /// failure: the zone is optional).
    #[tokio::test]
    async fn the_settings_scope_tells_the_accounts_time_zone() {
        let server = TestServer::start(|request| match request.path.as_str() {
            "/v4/users/me/settings" => Reply::json(200, r#"{"name":"users/me/settings","timeZone":"America/Chicago"}"#),
            _ => Reply::json(200, r#"{"healthUserId":"42"}"#),
        })
        .await;
        let granted = TokenSet { scope: Some(format!("{ACTIVITY_SCOPE} {SETTINGS_SCOPE}")), ..tokens() };
        let identity = client(&server.base).identity(&granted).await.unwrap();
        assert_eq!(identity.time_zone.as_deref(), Some("America/Chicago"));
        assert_eq!(server.requests()[1].header("authorization"), Some("Bearer ya29.access-old"));

        let unticked = client(&server.base).identity(&tokens()).await.unwrap();
        assert_eq!(unticked.time_zone, None);
        assert_eq!(server.requests().len(), 3, "no settings call without the scope");

        let odd = TestServer::start(|request| match request.path.as_str() {
            "/v4/users/me/settings" => Reply::json(200, r#"{"timeZone":"Mars/Olympus"}"#),
            _ => Reply::json(200, r#"{"healthUserId":"42"}"#),
        })
        .await;
        assert_eq!(client(&odd.base).identity(&granted).await.unwrap().time_zone, None);
        let failing = TestServer::start(|request| match request.path.as_str() {
            "/v4/users/me/settings" => Reply::json(503, "{}"),
            _ => Reply::json(200, r#"{"healthUserId":"42"}"#),
        })
        .await;
        assert_eq!(client(&failing.base).identity(&granted).await.unwrap().account_id, "42");
    }

    /// A 410 from the Health API retires the connection (reconnect or another source), and a
    /// 429's `Retry-After` is honoured up to an hour.
    #[tokio::test]
    async fn gone_retires_and_a_long_retry_after_is_capped() {
        let gone = answering(410, r#"{"error":{"code":410,"status":"GONE","message":"gone"}}"#.into()).await;
        let err = client(&gone.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-11-24"), date("2026-11-24"))
            .await;
        assert!(matches!(err, Err(ProviderError::Retired)), "{err:?}");
        let slow = TestServer::replying(Reply::json(429, "{}").with_header("retry-after", "864000")).await;
        let err = client(&slow.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-11-24"), date("2026-11-24"))
            .await;
        let hour = std::time::Duration::from_secs(3600);
        assert!(matches!(err, Err(ProviderError::RateLimited { retry_after: Some(wait) }) if wait == hour), "{err:?}");
    }

    #[tokio::test]
    async fn an_empty_legacy_id_means_the_person_never_had_a_fitbit_account() {
        let server = answering(200, r#"{"healthUserId":"42","legacyUserId":""}"#.into()).await;
        let identity = client(&server.base).identity(&tokens()).await.unwrap();
        assert_eq!(identity.account_id, "42");
        assert_eq!(identity.legacy_account_id, None);
    }

    #[tokio::test]
    async fn daily_steps_follow_the_page_token_and_keep_missing_days_absent() {
        let server = TestServer::start(|request| match request.json()["pageToken"].as_str() {
            None => Reply::json(200, fixture("daily_rollup.json")),
            Some("CgwIABIIMjAyNi0xMS0yNQ") => Reply::json(200, fixture("daily_rollup_page2.json")),
            Some(_) => Reply::json(400, fixture("error_400_range.json")),
        })
        .await;
        let values = client(&server.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-11-20"), date("2026-11-26"))
            .await
            .unwrap();

        let days: Vec<(String, i64)> = values.iter().map(|v| (v.date.to_string(), v.steps)).collect();
        assert_eq!(
            days,
            [
                ("2026-11-21".to_owned(), 11873),
                ("2026-11-22".to_owned(), 6240),
                ("2026-11-23".to_owned(), 0),
                ("2026-11-24".to_owned(), 0),
                ("2026-11-25".to_owned(), 4310),
            ]
        );
        assert!(values.iter().all(|v| v.observed_at.is_none()));

        let sent = server.requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].path, "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp");
        assert_eq!(sent[0].header("authorization"), Some("Bearer ya29.access-old"));
        let range = serde_json::json!({
            "start": {"date": {"year": 2026, "month": 11, "day": 20}},
            "end": {"date": {"year": 2026, "month": 11, "day": 27}},
        });
        assert_eq!(sent[0].json(), serde_json::json!({"range": range, "windowSizeDays": 1}));
        assert_eq!(
            sent[1].json(),
            serde_json::json!({"range": range, "windowSizeDays": 1, "pageToken": "CgwIABIIMjAyNi0xMS0yNQ"})
        );
    }

    #[tokio::test]
    async fn ranges_longer_than_ninety_days_are_read_in_chunks() {
        let server = answering(200, r#"{"rollupDataPoints": []}"#.into()).await;
        let values = client(&server.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-01-01"), date("2026-04-10"))
            .await
            .unwrap();
        assert!(values.is_empty());
        let ranges: Vec<Value> = server.requests().iter().map(|r| r.json()["range"].clone()).collect();
        assert_eq!(
            ranges,
            [
                serde_json::json!({"start": {"date": {"year": 2026, "month": 1, "day": 1}}, "end": {"date": {"year": 2026, "month": 4, "day": 1}}}),
                serde_json::json!({"start": {"date": {"year": 2026, "month": 4, "day": 1}}, "end": {"date": {"year": 2026, "month": 4, "day": 11}}}),
            ]
        );
    }

    #[tokio::test]
    async fn daily_steps_without_tokens_are_unauthorized_and_ask_nothing() {
        let server = answering(200, fixture("daily_rollup_page2.json")).await;
        let err = client(&server.base).daily_steps(&connection(), None, date("2026-11-25"), date("2026-11-25")).await;
        assert!(matches!(err, Err(ProviderError::Unauthorized)));
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn odd_roll_up_points_are_skipped_and_points_outside_the_range_ignored() {
        let body = r#"{"rollupDataPoints": [
            {"civilStartTime": {"date": {"year": 2026, "month": 11, "day": 21}}, "steps": {"countSum": "many"}},
            {"civilStartTime": {"date": {"year": 2026, "month": 11}}, "steps": {"countSum": "5"}},
            {"civilStartTime": {"date": {"year": 2026, "month": 11, "day": 22}}},
            {"civilStartTime": {"date": {"year": 2026, "month": 11, "day": 23}}, "steps": {"countSum": "77"}},
            {"civilStartTime": {"date": {"year": 2026, "month": 12, "day": 1}}, "steps": {"countSum": "9"}},
            "not a point"
        ]}"#;
        let server = answering(200, body.into()).await;
        let values = client(&server.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-11-21"), date("2026-11-23"))
            .await
            .unwrap();
        assert_eq!(values, [DailyValue { date: date("2026-11-23"), steps: 77, observed_at: None }]);
    }

    async fn rollup_error(reply: Reply) -> ProviderError {
        let server = TestServer::replying(reply).await;
        client(&server.base)
            .daily_steps(&connection(), Some(&tokens()), date("2026-11-25"), date("2026-11-25"))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn api_errors_map_to_what_the_engine_should_do() {
        let err = rollup_error(Reply::json(401, fixture("error_401.json"))).await;
        assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");

        let err = rollup_error(Reply::json(403, fixture("error_403_missing_scope.json"))).await;
        assert!(matches!(&err, ProviderError::MissingScope { scope } if scope == ACTIVITY_SCOPE), "{err:?}");

        let err = rollup_error(Reply::json(403, r#"{"error":{"code":403,"status":"PERMISSION_DENIED"}}"#)).await;
        assert!(matches!(&err, ProviderError::AppRefused { reason } if reason == "PERMISSION_DENIED"), "{err:?}");
        let err = rollup_error(Reply::json(403, fixture("error_403_service_disabled.json"))).await;
        assert!(matches!(&err, ProviderError::AppRefused { reason } if reason == "SERVICE_DISABLED"), "{err:?}");
        let body = r#"{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;
        let err = rollup_error(Reply::json(403, body)).await;
        assert!(matches!(&err, ProviderError::MissingScope { .. }), "{err:?}");

        let err = rollup_error(Reply::json(400, fixture("error_400_range.json"))).await;
        assert!(matches!(&err, ProviderError::BadRequest(r) if r == "INVALID_ROLLUP_QUERY_DURATION"), "{err:?}");

        let not_linked =
            r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"ACCOUNT_NOT_LINKED"}]}}"#;
        let err = rollup_error(Reply::json(400, not_linked)).await;
        assert!(
            matches!(&err, ProviderError::ReconnectRequired { reason } if reason == "ACCOUNT_NOT_LINKED"),
            "{err:?}"
        );

        let err = rollup_error(Reply::json(500, "oops")).await;
        assert!(matches!(&err, ProviderError::Unavailable(m) if m == "the daily roll-up answered 500"), "{err:?}");
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after_only_when_google_sends_it() {
        let err = rollup_error(Reply::json(429, fixture("error_429.json"))).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: None }), "{err:?}");

        let err = rollup_error(Reply::json(429, fixture("error_429.json")).with_header("Retry-After", "12")).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(12)));

        let dated =
            Reply::json(429, fixture("error_429.json")).with_header("Retry-After", "Wed, 25 Nov 2026 12:02:00 GMT");
        let err = rollup_error(dated).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)));
    }

    #[tokio::test]
    async fn errors_never_echo_what_the_body_says() {
        let leaky =
            r#"{"error":{"code":400,"status":"bad token ya29.access-old","details":[{"reason":"ya29.access-old!"}]}}"#;
        let err = rollup_error(Reply::json(400, leaky)).await;
        assert!(matches!(&err, ProviderError::BadRequest(r) if r == "400"), "{err:?}");
        assert!(!format!("{err:?} {err}").contains("ya29"));
    }

    #[tokio::test]
    async fn slow_and_unreachable_servers_are_unavailable_and_retryable() {
        let slow = TestServer::start(|_| Reply::json(200, "{}").after(Duration::from_secs(2))).await;
        let err = client(&slow.base).identity(&tokens()).await.unwrap_err();
        assert!(matches!(&err, ProviderError::Unavailable(m) if m == "the identity endpoint timed out"), "{err:?}");

        let closed = TestServer::closed_port().await;
        let err = client(&closed).identity(&tokens()).await.unwrap_err();
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m == "the identity endpoint could not connect"),
            "{err:?}"
        );
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn revoke_sends_the_refresh_token_and_falls_back_to_the_access_token() {
        let server = answering(200, "{}".into()).await;
        let client = client(&server.base);
        client.revoke(&tokens()).await.unwrap();
        let access_only = TokenSet { refresh_token: None, ..tokens() };
        client.revoke(&access_only).await.unwrap();

        let sent = server.requests();
        assert_eq!(sent[0].path, "/revoke");
        assert_eq!(sent[0].form()["token"], "1//refresh-old");
        assert_eq!(sent[1].form()["token"], "ya29.access-old");
    }

    #[tokio::test]
    async fn revoking_an_already_revoked_token_is_not_an_error() {
        let server =
            answering(400, r#"{"error":"invalid_token","error_description":"Token expired or revoked"}"#.into()).await;
        assert!(client(&server.base).revoke(&tokens()).await.is_ok());
        let down = answering(503, String::new()).await;
        assert!(matches!(client(&down.base).revoke(&tokens()).await, Err(ProviderError::Unavailable(_))));
    }
}
