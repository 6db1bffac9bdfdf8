//! `sync-worker`: runs the sync engine for one connection per `SyncRequested` event.

use crate::app::App;
use serde::Serialize;
use stepsync::domain::{LocalDate, local_today};
use stepsync::events::{Event, SyncRequested};
use stepsync::ports::{ConnectionStore, StoreError};
use stepsync::sync::{SyncError, SyncOutcome};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the event is not one this worker handles: {0}")]
    BadEvent(String),
    /// Returned to Lambda so EventBridge retries, then dead-letters.
    #[error("sync failed and may succeed on retry: {0}")]
    Retryable(String),
}

/// What the worker reports for one event (also its log line).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WorkerResult {
    Synced { changed: usize, unchanged: usize, rejected: usize },
    Skipped { why: String },
    Failed { code: String },
}

pub async fn handle(app: &App, payload: serde_json::Value) -> Result<WorkerResult, WorkerError> {
    let event: Event = serde_json::from_value(payload).map_err(|e| WorkerError::BadEvent(e.to_string()))?;
    match event {
        Event::SyncRequested(request) => sync_one(app, &request).await,
        other => Err(WorkerError::BadEvent(format!("{} is not handled here", other.detail_type()))),
    }
}

async fn sync_one(app: &App, request: &SyncRequested) -> Result<WorkerResult, WorkerError> {
    let retryable = |e: StoreError| WorkerError::Retryable(e.to_string());
    let Some(connection) = app.store.get_connection(&request.user, request.provider).await.map_err(retryable)? else {
        return Ok(WorkerResult::Skipped { why: "no such connection".into() });
    };
    let Some(provider) = app.providers.get(request.provider) else {
        return Ok(WorkerResult::Skipped { why: format!("{} is not pulled by the server", request.provider) });
    };
    let today = local_today(app.engine.clock.now(), &connection.tz());
    let end = request.end.unwrap_or(today);
    let start = request.start.unwrap_or_else(|| end.add_days(1 - app.config.sync_window_days as i32));
    let (start, end): (LocalDate, LocalDate) = (start.min(end), end);
    let outcome = app.engine.sync_connection(&connection, provider.as_ref(), start, end).await;
    let result = match outcome {
        Ok(SyncOutcome::Synced(report)) => WorkerResult::Synced {
            changed: report.changed.len(),
            unchanged: report.unchanged,
            rejected: report.rejected.len(),
        },
        Ok(SyncOutcome::Skipped(status)) => WorkerResult::Skipped { why: format!("connection is {}", status.as_str()) },
        Ok(SyncOutcome::Failed { error, .. }) => WorkerResult::Failed { code: error.code },
        Err(e @ SyncError::Tokens) => WorkerResult::Failed { code: e.to_string() },
        Err(e) => return Err(WorkerError::Retryable(e.to_string())),
    };
    tracing::info!(user = %request.user, provider = %request.provider, ?result, "sync finished");
    Ok(result)
}
