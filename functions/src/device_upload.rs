//! `POST /v1/steps/device-upload`: daily totals the phone read from Apple Health or Health
//! Connect. An idempotent overwrite per (person, source, date): the same day uploaded twice,
//! or from two phones, never adds up. Valid days are applied; each invalid one is reported.

use crate::app::App;
use crate::http::{ApiError, caller, json};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use stepsync::domain::{Connection, ConnectionStatus, DailyValue, LocalDate, Provider, UserId};
use stepsync::ports::{ConnectionStore, StoreError, SyncRecord};

/// At most this many days in one upload.
pub const MAX_UPLOAD_DAYS: usize = 31;

#[derive(Debug, Serialize)]
struct Applied {
    local_date: LocalDate,
    steps: i64,
}

#[derive(Debug, Serialize)]
struct Rejected {
    /// As sent, when it was not a date.
    local_date: Value,
    error: String,
}

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::Invalid { field, message: message.to_owned() }
}

/// The upload's envelope, checked field by field.
struct Envelope {
    platform: Provider,
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
    match object.get("install_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.chars().count() <= 128 => {}
        _ => return Err(invalid("install_id", "must be a string of 1 to 128 characters")),
    }
    let zone = object.get("time_zone").and_then(Value::as_str).ok_or_else(|| invalid("time_zone", "is required"))?;
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| invalid("time_zone", "is not an IANA time zone"))?;
    let days = object.get("days").and_then(Value::as_array).ok_or_else(|| invalid("days", "must be a list"))?;
    if days.is_empty() || days.len() > MAX_UPLOAD_DAYS {
        return Err(invalid("days", &format!("must hold 1 to {MAX_UPLOAD_DAYS} days")));
    }
    Ok(Envelope { platform, time_zone: (zone.to_owned(), tz), days: days.clone() })
}

/// Splits the days into values worth applying and the ones refused on their shape.
fn parse_days(days: &[Value]) -> (Vec<DailyValue>, Vec<Rejected>) {
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
        let reject = |error: &str| Rejected { local_date: raw_date.clone(), error: error.to_owned() };
        let Some(date) = raw_date.as_str().and_then(|d| LocalDate::parse(d).ok()) else {
            rejected.push(reject("invalid_date"));
            continue;
        };
        if seen.get(&date.to_string()).copied().unwrap_or(0) > 1 {
            // Which of the two is right cannot be told: neither is applied.
            rejected.push(reject("duplicate_date"));
            continue;
        }
        match day.get("steps").and_then(Value::as_i64) {
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
    let (values, mut rejected) = parse_days(&envelope.days);
    let (zone, tz) = &envelope.time_zone;
    // Value checks first (they need no connection): an upload with nothing usable changes
    // nothing at all, not even the connection.
    let today = stepsync::domain::local_today(app.engine.clock.now(), tz);
    let (values, refused): (Vec<DailyValue>, Vec<DailyValue>) =
        values.into_iter().partition(|v| app.engine.limits.validate(v, today).is_ok());
    rejected.extend(refused.iter().filter_map(|v| {
        let error = app.engine.limits.validate(v, today).err()?;
        Some(Rejected { local_date: v.date.to_string().into(), error: error.code().to_owned() })
    }));
    if values.is_empty() {
        return Ok(nothing_usable(&rejected));
    }
    let last_heard = ensure_connection(app, &user, envelope.platform, zone).await?;
    let report = app.engine.apply(&user, envelope.platform, tz, &values).await.map_err(ApiError::internal)?;
    let applied: Vec<Applied> = values.iter().map(|v| Applied { local_date: v.date, steps: v.steps }).collect();

    let now = app.engine.clock.now();
    // Re-uploading unchanged days costs no write: the "last heard" stamp is refreshed only
    // when something changed or it is more than an hour old (the 48-hour silence check
    // needs no finer grain).
    let stale = last_heard.is_none_or(|at| now.duration_since(at).as_secs() >= 3600);
    if !report.changed.is_empty() || stale {
        let record = SyncRecord {
            attempted_at: Some(now),
            succeeded_at: Some(now),
            last_data_date: applied.iter().filter(|a| a.steps > 0).map(|a| a.local_date).max(),
            last_new_data_at: (!report.changed.is_empty()).then_some(now),
            last_error: Some(None),
            ..SyncRecord::default()
        };
        match app.store.record_sync(&user, envelope.platform, &record).await {
            Ok(()) | Err(StoreError::Disconnected) => {}
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    tracing::info!(
        user = %user,
        source = %envelope.platform,
        applied = applied.len(),
        rejected = rejected.len(),
        changed = report.changed.len(),
        "device upload"
    );
    Ok(json(200, &serde_json::json!({"applied": applied, "rejected": rejected})))
}

fn nothing_usable(rejected: &[Rejected]) -> lambda_http::Response<lambda_http::Body> {
    json(
        400,
        &serde_json::json!({
            "error": {"code": "invalid", "message": "no day in the upload is usable", "field": "days"},
            "applied": [],
            "rejected": rejected,
        }),
    )
}

/// The phone source's connection: created on the first upload, and active again after the
/// person turned it off and the app uploads anew (the upload is the person's act). Returns
/// when the source was last heard from.
async fn ensure_connection(
    app: &App,
    user: &UserId,
    platform: Provider,
    zone: &str,
) -> Result<Option<jiff::Timestamp>, ApiError> {
    let now = app.engine.clock.now();
    let existing = app.store.get_connection(user, platform).await.map_err(ApiError::internal)?;
    let fresh = Connection { time_zone: Some(zone.to_owned()), ..Connection::new(user.clone(), platform, now) };
    let result = match existing {
        None => app.store.create_connection(&fresh).await,
        Some(c) if c.status == ConnectionStatus::Active && c.time_zone.as_deref() == Some(zone) => {
            return Ok(c.last_success_at);
        }
        Some(c) => {
            let updated = Connection {
                status: ConnectionStatus::Active,
                time_zone: Some(zone.to_owned()),
                token_version: c.token_version + 1,
                ..c.clone()
            };
            app.store.save_connection(&updated, Some(c.token_version)).await
        }
    };
    match result {
        // A concurrent upload made or changed it: either way there is one now.
        Ok(()) | Err(StoreError::AlreadyExists(_)) | Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(ApiError::internal(e)),
    }
}
