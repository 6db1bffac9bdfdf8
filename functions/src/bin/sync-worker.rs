//! Lambda entry point for `sync-worker` (EventBridge `SyncRequested` and `SyncShard`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back for the syncs still running when the worker stops starting new ones.
const STOP_MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::CLIENTS, |app, event| {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        let stop_at = Instant::now() + remaining.saturating_sub(STOP_MARGIN);
        functions::sync_worker::handle_until(app, event.payload, Some(stop_at))
    })
    .await
}
