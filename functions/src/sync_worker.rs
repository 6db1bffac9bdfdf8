//! `sync-worker`: one connection per `SyncRequested` event, a shard's due connections per
//! `SyncShard` event (`stepsync::services::Syncing::handle_event`).

use crate::app::App;
use std::time::Instant;
use stepsync::events::Event;

pub use stepsync::services::{WorkerError, WorkerResult};

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
    app.services.syncing.handle_event(event, stop_at).await
}
