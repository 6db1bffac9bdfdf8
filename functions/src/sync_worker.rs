//! `sync-worker`: runs the sync engine for one connection per `SyncRequested` event, and for
//! a shard's due connections per `SyncShard` event (bounded concurrency, stopping cleanly
//! before the Lambda's time runs out and leaving the rest due).

use crate::app::App;
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;
use stepsync::domain::{Connection, LocalDate, local_today};
use stepsync::events::{Event, SyncReason, SyncRequested, SyncShard};
use stepsync::ports::{ConnectionStore, EphemeralStore, StoreError};
use stepsync::sync::{SyncError, SyncOutcome};

/// Due connections read per query of a shard.
const SHARD_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the event is not one this worker handles: {0}")]
    BadEvent(String),
    /// Returned to Lambda, which retries the event, then sends it to the dead-letter queue.
    #[error("sync failed and may succeed on retry: {0}")]
    Retryable(String),
}

/// What the worker reports for one event (also its log line).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WorkerResult {
    Synced {
        changed: usize,
        unchanged: usize,
        rejected: usize,
    },
    Skipped {
        why: String,
    },
    Failed {
        code: String,
    },
    /// A shard's sweep: how many connections it synced, and whether it stopped for time.
    Shard {
        synced: usize,
        failed: usize,
        stopped_early: bool,
    },
}

pub async fn handle(app: &App, payload: serde_json::Value) -> Result<WorkerResult, WorkerError> {
    handle_until(app, payload, None).await
}

/// As `handle`, starting no new connection after `stop_at` (the Lambda's deadline less a
/// margin for the syncs already running).
pub async fn handle_until(
    app: &App,
    payload: serde_json::Value,
    stop_at: Option<Instant>,
) -> Result<WorkerResult, WorkerError> {
    let event: Event = serde_json::from_value(payload).map_err(|e| WorkerError::BadEvent(e.to_string()))?;
    match event {
        Event::SyncRequested(request) => sync_one(app, &request).await,
        Event::SyncShard(shard) => sync_shard(app, &shard, stop_at).await,
        other => Err(WorkerError::BadEvent(format!("{} is not handled here", other.detail_type()))),
    }
}

fn out_of_time(stop_at: Option<Instant>) -> bool {
    stop_at.is_some_and(|at| Instant::now() >= at)
}

async fn sync_shard(app: &App, shard: &SyncShard, stop_at: Option<Instant>) -> Result<WorkerResult, WorkerError> {
    let retryable = |e: StoreError| WorkerError::Retryable(e.to_string());
    let concurrency = app.config.worker_concurrency as usize;
    let mut attempted: HashSet<(String, String)> = HashSet::new();
    let (mut synced, mut failed, mut stopped_early) = (0, 0, false);
    loop {
        if out_of_time(stop_at) {
            stopped_early = true;
            break;
        }
        let now = app.engine.clock.now();
        let due = app.store.due_connections(shard.shard, now, SHARD_PAGE).await.map_err(retryable)?;
        // A connection whose sync failed without moving its due time is tried once per sweep.
        let fresh: Vec<Connection> =
            due.into_iter().filter(|c| attempted.insert((c.user.to_string(), c.provider.to_string()))).collect();
        if fresh.is_empty() {
            break;
        }
        let results: Vec<Option<bool>> = futures::stream::iter(fresh)
            .map(|connection| async move {
                if out_of_time(stop_at) {
                    return None;
                }
                let outcome = sync_connection(app, &connection, None, None).await;
                Some(matches!(outcome, Ok(SyncOutcome::Synced(_))))
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for result in results {
            match result {
                Some(true) => synced += 1,
                Some(false) => failed += 1,
                None => stopped_early = true,
            }
        }
        if stopped_early {
            break;
        }
    }
    tracing::info!(shard = shard.shard, synced, failed, stopped_early, "shard sweep finished");
    Ok(WorkerResult::Shard { synced, failed, stopped_early })
}

/// Syncs one connection over `start..=end`, by default the last `sync_window_days` local days.
pub async fn sync_connection(
    app: &App,
    connection: &Connection,
    start: Option<LocalDate>,
    end: Option<LocalDate>,
) -> Result<SyncOutcome, SyncError> {
    let Some(provider) = app.providers.get(connection.provider) else {
        return Ok(SyncOutcome::Skipped(connection.status));
    };
    let today = local_today(app.engine.clock.now(), &connection.tz());
    let end = end.unwrap_or(today);
    let start = start.unwrap_or_else(|| end.add_days(1 - app.config.sync_window_days as i32)).min(end);
    app.engine.sync_connection(connection, provider.as_ref(), start, end).await
}

async fn sync_one(app: &App, request: &SyncRequested) -> Result<WorkerResult, WorkerError> {
    let retryable = |e: StoreError| WorkerError::Retryable(e.to_string());
    let Some(connection) = app.store.get_connection(&request.user, request.provider).await.map_err(retryable)? else {
        return Ok(WorkerResult::Skipped { why: "no such connection".into() });
    };
    if app.providers.get(request.provider).is_none() {
        return Ok(WorkerResult::Skipped { why: format!("{} is not pulled by the server", request.provider) });
    }
    if let (SyncReason::Webhook, Some(start), Some(end)) = (request.reason, request.start, request.end) {
        for date in start.through(end) {
            let key = crate::webhook::coalesce_key(request.provider, &request.user, date);
            app.store.release_claim(&key).await.map_err(retryable)?;
        }
    }
    let outcome = sync_connection(app, &connection, request.start, request.end).await;
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
