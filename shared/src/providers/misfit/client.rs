//! `MisfitClient`: OAuth against Misfit's token exchange, the profile as identity and the
//! daily activity summaries, with Misfit's errors mapped to `ProviderError`, a dead API
//! included. Notifications are `MisfitWebhooks`' concern.

use super::rate_limit::rate_limit_wait;
use super::{MisfitSettings, SetupError, TRACKING_SCOPE, http_client};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, StepSource};
use crate::providers::day_ranges;
use crate::providers::http::{Answer, HttpFailure, answered, error_code, http_url, send, unavailable, unreadable};
use async_trait::async_trait;
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Misfit's documented limit per summary request did not survive; a month per request is
/// what its client libraries asked for, so longer ranges are read in 31-day chunks.
const MAX_DAYS_PER_SUMMARY: i32 = 31;
/// No answer we read is anywhere near this; a larger one is not Misfit's.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Misfit's tokens carry no expiry and cannot be refreshed: they last until refused, so the
/// stored expiry is far enough away never to trigger a refresh.
const TOKEN_LIFETIME_YEARS: i64 = 10;
/// Account ids end up in store keys; Misfit's are 24 hex characters.
const MAX_ACCOUNT_ID_LEN: usize = 128;

/// Every endpoint, parsed once.
#[derive(Debug)]
struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub profile: Url,
    pub summary: Url,
}

impl Endpoints {
    fn from_settings(settings: &MisfitSettings) -> Result<Self, SetupError> {
        let base = settings.base_url.trim_end_matches('/');
        let url = |path: &str| http_url(&format!("{base}{path}")).ok_or(SetupError::InvalidUrl { name: "base_url" });
        Ok(Self {
            authorize: url("/auth/dialog/authorize")?,
            token: url("/auth/tokens/exchange")?,
            profile: url("/move/resource/v1/user/me/profile")?,
            summary: url("/move/resource/v1/user/me/activity/summary")?,
        })
    }
}

/// The Misfit adapter behind `StepSource` and `OAuthClient`. Build it once and share it: it
/// holds one connection pool.
pub struct MisfitClient {
    settings: MisfitSettings,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl MisfitClient {
    pub fn new(settings: MisfitSettings, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        let endpoints = Endpoints::from_settings(&settings)?;
        check_scopes(&settings.scopes)?;
        // It does not follow redirects: one is read as the API moved away (see `api_error`).
        let http = http_client(&settings)?;
        let client_secret = settings.client_secret.clone().ok_or(SetupError::NoClientSecret)?;
        Ok(Self { settings, client_secret, endpoints, http, clock })
    }

    /// The scopes asked for, as the space-separated list `TokenSet::scope` holds.
    fn requested_scopes(&self) -> String {
        self.settings.scopes.join(" ")
    }

    /// Sends a request and returns the body of a 2xx answer, or its failure mapped.
    async fn call(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, ProviderError> {
        let answer = send(request, MAX_RESPONSE_BYTES).await.map_err(|f| transport_error(what, f))?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        Err(api_error(what, &answer, rate_limit_wait(&answer.headers, self.clock.now())))
    }

    async fn authorized_call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        tokens: &TokenSet,
    ) -> Result<T, ProviderError> {
        let body = self.call(what, request.bearer_auth(tokens.access_token.expose_secret())).await?;
        serde_json::from_slice(&body).map_err(|_| unreadable(what))
    }

    /// The days of one summary request, `start..=end` at most 31 days.
    async fn summary_chunk(
        &self,
        tokens: &TokenSet,
        start: LocalDate,
        end: LocalDate,
        days: &mut BTreeMap<LocalDate, i64>,
    ) -> Result<(), ProviderError> {
        let (start_text, end_text) = (start.to_string(), end.to_string());
        let request = self.http.get(self.endpoints.summary.clone()).query(&[
            ("start_date", start_text.as_str()),
            ("end_date", end_text.as_str()),
            ("detail", "true"),
        ]);
        let answer: SummaryAnswer = self.authorized_call("activity summary", request, tokens).await?;
        let entries = match answer.summary {
            Value::Array(entries) => entries,
            // Without `detail` Misfit answers one object for the whole range; tolerate it
            // when it names its date.
            entry @ Value::Object(_) => vec![entry],
            _ => Vec::new(),
        };
        let mut skipped = 0;
        for entry in &entries {
            match summary_day(entry) {
                Some((date, steps)) if (start..=end).contains(&date) => {
                    days.insert(date, steps);
                }
                Some(_) => {}
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "misfit: summary entries without a readable date or step count were skipped");
        }
        Ok(())
    }
}

fn check_scopes(scopes: &[String]) -> Result<(), SetupError> {
    let plain = scopes.iter().all(|s| !s.is_empty() && !s.contains(',') && !s.contains(char::is_whitespace));
    if !plain {
        return Err(SetupError::InvalidSetting { name: "scopes", why: "each scope must be one word" });
    }
    if !scopes.iter().any(|s| s == TRACKING_SCOPE) {
        return Err(SetupError::InvalidSetting { name: "scopes", why: "the tracking scope is needed for steps" });
    }
    Ok(())
}

#[async_trait]
impl OAuthClient for MisfitClient {
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
                .append_pair("scope", &self.settings.scopes.join(","))
                .append_pair("state", &request.state);
            // Misfit predates PKCE and ignores these; a server that honours them gets the
            // verifier at the exchange.
            if !request.code_challenge.is_empty() {
                query
                    .append_pair("code_challenge", &request.code_challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url.into())
    }

    fn required_scopes(&self) -> &[&str] {
        &[TRACKING_SCOPE]
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        if !verifier.is_empty() {
            form.push(("code_verifier", verifier));
        }
        let request = self.http.post(self.endpoints.token.clone()).form(&form);
        let body = self.call("token exchange", request).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| unreadable("token exchange"))?;
        if answer.access_token.is_empty() {
            return Err(unreadable("token exchange"));
        }
        let now = self.clock.now();
        // An `expires_in` is honoured should one ever come; without one the token lasts
        // until Misfit refuses it.
        let expires_at = match answer.expires_in.as_ref().and_then(Value::as_i64).filter(|secs| *secs > 0) {
            Some(secs) => now.checked_add(SignedDuration::from_secs(secs)).ok(),
            None => now
                .to_zoned_datetime(TimeZone::UTC)
                .checked_add(jiff::Span::new().years(TOKEN_LIFETIME_YEARS))
                .ok()
                .map(|at| at.timestamp()),
        }
        .unwrap_or(now);
        // Misfit's answer may name no scope: then it granted what was asked.
        let scope = answer
            .scope
            .map(|s| s.split([',', ' ']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.requested_scopes());
        Ok(TokenSet {
            access_token: SecretString::from(answer.access_token),
            refresh_token: None,
            expires_at,
            scope: Some(scope),
        })
    }

    /// Misfit has no refresh tokens: a refused token means the person reconnects.
    async fn refresh(&self, _tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::InvalidGrant)
    }

    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let request = self.http.get(self.endpoints.profile.clone());
        let profile: ProfileAnswer = self.authorized_call("profile", request, tokens).await?;
        let account_id =
            profile.user_id.as_ref().and_then(account_id).or_else(|| profile.id.as_ref().and_then(account_id));
        let account_id = account_id.ok_or_else(|| unreadable("profile"))?;
        Ok(ProviderIdentity { account_id, legacy_account_id: None, time_zone: None })
    }
}

#[async_trait]
impl StepSource for MisfitClient {
    fn provider(&self) -> Provider {
        Provider::Misfit
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
        for (chunk_start, chunk_end) in day_ranges::chunks(start, end, MAX_DAYS_PER_SUMMARY) {
            self.summary_chunk(tokens, chunk_start, chunk_end, &mut days).await?;
        }
        Ok(days.into_iter().map(|(date, steps)| DailyValue { date, steps, observed_at: None }).collect())
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ProfileAnswer {
    #[serde(default, rename = "userId")]
    user_id: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
struct SummaryAnswer {
    #[serde(default)]
    summary: Value,
}

/// An id as a string (or a number, tolerated); it must be fit for a store key.
fn account_id(raw: &Value) -> Option<String> {
    let id = match raw {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let usable =
        !id.is_empty() && id.len() <= MAX_ACCOUNT_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    usable.then_some(id)
}

/// One summary entry's date and steps; `None` when either is unreadable.
fn summary_day(entry: &Value) -> Option<(LocalDate, i64)> {
    let raw_date = entry.get("date")?.as_str()?.trim();
    // A date-time is tolerated: its date part is the day.
    let date = LocalDate::parse(raw_date.get(..10)?).ok()?;
    if raw_date.len() > 10 && !raw_date[10..].starts_with('T') {
        return None;
    }
    let steps = match entry.get("steps")? {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64))?
        }
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((date, steps))
}

/// A refused connection is the API switched off; any other transport failure may pass.
fn transport_error(what: &str, failure: HttpFailure) -> ProviderError {
    match failure {
        HttpFailure::Refused => ProviderError::Retired,
        _ => unavailable(what, failure),
    }
}

/// Misfit's error body: `{"error_code", "error_message"}` or `{"code", "message"}`. Only the
/// code is ever echoed, and only when it looks like one: messages can carry anything.
fn body_error_code(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let code = body.get("error_code").or_else(|| body.get("code"))?;
    match code {
        Value::String(s) => error_code(s),
        Value::Number(n) => error_code(&n.to_string()),
        _ => None,
    }
}

fn api_error(what: &str, answer: &Answer, wait: Option<std::time::Duration>) -> ProviderError {
    let status = answer.status;
    match status.as_u16() {
        401 => ProviderError::Unauthorized,
        // A resource that is gone, or moved for good, is the API switched off: the person
        // must choose another source rather than wait.
        301 | 308 | 404 | 410 => ProviderError::Retired,
        429 => ProviderError::RateLimited { retry_after: wait },
        400..=499 => {
            ProviderError::BadRequest(body_error_code(&answer.body).unwrap_or_else(|| status.as_u16().to_string()))
        }
        _ => answered(what, status),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_BASE_URL, fixture};
    use super::*;
    use crate::domain::UserId;
    use crate::providers::test_server::{Reply, TestServer, pairs};
    use crate::testing::FixedClock;
    use std::time::Duration;

    const NOW: &str = "2026-11-25T12:00:00Z";
    const ACCESS: &str = "misfit-access-old";

    fn settings(base: &str) -> MisfitSettings {
        let mut settings = MisfitSettings::new("client-1", SecretString::from("client-secret-1"));
        settings.base_url = base.to_owned();
        settings.request_timeout = Duration::from_millis(500);
        settings
    }

    fn client(base: &str) -> MisfitClient {
        MisfitClient::new(settings(base), Arc::new(FixedClock::at(NOW))).unwrap()
    }

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: SecretString::from(ACCESS),
            refresh_token: None,
            expires_at: "2036-11-25T12:00:00Z".parse().unwrap(),
            scope: Some("public birthday email tracking session sleeps".into()),
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::Misfit, NOW.parse().unwrap())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    async fn steps(client: &MisfitClient, start: &str, end: &str) -> Result<Vec<DailyValue>, ProviderError> {
        client.daily_steps(&connection(), Some(&tokens()), date(start), date(end)).await
    }

    /// The error one summary request ends in when the server answers `reply`.
    async fn summary_error(reply: Reply) -> ProviderError {
        let server = TestServer::replying(reply).await;
        steps(&client(&server.base), "2026-11-25", "2026-11-25").await.unwrap_err()
    }

    #[test]
    fn the_authorize_url_asks_for_the_comma_separated_scopes_with_the_state_and_a_harmless_pkce_challenge() {
        let client = client("https://misfit.test/");
        let request = AuthorizeRequest {
            state: "state-1".into(),
            code_challenge: "challenge-1".into(),
            redirect_uri: "https://app.example/oauth/misfit/callback?x=1&y=2".into(),
        };
        let url = Url::parse(&client.authorize_url(&request).unwrap()).unwrap();
        assert_eq!((url.host_str(), url.path()), (Some("misfit.test"), "/auth/dialog/authorize"));
        let query = pairs(url.query().unwrap());
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["redirect_uri"], "https://app.example/oauth/misfit/callback?x=1&y=2");
        assert_eq!(query["scope"], "public,birthday,email,tracking,session,sleeps");
        assert_eq!(query["state"], "state-1");
        assert_eq!(query["code_challenge"], "challenge-1");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(client.required_scopes(), &["tracking"]);

        let no_state = AuthorizeRequest { state: String::new(), ..request };
        assert!(matches!(client.authorize_url(&no_state), Err(ProviderError::BadRequest(_))));
    }

    #[test]
    fn the_real_misfit_api_is_the_default_and_unusable_settings_are_refused() {
        let defaults = MisfitSettings::new("id", SecretString::from("secret"));
        assert_eq!(defaults.base_url, DEFAULT_BASE_URL);
        assert!(defaults.allow_aws_sns_hosts && defaults.allowed_sns_hosts.is_empty());
        assert_eq!(defaults.max_body_bytes, 64 * 1024);
        let client = MisfitClient::new(defaults.clone(), Arc::new(FixedClock::at(NOW))).unwrap();
        assert_eq!(
            client.endpoints.summary.as_str(),
            "https://api.misfitwearables.com/move/resource/v1/user/me/activity/summary"
        );
        assert_eq!(client.endpoints.token.as_str(), "https://api.misfitwearables.com/auth/tokens/exchange");

        let clock = || Arc::new(FixedClock::at(NOW));
        let broken = MisfitSettings { base_url: "ftp://misfit.test".into(), ..defaults.clone() };
        assert!(matches!(MisfitClient::new(broken, clock()), Err(SetupError::InvalidUrl { name: "base_url" })));
        let no_tracking = MisfitSettings { scopes: vec!["public".into()], ..defaults.clone() };
        assert!(matches!(
            MisfitClient::new(no_tracking, clock()),
            Err(SetupError::InvalidSetting { name: "scopes", .. })
        ));
        let joined = MisfitSettings { scopes: vec!["public,tracking".into()], ..defaults };
        assert!(matches!(MisfitClient::new(joined, clock()), Err(SetupError::InvalidSetting { name: "scopes", .. })));
    }

    #[tokio::test]
    async fn a_code_exchange_posts_the_form_and_reads_a_token_without_scope_as_granted_as_requested() {
        let server = TestServer::answering(200, fixture("token.json")).await;
        let client = client(&server.base);
        let tokens = client.exchange_code("code-1", "verifier-1", "https://app.example/callback").await.unwrap();

        assert_eq!(tokens.access_token.expose_secret(), "fixture-misfit-access");
        assert!(tokens.refresh_token.is_none(), "Misfit has no refresh tokens");
        assert_eq!(tokens.expires_at, "2036-11-25T12:00:00Z".parse().unwrap(), "ten years on: until refused");
        assert_eq!(tokens.scope.as_deref(), Some("public birthday email tracking session sleeps"));
        let granted: Vec<&str> = tokens.scope.as_deref().unwrap().split_whitespace().collect();
        assert!(client.required_scopes().iter().all(|s| granted.contains(s)), "the caller's scope check passes");

        let sent = server.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/auth/tokens/exchange"));
        let form = sent[0].form();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "code-1");
        assert_eq!(form["redirect_uri"], "https://app.example/callback");
        assert_eq!(form["client_id"], "client-1");
        assert_eq!(form["client_secret"], "client-secret-1");
        assert_eq!(form["code_verifier"], "verifier-1");
    }

    #[tokio::test]
    async fn a_scope_the_token_answer_does_name_is_kept_with_commas_read_as_separators() {
        let server =
            TestServer::answering(200, r#"{"access_token":"a1","token_type":"bearer","scope":"public,email"}"#).await;
        let tokens = client(&server.base).exchange_code("c", "v", "https://app.example/cb").await.unwrap();
        assert_eq!(tokens.scope.as_deref(), Some("public email"), "tracking was not granted: the caller refuses");
    }

    #[tokio::test]
    async fn a_token_answer_without_an_access_token_is_unreadable() {
        let server = TestServer::answering(200, r#"{"token_type":"bearer"}"#).await;
        let err = client(&server.base).exchange_code("c", "v", "https://app.example/cb").await.unwrap_err();
        assert!(matches!(&err, ProviderError::Unavailable(m) if m == "the token exchange sent an unreadable answer"));
    }

    #[tokio::test]
    async fn refresh_is_an_invalid_grant_and_asks_nothing_because_misfit_cannot_refresh() {
        let server = TestServer::answering(200, fixture("token.json")).await;
        let err = client(&server.base).refresh(&tokens()).await.unwrap_err();
        assert!(matches!(err, ProviderError::InvalidGrant), "{err:?}");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn identity_is_the_profile_user_id_and_id_is_accepted_too() {
        let server =
            TestServer::answering(200, r#"{"userId":"51a4189acf12e53f80000001","email":"w@example.com"}"#).await;
        let identity = client(&server.base).identity(&tokens()).await.unwrap();
        assert_eq!(
            identity,
            ProviderIdentity {
                account_id: "51a4189acf12e53f80000001".into(),
                legacy_account_id: None,
                time_zone: None
            }
        );
        let sent = server.requests();
        assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("GET", "/move/resource/v1/user/me/profile"));
        assert_eq!(sent[0].header("authorization"), Some("Bearer misfit-access-old"));

        let server = TestServer::answering(200, r#"{"id":"51a4189acf12e53f80000002"}"#).await;
        assert_eq!(client(&server.base).identity(&tokens()).await.unwrap().account_id, "51a4189acf12e53f80000002");
    }

    #[tokio::test]
    async fn a_profile_without_a_usable_id_is_unreadable() {
        for body in [r#"{"email":"w@example.com"}"#, r#"{"userId":""}"#, r##"{"userId":"a#b"}"##, "[]"] {
            let server = TestServer::answering(200, body).await;
            let err = client(&server.base).identity(&tokens()).await.unwrap_err();
            assert!(
                matches!(&err, ProviderError::Unavailable(m) if m == "the profile sent an unreadable answer"),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn daily_steps_are_read_from_the_detailed_summary_fixture() {
        let server = TestServer::answering(200, fixture("summary_detail.json")).await;
        let values = steps(&client(&server.base), "2026-11-21", "2026-11-24").await.unwrap();
        assert_eq!(
            values,
            [
                DailyValue { date: date("2026-11-22"), steps: 9823, observed_at: None },
                DailyValue { date: date("2026-11-23"), steps: 3011, observed_at: None },
            ],
            "days without an entry are absent, not zero"
        );
        let sent = server.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].method.as_str(), sent[0].path.as_str()),
            ("GET", "/move/resource/v1/user/me/activity/summary")
        );
        assert_eq!(sent[0].header("authorization"), Some("Bearer misfit-access-old"));
        let query = pairs(&sent[0].query);
        assert_eq!(query["start_date"], "2026-11-21");
        assert_eq!(query["end_date"], "2026-11-24");
        assert_eq!(query["detail"], "true");
    }

    #[tokio::test]
    async fn ranges_longer_than_31_days_are_read_in_chunks() {
        let server = TestServer::answering(200, r#"{"summary": []}"#).await;
        let values = steps(&client(&server.base), "2026-01-01", "2026-03-05").await.unwrap();
        assert!(values.is_empty());
        let ranges: Vec<(String, String)> = server
            .requests()
            .iter()
            .map(|r| pairs(&r.query))
            .map(|q| (q["start_date"].clone(), q["end_date"].clone()))
            .collect();
        let expected = [("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-03-03"), ("2026-03-04", "2026-03-05")];
        assert_eq!(ranges, expected.map(|(s, e)| (s.to_owned(), e.to_owned())));
    }

    #[tokio::test]
    async fn daily_steps_without_tokens_are_unauthorized_and_ask_nothing() {
        let server = TestServer::answering(200, fixture("summary_detail.json")).await;
        let err = client(&server.base).daily_steps(&connection(), None, date("2026-11-22"), date("2026-11-23")).await;
        assert!(matches!(err, Err(ProviderError::Unauthorized)));
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn odd_summary_entries_are_skipped_and_days_outside_the_range_ignored() {
        let body = r#"{"summary": [
            {"date": "2026-11-21", "steps": "1200"},
            {"date": "2026-11-22", "steps": 5000.0},
            {"date": "2026-11-23", "steps": "many"},
            {"date": "23/11/2026", "steps": 7},
            {"date": "2026-11-24T00:00:00", "steps": 42},
            {"steps": 9},
            {"date": "2026-11-30", "steps": 9},
            "not an entry"
        ]}"#;
        let server = TestServer::answering(200, body).await;
        let values = steps(&client(&server.base), "2026-11-21", "2026-11-24").await.unwrap();
        let days: Vec<(String, i64)> = values.iter().map(|v| (v.date.to_string(), v.steps)).collect();
        let expected = [("2026-11-21", 1200), ("2026-11-22", 5000), ("2026-11-24", 42)];
        assert_eq!(days, expected.map(|(d, s)| (d.to_owned(), s)));
    }

    #[tokio::test]
    async fn a_single_summary_object_with_its_date_is_read_and_an_empty_answer_is_no_data() {
        let server = TestServer::answering(200, r#"{"summary": {"date": "2026-11-25", "steps": 77}}"#).await;
        let values = steps(&client(&server.base), "2026-11-25", "2026-11-25").await.unwrap();
        assert_eq!(values, [DailyValue { date: date("2026-11-25"), steps: 77, observed_at: None }]);
        let server = TestServer::answering(200, "{}").await;
        assert!(steps(&client(&server.base), "2026-11-25", "2026-11-25").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_token_is_unauthorized_in_either_error_shape() {
        let err = summary_error(Reply::new(401, fixture("error_401.json"))).await;
        assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
        let err = summary_error(Reply::new(401, r#"{"code":401,"message":"Invalid access token"}"#)).await;
        assert!(matches!(err, ProviderError::Unauthorized), "{err:?}");
    }

    #[tokio::test]
    async fn a_429_waits_until_the_rate_limit_resets() {
        let reset = "2026-11-25T12:00:45Z".parse::<jiff::Timestamp>().unwrap().as_second().to_string();
        let err = summary_error(Reply::new(429, "{}").with_header("x-ratelimit-reset", &reset)).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(45)));

        let err = summary_error(Reply::new(429, "{}").with_header("Retry-After", "12")).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(12)));

        let err = summary_error(Reply::new(429, "{}")).await;
        assert!(matches!(err, ProviderError::RateLimited { retry_after: None }), "{err:?}");
    }

    #[tokio::test]
    async fn a_gone_api_is_retired_on_every_endpoint() {
        for status in [404, 410, 301, 308] {
            let server = TestServer::start(move |_| Reply::new(status, "")).await;
            let client = client(&server.base);
            let err = steps(&client, "2026-11-25", "2026-11-25").await.unwrap_err();
            assert!(matches!(err, ProviderError::Retired), "{status}: {err:?}");
            assert!(matches!(client.identity(&tokens()).await, Err(ProviderError::Retired)), "{status}");
            let err = client.exchange_code("c", "v", "https://app.example/cb").await.unwrap_err();
            assert!(matches!(err, ProviderError::Retired), "{status}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_means_the_api_is_retired() {
        let closed = TestServer::closed_port().await;
        let client = client(&closed);
        let err = steps(&client, "2026-11-25", "2026-11-25").await.unwrap_err();
        assert!(matches!(err, ProviderError::Retired), "{err:?}");
        assert!(matches!(client.identity(&tokens()).await, Err(ProviderError::Retired)));
        let err = client.exchange_code("c", "v", "https://app.example/cb").await.unwrap_err();
        assert!(matches!(err, ProviderError::Retired), "{err:?}");
    }

    #[tokio::test]
    async fn server_errors_and_timeouts_are_unavailable_and_retryable() {
        let err = summary_error(Reply::new(503, "<html>down</html>")).await;
        assert!(matches!(&err, ProviderError::Unavailable(m) if m == "the activity summary answered 503"), "{err:?}");
        assert!(err.is_retryable());

        let err = summary_error(Reply::new(200, "{}").after(Duration::from_secs(2))).await;
        assert!(matches!(&err, ProviderError::Unavailable(m) if m == "the activity summary timed out"), "{err:?}");
        assert!(err.is_retryable());

        let err = summary_error(Reply::new(302, "")).await;
        assert!(matches!(err, ProviderError::Unavailable(_)), "a temporary redirect is not a retirement: {err:?}");
    }

    #[tokio::test]
    async fn other_client_errors_are_bad_requests_that_echo_only_a_code() {
        let err = summary_error(Reply::new(400, r#"{"error_code":"invalid_date","error_message":"bad"}"#)).await;
        assert!(matches!(&err, ProviderError::BadRequest(code) if code == "invalid_date"), "{err:?}");
        let err = summary_error(Reply::new(403, r#"{"code":403,"message":"forbidden"}"#)).await;
        assert!(matches!(&err, ProviderError::BadRequest(code) if code == "403"), "{err:?}");

        let leaky = r#"{"error_code":"token misfit-access-old refused","error_message":"misfit-access-old"}"#;
        let err = summary_error(Reply::new(400, leaky)).await;
        assert!(matches!(&err, ProviderError::BadRequest(code) if code == "400"), "{err:?}");
        assert!(!format!("{err:?} {err}").contains("misfit-access-old"));
    }

    #[tokio::test]
    async fn a_huge_answer_is_refused_without_being_held() {
        let err = summary_error(Reply::new(200, " ".repeat(MAX_RESPONSE_BYTES + 1))).await;
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m == "the activity summary answered with too large a body"),
            "{err:?}"
        );
    }
}
