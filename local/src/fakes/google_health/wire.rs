//! Google Health on the wire: the protocol's names and paths, the JSON it answers and sends
//! (tokens, errors, roll-up points, notifications, Tink keys), and the checks on what clients send.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::civil::{Date, DateTime};
use p256::ecdsa::VerifyingKey;
use serde::Serialize;
use serde_json::{Value, json};

/// The scope that reads steps; `dailyRollUp` answers 403 `MISSING_OAUTH_SCOPE` without it.
pub const ACTIVITY_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly";
/// The optional scope for the user's IANA time zone.
pub const SETTINGS_SCOPE: &str = "https://www.googleapis.com/auth/googlehealth.settings.readonly";
/// The header Google signs webhooks in (one guide says `GOOGLE-HEALTH-API-SIGNATURE`).
pub const SIGNATURE_HEADER: &str = "X-HEALTHAPI-SIGNATURE";
/// The subscription name notifications carry unless a `Notification` sets another.
pub const DEFAULT_SUBSCRIPTION_NAME: &str = "5e0b8a4c-7d21-4f6e-9a3b-c1d2e3f4a5b6";
/// The handshake body, byte for byte as Google sends it.
pub const VERIFICATION_BODY: &str = r#"{"type": "verification"}"#;

pub(super) const HEALTH_DOMAIN: &str = "health.googleapis.com";
pub(super) const TINK_ECDSA_PUBLIC_KEY: &str = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey";

pub(super) const AUTH_PATH: &str = "/o/oauth2/v2/auth";
pub(super) const CONSENT_PATH: &str = "/o/oauth2/consent";
pub(super) const TOKEN_PATH: &str = "/token";
pub(super) const REVOKE_PATH: &str = "/revoke";
pub(super) const KEYSET_PATH: &str = "/keyset";
pub(super) const IDENTITY_PATH: &str = "/v4/users/me/identity";
pub(super) const SETTINGS_PATH: &str = "/v4/users/me/settings";
pub(super) const ROLLUP_PATH: &str = "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp";

// ---------------------------------------------------------------------------------------------
// Notifications

// Field order is Google's: a subscriber verifies the signature over these exact bytes.
#[derive(Serialize)]
pub(super) struct NotificationEnvelope<'a> {
    pub(super) data: NotificationData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NotificationData<'a> {
    pub(super) version: &'a str,
    pub(super) client_provided_subscription_name: &'a str,
    pub(super) health_user_id: &'a str,
    pub(super) operation: &'a str,
    pub(super) data_type: &'a str,
    pub(super) intervals: Vec<IntervalJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IntervalJson {
    pub(super) physical_time_interval: TimeInterval,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) civil_date_time_interval: Option<CivilInterval>,
    #[serde(rename = "civilIso8601TimeInterval", skip_serializing_if = "Option::is_none")]
    pub(super) civil_iso8601_time_interval: Option<TimeInterval>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TimeInterval {
    pub(super) start_time: String,
    pub(super) end_time: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CivilInterval {
    pub(super) start_date_time: CivilDateTimeJson,
    pub(super) end_date_time: CivilDateTimeJson,
}

#[derive(Serialize)]
pub(super) struct CivilDateTimeJson {
    date: DateJson,
    time: TimeOfDayJson,
}

#[derive(Serialize)]
pub(super) struct DateJson {
    year: i16,
    month: i8,
    day: i8,
}

/// google.type.TimeOfDay in proto3 JSON: zero fields are left out, so midnight is `{}`.
#[derive(Serialize)]
pub(super) struct TimeOfDayJson {
    #[serde(skip_serializing_if = "is_zero_i8")]
    hours: i8,
    #[serde(skip_serializing_if = "is_zero_i8")]
    minutes: i8,
    #[serde(skip_serializing_if = "is_zero_i8")]
    seconds: i8,
    #[serde(skip_serializing_if = "is_zero_i32")]
    nanos: i32,
}

fn is_zero_i8(v: &i8) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl From<DateTime> for CivilDateTimeJson {
    fn from(dt: DateTime) -> Self {
        Self {
            date: DateJson { year: dt.year(), month: dt.month(), day: dt.day() },
            time: TimeOfDayJson {
                hours: dt.hour(),
                minutes: dt.minute(),
                seconds: dt.second(),
                nanos: dt.subsec_nanosecond(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roll-up points

/// One roll-up point. The forms vary by day so clients meet all of them, as Google's answers do:
/// odd days send `countSum` as a string (`"0"` a true zero), even days as a JSON number and a
/// zero as `steps: {}`; days ≡ 2 (mod 4) leave out `time` (midnight).
pub(super) fn rollup_point(date: Date, steps: u64) -> Value {
    let next = date.tomorrow().unwrap_or(date);
    let civil = |d: Date| {
        let ymd = json!({ "year": d.year(), "month": d.month(), "day": d.day() });
        if date.day() % 4 == 2 { json!({ "date": ymd }) } else { json!({ "date": ymd, "time": {} }) }
    };
    let steps = match (date.day() % 2 == 0, steps) {
        (true, 0) => json!({}),
        (true, n) => json!({ "countSum": n }),
        (false, n) => json!({ "countSum": n.to_string() }),
    };
    json!({ "civilStartTime": civil(date), "civilEndTime": civil(next), "steps": steps })
}

// ---------------------------------------------------------------------------------------------
// OAuth, keys and errors

/// Tink's `EcdsaPublicKey` protobuf, written by hand: version 0; params {hash SHA256 = 3,
/// curve NIST_P256 = 2, encoding DER = 2}; x and y as 33 bytes with a leading zero, as Google's.
pub(super) fn tink_ecdsa_public_key(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    // Uncompressed SEC1: 0x04 || x (32) || y (32).
    let bytes = point.as_bytes();
    let (x, y) = (bytes.get(1..33).unwrap_or_default(), bytes.get(33..65).unwrap_or_default());
    let mut out = vec![0x08, 0x00, 0x12, 0x06, 0x08, 0x03, 0x10, 0x02, 0x18, 0x02];
    for (tag, coordinate) in [(0x1a, x), (0x22, y)] {
        out.push(tag);
        out.push(33);
        out.push(0x00);
        out.extend_from_slice(coordinate);
    }
    out
}

/// RFC 7636: 43 to 128 unreserved characters.
pub(super) fn is_valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), Some(secret.to_owned())))
}

#[derive(Serialize)]
struct TokenJson<'a> {
    access_token: String,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    token_type: &'a str,
}

pub(super) fn token_response(
    access_token: String,
    refresh_token: Option<String>,
    scopes: &[String],
    lifetime: Duration,
) -> Response {
    let body = TokenJson {
        access_token,
        expires_in: lifetime.as_secs(),
        refresh_token,
        scope: scopes.join(" "),
        token_type: "Bearer",
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A refusal in one of Google's two error shapes, turned into a response at the edge.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The API shape: `{"error": {"code", "message", "status", "details"?}}`.
    Api { status: StatusCode, message: String, detail: Option<Value> },
    /// The OAuth shape: `{"error", "error_description"}`.
    OAuth { status: StatusCode, error: &'static str, description: &'static str },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::OAuth { status, error, description } => {
                (status, Json(json!({ "error": error, "error_description": description }))).into_response()
            }
            Refusal::Api { status, message, detail } => {
                let status_name = match status.as_u16() {
                    400 => "INVALID_ARGUMENT",
                    401 => "UNAUTHENTICATED",
                    403 => "PERMISSION_DENIED",
                    404 => "NOT_FOUND",
                    429 => "RESOURCE_EXHAUSTED",
                    _ => "INTERNAL",
                };
                let mut error = json!({ "code": status.as_u16(), "message": message, "status": status_name });
                if let Some(detail) = detail {
                    error["details"] = json!([detail]);
                }
                let mut response = (status, Json(json!({ "error": error }))).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(
                            r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#,
                        ),
                    );
                }
                response
            }
        }
    }
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

pub(super) fn error_info(reason: &str, metadata: Option<Value>) -> Value {
    let mut info = json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": HEALTH_DOMAIN,
    });
    if let Some(metadata) = metadata {
        info["metadata"] = metadata;
    }
    info
}

pub(super) fn google_error(status: StatusCode, message: &str, detail: Option<Value>) -> Refusal {
    Refusal::Api { status, message: message.to_owned(), detail }
}

pub(super) fn invalid_argument(message: &str, detail: Option<Value>) -> Refusal {
    google_error(StatusCode::BAD_REQUEST, message, detail)
}

pub(super) fn unauthenticated() -> Refusal {
    google_error(StatusCode::UNAUTHORIZED, "Request had invalid authentication credentials.", None)
}
