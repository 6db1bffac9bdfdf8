//! Lambda entry point for `manual-sync (HttpApi, JWT: Sync steps, status, steps, device uploads)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(stepsync::config::Loads::CLIENTS, functions::manual_sync::handle).await
}
