//! The fake Google's routes: the token and revoke endpoints, the webhook keyset, and the Health
//! API's identity and daily steps roll-up, each counted and open to scripted faults.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::civil::Date;
use serde_json::{Value, json};

use super::super::common::first;
use super::consent;
use super::faults::FaultTarget;
use super::state::Shared;
use super::wire::{
    ACTIVITY_SCOPE, IDENTITY_PATH, KEYSET_PATH, REVOKE_PATH, ROLLUP_PATH, Refusal, SETTINGS_PATH, SETTINGS_SCOPE,
    TOKEN_PATH, error_info, google_error, invalid_argument, invalid_request, oauth_error, rollup_point,
};

const MAX_ROLLUP_DAYS: i64 = 90;

/// Every route of the fake Google, the consent page's included; anything else is Google's 404.
pub(super) fn router(fake: Shared) -> Router {
    consent::routes()
        .route(TOKEN_PATH, post(token))
        .route(REVOKE_PATH, post(revoke))
        .route(KEYSET_PATH, get(keyset))
        .route(IDENTITY_PATH, get(identity))
        .route(SETTINGS_PATH, get(settings))
        .route(ROLLUP_PATH, post(daily_roll_up))
        .fallback(|| async { google_error(StatusCode::NOT_FOUND, "Requested entity was not found.", None) })
        .with_state(fake)
}

async fn token(
    State(fake): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    let grant_type = first(&fields, "grant_type").map(str::to_owned);
    let kind = match grant_type.as_deref() {
        Some("authorization_code") => "token_code",
        Some("refresh_token") => "token_refresh",
        _ => "token_other",
    };
    if let Some(response) = fake.received(kind, FaultTarget::Token).await {
        return response;
    }
    let mut shared = fake.lock();
    let answer = shared.client_from(&headers, &fields).and_then(|()| match grant_type.as_deref() {
        Some("authorization_code") => shared.exchange_code(&fields),
        Some("refresh_token") => shared.refresh(&fields),
        None => Err(invalid_request("Missing required parameter: grant_type")),
        Some(_) => Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type.")),
    });
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn revoke(
    State(fake): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    fake.count("revoke");
    let mut shared = fake.lock();
    // Google takes `token` in the form body or in the query string.
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let token = first(&form, "token").or_else(|| first(&query, "token")).unwrap_or_default();
    let grant = shared.refresh_tokens.get(token).copied().or_else(|| shared.access_tokens.get(token).map(|t| t.grant));
    match grant {
        Some(grant) if !shared.grants[grant].revoked => {
            shared.grants[grant].revoked = true;
            StatusCode::OK.into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked").into_response(),
    }
}

async fn keyset(State(fake): State<Shared>) -> Response {
    if let Some(response) = fake.received("keyset", FaultTarget::Keyset).await {
        return response;
    }
    Json(fake.lock().keyset_json()).into_response()
}

async fn identity(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.received("identity", FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    let legacy = shared.people.get(&grant.health_user_id).and_then(|p| p.legacy_user_id.clone()).unwrap_or_default();
    Json(json!({
        "name": "users/me/identity",
        "healthUserId": grant.health_user_id,
        "legacyUserId": legacy,
    }))
    .into_response()
}

/// Google's answer to a call whose token lacks the method's scope.
fn missing_scope(method: &str) -> Response {
    let details = error_info("MISSING_OAUTH_SCOPE", Some(json!({ "method": method })));
    google_error(StatusCode::FORBIDDEN, "The caller does not have the required scope.", Some(details)).into_response()
}

/// The user's settings; the zone is the one field StepSync reads. Without the settings scope,
/// 403 `MISSING_OAUTH_SCOPE` as for any other data.
async fn settings(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = fake.received("settings", FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    if !grant.scopes.iter().any(|s| s == SETTINGS_SCOPE) {
        return missing_scope("getSettings");
    }
    let zone = shared.people.get(&grant.health_user_id).and_then(|p| p.time_zone.clone());
    Json(json!({
        "name": "users/me/settings",
        "timeZone": zone.unwrap_or_else(|| "UTC".to_owned()),
        "distanceUnit": "KILOMETERS",
    }))
    .into_response()
}

async fn daily_roll_up(
    State(fake): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Response {
    if let Some(response) = fake.received("rollup", FaultTarget::Api).await {
        return response;
    }
    let shared = fake.lock();
    let grant = match shared.bearer_grant(&headers) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    if !grant.scopes.iter().any(|s| s == ACTIVITY_SCOPE) {
        return missing_scope("dailyRollUp");
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let request = match RollupRequest::parse(&body, first(&query, "pageToken")) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let days: Vec<(Date, u64)> = shared
        .people
        .get(&grant.health_user_id)
        .map(|p| p.steps.range(request.start..request.end).map(|(d, s)| (*d, *s)).collect())
        .unwrap_or_default();
    let offset = match &request.page_token {
        None => 0,
        Some(token) => match decode_page_token(token, request.start, request.end) {
            Some(offset) if offset <= days.len() => offset,
            _ => return invalid_argument("Invalid page token.", None).into_response(),
        },
    };
    let end = days.len().min(offset + shared.page_size);
    let page = &days[offset..end];
    // Order is undocumented: evens then odds (21, 23, 22, 24, as Google answered), never sorted.
    let points: Vec<Value> =
        page.iter().step_by(2).chain(page.iter().skip(1).step_by(2)).map(|(d, s)| rollup_point(*d, *s)).collect();
    let mut answer = serde_json::Map::new();
    // proto3 JSON leaves out an empty repeated field: no day with data is `{}`.
    if !points.is_empty() {
        answer.insert("rollupDataPoints".into(), Value::Array(points));
    }
    if end < days.len() {
        answer.insert("nextPageToken".into(), Value::String(encode_page_token(end, request.start, request.end)));
    }
    Json(Value::Object(answer)).into_response()
}

struct RollupRequest {
    start: Date,
    end: Date,
    page_token: Option<String>,
}

impl RollupRequest {
    fn parse(body: &[u8], query_page_token: Option<&str>) -> Result<Self, Refusal> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| invalid_argument(&format!("Invalid JSON payload received. {e}"), None))?;
        let start = range_date(&body, "start")?;
        let end = range_date(&body, "end")?;
        if json_int(body.get("windowSizeDays")) != Some(1) {
            return Err(invalid_argument("windowSizeDays must be 1.", None));
        }
        if end <= start {
            return Err(invalid_argument("range.end must be after range.start.", None));
        }
        if start.duration_until(end).as_hours() / 24 > MAX_ROLLUP_DAYS {
            return Err(invalid_argument(
                "The requested range exceeds the maximum.",
                Some(error_info("INVALID_ROLLUP_QUERY_DURATION", None)),
            ));
        }
        let page_token = match body.get("pageToken") {
            None | Some(Value::Null) => query_page_token.map(str::to_owned),
            Some(Value::String(token)) => Some(token.clone()),
            Some(_) => return Err(invalid_argument("pageToken must be a string.", None)),
        };
        Ok(Self { start, end, page_token: page_token.filter(|t| !t.is_empty()) })
    }
}

fn range_date(body: &Value, which: &str) -> Result<Date, Refusal> {
    let bad = || invalid_argument(&format!("Invalid value at 'range.{which}.date'."), None);
    let date = body.get("range").and_then(|r| r.get(which)).and_then(|b| b.get("date")).ok_or_else(bad)?;
    let part = |name: &str| json_int(date.get(name));
    let (Some(year), Some(month), Some(day)) = (part("year"), part("month"), part("day")) else {
        return Err(bad());
    };
    let year = i16::try_from(year).map_err(|_| bad())?;
    let month = i8::try_from(month).map_err(|_| bad())?;
    let day = i8::try_from(day).map_err(|_| bad())?;
    Date::new(year, month, day).map_err(|_| bad())
}

/// An integer field as proto3 JSON allows it: a number or a decimal string.
fn json_int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

// The page token is opaque to clients; it binds the offset to the range it was issued for.
fn encode_page_token(offset: usize, start: Date, end: Date) -> String {
    URL_SAFE_NO_PAD.encode(format!("rollup:{offset}:{start}:{end}"))
}

fn decode_page_token(token: &str, start: Date, end: Date) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (tag, offset, token_start, token_end) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let same_range = token_start == start.to_string() && token_end == end.to_string();
    (tag == "rollup" && same_range && parts.next().is_none()).then(|| offset.parse().ok()).flatten()
}
