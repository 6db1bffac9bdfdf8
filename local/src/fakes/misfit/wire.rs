//! Misfit on the wire: its paths, the JSON it answers (tokens, day summaries) and its error shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use jiff::civil::Date;
use serde::Serialize;
use serde_json::json;

/// Every scope Misfit knows, comma-separated as its authorize URL takes them.
pub const ALL_SCOPES: &str = "public,birthday,email,tracking,session,sleeps";
/// Epoch seconds at which a 429's rate limit resets.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-ratelimit-reset";

pub const AUTHORIZE_PATH: &str = "/auth/dialog/authorize";
pub const CONSENT_PATH: &str = "/auth/dialog/consent";
pub const TOKEN_PATH: &str = "/auth/tokens/exchange";
pub const PROFILE_PATH: &str = "/move/resource/v1/user/me/profile";
pub const SUMMARY_PATH: &str = "/move/resource/v1/user/me/activity/summary";

// Misfit takes `me` or the user's own id in these paths.
pub(super) const PROFILE_ROUTE: &str = "/move/resource/v1/user/{user}/profile";
pub(super) const SUMMARY_ROUTE: &str = "/move/resource/v1/user/{user}/activity/summary";
pub(super) const USER_PATH_PREFIX: &str = "/move/resource/v1/user/";
pub(super) const INVALID_TOKEN: &str = "Invalid access token";

#[derive(Serialize)]
pub(super) struct TokenJson {
    pub(super) access_token: String,
    pub(super) token_type: &'static str,
}

/// One day of `summary?detail=true`: numbers as JSON numbers, steps an integer, the rest decimals.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DaySummary {
    pub(super) date: String,
    pub(super) points: f64,
    pub(super) steps: u64,
    pub(super) calories: f64,
    pub(super) activity_calories: f64,
    pub(super) distance: f64,
}

impl DaySummary {
    /// The other measures follow from the steps, near the ratios Misfit's own days show (distance in miles).
    pub(super) fn new(date: Date, steps: u64) -> Self {
        let s = steps as f64;
        Self {
            date: date.to_string(),
            points: round_to(s * 0.04, 1),
            steps,
            calories: round_to(1800.0 + s * 0.042, 1),
            activity_calories: round_to(s * 0.042, 1),
            distance: round_to(s * 0.000_449, 2),
        }
    }
}

pub(super) fn round_to(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// A Misfit error answer: `{"error_code", "error_message"}` with the status.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl Refusal {
    pub(super) fn bad_request(message: &str) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.to_owned() }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error_code": self.status.as_u16(), "error_message": self.message })))
            .into_response()
    }
}
