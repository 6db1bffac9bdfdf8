//! Lambda entry point for `challenges (HttpApi, JWT: challenges, joining, leaderboards)`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::runtime::serve_http(functions::challenges::handle).await
}
