//! `GarminClient`: OAuth 2 with PKCE against Garmin's token endpoint (the client's id and
//! secret in the form; access tokens last a day, refresh tokens about 90 days and rotate: each
//! refresh answers a new one, which replaces the old), the account from `/user/id`, the
//! person's registration deleted on disconnect, the daily summaries of a ping's upload window,
//! and backfill requests for days asked by date (see the module's doc); Garmin's errors
//! (`{"errorMessage"}`, never echoed) mapped to `ProviderError`.

use super::{
    DAILIES_PATH, GarminSettings, HEALTH_PERMISSION, MAX_BACKFILL_DAYS, REST_PATH, SetupError, http_client, parse_url,
    user_id,
};
use crate::clock::Clock;
use crate::domain::{Connection, DailyValue, LocalDate, Provider, TokenSet, UploadWindow};
use crate::ports::{AuthorizeRequest, OAuthClient, ProviderError, ProviderIdentity, Revoker, StepSource};
use crate::providers::day_ranges;
use crate::providers::http::{Answer, answered, error_code, retry_after, send, unavailable, unreadable};
use crate::providers::quota::AppQuota;
use async_trait::async_trait;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::Url;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Garmin's access tokens last a day; an answer without `expires_in` is given this.
const DEFAULT_EXPIRES_IN: i64 = 86_400;
/// The longest upload window Garmin reads in one request.
pub(super) const MAX_UPLOAD_WINDOW_SECS: i64 = 86_400;
/// What a 429 without `Retry-After` waits: a backfill budget is counted by the minute.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Endpoints {
    authorize: Url,
    token: Url,
    user_id: Url,
    registration: Url,
    dailies: Url,
    backfill: Url,
}

impl Endpoints {
    fn from_settings(settings: &GarminSettings) -> Result<Self, SetupError> {
        let base = settings.api_base.trim_end_matches('/');
        let api = |path: &str| parse_url("api_base", &format!("{base}{path}"));
        Ok(Self {
            authorize: parse_url("auth_url", &settings.auth_url)?,
            token: parse_url("token_url", &settings.token_url)?,
            user_id: api(&format!("{REST_PATH}/user/id"))?,
            registration: api(&format!("{REST_PATH}/user/registration"))?,
            dailies: api(DAILIES_PATH)?,
            backfill: api(&format!("{REST_PATH}/backfill/dailies"))?,
        })
    }
}

/// The Garmin adapter behind `StepSource`, `OAuthClient` and `Revoker`. Build it once and
/// share it: it holds one connection pool.
pub struct GarminClient {
    client_id: String,
    client_secret: SecretString,
    endpoints: Endpoints,
    http: reqwest::Client,
    /// The backfill budget.
    quota: AppQuota,
    clock: Arc<dyn Clock>,
}

impl GarminClient {
    pub fn new(settings: GarminSettings, quota: AppQuota, clock: Arc<dyn Clock>) -> Result<Self, SetupError> {
        if settings.client_id.is_empty() {
            return Err(SetupError::InvalidSetting { name: "client_id", why: "Garmin needs the client id" });
        }
        let endpoints = Endpoints::from_settings(&settings)?;
        let http = http_client(&settings)?;
        let client_secret = settings.client_secret.clone().ok_or(SetupError::NoClientSecret)?;
        Ok(Self { client_id: settings.client_id, client_secret, endpoints, http, quota, clock })
    }

    /// Sends and returns the answer whatever its status.
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Answer, ProviderError> {
        let request = request.header(ACCEPT, "application/json");
        send(request, MAX_RESPONSE_BYTES).await.map_err(|f| unavailable(what, f.refused_as_connect()))
    }

    /// As `send`, with the person's token: the answer when it is 2xx (or one of `fine`), else
    /// the failure mapped.
    async fn authorized(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        tokens: Option<&TokenSet>,
        fine: &[u16],
    ) -> Result<Answer, ProviderError> {
        let tokens = tokens.ok_or(ProviderError::Unauthorized)?;
        let answer = self.send(what, request.bearer_auth(tokens.access_token.expose_secret())).await?;
        if answer.status.is_success() || fine.contains(&answer.status.as_u16()) {
            return Ok(answer);
        }
        Err(api_error(what, &answer, self.clock.now()))
    }

    /// One token request: the grant's fields and the client's credentials, as a form.
    async fn token_request(
        &self,
        what: &str,
        grant: &[(&str, &str)],
        previous: Option<&TokenSet>,
    ) -> Result<TokenSet, ProviderError> {
        let mut form = grant.to_vec();
        form.push(("client_id", self.client_id.as_str()));
        form.push(("client_secret", self.client_secret.expose_secret()));
        let answer = self.send(what, self.http.post(self.endpoints.token.clone()).form(&form)).await?;
        if !answer.status.is_success() {
            return Err(token_error(what, &answer, self.clock.now()));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|_| unreadable(what))?;
        if token.access_token.is_empty() {
            return Err(unreadable(what));
        }
        let now = self.clock.now();
        let lifetime = token.expires_in.filter(|s| *s > 0).unwrap_or(DEFAULT_EXPIRES_IN);
        Ok(TokenSet {
            access_token: SecretString::from(token.access_token),
            // Rotating refresh tokens: the new one replaces the old.
            refresh_token: token
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from)
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at: now.checked_add(SignedDuration::from_secs(lifetime)).unwrap_or(now),
            scope: token.scope.filter(|s| !s.is_empty()).or_else(|| previous.and_then(|p| p.scope.clone())),
        })
    }

    /// Asks Garmin to deliver the daily summaries that started between `from` and `to` again,
    /// through pings. 409: asked already, which is as good.
    async fn backfill(&self, tokens: Option<&TokenSet>, from: Timestamp, to: Timestamp) -> Result<(), ProviderError> {
        self.quota.take().await?;
        let query = [("summaryStartTimeInSeconds", from.as_second()), ("summaryEndTimeInSeconds", to.as_second())];
        let request = self.http.get(self.endpoints.backfill.clone()).query(&query);
        self.authorized("backfill request", request, tokens, &[409]).await.map(|_| ())
    }
}

/// Midnight UTC at the start of `date`.
fn utc_midnight(date: LocalDate) -> Option<Timestamp> {
    date.date().to_zoned_datetime(TimeZone::UTC).ok().map(|z| z.timestamp())
}

#[async_trait]
impl OAuthClient for GarminClient {
    /// Garmin requires PKCE (S256); it has no scopes to ask for: the person ticks what they
    /// share on the consent page, and a withdrawn permission answers 412 later.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Result<String, ProviderError> {
        if request.state.is_empty() || request.redirect_uri.is_empty() || request.code_challenge.is_empty() {
            return Err(ProviderError::BadRequest("state, redirect URI and PKCE challenge are required".into()));
        }
        let mut url = self.endpoints.authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("state", &request.state);
        Ok(url.into())
    }

    fn required_scopes(&self) -> &[&str] {
        &[]
    }

    async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenSet, ProviderError> {
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ];
        self.token_request("token exchange", &grant, None).await
    }

    async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        let refresh_token = tokens.refresh_token.as_ref().ok_or(ProviderError::InvalidGrant)?;
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        self.token_request("token refresh", &grant, Some(tokens)).await
    }

    /// The Health API's user id: stable across tokens, and what every notice names.
    async fn identity(&self, tokens: &TokenSet) -> Result<ProviderIdentity, ProviderError> {
        let what = "user id";
        let answer = self.authorized(what, self.http.get(self.endpoints.user_id.clone()), Some(tokens), &[]).await?;
        let body: UserIdAnswer = serde_json::from_slice(&answer.body).map_err(|_| unreadable(what))?;
        let account_id = body.user_id.as_deref().and_then(user_id).ok_or_else(|| unreadable(what))?.to_owned();
        // Garmin tells no time zone: each daily's `calendarDate` is already the person's day.
        Ok(ProviderIdentity { account_id, legacy_account_id: None, time_zone: None })
    }
}

#[async_trait]
impl Revoker for GarminClient {
    /// Deletes the person's registration to our app, which ends the grant; one Garmin no longer
    /// knows (401, 403) is gone already.
    async fn revoke(&self, tokens: &TokenSet) -> Result<(), ProviderError> {
        let request = self.http.delete(self.endpoints.registration.clone());
        self.authorized("registration", request, Some(tokens), &[401, 403]).await.map(|_| ())
    }
}

#[async_trait]
impl StepSource for GarminClient {
    fn provider(&self) -> Provider {
        Provider::Garmin
    }

    /// Garmin reads nothing by date: the days are asked for as a backfill (their summaries
    /// started within a day either side of them in UTC, whatever the person's offset), and
    /// arrive through pings. Nothing is returned now.
    async fn daily_steps(
        &self,
        _connection: &Connection,
        tokens: Option<&TokenSet>,
        start: LocalDate,
        end: LocalDate,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let now = self.clock.now();
        for (first, last) in day_ranges::chunks(start.add_days(-1), end.add_days(1), MAX_BACKFILL_DAYS) {
            let (Some(from), Some(to)) = (utc_midnight(first), utc_midnight(last.add_days(1))) else { continue };
            let to = to.min(now);
            if from < to {
                self.backfill(tokens, from, to).await?;
            }
        }
        Ok(Vec::new())
    }

    /// The dailies uploaded in the ping's window, read at our API base (never at a URL a notice
    /// named) with the ping's pull token. A day uploaded twice in the window keeps its fuller
    /// summary (the longer, else the later): never the sum of the two.
    async fn uploaded_steps(
        &self,
        _connection: &Connection,
        tokens: Option<&TokenSet>,
        window: &UploadWindow,
    ) -> Result<Vec<DailyValue>, ProviderError> {
        let what = "daily summaries";
        let span = window.end.as_second() - window.start.as_second();
        if !(1..=MAX_UPLOAD_WINDOW_SECS).contains(&span) {
            return Err(ProviderError::BadRequest("an upload window is at most 24 hours, end after start".into()));
        }
        let mut query = vec![
            ("uploadStartTimeInSeconds", window.start.as_second().to_string()),
            ("uploadEndTimeInSeconds", window.end.as_second().to_string()),
        ];
        query.extend(window.pull_token.clone().map(|token| ("token", token)));
        let request = self.http.get(self.endpoints.dailies.clone()).query(&query);
        let answer = self.authorized(what, request, tokens, &[]).await?;
        let entries: Vec<Value> = serde_json::from_slice(&answer.body).map_err(|_| unreadable(what))?;
        let mut days: BTreeMap<LocalDate, (i64, i64)> = BTreeMap::new();
        let mut skipped = 0;
        for entry in &entries {
            match daily(entry) {
                Some(summary) => {
                    let kept = days.entry(summary.date).or_insert((summary.duration, summary.steps));
                    if summary.duration >= kept.0 {
                        *kept = (summary.duration, summary.steps);
                    }
                }
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "garmin: daily summaries without a readable day or step count were skipped");
        }
        let observed_at = Some(window.end);
        Ok(days.into_iter().map(|(date, (_, steps))| DailyValue { date, steps, observed_at }).collect())
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
struct UserIdAnswer {
    #[serde(default, rename = "userId")]
    user_id: Option<String>,
}

/// What StepSync reads of one daily summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Daily {
    pub date: LocalDate,
    pub steps: i64,
    /// `durationInSeconds`: a fuller summary of the same day is at least as long.
    pub duration: i64,
}

/// A daily summary's day (`calendarDate`, else the device's local date of its start,
/// `startTimeInSeconds + startTimeOffsetInSeconds`) and steps; `None` when either is unreadable.
pub(super) fn daily(entry: &Value) -> Option<Daily> {
    let date = match entry.get("calendarDate").and_then(Value::as_str) {
        Some(raw) => LocalDate::parse(raw.trim()).ok()?,
        None => local_start_date(entry)?,
    };
    let steps = entry.get("steps")?.as_i64().filter(|s| *s >= 0)?;
    let duration = entry.get("durationInSeconds").and_then(Value::as_i64).unwrap_or(0);
    Some(Daily { date, steps, duration })
}

/// The device's own date at the summary's start.
pub(super) fn local_start_date(entry: &Value) -> Option<LocalDate> {
    let start = entry.get("startTimeInSeconds")?.as_i64()?;
    let offset = entry.get("startTimeOffsetInSeconds").and_then(Value::as_i64).unwrap_or(0);
    let local = Timestamp::from_second(start.checked_add(offset)?).ok()?;
    Some(LocalDate::from_date(local.to_zoned_datetime(TimeZone::UTC).date()))
}

/// The token endpoint's refusals: `invalid_grant` (revoked, expired after 90 days unused, or
/// spent by a rotation) and a refused client.
fn token_error(what: &str, answer: &Answer, now: Timestamp) -> ProviderError {
    let code = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).and_then(error_code));
    match (answer.status.as_u16(), code.as_deref()) {
        (400 | 401, Some("invalid_client" | "unauthorized_client")) => {
            ProviderError::AppRefused { reason: format!("the {what} refused our client credentials") }
        }
        (400 | 401, _) => ProviderError::InvalidGrant,
        _ => api_error(what, answer, now),
    }
}

/// The Health API's statuses (its appendix E). The body's `errorMessage` is never echoed.
fn api_error(what: &str, answer: &Answer, now: Timestamp) -> ProviderError {
    match answer.status.as_u16() {
        401 => ProviderError::Unauthorized,
        // An unknown token: malformed, or invalidated when the person removed their consent.
        403 => ProviderError::ReconnectRequired { reason: "garmin no longer knows the grant".into() },
        // The token is good, but the person does not share this summary type.
        412 => ProviderError::MissingScope { scope: HEALTH_PERMISSION.to_owned() },
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
    use crate::providers::test_server::{Reply, TestServer, pairs};
    use crate::testing::{FixedClock, InMemoryStore};

    const NOW: &str = "2026-12-03T12:00:00Z";

    fn client_with_quota(base: &str, windows: Vec<QuotaWindow>) -> GarminClient {
        let mut settings = GarminSettings::new("client-1", SecretString::from("secret-1"));
        settings.auth_url = format!("{base}/oauth2Confirm");
        settings.token_url = format!("{base}/di-oauth2-service/oauth/token");
        settings.api_base = base.to_owned();
        settings.request_timeout = Duration::from_millis(500);
        let clock = Arc::new(FixedClock::at(NOW));
        let quota = AppQuota::new("quota#garmin", windows, Arc::new(InMemoryStore::default()), clock.clone());
        GarminClient::new(settings, quota, clock).unwrap()
    }

    fn client(base: &str) -> GarminClient {
        client_with_quota(base, DEFAULT_QUOTA.to_vec())
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: SecretString::from(access.to_owned()),
            refresh_token: Some(SecretString::from("refresh-0")),
            expires_at: "2026-12-04T12:00:00Z".parse().unwrap(),
            scope: None,
        }
    }

    fn connection() -> Connection {
        Connection::new(UserId::parse("walker").unwrap(), Provider::Garmin, NOW.parse().unwrap())
    }

    fn date(raw: &str) -> LocalDate {
        LocalDate::parse(raw).unwrap()
    }

    fn window(start: i64, end: i64, token: Option<&str>) -> UploadWindow {
        UploadWindow {
            start: Timestamp::from_second(start).unwrap(),
            end: Timestamp::from_second(end).unwrap(),
            pull_token: token.map(str::to_owned),
        }
    }

    async fn error_for(reply: Reply) -> ProviderError {
        let server = TestServer::replying(reply).await;
        client(&server.base)
            .uploaded_steps(&connection(), Some(&tokens("a")), &window(1_764_700_000, 1_764_700_100, None))
            .await
            .unwrap_err()
    }

    #[test]
    fn the_authorize_url_carries_the_pkce_challenge_and_refuses_to_go_without_one() {
        let client = client("https://garmin.test");
        let request = AuthorizeRequest {
            state: "state-1".into(),
            code_challenge: "challenge-1".into(),
            redirect_uri: "https://api.example/oauth/garmin/callback".into(),
        };
        let url = Url::parse(&client.authorize_url(&request).unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth2Confirm");
        let query = pairs(url.query().unwrap());
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["code_challenge"], "challenge-1");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["state"], "state-1");
        assert_eq!(query["redirect_uri"], "https://api.example/oauth/garmin/callback");
        let no_pkce = AuthorizeRequest { code_challenge: String::new(), ..request };
        assert!(matches!(client.authorize_url(&no_pkce), Err(ProviderError::BadRequest(_))));
    }

    #[tokio::test]
    async fn the_exchange_sends_the_verifier_and_a_refresh_stores_the_rotated_refresh_token() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("token.json")),
            Reply::json(200, fixture("token_refreshed.json")),
            Reply::json(400, r#"{"error":"invalid_grant"}"#),
            Reply::json(401, r#"{"error":"invalid_client"}"#),
        ])
        .await;
        let client = client(&server.base);
        let first = client.exchange_code("code-1", "verifier-1", "https://x/cb").await.unwrap();
        let answer: Value = serde_json::from_str(&fixture("token.json")).unwrap();
        assert_eq!(first.access_token.expose_secret(), answer["access_token"].as_str().unwrap());
        let lifetime = answer["expires_in"].as_i64().unwrap();
        assert_eq!(first.expires_at, NOW.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(lifetime));
        let form = server.requests()[0].form();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code_verifier"], "verifier-1");
        assert_eq!(form["client_id"], "client-1");
        assert_eq!(form["client_secret"], "secret-1");

        let refreshed = client.refresh(&first).await.unwrap();
        let rotated: Value = serde_json::from_str(&fixture("token_refreshed.json")).unwrap();
        assert_eq!(refreshed.refresh_token.unwrap().expose_secret(), rotated["refresh_token"].as_str().unwrap());
        let form = server.requests()[1].form();
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], answer["refresh_token"].as_str().unwrap());
        assert!(matches!(client.refresh(&first).await, Err(ProviderError::InvalidGrant)), "the old one is spent");
        assert!(matches!(client.refresh(&first).await, Err(ProviderError::AppRefused { .. })));
    }

    #[tokio::test]
    async fn identity_is_the_user_id_and_disconnecting_deletes_the_registration() {
        let server = TestServer::sequence(vec![
            Reply::json(200, fixture("user_id.json")),
            Reply::new(204, ""),
            Reply::new(403, ""),
        ])
        .await;
        let client = client(&server.base);
        let identity = client.identity(&tokens("a")).await.unwrap();
        let answer: Value = serde_json::from_str(&fixture("user_id.json")).unwrap();
        assert_eq!(identity.account_id, answer["userId"].as_str().unwrap());
        client.revoke(&tokens("a")).await.unwrap();
        client.revoke(&tokens("a")).await.unwrap();
        let requests = server.requests();
        assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/wellness-api/rest/user/id"));
        assert_eq!(requests[0].header("authorization"), Some("Bearer a"));
        assert_eq!(
            (requests[1].method.as_str(), requests[1].path.as_str()),
            ("DELETE", "/wellness-api/rest/user/registration")
        );
    }

    #[tokio::test]
    async fn an_upload_window_is_read_at_our_base_with_the_pull_token_and_each_day_once() {
        let server = TestServer::replying(Reply::json(200, fixture("dailies.json"))).await;
        let client = client(&server.base);
        let pulled = window(1_796_256_000, 1_796_256_300, Some("pull-1"));
        let values = client.uploaded_steps(&connection(), Some(&tokens("a")), &pulled).await.unwrap();
        let request = &server.requests()[0];
        assert_eq!(request.path, "/wellness-api/rest/dailies");
        let query = pairs(&request.query);
        assert_eq!(query["uploadStartTimeInSeconds"], "1796256000");
        assert_eq!(query["uploadEndTimeInSeconds"], "1796256300");
        assert_eq!(query["token"], "pull-1");
        assert_eq!(request.header("authorization"), Some("Bearer a"));
        // The fixture holds one day twice (a mid-day sync, then the whole day): the fuller one.
        let expected: BTreeMap<LocalDate, i64> = serde_json::from_str::<Value>(&fixture("dailies_expected.json"))
            .unwrap()["days"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(day, steps)| (date(day), steps.as_i64().unwrap()))
            .collect();
        assert_eq!(values.iter().map(|v| (v.date, v.steps)).collect::<BTreeMap<_, _>>(), expected);
        assert!(values.iter().all(|v| v.observed_at == Some(pulled.end)), "dated by their upload");

        let too_long = window(1_796_256_000, 1_796_256_000 + 86_401, None);
        let refused = client.uploaded_steps(&connection(), Some(&tokens("a")), &too_long).await;
        assert!(matches!(refused, Err(ProviderError::BadRequest(_))));
        assert_eq!(server.requests().len(), 1, "nothing sent for a window Garmin would refuse");
    }

    #[test]
    fn a_summary_without_a_calendar_date_is_dated_by_its_local_start() {
        let entries: Vec<Value> = serde_json::from_str(&fixture("dailies.json")).unwrap();
        for entry in &entries {
            let named = LocalDate::parse(entry["calendarDate"].as_str().unwrap()).unwrap();
            assert_eq!(local_start_date(entry), Some(named), "{entry}");
        }
        let read = |json: &str| daily(&serde_json::from_str(json).unwrap()).map(|d| (d.date, d.steps));
        let no_date = r#"{"startTimeInSeconds":1796256000,"startTimeOffsetInSeconds":-25200,"steps":5}"#;
        assert_eq!(read(no_date), Some((date("2026-12-02"), 5)));
        assert_eq!(read(r#"{"calendarDate":"2026-12-02","steps":-1}"#), None);
        assert_eq!(read(r#"{"calendarDate":"soon","steps":3}"#), None);
        assert_eq!(read(r#"{"calendarDate":"2026-12-02"}"#), None);
    }

    #[tokio::test]
    async fn days_asked_by_date_become_backfill_requests_of_at_most_90_days_to_now() {
        let server = TestServer::replying(Reply::new(202, "")).await;
        let client = client(&server.base);
        let values = client
            .daily_steps(&connection(), Some(&tokens("a")), date("2026-09-01"), date("2026-12-03"))
            .await
            .unwrap();
        assert!(values.is_empty(), "the days come through pings");
        let ranges: Vec<(i64, i64)> = server
            .requests()
            .iter()
            .map(|r| {
                assert_eq!(r.path, "/wellness-api/rest/backfill/dailies");
                let q = pairs(&r.query);
                (q["summaryStartTimeInSeconds"].parse().unwrap(), q["summaryEndTimeInSeconds"].parse().unwrap())
            })
            .collect();
        let midnight = |d: &str| utc_midnight(date(d)).unwrap().as_second();
        let now = NOW.parse::<Timestamp>().unwrap().as_second();
        assert_eq!(ranges, [(midnight("2026-08-31"), midnight("2026-11-29")), (midnight("2026-11-29"), now)]);
        assert!(ranges.iter().all(|(from, to)| to - from <= 90 * 86_400));

        // Asked already: Garmin's 409 is as good as a 202.
        let server = TestServer::replying(Reply::json(409, fixture("error_409.json"))).await;
        let asked = super::tests::client(&server.base);
        asked.daily_steps(&connection(), Some(&tokens("a")), date("2026-12-01"), date("2026-12-02")).await.unwrap();
    }

    #[tokio::test]
    async fn garmin_errors_become_the_outcomes_the_engine_knows() {
        assert!(matches!(error_for(Reply::json(401, fixture("error_401.json"))).await, ProviderError::Unauthorized));
        assert!(matches!(error_for(Reply::json(403, "{}")).await, ProviderError::ReconnectRequired { .. }));
        match error_for(Reply::json(412, fixture("error_412.json"))).await {
            ProviderError::MissingScope { scope } => assert_eq!(scope, HEALTH_PERMISSION),
            other => panic!("{other:?}"),
        }
        match error_for(Reply::json(429, "{}").with_header("retry-after", "42")).await {
            ProviderError::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(42))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_for(Reply::json(500, "{}")).await, ProviderError::Unavailable(_)));
        assert!(matches!(error_for(Reply::json(400, "{}")).await, ProviderError::BadRequest(_)));
        assert!(matches!(error_for(Reply::json(200, "{oops")).await, ProviderError::Unavailable(_)));
        let text = error_for(Reply::json(401, fixture("error_401.json"))).await.to_string();
        assert!(!text.contains("errorMessage"), "nothing of the body is echoed");
    }

    #[tokio::test]
    async fn a_spent_backfill_budget_refuses_before_anything_is_sent() {
        let server = TestServer::replying(Reply::new(202, "")).await;
        let client = client_with_quota(&server.base, vec![QuotaWindow::per_minute(1)]);
        let (start, end) = (date("2026-12-01"), date("2026-12-02"));
        client.daily_steps(&connection(), Some(&tokens("a")), start, end).await.unwrap();
        let refused = client.daily_steps(&connection(), Some(&tokens("a")), start, end).await.unwrap_err();
        assert!(matches!(refused, ProviderError::RateLimited { retry_after: Some(_) }));
        assert_eq!(server.requests().len(), 1, "the second request never left");
    }
}
