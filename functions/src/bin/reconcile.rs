//! Lambda entry point for `reconcile` (EventBridge Scheduler, daily, explicit `Input`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::STORE_ONLY, |app, _tick| functions::reconcile::run(app))
        .await
}
