//! Lambda entry point for `scheduled-sync` (EventBridge Scheduler, explicit `Input`).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    stepsync::logging::init();
    let app = functions::app::App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        tracing::info!(request_id = %event.context.request_id, "tick");
        functions::scheduled_sync::tick(app).await.map_err(Error::from)
    }))
    .await
}
