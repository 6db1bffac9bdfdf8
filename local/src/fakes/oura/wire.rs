//! Oura on the wire: its paths, scopes and header names, the JSON it answers (tokens, daily
//! activity documents, subscriptions) and sends (notifications), its error shapes, and the
//! webhook signature.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// --- OAuth (https://cloud.ouraring.com for the page, https://api.ouraring.com for the rest) ---

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The fake's own: where the consent page's forms post (Oura's page is not an API).
pub const CONSENT_PATH: &str = "/oauth/authorize/decision";
pub const TOKEN_PATH: &str = "/oauth/token";
/// `GET /oauth/revoke?access_token=..`
pub const REVOKE_PATH: &str = "/oauth/revoke";

// --- the API (https://api.ouraring.com) ---

pub const PERSONAL_INFO_PATH: &str = "/v2/usercollection/personal_info";
pub const DAILY_ACTIVITY_PATH: &str = "/v2/usercollection/daily_activity";
pub const SUBSCRIPTION_PATH: &str = "/v2/webhook/subscription";
/// `GET`, `PUT` (update) and `DELETE /v2/webhook/subscription/{id}`.
pub const SUBSCRIPTION_ID_ROUTE: &str = "/v2/webhook/subscription/{id}";
/// `PUT /v2/webhook/subscription/renew/{id}`.
pub const SUBSCRIPTION_RENEW_ROUTE: &str = "/v2/webhook/subscription/renew/{id}";
pub(super) const SUBSCRIPTION_RENEW_PREFIX: &str = "/v2/webhook/subscription/renew/";

// --- scopes, as Oura's authorization docs list them ---

pub const SCOPE_EMAIL: &str = "email";
pub const SCOPE_PERSONAL: &str = "personal";
pub const SCOPE_DAILY: &str = "daily";
/// Every scope Oura documents; an authorize request without `scope` asks for all of them.
pub const ALL_SCOPES: [&str; 8] = ["email", "personal", "daily", "heartrate", "workout", "tag", "session", "spo2Daily"];

// --- webhooks ---

/// The app credentials every `/v2/webhook/subscription` call carries.
pub const CLIENT_ID_HEADER: &str = "x-client-id";
pub const CLIENT_SECRET_HEADER: &str = "x-client-secret";
/// Unix seconds, as a decimal string.
pub const TIMESTAMP_HEADER: &str = "x-oura-timestamp";
/// Upper-case hex HMAC-SHA256, keyed with the client secret, over the timestamp then the body.
pub const SIGNATURE_HEADER: &str = "x-oura-signature";
/// The one data type the fake has documents of.
pub const DAILY_ACTIVITY: &str = "daily_activity";
/// Every `data_type` a subscription may name (Oura's `ExtApiV2DataType`).
pub const DATA_TYPES: [&str; 17] = [
    "tag",
    "enhanced_tag",
    "workout",
    "session",
    "sleep",
    "daily_sleep",
    "daily_readiness",
    "daily_activity",
    "daily_spo2",
    "sleep_time",
    "rest_mode_period",
    "ring_configuration",
    "daily_stress",
    "daily_resilience",
    "daily_cardiovascular_age",
    "vo2_max",
    "heartrate",
];

/// A subscription's and a notification's `event_type` (Oura's `WebhookOperation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Create,
    Update,
    Delete,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Create => "create",
            EventType::Update => "update",
            EventType::Delete => "delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "create" => Some(EventType::Create),
            "update" => Some(EventType::Update),
            "delete" => Some(EventType::Delete),
            _ => None,
        }
    }
}

/// `x-oura-signature` for `body` sent at `timestamp` (the `x-oura-timestamp` string): HMAC-SHA256
/// keyed with the client secret over the timestamp's bytes then the body's, in upper-case hex.
pub fn signature(client_secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02X}")).collect()
}

/// An instant as Oura writes them: `2026-11-24T07:12:09+00:00`.
pub(super) fn utc_time(at: Timestamp) -> String {
    at.to_zoned_datetime(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[derive(Serialize)]
pub(super) struct TokenJson {
    pub(super) token_type: &'static str,
    pub(super) access_token: String,
    pub(super) expires_in: u64,
    pub(super) refresh_token: String,
    pub(super) scope: String,
}

/// The client of an `Authorization: Basic` header: (id, secret).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Daily activity

/// Oura's document id is a UUID, stable for the person's day: a correction keeps it.
pub(super) fn document_id(user_id: &str, day: Date) -> String {
    let digest = Sha256::digest(format!("fake-oura/daily_activity/{user_id}/{day}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Oura's day starts at 04:00 local time: a daily document's `timestamp`.
pub(super) fn day_start(day: Date, zone: &TimeZone) -> Option<Timestamp> {
    day.at(4, 0, 0, 0).to_zoned_datetime(zone.clone()).ok().map(|z| z.timestamp())
}

/// One `DailyActivityModel`; the other measures follow from the steps, near the ratios of
/// Oura's own examples.
pub(super) fn daily_activity_document(user_id: &str, day: Date, steps: u64, zone: &TimeZone) -> Value {
    let timestamp = day
        .at(4, 0, 0, 0)
        .to_zoned_datetime(zone.clone())
        .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default();
    let active_calories = steps * 4 / 100;
    let walking_distance = steps * 3 / 4;
    let score = (40 + steps / 250).min(100);
    let high = (steps / 40).min(7200);
    let medium = (steps / 8).min(14_400);
    let low = (steps / 2).min(28_800);
    json!({
        "id": document_id(user_id, day),
        "active_calories": active_calories,
        "average_met_minutes": 1.4,
        "contributors": {
            "meet_daily_targets": 60,
            "move_every_hour": 95,
            "recovery_time": 100,
            "stay_active": 80,
            "training_frequency": 71,
            "training_volume": 98,
        },
        "day": day.to_string(),
        "equivalent_walking_distance": walking_distance,
        "high_activity_met_minutes": high / 60 * 8,
        "high_activity_time": high,
        "inactivity_alerts": 0,
        "low_activity_met_minutes": low / 60 * 2,
        "low_activity_time": low,
        "medium_activity_met_minutes": medium / 60 * 4,
        "medium_activity_time": medium,
        "meters_to_target": 8000u64.saturating_sub(walking_distance),
        "non_wear_time": 0,
        "resting_time": 28_800,
        "score": score,
        "sedentary_met_minutes": 12,
        "sedentary_time": 30_000,
        "steps": steps,
        "target_calories": 450,
        "target_meters": 8000,
        "total_calories": 1800 + active_calories,
        "timestamp": timestamp,
    })
}

// The next_token is opaque to clients; it binds the offset to the query it was issued for.
pub(super) fn encode_next_token(offset: usize, query: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}|{query}"))
}

pub(super) fn decode_next_token(token: &str, query: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (offset, bound_to) = raw.split_once('|')?;
    (bound_to == query).then(|| offset.parse().ok()).flatten()
}

// ---------------------------------------------------------------------------------------------
// Errors

/// How Oura refuses a request.
#[derive(Debug)]
pub(super) enum Refusal {
    /// RFC 7807: `{"status", "title", "detail"}` (Oura's error-handling page).
    Problem { status: StatusCode, title: &'static str, detail: String },
    /// The OAuth endpoints: RFC 6749's `error` and `error_description` beside the RFC 7807 fields.
    OAuth { status: StatusCode, error: &'static str, description: &'static str },
    /// FastAPI's request validation: 422 `{"detail": [{"loc", "msg", "type"}]}`.
    Validation { location: Vec<String>, message: String },
    /// 429, with `Retry-After` (seconds) when given.
    RateLimited { retry_after: Option<u64> },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Problem { status, title, detail } => {
                (status, Json(json!({ "status": status.as_u16(), "title": title, "detail": detail }))).into_response()
            }
            Refusal::OAuth { status, error, description } => {
                let title = status.canonical_reason().unwrap_or_default();
                let body = json!({
                    "status": status.as_u16(),
                    "title": title,
                    "error": error,
                    "error_description": description,
                });
                (status, Json(body)).into_response()
            }
            Refusal::Validation { location, message } => {
                let body = json!({ "detail": [{ "loc": location, "msg": message, "type": "value_error" }] });
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
            Refusal::RateLimited { retry_after } => {
                let body = json!({
                    "status": 429,
                    "title": "Request Rate Limit Exceeded.",
                    "detail": "Too many requests: the application's rate limit was exceeded.",
                });
                let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}

pub(super) fn problem(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal::Problem { status, title, detail: detail.into() }
}

pub(super) fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Refusal {
    Refusal::OAuth { status, error, description }
}

pub(super) fn invalid_request(description: &'static str) -> Refusal {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

pub(super) fn invalid_grant(description: &'static str) -> Refusal {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

pub(super) fn invalid_client() -> Refusal {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client_id or client_secret.")
}

pub(super) fn unauthorized(detail: &str) -> Refusal {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
}

pub(super) fn missing_scope(scope: &str) -> Refusal {
    problem(StatusCode::UNAUTHORIZED, "Missing Scopes", format!("Missing required scopes: {scope}"))
}

pub(super) fn membership_lapsed() -> Refusal {
    problem(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "The user's subscription to Oura has expired and their data is not available via the API.",
    )
}

pub(super) fn validation(location: &[&str], message: impl Into<String>) -> Refusal {
    Refusal::Validation { location: location.iter().map(|s| (*s).to_owned()).collect(), message: message.into() }
}

pub(super) fn not_found() -> Refusal {
    problem(StatusCode::NOT_FOUND, "Not Found", "Not Found")
}
