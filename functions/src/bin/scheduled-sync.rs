//! Lambda entry point for `scheduled-sync` (EventBridge Scheduler, explicit `Input`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::STORE_ONLY, |app, _tick| {
        functions::scheduled_sync::tick(app)
    })
    .await
}
