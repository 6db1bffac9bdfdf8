//! Lambda entry point for `reconcile` (EventBridge Scheduler, daily, explicit `Input`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::APP_CLIENTS, |app, _tick| functions::reconcile::run(app))
        .await
}
