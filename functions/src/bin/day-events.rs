//! Lambda entry point for `day-events` (the table's DynamoDB stream, day items only).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_events(stepsync::config::Loads::STORE_ONLY, |app, event| {
        functions::day_events::handle(app, event.payload)
    })
    .await
}
