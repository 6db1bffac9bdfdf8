//! Lambda entry point for `provider-webhook (HttpApi, no JWT: every request is verified)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(stepsync::config::Loads::VERIFIERS, functions::webhook::handle).await
}
