//! `manual-sync`: "Sync steps" (`POST /v1/sync`), the per-connection diagnosis
//! (`GET /v1/sync/status`), the person's own day records (`GET /v1/steps`) and the phone's
//! Apple Health / Health Connect uploads (`POST /v1/steps/device-upload`, in `device_upload`).

use crate::app::App;
use crate::http::{ApiError, caller, json, query, segments};
use crate::sync_worker::sync_connection;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use stepsync::challenges::rank;
use stepsync::domain::{ChallengeId, Connection, ConnectionStatus, LocalDate, Provider, UserId};
use stepsync::events::{Event, SyncReason, SyncRequested};
use stepsync::ports::{ChallengeStore, ConnectionStore, EphemeralStore, StepStore};
use stepsync::status::{Diagnosis, diagnose};
use stepsync::sync::SyncOutcome;

/// The longest range `GET /v1/steps` answers, in days.
pub const MAX_STEPS_RANGE_DAYS: i32 = 93;

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] =
    &[("POST", "/v1/sync"), ("GET", "/v1/sync/status"), ("GET", "/v1/steps"), ("POST", "/v1/steps/device-upload")];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let segments = segments(&req);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match (req.method().as_str(), segments.as_slice()) {
        ("POST", ["v1", "sync"]) => sync_now(app, &req).await,
        ("GET", ["v1", "sync", "status"]) => status(app, &req).await,
        ("GET", ["v1", "steps"]) => steps(app, &req).await,
        ("POST", ["v1", "steps", "device-upload"]) => crate::device_upload::upload(app, &req).await,
        _ => Err(ApiError::NotFound("route".into())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    challenge: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConnectionSync {
    provider: Provider,
    /// `synced`, `queued` (still running: the worker finishes it), `failed` or `skipped`.
    outcome: &'static str,
    days_changed: usize,
    /// The new daily totals of the days that changed.
    days: Vec<DayTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<stepsync::domain::LastError>,
}

#[derive(Debug, Serialize)]
struct DayTotal {
    local_date: LocalDate,
    steps: u32,
}

#[derive(Debug, Serialize)]
struct Standing {
    challenge_id: ChallengeId,
    rank: u32,
    steps: u64,
    participants: u32,
}

async fn sync_now(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let body: SyncBody = match crate::http::body_bytes(req) {
        [] => SyncBody::default(),
        _ => crate::http::json_body(req)?,
    };
    let challenge = body
        .challenge
        .or_else(|| query(req, "challenge").map(str::to_owned))
        .map(|c| ChallengeId::parse(&c))
        .transpose()?;
    // An unknown challenge is refused before the cooldown is spent on it.
    if let Some(id) = &challenge
        && app.store.get_challenge(id).await.map_err(ApiError::internal)?.is_none()
    {
        return Err(ApiError::NotFound(format!("challenge {id}")));
    }
    let now = app.engine.clock.now();
    let cooldown = Duration::from_secs(u64::from(app.config.manual_cooldown_seconds));
    let key = format!("manual#{user}");
    // One conditional write decides: two taps at once still make one sync.
    if !app.store.claim_once(&key, now, cooldown).await.map_err(ApiError::internal)? {
        let until = app.store.claim_expiry(&key).await.map_err(ApiError::internal)?;
        let wait = until.map_or(cooldown.as_secs(), |u| u.as_second().saturating_sub(now.as_second()).max(1) as u64);
        let mut res =
            ApiError::TooManyRequests(format!("you synced moments ago; try again in {wait} seconds")).into_response();
        res.headers_mut().insert("retry-after", wait.into());
        return Ok(res);
    }

    let connections: Vec<Connection> = app
        .store
        .list_connections(&user)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|c| c.status == ConnectionStatus::Active && app.providers.get(c.provider).is_some())
        .collect();
    let deadline = Duration::from_millis(u64::from(app.config.manual_deadline_ms));
    let runs = connections.iter().map(|c| tokio::time::timeout(deadline, sync_connection(app, c, None, None)));
    let results = futures::future::join_all(runs).await;

    let mut answers = Vec::new();
    let mut queued = Vec::new();
    for (connection, result) in connections.iter().zip(results) {
        let answer = match result {
            // Past the deadline the sync is dropped between atomic writes; the worker redoes it.
            Err(_elapsed) => {
                queued.push(Event::SyncRequested(SyncRequested {
                    user: user.clone(),
                    provider: connection.provider,
                    reason: SyncReason::Manual,
                    start: None,
                    end: None,
                }));
                ConnectionSync {
                    provider: connection.provider,
                    outcome: "queued",
                    days_changed: 0,
                    days: vec![],
                    error: None,
                }
            }
            Ok(Ok(SyncOutcome::Synced(report))) => ConnectionSync {
                provider: connection.provider,
                outcome: "synced",
                days_changed: report.changed.len(),
                days: report.changed.iter().map(|c| DayTotal { local_date: c.date, steps: c.new_total }).collect(),
                error: None,
            },
            Ok(Ok(SyncOutcome::Failed { error, .. })) => ConnectionSync {
                provider: connection.provider,
                outcome: "failed",
                days_changed: 0,
                days: vec![],
                error: Some(error),
            },
            Ok(Ok(SyncOutcome::Skipped(_))) => ConnectionSync {
                provider: connection.provider,
                outcome: "skipped",
                days_changed: 0,
                days: vec![],
                error: None,
            },
            Ok(Err(e)) => {
                tracing::warn!(user = %user, provider = %connection.provider, error = %e, "manual sync failed");
                let error = stepsync::domain::LastError {
                    code: "sync_failed".into(),
                    message: "This sync did not finish; we will try again shortly.".into(),
                };
                ConnectionSync {
                    provider: connection.provider,
                    outcome: "failed",
                    days_changed: 0,
                    days: vec![],
                    error: Some(error),
                }
            }
        };
        answers.push(answer);
    }
    if !queued.is_empty() {
        app.engine.publisher.publish(&queued).await.map_err(ApiError::internal)?;
    }
    let standing = match &challenge {
        Some(id) => standing(app, id, &user).await?,
        None => None,
    };
    let status = if queued.is_empty() { 200 } else { 202 };
    let message =
        (!queued.is_empty()).then_some("Some sources are still syncing; their steps will appear in a minute.");
    tracing::info!(user = %user, connections = answers.len(), queued = queued.len(), "manual sync");
    Ok(json(status, &serde_json::json!({"connections": answers, "standing": standing, "message": message})))
}

async fn standing(app: &App, id: &ChallengeId, user: &UserId) -> Result<Option<Standing>, ApiError> {
    let participants = app.store.participants(id).await.map_err(ApiError::internal)?;
    let page = rank(participants, usize::MAX, None).map_err(ApiError::internal)?;
    Ok(page.entries.iter().find(|e| &e.user == user).map(|e| Standing {
        challenge_id: id.clone(),
        rank: e.rank,
        steps: e.total,
        participants: page.participants,
    }))
}

#[derive(Debug, Serialize)]
struct ConnectionStatusView {
    provider: Provider,
    status: ConnectionStatus,
    last_attempt_at: Option<jiff::Timestamp>,
    last_success_at: Option<jiff::Timestamp>,
    newest_data_date: Option<LocalDate>,
    last_device_sync_at: Option<jiff::Timestamp>,
    next_sync_at: Option<jiff::Timestamp>,
    last_error: Option<stepsync::domain::LastError>,
    diagnosis: Diagnosis,
}

async fn status(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let now = app.engine.clock.now();
    let connections = app.store.list_connections(&user).await.map_err(ApiError::internal)?;
    let views: Vec<ConnectionStatusView> = connections
        .into_iter()
        .map(|c| ConnectionStatusView {
            provider: c.provider,
            status: c.status,
            last_attempt_at: c.last_attempt_at,
            last_success_at: c.last_success_at,
            newest_data_date: c.last_data_date,
            last_device_sync_at: c.last_device_sync_at,
            next_sync_at: c.next_sync_at.filter(|_| c.status == ConnectionStatus::Active),
            diagnosis: diagnose(&c, now),
            last_error: c.last_error,
        })
        .collect();
    Ok(json(200, &serde_json::json!({"connections": views})))
}

#[derive(Debug, Serialize)]
struct DayView {
    local_date: LocalDate,
    steps: u32,
    /// The source the total comes from (the primary source, else the largest).
    source: Option<Provider>,
    sources: BTreeMap<Provider, u32>,
}

async fn steps(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let date = |name: &'static str| -> Result<LocalDate, ApiError> {
        let raw =
            query(req, name).ok_or(ApiError::Invalid { field: name, message: "is required (YYYY-MM-DD)".into() })?;
        LocalDate::parse(raw).map_err(|e| ApiError::Invalid { field: name, message: e.message })
    };
    let (from, to) = (date("from")?, date("to")?);
    if to < from {
        return Err(ApiError::Invalid { field: "to", message: "must not be before from".into() });
    }
    if from.add_days(MAX_STEPS_RANGE_DAYS - 1) < to {
        return Err(ApiError::Invalid { field: "to", message: format!("at most {MAX_STEPS_RANGE_DAYS} days at once") });
    }
    let window = app.store.load_user_window(&user, from, to).await.map_err(ApiError::internal)?;
    let primary = window.profile.primary;
    let days: Vec<DayView> = window
        .days
        .into_values()
        .map(|d| {
            let source = stepsync::domain::resolved_source(&d.sources, primary);
            DayView {
                local_date: d.date,
                steps: d.total.get(),
                source,
                sources: d.sources.iter().map(|(p, v)| (*p, v.steps.get())).collect(),
            }
        })
        .collect();
    Ok(json(200, &serde_json::json!({"days": days})))
}
