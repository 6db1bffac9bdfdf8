//! Lambda entry point for `oauth (HttpApi: authorize, callback, disconnect)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(stepsync::config::Loads::CLIENTS, functions::oauth::handle).await
}
