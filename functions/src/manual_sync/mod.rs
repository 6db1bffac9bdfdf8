//! `manual-sync`: "Sync steps" (`POST /v1/sync`), the per-connection diagnosis
//! (`GET /v1/sync/status`), the person's own day records (`GET /v1/steps`) and the phone's
//! Apple Health / Health Connect uploads (`POST /v1/steps/device-upload`, parsed in
//! `device_upload`). The use cases live in `stepsync::services`.

pub mod device_upload;

use crate::app::App;
use crate::http::{self, ApiError, Route, caller, json, query};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use stepsync::domain::{ChallengeId, LocalDate};

pub use stepsync::services::status::MAX_DAYS_RANGE as MAX_STEPS_RANGE_DAYS;

#[derive(Debug, Clone, Copy)]
enum Op {
    SyncNow,
    Status,
    Steps,
    DeviceUpload,
}

const TABLE: [Route<Op>; 4] = [
    Route { method: "POST", path: "/v1/sync", op: Op::SyncNow },
    Route { method: "GET", path: "/v1/sync/status", op: Op::Status },
    Route { method: "GET", path: "/v1/steps", op: Op::Steps },
    Route { method: "POST", path: "/v1/steps/device-upload", op: Op::DeviceUpload },
];

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &http::paths(&TABLE);

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = match http::route(&TABLE, &req) {
        Ok((Op::SyncNow, _)) => sync_now(app, &req).await,
        Ok((Op::Status, _)) => status(app, &req).await,
        Ok((Op::Steps, _)) => steps(app, &req).await,
        Ok((Op::DeviceUpload, _)) => device_upload::upload(app, &req).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    challenge: Option<String>,
}

async fn sync_now(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let body: SyncBody = http::optional_json_body(req)?;
    let challenge = body
        .challenge
        .or_else(|| query(req, "challenge").map(str::to_owned))
        .map(|c| ChallengeId::parse(&c))
        .transpose()?;
    let report = app.services.syncing.sync_now(&user, challenge.as_ref()).await?;
    Ok(json(if report.queued { 202 } else { 200 }, &report))
}

async fn status(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let views = app.services.status().connections(&user).await?;
    Ok(json(200, &serde_json::json!({"connections": views})))
}

async fn steps(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let date = |name: &'static str| -> Result<LocalDate, ApiError> {
        let raw =
            query(req, name).ok_or(ApiError::Invalid { field: name, message: "is required (YYYY-MM-DD)".into() })?;
        LocalDate::parse(raw).map_err(|e| ApiError::Invalid { field: name, message: e.message })
    };
    let (from, to) = (date("from")?, date("to")?);
    let days = app.services.status().days(&user, from, to).await?;
    Ok(json(200, &serde_json::json!({"days": days})))
}
