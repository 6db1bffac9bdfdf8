//! `POST /v1/steps/device-upload`: the upload's JSON parsed at the edge (its envelope, and each
//! day's shape); the rules live in `stepsync::services::uploads`.

use crate::app::App;
use crate::http::{ApiError, caller, json, whole_number};
use serde_json::Value;
use std::collections::HashMap;
use stepsync::domain::{DailyValue, LocalDate, Provider};
use stepsync::services::{DeviceUpload, RejectedDay};

/// At most this many days in one upload.
pub const MAX_UPLOAD_DAYS: usize = 31;

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::Invalid { field, message: message.to_owned() }
}

/// The upload's envelope, checked field by field.
struct Envelope {
    platform: Provider,
    install_id: String,
    observed_at: Option<jiff::Timestamp>,
    time_zone: (String, jiff::tz::TimeZone),
    days: Vec<Value>,
}

fn envelope(body: &Value) -> Result<Envelope, ApiError> {
    let object = body.as_object().ok_or_else(|| invalid("body", "must be a JSON object"))?;
    let platform = match object.get("platform").and_then(Value::as_str) {
        Some("apple_health") => Provider::AppleHealth,
        Some("health_connect") => Provider::HealthConnect,
        _ => return Err(invalid("platform", "must be apple_health or health_connect")),
    };
    let install_id = match object.get("install_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.chars().count() <= 128 => id.to_owned(),
        _ => return Err(invalid("install_id", "must be a string of 1 to 128 characters")),
    };
    let observed_at = match object.get("observed_at") {
        None | Some(Value::Null) => None,
        Some(raw) => Some(
            raw.as_str()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .ok_or_else(|| invalid("observed_at", "must be an RFC 3339 time with an offset"))?,
        ),
    };
    let zone = object.get("time_zone").and_then(Value::as_str).ok_or_else(|| invalid("time_zone", "is required"))?;
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| invalid("time_zone", "is not an IANA time zone"))?;
    let days = object.get("days").and_then(Value::as_array).ok_or_else(|| invalid("days", "must be a list"))?;
    if days.is_empty() || days.len() > MAX_UPLOAD_DAYS {
        return Err(invalid("days", &format!("must hold 1 to {MAX_UPLOAD_DAYS} days")));
    }
    Ok(Envelope { platform, install_id, observed_at, time_zone: (zone.to_owned(), tz), days: days.clone() })
}

/// Splits the days into values worth applying and the ones refused on their shape.
fn parse_days(days: &[Value]) -> (Vec<DailyValue>, Vec<RejectedDay>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for day in days {
        if let Some(date) = day.get("local_date").and_then(Value::as_str) {
            *seen.entry(date.to_owned()).or_default() += 1;
        }
    }
    let mut values = Vec::new();
    let mut rejected = Vec::new();
    for day in days {
        let raw_date = day.get("local_date").cloned().unwrap_or(Value::Null);
        let reject = |error: &str| RejectedDay { local_date: raw_date.clone(), error: error.to_owned() };
        let Some(date) = raw_date.as_str().and_then(|d| LocalDate::parse(d).ok()) else {
            rejected.push(reject("invalid_date"));
            continue;
        };
        if seen.get(&date.to_string()).copied().unwrap_or(0) > 1 {
            // Which of the two is right cannot be told: neither is applied.
            rejected.push(reject("duplicate_date"));
            continue;
        }
        match day.get("steps").and_then(whole_number) {
            Some(steps) => values.push(DailyValue { date, steps, observed_at: None }),
            None => rejected.push(reject("not_an_integer")),
        }
    }
    (values, rejected)
}

pub async fn upload(
    app: &App,
    req: &lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, ApiError> {
    let user = caller(req)?;
    let body: Value = crate::http::json_body(req)?;
    let envelope = envelope(&body)?;
    let (values, rejected) = parse_days(&envelope.days);
    let (zone, tz) = envelope.time_zone;
    let upload = DeviceUpload {
        platform: envelope.platform,
        install_id: envelope.install_id,
        observed_at: envelope.observed_at,
        zone,
        tz,
        values,
        rejected,
    };
    let report = app.services.uploads.upload(&user, upload).await?;
    if report.applied.is_empty() {
        return Ok(nothing_usable(&report.rejected));
    }
    Ok(json(200, &report))
}

fn nothing_usable(rejected: &[RejectedDay]) -> lambda_http::Response<lambda_http::Body> {
    json(
        400,
        &serde_json::json!({
            "error": {"code": "invalid", "message": "no day in the upload is usable", "field": "days"},
            "applied": [],
            "rejected": rejected,
        }),
    )
}
