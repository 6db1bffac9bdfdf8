//! The fake Garmin's routes: the consent page (PKCE required), the token endpoint, the Health
//! API's user id, registration and permissions, the dailies by upload window (at most 24 hours,
//! with a ping's pull token), and backfill requests (at most 90 days, the same range once, the
//! app's days a minute) that make the fake ping the days again.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use reqwest::Url;
use serde_json::{Value, json};

use super::super::common::{
    account_picker, bearer_token, decision_forms, escape_html, first, found, hidden_inputs, http_url, page,
};
use super::state::{GarminState, Shared, backfill_days, days_started_in, expired, minute_of};
use super::{
    AUTHORIZE_PATH, BACKFILL_PATH, CONSENT_PATH, DAILIES_PATH, FaultTarget, PERMISSIONS_PATH, REGISTRATION_PATH,
    TOKEN_PATH, USER_ID_PATH, send_ping,
};

const MAX_UPLOAD_WINDOW: i64 = 86_400;
const MAX_BACKFILL_SECS: i64 = 90 * 86_400;

pub(super) fn router(fake: Shared) -> Router {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route(CONSENT_PATH, post(consent))
        .route(TOKEN_PATH, post(token))
        .route(USER_ID_PATH, get(user_id))
        .route(REGISTRATION_PATH, axum::routing::delete(deregister))
        .route(PERMISSIONS_PATH, get(permissions))
        .route(DAILIES_PATH, get(dailies))
        .route(BACKFILL_PATH, get(backfill))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found") })
        .layer(middleware::from_fn_with_state(fake.clone(), count))
        .with_state(fake)
}

/// Garmin's error body.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    Refused(status, message.to_owned()).into_response()
}

/// A refusal, answered in Garmin's error body.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "errorMessage": self.1 }))).into_response()
    }
}

/// Counts every request by kind and applies the faults scripted for its target.
async fn count(State(fake): State<Shared>, request: axum::extract::Request, next: Next) -> Response {
    let (kind, target) = match (request.method(), request.uri().path()) {
        (_, AUTHORIZE_PATH) => ("authorize", None),
        (_, CONSENT_PATH) => ("consent", None),
        (_, TOKEN_PATH) => ("token", Some(FaultTarget::Token)),
        (_, USER_ID_PATH) => ("user_id", Some(FaultTarget::Api)),
        (&Method::DELETE, REGISTRATION_PATH) => ("deregister", Some(FaultTarget::Api)),
        (_, PERMISSIONS_PATH) => ("permissions", Some(FaultTarget::Api)),
        (_, DAILIES_PATH) => ("dailies", Some(FaultTarget::Api)),
        (_, BACKFILL_PATH) => ("backfill", Some(FaultTarget::Api)),
        _ => ("other", None),
    };
    fake.count(kind);
    if let Some(target) = target
        && let Some(faulted) = fake.take_fault(target).await
    {
        return faulted;
    }
    next.run(request).await
}

/// The person behind a bearer token: 401 for an unknown or expired one, 403 for one whose
/// grant the person ended (Garmin's "invalidated by the user removing their consent").
fn reader(fake: &Shared, headers: &HeaderMap) -> Result<String, Refused> {
    let shared = fake.lock();
    let grant = bearer_token(headers).and_then(|t| shared.access.get(t));
    match grant {
        None => Err(Refused(StatusCode::UNAUTHORIZED, "Unauthorized: the access token is missing or unknown".into())),
        Some(g) if g.revoked => Err(Refused(StatusCode::FORBIDDEN, "The user access token is invalid".into())),
        Some(g) if expired(g.expires_at) => Err(Refused(StatusCode::UNAUTHORIZED, "The access token expired".into())),
        Some(g) => Ok(g.user_id.clone()),
    }
}

/// As `reader`, for a summary read: 412 when the person does not share health data.
fn health_reader(fake: &Shared, headers: &HeaderMap) -> Result<String, Refused> {
    let user = reader(fake, headers)?;
    if !fake.lock().people.get(&user).is_some_and(|p| p.shares_health()) {
        let why = "User has not given permission for this summary type";
        return Err(Refused(StatusCode::PRECONDITION_FAILED, why.into()));
    }
    Ok(user)
}

fn seconds(params: &[(String, String)], name: &str) -> Result<i64, Refused> {
    first(params, name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Refused(StatusCode::BAD_REQUEST, format!("{name} is required, in seconds")))
}

/// A summary read's person and time range (the query's `start` and `end` names, in seconds,
/// at most `longest` apart): 400 for a range missing, reversed or too long.
fn health_read_of(
    fake: &Shared,
    headers: &HeaderMap,
    params: &[(String, String)],
    (start, end, longest): (&str, &str, i64),
) -> Result<(String, i64, i64), Refused> {
    let user = health_reader(fake, headers)?;
    let (from, to) = (seconds(params, start)?, seconds(params, end)?);
    if to <= from || to - from > longest {
        let why = format!("{start}..{end} must be positive and at most {longest} seconds");
        return Err(Refused(StatusCode::BAD_REQUEST, why));
    }
    Ok((user, from, to))
}

async fn token(State(fake): State<Shared>, Form(fields): Form<Vec<(String, String)>>) -> Response {
    match fake.lock().token(&fields) {
        Ok(answer) => Json(answer).into_response(),
        Err((status, code)) => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), Json(json!({ "error": code })))
                .into_response()
        }
    }
}

async fn user_id(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match reader(&fake, &headers) {
        Ok(user) => Json(json!({ "userId": user })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn permissions(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match reader(&fake, &headers) {
        Ok(user) => Json(fake.lock().person_mut(&user).permissions.clone()).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The partner ends the registration: the tokens stop working, and Garmin sends the
/// deregistration notice as for one the person made.
async fn deregister(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let user = match reader(&fake, &headers) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let url = {
        let mut shared = fake.lock();
        shared.revoke(&user);
        shared.ping_url.clone()
    };
    if let Some(url) = url {
        send_ping(&fake, &url, json!({ "deregistrations": [{ "userId": user }] })).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The summaries uploaded in `[start, end)`: at most 24 hours, with the pull token of a ping
/// that named this person and covers the window.
async fn dailies(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let range = ("uploadStartTimeInSeconds", "uploadEndTimeInSeconds", MAX_UPLOAD_WINDOW);
    let (user, start, end) = match health_read_of(&fake, &headers, &params, range) {
        Ok(read) => read,
        Err(refused) => return refused.into_response(),
    };
    let shared = fake.lock();
    let pull = first(&params, "token").and_then(|t| shared.pull_tokens.get(t));
    let allowed = pull.is_some_and(|p| p.user_id == user && p.start <= start && end <= p.end && !expired(p.expires_at));
    if !allowed {
        return error(StatusCode::BAD_REQUEST, "The pull token is missing, expired or for another request");
    }
    let summaries: Vec<Value> = shared
        .uploads
        .iter()
        .filter(|u| u.user_id == user && (start..end).contains(&u.at))
        .flat_map(|u| u.summaries.iter().cloned())
        .collect();
    Json(summaries).into_response()
}

/// A backfill: 202 at once, then a ping of the days whose summaries started in the range.
async fn backfill(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let range = ("summaryStartTimeInSeconds", "summaryEndTimeInSeconds", MAX_BACKFILL_SECS);
    let (user, from, to) = match health_read_of(&fake, &headers, &params, range) {
        Ok(read) => read,
        Err(refused) => return refused.into_response(),
    };
    let ping = {
        let mut shared = fake.lock();
        let minute = minute_of(jiff::Timestamp::now().as_second());
        *shared.backfill_requests.entry(minute).or_default() += 1;
        let days = backfill_days(from, to);
        let spent = shared.backfill_days.get(&minute).copied().unwrap_or(0);
        if spent + days > shared.backfill_days_per_minute {
            let retry = [("retry-after", (60 - jiff::Timestamp::now().as_second().rem_euclid(60)).to_string())];
            return (retry, error(StatusCode::TOO_MANY_REQUESTS, "Backfill rate limit exceeded")).into_response();
        }
        *shared.backfill_days.entry(minute).or_default() += days;
        if !shared.backfills.insert((user.clone(), from, to)) {
            return error(StatusCode::CONFLICT, "Duplicate backfill request: this time range was requested already");
        }
        let days = shared.people.get(&user).map(|p| days_started_in(p, from, to)).unwrap_or_default();
        let uploaded = shared.upload(&user, &days);
        shared.ping_url.clone().zip(uploaded)
    };
    if let Some((url, (start, end, token))) = ping {
        let base = fake.lock().base_url.clone();
        send_ping(&fake, &url, super::daily_ping(&base, &user, start, end, &token)).await;
    }
    StatusCode::ACCEPTED.into_response()
}

// --- the consent page ---

/// An authorize request as the consent page checks it: this app, `code`, an http(s) redirect
/// URI and an S256 PKCE challenge (Garmin requires one).
pub(super) struct Authorize {
    params: Vec<(&'static str, String)>,
    redirect_uri: Url,
    redirect_raw: String,
    challenge: String,
    state: Option<String>,
}

impl Authorize {
    pub(super) fn parse(params: &[(String, String)], client_id: &str) -> Result<Self, String> {
        if first(params, "client_id") != Some(client_id) {
            return Err("Invalid client_id.".into());
        }
        if first(params, "response_type") != Some("code") {
            return Err("response_type must be code.".into());
        }
        let raw_redirect = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(raw_redirect).ok_or("redirect_uri is missing or not an http(s) URL.")?;
        let challenge =
            first(params, "code_challenge").filter(|c| !c.is_empty()).ok_or("code_challenge is required.")?;
        if first(params, "code_challenge_method") != Some("S256") {
            return Err("code_challenge_method must be S256.".into());
        }
        let mut kept = vec![
            ("response_type", "code".to_owned()),
            ("client_id", client_id.to_owned()),
            ("redirect_uri", raw_redirect.to_owned()),
            ("code_challenge", challenge.to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        let state = first(params, "state").map(str::to_owned);
        kept.extend(state.clone().map(|s| ("state", s)));
        Ok(Self {
            params: kept,
            redirect_uri,
            redirect_raw: raw_redirect.to_owned(),
            challenge: challenge.to_owned(),
            state,
        })
    }

    /// The redirect back: with a code for `user` (whose registration it makes), or
    /// `error=access_denied`.
    pub(super) fn decide(&self, shared: &mut GarminState, user: Option<&str>) -> Result<String, String> {
        let mut location = self.redirect_uri.clone();
        {
            let mut query = location.query_pairs_mut();
            match user {
                None => {
                    query.append_pair("error", "access_denied");
                }
                Some(user) => {
                    if !shared.people.contains_key(user) {
                        return Err(format!("No Garmin account {user} on this fake: add_person first."));
                    }
                    query.append_pair("code", &shared.issue_code(user, &self.challenge, &self.redirect_raw));
                }
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
        }
        Ok(location.to_string())
    }

    fn with_user(&self, user: Option<&str>) -> Vec<(&'static str, String)> {
        let mut params = self.params.clone();
        params.extend(user.map(|u| ("login_hint", u.to_owned())));
        params
    }
}

fn error_page(message: &str) -> Response {
    let body = format!("<h1>Authorization error</h1>\n<p id=\"error\">{}</p>", escape_html(message));
    (StatusCode::BAD_REQUEST, Html(page("Error (fake Garmin)", &body))).into_response()
}

async fn authorize_page(State(fake): State<Shared>, Query(params): Query<Vec<(String, String)>>) -> Response {
    let client_id = fake.lock().client_id.clone();
    let request = match Authorize::parse(&params, &client_id) {
        Ok(request) => request,
        Err(why) => return error_page(&why),
    };
    let people: Vec<String> = fake.lock().people.keys().cloned().collect();
    match first(&params, "login_hint") {
        None => {
            let href = |user: &str| {
                let query = Url::parse_with_params("http://fake.invalid/", &request.with_user(Some(user)))
                    .ok()
                    .and_then(|u| u.query().map(str::to_owned))
                    .unwrap_or_default();
                format!("{AUTHORIZE_PATH}?{query}")
            };
            let accounts = people.iter().map(|p| (p.as_str(), href(p)));
            Html(account_picker("Sign in (fake Garmin)", "Sign in to Garmin Connect", "data-user-id", accounts))
                .into_response()
        }
        Some(user) if !people.iter().any(|p| p == user) => error_page(&format!("No Garmin account {user}.")),
        Some(user) => {
            let fields = |u| hidden_inputs(request.with_user(u).iter().map(|(k, v)| (*k, v.as_str())));
            let body = format!(
                "<h1>Garmin Connect (fake)</h1>\n<p id=\"account\">Signed in as <b>{}</b></p>\n\
                 <p><b>{}</b> would like your daily health data (HEALTH_EXPORT).</p>\n{}",
                escape_html(user),
                escape_html(&client_id),
                decision_forms(CONSENT_PATH, &fields(Some(user)), &fields(None), "Deny"),
            );
            Html(page("Authorize (fake Garmin)", &body)).into_response()
        }
    }
}

async fn consent(State(fake): State<Shared>, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let client_id = fake.lock().client_id.clone();
    let request = match Authorize::parse(&fields, &client_id) {
        Ok(request) => request,
        Err(why) => return error_page(&why),
    };
    let user = match (first(&fields, "decision"), first(&fields, "login_hint")) {
        (Some("deny"), _) => None,
        (Some("approve"), Some(user)) => Some(user),
        _ => return error_page("decision must be approve (with an account) or deny."),
    };
    let decided = request.decide(&mut fake.lock(), user);
    match decided {
        Ok(location) => found(&location).unwrap_or_else(|| error_page("The redirect URL is not a valid header.")),
        Err(why) => error_page(&why),
    }
}
