//! Lambda entry point for `sync-worker` (EventBridge `SyncRequested` and `SyncShard`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back for the syncs still running when the worker stops starting new ones.
const STOP_MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    stepsync::logging::init();
    let app = functions::app::App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        tracing::info!(request_id = %event.context.request_id, "invocation");
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        let stop_at = Instant::now() + remaining.saturating_sub(STOP_MARGIN);
        functions::sync_worker::handle_until(app, event.payload, Some(stop_at)).await.map_err(Error::from)
    }))
    .await
}
