//! Lambda entry point for `challenges (HttpApi, JWT: challenges, joining, leaderboards)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(stepsync::config::Loads::STORE_ONLY, functions::challenges::handle).await
}
