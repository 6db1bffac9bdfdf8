//! Withings on the wire: its paths, actions, scopes and status codes, the JSON envelope it
//! answers everything in (`{"status": .., "body": ..}`, HTTP 200 even for errors), the
//! activity and token bodies, the form-encoded notices it POSTs, and the request signature.

use axum::response::{IntoResponse, Json, Response};
use hmac::{Hmac, Mac};
use jiff::civil::Date;
use serde_json::{Value, json};
use sha2::Sha256;

// --- paths (https://account.withings.com for the consent page, https://wbsapi.withings.net for the rest) ---

pub const AUTHORIZE_PATH: &str = "/oauth2_user/authorize2";
/// The fake's own: where the consent page's forms post (Withings' page is not an API).
pub const CONSENT_PATH: &str = "/oauth2_user/authorize2/decision";
/// `action=requesttoken` (code or refresh) and `action=revoke`.
pub const OAUTH2_PATH: &str = "/v2/oauth2";
/// `action=getnonce`.
pub const SIGNATURE_PATH: &str = "/v2/signature";
/// `action=getactivity`.
pub const MEASURE_PATH: &str = "/v2/measure";
/// `action=subscribe|list|get|revoke`.
pub const NOTIFY_PATH: &str = "/notify";

// --- scopes: comma-separated in `scope`, as Withings writes them ---

pub const SCOPE_INFO: &str = "user.info";
pub const SCOPE_METRICS: &str = "user.metrics";
pub const SCOPE_ACTIVITY: &str = "user.activity";
pub const SCOPE_SLEEPEVENTS: &str = "user.sleepevents";
/// Every scope the consent page shows.
pub const ALL_SCOPES: [&str; 4] = [SCOPE_INFO, SCOPE_METRICS, SCOPE_ACTIVITY, SCOPE_SLEEPEVENTS];

/// The notification category of activity data (steps, distance, ...): scope `user.activity`.
pub const APPLI_ACTIVITY: i64 = 16;
/// `expires` of a listed subscription: Withings' subscriptions do not expire.
pub const NEVER_EXPIRES: i64 = 2_147_483_647;

// --- the `status` of the envelope (Withings' "Response status" table groups them in families) ---

pub const STATUS_OK: i64 = 0;
/// "Authentication failed": a missing, unknown, expired or revoked access token.
pub const STATUS_INVALID_TOKEN: i64 = 401;
/// "Invalid params": bad or missing parameters, an invalid code or refresh token, a bad nonce.
pub const STATUS_INVALID_PARAMS: i64 = 503;
/// "Too many request": over the app's 120 requests a minute.
pub const STATUS_TOO_MANY_REQUESTS: i64 = 601;
/// "Not implemented": an unknown `action`.
pub const STATUS_NOT_IMPLEMENTED: i64 = 2554;
/// "Unauthorized": a request signature that does not verify, or an unknown client.
pub const STATUS_UNAUTHORIZED: i64 = 2555;
/// "Invalid params" family: the callback URL did not answer the HEAD check with a 2xx.
pub const STATUS_CALLBACK_UNREACHABLE: i64 = 293;
/// "Invalid params" family: no subscription matches (`notify` `get` and `revoke`).
pub const STATUS_NO_SUCH_SUBSCRIPTION: i64 = 286;
/// The status for a token whose grant lacks the scope the service needs. Withings documents
/// no dedicated code; the fake answers the "Authentication failed" family.
pub const STATUS_MISSING_SCOPE: i64 = 401;
/// "An error occurred": a generic server-side failure (for scripted faults).
pub const STATUS_ERROR: i64 = 2555;

/// The fields `getactivity` can return on request with `data_fields` (all when it is absent).
pub const ACTIVITY_DATA_FIELDS: [&str; 16] = [
    "steps",
    "distance",
    "elevation",
    "soft",
    "moderate",
    "intense",
    "active",
    "calories",
    "totalcalories",
    "hr_average",
    "hr_min",
    "hr_max",
    "hr_zone_0",
    "hr_zone_1",
    "hr_zone_2",
    "hr_zone_3",
];

/// Withings' request signature: hex HMAC-SHA256 keyed with the client secret over the values
/// joined with commas, in the order of their keys sorted (`action,client_id,timestamp` for
/// `getnonce`, `action,client_id,nonce` for `revoke`).
pub fn signature(client_secret: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = fields.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let joined = sorted.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(",");
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(joined.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The envelope

/// `{"status": 0, "body": body}` with HTTP 200.
pub(super) fn ok(body: Value) -> Response {
    Json(json!({ "status": STATUS_OK, "body": body })).into_response()
}

/// How Withings refuses: HTTP 200, `{"status": N, "body": {}, "error": ".."}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: i64,
    pub error: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        Json(json!({ "status": self.status, "body": {}, "error": self.error })).into_response()
    }
}

pub(super) fn refusal(status: i64, error: impl Into<String>) -> Refusal {
    Refusal { status, error: error.into() }
}

pub(super) fn invalid_params(detail: &str) -> Refusal {
    refusal(STATUS_INVALID_PARAMS, format!("Invalid Params: {detail}"))
}

pub(super) fn invalid_token() -> Refusal {
    refusal(STATUS_INVALID_TOKEN, "invalid_token")
}

pub(super) fn too_many_requests() -> Refusal {
    refusal(STATUS_TOO_MANY_REQUESTS, "Too Many Request")
}

pub(super) fn not_implemented() -> Refusal {
    refusal(STATUS_NOT_IMPLEMENTED, "Not implemented")
}

pub(super) fn unauthorized(detail: &str) -> Refusal {
    refusal(STATUS_UNAUTHORIZED, format!("Unauthorized: {detail}"))
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// The `body` of a `requesttoken` answer. `userid` is a string or a number, as configured.
pub(super) fn token_body(
    userid: &str,
    userid_as_number: bool,
    access_token: &str,
    refresh_token: &str,
    expires_in: u64,
    scopes: &[String],
) -> Value {
    let userid = match userid.parse::<u64>() {
        Ok(n) if userid_as_number => json!(n),
        _ => json!(userid),
    };
    json!({
        "userid": userid,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_in": expires_in,
        "scope": scopes.join(","),
        "token_type": "Bearer",
    })
}

/// One day's activity from one source, as the fake holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDay {
    /// `hash_deviceid` (and `deviceid`): the tracker that counted the steps.
    pub hash_deviceid: String,
    pub steps: u64,
    /// Unix seconds of the last change (`modified`, and what `lastupdate` filters on).
    pub modified: i64,
}

/// One `getactivity` entry; the other measures follow from the steps. `fields`: the
/// `data_fields` asked for (`None`: all).
pub(super) fn activity_json(day: Date, zone: &str, device: &DeviceDay, fields: Option<&[String]>) -> Value {
    let steps = device.steps;
    let all = json!({
        "steps": steps,
        "distance": steps * 3 / 4,
        "elevation": steps / 2000,
        "soft": steps / 4,
        "moderate": steps / 20,
        "intense": steps / 60,
        "active": steps / 20 + steps / 60,
        "calories": steps * 4 / 100,
        "totalcalories": 1600 + steps * 4 / 100,
        "hr_average": 72,
        "hr_min": 52,
        "hr_max": 131,
        "hr_zone_0": 600,
        "hr_zone_1": 300,
        "hr_zone_2": 100,
        "hr_zone_3": 0,
    });
    let mut entry = json!({
        "date": day.to_string(),
        "timezone": zone,
        "deviceid": device.hash_deviceid,
        "hash_deviceid": device.hash_deviceid,
        "brand": 1,
        "is_tracker": true,
        "modified": device.modified,
    });
    if let (Some(entry), Some(all)) = (entry.as_object_mut(), all.as_object()) {
        for (name, value) in all {
            if fields.is_none_or(|fields| fields.iter().any(|f| f == name)) {
                entry.insert(name.clone(), value.clone());
            }
        }
    }
    entry
}

/// A stable made-up device id for (person, device name), 40 hex digits like Withings'.
pub(super) fn device_hash(userid: &str, device: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(format!("fake-withings/device/{userid}/{device}").as_bytes());
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// How an activity notice names its day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeStyle {
    /// `userid=..&appli=16&startdate=<unix>&enddate=<unix>`: the day's local midnight to its
    /// last second, the fields every Withings notice documents (the default).
    Range,
    /// `userid=..&appli=16&date=YYYY-MM-DD`: the `date` field Withings documents for
    /// notices about one date.
    Date,
}

/// The exact form-encoded body of an activity notice for `day` in `zone`.
pub(super) fn notice_body(userid: &str, day: Date, zone: &jiff::tz::TimeZone, style: NoticeStyle) -> String {
    reqwest::Url::parse("http://notice.invalid/")
        .map(|mut u| {
            {
                let mut pairs = u.query_pairs_mut();
                pairs.append_pair("userid", userid);
                pairs.append_pair("appli", &APPLI_ACTIVITY.to_string());
                match style {
                    NoticeStyle::Range => {
                        let start =
                            day.to_zoned_datetime(zone.clone()).map(|z| z.timestamp().as_second()).unwrap_or_default();
                        let next = day
                            .tomorrow()
                            .ok()
                            .and_then(|d| d.to_zoned_datetime(zone.clone()).ok())
                            .map(|z| z.timestamp().as_second())
                            .unwrap_or(start + 86_400);
                        pairs.append_pair("startdate", &start.to_string());
                        pairs.append_pair("enddate", &(next - 1).to_string());
                    }
                    NoticeStyle::Date => {
                        pairs.append_pair("date", &day.to_string());
                    }
                }
            }
            u.query().unwrap_or_default().to_owned()
        })
        .unwrap_or_default()
}
