//! Lambda entry point for `nudges` (EventBridge `ConnectionStatusChanged` to reconnect_required).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::STORE_ONLY, |app, event| {
        functions::nudges::handle(app, event.payload)
    })
    .await
}
