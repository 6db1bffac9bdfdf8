//! Lambda entry point for `sync-worker` (EventBridge `SyncRequested`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stepsync::logging::init();
    let app = functions::app::App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        tracing::info!(request_id = %event.context.request_id, "invocation");
        functions::sync_worker::handle(app, event.payload).await.map_err(Error::from)
    }))
    .await
}
