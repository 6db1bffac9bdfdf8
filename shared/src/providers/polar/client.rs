//! `PolarClient`: OAuth against Polar's token endpoint (HTTP Basic with the client's
//! credentials; the answer's `x_user_id` is the account, kept for `identity` since only a
//! registered user can be asked about, and there is no refresh token), the person registered
//! to our client once connected (`POST /v3/users`, which AccessLink requires before any data
//! is readable) and deregistered on disconnect (`DELETE /v3/users/{id}`, which also revokes the
//! token), and daily activity from the non-transactional `/v3/users/activities`; Polar's
//! errors mapped to `ProviderError`. Every request first takes from the client-wide budget.

use super::{PolarSettings, READ_ALL_SCOPE, SetupError, client_secret, http_client, parse_url, user_id};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet};
use crate::ports::{AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, Revoker, StepSource};
use crate::providers::day_ranges;
use crate::providers::exchanged::ExchangedAccounts;
use crate::providers::http::{Answer, answered, error_code, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use reqwest::Url;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// AccessLink's documented maximum range of one `/v3/users/activities` request.
const MAX_DAYS_PER_REQUEST: i32 = 28;
/// AccessLink answers no day older than this many days before today (400 otherwise).
const MAX_AGE_DAYS: i32 = 365;
const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Polar's tokens do not expire in practice (its `expires_in` is about ten years); a token
/// answer without one, or with more, is given this.
const MAX_LIFETIME: i64 = 10 * 365 * 86_400;
/// What a spent Polar window asks when it names no time: its short window is a quarter hour.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Endpoints {
    authorize: Url,
    token: Url,
    users: Url,
    activities: Url,
}

impl Endpoints {
    fn from_settings(settings: &PolarSettings) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        let api = |path: &str| parse_url("api_base", &format!("{base}{path}"));
        Ok(Self {
            authorize: parse_url("auth_url", &settings.auth_url)?,
            token: parse_url("token_url", &settings.token_url)?,
            users: api("/v3/users")?,
            activities: api("/v3/users/activities")?,
        })
    }
}

/// The Polar adapter behind `StepSource`, `OAuthClient` and `Revoker`. Build it once and share
/// it: it holds one connection pool.
pub struct PolarClient {
    settings: PolarSettings,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    quota: AppQuota,
    clock: Arc<dyn Clock>,
    /// The `x_user_id` each exchange named, for `identity`.
    accounts: ExchangedAccounts,
}

impl PolarClient {
    pub fn new(settings: PolarSettings, quota: AppQuota, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        if settings.client_id.is_empty() {
            return Err(SetupError::InvalidSetting { name: "client_id", why: "Polar needs the client id" });
        }
        let endpoints = Endpoints::from_settings(&settings)?;
        let http = http_client(&settings)?;
        let client_secret = client_secret(&settings)?;
        Ok(Self { settings, client_secret, endpoints, http, quota, clock, accounts: ExchangedAccounts::default() })
    }

    /// Takes from the budget, sends, and returns the answer whatever its status.
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Answer, ProviderError> {
        self.quota.take().await?;
        let request = request.header(ACCEPT, "application/json");
        send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))
    }

    /// As `send`, with the person's token, and the body of a 2xx answer or the failure mapped.
    async fn authorized(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        tokens: &TokenSet,
    ) -> Result<Answer, ProviderError> {
        let answer = self.send(what, request.bearer_auth(tokens.access_token.expose_secret())).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(api_error(what, &answer, self.clock.now()))
    }

    /// The partner's id for the person that registration stores at Polar: a digest of our
    /// client and their Polar id, so nothing of ours (no user id, nothing personal) leaves.
    fn member_id(&self, account_id: &str) -> String {
        let digest = Sha256::digest(format!("stepsync/polar/member/{}/{account_id}", self.settings.client_id));
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// The days of `start..=end` (at most 28), both dates included.
    async fn activity_chunk(
        &self,
        tokens: &TokenSet,
        start: LocalDate,
        end: LocalDate,
        days: &mut BTreeMap<LocalDate, i64>,
    ) -> Result<(), ProviderError> {
        let query = [("from", start.to_string()), ("to", end.to_string())];
        let request = self.http.get(self.endpoints.activities.clone()).query(&query);
        let answer = self.authorized("daily activity", request, tokens).await?;
        // 204: nothing in the range.
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let entries: Vec<Value> = serde_json::from_slice(&answer.body).map_err(|_| unreadable("daily activity"))?;
        let mut skipped = 0;
        for entry in &entries {
            match activity_day(entry) {
                Some((date, steps)) if (start..=end).contains(&date) => {
                    // One summary a day; should two come, the larger is the day's, never their sum.
                    let day = days.entry(date).or_insert(steps);
                    *day = (*day).max(steps);
                }
                Some(_) => {}
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "polar: activity summaries without a readable day or step count were skipped");
        }
        Ok(())
    }
}

#[async_trait]
impl OAuthClient for PolarClient {
    /// Polar documents no PKCE and says nothing of unknown parameters, so no challenge is sent:
    /// the state and the client secret at the exchange carry the flow.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        if request.state.is_empty() || request.redirect_uri.is_empty() {
            return Err(ProviderError::BadRequest("state and redirect URI are required".into()));
        }
        let mut url = self.endpoints.authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", READ_ALL_SCOPE)
            .append_pair("state", &request.state);
        Ok(url.into())
    }

    fn required_scopes(&self) -> &[&str] {
        &[READ_ALL_SCOPE]
    }

    async fn exchange_code(&self, code: &str, _verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let what = "token exchange";
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        let request = self
            .http
            .post(self.endpoints.token.clone())
            .basic_auth(&self.settings.client_id, Some(self.client_secret.expose_secret()))
            .form(&form);
        let answer = self.send(what, request).await?;
        if !answer.status.is_success() {
            return Err(token_error(what, &answer, self.clock.now()));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|_| unreadable(what))?;
        if token.access_token.is_empty() {
            return Err(unreadable(what));
        }
        let account = token.x_user_id.as_ref().and_then(account_id).ok_or_else(|| unreadable(what))?;
        self.accounts.remember(&token.access_token, account);
        let now = self.clock.now();
        let lifetime = token.expires_in.filter(|s| *s > 0).unwrap_or(MAX_LIFETIME).min(MAX_LIFETIME);
        Ok(TokenSet {
            access_token: SecretString::from(token.access_token),
            refresh_token: None,
            expires_at: now.checked_add(SignedDuration::from_secs(lifetime)).unwrap_or(now),
            scope: Some(READ_ALL_SCOPE.to_owned()),
        })
    }

    /// Polar issues no refresh token: a token it refuses is gone for good and the person
    /// reconnects (as with Misfit).
    async fn refresh(&self, _tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::InvalidGrant)
    }

    /// The `x_user_id` the code exchange named: AccessLink tells nothing about a person before
    /// they are registered, and registering needs to know who they are.
    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let account_id =
            self.accounts.account_for(&tokens.access_token).ok_or_else(|| unreadable("token exchange's x_user_id"))?;
        // Polar's days are the device's own dates; it tells no time zone.
        Ok(ProviderIdentity { account_id, legacy_account_id: None, time_zone: None })
    }

    /// Registers the person to our client: until then AccessLink answers nothing of theirs.
    /// Already registered (a reconnect) is fine.
    async fn connected(&self, tokens: &TokenSet, identity: &ProviderIdentity) -> Result<(), ProviderError> {
        let what = "user registration";
        let body = serde_json::json!({ "member-id": self.member_id(&identity.account_id) });
        let request =
            self.http.post(self.endpoints.users.clone()).bearer_auth(tokens.access_token.expose_secret()).json(&body);
        let answer = self.send(what, request).await?;
        match answer.status.as_u16() {
            // 204 is AccessLink's "no such user": the grant names nobody it knows.
            204 => Err(ProviderError::ReconnectRequired { reason: "polar knows no user for this grant".into() }),
            200..=299 | 409 => Ok(()),
            _ => Err(api_error(what, &answer, self.clock.now())),
        }
    }
}

#[async_trait]
impl Revoker for PolarClient {
    /// Deregistering names the user, which a bare token does not tell: nothing can be given
    /// back here (the token lapses when the person removes the app in Polar Flow).
    async fn revoke(&self, _tokens: &TokenSet) -> Result<(), ProviderError> {
        tracing::info!(provider = "polar", "polar: no account id, so the user was not deregistered");
        Ok(())
    }

    /// `DELETE /v3/users/{id}`: the person is deregistered and their token revoked. A user
    /// Polar no longer knows is already gone.
    async fn revoke_account(&self, tokens: &TokenSet, account_id: Option<&str>) -> Result<(), ProviderError> {
        let Some(account) = account_id else { return self.revoke(tokens).await };
        let id = user_id(account).ok_or_else(|| ProviderError::BadRequest("an odd polar user id".into()))?;
        let url = Url::parse(&format!("{}/{id}", self.endpoints.users))
            .map_err(|_| ProviderError::BadRequest("an odd polar user id".into()))?;
        let what = "user deregistration";
        let answer = self.send(what, self.http.delete(url).bearer_auth(tokens.access_token.expose_secret())).await?;
        match answer.status.as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(api_error(what, &answer, self.clock.now())),
        }
    }
}

#[async_trait]
impl StepSource for PolarClient {
    fn provider(&self) -> Provider {
        Provider::Polar
    }

    async fn daily_steps(
        &self,
        _connection: &Connection,
        tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let tokens = tokens.ok_or(ProviderError::Unauthorized)?;
        // AccessLink refuses a day older than a year with a 400; those days are simply not
        // asked for. A day early keeps clear of Polar's own idea of "today".
        let today = LocalDate::from_date(self.clock.now().to_zoned_datetime(TimeZone::UTC).date());
        let start = start.max(today.add_days(1 - MAX_AGE_DAYS));
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
    x_user_id: Option<Value>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// `x_user_id` (a JSON number, or a string of digits) as the account id.
fn account_id(raw: &Value) -> Option<String> {
    let text = match raw {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    user_id(&text).map(str::to_owned)
}

/// One activity summary's day and `steps`. The day is its `date` where it has one, else the
/// samples' `date`, else the date of `start_time` (the device's own clock: the day Polar
/// counted it on); `None` when neither the day nor a non-negative count is readable.
fn activity_day(entry: &Value) -> Option<(LocalDate, i64)> {
    let date = entry
        .get("date")
        .or_else(|| entry.get("samples").and_then(|s| s.get("date")))
        .and_then(Value::as_str)
        .or_else(|| entry.get("start_time").and_then(Value::as_str).and_then(|t| t.get(..10)))?;
    let date = LocalDate::parse(date.trim()).ok()?;
    let steps = entry.get("steps")?.as_i64().filter(|s| *s >= 0)?;
    Some((date, steps))
}

/// The token endpoint's refusals: a spent or wrong code is the grant's, a refused client ours.
fn token_error(what: &str, answer: &Answer, now: jiff::Timestamp) -> ProviderError {
    let code = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).and_then(error_code));
    match (answer.status.as_u16(), code.as_deref()) {
        (_, Some("invalid_client" | "unauthorized_client")) | (401, None) => {
            ProviderError::AppRefused { reason: format!("the {what} refused our client credentials") }
        }
        (400 | 401, _) => ProviderError::InvalidGrant,
        _ => api_error(what, answer, now),
    }
}

/// AccessLink's statuses. Its error bodies (`errorType`, `message`) are never echoed: only
/// the status says what happened.
fn api_error(what: &str, answer: &Answer, now: jiff::Timestamp) -> ProviderError {
    match answer.status.as_u16() {
        // No refresh token: the engine's refresh answers InvalidGrant and the person reconnects.
        401 => ProviderError::Unauthorized,
        // The person has not accepted Polar's mandatory consents (data sharing): only they can.
        403 => ProviderError::MissingScope { scope: READ_ALL_SCOPE.to_owned() },
        // The person is not registered to our client (deregistered, or never was).
        404 => ProviderError::ReconnectRequired { reason: "the person is not registered to our polar client".into() },
        429 => ProviderError::RateLimited {
            retry_after: Some(retry_after(&answer.headers, now).unwrap_or(RATE_LIMIT_WAIT)),
        },
        status @ 400..=499 => ProviderError::BadRequest(format!("the {what} answered {status}")),
        _ => answered(what, answer.status),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_QUOTA, fixture};
    use super::*;
    use crate::domain::UserId;
    use crate::providers::quota::QuotaWindow;
    use crate::providers::test_server::{Recorded, Reply, TestServer, pairs};
    use crate::testing::{FixedClock, InMemoryStore};
    use base64::Engine;

    const NOW: &str = "2026-12-03T12:00:00Z";

    fn settings(base: &str) -> PolarSettings {
        let mut settings =
            PolarSettings::new("client-1", SecretString::from("secret-1"), "https://api.example/webhooks/polar");
        settings.auth_url = format!("{base}/oauth2/authorization");
        settings.token_url = format!("{base}/v2/oauth2/token");
        settings.api_base = base.to_owned();
        settings.request_timeout = Duration::from_millis(500);
        settings
    }

    fn client_with_quota(base: &str, windows: Vec<QuotaWindow>) -> PolarClient {
        let clock = Arc::new(FixedClock::at(NOW));
        let quota = AppQuota::new("quota#polar", windows, Arc::new(InMemoryStore::default()), clock.clone());
        PolarClient::new(settings(base), quota, clock).unwrap()
    }

    fn client(base: &str) -> PolarClient {
        client_with_quota(base, DEFAULT_QUOTA.to_vec())
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: SecretString::from(access.to_owned()),
            refresh_token: None,
            expires_at: "2036-12-01T12:00:00Z".parse().unwrap(),
            scope: Some(READ_ALL_SCOPE.into()),
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::Polar, NOW.parse().unwrap())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn identity(account: &str) -> ProviderIdentity {
        ProviderIdentity { account_id: account.into(), legacy_account_id: None, time_zone: None }
    }

    async fn error_for(reply: Reply) -> ProviderError {
        let server = TestServer::replying(reply).await;
        client(&server.base)
            .daily_steps(&connection(), Some(&tokens("a")), date("2026-12-01"), date("2026-12-02"))
            .await
            .unwrap_err()
    }

    #[test]
    fn the_authorize_url_asks_for_read_all_with_the_state_and_no_pkce() {
        let client = client("https://polar.test");
        let request = AuthorizeRequest {
            state: "state-1".into(),
            code_challenge: "challenge-1".into(),
            redirect_uri: "https://api.example/oauth/polar/callback".into(),
        };
        let url = Url::parse(&client.authorize_url(&request).unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth2/authorization");
        let query = pairs(url.query().unwrap());
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["scope"], "accesslink.read_all");
        assert_eq!(query["state"], "state-1");
        assert_eq!(query["redirect_uri"], "https://api.example/oauth/polar/callback");
        assert!(!query.contains_key("code_challenge"), "Polar documents no PKCE");
        assert_eq!(client.required_scopes(), &["accesslink.read_all"]);
        let empty = AuthorizeRequest { state: String::new(), code_challenge: String::new(), redirect_uri: "x".into() };
        assert!(matches!(client.authorize_url(&empty), Err(ProviderError::BadRequest(_))));
    }

    #[tokio::test]
    async fn the_exchange_uses_basic_auth_and_names_the_account_that_identity_then_tells() {
        let server = TestServer::replying(Reply::json(200, fixture("token.json"))).await;
        let client = client(&server.base);
        let tokens = client.exchange_code("code-1", "", "https://api.example/oauth/polar/callback").await.unwrap();
        let answer: Value = serde_json::from_str(&fixture("token.json")).unwrap();
        assert_eq!(tokens.access_token.expose_secret(), answer["access_token"].as_str().unwrap());
        assert!(tokens.refresh_token.is_none(), "Polar issues no refresh token");
        assert!(tokens.expires_at > "2030-01-01T00:00:00Z".parse().unwrap(), "tokens last years");
        let identity = client.identity(&tokens).await.unwrap();
        assert_eq!(identity.account_id, answer["x_user_id"].as_u64().unwrap().to_string());

        let request = &server.requests()[0];
        let basic = base64::engine::general_purpose::STANDARD.encode("client-1:secret-1");
        assert_eq!(request.header("authorization"), Some(format!("Basic {basic}").as_str()));
        let form = request.form();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "code-1");
        assert_eq!(form["redirect_uri"], "https://api.example/oauth/polar/callback");
        assert!(!form.contains_key("client_secret"), "the secret goes in the Basic header only");
        assert!(client.identity(&super::tests::tokens("unknown")).await.is_err(), "an access token it never saw");
    }

    #[tokio::test]
    async fn a_refused_code_is_invalid_grant_and_a_refused_client_is_the_apps_problem() {
        let server = TestServer::sequence(vec![
            Reply::json(400, r#"{"error":"invalid_grant"}"#),
            Reply::json(401, r#"{"error":"invalid_client"}"#),
        ])
        .await;
        let client = client(&server.base);
        assert!(matches!(client.exchange_code("c", "", "https://x/cb").await, Err(ProviderError::InvalidGrant)));
        assert!(matches!(client.exchange_code("c", "", "https://x/cb").await, Err(ProviderError::AppRefused { .. })));
        assert!(matches!(client.refresh(&tokens("a")).await, Err(ProviderError::InvalidGrant)), "no refresh token");
        assert_eq!(server.requests().len(), 2, "a refresh sends nothing");
    }

    #[tokio::test]
    async fn connecting_registers_the_person_with_an_opaque_member_id_and_409_is_fine() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("user.json")),
            Reply::json(409, fixture("error_409.json")),
            Reply::new(204, ""),
        ])
        .await;
        let client = client(&server.base);
        client.connected(&tokens("a"), &identity("2278512")).await.unwrap();
        client.connected(&tokens("a"), &identity("2278512")).await.unwrap();
        assert!(matches!(
            client.connected(&tokens("a"), &identity("2278512")).await,
            Err(ProviderError::ReconnectRequired { .. })
        ));
        let requests = server.requests();
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("POST", "/v3/users"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer a"));
        let member = requests[0].json()["member-id"].as_str().unwrap().to_owned();
        assert_eq!(member.len(), 32);
        assert!(!member.contains("2278512") && !member.contains("walker"), "nothing of ours or theirs in clear");
        assert_eq!(requests[1].json()["member-id"], member.as_str(), "stable across reconnects");
        assert_ne!(client.member_id("2278513"), member);
    }

    #[tokio::test]
    async fn disconnecting_deregisters_the_user_and_without_an_id_nothing_is_sent() {
        let server = TestServer::sequence(vec![Reply::new(204, ""), Reply::json(404, "{}")]).await;
        let client = client(&server.base);
        client.revoke(&tokens("a")).await.unwrap();
        assert!(server.requests().is_empty());
        client.revoke_account(&tokens("a"), Some("2278512")).await.unwrap();
        client.revoke_account(&tokens("a"), Some("2278512")).await.unwrap();
        let requests = server.requests();
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("DELETE", "/v3/users/2278512"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer a"));
        assert!(matches!(
            client.revoke_account(&tokens("a"), Some("../webhooks")).await,
            Err(ProviderError::BadRequest(_))
        ));
        assert_eq!(server.requests().len(), 2, "an odd id is never sent");
    }

    #[tokio::test]
    async fn the_daily_activities_are_read_in_28_day_chunks_and_kept_to_the_range() {
        let server = TestServer::start(|request: &Recorded| {
            let query = pairs(&request.query);
            if query["from"] == "2026-11-21" || query["to"] == "2026-11-21" {
                Reply::json(200, fixture("activities.json"))
            } else {
                Reply::new(204, "")
            }
        })
        .await;
        let known: Vec<Value> = serde_json::from_str(&fixture("activities.json")).unwrap();
        let mut expected = BTreeMap::new();
        for entry in &known {
            let (day, steps) = activity_day(entry).unwrap();
            expected.insert(day, steps);
        }
        let (first, last) = (*expected.keys().next().unwrap(), *expected.keys().last().unwrap());
        let client = client(&server.base);
        let values = client.daily_steps(&connection(), Some(&tokens("a")), first, last).await.unwrap();
        assert_eq!(values.iter().map(|v| (v.date, v.steps)).collect::<BTreeMap<_, _>>(), expected);
        let request = &server.requests()[0];
        assert_eq!(request.path, "/v3/users/activities");
        assert_eq!(request.header("authorization"), Some("Bearer a"));

        // Sixty days are three requests, none over 28 days; a day outside the range is dropped.
        let values = client
            .daily_steps(&connection(), Some(&tokens("a")), date("2026-09-23"), date("2026-11-21"))
            .await
            .unwrap();
        assert_eq!(values.iter().map(|v| v.date).collect::<Vec<_>>(), [date("2026-11-21")]);
        let ranges: Vec<(String, String)> = server.requests()[1..]
            .iter()
            .map(|r| {
                let q = pairs(&r.query);
                (q["from"].clone(), q["to"].clone())
            })
            .collect();
        assert_eq!(
            ranges,
            [("2026-09-23", "2026-10-20"), ("2026-10-21", "2026-11-17"), ("2026-11-18", "2026-11-21")]
                .map(|(f, t)| (f.to_owned(), t.to_owned()))
        );
    }

    #[tokio::test]
    async fn days_older_than_a_year_are_not_asked_for() {
        let server = TestServer::replying(Reply::json(200, "[]")).await;
        let client = client(&server.base);
        let values = client
            .daily_steps(&connection(), Some(&tokens("a")), date("2025-01-01"), date("2025-01-31"))
            .await
            .unwrap();
        assert!(values.is_empty());
        assert!(server.requests().is_empty(), "nothing in range: nothing sent");
        client.daily_steps(&connection(), Some(&tokens("a")), date("2025-11-01"), date("2025-12-31")).await.unwrap();
        assert_eq!(pairs(&server.requests()[0].query)["from"], "2025-12-04", "a year back from the day before");
    }

    #[test]
    fn a_summary_is_dated_by_its_date_its_samples_or_its_start_time() {
        let read = |json: &str| activity_day(&serde_json::from_str(json).unwrap());
        let d = date("2026-11-21");
        assert_eq!(read(r#"{"date":"2026-11-21","steps":5}"#), Some((d, 5)));
        assert_eq!(read(r#"{"samples":{"date":"2026-11-21"},"steps":5}"#), Some((d, 5)));
        assert_eq!(read(r#"{"start_time":"2026-11-21T00:00:00","steps":0}"#), Some((d, 0)));
        assert_eq!(read(r#"{"start_time":"2026-11-21T00:00:00","steps":-1}"#), None);
        assert_eq!(read(r#"{"start_time":"soon","steps":3}"#), None);
        assert_eq!(read(r#"{"date":"2026-11-21"}"#), None);
    }

    #[tokio::test]
    async fn polar_errors_become_the_outcomes_the_engine_knows() {
        assert!(matches!(error_for(Reply::json(401, fixture("error_401.json"))).await, ProviderError::Unauthorized));
        assert!(matches!(error_for(Reply::json(403, "{}")).await, ProviderError::MissingScope { .. }));
        assert!(matches!(error_for(Reply::json(404, "{}")).await, ProviderError::ReconnectRequired { .. }));
        match error_for(Reply::json(429, fixture("error_429.json")).with_header("retry-after", "42")).await {
            ProviderError::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(42))),
            other => panic!("{other:?}"),
        }
        match error_for(Reply::json(429, fixture("error_429.json"))).await {
            ProviderError::RateLimited { retry_after } => assert_eq!(retry_after, Some(RATE_LIMIT_WAIT)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_for(Reply::json(503, "{}")).await, ProviderError::Unavailable(_)));
        assert!(matches!(error_for(Reply::json(400, "{}")).await, ProviderError::BadRequest(_)));
        assert!(matches!(error_for(Reply::json(200, "{oops")).await, ProviderError::Unavailable(_)));
        let text = error_for(Reply::json(401, fixture("error_401.json"))).await.to_string();
        assert!(!text.contains("message"), "nothing of the body is echoed");
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_before_anything_is_sent() {
        let server = TestServer::replying(Reply::json(200, "[]")).await;
        let client = client_with_quota(&server.base, vec![QuotaWindow::per_minute(1)]);
        let (start, end) = (date("2026-12-01"), date("2026-12-02"));
        client.daily_steps(&connection(), Some(&tokens("a")), start, end).await.unwrap();
        let refused = client.daily_steps(&connection(), Some(&tokens("a")), start, end).await.unwrap_err();
        assert!(matches!(refused, ProviderError::RateLimited { retry_after: Some(_) }));
        assert_eq!(server.requests().len(), 1, "the second request never left");
    }
}
