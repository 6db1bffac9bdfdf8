//! Polar on the wire: its paths and header names, the JSON it answers (tokens, users, activity
//! summaries, webhooks) and sends (notices, PINGs), AccessLink's error body, and the webhook
//! signature.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

// --- OAuth (https://flow.polar.com for the page, https://polarremote.com for the token) ---

pub const AUTHORIZE_PATH: &str = "/oauth2/authorization";
/// The fake's own: where the consent page's forms post (Polar Flow's page is not an API).
pub const CONSENT_PATH: &str = "/oauth2/authorization/decision";
pub const TOKEN_PATH: &str = "/v2/oauth2/token";
/// AccessLink's one scope.
pub const SCOPE_READ_ALL: &str = "accesslink.read_all";

// --- AccessLink (https://www.polaraccesslink.com) ---

pub const USERS_PATH: &str = "/v3/users";
/// `GET` and `DELETE /v3/users/{user-id}`.
pub const USER_ROUTE: &str = "/v3/users/{user_id}";
pub const ACTIVITIES_PATH: &str = "/v3/users/activities";
/// `GET /v3/users/activities/{date}`.
pub const ACTIVITY_DAY_ROUTE: &str = "/v3/users/activities/{date}";
pub const WEBHOOKS_PATH: &str = "/v3/webhooks";
pub const WEBHOOK_ACTIVATE_PATH: &str = "/v3/webhooks/activate";
pub const WEBHOOK_DEACTIVATE_PATH: &str = "/v3/webhooks/deactivate";
/// `PATCH` and `DELETE /v3/webhooks/{webhook-id}`.
pub const WEBHOOK_ROUTE: &str = "/v3/webhooks/{webhook_id}";

/// The longest `from`..`to` one activities request may span, both days counted.
pub const MAX_RANGE_DAYS: i64 = 28;
/// The oldest day AccessLink answers, in days before today.
pub const MAX_AGE_DAYS: i64 = 365;
/// `expires_in` of every token: about ten years (Polar's tokens do not expire in practice).
pub const TOKEN_EXPIRES_IN: u64 = 315_359_999;

// --- webhooks ---

/// Lower-case hex HMAC-SHA256 of the raw body, keyed with the `signature_secret_key`.
pub const SIGNATURE_HEADER: &str = "polar-webhook-signature";
/// The event of the body (`PING`, `ACTIVITY_SUMMARY`, ...).
pub const EVENT_HEADER: &str = "polar-webhook-event";
pub const ACTIVITY_SUMMARY: &str = "ACTIVITY_SUMMARY";
pub const PING: &str = "PING";
/// Every event type a webhook may subscribe to (AccessLink's `webhookType`).
pub const EVENT_TYPES: [&str; 7] = [
    "EXERCISE",
    "SLEEP",
    "CONTINUOUS_HEART_RATE",
    "SLEEP_WISE_CIRCADIAN_BEDTIME",
    "SLEEP_WISE_ALERTNESS",
    "ACTIVITY_SUMMARY",
    "PHYSICAL_INFORMATION",
];

/// `Polar-Webhook-Signature` for `body`: HMAC-SHA256 keyed with the webhook's
/// `signature_secret_key`, in lower-case hex.
pub fn signature(signature_secret_key: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signature_secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// An instant as Polar writes a notice's `timestamp`: `2026-11-24T07:12:09Z`.
pub(super) fn utc_time(at: Timestamp) -> String {
    at.to_zoned_datetime(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[derive(Serialize)]
pub(super) struct TokenJson {
    pub(super) access_token: String,
    pub(super) token_type: &'static str,
    pub(super) x_user_id: u64,
    pub(super) expires_in: u64,
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
// Users and activity summaries

pub(super) fn user_json(user_id: u64, member_id: &str, registered_at: Timestamp) -> Value {
    json!({
        "polar-user-id": user_id,
        "member-id": member_id,
        "registration-date": registered_at.to_zoned_datetime(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        "first-name": "Eka",
        "last-name": "Toka",
        "birthdate": "1985-09-06",
        "gender": "FEMALE",
        "weight": 66.0,
        "height": 170.0,
        "extra-info": [],
    })
}

/// One activity summary as `/v3/users/activities` lists it: the day on the device's own clock
/// (no zone), the other measures following from the steps as in the fixtures.
pub(super) fn activity_summary(day: Date, steps: u64) -> Value {
    json!({
        "start_time": format!("{day}T00:00:00"),
        "end_time": format!("{day}T23:59:59"),
        "active_duration": "PT3H11M",
        "inactive_duration": "PT18H23M30S",
        "daily_activity": 89.1,
        "calories": 1800 + steps * 4 / 100,
        "active_calories": steps * 4 / 100,
        "steps": steps,
        "inactivity_alert_count": 1,
        "distance_from_steps": (steps as f64 * 0.74 * 100.0).round() / 100.0,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// How AccessLink refuses a request.
#[derive(Debug)]
pub(super) enum Refusal {
    /// `{"timestamp", "status", "errorType", "message", "corrId"}`.
    Error { status: StatusCode, error_type: &'static str, message: String },
    /// The token endpoint: RFC 6749's `error` and `error_description`.
    OAuth { status: StatusCode, error: &'static str, description: &'static str },
    /// 429 with the window's usage, limit and reset (seconds) in `RateLimit-*` headers.
    RateLimited { usage: u64, limit: u64, reset: u64 },
    /// 204: AccessLink's "no such thing" for some lookups.
    NoContent,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Error { status, error_type, message } => {
                (status, Json(error_body(status, error_type, &message))).into_response()
            }
            Refusal::OAuth { status, error, description } => {
                (status, Json(json!({ "error": error, "error_description": description }))).into_response()
            }
            Refusal::RateLimited { usage, limit, reset } => {
                let status = StatusCode::TOO_MANY_REQUESTS;
                let mut response =
                    (status, Json(error_body(status, "TOO_MANY_REQUESTS", "Rate limit exceeded"))).into_response();
                for (name, value) in
                    [("ratelimit-usage", usage), ("ratelimit-limit", limit), ("ratelimit-reset", reset)]
                {
                    response.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from(value));
                }
                response
            }
            Refusal::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

fn error_body(status: StatusCode, error_type: &str, message: &str) -> Value {
    json!({
        "timestamp": Timestamp::now().to_zoned_datetime(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        "status": status.as_u16(),
        "errorType": error_type,
        "message": message,
        "corrId": super::super::common::random_token("corr-"),
    })
}

pub(super) fn error(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Error { status, error_type, message: message.into() }
}

pub(super) fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Refusal {
    Refusal::OAuth { status, error, description }
}

pub(super) fn unauthorized() -> Refusal {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized")
}

pub(super) fn consents_missing() -> Refusal {
    error(StatusCode::FORBIDDEN, "FORBIDDEN", "User has not accepted all mandatory consents")
}

pub(super) fn bad_request(message: impl Into<String>) -> Refusal {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

pub(super) fn not_found(message: impl Into<String>) -> Refusal {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

pub(super) fn conflict(message: impl Into<String>) -> Refusal {
    error(StatusCode::CONFLICT, "CONFLICT", message)
}
